"""Workflow: scores + filter settings + the user's choices → the decisions to export.

The Generate page calls :func:`curate` on every slider move and click (it is fast: no model,
no I/O); the CLI calls it once with its flags and no manual choices. Without scores (no
training data) only the discriminator-realism filters can run, and the result says that the
memorization guard did not.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from medgan.core.errors import Cancelled, ExportError
from medgan.curate.decisions import (
    compose_decisions,
    distance_mask,
    realism_only_decisions,
)
from medgan.curate.filters import Decisions, FilterConfig, apply_filters
from medgan.curate.score import ScoreTable
from medgan.workflows.progress import StageProgress


@dataclass(frozen=True)
class CurateRequest:
    """Filters and choices for one generated set.

    Args:
        n: number of generated slices.
        scores: the score table (``None`` without training data).
        realism: discriminator realism per slice, used when ``scores`` is ``None``.
        filters: thresholds, top-k, duplicates, memorization override.
        min_distance: minimum robust distance to the nearest training slice (None = off).
        manual: per slice ``USER_ACCEPT`` / ``USER_REJECT`` / ``UNDECIDED`` (None = none).
        auto: the filters' decisions from an earlier call with the same scores and
            ``filters`` (the GUI reuses them when only manual choices changed).
    """

    n: int
    scores: ScoreTable | None = None
    realism: np.ndarray | None = None
    filters: FilterConfig = field(default_factory=FilterConfig)
    min_distance: float | None = None
    manual: np.ndarray | None = None
    auto: Decisions | None = None


@dataclass(frozen=True)
class CurateResult:
    """``decisions``: final, for export. ``auto``: the filters alone (what the gallery shows
    before the user's choices); ``far_enough``: the distance filter's mask."""

    decisions: Decisions
    auto: Decisions
    far_enough: np.ndarray

    @property
    def n_kept(self) -> int:
        return self.decisions.n_kept


def _check_labelled_filters(scores: ScoreTable | None, cfg: FilterConfig) -> None:
    """Per-class and label-fidelity filters need a scored labelled set."""
    columns = {} if scores is None else scores.columns
    unscored = (
        "label_fidelity" in columns
        and not np.isfinite(np.asarray(columns["label_fidelity"], np.float64)).any()
    )
    if cfg.min_label_fidelity is not None and unscored:
        note = (scores.settings.get("label_fidelity") or {}).get("note", "") if scores else ""
        raise ExportError(
            "Label fidelity could not be scored for this set"
            + (f" ({note})" if note else "")
            + ", so the minimum label fidelity cannot be applied.",
            advice="Give the labelled training data (two classes or more), or switch off the "
            "label-fidelity filter.",
        )
    if cfg.min_label_fidelity is not None and "label_fidelity" not in columns:
        raise ExportError(
            "The minimum label fidelity needs a labelled set scored against labelled training "
            "slices, and this set has no label-fidelity score.",
            advice="Generate with a labelled model and give the labelled training data, or "
            "switch off the label-fidelity filter.",
        )
    if cfg.per_class_keep_top is not None and "label" not in columns:
        raise ExportError(
            "Per-class top-k needs a labelled set scored against the training data.",
            advice="Generate with a labelled model and give the training data, or use the "
            "overall top-k (--keep-top) instead.",
        )


def curate(
    request: CurateRequest,
    *,
    progress: StageProgress | None = None,
    cancel: threading.Event | None = None,
) -> CurateResult:
    """Run the filters, the distance filter and the user's choices (stage ``curate``).

    Raises:
        ExportError: realism filters asked for, but nothing can score realism; label
            filters asked for on an unlabelled or unscored set.
    """
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    cfg = request.filters
    _check_labelled_filters(request.scores, cfg)
    if request.scores is not None:
        auto = request.auto if request.auto is not None else apply_filters(request.scores, cfg)
        far = distance_mask(request.scores, request.min_distance)
    else:
        realism = (
            np.full(request.n, np.nan) if request.realism is None else np.asarray(request.realism)
        )
        if (cfg.min_realism is not None or cfg.keep_top_k is not None) and not np.isfinite(
            realism
        ).any():
            raise ExportError(
                "This model file holds no discriminator, so realism cannot be scored.",
                advice="Give the training data to score by distance, or switch off the "
                "minimum-realism and top-k filters (--min-realism/--keep-top).",
            )
        auto = realism_only_decisions(
            realism, min_realism=cfg.min_realism, keep_top_k=cfg.keep_top_k,
            allow_memorized=cfg.allow_memorized,
        )  # fmt: skip
        far = np.ones(request.n, dtype=bool)
    decisions = compose_decisions(
        auto, request.manual, far_enough=far, min_distance=request.min_distance,
        allow_memorized=cfg.allow_memorized,
    )  # fmt: skip
    if progress is not None:
        progress("curate", 1, 1)
    return CurateResult(decisions, auto, far)
