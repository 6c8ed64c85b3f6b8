"""The downstream models and one training run: fixed steps, seeded, scored on test patients.

Classification uses MONAI's ``Classifier`` (strided residual-free conv blocks 8-16-32-64, about
26 k weights): a DenseNet121, even cut to 2D and a small width, costs ~50x more per step, and
the protocol needs dozens of runs (arms x folds x seeds) within minutes on a laptop CPU; on
small slice sets a compact CNN is also what most augmentation studies train. Segmentation
uses MONAI's ``UNet`` (8-16-32-64, Dice + cross-entropy loss). Every arm of one (fold, seed)
starts from the same initial weights and takes the same number of optimiser steps; batches are
drawn class-balanced from the arm's pool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medgan.core.errors import Cancelled
from medgan.utility.augment import ClassicAugment
from medgan.utility.scores import classification_scores, segmentation_scores

CHANNELS = (8, 16, 32, 64)
BatchProbe = Callable[[np.ndarray], Any]
"""Sees every training batch as drawn from the pool, before augmentation (leakage tests)."""


@dataclass
class Pool:
    """Training or test slices: images in [-1, 1], labels (classify) or masks (segment)."""

    images: np.ndarray  # float32 (N, R, R)
    labels: np.ndarray | None = None  # int64 (N,)
    masks: np.ndarray | None = None  # uint8 (N, R, R)

    def __len__(self) -> int:
        return int(len(self.images))

    @staticmethod
    def concat(pools: Sequence[Pool]) -> Pool:
        pools = [p for p in pools if len(p)]
        labels = None if any(p.labels is None for p in pools) else np.concatenate(
            [p.labels for p in pools if p.labels is not None]
        )  # fmt: skip
        masks = None if any(p.masks is None for p in pools) else np.concatenate(
            [p.masks for p in pools if p.masks is not None]
        )  # fmt: skip
        return Pool(np.concatenate([p.images for p in pools]).astype(np.float32), labels, masks)


@dataclass(frozen=True)
class RunSettings:
    task: str
    steps: int
    batch_size: int
    lr: float
    seed: int
    augment: bool
    device: Any  # torch.device


def _network(task: str, n_out: int, resolution: int) -> Any:
    from monai.networks.nets import Classifier, UNet

    depth = max(2, min(len(CHANNELS), resolution.bit_length() - 3))  # at least 2x2 at the end
    channels = CHANNELS[:depth]
    if task == "classify":
        return Classifier((1, resolution, resolution), n_out, channels, (2,) * depth)
    return UNet(2, 1, n_out, channels, (2,) * (depth - 1), num_res_units=0)


def _sample_weights(pool: Pool, task: str) -> np.ndarray:
    """Class-balanced draw (classify: per label; segment: masked vs empty slices)."""
    groups: np.ndarray
    if task == "classify" and pool.labels is not None:
        groups = pool.labels
    elif pool.masks is not None:
        groups = np.asarray(pool.masks.reshape(len(pool), -1).any(axis=1), np.int64)
    else:
        groups = np.zeros(len(pool), np.int64)
    counts = np.bincount(groups)
    w = 1.0 / counts[groups]
    return w / w.sum()


def train_and_score(
    train: Pool,
    test: Pool,
    names: Sequence[str],
    settings: RunSettings,
    *,
    cancel: threading.Event | None = None,
    on_batch: BatchProbe | None = None,
) -> tuple[dict[str, float], dict[str, dict[str, float]], float]:
    """Train one downstream model on ``train`` and score it on ``test``.

    ``names``: class names (classify) or segment names (segment). Returns the overall
    metrics, the per-class (per-segment) ones, and the seconds taken.
    Raises :class:`~medgan.core.errors.Cancelled` within one step of ``cancel`` being set.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    started = time.monotonic()
    task, dev = settings.task, settings.device
    torch.manual_seed(settings.seed)
    n_out = len(names) if task == "classify" else len(names) + 1
    net = _network(task, n_out, int(train.images.shape[-1])).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    rng = np.random.default_rng(settings.seed)
    weights = _sample_weights(train, task)
    aug = ClassicAugment(settings.seed, with_masks=task == "segment") if settings.augment else None
    dice_loss: Any = None
    if task == "segment":
        from monai.losses import DiceCELoss

        dice_loss = DiceCELoss(to_onehot_y=True, softmax=True)
    net.train()
    for _ in range(settings.steps):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        idx = rng.choice(len(train), size=settings.batch_size, p=weights)
        images = train.images[idx]
        masks = train.masks[idx] if train.masks is not None else None
        if on_batch is not None:
            on_batch(images)
        if aug is not None:
            images, masks = aug(images, masks if task == "segment" else None)
        x = torch.from_numpy(np.ascontiguousarray(images[:, None])).to(dev)
        out = net(x)
        if task == "classify":
            assert train.labels is not None
            loss = F.cross_entropy(out, torch.from_numpy(train.labels[idx]).to(dev))
        else:
            assert masks is not None
            loss = dice_loss(out, torch.from_numpy(masks[:, None].astype(np.int64)).to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(test), 256):
            x = torch.from_numpy(np.ascontiguousarray(test.images[start : start + 256, None]))
            y = net(x.to(dev))
            y = y.softmax(1) if task == "classify" else y.argmax(1)
            outputs.append(y.float().cpu().numpy())
    result = np.concatenate(outputs)
    if task == "classify":
        assert test.labels is not None
        overall, per = classification_scores(result, test.labels, names)
    else:
        assert test.masks is not None
        overall, per = segmentation_scores(result.astype(np.uint8), test.masks, names)
    return overall, per, time.monotonic() - started
