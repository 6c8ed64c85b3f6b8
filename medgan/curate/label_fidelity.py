"""Label fidelity: does a synthetic slice look like the class it was generated for?

A small CNN (two conv blocks on a 32x32 copy of the slice, a few thousand weights) is trained on
the real labelled slices and gives each synthetic slice the probability of its intended class.
Its own reliability is measured first by cross-validation **by patient** (no patient's slices
on both sides of a fold), so a high fidelity score means something only when
``cv_balanced_accuracy`` is well above chance. Classes are weighted by inverse frequency, so the
minority class (often the point of a labelled set) counts as much as the majority.

CPU-cheap: on the demo study at 64² (a few hundred slices) the cross-validation and the final
fit take seconds.

Example::

    fid = label_fidelity(train.images, train.labels, train.patient_keys,
                         generated.images, generated.labels, n_classes=len(train.class_names))
    fid.probability  # (N,) probability of the intended class
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medgan.core.errors import Cancelled, DataError

log = logging.getLogger(__name__)

INPUT_SIZE = 32


@dataclass(frozen=True)
class FidelityConfig:
    """Classifier settings (defaults: seconds on a CPU for a few hundred 64² slices)."""

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 3e-3
    folds: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.folds < 2:
            raise ValueError("epochs and batch_size must be >= 1 and folds >= 2")


@dataclass
class FidelityResult:
    """``probability``: per synthetic slice, the classifier's probability of its intended class;
    ``probabilities``: all classes (N, C); ``cv_*``: the classifier's patient-grouped
    cross-validated accuracy on real slices (NaN when there were too few patients)."""

    probability: np.ndarray  # float32 (N,)
    probabilities: np.ndarray  # float32 (N, C)
    predicted: np.ndarray  # int64 (N,)
    cv_accuracy: float
    cv_balanced_accuracy: float
    cv_per_class: dict[int, float] = field(default_factory=dict)
    n_folds: int = 0
    n_real: int = 0

    def summary(self, class_names: tuple[str, ...] = ()) -> dict[str, Any]:
        """JSON-ready facts about the classifier (for the manifest and the GUI)."""

        def name(k: int) -> str:
            return class_names[k] if k < len(class_names) else str(k)

        def num(v: float) -> float | None:
            return None if not np.isfinite(v) else round(float(v), 4)

        return {
            "classifier": f"small CNN on {INPUT_SIZE}x{INPUT_SIZE}, class-weighted",
            "n_real_slices": self.n_real,
            "cv_folds_by_patient": self.n_folds,
            "cv_accuracy": num(self.cv_accuracy),
            "cv_balanced_accuracy": num(self.cv_balanced_accuracy),
            "cv_recall_per_class": {name(k): num(v) for k, v in self.cv_per_class.items()},
        }


def _network(n_classes: int) -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(128, n_classes),
    )


def _prepare(images: np.ndarray) -> Any:
    import torch
    import torch.nn.functional as F  # noqa: N812

    x = torch.from_numpy(np.ascontiguousarray(np.asarray(images, np.float32)))[:, None]
    if x.shape[-1] != INPUT_SIZE:
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="area")
    return x


def _fit(
    x: Any, y: np.ndarray, n_classes: int, cfg: FidelityConfig, cancel: threading.Event | None
) -> Any:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = _network(n_classes)
        counts = np.bincount(y, minlength=n_classes).astype(np.float64)
        weights = np.where(counts > 0, len(y) / np.maximum(counts, 1) / n_classes, 0.0)
        loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))
        opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
        target = torch.from_numpy(y.astype(np.int64))
        gen = torch.Generator().manual_seed(cfg.seed)
        net.train()
        for _ in range(cfg.epochs):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            order = torch.randperm(len(y), generator=gen)
            for lo in range(0, len(y), cfg.batch_size):
                idx = order[lo : lo + cfg.batch_size]
                if len(idx) < 2:  # batch norm needs two samples
                    continue
                batch = x[idx]
                flip = torch.rand(len(idx), generator=gen) < 0.5  # left-right flip
                batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
                opt.zero_grad()
                loss_fn(net(batch), target[idx]).backward()
                opt.step()
    return net.eval()


def _predict(net: Any, x: Any) -> np.ndarray:
    import torch

    with torch.inference_mode():
        out = [torch.softmax(net(x[lo : lo + 512]), dim=1) for lo in range(0, len(x), 512)]
    if not out:
        return np.zeros((0, 0), np.float32)
    return torch.cat(out).numpy().astype(np.float32)


def patient_folds(keys: np.ndarray, folds: int, seed: int = 0) -> list[np.ndarray]:
    """Boolean test masks, one per fold; each patient in exactly one fold."""
    patients = np.unique(keys)
    rng = np.random.default_rng(seed)
    rng.shuffle(patients)
    k = min(folds, len(patients))
    groups = np.array_split(patients, k)
    return [np.isin(keys, g) for g in groups if len(g)]


def label_fidelity(
    real_images: np.ndarray,
    real_labels: np.ndarray,
    real_patient_keys: np.ndarray | None,
    synthetic_images: np.ndarray,
    synthetic_labels: np.ndarray,
    *,
    n_classes: int,
    config: FidelityConfig | None = None,
    cancel: threading.Event | None = None,
) -> FidelityResult:
    """Train on the labelled real slices (``-1`` = unlabelled, ignored) and score the samples.

    Raises:
        DataError: fewer than two classes among the labelled real slices.
        Cancelled: ``cancel`` was set.
    """
    import torch

    cfg = config or FidelityConfig()
    labels = np.asarray(real_labels, np.int64)
    use = labels >= 0
    y = labels[use]
    present = np.unique(y)
    if len(present) < 2:
        raise DataError(
            "Label fidelity needs real slices of at least two classes; "
            f"the training set has {len(present)}.",
            advice="Give labels for more than one class (for example lesion and no lesion), "
            "or switch off the label-fidelity filter.",
        )
    keys = (
        np.asarray(real_patient_keys)[use]
        if real_patient_keys is not None
        else np.zeros(len(y), dtype=np.int64)
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    try:
        x = _prepare(np.asarray(real_images)[use])
        oof = np.full(len(y), -1, np.int64)
        folds = patient_folds(keys, cfg.folds, cfg.seed)
        n_folds = 0
        for test in folds if len(folds) >= 2 else []:
            if len(np.unique(y[~test])) < 2:
                continue
            net = _fit(x[~test], y[~test], n_classes, cfg, cancel)
            oof[test] = _predict(net, x[test]).argmax(1)
            n_folds += 1
        scored = oof >= 0
        if scored.any():
            acc = float(np.mean(oof[scored] == y[scored]))
            per_class = {
                int(c): float(np.mean(oof[scored & (y == c)] == c))
                for c in present
                if (scored & (y == c)).any()
            }
            balanced = float(np.mean(list(per_class.values())))
        else:
            acc = balanced = float("nan")
            per_class = {}
        net = _fit(x, y, n_classes, cfg, cancel)
        probs = _predict(net, _prepare(synthetic_images))
    finally:
        torch.set_num_threads(threads)
    intended = np.asarray(synthetic_labels, np.int64)
    if len(intended):
        prob = probs[np.arange(len(intended)), np.clip(intended, 0, n_classes - 1)]
        prob = np.where(intended >= 0, prob, np.nan).astype(np.float32)
        predicted = probs.argmax(1).astype(np.int64)
    else:
        prob = np.zeros(0, np.float32)
        predicted = np.zeros(0, np.int64)
        probs = np.zeros((0, n_classes), np.float32)
    log.info(
        "Label fidelity: classifier on %d real slices, patient-grouped CV accuracy %.3f "
        "(balanced %.3f, %d folds); mean fidelity of %d samples %.3f",
        len(y), acc, balanced, n_folds, len(prob),
        float(np.nanmean(prob)) if len(prob) else float("nan"),
    )  # fmt: skip
    return FidelityResult(
        probability=prob,
        probabilities=probs,
        predicted=predicted,
        cv_accuracy=acc,
        cv_balanced_accuracy=balanced,
        cv_per_class=per_class,
        n_folds=n_folds,
        n_real=int(len(y)),
    )


__all__ = ["FidelityConfig", "FidelityResult", "label_fidelity", "patient_folds"]
