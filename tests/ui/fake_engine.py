"""A fast stand-in for ``medgan.train.trainer.Trainer`` that follows its contract.

It emits the same typed events, honours stop/pause events, writes real (tiny) checkpoint files,
and can be told to fail like the real engine does (NaN, out of memory, or an unexpected bug).
Used to test the Train page's states without the cost of real training.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medgan.train import events as ev


@dataclass
class FakeResult:
    status: str
    step: int
    checkpoint_path: str | None
    message: str = ""


class FakeTrainer:
    """Steps every ``step_s`` seconds; ``fail_at`` makes it fail with ``fail_kind``."""

    instances: list[FakeTrainer] = []

    def __init__(
        self,
        config: Any,
        images: np.ndarray,
        *,
        on_event: Any = None,
        stop: threading.Event | None = None,
        pause: threading.Event | None = None,
        init_model: str | None = None,
        resume_from: str | None = None,
        step_s: float = 0.005,
        fail_at: int | None = None,
        fail_kind: str = "nan",
    ) -> None:
        self.config = config
        self.images = images
        self.emit = on_event or (lambda e: None)
        self.stop = stop or threading.Event()
        self.pause = pause or threading.Event()
        self.init_model = init_model
        self.resume_from = resume_from
        self.step_s = step_s
        self.fail_at = fail_at
        self.fail_kind = fail_kind
        self.thread_name = ""
        self.result: FakeResult | None = None
        FakeTrainer.instances.append(self)

    def _checkpoint(self, step: int) -> str:
        folder = Path(self.config.checkpoint_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"ckpt-{step:06d}.pt"
        path.write_bytes(b"fake checkpoint")
        self.emit(ev.CheckpointSaved(step=step, path=str(path)))
        return str(path)

    def run(self) -> FakeResult:
        self.thread_name = threading.current_thread().name
        total = self.config.steps
        start = time.monotonic()
        self.emit(ev.TrainStarted(total, None, 0, "cpu (fake)", len(self.images),
                                  self.config.resolution, self.config.recipe))
        step = 0
        last_ckpt: str | None = None
        while total is None or step < total:
            if self.pause.is_set():
                self.emit(ev.Paused(step=step))
                while self.pause.is_set() and not self.stop.is_set():
                    time.sleep(0.005)
                self.emit(ev.Resumed(step=step))
            if self.stop.is_set():
                last_ckpt = self._checkpoint(step)
                self.emit(ev.TrainCancelled(step, time.monotonic() - start, last_ckpt))
                self.result = FakeResult("cancelled", step, last_ckpt)
                return self.result
            step += 1
            time.sleep(self.step_s)
            if self.fail_at is not None and step >= self.fail_at:
                if self.fail_kind == "bug":
                    raise RuntimeError("boom: an unexpected bug")
                message, advice = {
                    "nan": (f"The losses became NaN at step {step}.",
                            "Lower the learning rates or use the default recipe."),
                    "oom": ("The GPU ran out of memory.", "Lower the batch size or the resolution."),
                }[self.fail_kind]
                self.emit(ev.TrainFailed(step, message, advice, last_ckpt))
                self.result = FakeResult("failed", step, last_ckpt, message)
                return self.result
            elapsed = time.monotonic() - start
            eta = (total - step) * elapsed / step if total else None
            g = 1.0 + 0.5 * np.sin(step / 5.0)
            self.emit(ev.StepMetrics(step, total, float(g), float(2.0 - g), 0.7, 0.3, 0.1,
                                     step * self.config.batch_size / max(elapsed, 1e-6),
                                     elapsed, eta))
            if step % self.config.sample_every == 0:
                r = self.config.resolution
                self.emit(ev.SampleGrid(step, np.full((4, r, r), np.sin(step), np.float32)))
            if step % self.config.checkpoint_every == 0:
                last_ckpt = self._checkpoint(step)
        last_ckpt = self._checkpoint(step)
        self.emit(ev.TrainFinished(step, time.monotonic() - start, last_ckpt))
        self.result = FakeResult("finished", step, last_ckpt)
        return self.result

    def model_state(self) -> dict[str, dict[str, Any]]:
        import torch

        return {"generator": {"w": torch.ones(3)}, "discriminator": {"w": torch.zeros(2)}}


def fake_factory(**options: Any) -> Any:
    """A trainer factory with fixed fake options (``step_s``, ``fail_at``, ``fail_kind``)."""

    def make(*args: Any, **kwargs: Any) -> FakeTrainer:
        return FakeTrainer(*args, **kwargs, **options)

    return make


def scored_set(n: int = 40, m: int = 20, *, copies: int = 3, seed: int = 0, res: int = 32) -> tuple[Any, Any, np.ndarray]:
    """A GeneratedSet whose first ``copies`` images are training slices, scored for real.

    Returns ``(generated, scores, training_images)``.
    """
    from medgan.curate.score import score_samples
    from medgan.generate.sampling import GeneratedSet

    rng = np.random.default_rng(seed)
    train = np.tanh(rng.normal(size=(m, res, res))).astype(np.float32)
    syn = np.tanh(rng.normal(size=(n, res, res))).astype(np.float32)
    syn[:copies] = train[:copies]
    keys = np.array([f"patient{i % 2}" for i in range(m)])
    scores = score_samples(syn, train, training_patient_keys=keys, device="cpu")
    generated = GeneratedSet(syn, (syn * 200.0 + 40.0).astype(np.float32), seed, np.arange(n),
                             window=(40.0, 400.0),
                             metadata={"recipe": "dcgan", "modality": "CT", "resolution": res})
    return generated, scores, train


def tiny_model_file(path: Path, *, recipe: str = "dcgan", res: int = 32) -> Path:
    """An untrained but valid model file (generator + discriminator) for fast tests."""
    import torch

    from medgan.models import build_models
    from medgan.models.modelfile import ModelMetadata, save_model

    torch.manual_seed(0)
    g, d = build_models(recipe, res, width=8)
    meta = ModelMetadata(recipe=recipe, resolution=res, window=(40.0, 400.0), modality="CT",
                         model_kwargs={"width": 8})
    return save_model(path, {"generator": g.state_dict(), "discriminator": d.state_dict()}, meta)
