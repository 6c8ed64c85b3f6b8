"""Find the scanned image a label or mask frame refers to: by SOP Instance UID (and frame),
by file path, or by frame of reference + plane position (for files that name no source).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medgan.dicom.records import SeriesRecord

_ORIENT_TOL = 1e-3


@dataclass(frozen=True)
class Hit:
    """One matched image: its series and index in the series' sorted images."""

    series_uid: str
    index: int


@dataclass
class _Stack:
    series: SeriesRecord
    normal: np.ndarray
    locations: np.ndarray  # slice position along the normal, per image (NaN when unknown)
    order: np.ndarray  # argsort of locations


def _normal(orientation: Sequence[float]) -> np.ndarray | None:
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    n = np.cross(row, col)
    norm = float(np.linalg.norm(n))
    return n / norm if norm > 1e-6 else None


class ImageLookup:
    """Indexes of the scanned images for matching (built once per scan, then O(1) look-ups)."""

    def __init__(self, series: Sequence[SeriesRecord], root: str | None = None) -> None:
        self.series = {s.series_uid: s for s in series}
        self.root = root
        self._sop: dict[tuple[str, int | None], Hit] = {}
        self._path: dict[tuple[str, int | None], Hit] = {}
        self._stacks: dict[str, list[_Stack]] = {}
        for s in series:
            for i, ref in enumerate(s.images):
                hit = Hit(s.series_uid, i)
                if ref.sop_instance_uid:
                    self._sop.setdefault((ref.sop_instance_uid, ref.frame), hit)
                self._path.setdefault((os.path.normcase(os.path.abspath(ref.path)), ref.frame), hit)

    # ------------------------------------------------------------------ by identity

    def by_sop(self, uid: str, frame: int | None = None) -> Hit | None:
        """``frame`` is 0-based (None for single-frame files, or any frame of a 1-frame file)."""
        hit = self._sop.get((uid, frame))
        if hit is None and frame in (None, 0):
            hit = self._sop.get((uid, None)) or self._sop.get((uid, 0))
        return hit

    def by_path(self, path: str, frame: int | None = None, base: str | None = None) -> Hit | None:
        candidates = [path]
        if not os.path.isabs(path):
            candidates = [os.path.join(b, path) for b in (base, self.root) if b] or [path]
        for p in candidates:
            key = os.path.normcase(os.path.abspath(p))
            hit = self._path.get((key, frame))
            if hit is None and frame in (None, 0):
                hit = self._path.get((key, None)) or self._path.get((key, 0))
            if hit is not None:
                return hit
        return None

    # ------------------------------------------------------------------ by geometry

    def _stacks_for(self, frame_of_reference: str) -> list[_Stack]:
        if frame_of_reference not in self._stacks:
            stacks = []
            for s in self.series.values():
                if s.frame_of_reference_uid != frame_of_reference or s.orientation is None:
                    continue
                normal = _normal(s.orientation)
                if normal is None:
                    continue
                locs = np.array(
                    [
                        np.dot(r.position, normal) if r.position is not None else np.nan
                        for r in s.images
                    ]
                )
                stacks.append(_Stack(s, normal, locs, np.argsort(locs)))
            self._stacks[frame_of_reference] = stacks
        return self._stacks[frame_of_reference]

    def by_plane(
        self,
        frame_of_reference: str,
        position: Sequence[float],
        orientation: Sequence[float],
        *,
        series_uids: Sequence[str] | None = None,
        tolerance_mm: float | None = None,
    ) -> Hit | None:
        """The image in the same frame of reference whose plane holds ``position``.

        Orientation must agree; the in-plane origin must agree within half a pixel and the
        slice position within ``tolerance_mm`` (default: a quarter of the slice spacing).
        """
        pos = np.asarray(position, float)
        for st in self._stacks_for(frame_of_reference):
            s = st.series
            if series_uids and s.series_uid not in series_uids:
                continue
            if (
                np.abs(np.asarray(s.orientation) - np.asarray(orientation, float)).max()
                > _ORIENT_TOL
            ):
                continue
            loc = float(np.dot(pos, st.normal))
            valid = st.order[~np.isnan(st.locations[st.order])]
            if valid.size == 0:
                continue
            locs = st.locations[valid]
            k = int(np.clip(np.searchsorted(locs, loc), 0, len(locs) - 1))
            best = min({k, max(k - 1, 0)}, key=lambda j: abs(locs[j] - loc))
            tol = tolerance_mm if tolerance_mm is not None else 0.25 * (s.slice_spacing or 1.0)
            if abs(locs[best] - loc) > max(tol, 0.01):
                continue
            index = int(valid[best])
            ref = s.images[index]
            pixel = min(s.pixel_spacing) if s.pixel_spacing else 1.0
            if (
                ref.position is not None
                and np.linalg.norm(np.asarray(ref.position) - pos) > 0.5 * pixel
            ):
                continue
            return Hit(s.series_uid, index)
        return None
