"""Terminal progress for long jobs: a trainer-event listener and a plain (done, total) counter.

On a terminal the line is redrawn in place; when output is redirected (a log file, CI), plain
lines are written at most every ``plain_every_s`` seconds so logs stay short. This module has no
command of its own (no ``register``): ``medgan train`` and others use it.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import IO, Any

from medgan.train.events import (
    CheckpointSaved,
    Paused,
    QualityMeasured,
    Resumed,
    StepMetrics,
    TrainCancelled,
    TrainFailed,
    TrainFinished,
    TrainStarted,
)


def format_duration(seconds: float | None) -> str:
    """``75`` → ``1m15s``; ``3700`` → ``1h01m``; ``None`` → ``?``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _bar(fraction: float, width: int) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(round(fraction * width))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


class _Line:
    """One status line: redrawn in place on a TTY, throttled plain lines otherwise."""

    def __init__(self, stream: IO[str] | None, tty: bool | None, plain_every_s: float) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.plain_every_s = plain_every_s
        self._last_plain = -1e9
        self._last_text = ""
        self._drawn = False

    def width(self) -> int:
        return max(40, shutil.get_terminal_size((100, 20)).columns - 1)

    def update(self, text: str, *, force: bool = False) -> None:
        if self.tty:
            self.stream.write("\r" + text[: self.width()] + "\x1b[K")
            self._drawn = True
        else:
            now = time.monotonic()
            if text == self._last_text or (
                not force and now - self._last_plain < self.plain_every_s
            ):
                return
            self._last_plain = now
            self._last_text = text
            self.stream.write(text + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A permanent line (the status line, if any, is redrawn after it by the next update)."""
        if self.tty and self._drawn:
            self.stream.write("\r\x1b[K")
            self._drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


class TrainProgress:
    """Listener for trainer events that shows step/total, a bar, ETA, img/s and losses.

    Use: ``Trainer(..., on_event=TrainProgress())``. Keeps the last metrics in ``last`` and the
    final event in ``outcome`` for the caller's summary.
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        tty: bool | None = None,
        plain_every_s: float = 10.0,
        show_checkpoints: bool = False,
    ) -> None:
        self.line = _Line(stream, tty, plain_every_s)
        self.show_checkpoints = show_checkpoints
        self.started: TrainStarted | None = None
        self.last: StepMetrics | None = None
        self.outcome: TrainFinished | TrainCancelled | TrainFailed | None = None
        self.checkpoints: list[str] = []
        self.quality: QualityMeasured | None = None

    def __call__(self, event: Any) -> None:
        if isinstance(event, StepMetrics):
            self.last = event
            final = event.total_steps is not None and event.step >= event.total_steps
            self.line.update(self.format(event), force=final)
        elif isinstance(event, TrainStarted):
            self.started = event
            budget = (
                f"{event.total_steps} steps"
                if event.total_steps is not None
                else f"{format_duration(event.time_limit_s)}"
            )
            if event.total_steps is not None and event.time_limit_s is not None:
                budget += f" or {format_duration(event.time_limit_s)}"
            start = f", from step {event.start_step}" if event.start_step else ""
            self.line.message(
                f"Training {event.recipe} at {event.resolution}x{event.resolution} on "
                f"{event.n_images} images, device {event.device}, budget {budget}{start}."
            )
        elif isinstance(event, QualityMeasured):
            self.quality = event
        elif isinstance(event, CheckpointSaved):
            self.checkpoints.append(event.path)
            if self.show_checkpoints:
                self.line.message(f"Checkpoint saved at step {event.step}: {event.path}")
        elif isinstance(event, Paused):
            self.line.message(f"Paused at step {event.step}.")
        elif isinstance(event, Resumed):
            self.line.message(f"Resumed at step {event.step}.")
        elif isinstance(event, (TrainFinished, TrainCancelled, TrainFailed)):
            self.outcome = event
            if self.last is not None:
                self.line.update(self.format(self.last), force=True)
            self.line.close()

    def format(self, m: StepMetrics) -> str:
        """One status line for a metrics event."""
        if m.total_steps:
            fraction = m.step / m.total_steps
            count = f"step {m.step}/{m.total_steps}"
        else:
            limit = self.started.time_limit_s if self.started else None
            fraction = min(1.0, m.elapsed_s / limit) if limit else 0.0
            count = f"step {m.step}"
        parts = [
            f"{count} {_bar(fraction, 12)} {fraction:4.0%}",
            f"{m.img_per_s:,.0f} img/s",
            f"ETA {format_duration(m.eta_s)}",
            f"G {m.g_loss:.3f} D {m.d_loss:.3f}",
            f"D(x) {m.d_real:.2f} D(G(z)) {m.d_fake:.2f}",
        ]
        if m.aug_p >= 0.005:
            parts.append(f"aug p {m.aug_p:.2f}")
        if self.quality is not None:
            q = self.quality
            parts.append(f"SWD {q.swd:.0f} (best {q.best_swd:.0f} @ {q.best_step})")
        parts.append(f"elapsed {format_duration(m.elapsed_s)}")
        return " | ".join(parts)


class CountProgress:
    """``progress(done, total)`` callable for decoding, scanning, generating."""

    def __init__(
        self,
        label: str,
        stream: IO[str] | None = None,
        *,
        tty: bool | None = None,
        plain_every_s: float = 5.0,
        unit: str = "",
    ) -> None:
        self.label = label
        self.unit = unit
        self.line = _Line(stream, tty, plain_every_s)
        self._t0 = time.monotonic()
        self._done = False

    def __call__(self, done: int, total: int) -> None:
        if self._done:
            return
        elapsed = time.monotonic() - self._t0
        fraction = done / total if total else 1.0
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
        unit = f" {self.unit}" if self.unit else ""
        text = (
            f"{self.label} {done}/{total}{unit} {_bar(fraction, 20)} {fraction:4.0%} "
            f"ETA {format_duration(eta)}"
        )
        last = total > 0 and done >= total
        self.line.update(text, force=last or done == 0)
        if last:
            self.line.close()
            self._done = True

    def close(self) -> None:
        self.line.close()
