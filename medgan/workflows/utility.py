"""Workflow: "Does it help?" — train a downstream model with and without synthetic slices.

The job behind ``medgan utility`` and the app's "Does it help?" page. Patients are split
K-fold (:mod:`medgan.utility.splits`); per fold and learning-curve fraction a real training
set is drawn from the training patients (the rest feed the extra-real control); per seed,
every arm (:mod:`medgan.utility.arms`) trains the same network from the same initial weights
for the same number of steps and is scored on the fold's test patients. Synthetic slices come
from a :class:`~medgan.utility.sources.SyntheticSource`, or from one ``default`` GAN per class
trained here on the fold's real training slices only (:class:`PerClassGanSource`).

Every check on the input runs before anything trains. Each finished run is saved atomically
in ``checkpoint_dir/runs/``; the same request with the same folder resumes where it stopped.
Progress: stages ``scan``, ``prepare``, ``gan`` (per-class models) and ``runs``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from medgan.core.device import describe_device, resolve_device
from medgan.core.errors import Cancelled, DataError, ModelFileError
from medgan.core.fileio import atomic_write_json
from medgan.utility import controls, stats
from medgan.utility.arms import build_pool, parse_arm, wanted_counts
from medgan.utility.records import (
    EXTRA_REAL,
    SHUFFLED,
    SYNTHETIC,
    RunKey,
    RunResult,
    UtilityConfig,
    UtilityResult,
    synthetic_arm,
)
from medgan.utility.scores import clean
from medgan.utility.sources import DrawRequest, SyntheticSource
from medgan.utility.splits import (
    Fold,
    assert_disjoint,
    patient_classes,
    patient_folds,
    slice_mask,
    subset_patients,
)
from medgan.utility.tasks import BatchProbe, Pool, RunSettings, train_and_score
from medgan.workflows.progress import StageProgress, stage

log = logging.getLogger(__name__)

RunListener = Callable[[RunResult, int, int, float | None], Any]
"""``on_run(result, done, total, eta_s)`` after each run (done counts resumed runs too)."""


# --------------------------------------------------------------------------- inputs
@dataclass
class LabelledData:
    """Real labelled slices: images in [-1, 1], hashed patient key, labels and/or masks."""

    images: np.ndarray
    keys: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...]
    masks: np.ndarray | None = None
    segment_names: tuple[str, ...] = ()
    window: Any = None

    @classmethod
    def from_training_set(cls, ts: Any) -> LabelledData:
        """All slices of a :class:`~medgan.dataset.training_set.TrainingSet` (hold-out too)."""
        parts = [(ts.images, ts.patient_keys, ts.labels, ts.masks)]
        if ts.holdout is not None:
            h = ts.holdout
            parts.append((h.images, h.patient_keys, h.labels, h.masks))
        labels = None if ts.labels is None else np.concatenate([p[2] for p in parts])
        masks = None if ts.masks is None else np.concatenate([p[3] for p in parts])
        return cls(
            np.concatenate([p[0] for p in parts]).astype(np.float32),
            np.concatenate([np.asarray(p[1]).astype(str) for p in parts]),
            labels, tuple(ts.class_names), masks, tuple(ts.segment_names), ts.window,
        )  # fmt: skip

    def digest(self) -> str:
        h = hashlib.sha256(self.images.tobytes())
        h.update("|".join(self.keys.tolist()).encode())
        for arr in (self.labels, self.masks):
            h.update(b"-" if arr is None else arr.tobytes())
        h.update(repr((self.class_names, self.segment_names)).encode())
        return h.hexdigest()[:24]


@dataclass(frozen=True)
class GanBudget:
    """GANs trained per fold on its real training slices: one ``default`` model per class,
    or (``recipe="conditional"``) one class-conditional model for all classes."""

    steps: int = 400
    minutes: float | None = None
    batch_size: int | None = None
    recipe: str = "default"
    width: int | None = None  # None: the recipe's default


@dataclass(frozen=True)
class UtilityRequest:
    """A utility job. Give ``data`` (already prepared) or ``folder`` (+ label/mask files);
    give ``synthetic`` (a source) or ``gan`` (train one GAN per class per fold)."""

    config: UtilityConfig = field(default_factory=UtilityConfig)
    data: LabelledData | None = None
    folder: str | None = None
    label_files: Sequence[str] = ()
    mask_files: Sequence[str] = ()
    resolution: int = 64
    window: str = "file"
    synthetic: SyntheticSource | None = None
    gan: GanBudget | None = None
    checkpoint_dir: str | Path | None = None
    allow_unchecked: bool = False  # a synthetic set whose training patients are unknown


def load_labelled_data(
    request: UtilityRequest,
    *,
    progress: StageProgress | None = None,
    cancel: threading.Event | None = None,
) -> LabelledData:
    """Scan the folder, match labels and masks, and build the slices (no hold-out)."""
    if request.data is not None:
        return request.data
    if not request.folder:
        raise DataError("No real data given.", advice="Give a DICOM folder with labels (--data).")
    from medgan.dataset.training_set import TrainingSetConfig, build_training_set
    from medgan.dicom.index import scan_folder
    from medgan.dicom.labels import load_labels
    from medgan.workflows.dataset import select_series

    scan = scan_folder(request.folder, progress=stage(progress, "scan"), cancel=cancel)
    series, _notes = select_series(scan, None)
    labels = load_labels(scan, csv_files=list(request.label_files),
                         mask_files=list(request.mask_files))  # fmt: skip
    config = TrainingSetConfig.with_window(request.window, resolution=request.resolution)
    ts = build_training_set(series, config, progress=stage(progress, "prepare"), cancel=cancel,
                            labels=labels)  # fmt: skip
    return LabelledData.from_training_set(ts)


def prepare_classes(data: LabelledData, config: UtilityConfig) -> LabelledData:
    """Merge classes (``groups``, ``vs_rest``) and keep what the task can use."""
    if config.task == "segment":
        if data.masks is None or not data.segment_names:
            raise DataError(
                "Segmentation needs masks, and the data has none.",
                advice="Add a DICOM SEG, RTSTRUCT or NIfTI mask (--masks), or use --task classify.",
            )
        names, lut = _merge(data.segment_names, config)
        table = np.concatenate([[0], np.asarray(lut) + 1]).astype(np.uint8)
        return replace(data, masks=table[data.masks], segment_names=names)
    if data.labels is None or not data.class_names:
        raise DataError(
            "Classification needs slice labels, and the data has none.",
            advice="Give a labels CSV (--labels) or masks (a masked slice is labelled with "
            "its segment).",
        )
    names, lut = _merge(data.class_names, config)
    known = data.labels >= 0
    labels = np.asarray(lut, np.int64)[data.labels[known]]
    if len(names) < 2:
        raise DataError("Classification needs at least two classes.",
                        advice="Check the labels, --group and --vs-rest.")  # fmt: skip
    return LabelledData(
        data.images[known], data.keys[known], labels, names,
        data.masks[known] if data.masks is not None else None, data.segment_names, data.window,
    )  # fmt: skip


def _merge(names: Sequence[str], config: UtilityConfig) -> tuple[tuple[str, ...], list[int]]:
    """New class table and old index → new index."""
    rename = _rename_map(names, config)
    new: list[str] = []
    for n in names:
        if rename.get(n, n) not in new:
            new.append(rename.get(n, n))
    if config.vs_rest is not None:  # the named class first: the other one is "positive"
        new.sort(key=lambda n: n != config.vs_rest)
    return tuple(new), [new.index(rename.get(n, n)) for n in names]


def _rename_map(names: Sequence[str], config: UtilityConfig) -> dict[str, str]:
    rename: dict[str, str] = {}
    for group, members in config.groups.items():
        for m in members:
            if m not in names:
                raise DataError(f"--group {group}: the data has no class {m!r}.",
                                advice=f"Classes: {', '.join(names)}.")  # fmt: skip
            rename[m] = group
    if config.vs_rest is not None:
        if config.vs_rest not in names:
            raise DataError(f"--vs-rest: the data has no class {config.vs_rest!r}.",
                            advice=f"Classes: {', '.join(names)}.")  # fmt: skip
        for n in names:
            if n != config.vs_rest:
                rename[n] = "other"
    return rename


# --------------------------------------------------------------------------- GAN per class
class PerClassGanSource:
    """One ``default`` GAN per class, trained per (fraction, fold) on that run's real slices
    through :func:`medgan.workflows.training.train_and_save`; model files are kept in
    ``folder`` (the checkpoint folder), so a resumed job does not train them again."""

    trains_per_fold = True

    def __init__(self, budget: GanBudget, folder: Path, *, resolution: int, device: str,
                 progress: StageProgress | None = None) -> None:  # fmt: skip
        self.budget = budget
        self.folder = folder
        self.resolution = resolution
        self.device = device
        self.progress = progress
        self.trained: list[dict[str, Any]] = []
        self.kind = ("conditional GAN (trained per fold)" if budget.recipe == "conditional"
                     else "default GAN per class (trained per fold)")  # fmt: skip

    def seen_patients(self) -> frozenset[str] | None:
        return frozenset()  # trains on each fold's own training patients only

    def check(self, task: str, class_names: Sequence[str]) -> None:
        if self.budget.recipe not in ("default", "conditional"):
            raise DataError(f"The utility trains default or conditional GANs, not "
                            f"{self.budget.recipe!r}.", advice="Use --gan-recipe default.")  # fmt: skip
        if task == "segment":
            raise DataError(
                "A default GAN makes images without masks: segmentation needs image+mask pairs.",
                advice="Use an export folder of image+mask pairs, or --task classify.",
            )

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "recipe": self.budget.recipe, "steps": self.budget.steps,
                "minutes": self.budget.minutes, "models": self.trained}  # fmt: skip

    def _model(self, request: DrawRequest, c: int, name: str) -> Path:
        """Class ``c``'s default model (``c = -1``: the conditional model of every class)."""
        from medgan.train.config import TrainConfig
        from medgan.workflows.training import TrainRequest, train_and_save

        tag = "all" if c < 0 else f"c{c}"
        path = self.folder / f"gan_{self.budget.recipe}_f{request.fraction:g}_k{request.fold}_{tag}.safetensors"
        if path.is_file():
            return path
        assert request.train.labels is not None
        every = request.train.labels >= 0 if c < 0 else request.train.labels == c
        images = request.train.images[every]
        overrides: dict[str, Any] = dict(
            resolution=self.resolution, steps=self.budget.steps, minutes=self.budget.minutes,
            seed=request.fold, device=self.device, quality_every=0, sample_every=10**9,
            checkpoint_every=10**9, checkpoint_minutes=None,
            checkpoint_dir=str(self.folder / f"{path.stem}.checkpoints"),
        )  # fmt: skip
        if self.budget.minutes is not None:
            overrides["steps"] = None
        if self.budget.batch_size:
            overrides["batch_size"] = self.budget.batch_size
        if self.budget.width:
            overrides["width"] = self.budget.width
        config = TrainConfig.for_recipe(self.budget.recipe, **overrides)
        summary = {"n_train": int(len(images)), "classes": [name] if c >= 0 else list(request.class_names)}
        labelled: dict[str, Any] = {}
        if c < 0:
            labelled = {"labels": request.train.labels[every],
                        "class_names": tuple(request.class_names)}  # fmt: skip
        outcome = train_and_save(
            TrainRequest(config, images, training_summary=summary, out=path,
                         patient_keys=request.train_patients, **labelled),
            stop=request.cancel,
        )  # fmt: skip
        if request.cancel is not None and request.cancel.is_set():
            path.unlink(missing_ok=True)
            raise Cancelled()
        if outcome.status != "finished" or outcome.model_path is None:
            raise ModelFileError(f"Training the {name!r} GAN failed: {outcome.message}",
                                 advice=outcome.advice)  # fmt: skip
        self.trained.append({"fraction": request.fraction, "fold": request.fold, "class": name,
                             "n_train": int(len(images)), "steps": outcome.step,
                             "seconds": round(outcome.elapsed_s, 1)})  # fmt: skip
        return path

    def draw(self, request: DrawRequest) -> Pool:
        from medgan.utility.sources import LabelledModelSource, ModelFileSource

        if self.budget.recipe == "conditional":
            return LabelledModelSource(self._model(request, -1, "all"), device=self.device).draw(request)
        models = {}
        for c, name in enumerate(request.class_names):
            models[name] = str(self._model(request, c, name))
        return ModelFileSource(models, device=self.device).draw(request)


