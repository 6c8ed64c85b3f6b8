"""Inner anatomy of the head phantom: folded cortex, deep structures, lesions, mass effect.

Helpers of :mod:`medgan.demo.phantom`; each paints one group of structures into a block of HU
values, given head-frame coordinates ``u`` (left), ``v`` (posterior), ``w`` (superior) in mm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from medgan.demo.params import AIR_HU

if TYPE_CHECKING:
    from medgan.demo.params import HeadParams, Lesion, Textures


def sample_angular(
    table: np.ndarray, u: np.ndarray, v: np.ndarray, w: np.ndarray, rad: np.ndarray
) -> np.ndarray:
    from scipy import ndimage

    n_el, n_az = table.shape
    az = (np.arctan2(v, u) + np.pi) * (n_az / (2.0 * np.pi))
    el = (np.clip(w / rad, -1.0, 1.0) + 1.0) * (0.5 * (n_el - 1))
    return ndimage.map_coordinates(table, [el, az], order=1, mode="grid-wrap")


def ellipsoid(
    u: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    c: tuple[float, float, float],
    r: tuple[float, float, float],
) -> np.ndarray:
    return ((u - c[0]) / r[0]) ** 2 + ((v - c[1]) / r[1]) ** 2 + ((w - c[2]) / r[2]) ** 2


def bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Smallest index box holding every True of ``mask`` (None when there is none)."""
    out = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if hit.size == 0:
            return None
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(out)


def cortex(
    out: np.ndarray,
    brain: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    rad: np.ndarray,
    cortex_depth: np.ndarray,
    p: HeadParams,
    tex: Textures,
) -> None:
    """Grey-matter ribbon folded into gyri, with CSF-filled sulci running inwards."""
    max_depth = 26.0
    band = brain & (cortex_depth < max_depth)
    cd = cortex_depth[band]
    bu, bv, bw, br = u[band], v[band], w[band], rad[band]
    s = sample_angular(tex.sulci, bu, bv, bw, br)
    # Sulci wander a little with depth, so they are not perfectly radial.
    s += 0.04 * cd * sample_angular(tex.sulcal_depth, bw, bu, bv, br)
    sd = 13.0 + 5.0 * p.atrophy + 5.0 * sample_angular(tex.sulcal_depth, bu, bv, bw, br)
    grey = (cd < 3.2) | ((np.abs(s) < 0.8) & (cd < sd + 3.0))
    sulcus = (np.abs(s) < 0.2 + 0.25 * p.atrophy) & (cd < sd)
    vals = np.where(grey, np.float32(p.grey_hu), np.float32(p.white_hu)).astype(np.float32)
    vals[sulcus] = 7.0
    out[band] = vals


