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
    .venv/bin/python benchmarks/bench_labelled.py --data DEMO_DIR --only pairs --steps 1900

``--steps`` gives every arm a step budget instead of minutes (results that do not depend on
the machine's load; the per-class ``default`` models share it as they share the minutes);
``--only`` runs one part. ``--grid PNG`` writes generated pairs with their mask outlines.
``--set JSON`` overrides training settings of every arm (e.g. ``'{"mask_first": false}'``).
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


Budget = tuple[float | None, int | None]
"""(minutes, steps) of one arm: exactly one is set."""


def _share(budget: Budget, parts: int) -> Budget:
    minutes, steps = budget
    return (None if minutes is None else minutes / parts, None if steps is None else steps // parts)


SETTINGS: dict[str, Any] = {}
"""Training settings of every arm from ``--set`` (over the recipe defaults)."""


def _train(recipe: str, images: np.ndarray, budget: Budget, seed: int, **labelled: Any) -> Any:
    from medgan.train.config import TrainConfig
    from medgan.train.trainer import Trainer

    minutes, steps = budget
    cfg = TrainConfig.for_recipe(
        recipe, resolution=64, steps=steps, minutes=None if steps else minutes, seed=seed,
        device="cpu", quality_every=50, width=16, **SETTINGS,
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


def bench_classes(ts: Any, budget: Budget, n: int, seed: int) -> dict[str, Any]:
    from medgan.curate.label_fidelity import label_fidelity

    y, names = _lesion_labels(ts)
    keep = y >= 0
    images, y, keys = ts.images[keep], y[keep], ts.patient_keys[keep]
    counts = [int((y == k).sum()) for k in range(2)]
    arms: dict[str, dict[int, np.ndarray]] = {"conditional": {}, "default per class": {}}
    timing: dict[str, Any] = {}
    t0 = time.perf_counter()
    trainer, res = _train("conditional", images, budget, seed, labels=y, class_names=names)
    timing["conditional"] = {"seconds": round(time.perf_counter() - t0, 1), "steps": res.step}
    for k in range(2):
        arms["conditional"][k] = _sample(trainer, n, seed + k, cls=k)[0]
    steps = []
    t0 = time.perf_counter()
    for k in range(2):
        tr, res = _train("default", images[y == k], _share(budget, 2), seed)
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


def _segmenter(
    images: np.ndarray, masks: np.ndarray, seconds: float, seed: int, steps: int | None = None
) -> Any:
    """A small MONAI UNet trained on real (image, lesion) pairs for ``seconds`` (or ``steps``)."""
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
    n = 0
    while (steps is None and time.perf_counter() < end) or (steps is not None and n < steps):
        idx = torch.randint(0, len(x), (32,), generator=gen)
        opt.zero_grad()
        loss = loss_fn(net(x[idx]), t[idx])
        loss.backward()
        opt.step()
        n += 1
    net.eval()
    log.info("segmenter: %d steps", n)
    net.trained_steps = n
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


def write_grid(path: str, images: np.ndarray, masks: np.ndarray, cols: int = 8) -> None:
    """A PNG of image + mask pairs: each image (4× up) with its segments' outlines in colour."""
    from PIL import Image

    from medgan.models.modelfile import segment_colours

    scale, n = 4, len(images)
    rows = (n + cols - 1) // cols
    r = images.shape[-1] * scale
    canvas = np.zeros((rows * (r + 2), cols * (r + 2), 3), np.uint8)
    palette = np.asarray(segment_colours(int(masks.max(initial=0)) + 1), np.uint8)
    for i in range(n):
        grey = ((images[i].clip(-1, 1) + 1) * 127.5).astype(np.uint8).repeat(scale, 0)
        rgb = np.repeat(grey.repeat(scale, 1)[..., None], 3, axis=2)
        m = masks[i].repeat(scale, 0).repeat(scale, 1)
        edge = np.zeros_like(m, bool)  # a pixel of a segment next to another label
        edge[1:] |= m[1:] != m[:-1]
        edge[:-1] |= m[:-1] != m[1:]
        edge[:, 1:] |= m[:, 1:] != m[:, :-1]
        edge[:, :-1] |= m[:, :-1] != m[:, 1:]
        edge &= m > 0
        rgb[edge] = palette[m[edge] - 1]
        y, x = (i // cols) * (r + 2), (i % cols) * (r + 2)
        canvas[y : y + r, x : x + r] = rgb
    Image.fromarray(canvas).save(path)


def bench_pairs(
    ts: Any,
    budget: Budget,
    n: int,
    seed: int,
    seg_seconds: float,
    grid: str | None = None,
    seg_steps: int | None = None,
) -> dict[str, Any]:
    from medgan.curate.masks import mask_plausibility, mask_ranges

    known = ts.mask_known
    images, masks = ts.images[known], ts.masks[known]
    t0 = time.perf_counter()
    trainer, res = _train(
        "paired", images, budget, seed, masks=masks, mask_known=np.ones(len(images), bool),
        segment_names=tuple(ts.segment_names),
    )  # fmt: skip
    seconds = round(time.perf_counter() - t0, 1)
    synth, synth_masks = _sample(trainer, n, seed)
    if grid:
        write_grid(grid, synth[:32], synth_masks[:32])
    ranges = mask_ranges(masks)
    plaus = mask_plausibility(synth_masks, synth, ranges, tuple(ts.segment_names))
    real_plaus = mask_plausibility(masks, images, ranges, tuple(ts.segment_names))
    net = _segmenter(images, masks, seg_seconds, seed, seg_steps)
    d_synth = _dice(_segment(net, synth), synth_masks > 0)
    d_real = _dice(_segment(net, images), masks > 0)
    quality = image_quality(synth, images, ts.patient_keys[known], seed)
    painted = _painted_for_real_masks(trainer, masks, n, seed)
    d_painted = None if painted is None else _dice(_segment(net, painted[0]), painted[1] > 0)
    return {
        "segments": list(ts.segment_names),
        "training_pairs": int(len(images)),
        "timing": {"seconds": seconds, "steps": res.step},
        "sampled_from": "the final EMA generator (trainer.model_generator)",
        "generated_with_mask_share": round(float((synth_masks > 0).any((1, 2)).mean()), 3),
        "real_with_mask_share": round(float((masks > 0).any((1, 2)).mean()), 3),
        "mask_plausible_share": round(float(np.mean(plaus["mask_plausible"])), 3),
        "real_mask_plausible_share": round(float(np.mean(real_plaus["mask_plausible"])), 3),
        "segmenter_dice_on_generated": round(float(np.nanmean(d_synth)), 3),
        "segmenter_dice_on_its_real_training_pairs": round(float(np.nanmean(d_real)), 3),
        "segmenter_steps": int(net.trained_steps),
        "generated_mask_pixel_share": round(float((synth_masks > 0).mean()), 5),
        "real_mask_pixel_share": round(float((masks > 0).mean()), 5),
        "n_generated_with_any_lesion": int(np.isfinite(d_synth).sum()),
        "per_segment": _per_segment(synth_masks, masks, tuple(ts.segment_names)),
        "image_quality": quality,
        "mask_first": painted is not None,
        "segmenter_dice_on_images_painted_for_real_masks": None
        if d_painted is None
        else round(float(np.nanmean(d_painted)), 3),
    }


def _per_segment(
    synth_masks: np.ndarray, masks: np.ndarray, names: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """Per segment: the share of generated and real slices that hold it, and of their pixels."""
    out = {}
    for k, name in enumerate(names, start=1):
        out[name] = {
            "generated_slices": round(float((synth_masks == k).any((1, 2)).mean()), 3),
            "real_slices": round(float((masks == k).any((1, 2)).mean()), 3),
            "generated_pixels": round(float((synth_masks == k).mean()), 5),
            "real_pixels": round(float((masks == k).mean()), 5),
        }
    return out


def image_quality(
    synth: np.ndarray, real: np.ndarray, patient_keys: np.ndarray, seed: int
) -> dict[str, Any]:
    """The generated images against the real pair images, as ``medgan evaluate`` measures them:
    per-level SWD next to its real-vs-real floor, C2ST AUC, the structure verdict."""
    from medgan.metrics.evaluation import EvaluationConfig, evaluate_sets

    report = evaluate_sets(synth, real, patient_keys=patient_keys,
                           config=EvaluationConfig(seed=seed, device="cpu"))  # fmt: skip
    keep = ("swd", "swd_levels", "c2st", "c2st_erased_reference", "structure",
            "diversity_ssim", "real_diversity_ssim", "memorization_rate")  # fmt: skip
    return {k: report.get(k) for k in keep}


def _painted_for_real_masks(
    trainer: Any, masks: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """A mask-first model's images for ``n`` real masks with a lesion (None: not mask-first):
    does the painter draw the lesion where a given mask puts it?"""
    import torch

    from medgan.models.labelled import masks_to_channels
    from medgan.models.mask_first import is_mask_first

    g = trainer.model_generator.eval()
    if not is_mask_first(g):
        return None
    rng = np.random.default_rng(seed)
    with_lesion = np.flatnonzero((masks > 0).any((1, 2)))
    pick = rng.choice(with_lesion, size=min(n, len(with_lesion)), replace=False)
    chosen = masks[pick]
    gen = torch.Generator().manual_seed(seed + 7)
    z = torch.randn(len(chosen), trainer.config.z_dim, generator=gen)
    channels = masks_to_channels(torch.from_numpy(chosen), g.n_segments)
    with torch.no_grad():
        out = g(z, None, channels)
    return out[:, 0].clamp(-1, 1).numpy(), chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--minutes", type=float, default=10.0, help="budget per arm")
    parser.add_argument("--steps", type=int, default=None, help="step budget per arm (not minutes)")
    parser.add_argument("--only", choices=("classes", "pairs"), default=None)
    parser.add_argument("--grid", default=None, help="PNG of generated pairs with mask outlines")
    parser.add_argument("--n", type=int, default=128, help="samples per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seg-seconds", type=float, default=60.0)
    parser.add_argument("--seg-steps", type=int, default=None, help="segmenter steps (not seconds)")
    parser.add_argument("--out", default="bench_labelled.json")
    parser.add_argument("--set", default="{}", help="JSON of training settings for every arm")
    args = parser.parse_args()
    SETTINGS.update(json.loads(args.set))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.perf_counter()
    ts = _training_set(args.data)
    budget: Budget = (None, args.steps) if args.steps else (args.minutes, None)
    result: dict[str, Any] = {
        "minutes_per_arm": None if args.steps else args.minutes,
        "steps_per_arm": args.steps,
        "seed": args.seed,
        "resolution": 64,
        "device": "cpu",
        "torch_threads": __import__("torch").get_num_threads(),
        "load_average_start": list(os.getloadavg()),
        "settings": dict(SETTINGS),
    }
    if args.only in (None, "classes"):
        result["classes"] = bench_classes(ts, budget, args.n, args.seed)
    if args.only in (None, "pairs"):
        result["pairs"] = bench_pairs(
            ts, budget, args.n, args.seed, args.seg_seconds, args.grid, args.seg_steps
        )
    result["load_average_end"] = list(os.getloadavg())
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
