"""Procedural head-CT-like phantoms in Hounsfield units, for the demo study and for tests.

Each patient is a random :class:`HeadParams` (head size and shape, pose, skull and scalp
thickness, atrophy, ventricle size, grey/white contrast, lesions, noise); :func:`render_head`
turns it into a volume on any axial grid. Everything is vectorised numpy and seeded, so the
same parameters always give the same voxels. Anatomy is approximate but arranged the way a
head CT is (scalp, three-layer skull, CSF, folded cortex with grey/white matter and CSF sulci,
ventricles with temporal horns and per-patient asymmetry, basal ganglia, thalami, falx,
calcifications; in the low slices the posterior fossa with foliated cerebellum, vermis, pons and
fourth ventricle, petrous ridges with mastoid air cells, sphenoid sinus, clivus and orbits) with
CT's band-pass noise texture, so a generator that learns only the outline does not pass for it
(docs/evaluation.md: the structure-erased reference).

World coordinates are DICOM patient coordinates (LPS, mm): +x patient left, +y posterior,
+z superior. Example::

    rng = np.random.default_rng(0)
    params = random_head(rng)
    hu = render_head(params, rows=256, cols=256, pixel_spacing=0.9375,
                     slice_z=np.arange(56) * 2.5 - 40.0)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from medgan.demo.anatomy import (
    bounding_box,
    cortex,
    deep_structures,
    lesions,
    mass_effect,
    skull_base,
    subdural_thickness,
)
from medgan.demo.params import (
    AIR_HU,
    LESION_KINDS,
    HeadParams,
    Lesion,
    SmoothField,
    Textures,
)

log = logging.getLogger(__name__)

def random_head(rng: np.random.Generator) -> HeadParams:
    """Draw one patient's anatomy: every call gives a different, plausible head."""
    u = rng.uniform
    atrophy = float(u(0.0, 1.0) ** 1.5)
    lesions: list[Lesion] = []
    n_lesions = int(rng.choice([0, 1, 1, 1, 2], 1)[0])
    for _ in range(n_lesions):
        lesions.append(_random_lesion(rng))
    return HeadParams(
        semi_axes=(u(68.0, 79.0), u(87.0, 101.0), u(98.0, 112.0)),
        # The head sits high in the scan field, so the study reaches the posterior fossa.
        center=(u(-8.0, 8.0), u(-6.0, 10.0), u(14.0, 26.0)),
        yaw=u(-10.0, 10.0),
        pitch=u(-8.0, 8.0),
        roll=u(-4.0, 4.0),
        scalp_mm=u(3.5, 7.0),
        skull_mm=u(5.0, 8.5),
        csf_mm=0.8 + 2.2 * atrophy,
        atrophy=atrophy,
        ventricle_scale=u(0.75, 1.1) + 0.8 * atrophy,
        grey_hu=u(37.0, 42.0),
        white_hu=u(24.0, 29.0),
        bone_hu=u(1250.0, 1650.0),
        noise_hu=u(2.5, 4.5),
        calcified_pineal=bool(rng.random() < 0.7),
        calcified_choroid=bool(rng.random() < 0.5),
        lesions=tuple(lesions),
        texture_seed=int(rng.integers(0, 2**31 - 1)),
        ventricle_asymmetry=float(rng.normal(0.0, 0.12)),
        temporal_horns=float(np.clip(u(0.1, 0.8) + 0.5 * atrophy, 0.0, 1.0)),
        cerebellum_spread=u(19.0, 25.0),
        folia_mm=u(3.0, 4.2),
        gyrus_scale=u(0.85, 1.25),
    )


