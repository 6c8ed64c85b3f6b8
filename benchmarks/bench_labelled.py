"""Labelled synthesis on the demo study at 64² on the CPU, every arm on an equal time budget.

1. ``conditional`` (one class-conditional model for lesion / no lesion) against one ``default``
   model per class (the Frid-Adar et al. 2018 approach), the per-class models sharing the same
   total time: per-class SWD (×1e3, samples of a class against that class's training slices)
   and label fidelity (medgan.curate.label_fidelity: a small CNN trained on the real labelled
   slices, cross-validated by patient, gives each sample the probability of its intended class).
2. ``paired`` on the demo SEG masks: mask plausibility (medgan.curate.masks) and the Dice
   between the generated mask and the mask an independent segmenter (a small MONAI UNet trained
   on the real pairs) draws on the generated image.

Usage::

    .venv/bin/python benchmarks/bench_labelled.py --data DEMO_DIR --minutes 10 --out result.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("bench_labelled")


def _training_set(folder: str) -> Any:
    from medgan.dataset.training_set import TrainingSetConfig, build_training_set
    from medgan.dicom.index import scan_folder
    from medgan.dicom.labels import load_labels
    from medgan.workflows.dataset import select_series

    scan = scan_folder(folder)
    series, _ = select_series(scan, None)
    labels = load_labels(scan)
    return build_training_set(series, TrainingSetConfig(resolution=64), labels=labels)


def _lesion_labels(ts: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    """Merge the demo's lesion types into lesion / no lesion (``none`` is no lesion)."""
    names = tuple(ts.class_names)
    none = names.index("none")
    y = np.where(ts.labels < 0, -1, np.where(ts.labels == none, 0, 1)).astype(np.int64)
    return y, ("no lesion", "lesion")


def _train(recipe: str, images: np.ndarray, minutes: float, seed: int, **labelled: Any) -> Any:
    from medgan.train.config import TrainConfig
    from medgan.train.trainer import Trainer

    cfg = TrainConfig.for_recipe(
        recipe, resolution=64, steps=None, minutes=minutes, seed=seed, device="cpu",
        quality_every=50, width=16,
    )  # fmt: skip
    trainer = Trainer(cfg, images, **labelled)
    result = trainer.run()
    log.info("%s: %s", recipe, result.message)
    return trainer, result


def _sample(trainer: Any, n: int, seed: int, cls: int | None = None) -> tuple[Any, Any]:
    """n samples of the model generator (the one a model file would hold), with masks."""
    import torch

    from medgan.models.labelled import channels_to_masks

    g = trainer.model_generator.eval()
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, trainer.config.z_dim, generator=gen)
    with torch.no_grad():
        out = g(z) if cls is None else g(z, torch.full((n,), cls, dtype=torch.long))
    images = out[:, 0].clamp(-1, 1).numpy()
    masks = channels_to_masks(out[:, 1:]).numpy() if out.shape[1] > 1 else None
    return images, masks


def _swd(a: np.ndarray, b: np.ndarray) -> float:
    from medgan.metrics.swd import sliced_wasserstein

    return round(float(sliced_wasserstein(a, b, seed=0).swd), 2)


def bench_classes(ts: Any, minutes: float, n: int, seed: int) -> dict[str, Any]:
    from medgan.curate.label_fidelity import label_fidelity

    y, names = _lesion_labels(ts)
    keep = y >= 0
    images, y, keys = ts.images[keep], y[keep], ts.patient_keys[keep]
    counts = [int((y == k).sum()) for k in range(2)]
    arms: dict[str, dict[int, np.ndarray]] = {"conditional": {}, "default per class": {}}
    timing: dict[str, Any] = {}
    t0 = time.perf_counter()
    trainer, res = _train("conditional", images, minutes, seed, labels=y, class_names=names)
    timing["conditional"] = {"seconds": round(time.perf_counter() - t0, 1), "steps": res.step}
    for k in range(2):
        arms["conditional"][k] = _sample(trainer, n, seed + k, cls=k)[0]
    steps = []
    t0 = time.perf_counter()
    for k in range(2):
        tr, res = _train("default", images[y == k], minutes / 2, seed)
        steps.append(res.step)
        arms["default per class"][k] = _sample(tr, n, seed + k)[0]
    timing["default per class"] = {"seconds": round(time.perf_counter() - t0, 1), "steps": steps}
    out: dict[str, Any] = {"classes": list(names), "training_slices": counts, "timing": timing}
    for arm, per in arms.items():
        synth = np.concatenate([per[0], per[1]])
        intended = np.repeat(np.arange(2), n)
        fid = label_fidelity(images, y, keys, synth, intended, n_classes=2)
        out[arm] = {
            "swd_per_class": {names[k]: _swd(per[k], images[y == k]) for k in range(2)},
            "label_fidelity_mean": {
                names[k]: round(float(fid.probability[intended == k].mean()), 3) for k in range(2)
            },
            "intended_class_predicted": {
                names[k]: round(float((fid.predicted[intended == k] == k).mean()), 3)
                for k in range(2)
            },
            "classifier_cv_balanced_accuracy": round(float(fid.cv_balanced_accuracy), 3),
        }
    out["swd_real_floor"] = {  # two halves of the real class (by slice): the noise floor
        names[k]: _swd(images[y == k][::2], images[y == k][1::2]) for k in range(2)
    }
    return out


