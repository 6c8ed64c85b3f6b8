"""Recipe study: how the sample quality of one training configuration develops, by steps.

Trains on the demo study at 64² on the CPU (one thread by default, so several variants can run
side by side) and, every ``--every`` steps, measures the SWD (x1e3, lower is better) of the
live EMA generator and of the raw G against the real slices of the other half of the patients
(as ``bench_quality.py``). Steps, not seconds, make variants comparable whatever the machine
load. Settings are ``TrainConfig`` fields given as JSON.

Run, e.g. (the drift study in docs/recipes.md):

    .venv/bin/python benchmarks/recipe_study.py first --steps 600 \\
        --set '{"loss": "hinge", "lecam_weight": 0, "ema_rampup": 0.05}'
    .venv/bin/python benchmarks/recipe_study.py now --steps 600

Writes ``<out>/<name>.json`` (every row) and ``<out>/<name>_best.png`` (EMA samples at the
lowest SWD) and ``<out>/<name>_final.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _swd_row(images: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Mean SWD and the finest level's (texture and fine structure), x1e3."""
    from medgan.metrics.swd import sliced_wasserstein

    result = sliced_wasserstein(images, reference, seed=0, device="cpu")
    finest = max(result.per_level)
    return {"swd": round(result.swd, 1), "swd_fine": round(result.per_level[finest], 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="label of this variant (file names)")
    parser.add_argument("--recipe", default="default", choices=("default", "dcgan", "conditional", "paired"))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--every", type=int, default=50, help="steps between measurements")
    parser.add_argument("--set", default="{}", help="TrainConfig overrides as JSON")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/out/recipe_study")
    parser.add_argument("--structure", action="store_true",
                        help="at the end, per-level SWD with floors and C2ST of the model file")
    parser.add_argument("--structure-at", type=int, nargs="*", default=[],
                        help="also measure structure (and save a grid) at these steps")
    parser.add_argument("--position-bins", type=int, default=0,
                        help="the conditional recipe with the slice's level in its series as the "
                             "class, in this many equal bins (fakes take the real batch's levels; "
                             "the default recipe's own option is --set '{\"levels\": N}', whose "
                             "fakes draw their levels from z)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import bench_quality as bq

    from medgan.generate.sampling import sample_noise
    from medgan.models import RECIPES, build_models
    from medgan.train.config import TrainConfig
    from medgan.train.events import StepMetrics
    from medgan.train.trainer import Trainer

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    ts = bq._training_set()
    half_a, half_b = bq._halves(ts)
    overrides = {"quality_every": 0, **json.loads(args.set)}  # probes would add their own cost
    levels = None
    if args.position_bins:
        from medgan.dataset.positions import position_bins

        levels = position_bins(ts.levels, args.position_bins)
        args.recipe = "conditional"
        overrides = {"batch_size": 16, "balanced_classes": False, **overrides}
    cfg = TrainConfig.for_recipe(
        args.recipe,
        resolution=bq.RES,
        steps=args.steps,
        device="cpu",
        sample_every=10**9,
        checkpoint_dir=None,
        metrics_interval_s=0.0,
        **overrides,
    )
    width = cfg.width or RECIPES[args.recipe].default_width
    g_eval, _ = build_models(
        args.recipe, bq.RES, z_dim=cfg.z_dim, width=width, **cfg.network_options(),
        **({"n_classes": args.position_bins} if args.position_bins else {}),
    )
    g_eval.eval()
    z = torch.from_numpy(sample_noise(1234, np.arange(len(half_a)), cfg.z_dim))
    y = None if levels is None else torch.arange(len(z)) % args.position_bins
    rows: list[dict[str, float | int | None]] = []
    clock = {"t0": time.perf_counter(), "eval_s": 0.0}
    best = {"swd": float("inf"), "step": -1}
    last: dict[str, StepMetrics] = {}

    def sample(trainer: Trainer, raw: bool = False) -> np.ndarray:
        source = trainer.G if raw else trainer.model_generator
        g_eval.load_state_dict(source.state_dict())
        with torch.inference_mode():
            if y is None:
                return torch.cat([g_eval(zb)[:, 0] for zb in z.split(64)]).clamp(-1, 1).numpy()
            return torch.cat(
                [g_eval(zb, yb)[:, 0] for zb, yb in zip(z.split(64), y.split(64), strict=True)]
            ).clamp(-1, 1).numpy()

    def measure(trainer: Trainer) -> None:
        t = time.perf_counter()
        images = sample(trainer)
        m = last.get("m")
        row = {
            "step": trainer.step,
            "train_s": round(t - clock["t0"] - clock["eval_s"], 1),
            **_swd_row(images, half_b),
            "swd_raw_g": round(bq._swd(sample(trainer, raw=True), half_b), 1),
            "aug_p": round(trainer.augmenter.p, 3),
            "d_real": round(m.d_real, 3) if m else None,
            "d_fake": round(m.d_fake, 3) if m else None,
        }
        rows.append(row)
        print(args.name, row, flush=True)
        if row["swd"] < best["swd"]:
            best.update(swd=row["swd"], step=trainer.step)
            bq._grid(images, out_dir / f"{args.name}_best.png")
        clock["eval_s"] += time.perf_counter() - t

    trainer: Trainer

    structures: dict[int, dict] = {}

    def on_event(event: object) -> None:
        if isinstance(event, StepMetrics):
            last["m"] = event
            if event.step % args.every == 0:
                measure(trainer)
            if event.step in args.structure_at and event.step not in structures:
                t = time.perf_counter()
                structures[event.step] = bq._structure(trainer, g_eval, cfg.z_dim, ts, args.position_bins)
                bq._grid(sample(trainer), out_dir / f"{args.name}_step{event.step}.png")
                print(args.name, "structure at", event.step, json.dumps(structures[event.step]),
                      flush=True)
                clock["eval_s"] += time.perf_counter() - t

    names = tuple(f"level{i}" for i in range(args.position_bins))
    trainer = Trainer(cfg, ts.images, on_event=on_event, labels=levels, class_names=names,
                      slice_levels=ts.levels)  # used by the default recipe's "levels" only
    measure(trainer)
    clock.update(t0=time.perf_counter(), eval_s=0.0)
    trainer.run()
    if rows[-1]["step"] != trainer.step:
        measure(trainer)
    bq._grid(sample(trainer), out_dir / f"{args.name}_final.png")
    from safetensors.torch import save_file

    model = trainer.model_state()["generator"]
    save_file({k: v.contiguous() for k, v in model.items()}, out_dir / f"{args.name}_G.safetensors")
    structure = bq._structure(trainer, g_eval, cfg.z_dim, ts, args.position_bins) if args.structure else None
    if structure:
        print(args.name, "structure", json.dumps(structure), flush=True)
    (out_dir / f"{args.name}.json").write_text(
        json.dumps({"name": args.name, "settings": overrides, "rows": rows, "best": best,
                    "steps": trainer.step, "structure": structure,
                    "structure_at": {str(k): v for k, v in structures.items()}})
    )
    print(f"{args.name}: best SWD {best['swd']} at step {best['step']}; last {rows[-1]['swd']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