def mass_effect(
    u: np.ndarray, v: np.ndarray, w: np.ndarray, lesions: tuple[Lesion, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates seen by deep structures: pushed away from space-occupying lesions."""
    bu, bv, bw = u, v, w
    for les in lesions:
        if les.push_mm <= 0 or les.kind == "subdural":
            continue
        cu, cv, cw = les.center
        du, dv, dw = u - cu, v - cv, w - cw
        fall = np.exp(-(du * du + dv * dv + dw * dw) / (2.0 * (2.2 * les.radius) ** 2))
        # Sampling nearer the lesion makes structures appear pushed away from it.
        scale = les.push_mm / max(les.radius, 1.0)
        bu, bv, bw = bu - scale * du * fall, bv - scale * dv * fall, bw - scale * dw * fall
    for les in lesions:
        if les.kind == "subdural":  # midline shift away from the collection
            bu = bu + np.sign(les.center[0]) * les.push_mm * np.exp(-((w / 70.0) ** 2))
    return bu, bv, bw


def subdural_thickness(
    u: np.ndarray, v: np.ndarray, w: np.ndarray, rad: np.ndarray, lesions: tuple[Lesion, ...]
) -> np.ndarray | None:
    """Extra thickness (mm) of a crescent-shaped subdural collection, or None."""
    out = None
    for les in lesions:
        if les.kind != "subdural":
            continue
        d = np.asarray(les.center, dtype=np.float32)
        d /= np.linalg.norm(d)
        cos = (u * d[0] + v * d[1] + w * d[2]) / rad
        thick = les.radius * np.clip((cos - 0.45) / 0.55, 0.0, 1.0) ** 0.7
        out = thick if out is None else np.maximum(out, thick)
    return out


def deep_structures(
    vol: np.ndarray, brain: np.ndarray, u: np.ndarray, v: np.ndarray, w: np.ndarray, p: HeadParams
) -> None:
    """Ventricles, basal ganglia, thalami, falx, interhemispheric fissure, calcifications."""
    for side in (-1.0, 1.0):
        s = p.ventricle_scale * (1.0 + 0.5 * side * p.ventricle_asymmetry)
        vol[brain & (ellipsoid(u, v, w, (side * 11.0, 6.0, -6.0), (8.0, 13.0, 10.0)) < 1)] = (
            p.grey_hu - 3.0
        )
        vol[brain & (ellipsoid(u, v, w, (side * 21.0, -6.0, -6.0), (6.0, 14.0, 9.0)) < 1)] = (
            p.grey_hu - 1.0
        )
        vol[brain & (ellipsoid(u, v, w, (side * 9.0, -22.0, 4.0), (5.0, 8.0, 8.0)) < 1)] = (
            p.grey_hu - 2.0
        )
        # Lateral ventricle: a banana diverging backwards, with frontal and occipital horns.
        centre_u = side * (4.0 + 0.9 * s + 0.12 * (v + 25.0))
        centre_w = 12.0 - 0.006 * v * v
        width = (3.0 + 2.5 * s) * (1.0 + 0.25 * np.clip(v / 25.0, -1.0, 1.0))
        lat = ((u - centre_u) / width) ** 2 + ((w - centre_w) / (5.0 + 3.0 * s)) ** 2
        lat += ((v - 2.0) / (30.0 + 4.0 * s)) ** 2
        vol[brain & (lat < 1)] = 5.0
        # Temporal horn: curls down and forwards from the atrium into the temporal lobe.
        t_u = side * (26.0 + 2.0 * s)
        horn = ((u - t_u) / (1.5 + 2.5 * p.temporal_horns * s)) ** 2 + ((v + 2.0) / 16.0) ** 2
        horn += ((w + 14.0 + 0.15 * (v + 2.0)) / (2.0 + 2.0 * p.temporal_horns)) ** 2
        vol[brain & (horn < 1)] = 5.0
        if p.calcified_choroid:
            vol[
                brain & (ellipsoid(u, v, w, (side * (8.0 + 3.0 * s), 24.0, 10.0), (2.5,) * 3) < 1)
            ] = 160.0
        # Sylvian fissure: an oblique CSF cleft between frontal and temporal lobes.
        sylvian = (side * u > 36.0) & (
            np.abs(v + 6.0 - 0.35 * (side * u - 36.0)) < 0.9 + 1.6 * p.atrophy
        )
        vol[brain & sylvian & (w > -30.0) & (w < -2.0)] = 7.0
    # Basal cisterns around the midbrain, low in the volume.
    vol[brain & (ellipsoid(u, v, w, (0.0, 3.0, -31.0), (14.0, 13.0, 5.0)) < 1)] = 7.0
    vol[brain & (ellipsoid(u, v, w, (0.0, 8.0, -31.0), (9.0, 8.0, 12.0)) < 1)] = p.white_hu + 4.0
    vol[brain & (ellipsoid(u, v, w, (0.0, 21.0, -24.0), (7.0, 4.0, 5.0)) < 1)] = 7.0
    s = p.ventricle_scale
    third = (np.abs(u) < 0.8 + 1.2 * s) & (np.abs(v - 2.0) < 11.0) & (w > -22.0) & (w < 2.0)
    vol[brain & third] = 5.0
    if p.calcified_pineal:
        vol[brain & (ellipsoid(u, v, w, (0.0, 16.0, -4.0), (2.5, 3.0, 2.5)) < 1)] = 180.0
    # Interhemispheric fissure with the falx, above the corpus callosum and at the poles.
    above_cc = (w > 24.0 + 0.004 * v * v) | (v < -42.0) | (v > 48.0)
    fissure = brain & above_cc & (np.abs(u) < 1.0 + 1.5 * p.atrophy)
    vol[fissure] = 7.0
    vol[fissure & (np.abs(u) < 0.45)] = 65.0


def lesions(
    vol: np.ndarray, brain: np.ndarray, u: np.ndarray, v: np.ndarray, w: np.ndarray, p: HeadParams
) -> None:
    """Haemorrhage, tumour (necrotic centre, dense rim, oedema) and infarct wedges."""
    for les in p.lesions:
        if les.kind == "subdural":
            continue
        if les.kind == "infarct":
            # Wedge: points within a cone from the apex, pointing outwards, reaching the cortex.
            cu, cv, cw = les.center
            d = np.array([cu, cv * 0.6, cw * 0.6 + 10.0], dtype=np.float32)
            d /= np.linalg.norm(d)
            du, dv, dw = u - cu, v - cv, w - cw
            dist = np.sqrt(du * du + dv * dv + dw * dw) + 1e-3
            cos = (du * d[0] + dv * d[1] + dw * d[2]) / dist
            wedge = brain & (cos > np.cos(np.deg2rad(24.0))) & (dist < les.radius + 40.0)
            vol[wedge] = les.hu
            continue
        e = ellipsoid(u, v, w, les.center, (les.radius, les.radius * 1.15, les.radius * 0.9))
        if les.edema_mm > 0:
            grow = (les.radius + les.edema_mm) / les.radius
            edema = brain & (e < grow * grow) & (vol < p.grey_hu - 3.0) & (vol > 15.0)
            vol[edema] = 0.5 * (p.white_hu + 8.0)
        core = brain & (e < 1)
        vol[core] = les.hu
        if les.kind == "tumour":
            vol[brain & (e < 0.3)] = 18.0  # necrotic centre
            vol[brain & (e > 0.75) & (e < 1)] = les.hu + 8.0  # denser rim


def skull_base(
    vol: np.ndarray,
    brain: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    p: HeadParams,
    cells: np.ndarray,
) -> None:
    """Low slices: posterior fossa (cerebellum with folia, vermis, pons, fourth ventricle),
    temporal lobes in the middle fossa, petrous ridges with mastoid air cells, sphenoid sinus
    and the orbital roofs. ``cells`` is a smooth random field (unit variance) for air cells."""
    low = brain & (w < -12.0)
    if not low.any():
        return
    lu, lv, lw, cl = u[low], v[low], w[low], cells[low]
    vals = vol[low]
    # Tentorium: posterior fossa below a sloping tent (higher towards the incisura).
    tent = -16.0 - 0.22 * np.clip(lv - 10.0, 0.0, None) - 0.004 * lu * lu
    pf = (lv > 2.0 + 0.12 * np.abs(lu)) & (lw < tent)
    # Cerebellar hemispheres: grey cortex in concentric folia around a white core.
    for side in (-1.0, 1.0):
        cu, cv, cw = side * p.cerebellum_spread, 30.0, -40.0
        r = np.sqrt(((lu - cu) / 30.0) ** 2 + ((lv - cv) / 24.0) ** 2 + ((lw - cw) / 20.0) ** 2)
        hemi = pf & (r < 1.0)
        folia = np.sin(2.0 * np.pi * (r * 26.0 / p.folia_mm) + 1.5 * cl)
        core = r < 0.42 + 0.08 * cl
        hemi_vals = np.where(folia > 0.55, np.float32(7.0 + 4.0 * p.atrophy), p.grey_hu + 1.0)
        vals[hemi] = np.where(core[hemi], p.white_hu + 2.0, hemi_vals[hemi])
    # Cisterns: whatever the fossa holds besides the cerebellum is CSF.
    r_min = np.full(lu.shape, np.inf, np.float32)
    for side in (-1.0, 1.0):
        r_min = np.minimum(r_min, ((lu - side * p.cerebellum_spread) / 30.0) ** 2
                           + ((lv - 30.0) / 24.0) ** 2 + ((lw + 40.0) / 20.0) ** 2)  # fmt: skip
    vals[pf & (r_min >= 1.0) & (r_min < 1.5)] = 6.0
    vals[pf & (r_min >= 1.5)] = p.grey_hu + 1.0
    # Vermis in the midline, pons in front, the fourth ventricle between them.
    vermis = pf & (np.abs(lu) < 9.0) & (lv > 20.0) & (lv < 48.0) & (lw > -50.0)
    vals[vermis] = p.grey_hu
    pons = ellipsoid(lu, lv, lw, (0.0, 8.0, -40.0), (13.0, 11.0, 16.0)) < 1
    vals[pons] = p.white_hu + 5.0
    vals[(ellipsoid(lu, lv, lw, (0.0, 8.0, -40.0), (17.0, 14.0, 18.0)) < 1) & ~pons & pf] = 7.0
    fourth = ellipsoid(lu, lv, lw, (0.0, 22.0, -38.0), (5.0 * p.ventricle_scale, 3.5, 7.0)) < 1
    vals[fourth] = 5.0
    # Petrous ridges: oblique bone bars from the mastoids towards the clivus, with air cells.
    for side in (-1.0, 1.0):
        du, dv = side * lu - 14.0, lv - 2.0
        along = (du * 0.74 + dv * 0.67) / 1.0
        across = -du * 0.67 + dv * 0.74
        ridge = (np.abs(across) < 6.0 + 2.0 * cl) & (along > 0.0) & (along < 48.0)
        ridge &= lw < -22.0 - 0.1 * along
        mastoid = ridge & (along > 30.0) & (cl > 0.2)
        vals[ridge] = 0.8 * p.bone_hu
        vals[mastoid] = AIR_HU
    # Clivus and sphenoid body with its air sinus; ethmoid cells and the orbits in front.
    sphenoid = ellipsoid(lu, lv, lw, (0.0, -12.0, -44.0), (13.0, 11.0, 12.0)) < 1
    vals[sphenoid] = np.where(
        ellipsoid(lu, lv, lw, (0.0, -12.0, -44.0), (9.5, 8.0, 9.0)) < 1, np.float32(AIR_HU),
        np.float32(0.9 * p.bone_hu),
    )[sphenoid]  # fmt: skip
    clivus = (np.abs(lu) < 7.0) & (np.abs(lv - 2.0) < 4.0 + 0.1 * (lw + 34.0)) & (lw < -34.0)
    vals[clivus] = 0.9 * p.bone_hu
    front = (lv < -46.0 + 0.3 * np.clip(-30.0 - lw, 0.0, None)) & (lw < -30.0)
    ethmoid = front & (np.abs(lu) < 13.0)
    vals[ethmoid] = np.where(cl > -0.2, np.float32(AIR_HU), 0.8 * p.bone_hu)[ethmoid]
    for side in (-1.0, 1.0):
        orbit = front & (ellipsoid(lu, lv, lw, (side * 31.0, -66.0, -50.0), (17.0, 24.0, 15.0)) < 1)
        vals[orbit & ~ethmoid] = -80.0  # orbital fat
        globe = ellipsoid(lu, lv, lw, (side * 31.0, -72.0, -50.0), (11.5, 11.5, 11.5)) < 1
        vals[orbit & globe] = 12.0
    rest = front & ~ethmoid & (vals > -50.0) & (vals < 100.0) & (np.abs(lu) < 48.0)
    rest &= lv < -50.0 + 0.3 * np.clip(-30.0 - lw, 0.0, None)
    vals[rest] = 0.85 * p.bone_hu  # orbital roofs and the frontal floor
    vol[low] = vals
