"""Memorization: thresholds calibrated on real-versus-real distances, and the memorization rate.

A synthetic slice is suspicious when it is closer to a training slice than real slices are to
each other *across patients*: for every (sub-sampled) training slice we find its nearest
training slice belonging to another patient, in the pixel and in the robust space
(:mod:`medgan.metrics.nn_search`). The ``quantile`` (default 5th percentile) of those distances is the
memorization threshold; a much lower quantile (default 1st percentile, robust space) is the
threshold for calling two synthetic slices near-duplicates, after scaling by
``duplicate_factor`` (default 0.5): adjacent slices of one patient are legitimately closer than
slices of different patients, so only pairs far closer than that are duplicates (in the robust
space 0.5 of a correlation-distance of ~0.45 means a correlation above ~0.97).

Without patient keys, the nearest *other* slice is used instead (adjacent slices of one patient
are very similar, so thresholds get stricter and fewer samples are flagged); a warning says so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medgan.core.errors import DataError
from medgan.metrics.nn_search import Space, nearest_neighbours

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class MemorizationCalibration:
    """Thresholds (RMS distances on the [-1, 1] scale) and the real-vs-real distances behind them."""

    quantile: float
    duplicate_quantile: float
    duplicate_factor: float
    pixel_threshold: float
    robust_threshold: float
    duplicate_threshold: float
    n_training: int
    n_calibration: int
    n_patients: int | None
    cross_patient: bool
    seed: int
    pixel_distances: np.ndarray = field(repr=False)  # sorted real-vs-real NN distances
    robust_distances: np.ndarray = field(repr=False)

    def pixel_cdf(self, d: np.ndarray) -> np.ndarray:
        """Share of real-vs-real pixel distances at or below ``d`` (0 = closer than any real pair)."""
        return _ecdf(self.pixel_distances, d)

    def robust_cdf(self, d: np.ndarray) -> np.ndarray:
        """Share of real-vs-real robust distances at or below ``d``."""
        return _ecdf(self.robust_distances, d)

    def is_memorized(self, pixel_d: np.ndarray, robust_d: np.ndarray) -> np.ndarray:
        """True where a sample is at or under the threshold in either space."""
        return (np.asarray(pixel_d) <= self.pixel_threshold) | (
            np.asarray(robust_d) <= self.robust_threshold
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record for manifests (thresholds, method, summary of the distances)."""

        def pct(a: np.ndarray) -> dict[str, float]:
            if len(a) == 0:
                return {}
            qs = np.percentile(a, [1, 5, 50, 95])
            return {f"p{p}": round(float(v), 6) for p, v in zip((1, 5, 50, 95), qs, strict=True)}

        return {
            "method": "nearest training slice of another patient"
            if self.cross_patient
            else "nearest other training slice (no patient keys)",
            "quantile": self.quantile,
            "duplicate_quantile": self.duplicate_quantile,
            "duplicate_factor": self.duplicate_factor,
            "pixel_threshold": round(self.pixel_threshold, 6),
            "robust_threshold": round(self.robust_threshold, 6),
            "duplicate_threshold": round(self.duplicate_threshold, 6),
            "distance": "RMS per pixel on the [-1, 1] scale; robust = blurred, <=32x32, "
            "standardised per image",
            "n_training": self.n_training,
            "n_calibration": self.n_calibration,
            "n_patients": self.n_patients,
            "cross_patient": self.cross_patient,
            "seed": self.seed,
            "real_pixel_distances": pct(self.pixel_distances),
            "real_robust_distances": pct(self.robust_distances),
        }