# --------------------------------------------------------------------------- the job
def _strata(data: LabelledData, config: UtilityConfig) -> tuple[np.ndarray, tuple[str, ...]]:
    """What folds are balanced on: the class (classify), or the masked slices (segment)."""
    if config.task == "classify":
        assert data.labels is not None
        return data.labels, tuple(data.class_names)
    assert data.masks is not None
    has_mask = np.asarray(data.masks.reshape(len(data.masks), -1).any(axis=1), np.int64)
    return has_mask - 1, ("masked slices",)  # -1: no mask (need not be in every fold)


def _check_inputs(data: LabelledData, config: UtilityConfig, source: SyntheticSource,
                  allow_unchecked: bool) -> tuple[list[Fold], list[str]]:  # fmt: skip
    """Every refusal, before anything trains. Returns the folds and warnings."""
    warnings: list[str] = []
    names = data.class_names if config.task == "classify" else data.segment_names
    source.check(config.task, names)
    seen = source.seen_patients()
    if seen is None:
        if not allow_unchecked:
            raise DataError(
                "The synthetic set does not say which patients its model learned from, so "
                "test patients could have leaked into it.",
                advice="Use a model file written by this version (it records hashed patient "
                "keys), let the utility train the GANs per fold (--train-gan), or pass "
                "--allow-unchecked to run anyway (the result is marked unchecked).",
            )
        warnings.append("The synthetic set's training patients are unknown: leakage unchecked.")
        seen = frozenset()
    strat, strat_names = _strata(data, config)
    ours = set(data.keys.tolist())
    overlap = ours & set(seen)
    if overlap and len(ours - overlap) < config.folds:
        raise DataError(
            f"The synthetic model was trained on {len(overlap)} of the {len(ours)} patients; "
            f"only {len(ours - overlap)} could be tested, fewer than {config.folds} folds need.",
            advice="Train the model on fewer patients (hold some out), let the utility train "
            "per fold (--train-gan), or use fewer folds.",
        )
    folds = patient_folds(data.keys, strat, strat_names, config.folds, seed=config.split_seed,
                          keep_in_train=overlap)  # fmt: skip
    for f in folds:
        if set(f.test) & set(seen):  # keep_in_train makes this impossible; checked anyway
            raise DataError("The synthetic model saw test patients.",
                            advice="Train it on the training folds' patients only.")  # fmt: skip
    if overlap:
        warnings.append(
            f"{len(overlap)} patient(s) trained the synthetic model: they are only ever "
            "training patients."
        )
    return folds, warnings


