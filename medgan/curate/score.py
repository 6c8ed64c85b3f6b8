"""Per-slice scores for generated images: realism, memorization risk, duplicates, intensity sanity.

``score_samples`` returns a :class:`ScoreTable` (numpy columns, one row per synthetic slice) that
the filters, the exporter's manifest and the GUI's gallery all read. Columns:

- ``realism``: the final discriminator's score as a probability (sigmoid of its logit) when a
  discriminator or ``realism_fn`` is given, otherwise ``typicality``; ``realism_source`` says which.
- ``d_logit``: raw discriminator logit (NaN without one).
- ``typicality``: distance to the real distribution — the share of real slices whose nearest
  real neighbour (other patient) is at least as far as this sample's nearest training slice
  (robust space). ~0.5 for typical samples, near 0 for outliers.
- ``nn_pixel_distance`` / ``nn_pixel_index``, ``nn_robust_distance`` / ``nn_robust_index``:
  nearest training slice in both spaces (RMS distance on the [-1, 1] scale).
- ``memorization_risk``: 1 - (share of real cross-patient pairs at least this close), max over the
  two spaces; ``memorized``: under the calibrated threshold in either space.
- ``nn_synthetic_distance`` / ``nn_synthetic_index`` / ``duplicate_group`` (-1 = none):
  near-duplicates among the synthetic slices (robust space).
- ``out_of_range_fraction``, ``foreground_fraction``, ``empty``: intensity sanity.

Example::

    scores = score_samples(generated.images, training.images,
                           training_patient_keys=training.patient_keys,
                           discriminator=load_model("model.safetensors"))
    scores["memorized"].sum(), scores.calibration.to_dict()
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medgan.core.device import resolve_device
from medgan.core.errors import DataError
from medgan.core.fileio import atomic_write_text
from medgan.curate.realism import RealismFn, batched_logits, discriminator_realism
from medgan.metrics.memorization import MemorizationCalibration, calibrate_memorization
from medgan.metrics.nn_search import nearest_neighbours

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]

#: Column names in display order.
COLUMNS: tuple[str, ...] = (
    "index",
    "realism",
    "d_logit",
    "typicality",
    "memorization_risk",
    "memorized",
    "nn_pixel_distance",
    "nn_pixel_index",
    "nn_robust_distance",
    "nn_robust_index",
    "nn_synthetic_distance",
    "nn_synthetic_index",
    "duplicate_group",
    "out_of_range_fraction",
    "foreground_fraction",
    "empty",
)

OUT_OF_RANGE_TOLERANCE = 1e-3
FOREGROUND_LEVEL = -0.9  # 5 % of the window above its bottom
_PROGRESS_TOTAL = 1000


@dataclass
class ScoreTable:
    """One row per synthetic slice; columns are numpy arrays (see the module docstring)."""

    columns: dict[str, np.ndarray]
    calibration: MemorizationCalibration
    realism_source: str  # "discriminator", "function" or "distance"
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.columns["index"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __getattr__(self, name: str) -> np.ndarray:
        columns = self.__dict__.get("columns")
        if columns is not None and name in columns:
            return columns[name]
        raise AttributeError(name)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.to_records())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c for c in COLUMNS if c in self.columns) + tuple(
            c for c in self.columns if c not in COLUMNS
        )

    def subset(self, mask_or_indices: np.ndarray) -> ScoreTable:
        """Rows selected by a boolean mask or index array (the ``index`` column is kept)."""
        sel = np.asarray(mask_or_indices)
        return ScoreTable(
            {k: v[sel] for k, v in self.columns.items()},
            self.calibration,
            self.realism_source,
            dict(self.settings),
        )

    def to_records(self) -> list[dict[str, Any]]:
        """Plain-Python rows (NaN/inf become None), ready for CSV/JSON/the GUI."""
        names = self.names
        cols = [self.columns[n].tolist() for n in names]
        return [
            {n: _clean(v) for n, v in zip(names, row, strict=True)}
            for row in zip(*cols, strict=True)
        ]

    def calibration_dict(self) -> dict[str, Any]:
        """Thresholds and settings used, for the manifest."""
        return {
            "realism_source": self.realism_source,
            "memorization": self.calibration.to_dict(),
            **self.settings,
        }

    def to_json(self, path: str | None = None, *, indent: int | None = None) -> str:
        """The table (records + calibration) as JSON; written atomically when ``path`` is given."""
        text = json.dumps(
            {"calibration": self.calibration_dict(), "scores": self.to_records()},
            indent=indent,
            allow_nan=False,
        )
        if path is not None:
            atomic_write_text(path, text)
        return text


def calibration_of(scores: ScoreTable) -> dict[str, Any]:
    """The thresholds and settings behind a score table (for the manifest)."""
    return scores.calibration_dict()


def score_samples(
    synthetic: np.ndarray,
    training: np.ndarray,
    *,
    training_patient_keys: np.ndarray | list[str] | None = None,
    realism: np.ndarray | RealismFn | None = None,
    realism_fn: RealismFn | None = None,
    discriminator: Any = None,
    calibration: MemorizationCalibration | None = None,
    quantile: float = 0.05,
    duplicate_quantile: float = 0.01,
    empty_threshold: float = 0.02,
    seed: int = 0,
    device: str = "auto",
    memory_budget: int | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ScoreTable:
    """Score every synthetic slice against the training set.

    Args:
        synthetic: (N, R, R) float32 in [-1, 1].
        training: (M, R, R) float32 in [-1, 1], the slices the model learned from.
        training_patient_keys: hashed patient key per training slice; calibrates thresholds
            across patients (strongly recommended).
        realism: precomputed probabilities (N,) or a callable like ``realism_fn``.
        realism_fn: images (B, R, R) → logits (B,) (e.g. :func:`discriminator_realism`).
        discriminator: a loaded model (``medgan.models.modelfile.LoadedModel``), a model path, or a
            torch discriminator module; its logits become the realism score.
        calibration: reuse thresholds from an earlier call (same training set).
        quantile / duplicate_quantile: see :mod:`medgan.metrics.memorization`.
        empty_threshold: a slice with less foreground than this share is "empty".
        progress: ``progress(done, total)``; cancel: ``threading.Event``.
    """
    syn = _stack(synthetic, "synthetic")
    train = _stack(training, "training")
    if len(train) and syn.shape[1:] != train.shape[1:]:
        raise DataError(
            f"Synthetic slices are {syn.shape[1]}x{syn.shape[2]} but training slices are "
            f"{train.shape[1]}x{train.shape[2]}.",
            advice="Build the training set at the model's resolution.",
        )
    n = len(syn)
    dev = str(resolve_device(device))
    weights = {"calibrate": 0.3 if calibration is None else 0.0, "pixel": 0.35, "robust": 0.15,
               "synthetic": 0.1, "realism": 0.1}  # fmt: skip
    tracker = _Progress(progress, weights)

    cal = calibration or calibrate_memorization(
        train, training_patient_keys, quantile=quantile, duplicate_quantile=duplicate_quantile,
        seed=seed, device=dev, memory_budget=memory_budget,
        progress=tracker.stage("calibrate"), cancel=cancel,
    )  # fmt: skip
    pix = nearest_neighbours(syn, train, space="pixel", device=dev, memory_budget=memory_budget,
                             progress=tracker.stage("pixel"), cancel=cancel)  # fmt: skip
    rob = nearest_neighbours(syn, train, space="robust", device=dev, memory_budget=memory_budget,
                             progress=tracker.stage("robust"), cancel=cancel)  # fmt: skip
    if n > 1:
        dup = nearest_neighbours(syn, syn, space="robust", exclude_self=True, device=dev,
                                 memory_budget=memory_budget,
                                 progress=tracker.stage("synthetic"), cancel=cancel)  # fmt: skip
        dup_d, dup_i = dup.distances, dup.indices
    else:
        dup_d, dup_i = np.full(n, np.inf, np.float32), np.full(n, -1, np.int64)
    groups = duplicate_groups(dup_d, dup_i, cal.duplicate_threshold)

    logits = np.full(n, np.nan, np.float32)
    source = "distance"
    fn = realism_fn
    if isinstance(realism, np.ndarray) or isinstance(realism, list):
        probs = np.asarray(realism, np.float64).astype(np.float32)
        if probs.shape != (n,):
            raise ValueError(f"realism has shape {probs.shape}, expected ({n},)")
        source = "given"
    else:
        if callable(realism):
            fn = realism
        if fn is None and discriminator is not None:
            fn = discriminator_realism(discriminator, device=dev)
            source = "discriminator"
        probs = np.full(n, np.nan, np.float32)
        if fn is not None:
            source = "discriminator" if source == "discriminator" else "function"
            logits = batched_logits(fn, syn, cancel, tracker.stage("realism"))
            probs = (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)
    typ = (1.0 - cal.robust_cdf(rob.distances)).astype(np.float32)
    if source == "distance":
        probs = typ.copy()
    risk = 1.0 - np.minimum(cal.pixel_cdf(pix.distances), cal.robust_cdf(rob.distances))
    oor, fg = intensity_sanity(syn)
    columns = {
        "index": np.arange(n, dtype=np.int64),
        "realism": probs.astype(np.float32),
        "d_logit": logits.astype(np.float32),
        "typicality": typ,
        "memorization_risk": risk.astype(np.float32),
        "memorized": cal.is_memorized(pix.distances, rob.distances),
        "nn_pixel_distance": pix.distances,
        "nn_pixel_index": pix.indices,
        "nn_robust_distance": rob.distances,
        "nn_robust_index": rob.indices,
        "nn_synthetic_distance": dup_d.astype(np.float32),
        "nn_synthetic_index": dup_i.astype(np.int64),
        "duplicate_group": groups,
        "out_of_range_fraction": oor,
        "foreground_fraction": fg,
        "empty": fg < empty_threshold,
    }
    tracker.finish()
    log.info(
        "Scored %d slices against %d training slices: %d memorized, %d in duplicate groups, "
        "%d empty (realism from %s)", n, len(train), int(columns["memorized"].sum()),
        int((groups >= 0).sum()), int(columns["empty"].sum()), source,
    )  # fmt: skip
    settings = {"empty_threshold": empty_threshold, "foreground_level": FOREGROUND_LEVEL,
                "out_of_range_tolerance": OUT_OF_RANGE_TOLERANCE}  # fmt: skip
    return ScoreTable(columns, cal, source, settings)


def intensity_sanity(images: np.ndarray, *, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per slice: share of pixels out of [-1, 1] (or not finite), and share of foreground."""
    n = len(images)
    oor = np.zeros(n, np.float32)
    fg = np.zeros(n, np.float32)
    for s in range(0, n, batch):
        x = images[s : s + batch].reshape(min(batch, n - s), -1)
        finite = np.isfinite(x)
        with np.errstate(invalid="ignore"):
            bad = ~finite | (x < -1 - OUT_OF_RANGE_TOLERANCE) | (x > 1 + OUT_OF_RANGE_TOLERANCE)
            oor[s : s + batch] = bad.mean(1)
            fg[s : s + batch] = (finite & (x > FOREGROUND_LEVEL)).mean(1)
    return oor, fg


