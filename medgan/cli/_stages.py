"""Terminal progress for workflows: one :class:`CountProgress` line per workflow stage."""

from __future__ import annotations

from medgan.cli.progress import CountProgress
from medgan.workflows.progress import StageProgress, per_stage

#: Workflow stage → (label, unit) of its progress line.
STAGE_LABELS: dict[str, tuple[str, str]] = {
    "scan": ("Scanning", "files"),
    "prepare": ("Preparing", "slices"),
    "generate": ("Generating", "slices"),
    "score": ("Scoring", ""),
    "export": ("Exporting", "slices"),
    "evaluate": ("Evaluating", "stages"),
}


def stage_bars(labels: dict[str, tuple[str, str]] | None = None) -> StageProgress:
    """A workflow ``progress`` that draws one line per stage on stderr."""
    table = {**STAGE_LABELS, **(labels or {})}

    def factory(stage: str) -> CountProgress:
        label, unit = table.get(stage, (stage.capitalize(), ""))
        return CountProgress(label, unit=unit)

    return per_stage(factory)
