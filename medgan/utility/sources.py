"""Where labelled synthetic slices come from, behind one small interface.

A :class:`SyntheticSource` draws, for one (fold, fraction, seed), so many slices per class
(classification) or image+mask pairs (segmentation). Concrete sources: in-memory arrays
(:class:`ArraySource`; an export folder is read into one by :mod:`medgan.utility.export_folder`),
model files (:class:`ModelFileSource`: one unconditional model per class), and sources that
train per fold (the workflow's per-class GAN source). ``seen_patients`` names the patients a
source learned from (hashed keys), so that they are never tested on; ``None`` means unknown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from medgan.core.errors import DataError, ModelFileError
from medgan.dicom.window import apply_window
from medgan.models.modelfile import ModelMetadata, read_metadata
from medgan.utility.tasks import Pool


@dataclass
class DrawRequest:
    """What one downstream run needs from a synthetic source."""

    fold: int
    fraction: float
    seed: int
    counts: dict[str, int]  # class name → slices (segment: {"*": n})
    class_names: tuple[str, ...]
    segment_names: tuple[str, ...]
    train: Pool  # the real slices this run trains on (a per-fold model may learn from them)
    train_patients: tuple[str, ...] = ()
    window: Any = None  # the real data's Window: synthetic slices are mapped through it
    cancel: threading.Event | None = None
    progress: Callable[[int, int], Any] | None = None


class SyntheticSource(Protocol):
    """A labelled synthetic set (see the module docstring)."""

    kind: str
    trains_per_fold: bool

    def seen_patients(self) -> frozenset[str] | None: ...

    def check(self, task: str, class_names: Sequence[str]) -> None:
        """Raise :class:`DataError` (before anything trains) if it cannot serve ``task``."""

    def describe(self) -> dict[str, Any]: ...

    def draw(self, request: DrawRequest) -> Pool: ...


def map_labels(
    names: Sequence[str], class_names: Sequence[str], rename: Mapping[str, str]
) -> np.ndarray:
    """Class names of a synthetic set → indices into the real class table (after merging)."""
    table = {n: i for i, n in enumerate(class_names)}
    out = []
    for n in names:
        target = rename.get(n, n)
        if target not in table:
            raise DataError(
                f"The synthetic set has class {n!r}, which the real data does not have "
                f"({', '.join(class_names)}).",
                advice="Use the same class names, or merge classes with --group / --vs-rest.",
            )
        out.append(table[target])
    return np.asarray(out, np.int64)


@dataclass
class ArraySource:
    """Labelled synthetic slices held in memory (class names per slice, optional masks)."""

    images: np.ndarray  # float32 (N, R, R) in [-1, 1]
    label_names: Sequence[str] | None  # class name per slice
    masks: np.ndarray | None = None  # uint8 (N, R, R)
    patients: frozenset[str] | None = frozenset()
    kind: str = "arrays"
    info: dict[str, Any] = field(default_factory=dict)
    rename: Mapping[str, str] = field(default_factory=dict)
    trains_per_fold: bool = False
    window: Any = None  # the Window ``images`` are in; draws are mapped into the real data's

    def seen_patients(self) -> frozenset[str] | None:
        return self.patients

    def check(self, task: str, class_names: Sequence[str]) -> None:
        if len(self.images) == 0:
            raise DataError("The synthetic set is empty.", advice="Export some slices first.")
        if task == "classify":
            if self.label_names is None or not any(self.label_names):
                raise DataError(
                    f"The synthetic set ({self.kind}) has no labels: classification needs "
                    "a class per synthetic slice.",
                    advice="Export from a class-conditional model, one model per class "
                    "(--model CLASS=FILE), or let the utility train one per class (--train-gan).",
                )
            have = set(map_labels(list(self.label_names), class_names, self.rename).tolist())
            missing = [n for i, n in enumerate(class_names) if i not in have]
            if missing:
                raise DataError(
                    f"The synthetic set has no slice of class {', '.join(missing)}.",
                    advice="Give synthetic slices of every class, or merge classes.",
                )
        elif self.masks is None:
            raise DataError(
                f"The synthetic set ({self.kind}) has no masks: segmentation needs image and "
                "mask pairs.",
                advice="Export image+mask pairs from a paired model, or use --task classify.",
            )

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "n": int(len(self.images)), **self.info}
        if self.label_names is not None:
            values, counts = np.unique(np.asarray(list(self.label_names), str), return_counts=True)
            d["class_counts"] = {str(v): int(c) for v, c in zip(values, counts, strict=True)}
        d["masks"] = self.masks is not None
        return d

    def draw(self, request: DrawRequest) -> Pool:
        rng = np.random.default_rng([request.seed, request.fold, 31])
        if "*" in request.counts or self.label_names is None:
            n = sum(request.counts.values())
            idx = rng.choice(len(self.images), size=n, replace=n > len(self.images))
            labels = None
        else:
            labels_all = map_labels(list(self.label_names), request.class_names, self.rename)
            picks = []
            for name, n in request.counts.items():
                c = request.class_names.index(name)
                where = np.flatnonzero(labels_all == c)
                if n and len(where):
                    picks.append(rng.choice(where, size=n, replace=n > len(where)))
            idx = np.concatenate(picks) if picks else np.zeros(0, np.int64)
            labels = labels_all[idx]
        masks = self.masks[idx] if self.masks is not None else None
        images = self.images[idx].astype(np.float32)
        if self.window is not None and request.window is not None and self.window != request.window:
            modality = self.window.center + images * (self.window.width / 2.0)
            images = apply_window(modality, request.window)
        return Pool(images, labels, masks)


def model_patients(meta: ModelMetadata) -> frozenset[str] | None:
    """The hashed patient keys a model file says it was trained on (None: not recorded)."""
    patients = (meta.training_summary or {}).get("patients")
    if isinstance(patients, list) and all(isinstance(p, str) for p in patients):
        return frozenset(patients)
    return None


def is_labelled_recipe(meta: ModelMetadata) -> bool:
    """Whether a model file generates labelled slices itself (class-conditional or paired)."""
    return meta.n_classes > 1 or meta.n_segments > 0


@dataclass
class ModelFileSource:
    """One unconditional model file per class (the Frid-Adar approach): class name → path."""

    models: Mapping[str, str | Path]
    device: str = "auto"
    kind: str = "model files (one per class)"
    trains_per_fold: bool = False
    _meta: dict[str, ModelMetadata] = field(default_factory=dict, repr=False)
    _loaded: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for name, path in self.models.items():
            self._meta[name] = read_metadata(path)

    def seen_patients(self) -> frozenset[str] | None:
        out: set[str] = set()
        for meta in self._meta.values():
            p = model_patients(meta)
            if p is None:
                return None
            out |= p
        return frozenset(out)

    def check(self, task: str, class_names: Sequence[str]) -> None:
        for name, meta in self._meta.items():
            if is_labelled_recipe(meta):
                raise ModelFileError(
                    f"The model for {name!r} is a labelled ({meta.recipe}) model, not an "
                    "unconditional one.",
                    advice="Give a labelled model on its own (--model FILE), without CLASS=.",
                )
        if task == "segment":
            raise DataError(
                "Unconditional models make images without masks: segmentation needs image "
                "and mask pairs.",
                advice="Use an export folder of image+mask pairs, or --task classify.",
            )
        if len(self.models) == 1 and len(class_names) > 1:
            only = next(iter(self.models))
            raise ModelFileError(
                f"One unconditional model ({only!r}) cannot make labelled slices for "
                f"{len(class_names)} classes.",
                advice="Give one model per class (--model CLASS=FILE, repeated), an export "
                "folder with labels, or let the utility train one per class (--train-gan).",
            )
        missing = [c for c in class_names if c not in self.models]
        if missing:
            raise DataError(
                f"No model for class {', '.join(missing)}.",
                advice="Give one model per class: --model CLASS=FILE for each class.",
            )
        res = {m.resolution for m in self._meta.values()}
        if len(res) > 1:
            raise ModelFileError("The per-class models have different resolutions.")

    def resolution(self) -> int:
        return next(iter(self._meta.values())).resolution

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "models": {c: {"recipe": m.recipe, "resolution": m.resolution, "step": m.step}
                       for c, m in self._meta.items()},
        }  # fmt: skip

    def draw(self, request: DrawRequest) -> Pool:
        from medgan.generate.sampling import generate, load_generator

        images, labels = [], []
        for name, n in request.counts.items():
            if n <= 0:
                continue
            if name not in self._loaded:
                self._loaded[name] = load_generator(self.models[name], device=self.device)
            got = generate(
                self._loaded[name], n, seed=request.seed * 1000 + request.fold,
                cancel=request.cancel,
            )  # fmt: skip
            if request.window is not None and got.window is not None:
                images.append(apply_window(got.modality, request.window))
            else:
                images.append(got.images)
            labels.append(np.full(n, request.class_names.index(name), np.int64))
        if not images:
            return Pool(np.zeros((0,) + request.train.images.shape[1:], np.float32),
                        np.zeros(0, np.int64))  # fmt: skip
        return Pool(np.concatenate(images), np.concatenate(labels))


@dataclass
class LabelledModelSource:
    """One labelled model file (recipe ``conditional``: a class per sample; ``paired``: an
    image+mask pair per sample), drawn per class through :func:`medgan.generate.sampling.generate`."""

    path: str | Path
    device: str = "auto"
    rename: Mapping[str, str] = field(default_factory=dict)
    kind: str = "labelled model file"
    trains_per_fold: bool = False
    _meta: ModelMetadata | None = field(default=None, repr=False)
    _loaded: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._meta = read_metadata(self.path)

    @property
    def meta(self) -> ModelMetadata:
        assert self._meta is not None
        return self._meta

    def seen_patients(self) -> frozenset[str] | None:
        return model_patients(self.meta)

    def check(self, task: str, class_names: Sequence[str]) -> None:
        meta = self.meta
        if task == "classify":
            if meta.n_classes < 2:
                raise ModelFileError(
                    f"The model ({meta.recipe}) is not class-conditional: it makes unlabelled "
                    "slices.",
                    advice="Give one model per class (--model CLASS=FILE), a conditional "
                    "model, or let the utility train one per class (--train-gan).",
                )
            have = {self.rename.get(c, c) for c in meta.classes}
            missing = [c for c in class_names if c not in have]
            if missing:
                raise DataError(
                    f"The model cannot draw class {', '.join(missing)} (it knows "
                    f"{', '.join(meta.classes)}).",
                    advice="Use a model trained on the same classes, or merge classes.",
                )
        elif meta.n_segments < 1:
            raise DataError(
                "The model draws no masks: segmentation needs image+mask pairs.",
                advice="Use a paired model, an export of image+mask pairs, or --task classify.",
            )

    def describe(self) -> dict[str, Any]:
        m = self.meta
        return {"kind": self.kind, "recipe": m.recipe, "resolution": m.resolution,
                "classes": list(m.classes), "step": m.step}  # fmt: skip

    def draw(self, request: DrawRequest) -> Pool:
        from medgan.generate.sampling import generate, load_generator

        if self._loaded is None:
            self._loaded = load_generator(self.path, device=self.device)
        meta = self.meta
        seed = request.seed * 1000 + request.fold
        if "*" in request.counts or meta.n_classes < 2:
            got = generate(self._loaded, sum(request.counts.values()), seed=seed,
                           cancel=request.cancel)  # fmt: skip
        else:  # per real class: the model's classes that merge into it share its count
            per: dict[str, int] = {}
            for name, n in request.counts.items():
                sources = [c for c in meta.classes if self.rename.get(c, c) == name]
                for j, c in enumerate(sources):
                    per[c] = n // len(sources) + (1 if j < n % len(sources) else 0)
            per.update({c: 0 for c in meta.classes if c not in per})
            got = generate(self._loaded, sum(per.values()), seed=seed, per_class=per,
                           cancel=request.cancel)  # fmt: skip
        images = got.images
        if request.window is not None and got.window is not None:
            images = apply_window(got.modality, request.window)
        labels = None
        if got.labels is not None and "*" not in request.counts:
            names = [got.class_names[k] for k in got.labels.tolist()]
            labels = map_labels(names, request.class_names, self.rename)
        masks = getattr(got, "masks", None)
        return Pool(images.astype(np.float32), labels, masks)
