"""Chosen series → training tensors: decode, resize, window to [-1, 1], filter, split, cache.

Pipeline per chunk of slices: decode in modality units (``medgan.dicom.decode.load_series``),
pad to a square keeping the aspect ratio (pad value: the chunk's minimum, i.e. background) and
resize to the model resolution with MONAI transforms (area averaging when shrinking). After all
slices are in, one window is chosen for the whole set (preset, the files' own window, automatic
or explicit) so that every sample of a model maps back to modality units the same way; slices
with too little foreground are dropped, and an optional hold-out split is made **by patient**.

Labels and masks (:mod:`medgan.dataset.labelled`, from a :class:`medgan.dicom.labels.LabelSet`)
travel with the slices: masks through the same pad and resize (nearest neighbour), labelled
minority-class and masked slices are never dropped as empty, and the hold-out tries to keep
every class on both sides. The summary records class names and counts (no identifiers).

The result is cached as ``.npz`` (no identifiers inside) under ``$MEDGAN_CACHE/trainsets`` or
``~/.cache/medgan-studio/trainsets``, keyed by the files' paths, sizes and modification times,
the chosen slices and the config, so re-training does not decode again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from medgan.core.errors import Cancelled, DataError
from medgan.dataset import labelled
from medgan.dataset.cache import cache_dir, cache_key, load_arrays, save_arrays
from medgan.dataset.positions import series_levels
from medgan.dicom.labels.records import LabelSet
from medgan.dicom.records import SeriesRecord

log = logging.getLogger(__name__)

RESOLUTIONS = (64, 128, 256)
_CHUNK = 32  # slices decoded at once: bounds memory for large series

SliceRange = range | slice | tuple[int, int] | Sequence[int]
ProgressFn = Callable[[int, int], Any]


@dataclass(frozen=True)
class TrainingSetConfig:
    """How slices become training images.

    Args:
        resolution: output side, 64, 128 or 256.
        window: ``"file"`` (the window stored in the files, else auto; the default),
            ``"auto"`` (robust percentiles of the chosen slices), ``"preset:<name>"`` (``CT_PRESETS``), or
            ``"explicit"`` with ``window_center``/``window_width`` (setting both implies it).
        foreground_level: windowed value in [-1, 1] above which a pixel counts as foreground.
        min_foreground: slices whose foreground fraction is below this are dropped (uniform
            slices too).
        holdout_fraction: share of *patients* kept out of training (0 = no hold-out).
        seed: seed of the hold-out draw.
    """

    resolution: int = 64
    window: str = "file"
    window_center: float | None = None
    window_width: float | None = None
    foreground_level: float = -0.9
    min_foreground: float = 0.05
    holdout_fraction: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resolution not in RESOLUTIONS:
            raise DataError(f"Resolution {self.resolution} is not supported; use 64, 128 or 256.")
        explicit = self.window_center is not None or self.window_width is not None
        if explicit:
            if self.window_center is None or self.window_width is None or self.window_width <= 0:
                raise DataError("An explicit window needs a center and a width > 0.")
            object.__setattr__(self, "window", "explicit")
        elif self.window == "explicit":
            raise DataError("window='explicit' needs window_center and window_width.")
        elif self.window not in ("auto", "file") and not self.window.startswith("preset:"):
            raise DataError(
                f"Unknown window {self.window!r}; use auto, file, preset:<name> or center,width."
            )
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise DataError("The hold-out fraction must be in [0, 1).")
        if not 0.0 <= self.min_foreground < 1.0:
            raise DataError("The foreground threshold must be in [0, 1).")

    @classmethod
    def with_window(cls, text: str, **kwargs: Any) -> TrainingSetConfig:
        """Parse a window given as text: ``auto``, ``file``, ``preset:brain``, ``40,400``."""
        text = text.strip()
        if "," in text:
            try:
                center, width = (float(v) for v in text.split(","))
            except ValueError as exc:
                raise DataError(f"Cannot read window {text!r}; write it as center,width.") from exc
            return cls(window_center=center, window_width=width, **kwargs)
        return cls(window=text, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingSetConfig:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class HeldOut:
    """Slices of the held-out patients (for evaluation, never trained on)."""

    images: np.ndarray  # float32 (M, R, R) in [-1, 1]
    patient_keys: np.ndarray  # hashed patient key per image
    labels: np.ndarray | None = None  # int64 (M,), -1 unlabelled
    masks: np.ndarray | None = None  # uint8 (M, R, R)
    mask_known: np.ndarray | None = None  # bool (M,): a mask source covers the slice


@dataclass
class TrainingSet:
    """Training images in [-1, 1] with hashed patient keys and the window that maps them back."""

    images: np.ndarray  # float32 (N, R, R)
    patient_keys: np.ndarray  # str, hashed, one per image
    window: Any  # medgan.dicom.window.Window(center, width), modality units
    holdout: HeldOut | None
    config: TrainingSetConfig
    info: dict[str, Any] = field(default_factory=dict)  # de-identified facts for summary()
    from_cache: bool = False
    labels: np.ndarray | None = None  # int64 (N,) into class_names; -1 unlabelled
    class_names: tuple[str, ...] = ()
    masks: np.ndarray | None = None  # uint8 (N, R, R); k > 0 = segment_names[k - 1]
    mask_known: np.ndarray | None = None  # bool (N,): False where no source covers the slice
    segment_names: tuple[str, ...] = ()
    levels: np.ndarray | None = None  # float32 (N,): level in its series, 0 first … 1 last slice

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    def summary(self) -> dict[str, Any]:
        """De-identified description (counts, modality, sizes, spacing; no names, IDs, dates)."""
        out = dict(self.info)
        out.update(
            n_train=int(len(self.images)),
            n_holdout=int(len(self.holdout.images)) if self.holdout is not None else 0,
            n_train_patients=int(len(set(self.patient_keys.tolist()))),
            resolution=self.resolution,
            window={"center": float(self.window.center), "width": float(self.window.width)},
            config=self.config.to_dict(),
        )
        return out


# --------------------------------------------------------------------------- helpers


def _indices(series: SeriesRecord, spec: SliceRange | None) -> list[int]:
    n = series.n_images
    if spec is None:
        return list(range(n))
    if isinstance(spec, slice):
        return list(range(n))[spec]
    if isinstance(spec, tuple) and len(spec) == 2:
        spec = range(int(spec[0]), int(spec[1]))
    idx = [int(i) for i in spec]
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise DataError(
            f"Slice {bad[0]} is outside series {series.series_number or ''} "
            f"({series.description or 'no description'}), which has {n} slices."
        )
    return sorted(set(idx))


def _chunks(series: SeriesRecord, idx: list[int]) -> list[list[int]]:
    """Runs of at most ``_CHUNK`` consecutive picks of one image size (a stack needs one size)."""
    out: list[list[int]] = []
    last: tuple[int, int] | None = None
    for i in idx:
        ref = series.images[i]
        size = (ref.rows, ref.cols)
        if out and size == last and len(out[-1]) < _CHUNK:
            out[-1].append(i)
        else:
            out.append([i])
        last = size
    return out


def _square_resize(pixels: np.ndarray, resolution: int) -> np.ndarray:
    """(n, H, W) modality units → (n, R, R): pad to a square with the minimum, then resize."""
    from monai.transforms import Resize, ResizeWithPadOrCrop

    n, rows, cols = pixels.shape
    side = max(rows, cols)
    arr = pixels.astype(np.float32, copy=False)
    # MONAI's transforms take ndarrays too, though their __call__ is annotated Tensor only.
    if rows != cols:
        arr = np.asarray(
            ResizeWithPadOrCrop((side, side), mode="constant", value=float(arr.min()))(arr)  # type: ignore[arg-type]
        )
    if side != resolution:
        mode = "area" if side > resolution else "bilinear"
        kwargs: dict[str, Any] = {} if mode == "area" else {"align_corners": False}
        arr = np.asarray(Resize((resolution, resolution), mode=mode, **kwargs)(arr))  # type: ignore[arg-type]
    return np.ascontiguousarray(arr, dtype=np.float32)


def _choose_window(
    config: TrainingSetConfig, series_list: Sequence[SeriesRecord], pixels: np.ndarray
) -> Any:
    from medgan.dicom.window import CT_PRESETS, Window, auto_window

    mode = config.window
    if mode == "explicit":
        return Window(float(config.window_center), float(config.window_width))  # type: ignore[arg-type]
    if mode.startswith("preset:"):
        name = mode.split(":", 1)[1]
        presets = {k.lower(): v for k, v in CT_PRESETS.items()}
        if name.lower() not in presets:
            raise DataError(
                f"Unknown window preset {name!r}.", advice=f"Choose one of {', '.join(CT_PRESETS)}."
            )
        return presets[name.lower()]
    if mode == "file":
        stored = [s.window for s in series_list if s.window is not None and s.window[1] > 0]
        if stored:
            center = float(np.median([w[0] for w in stored]))
            width = float(np.median([w[1] for w in stored]))
            return Window(center, width)
        log.warning("No window stored in the chosen series; using an automatic window.")
    return auto_window(pixels)


_FIELDS = (
    "images", "patient_keys", "holdout_images", "holdout_keys", "window", "info",
    "labels", "holdout_labels", "class_names", "masks", "holdout_masks", "segment_names",
    "mask_known", "holdout_mask_known", "levels",
)  # fmt: skip
_NO_LABELS = np.zeros(0, np.int64)


def _to_arrays(ts: TrainingSet) -> dict[str, np.ndarray]:
    held = ts.holdout
    empty = np.zeros((0,) + ts.images.shape[1:], np.float32)
    no_masks = np.zeros((0,) + ts.images.shape[1:], np.uint8)
    return {
        "images": ts.images,
        "patient_keys": ts.patient_keys.astype(str),
        "holdout_images": held.images if held else empty,
        "holdout_keys": (held.patient_keys if held else np.zeros(0)).astype(str),
        "window": np.array([ts.window.center, ts.window.width], dtype=np.float64),
        "info": np.array(json.dumps(ts.info)),
        "labels": ts.labels if ts.labels is not None else _NO_LABELS,
        "holdout_labels": held.labels if held and held.labels is not None else _NO_LABELS,
        "class_names": np.array(ts.class_names, dtype=str),
        "masks": ts.masks if ts.masks is not None else no_masks,
        "holdout_masks": held.masks if held and held.masks is not None else no_masks,
        "mask_known": ts.mask_known if ts.mask_known is not None else np.zeros(0, bool),
        "holdout_mask_known": (
            held.mask_known if held and held.mask_known is not None else np.zeros(0, bool)
        ),
        "segment_names": np.array(ts.segment_names, dtype=str),
        "levels": ts.levels if ts.levels is not None else np.zeros(0, np.float32),
    }


def _from_arrays(data: dict[str, np.ndarray], config: TrainingSetConfig) -> TrainingSet:
    from medgan.dicom.window import Window

    center, width = (float(v) for v in data["window"])
    h_images = data["holdout_images"]
    class_names = tuple(str(v) for v in data["class_names"])
    segment_names = tuple(str(v) for v in data["segment_names"])

    def opt(name: str, on: bool) -> np.ndarray | None:
        return data[name] if on else None

    holdout = None
    if len(h_images):
        holdout = HeldOut(
            h_images.astype(np.float32),
            data["holdout_keys"],
            opt("holdout_labels", bool(class_names)),
            opt("holdout_masks", bool(segment_names)),
            opt("holdout_mask_known", bool(segment_names)),
        )
    return TrainingSet(
        data["images"].astype(np.float32, copy=False),
        data["patient_keys"],
        Window(center, width),
        holdout,
        config,
        json.loads(str(data["info"])),
        from_cache=True,
        labels=opt("labels", bool(class_names)),
        class_names=class_names,
        masks=opt("masks", bool(segment_names)),
        mask_known=opt("mask_known", bool(segment_names)),
        segment_names=segment_names,
        levels=data["levels"].astype(np.float32) if len(data["levels"]) else None,
    )


# --------------------------------------------------------------------------- building


def build_training_set(
    series_list: Sequence[SeriesRecord],
    config: TrainingSetConfig | None = None,
    *,
    slice_ranges: Mapping[str, SliceRange] | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    use_cache: bool = True,
    cache_root: str | os.PathLike[str] | None = None,
    labels: LabelSet | None = None,
) -> TrainingSet:
    """Decode, resize, window, filter and split the chosen slices (see the module docstring).

    Args:
        series_list: series from :func:`medgan.dicom.index.scan_folder`.
        slice_ranges: per series UID, a ``range``/``slice``, a ``(start, stop)`` tuple or a list
            of indices into the series' sorted images; series not named use all slices.
        progress: ``progress(done, total)`` in slices.
        cancel: set it to stop; raises :class:`medgan.core.errors.Cancelled`.
        labels: labels and masks of the scan (:func:`medgan.dicom.labels.load_labels`);
            they come out per slice as ``labels``/``class_names`` and ``masks``/``segment_names``.
    Raises:
        DataError: no series, untrainable or mixed-modality series, or no usable slice left.
    """
    from medgan.dicom.decode import load_series
    from medgan.dicom.summary import patient_key
    from medgan.dicom.window import apply_window

    config = config or TrainingSetConfig()
    series_list = list(series_list)
    if not series_list:
        raise DataError("No series chosen.", advice="Pick at least one series to learn from.")
    for s in series_list:
        if not s.trainable:
            raise DataError(
                f"Series {s.series_number or ''} ({s.description or 'no description'}) cannot be "
                f"trained on: {s.reason or 'not trainable'}.",
                advice="Leave it out of the selection.",
            )
    modalities = sorted({s.modality or "OT" for s in series_list})
    if len(modalities) > 1:
        raise DataError(
            f"The chosen series mix modalities ({', '.join(modalities)}); one model maps its "
            "samples back to one modality's units.",
            advice="Train one model per modality.",
        )
    ranges = slice_ranges or {}
    indices = [_indices(s, ranges.get(s.series_uid)) for s in series_list]
    total = sum(len(i) for i in indices)
    if total == 0:
        raise DataError("The chosen slice ranges are empty.")

    chosen = labelled.gather(series_list, indices, labels)
    key = cache_key(series_list, indices, config.to_dict(), chosen.digest)
    cache_path = cache_dir(cache_root) / f"{key}.npz"
    cached = load_arrays(cache_path, _FIELDS) if use_cache else None
    if cached is not None:
        ts = _from_arrays(cached, config)
        log.info("Training set loaded from cache (%d images).", len(ts.images))
        if progress:
            progress(total, total)
        return ts

    resized: list[np.ndarray] = []
    resized_masks: list[np.ndarray] = []
    patient_keys: list[str] = []
    slice_levels: list[np.ndarray] = []
    sizes: dict[str, int] = {}
    done = 0
    for s, idx in zip(series_list, indices, strict=True):
        pkey = patient_key(s)
        for chunk in _chunks(s, idx):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            base = done

            def chunk_progress(d: int, _t: int, base: int = base) -> None:
                if progress:
                    progress(base + d, total)

            pixels = load_series(s, chunk, progress=chunk_progress, cancel=cancel)
            n, rows, cols = pixels.shape
            sizes[f"{rows}x{cols}"] = sizes.get(f"{rows}x{cols}", 0) + n
            resized.append(_square_resize(pixels, config.resolution))
            if chosen.masks is not None:
                native = [chosen.masks[base + j] for j in range(n)]
                stack_m = np.stack(
                    [m if m is not None else np.zeros((rows, cols), np.uint8) for m in native]
                )
                resized_masks.append(labelled.resize_masks(stack_m, config.resolution))
            patient_keys.extend([pkey] * n)
            slice_levels.append(series_levels(chunk, len(s.images), n))
            done += len(chunk)
            if progress:
                progress(done, total)

    stack = np.concatenate(resized, axis=0)
    del resized
    window = _choose_window(config, series_list, stack)
    images = apply_window(stack, window).astype(np.float32, copy=False)
    del stack
    masks = np.concatenate(resized_masks, axis=0) if resized_masks else None
    del resized_masks
    foreground = (images > config.foreground_level).mean(axis=(1, 2))
    flat = images.reshape(len(images), -1).std(axis=1) < 1e-3  # uniform: nothing to learn
    empty = (foreground < config.min_foreground) | flat
    exempt = labelled.exempt_from_filter(chosen.labels, masks)
    kept_labelled = int((empty & exempt).sum()) if exempt is not None else 0
    keep = ~empty if exempt is None else ~empty | exempt
    n_dropped = int((~keep).sum())
    dropped_per_class = labelled.class_counts(
        chosen.labels[~keep] if chosen.labels is not None else None, chosen.class_names
    )
    images, keys = images[keep], np.asarray(patient_keys)[keep]
    levels = np.concatenate(slice_levels)[keep]
    slice_labels = chosen.labels[keep] if chosen.labels is not None else None
    masks = masks[keep] if masks is not None else None
    known = None
    if chosen.masks is not None:
        known = np.array([m is not None for m in chosen.masks], bool)[keep]
    if len(images) == 0:
        raise DataError(
            f"All {total} slices were dropped as nearly empty or uniform (less than "
            f"{config.min_foreground:.0%} foreground in the window).",
            advice="Choose another window or lower the foreground threshold.",
        )
    held_patients = labelled.holdout_patients(
        keys, slice_labels, config.holdout_fraction, config.seed
    )
    in_holdout = np.isin(keys, list(held_patients)) if held_patients else np.zeros(len(keys), bool)

    def part(arr: np.ndarray | None, where: np.ndarray) -> np.ndarray | None:
        return np.ascontiguousarray(arr[where]) if arr is not None else None

    holdout = None
    if in_holdout.any():
        holdout = HeldOut(
            images[in_holdout],
            keys[in_holdout],
            part(slice_labels, in_holdout),
            part(masks, in_holdout),
            part(known, in_holdout),
        )
    train_images = np.ascontiguousarray(images[~in_holdout])

    spacings = [s.pixel_spacing for s in series_list if s.pixel_spacing]
    side = [max(int(k.split("x")[0]), int(k.split("x")[1])) for k in sizes]
    model_spacing = None
    if spacings and len(set(spacings)) == 1 and len(set(side)) == 1:
        scale = side[0] / config.resolution
        model_spacing = [spacings[0][0] * scale, spacings[0][1] * scale]
    slice_gaps = [s.slice_spacing for s in series_list if s.slice_spacing]
    info: dict[str, Any] = {
        "modality": modalities[0],
        "n_series": len(series_list),
        "n_patients": len(set(patient_keys)),
        "n_holdout_patients": len(held_patients),
        "n_slices_selected": total,
        "n_dropped_empty": n_dropped,
        "source_sizes": sizes,
        "source_pixel_spacing_mm": [
            list(t) for t in sorted({tuple(map(float, s)) for s in spacings})
        ],
        "slice_spacing_mm": [min(slice_gaps), max(slice_gaps)] if slice_gaps else None,
        "model_pixel_spacing_mm": model_spacing,
        "window_mode": config.window,
    }
    train_labels = part(slice_labels, ~in_holdout)
    train_masks = part(masks, ~in_holdout)
    if chosen.labels is not None:
        info["classes"] = list(chosen.class_names)  # key without "name": model files keep it
        info["class_counts"] = labelled.class_counts(train_labels, chosen.class_names)
        info["holdout_class_counts"] = labelled.class_counts(
            holdout.labels if holdout else None, chosen.class_names
        )
        info["dropped_empty_per_class"] = dropped_per_class
        info["kept_labelled_low_foreground"] = kept_labelled
    if masks is not None:
        info["segments"] = list(chosen.segment_names)
        info["segment_slice_counts"] = {
            name: int((train_masks == k).any(axis=(1, 2)).sum())  # type: ignore[union-attr]
            for k, name in enumerate(chosen.segment_names, start=1)
        }
    ts = TrainingSet(
        train_images,
        keys[~in_holdout],
        window,
        holdout,
        config,
        info,
        labels=train_labels,
        class_names=chosen.class_names,
        masks=train_masks,
        mask_known=part(known, ~in_holdout),
        segment_names=chosen.segment_names,
        levels=np.ascontiguousarray(levels[~in_holdout]),
    )
    log.info(
        "Training set: %d images (%d held out, %d nearly empty dropped) at %dx%d.",
        len(train_images),
        len(holdout.images) if holdout else 0,
        n_dropped,
        config.resolution,
        config.resolution,
    )
    if use_cache:
        save_arrays(cache_path, _to_arrays(ts))
    return ts