class _Checkpoints:
    """Per-run results saved atomically; a different job in the same folder is refused."""

    def __init__(self, folder: Path | None, identity: dict[str, Any]) -> None:
        self.folder = folder
        self.done: dict[str, RunResult] = {}
        if folder is None:
            return
        (folder / "runs").mkdir(parents=True, exist_ok=True)
        state = folder / "state.json"
        if state.is_file():
            saved = json.loads(state.read_text(encoding="utf-8"))
            if saved.get("identity") != identity:
                raise DataError(
                    f"The checkpoint folder {folder.name} holds another utility job (other "
                    "data or settings).",
                    advice="Give another checkpoint folder, or delete this one to start over.",
                )
            for f in sorted((folder / "runs").glob("*.json")):
                try:
                    r = RunResult.from_dict(json.loads(f.read_text(encoding="utf-8")))
                    self.done[r.key.name()] = r
                except (ValueError, KeyError, TypeError):
                    log.warning("Ignoring a damaged run record %s.", f.name)
        else:
            atomic_write_json(state, {"identity": identity})

    def save(self, r: RunResult) -> None:
        self.done[r.key.name()] = r
        if self.folder is not None:
            atomic_write_json(self.folder / "runs" / f"{r.key.name()}.json", r.to_dict())


def run_utility(
    request: UtilityRequest,
    *,
    progress: StageProgress | None = None,
    cancel: threading.Event | None = None,
    on_run: RunListener | None = None,
    on_batch: Callable[[RunKey, np.ndarray], Any] | None = None,
    on_draw: Callable[[DrawRequest], Any] | None = None,
) -> UtilityResult:
    """Run the whole protocol (see the module docstring) and return the result.

    ``on_batch(key, images)`` sees every training batch before augmentation and
    ``on_draw(request)`` every synthetic draw (tests check that no test patient's slice gets
    in). A cancelled job raises :class:`Cancelled`; the runs finished so far stay saved.
    """
    started = time.monotonic()
    config = request.config
    data = prepare_classes(load_labelled_data(request, progress=progress, cancel=cancel), config)
    device = resolve_device(config.device)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    folder = Path(request.checkpoint_dir) if request.checkpoint_dir else None
    source = request.synthetic
    if source is None:
        if request.gan is None:
            raise DataError("No synthetic set given.",
                            advice="Give an export folder, model files, or --train-gan.")  # fmt: skip
        if folder is None:
            tmp = tempfile.TemporaryDirectory(prefix="medgan-utility-")
        gan_dir = (folder or Path(tmp.name if tmp else ".")) / "gan"
        gan_dir.mkdir(parents=True, exist_ok=True)
        source = PerClassGanSource(request.gan, gan_dir, resolution=int(data.images.shape[-1]),
                                   device=config.device, progress=progress)  # fmt: skip
    folds, warnings = _check_inputs(data, config, source, request.allow_unchecked)
    names = data.class_names if config.task == "classify" else data.segment_names
    identity = {"config": {k: v for k, v in config.to_dict().items() if k != "device"},
                "data": data.digest(), "synthetic": source.kind}  # fmt: skip
    ckpt = _Checkpoints(folder, identity)
    arms = config.arms()
    total = len(config.fractions) * len(folds) * config.seeds * len(arms)
    report = stage(progress, "runs")
    done_count, times = 0, []
    try:
        for fraction in config.fractions:
            for fold in folds:
                runs = _fold_runs(data, config, source, fold, fraction, names, arms, device,
                                  ckpt, cancel, on_batch, on_draw, warnings)  # fmt: skip
                for key, compute in runs:
                    if cancel is not None and cancel.is_set():
                        raise Cancelled()
                    result = ckpt.done.get(key.name())
                    if result is None:
                        result = compute()
                        if result is None:
                            total -= 1
                            continue
                        ckpt.save(result)
                        times.append(result.elapsed_s)
                    done_count += 1
                    eta = (float(np.mean(times)) * (total - done_count)) if times else None
                    if report:
                        report(done_count, total)
                    if on_run is not None:
                        on_run(result, done_count, total, eta)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return summarize_result(config, list(ckpt.done.values()), data, source, folds, warnings,
                            describe_device(device), time.monotonic() - started)  # fmt: skip