def calibrate_memorization(
    training: np.ndarray,
    patient_keys: np.ndarray | list[str] | None = None,
    *,
    quantile: float = 0.05,
    duplicate_quantile: float = 0.01,
    duplicate_factor: float = 0.5,
    max_queries: int = 1000,
    seed: int = 0,
    device: str = "auto",
    memory_budget: int | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> MemorizationCalibration:
    """Real-vs-real nearest-neighbour distances (across patients) and the thresholds from them.

    Up to ``max_queries`` training slices (seeded choice) are compared with the whole
    training set, so the cost stays bounded for large sets.
    """
    training = np.asarray(training, dtype=np.float32)
    n = len(training)
    if n < 2:
        raise DataError(
            "At least two training slices are needed to calibrate the memorization guard.",
            advice="Add more slices to the training set.",
        )
    if not (0.0 < quantile < 1.0 and 0.0 < duplicate_quantile < 1.0):
        raise ValueError("quantiles must lie strictly between 0 and 1")
    groups: np.ndarray | None = None
    n_patients: int | None = None
    if patient_keys is not None:
        keys = np.asarray(patient_keys)
        if len(keys) != n:
            raise ValueError(f"{len(keys)} patient keys for {n} training slices")
        _, groups = np.unique(keys, return_inverse=True)
        n_patients = int(groups.max()) + 1
        if n_patients < 2:
            log.warning(
                "All training slices come from one patient; the memorization threshold uses "
                "the nearest other slice of that patient and will be strict."
            )
            groups = None
    else:
        log.warning(
            "No patient keys given: calibrating the memorization guard on the nearest other "
            "slice, not across patients; thresholds will be strict."
        )
    rng = np.random.default_rng(seed)
    sel = np.sort(rng.choice(n, size=min(n, max_queries), replace=False))
    queries = training[sel]

    def stage(offset: int) -> ProgressFn | None:
        if progress is None:
            return None
        return lambda done, total: progress(offset * total + done, 2 * total)

    dists: dict[str, np.ndarray] = {}
    spaces: tuple[Space, Space] = ("pixel", "robust")
    for k, space in enumerate(spaces):
        if groups is not None:
            res = nearest_neighbours(
                queries, training, space=space, query_groups=groups[sel],
                reference_groups=groups, device=device, memory_budget=memory_budget,
                progress=stage(k), cancel=cancel,
            )  # fmt: skip
        else:
            # exclude each query's own row: compare against the full set with self masked
            own = np.full(n, -1, np.int64)
            own[sel] = np.arange(len(sel))
            res = nearest_neighbours(
                queries, training, space=space, query_groups=np.arange(len(sel)),
                reference_groups=own, device=device, memory_budget=memory_budget,
                progress=stage(k), cancel=cancel,
            )  # fmt: skip
        d = res.distances[np.isfinite(res.distances)]
        if len(d) == 0:
            raise DataError("Could not calibrate the memorization guard: no slice to compare.")
        dists[space] = np.sort(d.astype(np.float64))
    cal = MemorizationCalibration(
        quantile=quantile,
        duplicate_quantile=duplicate_quantile,
        duplicate_factor=duplicate_factor,
        pixel_threshold=float(np.quantile(dists["pixel"], quantile)),
        robust_threshold=float(np.quantile(dists["robust"], quantile)),
        duplicate_threshold=duplicate_factor
        * float(np.quantile(dists["robust"], duplicate_quantile)),
        n_training=n,
        n_calibration=len(sel),
        n_patients=n_patients,
        cross_patient=groups is not None,
        seed=seed,
        pixel_distances=dists["pixel"],
        robust_distances=dists["robust"],
    )
    log.info(
        "Memorization thresholds: pixel %.4f, robust %.4f (q=%.2f, %d slices, %s)",
        cal.pixel_threshold, cal.robust_threshold, quantile, len(sel),
        "across patients" if cal.cross_patient else "no patient keys",
    )  # fmt: skip
    return cal


def memorization_rate(
    synthetic: np.ndarray,
    training: np.ndarray,
    patient_keys: np.ndarray | list[str] | None = None,
    *,
    calibration: MemorizationCalibration | None = None,
    quantile: float = 0.05,
    seed: int = 0,
    device: str = "auto",
    cancel: threading.Event | None = None,
) -> tuple[float, MemorizationCalibration]:
    """Share of synthetic slices closer to a training slice than real slices are to each other.

    Returns the rate and the calibration used. A generator with no memorization scores about
    ``2 * quantile`` at most (two spaces), a copying one 1.0.
    """
    cal = calibration or calibrate_memorization(
        training, patient_keys, quantile=quantile, seed=seed, device=device, cancel=cancel
    )
    if len(synthetic) == 0:
        return 0.0, cal
    pix = nearest_neighbours(synthetic, training, space="pixel", device=device, cancel=cancel)
    rob = nearest_neighbours(synthetic, training, space="robust", device=device, cancel=cancel)
    return float(cal.is_memorized(pix.distances, rob.distances).mean()), cal


def _ecdf(sorted_ref: np.ndarray, d: np.ndarray) -> np.ndarray:
    if len(sorted_ref) == 0:
        return np.full(np.shape(d), np.nan)
    return np.searchsorted(sorted_ref, np.asarray(d, np.float64), side="right") / len(sorted_ref)
