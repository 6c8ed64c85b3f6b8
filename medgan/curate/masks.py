"""Mask checks for image + mask pairs: plausibility against the real masks, and copies.

Plausibility (per synthetic slice): the mask lies inside the body (pixels above the foreground
level, holes filled), and for every segment present its area and number of connected
components lie within the range seen on the real masks (with a relative ``margin``). A mask
that fails carries the reason. Copy check: the best Dice of each non-empty synthetic mask
with any non-empty real mask (all training slices, not only its class); at or above
``copy_dice`` the pair counts as memorized (the image guard runs separately).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

FOREGROUND_LEVEL = -0.9  # the same foreground level as medgan.curate.score
INSIDE_BODY_MIN = 0.95  # share of mask pixels that must lie inside the body
COPY_DICE = 0.95
COPY_MIN_AREA = 16  # pixels: tiny masks coincide by chance


@dataclass(frozen=True)
class SegmentRange:
    """Area (pixels) and component counts of one segment over the real slices showing it."""

    area_min: int
    area_max: int
    components_min: int
    components_max: int
    n_real: int


@dataclass
class MaskRanges:
    """What real masks look like, per segment value (1..K)."""

    segments: dict[int, SegmentRange] = field(default_factory=dict)
    margin: float = 0.25

    def to_dict(self, segment_names: tuple[str, ...] = ()) -> dict[str, Any]:
        def name(k: int) -> str:
            return segment_names[k - 1] if 0 < k <= len(segment_names) else str(k)

        return {
            "margin": self.margin,
            "inside_body_min": INSIDE_BODY_MIN,
            "segments": {name(k): vars(r) for k, r in self.segments.items()},
        }


def _components(binary: np.ndarray) -> int:
    from scipy import ndimage

    return int(ndimage.label(binary)[1])


def body(image: np.ndarray, level: float = FOREGROUND_LEVEL) -> np.ndarray:
    """Pixels inside the body: above the foreground level, holes filled."""
    from scipy import ndimage

    return np.asarray(ndimage.binary_fill_holes(image > level), dtype=bool)


def mask_ranges(real_masks: np.ndarray, *, margin: float = 0.25) -> MaskRanges:
    """Area and component ranges per segment value over the real masks."""
    masks = np.asarray(real_masks, np.uint8)
    out: dict[int, SegmentRange] = {}
    for k in (int(v) for v in np.unique(masks) if v > 0):
        areas, comps = [], []
        for m in masks:
            seg = m == k
            if seg.any():
                areas.append(int(seg.sum()))
                comps.append(_components(seg))
        out[k] = SegmentRange(min(areas), max(areas), min(comps), max(comps), len(areas))
    return MaskRanges(out, margin)


def mask_plausibility(
    masks: np.ndarray,
    images: np.ndarray,
    ranges: MaskRanges,
    segment_names: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Per slice: ``mask_inside_body`` (share), ``mask_area``, ``mask_components``,
    ``mask_plausible`` (bool) and ``reasons`` (a sentence where implausible)."""
    masks = np.asarray(masks, np.uint8)
    n = len(masks)
    inside = np.ones(n, np.float32)
    area = np.zeros(n, np.int64)
    comps = np.zeros(n, np.int64)
    ok = np.ones(n, bool)
    reasons: list[str] = ["" for _ in range(n)]
    m = ranges.margin

    def name(k: int) -> str:
        return segment_names[k - 1] if 0 < k <= len(segment_names) else f"segment {k}"

    for i in range(n):
        fg = masks[i] > 0
        area[i] = int(fg.sum())
        if not area[i]:
            continue
        why = []
        inside[i] = float((fg & body(images[i])).sum()) / area[i]
        if inside[i] < INSIDE_BODY_MIN:
            why.append(f"{100 * (1 - inside[i]):.0f}% of the mask lies outside the body")
        comps[i] = _components(fg)
        for k in (int(v) for v in np.unique(masks[i]) if v > 0):
            seg = masks[i] == k
            a, c = int(seg.sum()), _components(seg)
            r = ranges.segments.get(k)
            if r is None:
                why.append(f"{name(k)} never appears in the real masks")
                continue
            if not (1 - m) * r.area_min <= a <= (1 + m) * r.area_max:
                why.append(
                    f"{name(k)} area {a} px outside the real range {r.area_min}-{r.area_max}"
                )
            if (
                not r.components_min
                <= c
                <= max(r.components_max, round((1 + m) * r.components_max))
            ):
                why.append(
                    f"{name(k)} has {c} pieces (real: {r.components_min}-{r.components_max})"
                )
        if why:
            ok[i] = False
            reasons[i] = "implausible mask: " + "; ".join(why)
    return {
        "mask_inside_body": inside,
        "mask_area": area,
        "mask_components": comps,
        "mask_plausible": ok,
        "reasons": reasons,
    }


def best_mask_dice(
    masks: np.ndarray, real_masks: np.ndarray, *, chunk: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Per synthetic mask, the best Dice (foreground vs foreground) with any non-empty real mask
    and that real slice's index (-1 when either is empty)."""
    syn = (np.asarray(masks) > 0).reshape(len(masks), -1).astype(np.float32)
    real = (np.asarray(real_masks) > 0).reshape(len(real_masks), -1).astype(np.float32)
    best = np.zeros(len(syn), np.float32)
    where = np.full(len(syn), -1, np.int64)
    real_area = real.sum(1)
    nonempty = np.flatnonzero(real_area > 0)
    if not len(nonempty) or not len(syn):
        return best, where
    r, ra = real[nonempty], real_area[nonempty]
    for lo in range(0, len(syn), chunk):
        s = syn[lo : lo + chunk]
        sa = s.sum(1)
        dice = 2.0 * (s @ r.T) / np.maximum(sa[:, None] + ra[None, :], 1.0)
        dice[sa == 0] = 0.0
        j = dice.argmax(1)
        best[lo : lo + chunk] = dice[np.arange(len(s)), j]
        where[lo : lo + chunk] = np.where(sa > 0, nonempty[j], -1)
    return best, where


__all__ = [
    "MaskRanges",
    "SegmentRange",
    "best_mask_dice",
    "body",
    "mask_plausibility",
    "mask_ranges",
]