def duplicate_groups(nn_distance: np.ndarray, nn_index: np.ndarray, threshold: float) -> np.ndarray:
    """Connected components of the "nearest synthetic neighbour within ``threshold``" graph.

    Returns a group id per slice (0, 1, ... in order of first member), -1 for slices with no
    near-duplicate.
    """
    n = len(nn_distance)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return int(i)

    for j in np.flatnonzero((np.asarray(nn_distance) <= threshold) & (np.asarray(nn_index) >= 0)):
        a, b = find(int(j)), find(int(nn_index[j]))
        if a != b:
            parent[max(a, b)] = min(a, b)
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    sizes = np.bincount(roots, minlength=n)
    out = np.full(n, -1, np.int64)
    next_id = 0
    ids: dict[int, int] = {}
    for i in range(n):
        r = int(roots[i])
        if sizes[r] > 1:
            if r not in ids:
                ids[r] = next_id
                next_id += 1
            out[i] = ids[r]
    return out


# --------------------------------------------------------------------------------------------
class _Progress:
    """Maps per-stage (done, total) onto one 0..1000 progress bar."""

    def __init__(self, callback: ProgressFn | None, weights: dict[str, float]) -> None:
        self.callback = callback
        total = sum(weights.values()) or 1.0
        self.starts: dict[str, float] = {}
        acc = 0.0
        for k, w in weights.items():
            self.starts[k] = acc / total
            acc += w
        self.weights = {k: w / total for k, w in weights.items()}

    def stage(self, name: str) -> ProgressFn | None:
        if self.callback is None:
            return None
        cb, start, weight = self.callback, self.starts[name], self.weights[name]
        return lambda done, total: cb(
            int(_PROGRESS_TOTAL * (start + weight * done / max(total, 1))), _PROGRESS_TOTAL
        )

    def finish(self) -> None:
        if self.callback is not None:
            self.callback(_PROGRESS_TOTAL, _PROGRESS_TOTAL)


def _stack(images: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise DataError(f"Expected {what} slices as (N, H, W); got shape {arr.shape}.")
    return np.ascontiguousarray(arr)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
