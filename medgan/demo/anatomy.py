"""Inner anatomy of the head phantom: folded cortex, deep structures, lesions, mass effect.

Helpers of :mod:`medgan.demo.phantom`; each paints one group of structures into a block of HU
values, given head-frame coordinates ``u`` (left), ``v`` (posterior), ``w`` (superior) in mm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

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
    grey = (cd < 2.6) | ((np.abs(s) < 0.75) & (cd < sd + 2.5))
    sulcus = (np.abs(s) < 0.16 + 0.18 * p.atrophy) & (cd < sd)
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
    s = p.ventricle_scale
    for side in (-1.0, 1.0):
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