def _fold_runs(
    data: LabelledData, config: UtilityConfig, source: SyntheticSource, fold: Fold,
    fraction: float, names: Sequence[str], arms: Sequence[str], device: Any,
    ckpt: _Checkpoints, cancel: threading.Event | None,
    on_batch: Callable[[RunKey, np.ndarray], Any] | None,
    on_draw: Callable[[DrawRequest], Any] | None, warnings: list[str],
) -> list[tuple[RunKey, Callable[[], RunResult | None]]]:  # fmt: skip
    """The runs of one (fraction, fold), each as (key, compute) — computed lazily, so resumed
    runs cost nothing and the synthetic draw happens once per seed."""
    strat, strat_names = _strata(data, config)
    n_strat = len(strat_names)
    classes = patient_classes(data.keys, strat, n_strat)
    real_patients, spare_patients = subset_patients(
        fold.train, fraction, classes, n_strat, seed=config.split_seed * 1000 + fold.index
    )
    assert_disjoint(real_patients + spare_patients, fold.test)

    def pool(patients: Sequence[str]) -> Pool:
        m = slice_mask(data.keys, patients)
        return Pool(data.images[m], data.labels[m] if config.task == "classify" and
                    data.labels is not None else None,
                    data.masks[m] if config.task == "segment" and data.masks is not None
                    else None)  # fmt: skip

    real, spare, test = pool(real_patients), pool(spare_patients), pool(fold.test)
    max_ratio = max(config.ratios)
    drawn: dict[int, Pool] = {}

    def synthetic(seed: int) -> Pool:
        if seed not in drawn:
            req = DrawRequest(
                fold.index, fraction, seed, wanted_counts(real, max_ratio, names, config.task),
                tuple(names), tuple(data.segment_names), real, tuple(real_patients),
                window=data.window, cancel=cancel,
            )  # fmt: skip
            if on_draw is not None:
                on_draw(req)
            drawn[seed] = source.draw(req)
        return drawn[seed]

    out: list[tuple[RunKey, Callable[[], RunResult | None]]] = []
    for seed in range(config.seeds):
        for arm in arms:
            key = RunKey(fraction, fold.index, seed, arm)

            def compute(key: RunKey = key, seed: int = seed) -> RunResult | None:
                kind, _ratio = parse_arm(key.arm)
                if kind == EXTRA_REAL and len(spare) == 0:
                    note = "No spare patients for the extra-real control (fraction 1)."
                    if note not in warnings:
                        warnings.append(note)
                    return None
                syn = synthetic(seed) if kind in (SYNTHETIC, SHUFFLED) else None
                train, augment, n_added = build_pool(
                    key.arm, real, synthetic=syn, spare=spare, class_names=names,
                    task=config.task, seed=seed, control_ratio=config.control_ratio,
                )  # fmt: skip
                probe: BatchProbe | None = None
                if on_batch is not None:
                    def probe(images: np.ndarray, key: RunKey = key) -> None:
                        on_batch(key, images)
                settings = RunSettings(config.task, config.steps, config.batch_size, config.lr,
                                       seed, augment, device)  # fmt: skip
                metrics, per, secs = train_and_score(train, test, names, settings,
                                                     cancel=cancel, on_batch=probe)  # fmt: skip
                log.info("%s: %s", key.name(), {k: round(v, 3) for k, v in metrics.items()})
                return RunResult(key, metrics, len(real), n_added, secs, per)

            out.append((key, compute))
    return out


