"""How workflows report progress: ``progress(stage, done, total)``.

A workflow runs named stages (``scan``, ``prepare``, ``generate``, ``score``, ``export``...)
and calls ``progress(stage, done, total)`` as each advances. Front ends adapt it:
:func:`overall_fraction` turns it into one ``fraction`` for a progress bar (the GUI),
:func:`per_stage` gives each stage its own ``(done, total)`` listener (the CLI's bars).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

StageProgress = Callable[[str, int, int], Any]
"""``progress(stage, done, total)``."""

CountFn = Callable[[int, int], Any]


def stage(progress: StageProgress | None, name: str) -> CountFn | None:
    """A ``(done, total)`` callback for one stage (``None`` when nobody listens)."""
    if progress is None:
        return None

    def report(done: int, total: int) -> None:
        progress(name, int(done), int(total))

    return report


def overall_fraction(callback: Callable[..., Any], weights: Mapping[str, float]) -> StageProgress:
    """Stage events → ``callback(fraction, message=stage)`` over the weighted stages.

    Stages run in the order of ``weights``; a stage missing from ``weights`` (or skipped)
    does not move the bar.
    """
    total_weight = float(sum(weights.values())) or 1.0
    starts: dict[str, float] = {}
    acc = 0.0
    for name, weight in weights.items():
        starts[name] = acc
        acc += weight

    def report(name: str, done: int, total: int) -> None:
        if name not in weights:
            return
        part = min(1.0, done / total) if total else 1.0
        callback((starts[name] + weights[name] * part) / total_weight, message=name)

    return report


def per_stage(factory: Callable[[str], CountFn | None]) -> StageProgress:
    """One ``(done, total)`` listener per stage, made by ``factory(stage)`` on first use."""
    listeners: dict[str, CountFn | None] = {}

    def report(name: str, done: int, total: int) -> None:
        if name not in listeners:
            listeners[name] = factory(name)
        listener = listeners[name]
        if listener is not None:
            listener(done, total)

    return report
