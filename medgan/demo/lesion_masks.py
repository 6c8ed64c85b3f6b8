"""Ground-truth lesion masks of the head phantom, on the same grid as :func:`render_head`.

The label volume repeats the geometry :mod:`medgan.demo.phantom` and :mod:`medgan.demo.anatomy`
paint lesions with (head frame, skin depth with its bumps, skull, the subdural crescent, the
brain, each lesion's core or wedge), without the anatomy, blur or noise. Value 0 is background,
``k`` is ``LESION_KINDS[k - 1]``; oedema is not part of a lesion. Later lesions win where they
overlap, as in the rendering.
"""

from __future__ import annotations

import numpy as np

from medgan.demo.anatomy import ellipsoid
from medgan.demo.params import LESION_KINDS, HeadParams, SmoothField
from medgan.demo.phantom import head_bounding_box, head_geometry

_CHUNK = 8


def lesion_label_volume(
    p: HeadParams, *, rows: int, cols: int, pixel_spacing: float, slice_z: np.ndarray
) -> np.ndarray:
    """uint8 (len(slice_z), rows, cols): 0 background, 1..4 = index in LESION_KINDS + 1."""
    xs = ((np.arange(cols) - (cols - 1) / 2.0) * pixel_spacing).astype(np.float32)
    ys = ((np.arange(rows) - (rows - 1) / 2.0) * pixel_spacing).astype(np.float32)
    zs = np.asarray(slice_z, dtype=np.float32).reshape(-1)
    out = np.zeros((zs.size, rows, cols), np.uint8)
    if not p.lesions:
        return out
    # The same first draw as render_head, so the skin bumps (hence the brain edge) agree.
    bumps = SmoothField(np.random.default_rng(p.texture_seed), zs, ys, xs, 70.0)
    reach = max(p.semi_axes) * 1.12 + 18.0  # the same crop as render_head: the head's box
    for k0 in range(0, zs.size, _CHUNK):
        zsl = slice(k0, min(k0 + _CHUNK, zs.size))
        box = head_bounding_box(p, xs, ys, zs[zsl], reach)
        if box is None:
            continue
        ysl, xsl = box
        out[zsl, ysl, xsl] = _block(p, bumps.block(zsl, ysl, xsl), xs[xsl], ys[ysl], zs[zsl])
    return out


def _block(
    p: HeadParams, bumps: np.ndarray, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray
) -> np.ndarray:
    g = head_geometry(p, bumps, xs, ys, zs)
    u, v, w, depth, inner_skull, subdural = g.u, g.v, g.w, g.depth, g.inner_skull, g.subdural
    brain = g.cortex_depth > 0
    labels = np.zeros(u.shape, np.uint8)
    if subdural is not None:
        labels[(depth > inner_skull + 0.3) & (depth <= inner_skull + subdural)] = (
            LESION_KINDS.index("subdural") + 1
        )
    for les in p.lesions:
        if les.kind == "subdural":
            continue
        value = LESION_KINDS.index(les.kind) + 1
        if les.kind == "infarct":
            cu, cv, cw = les.center
            d = np.array([cu, cv * 0.6, cw * 0.6 + 10.0], dtype=np.float32)
            d /= np.linalg.norm(d)
            du, dv, dw = u - cu, v - cv, w - cw
            dist = np.sqrt(du * du + dv * dv + dw * dw) + 1e-3
            cos = (du * d[0] + dv * d[1] + dw * d[2]) / dist
            labels[brain & (cos > np.cos(np.deg2rad(24.0))) & (dist < les.radius + 40.0)] = value
            continue
        e = ellipsoid(u, v, w, les.center, (les.radius, les.radius * 1.15, les.radius * 0.9))
        labels[brain & (e < 1)] = value
    return labels