def _random_lesion(rng: np.random.Generator) -> Lesion:
    kind = str(rng.choice(LESION_KINDS))
    side = float(rng.choice([-1.0, 1.0]))
    u = rng.uniform
    if kind == "haemorrhage":
        r = u(6.0, 18.0)
        return Lesion(
            kind,
            (side * u(12.0, 32.0), u(-35.0, 35.0), u(-20.0, 40.0)),
            r,
            u(60.0, 80.0),
            edema_mm=u(2.0, 6.0),
            push_mm=0.35 * r,
        )
    if kind == "tumour":
        r = u(9.0, 22.0)
        return Lesion(
            kind,
            (side * u(15.0, 35.0), u(-45.0, 45.0), u(-10.0, 50.0)),
            r,
            u(32.0, 48.0),
            edema_mm=u(6.0, 15.0),
            push_mm=0.45 * r,
        )
    if kind == "infarct":
        # A wedge from deep white matter out to the cortex: centre marks the apex.
        return Lesion(
            kind,
            (side * u(10.0, 20.0), u(-30.0, 30.0), u(-10.0, 35.0)),
            u(25.0, 45.0),
            u(12.0, 20.0),
        )
    # Subdural haematoma: a crescent over one convexity; centre gives the direction.
    return Lesion(
        kind,
        (side * 1.0, u(-0.6, 0.6), u(0.0, 0.6)),
        u(4.0, 12.0),
        u(55.0, 75.0),
        push_mm=u(2.0, 6.0),
    )


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head frame → world rotation (degrees)."""
    a, b, c = np.deg2rad([yaw, pitch, roll])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    return rz @ rx @ ry


def _angular_table(
    rng: np.random.Generator, shape: tuple[int, int], sigma: tuple[float, float]
) -> np.ndarray:
    """Smooth noise over (elevation, azimuth), periodic in azimuth, unit variance."""
    from scipy import ndimage

    t = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode=("nearest", "wrap"))
    return ((t - t.mean()) / (t.std() + 1e-9)).astype(np.float32)


def render_head(
    p: HeadParams,
    *,
    rows: int,
    cols: int,
    pixel_spacing: float,
    slice_z: np.ndarray,
    chunk: int = 8,
) -> np.ndarray:
    """Render ``p`` as float32 HU of shape (len(slice_z), rows, cols) on an axial grid.

    Pixel (i, j) of slice k sits at world x = (j - (cols-1)/2)·spacing,
    y = (i - (rows-1)/2)·spacing, z = slice_z[k]. Work is done in slabs of ``chunk``
    slices, each cropped to the head's bounding box.
    """
    from scipy import ndimage

    rng = np.random.default_rng(p.texture_seed)
    xs = ((np.arange(cols) - (cols - 1) / 2.0) * pixel_spacing).astype(np.float32)
    ys = ((np.arange(rows) - (rows - 1) / 2.0) * pixel_spacing).astype(np.float32)
    zs = np.asarray(slice_z, dtype=np.float32).reshape(-1)
    # The skin bumps must stay the first draw: lesion_masks repeats it to find the brain edge.
    bumps = SmoothField(rng, zs, ys, xs, 70.0)
    gs = p.gyrus_scale
    tex = Textures(
        bumps=bumps,
        sulci=_angular_table(rng, (72, 240), (1.4 * gs, 1.9 * gs)),
        sulcal_depth=_angular_table(rng, (24, 48), (1.5, 2.0)),
        cells=SmoothField(rng, zs, ys, xs, 9.0),
    )
    vol = np.full((zs.size, rows, cols), AIR_HU, dtype=np.float32)
    reach = max(p.semi_axes) * 1.12 + 18.0  # skin + bumps + head holder, mm
    for k0 in range(0, zs.size, chunk):
        zsl = slice(k0, min(k0 + chunk, zs.size))
        box = head_bounding_box(p, xs, ys, zs[zsl], reach)
        if box is None:
            continue
        ysl, xsl = box
        vol[zsl, ysl, xsl] = _render_block(p, tex, (zsl, ysl, xsl), xs[xsl], ys[ysl], zs[zsl])

    # Fine texture: trabecular bone in the skull, faint mottling in soft tissue.
    fine = ndimage.gaussian_filter(
        rng.standard_normal(vol.shape, dtype=np.float32), sigma=(0.5, 1.2, 1.2), truncate=2.0
    )
    fine *= np.float32(1.0 / (fine.std() + 1e-6))
    bone = vol > 300.0
    vol[bone] += (0.12 * p.bone_hu) * fine[bone]
    soft = (vol > -200.0) & (vol < 150.0)
    vol[soft] += 1.3 * fine[soft]
    del fine, bone, soft
    # Scanner: blur (PSF and slice profile), then quantum noise with CT's band-pass texture
    # (filtered back-projection: little power at the lowest and highest frequencies, so a
    # grainy mottle about 2-4 pixels across), scaled in mm so it looks alike at any matrix.
    vol = ndimage.gaussian_filter(vol, sigma=(0.35, 0.6, 0.6), truncate=2.5)
    noise = rng.standard_normal(vol.shape, dtype=np.float32)
    s1, s2 = 0.55 / pixel_spacing, 2.2 / pixel_spacing
    noise = ndimage.gaussian_filter(noise, (0.0, s1, s1)) - ndimage.gaussian_filter(
        noise, (0.0, s2, s2)
    )
    noise *= np.float32(1.0 / (noise.std() + 1e-6))
    vol += (1.6 * p.noise_hu) * noise
    np.clip(vol, -1024.0, 3071.0, out=vol)
    return vol


def head_bounding_box(
    p: HeadParams, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray, reach: float
) -> tuple[slice, slice] | None:
    """In-plane index ranges that can hold the head (plus margin) for slices at ``zs``."""
    # Sample the enlarged head ellipsoid's surface and keep the part near these slices.
    t, ph = np.meshgrid(np.linspace(0, 2 * np.pi, 96), np.linspace(-np.pi / 2, np.pi / 2, 48))
    a, b, c = (s * 1.12 + 18.0 for s in p.semi_axes)
    pts = np.stack([a * np.cos(ph) * np.cos(t), b * np.cos(ph) * np.sin(t), c * np.sin(ph)])
    world = rotation(p.yaw, p.pitch, p.roll) @ pts.reshape(3, -1) + np.reshape(p.center, (3, 1))
    near = (world[2] > zs.min() - 8.0) & (world[2] < zs.max() + 8.0)
    if not near.any():
        return None
    x, y = world[0][near], world[1][near]
    step = float(xs[1] - xs[0]) if xs.size > 1 else 1.0
    c0 = int(np.clip(np.searchsorted(xs, x.min() - 2 * step), 0, xs.size))
    c1 = int(np.clip(np.searchsorted(xs, x.max() + 2 * step), 0, xs.size))
    r0 = int(np.clip(np.searchsorted(ys, y.min() - 2 * step), 0, ys.size))
    r1 = int(np.clip(np.searchsorted(ys, y.max() + 2 * step), 0, ys.size))
    if c1 <= c0 or r1 <= r0:
        return None
    return slice(r0, r1), slice(c0, c1)


@dataclass
class HeadGeometry:
    """Where a block of the grid lies in the head: head-frame coordinates (mm) and the depths
    of the skin, skull, subdural space and cortex. Shared by the rendering and the lesion
    masks, so that their brain edges agree."""

    u: np.ndarray
    v: np.ndarray
    w: np.ndarray
    depth: np.ndarray  # ≈ mm inside the skin (negative outside)
    rad: np.ndarray
    lateral: np.ndarray
    scalp: np.ndarray
    inner_skull: np.ndarray
    subdural: np.ndarray | None
    cortex_depth: np.ndarray  # > 0 inside the brain


def head_geometry(
    p: HeadParams, bumps: np.ndarray, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray
) -> HeadGeometry:
    """The head geometry of the block with axes ``xs``, ``ys``, ``zs`` (world mm)."""
    rot = rotation(p.yaw, p.pitch, p.roll).T.astype(np.float32)  # world → head
    dx = (xs - p.center[0])[None, None, :]
    dy = (ys - p.center[1])[None, :, None]
    dz = (zs - p.center[2])[:, None, None]
    u = rot[0, 0] * dx + rot[0, 1] * dy + rot[0, 2] * dz
    v = rot[1, 0] * dx + rot[1, 1] * dy + rot[1, 2] * dz
    w = rot[2, 0] * dx + rot[2, 1] * dy + rot[2, 2] * dz

    # Outer head surface: an ellipsoid, wider at the back, with gentle irregular bumps.
    a, b, c = p.semi_axes
    a_eff = a * (1.0 + 0.07 * np.clip(v / b, -1.0, 1.0))
    f = ((u / a_eff) ** 2 + (v / b) ** 2 + (w / c) ** 2) * (1.0 + 0.025 * bumps)
    grad = 2.0 * np.sqrt((u / a**2) ** 2 + (v / b**2) ** 2 + (w / c**2) ** 2) + 1e-6
    depth = (1.0 - f) / grad  # ≈ mm inside the skin (negative outside)

    rad = np.sqrt(u * u + v * v + w * w) + 1e-3
    lateral = (u / rad) ** 2
    # Temporalis muscle thickens the scalp over the temples, below the vertex.
    low = 1.0 / (1.0 + np.exp((w - 0.4 * c) / 6.0))
    front = 1.0 / (1.0 + np.exp((v - 0.25 * b) / 8.0))
    scalp = p.scalp_mm * (1.0 + 1.3 * lateral * low * front)
    # Direction-dependent skull: thinner over the temples, thicker front and back.
    skull = p.skull_mm * (1.0 - 0.45 * lateral + 0.15 * (v / rad) ** 2) * (1.0 + 0.08 * bumps)
    inner_skull = scalp + skull
    subdural = subdural_thickness(u, v, w, rad, p.lesions)
    brain_top = inner_skull + p.csf_mm + (subdural if subdural is not None else 0.0)
    cortex_depth = depth - brain_top
    return HeadGeometry(u, v, w, depth, rad, lateral, scalp, inner_skull, subdural, cortex_depth)


def _render_block(
    p: HeadParams,
    tex: Textures,
    where: tuple[slice, slice, slice],
    xs: np.ndarray,
    ys: np.ndarray,
    zs: np.ndarray,
) -> np.ndarray:
    """Noise-free anatomy (HU) of one block of the grid."""
    bumps = tex.bumps.block(*where)
    g = head_geometry(p, bumps, xs, ys, zs)
    u, v, w, depth, rad, lateral = g.u, g.v, g.w, g.depth, g.rad, g.lateral
    scalp, inner_skull, subdural, cortex_depth = g.scalp, g.inner_skull, g.subdural, g.cortex_depth
    b = p.semi_axes[1]

    out = np.full(u.shape, AIR_HU, dtype=np.float32)
    # Head holder: foam pad and a plastic shell behind the occiput.
    behind = v > 0.45 * b
    out[behind & (depth > -8.0) & (depth <= 0)] = -110.0
    out[behind & (depth > -11.5) & (depth <= -8.0)] = 140.0
    out[depth > 0] = p.grey_hu - 4.0
    out[(depth > 1.0) & (depth < 0.4 * scalp) & (lateral < 0.5)] = -70.0  # subcutaneous fat
    in_skull = (depth > scalp) & (depth <= inner_skull)
    table = (depth - scalp < 1.6) | (inner_skull - depth < 1.3)
    out[in_skull] = np.where(table, np.float32(p.bone_hu), np.float32(0.45 * p.bone_hu))[in_skull]
    del table, in_skull
    out[(depth > inner_skull) & (cortex_depth <= 0)] = 6.0
    if subdural is not None:
        hu = next(les.hu for les in p.lesions if les.kind == "subdural")
        out[(depth > inner_skull + 0.3) & (depth <= inner_skull + subdural)] = hu

    brain = cortex_depth > 0
    out[brain] = p.white_hu
    cortex(out, brain, u, v, w, rad, cortex_depth, p, tex)
    bu, bv, bw = mass_effect(u, v, w, p.lesions)
    deep = bounding_box(
        brain & (np.abs(bu) < 55.0) & (np.abs(bv) < 62.0) & (np.abs(bw + 5.0) < 45.0)
    )
    if deep is not None:
        deep_structures(out[deep], brain[deep], bu[deep], bv[deep], bw[deep], p)
    if tex.cells is not None:
        skull_base(out, brain, u, v, w, p, tex.cells.block(*where))
    lesions(out, brain, u, v, w, p)
    return out
