"""Typed settings and results of a utility run, and their JSON form.

The JSON document (``UtilityResult.to_dict``) has ``format: "medgan-utility"`` and a
``version``; keys may be added in later versions, never removed or renamed. It holds counts,
settings and scores only: patients appear as fold-local numbers, never as IDs or hashes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from medgan.core.errors import DataError

FORMAT = "medgan-utility"
VERSION = 1
TASKS = ("classify", "segment")
VERDICTS = ("helps", "no measurable effect", "hurts")

# Arm names. Synthetic arms carry their ratio: "synthetic@1", controls "shuffled@1", "extra_real".
REAL = "real"
CLASSIC = "real+classic"
SYNTHETIC = "synthetic"
SHUFFLED = "shuffled"
EXTRA_REAL = "extra_real"


def synthetic_arm(ratio: float) -> str:
    return f"{SYNTHETIC}@{ratio:g}"


def shuffled_arm(ratio: float) -> str:
    return f"{SHUFFLED}@{ratio:g}"


@dataclass(frozen=True)
class UtilityConfig:
    """How the downstream test runs (the same budget for every arm).

    Args:
        task: ``classify`` (slice labels) or ``segment`` (masks).
        ratios: synthetic slices per real training slice, one arm each.
        seeds: seeds per fold (network init, batches, augmentation, synthetic draws).
        folds: K of the patient K-fold.
        fractions: shares of each fold's training patients used as the real labelled set
            (learning-curve mode when more than one); the patients left over feed the
            extra-real control.
        steps: optimiser steps of every downstream run (same for every arm).
        batch_size, lr: downstream optimiser settings.
        controls: run the shuffled-label and extra-real controls.
        groups: merge classes, e.g. ``{"lesion": ("haemorrhage", "infarct")}``.
        vs_rest: two classes, this one against all the others (e.g. ``none``).
        bootstrap: resamples of the paired-difference interval.
        device: ``auto`` (GPU when present), ``cpu``, ``cuda``, ``mps``.
    """

    task: str = "classify"
    ratios: tuple[float, ...] = (1.0,)
    seeds: int = 3
    folds: int = 3
    fractions: tuple[float, ...] = (0.5,)
    steps: int = 150
    batch_size: int = 32
    lr: float = 2e-3
    controls: bool = True
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    vs_rest: str | None = None
    bootstrap: int = 2000
    device: str = "auto"
    split_seed: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise DataError(f"Unknown task {self.task!r}.", advice="Use classify or segment.")
        if not self.ratios or any(r <= 0 for r in self.ratios):
            raise DataError("Ratios must be > 0.", advice="For example --ratios 0.5,1,2.")
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise DataError(
                "Learning-curve fractions must be in (0, 1].", advice="For example 0.25,0.5,1."
            )
        if self.seeds < 1 or self.folds < 2 or self.steps < 1 or self.batch_size < 2:
            raise DataError(
                "Need at least 1 seed, 2 folds, 1 step and a batch of 2.",
                advice="Check --seeds, --folds, --steps and --batch.",
            )

    @property
    def control_ratio(self) -> float:
        """The ratio the controls use: 1 when asked for, else the first ratio."""
        return 1.0 if 1.0 in self.ratios else self.ratios[0]

    def arms(self) -> list[str]:
        """Every arm in run order: real, real+classic, synthetic ratios, then controls."""
        out = [REAL, CLASSIC] + [synthetic_arm(r) for r in self.ratios]
        if self.controls:
            out += [shuffled_arm(self.control_ratio), EXTRA_REAL]
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratios"] = list(self.ratios)
        data["fractions"] = list(self.fractions)
        data["groups"] = {k: list(v) for k, v in self.groups.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UtilityConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("ratios", "fractions"):
            if key in known:
                known[key] = tuple(float(v) for v in known[key])
        if "groups" in known:
            known["groups"] = {k: tuple(v) for k, v in known["groups"].items()}
        return cls(**known)


@dataclass(frozen=True)
class RunKey:
    """One downstream training run."""

    fraction: float
    fold: int
    seed: int
    arm: str

    def name(self) -> str:
        """File-safe identity (checkpoint file names)."""
        arm = self.arm.replace("+", "_").replace("@", "_r")
        return f"f{self.fraction:g}_k{self.fold}_s{self.seed}_{arm}"


@dataclass
class RunResult:
    """Scores of one run on its fold's test patients."""

    key: RunKey
    metrics: dict[str, float]
    n_real: int
    n_added: int
    elapsed_s: float
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = _finite(asdict(self))
        data.update(data.pop("key"))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        key = RunKey(float(data["fraction"]), int(data["fold"]), int(data["seed"]), data["arm"])
        return cls(
            key,
            {k: math.nan if v is None else float(v) for k, v in data["metrics"].items()},
            int(data["n_real"]),
            int(data["n_added"]),
            float(data["elapsed_s"]),
            dict(data.get("per_class") or {}),
            str(data.get("note", "")),
        )


def _finite(value: Any) -> Any:
    """NaN/inf → None, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Comparison:
    """An arm against real + classic: mean ± sd of the paired differences, the bootstrap
    interval, and the verdict it gives (for metrics where lower is better, the difference is
    taken so that > 0 is still an improvement)."""

    fraction: float
    arm: str
    metric: str
    mean_diff: float
    sd_diff: float
    ci_low: float
    ci_high: float
    n_pairs: int
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _finite(asdict(self))
        return out


@dataclass
class UtilityResult:
    """Everything a utility run found (the JSON document and what front ends show)."""

    config: UtilityConfig
    primary_metric: str
    classes: list[str]
    data: dict[str, Any]
    synthetic: dict[str, Any]
    runs: list[RunResult]
    summary: dict[str, dict[str, dict[str, dict[str, float]]]]  # fraction → arm → metric → stat
    comparisons: list[Comparison]
    verdict: str
    verdict_text: str
    controls: dict[str, Any]
    trustworthy: bool
    warnings: list[str]
    device: str
    elapsed_s: float
    status: str = "finished"  # or "cancelled" (partial)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "status": self.status,
            "task": self.config.task,
            "config": self.config.to_dict(),
            "primary_metric": self.primary_metric,
            "classes": list(self.classes),
            "data": self.data,
            "synthetic": self.synthetic,
            "verdict": self.verdict,
            "verdict_text": self.verdict_text,
            "trustworthy": self.trustworthy,
            "controls": self.controls,
            "warnings": list(self.warnings),
            "summary": _finite(self.summary),
            "comparisons": [c.to_dict() for c in self.comparisons],
            "runs": [r.to_dict() for r in self.runs],
            "device": self.device,
            "elapsed_s": self.elapsed_s,
        }
