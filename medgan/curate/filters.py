"""Keep the good synthetic slices, reject the rest, and say why for each one.

Filters run in a fixed order on a :class:`medgan.curate.score.ScoreTable`:

1. memorization guard (on by default): a slice under the calibrated threshold is rejected
   unless ``allow_memorized=True``; the override is recorded;
2. intensity sanity: out-of-range share above ``max_out_of_range``, empty slices;
3. ``min_realism``;
4. near-duplicates: in each duplicate group only the most realistic survivor is kept;
5. ``keep_top_k`` by realism among the survivors.

Labelled sets (score columns from :mod:`medgan.curate.labelled`) add: a copied real mask counts
as memorized (step 1); implausible masks (``drop_implausible_masks``, step 2);
``min_label_fidelity`` (after step 3); ``per_class_keep_top`` by realism within each intended
class (before step 5). On unlabelled scores these filters do nothing.

Example::

    decisions = apply_filters(scores, FilterConfig(keep_top_k=500))
    images[decisions.keep]; decisions.reasons[i]; decisions.to_dict()  # for the manifest
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from medgan.curate.score import duplicate_groups

if TYPE_CHECKING:
    from medgan.curate.score import ScoreTable

#: Short codes of rejection causes, in the order filters run.
REASON_CODES = ("memorized", "out_of_range", "empty", "low_realism", "duplicate", "top_k",
                "memorized_mask", "implausible_mask", "low_fidelity", "class_top_k")  # fmt: skip


@dataclass(frozen=True)
class FilterConfig:
    """Filter settings. ``None`` switches a threshold off."""

    min_realism: float | None = None
    max_out_of_range: float | None = 0.01
    drop_empty: bool = True
    keep_top_k: int | None = None
    dedupe: bool = True
    dedupe_threshold: float | None = None  # robust distance; None = the calibrated one
    allow_memorized: bool = False
    min_label_fidelity: float | None = None  # labelled sets: probability of the intended class
    per_class_keep_top: int | None = None  # labelled sets: K most realistic of each class
    drop_implausible_masks: bool = True  # sets with masks

    def __post_init__(self) -> None:
        if self.min_label_fidelity is not None and not 0.0 <= self.min_label_fidelity <= 1.0:
            raise ValueError("min_label_fidelity must lie between 0 and 1")
        if self.per_class_keep_top is not None and self.per_class_keep_top < 0:
            raise ValueError("per_class_keep_top must be 0 or more")
        if self.min_realism is not None and not 0.0 <= self.min_realism <= 1.0:
            raise ValueError("min_realism must lie between 0 and 1")
        if self.max_out_of_range is not None and not 0.0 <= self.max_out_of_range <= 1.0:
            raise ValueError("max_out_of_range must lie between 0 and 1")
        if self.keep_top_k is not None and self.keep_top_k < 0:
            raise ValueError("keep_top_k must be 0 or more")
        if self.dedupe_threshold is not None and self.dedupe_threshold < 0:
            raise ValueError("dedupe_threshold must be 0 or more")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FilterConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class Decisions:
    """Per-slice outcome of the filters."""

    keep: np.ndarray  # bool (N,)
    reasons: list[str]  # "" for kept slices; a sentence for rejected ones
    codes: list[tuple[str, ...]]  # every filter that rejected the slice (see REASON_CODES)
    memorized: np.ndarray  # bool (N,), as scored
    override_used: bool  # a memorized slice was kept because allow_memorized was set
    overridden: np.ndarray  # bool (N,), memorized and kept
    config: FilterConfig
    dedupe_threshold: float | None
    counts: dict[str, int] = field(default_factory=dict)
    guard_ran: bool = True  # False: no training data, the memorization guard could not run

    @property
    def n_kept(self) -> int:
        return int(self.keep.sum())

    @property
    def kept_indices(self) -> np.ndarray:
        return np.flatnonzero(self.keep)

    @property
    def guard_state(self) -> str:
        """``on``, ``overridden`` or ``not run (no training data)``."""
        if not self.guard_ran:
            return "not run (no training data)"
        return "overridden" if self.config.allow_memorized else "on"

    def to_dict(self) -> dict[str, Any]:
        """Summary for the manifest: settings, counts per reason, whether the guard was overridden."""
        return {
            "config": self.config.to_dict(),
            "dedupe_threshold": self.dedupe_threshold,
            "n_total": len(self.keep),
            "n_kept": self.n_kept,
            "rejected_by": dict(self.counts),
            "memorization_guard": self.guard_state,
            "memorization_override_used": self.override_used,
            "n_memorized_kept": int(self.overridden.sum()),
        }

    def records(self) -> list[dict[str, Any]]:
        """Per-slice decision rows (keep, reason, codes, override) for manifests and the GUI."""
        return [
            {
                "keep": bool(k),
                "reason": r,
                "rejected_by": ";".join(c),
                "memorization_override": bool(o),
            }
            for k, r, c, o in zip(self.keep, self.reasons, self.codes, self.overridden, strict=True)
        ]


def apply_filters(scores: ScoreTable, config: FilterConfig | None = None) -> Decisions:
    """Decide which slices to keep; every rejection carries a human-readable reason."""
    cfg = config or FilterConfig()
    n = len(scores)
    cal = scores.calibration
    why: list[list[str]] = [[] for _ in range(n)]
    codes: list[list[str]] = [[] for _ in range(n)]
    alive = np.ones(n, bool)

    def reject(i: int | np.integer, code: str, text: str) -> None:
        alive[i] = False
        codes[i].append(code)
        why[i].append(text)

    memorized = np.asarray(scores["memorized"], bool)
    columns = scores.columns
    mask_copy = np.asarray(columns.get("mask_memorized", np.zeros(n, bool)), bool)
    pix_d, rob_d = scores["nn_pixel_distance"], scores["nn_robust_distance"]
    pix_i, rob_i = scores["nn_pixel_index"], scores["nn_robust_index"]
    if not cfg.allow_memorized:
        for i in np.flatnonzero(memorized):
            if pix_d[i] <= cal.pixel_threshold:
                detail = (f"pixel distance {pix_d[i]:.4f} ≤ threshold {cal.pixel_threshold:.4f} "
                          f"to training slice #{pix_i[i]}")  # fmt: skip
            else:
                detail = (f"robust distance {rob_d[i]:.4f} ≤ threshold {cal.robust_threshold:.4f} "
                          f"to training slice #{rob_i[i]}")  # fmt: skip
            reject(i, "memorized", f"too close to a training slice ({detail})")
        for i in np.flatnonzero(mask_copy):
            dice = float(columns["mask_best_dice"][i])
            reject(i, "memorized_mask", f"mask copies the mask of training slice "
                   f"#{int(columns['mask_best_index'][i])} (Dice {dice:.3f})")  # fmt: skip
    memorized = memorized | mask_copy

    oor = scores["out_of_range_fraction"]
    if cfg.max_out_of_range is not None:
        for i in np.flatnonzero(oor > cfg.max_out_of_range):
            reject(i, "out_of_range", f"{100 * oor[i]:.1f}% of pixels out of range "
                   f"(limit {100 * cfg.max_out_of_range:.1f}%)")  # fmt: skip
    if cfg.drop_empty:
        fg = scores["foreground_fraction"]
        for i in np.flatnonzero(np.asarray(scores["empty"], bool)):
            reject(i, "empty", f"empty slice ({100 * fg[i]:.1f}% foreground)")
    if cfg.drop_implausible_masks and "mask_plausible" in columns:
        reasons = columns.get("mask_reason")
        for i in np.flatnonzero(~np.asarray(columns["mask_plausible"], bool)):
            text = str(reasons[i]) if reasons is not None else "implausible mask"
            reject(i, "implausible_mask", text or "implausible mask")

    realism = np.nan_to_num(np.asarray(scores["realism"], np.float64), nan=-np.inf)
    label = "discriminator realism" if scores.realism_source == "discriminator" else "realism"
    if cfg.min_realism is not None:
        for i in np.flatnonzero(realism < cfg.min_realism):
            reject(i, "low_realism", f"{label} {realism[i]:.3f} < minimum {cfg.min_realism:.3f}")
    if cfg.min_label_fidelity is not None and "label_fidelity" in columns:
        fid = np.nan_to_num(np.asarray(columns["label_fidelity"], np.float64), nan=-np.inf)
        for i in np.flatnonzero(fid < cfg.min_label_fidelity):
            reject(i, "low_fidelity", f"label fidelity {fid[i]:.3f} < minimum "
                   f"{cfg.min_label_fidelity:.3f}")  # fmt: skip

    dedupe_thr: float | None = None
    if cfg.dedupe and n > 1:
        dedupe_thr = (
            cal.duplicate_threshold if cfg.dedupe_threshold is None else cfg.dedupe_threshold
        )
        if cfg.dedupe_threshold is None:
            groups = np.asarray(scores["duplicate_group"])
        else:
            groups = duplicate_groups(scores["nn_synthetic_distance"],
                                      scores["nn_synthetic_index"], dedupe_thr)  # fmt: skip
        for g in np.unique(groups[groups >= 0]):
            members = np.flatnonzero((groups == g) & alive)
            if len(members) < 2:
                continue
            best = members[np.argmax(realism[members])]  # ties: lowest index
            for i in members:
                if i != best:
                    reject(i, "duplicate", f"near-duplicate of synthetic slice #{best} "
                           f"(group {g}, threshold {dedupe_thr:.4f})")  # fmt: skip

    if cfg.per_class_keep_top is not None and "label" in columns:
        labels = np.asarray(columns["label"])
        names = list(scores.settings.get("class_names", []))
        for c in np.unique(labels):
            cname = names[int(c)] if 0 <= int(c) < len(names) else f"#{int(c)}"
            survivors = np.flatnonzero(alive & (labels == c))
            k = cfg.per_class_keep_top
            order = survivors[np.argsort(-realism[survivors], kind="stable")]
            for rank, i in enumerate(order[k:], start=k + 1):
                reject(i, "class_top_k", f"not in the top {k} of class {cname} by {label} "
                       f"(rank {rank})")  # fmt: skip

    if cfg.keep_top_k is not None:
        survivors = np.flatnonzero(alive)
        if len(survivors) > cfg.keep_top_k:
            order = survivors[np.argsort(-realism[survivors], kind="stable")]
            for rank, i in enumerate(order[cfg.keep_top_k :], start=cfg.keep_top_k + 1):
                reject(i, "top_k", f"not in the top {cfg.keep_top_k} by {label} (rank {rank})")

    keep = alive.copy()
    overridden = keep & memorized
    counts = {c: sum(c in cs for cs in codes) for c in REASON_CODES}
    return Decisions(
        keep=keep,
        reasons=["; ".join(w) for w in why],
        codes=[tuple(c) for c in codes],
        memorized=memorized,
        override_used=bool(cfg.allow_memorized and overridden.any()),
        overridden=overridden,
        config=cfg,
        dedupe_threshold=dedupe_thr,
        counts=counts,
    )
