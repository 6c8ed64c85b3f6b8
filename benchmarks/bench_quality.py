"""Quality against time: SWD of the `default` recipe against the classic `dcgan` (the naive
baseline) after the same wall-clock training budget, on the demo study at 64² on the CPU.

Run:  .venv/bin/python benchmarks/bench_quality.py --minutes 4

Each recipe trains in its own process (so peak memory is that configuration's alone), one
after the other, or side by side with one thread each (``--parallel``), which keeps the
comparison fair when other jobs load the machine unevenly. Every
``--eval-every`` seconds of *training* time the EMA generator (or G for dcgan) draws a fixed set
of samples and its SWD (medgan.metrics.swd, Laplacian pyramid, x1e3) to real slices is measured;
evaluation time is excluded from the budget (the trainer's own quality probes, which choose the
generator a model file keeps, are inside it). At the end the generator the model file would hold
(``Trainer.model_state()``: the best probed snapshot under the default ``keep_best``) is
measured too; the ratio is reported for model files and for last-step generators. References
measured in the same run:

- floor: SWD between two halves of the real slices, split by patient (what a perfect generator
  scores with this many samples);
- ceiling: SWD of pure noise images and of each untrained generator;
- blurred real slices (a 5x5 binomial kernel twice, sigma ~1.4 px): anatomy kept, texture lost;
- structure-erased real slices (medgan.metrics.references.erase_structure): outline, skull and
  intensities kept, everything inside smoothed away — a "blob generator".

At the end the model file's samples get the structure measures of ``medgan evaluate``:
per-level SWD next to the real-vs-real floor and the blob reference (same sample sizes), and
the classifier two-sample test (C2ST ROC AUC, cross-fitted by patient, 95 % interval over
seeds), with the blob reference's AUC in the same run. The "shows structure" threshold is the
blob reference (docs/evaluation.md): finest-level SWD and C2ST AUC both below it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RES = int(os.environ.get("MEDGAN_BENCH_RES", "64"))
DEVICE = os.environ.get("MEDGAN_BENCH_DEVICE", "cpu")
C2ST_SEEDS = tuple(range(int(os.environ.get("MEDGAN_BENCH_C2ST_SEEDS", "3"))))
C2ST_STEPS = int(os.environ.get("MEDGAN_BENCH_C2ST_STEPS", "150"))
N_C2ST = 672  # fresh samples for the classifier test (about as many as real slices)


def _training_set():  # type: ignore[no-untyped-def]
    from medgan.dataset.training_set import TrainingSetConfig, build_training_set
    from medgan.demo.study import ensure_demo_study
    from medgan.dicom.index import scan_folder

    folder = ensure_demo_study()
    series = [s for s in scan_folder(folder).series if s.trainable]
    return build_training_set(series, TrainingSetConfig(resolution=RES))


def _halves(ts) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Real slices split into two halves by patient (alternate patients)."""
    keys = sorted(set(ts.patient_keys.tolist()))
    first = np.isin(ts.patient_keys, keys[0::2])
    return ts.images[first], ts.images[~first]


def _swd(a: np.ndarray, b: np.ndarray) -> float:
    from medgan.metrics.swd import sliced_wasserstein

    return float(sliced_wasserstein(a, b, seed=0, device="cpu").swd)


def _grid(images: np.ndarray, path: Path, cols: int = 8) -> None:
    from PIL import Image

    n = min(len(images), cols * cols)
    rows = (n + cols - 1) // cols
    tiles = ((np.clip(images[:n], -1, 1) + 1) * 127.5).round().astype(np.uint8)
    canvas = np.zeros((rows * RES, cols * RES), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        canvas[r * RES : (r + 1) * RES, c * RES : (c + 1) * RES] = tile
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path)


def _structure(trainer, g_eval, z_dim: int, ts, n_classes: int = 0) -> dict:  # type: ignore[no-untyped-def]
    """Per-level SWD with floors and C2ST of the model file's samples (as `medgan evaluate`);
    ``n_classes`` > 0: a conditional G, its classes drawn in turn."""
    import torch

    from medgan.generate.sampling import sample_noise
    from medgan.metrics.c2st import C2STConfig, c2st_auc
    from medgan.metrics.swd import swd_levels_against_floor

    g_eval.load_state_dict(trainer.model_state()["generator"])
    z = torch.from_numpy(sample_noise(999, np.arange(N_C2ST), z_dim))
    with torch.inference_mode():
        if n_classes:
            y = torch.arange(len(z)) % n_classes
            parts = [g_eval(zb, yb)[:, 0] for zb, yb in zip(z.split(64), y.split(64), strict=True)]
        else:
            parts = [g_eval(zb)[:, 0] for zb in z.split(64)]
        samples = torch.cat(parts).clamp(-1, 1).numpy()
    levels = swd_levels_against_floor(samples, ts.images, ts.patient_keys, seed=0, device=DEVICE)
    c2st = c2st_auc(ts.images, samples, groups=ts.patient_keys,
                    config=C2STConfig(device=DEVICE, seeds=C2ST_SEEDS, steps=C2ST_STEPS))  # fmt: skip
    return {"swd_levels": levels.to_dict() if levels else None, "c2st": c2st.to_dict()}