def _segmenter(images: np.ndarray, masks: np.ndarray, seconds: float, seed: int) -> Any:
    """A small MONAI UNet trained on real (image, lesion) pairs for ``seconds``."""
    import torch
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet

    torch.manual_seed(seed)
    net = UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=(8, 16, 32),
               strides=(2, 2), num_res_units=1)  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    loss_fn = DiceCELoss(sigmoid=True)
    x = torch.from_numpy(images)[:, None]
    t = torch.from_numpy((masks > 0).astype(np.float32))[:, None]
    gen = torch.Generator().manual_seed(seed)
    end = time.perf_counter() + seconds
    steps = 0
    while time.perf_counter() < end:
        idx = torch.randint(0, len(x), (32,), generator=gen)
        opt.zero_grad()
        loss = loss_fn(net(x[idx]), t[idx])
        loss.backward()
        opt.step()
        steps += 1
    net.eval()
    log.info("segmenter: %d steps", steps)
    return net


def _dice(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per-slice Dice of binary masks; slices where both are empty are left out (NaN)."""
    p, r = pred.reshape(len(pred), -1), ref.reshape(len(ref), -1)
    inter = (p & r).sum(1)
    total = p.sum(1) + r.sum(1)
    return np.where(total > 0, 2 * inter / np.maximum(total, 1), np.nan)


def _segment(net: Any, images: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return (net(torch.from_numpy(images)[:, None])[:, 0] > 0).numpy()


def bench_pairs(ts: Any, minutes: float, n: int, seed: int, seg_seconds: float) -> dict[str, Any]:
    from medgan.curate.masks import mask_plausibility, mask_ranges

    known = ts.mask_known
    images, masks = ts.images[known], ts.masks[known]
    t0 = time.perf_counter()
    trainer, res = _train(
        "paired", images, minutes, seed, masks=masks, mask_known=np.ones(len(images), bool),
        segment_names=tuple(ts.segment_names),
    )  # fmt: skip
    seconds = round(time.perf_counter() - t0, 1)
    synth, synth_masks = _sample(trainer, n, seed)
    ranges = mask_ranges(masks)
    plaus = mask_plausibility(synth_masks, synth, ranges, tuple(ts.segment_names))
    real_plaus = mask_plausibility(masks, images, ranges, tuple(ts.segment_names))
    net = _segmenter(images, masks, seg_seconds, seed)
    d_synth = _dice(_segment(net, synth), synth_masks > 0)
    d_real = _dice(_segment(net, images), masks > 0)
    return {
        "segments": list(ts.segment_names),
        "training_pairs": int(len(images)),
        "timing": {"seconds": seconds, "steps": res.step},
        "generated_with_mask_share": round(float((synth_masks > 0).any((1, 2)).mean()), 3),
        "real_with_mask_share": round(float((masks > 0).any((1, 2)).mean()), 3),
        "mask_plausible_share": round(float(np.mean(plaus["mask_plausible"])), 3),
        "real_mask_plausible_share": round(float(np.mean(real_plaus["mask_plausible"])), 3),
        "segmenter_dice_on_generated": round(float(np.nanmean(d_synth)), 3),
        "segmenter_dice_on_its_real_training_pairs": round(float(np.nanmean(d_real)), 3),
        "n_generated_with_any_lesion": int(np.isfinite(d_synth).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--minutes", type=float, default=10.0, help="budget per arm")
    parser.add_argument("--n", type=int, default=128, help="samples per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seg-seconds", type=float, default=60.0)
    parser.add_argument("--out", default="bench_labelled.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.perf_counter()
    ts = _training_set(args.data)
    result: dict[str, Any] = {
        "minutes_per_arm": args.minutes,
        "resolution": 64,
        "device": "cpu",
        "torch_threads": __import__("torch").get_num_threads(),
        "load_average_start": list(os.getloadavg()),
    }
    result["classes"] = bench_classes(ts, args.minutes, args.n, args.seed)
    result["pairs"] = bench_pairs(ts, args.minutes, args.n, args.seed, args.seg_seconds)
    result["load_average_end"] = list(os.getloadavg())
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