def summarize_result(
    config: UtilityConfig, runs: list[RunResult], data: LabelledData, source: SyntheticSource,
    folds: Sequence[Fold], warnings: list[str], device: str, elapsed: float,
    status: str = "finished",
) -> UtilityResult:  # fmt: skip
    """Statistics, comparisons, controls and the verdict of the runs."""
    runs = sorted(runs, key=lambda r: (r.key.fraction, r.key.fold, r.key.seed, r.key.arm))
    metrics = sorted({m for r in runs for m in r.metrics})
    primary = "auc" if config.task == "classify" else "dice"
    comparisons = stats.compare(runs, metrics, n_boot=config.bootstrap)
    main_fraction = config.fractions[0]
    headline_arm = synthetic_arm(config.control_ratio)
    head = next((c for c in comparisons if c.arm == headline_arm and c.metric == primary
                 and c.fraction == main_fraction), None)  # fmt: skip
    judged = controls.judge(comparisons, primary, main_fraction, config.control_ratio) \
        if config.controls else {"trustworthy": True, "notes": ["Controls were not run."]}
    verdict = head.verdict if head is not None else "no measurable effect"
    if head is not None:
        text = (
            f"Adding synthetic slices ({config.control_ratio:g}x the real count) to real data "
            f"with classic augmentation: {verdict} — {primary.upper()} "
            f"{head.mean_diff:+.3f} (95 % CI {head.ci_low:+.3f} to {head.ci_high:+.3f}) over "
            f"{head.n_pairs} paired runs ({len(folds)} folds x {config.seeds} seeds)."
        )
    else:
        text = "No synthetic arm finished: no verdict."
    if not judged.get("trustworthy", True):
        text += " The controls misbehaved: do not trust this result."
    n_per_class = (
        {n: int((data.labels == c).sum()) for c, n in enumerate(data.class_names)}
        if config.task == "classify" and data.labels is not None else {}
    )  # fmt: skip
    info = {
        "n_slices": int(len(data.images)),
        "n_patients": int(len(set(data.keys.tolist()))),
        "slices_per_class": n_per_class,
        "segments": list(data.segment_names),
        "resolution": int(data.images.shape[-1]),
        "folds": [{"fold": f.index, "n_train_patients": len(f.train),
                   "n_test_patients": len(f.test)} for f in folds],  # fmt: skip
    }
    return UtilityResult(
        config=config, primary_metric=primary,
        classes=list(data.class_names if config.task == "classify" else data.segment_names),
        data=info, synthetic=clean(source.describe()), runs=runs,
        summary=stats.summarize(runs), comparisons=comparisons, verdict=verdict,
        verdict_text=text, controls=clean(judged),
        trustworthy=bool(judged.get("trustworthy", True)), warnings=warnings, device=device,
        elapsed_s=round(elapsed, 1), status=status,
    )  # fmt: skip


__all__ = [
    "GanBudget",
    "LabelledData",
    "PerClassGanSource",
    "UtilityRequest",
    "load_labelled_data",
    "prepare_classes",
    "run_utility",
    "summarize_result",
]
