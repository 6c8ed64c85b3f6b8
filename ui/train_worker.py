"""Training in a QThread: a :class:`~ui.workers.Worker` that runs ``Trainer.run``.

Trainer events are forwarded through ``event`` (a ``Signal(object)``); step metrics are
throttled to ≤ 10 per second, keeping the newest, which is flushed before the run pauses or
ends so the last step is always shown. Stop is a direct call that sets the trainer's stop
``threading.Event``; pause/resume set and clear its pause event.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from medgan.train.events import (
    Paused,
    SampleGrid,
    StepMetrics,
    TrainCancelled,
    TrainFailed,
    TrainFinished,
)
from ui.workers import MAX_SIGNALS_PER_S, LatestThrottle, Worker

log = logging.getLogger(__name__)

TrainerFactory = Callable[..., Any]
_FLUSH_BEFORE = (TrainFinished, TrainCancelled, TrainFailed, Paused)


def _default_factory(*args: Any, **kwargs: Any) -> Any:
    from medgan.train.trainer import Trainer  # heavy (torch): imported in the worker thread

    return Trainer(*args, **kwargs)


def leave_a_core_for_the_ui() -> int:
    """Limit torch's CPU threads to all cores but one, so the UI thread always has a core.

    With every core busy in torch's thread pool (which spin-waits between operations), the
    event loop of a 2-4 core laptop stalls for hundreds of milliseconds. Returns the count set.
    """
    import torch

    wanted = max(1, (os.cpu_count() or 1) - 1)
    if torch.get_num_threads() > wanted:
        torch.set_num_threads(wanted)
        log.info("Using %d CPU threads for torch (one core left for the window)", wanted)
    return torch.get_num_threads()


def warm_up_training() -> None:
    """Import what the first training step needs (the trainer, and ``torch._dynamo``, which
    ``torch.optim`` pulls in on first use and which holds the interpreter lock for ~1-3 s).

    Call it in a worker while the app is idle (e.g. right after launch), never mid-job.
    """
    import torch

    import medgan.train.trainer  # noqa: F401

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def resize_images(images: np.ndarray, resolution: int) -> np.ndarray:
    """Resize (N, R, R) float32 images to (N, resolution, resolution) (area when shrinking)."""
    images = np.asarray(images, dtype=np.float32)
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    import torch
    import torch.nn.functional as F  # noqa: N812

    t = torch.from_numpy(np.ascontiguousarray(images))[:, None]
    mode = "area" if resolution < images.shape[-1] else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    out = F.interpolate(t, size=(resolution, resolution), mode=mode, **kwargs)
    return out[:, 0].clamp_(-1.0, 1.0).numpy().astype(np.float32)


class TrainWorker(Worker):
    """Runs one training session; ``result`` carries the trainer's ``TrainResult``.

    The trainer object is kept after the run so that :meth:`model_state` can be saved as a
    model file (from another worker) once the run is over.
    """

    def __init__(
        self,
        config: Any,
        images: np.ndarray,
        *,
        init_model: str | None = None,
        resume_from: str | None = None,
        trainer_factory: TrainerFactory | None = None,
        metrics_rate: float = MAX_SIGNALS_PER_S,
    ) -> None:
        super().__init__(name="training")
        self.config = config
        self.images = images
        self.init_model = init_model
        self.resume_from = resume_from
        self._factory = trainer_factory or _default_factory
        self._pause = threading.Event()
        self._metrics = LatestThrottle(self.event.emit, rate=metrics_rate)
        self._lock = threading.Lock()
        self.trainer: Any = None
        self.train_outcome: Any = None
        self.last_step = 0

    # -- called from the UI thread (direct calls: the worker thread is busy) ----------------
    def pause(self) -> None:
        self._pause.set()

    def resume(self) -> None:
        self._pause.clear()

    def is_paused(self) -> bool:
        return self._pause.is_set()

    def cancel(self) -> None:
        """Stop training at the next step; the trainer saves a checkpoint on the way out."""
        super().cancel()
        self._pause.clear()  # a paused trainer must wake up to notice the stop

    @property
    def pause_event(self) -> threading.Event:
        return self._pause

    # -- worker thread ----------------------------------------------------------------------
    def _forward(self, event: Any) -> None:
        with self._lock:
            if isinstance(event, StepMetrics):
                self.last_step = event.step
                self._metrics(event)
                return
            if isinstance(event, _FLUSH_BEFORE):  # the last step shows before the run ends
                self._metrics.flush()
            if isinstance(event, SampleGrid):  # never share a buffer the trainer may reuse
                event = dataclasses.replace(event, images=np.array(event.images, copy=True))
            self.event.emit(event)

    def work(self) -> Any:
        from medgan.workflows.training import TrainRequest, train_and_save

        leave_a_core_for_the_ui()
        self.images = resize_images(self.images, int(self.config.resolution))
        request = TrainRequest(
            self.config,
            self.images,
            init_model=self.init_model or None,
            resume_from=self.resume_from,
        )
        try:
            self.train_outcome = train_and_save(
                request,
                on_event=self._forward,
                stop=self.cancel_event,
                pause=self._pause,
                trainer_factory=self._factory,
                on_trainer=lambda trainer: setattr(self, "trainer", trainer),
            )
            return self.train_outcome
        finally:
            with self._lock:
                self._metrics.flush()

    def result_step(self) -> int:
        """The step the run ended at (the last step seen while it runs)."""
        outcome = self.train_outcome
        return int(outcome.step) if outcome is not None else self.last_step

    def model_state(self) -> dict[str, Any]:
        """The trainer's model state (EMA generator + discriminator), for ``save_model``."""
        if self.trainer is None:
            raise RuntimeError("Training has not started.")
        return self.trainer.model_state()