# --------------------------------------------------------------------------- one recipe


def worker(
    recipe: str, minutes: float, eval_every: float, out_json: Path, png: Path | None
) -> None:
    import torch

    from medgan.generate.sampling import sample_noise
    from medgan.models import RECIPES, build_models
    from medgan.train.config import TrainConfig
    from medgan.train.events import StepMetrics
    from medgan.train.trainer import Trainer

    if os.environ.get("MEDGAN_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["MEDGAN_BENCH_THREADS"]))
    ts = _training_set()
    half_a, half_b = _halves(ts)
    n_eval = len(half_a)
    width = RECIPES[recipe].default_width
    if DEVICE != "cpu" and recipe == "default":
        width = 4 * width  # a GPU has the arithmetic for a 4x wider network
    cfg = TrainConfig.for_recipe(
        recipe,
        resolution=RES,
        steps=10**9,
        minutes=None,
        device=DEVICE,
        width=width if DEVICE != "cpu" else None,
        seed=0,
        sample_every=10**9,
        checkpoint_dir=None,
    )
    g_eval, _ = build_models(recipe, RES, z_dim=cfg.z_dim, width=width, **cfg.network_options())
    g_eval.eval()
    z = torch.from_numpy(sample_noise(1234, np.arange(n_eval), cfg.z_dim))
    stop = threading.Event()
    budget = minutes * 60.0
    state = {"t0": 0.0, "eval_s": 0.0, "next": 0.0, "step": 0}
    evals: list[dict[str, float]] = []

    def sample(trainer: Trainer, which: str = "live") -> np.ndarray:
        """Samples of the live model generator (EMA), the raw G, or what the model file holds."""
        if which == "raw":
            g_eval.load_state_dict(trainer.G.state_dict())
        elif which == "model":  # with keep_best: the best probed snapshot (or the last step)
            g_eval.load_state_dict(trainer.model_state()["generator"])
        else:
            g_eval.load_state_dict(trainer.model_generator.state_dict())
        with torch.inference_mode():
            return torch.cat([g_eval(zb)[:, 0] for zb in z.split(64)]).clamp(-1, 1).numpy()

    def evaluate(trainer: Trainer, train_s: float) -> np.ndarray:
        t = time.perf_counter()
        images = sample(trainer)
        row = {"train_s": round(train_s, 1), "step": trainer.step, "swd": _swd(images, half_b)}
        if trainer.G_ema is not None:  # also the raw G: EMA lags behind in short runs
            row["swd_raw_g"] = _swd(sample(trainer, "raw"), half_b)
        evals.append(row)
        raw_text = f"  (raw G {row['swd_raw_g']:.1f})" if "swd_raw_g" in row else ""
        print(
            f"  {recipe}: {train_s:6.0f} s  step {trainer.step:5d}  SWD {row['swd']:.1f}{raw_text}",
            flush=True,
        )
        state["eval_s"] += time.perf_counter() - t
        return images

    trainer: Trainer

    def on_event(event: object) -> None:
        if not isinstance(event, StepMetrics):
            return
        train_s = time.perf_counter() - state["t0"] - state["eval_s"]
        if train_s >= state["next"]:
            evaluate(trainer, train_s)
            state["next"] += eval_every
        if train_s >= budget:
            stop.set()

    trainer = Trainer(cfg, ts.images, on_event=on_event, stop=stop)
    evaluate(trainer, 0.0)  # the untrained generator: the ceiling
    state["next"] = eval_every
    state["eval_s"] = 0.0
    state["t0"] = time.perf_counter()
    result = trainer.run()
    train_s = time.perf_counter() - state["t0"] - state["eval_s"]
    if evals[-1]["step"] != trainer.step:
        evaluate(trainer, train_s)
    kept = sample(trainer, "model")  # what `medgan train` writes into the model file
    selection = trainer.selection()
    model_swd = _swd(kept, half_b)
    print(
        f"  {recipe}: model file holds step {selection['selected_step']} of {trainer.step}: "
        f"SWD {model_swd:.1f}",
        flush=True,
    )
    if png is not None:
        _grid(kept, png)
    structure = _structure(trainer, g_eval, cfg.z_dim, ts)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out_json.write_text(
        json.dumps(
            {
                "recipe": recipe,
                "status": result.status,
                "steps": trainer.step,
                "batch_size": cfg.batch_size,
                "train_s": train_s,
                "img_per_s": trainer.step * cfg.batch_size / max(train_s, 1e-9),
                "evals": evals,
                "model_swd": model_swd,
                "selection": selection,
                "peak_rss_mb": peak_mb,
                "n_eval": n_eval,
                "threads": torch.get_num_threads(),
                "structure": structure,
            }
        )
    )


# --------------------------------------------------------------------------- driver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget per recipe")
    parser.add_argument("--eval-every", type=float, default=30.0, help="seconds of training")
    parser.add_argument("--recipes", nargs="+", default=["dcgan", "default"])
    parser.add_argument("--png-dir", default=str(ROOT / "docs" / "images"))
    parser.add_argument("--json", help="write all figures here")
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="train the recipes side by side, one thread each (fair under a "
        "fluctuating machine load)",
    )
    parser.add_argument("--device", default="cpu",
                        help="cuda: 128², default recipe 4x wider, bf16 + channels_last (the "
                        "trainer's defaults), data on the device")
    parser.add_argument("--res", type=int, default=None, help="default: 64 on CPU, 128 on GPU")
    parser.add_argument("--c2st-seeds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true",
                        help="seconds of training, one C2ST seed: checks the script runs")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.worker:  # settings travel to the workers (and this process) by environment
        gpu = args.device.startswith(("cuda", "mps"))
        if args.smoke:
            args.minutes, args.eval_every, args.c2st_seeds = 0.05, 1.0, 1
            os.environ["MEDGAN_BENCH_C2ST_STEPS"] = "10"
        os.environ.update(
            MEDGAN_BENCH_RES=str(args.res or (128 if gpu else 64)),
            MEDGAN_BENCH_DEVICE=args.device,
            MEDGAN_BENCH_C2ST_SEEDS=str(args.c2st_seeds),
        )
        globals().update(RES=int(os.environ["MEDGAN_BENCH_RES"]), DEVICE=args.device,
                         C2ST_SEEDS=tuple(range(args.c2st_seeds)),
                         C2ST_STEPS=int(os.environ.get("MEDGAN_BENCH_C2ST_STEPS", "150")))  # fmt: skip
    png_dir = Path(args.png_dir) if args.png_dir else None
    if args.worker:
        png = png_dir / f"quality_{args.worker}.png" if png_dir else None
        worker(args.worker, args.minutes, args.eval_every, Path(args.worker_out), png)
        return 0

    import torch

    print(
        f"Machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"device {DEVICE}; load average {os.getloadavg()[0]:.1f}"
    )
    ts = _training_set()
    half_a, half_b = _halves(ts)
    from medgan.metrics.swd import _blur  # the pyramid's own kernel

    blurred = _blur(_blur(torch.from_numpy(half_a)[:, None])).numpy()[:, 0]
    noise = np.random.default_rng(0).uniform(-1, 1, half_a.shape).astype(np.float32)
    refs = {
        "real_vs_real": _swd(half_a, half_b),
        "blurred_real": _swd(blurred, half_b),
        "uniform_noise": _swd(noise, half_b),
    }
    threshold = refs["blurred_real"]
    from medgan.metrics.c2st import C2STConfig, c2st_auc
    from medgan.metrics.references import blur, erase_structure
    from medgan.metrics.swd import swd_levels_against_floor

    keys = ts.patient_keys
    ref_c2st = {
        name: c2st_auc(ts.images, fn(ts.images), groups=keys, synthetic_groups=keys,
                       config=C2STConfig(device=DEVICE, seeds=C2ST_SEEDS, steps=C2ST_STEPS)).to_dict()
        for name, fn in (("structure_erased", erase_structure), ("blurred", blur))
    }  # fmt: skip
    ref_levels = swd_levels_against_floor(ts.images, ts.images, keys, seed=0, device=DEVICE)
    assert ref_levels is not None
    print("Per-level SWD (x1e3, same sizes, vs real half B): real floor "
          + ", ".join(f"{k}px {v:.1f}" for k, v in ref_levels.floor_per_level.items())
          + "; structure-erased " + ", ".join(f"{k}px {v:.1f}" for k, v in ref_levels.erased.items()))
    for name, r in ref_c2st.items():
        print(f"C2ST AUC real vs {name}: {r['auc']:.3f} [{r['low']:.3f}, {r['high']:.3f}]")
    print(
        f"Demo study at {RES}²: {len(ts.images)} training slices ({len(half_a)} vs "
        f"{len(half_b)} in the by-patient halves); window {ts.window}"
    )
    print("References (SWD x1e3): " + ", ".join(f"{k} {v:.1f}" for k, v in refs.items()))
    print(
        f"Blurred real (the former 'recognizable' threshold, which accepts blobs) = "
        f"{threshold:.1f}; budget {args.minutes} min of training per recipe"
    )
    if png_dir is not None:
        _grid(half_a, png_dir / "quality_real.png")

    results = {}
    outs: dict[str, Path] = {}
    procs: list[subprocess.Popen[bytes]] = []
    env = dict(os.environ)
    if args.parallel:  # same external load for both: one thread each, side by side
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MEDGAN_BENCH_THREADS="1")
    for recipe in args.recipes:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
            outs[recipe] = Path(fh.name)
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            recipe,
            "--worker-out",
            str(outs[recipe]),
            "--minutes",
            str(args.minutes),
            "--eval-every",
            str(args.eval_every),
            "--png-dir",
            str(png_dir) if png_dir else "",
        ]
        proc = subprocess.Popen(cmd, env=env)
        if args.parallel:
            procs.append(proc)
        elif proc.wait() != 0:
            raise SystemExit(f"{recipe} worker failed")
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("a worker failed")
    for recipe, out in outs.items():
        results[recipe] = json.loads(out.read_text())
        out.unlink()

    print(
        f"\n{'recipe':8} {'steps':>6} {'img/s':>7} {'SWD last step':>13} {'model file':>16} "
        f"{'best seen':>9} {'<= blurred after':>18} {'peak RSS':>9}"
    )
    for recipe, r in results.items():
        evals = r["evals"]
        hit = next((e for e in evals if e["swd"] <= threshold), None)
        r["recognizable_after_s"] = hit["train_s"] if hit else None
        r["swd_final"] = evals[-1]["swd"]
        r["swd_best"] = min(e["swd"] for e in evals)
        if "swd_raw_g" in evals[-1]:
            r["swd_raw_g_final"] = evals[-1]["swd_raw_g"]
        when = f"{hit['train_s']:.0f} s (step {hit['step']})" if hit else "not reached"
        kept = f"{r['model_swd']:.1f} (step {r['selection']['selected_step']})"
        print(
            f"{recipe:8} {r['steps']:6d} {r['img_per_s']:7.1f} {r['swd_final']:13.1f} "
            f"{kept:>16} {r['swd_best']:9.1f} {when:>18} {r['peak_rss_mb']:7.0f} MB"
        )
    finest = max(ref_levels.floor_per_level)
    print(f"\nStructure of the model files' samples (threshold: below the structure-erased "
          f"reference: finest SWD {ref_levels.erased[finest]:.1f}, "
          f"C2ST AUC {ref_c2st['structure_erased']['auc']:.3f})")
    for recipe, r in results.items():
        st = r["structure"]
        lv, c = st["swd_levels"], st["c2st"]
        ok = (lv["samples"][str(finest)] < ref_levels.erased[finest]
              and c["auc"] < ref_c2st["structure_erased"]["auc"])
        print(f"{recipe:8} per-level SWD " + ", ".join(f"{k}px {v:.1f}" for k, v in lv["samples"].items())
              + f"  C2ST AUC {c['auc']:.3f} [{c['low']:.3f}, {c['high']:.3f}] per seed "
              + ", ".join(f"{a:.3f}" for a in c["per_seed"])
              + f"  shows structure: {'yes' if ok else 'no'}")
    for recipe, r in results.items():
        if "swd_raw_g_final" in r:
            print(f"{recipe}: raw (non-EMA) generator SWD at the end {r['swd_raw_g_final']:.1f}")
    if {"default", "dcgan"} <= results.keys():
        dc, de = results["dcgan"], results["default"]
        print(
            f"\nSWD ratio dcgan/default after the same budget (> 1: default is better): "
            f"model files {dc['model_swd'] / de['model_swd']:.2f}x, "
            f"last-step generators {dc['swd_final'] / de['swd_final']:.2f}x"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "references": refs,
                    "reference_c2st": ref_c2st,
                    "reference_levels": ref_levels.to_dict(),
                    "threshold": threshold,
                    "minutes": args.minutes,
                    "results": results,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
