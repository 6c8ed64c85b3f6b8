"""Portable model file: one ``.safetensors`` file, weights plus JSON metadata in its header.

Layout: tensors named ``generator.<param>`` and ``discriminator.<param>``; the header's
``__metadata__`` holds ``format`` (``"medgan-model"``), ``medgan_metadata`` (the
:class:`ModelMetadata` as JSON) and ``weights_sha256`` (a digest of every tensor's name, dtype,
shape and bytes, so a file whose weights were swapped or altered is refused).

Loading never uses pickle or ``torch.load``: the header is parsed as JSON and checked before
the tensors are read with ``safetensors``, which maps raw bytes and cannot run code. A file that
is not a safetensors file (a pickle, a PyTorch ``.pt`` zip, anything else) is refused with a
message saying so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medgan import __version__
from medgan.core.errors import ModelFileError
from medgan.core.fileio import atomic_path
from medgan.models import D_BLOCKS, LEGACY_NETWORK_OPTIONS

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

FORMAT_NAME = "medgan-model"
FORMAT_VERSION = 7
# Version 2 records the network options (``d_block``, ``g_noise``) in ``model_kwargs``, version 3
# also ``d_image``, version 4 ``mask_first``, version 5 ``labelled_layout`` (and ``g_noise`` for the
# labelled recipes), version 6 allows ``labelled_layout`` 3 (mask-first segment patterns, whose
# frequencies are a generator buffer), version 7 ``levels`` (the default recipe conditioned on the
# slice's level, whose shares are the generator buffer ``level_freq``); a file older than an option holds the layout from before it
# (medgan.models.LEGACY_NETWORK_OPTIONS, OPTION_SINCE).
OLDEST_READABLE_VERSION = 1
OPTION_SINCE: dict[str, int] = {
    "d_block": 2,
    "g_noise": 2,
    "d_image": 3,
    "mask_first": 4,
    "labelled_layout": 5,
    "levels": 7,
}
"""The format version that first recorded each network option."""
SUFFIX = ".safetensors"
PARTS = ("generator", "discriminator")
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit


@dataclass
class ModelMetadata:
    """Everything needed to rebuild, use and describe a trained generator (no patient data).

    ``window`` is ``(center, width)`` in modality units: a sample ``v`` in [-1, 1] maps back to
    ``center + v * width / 2`` (e.g. Hounsfield units for CT).
    """

    recipe: str
    resolution: int
    z_dim: int = 128
    channels: int = 1
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # extra build_models args (width)
    window: tuple[float, float] | None = None
    normalization: dict[str, Any] = field(
        default_factory=lambda: {"range": [-1.0, 1.0], "method": "window", "inverse": "c+v*w/2"}
    )
    modality: str = ""
    pixel_spacing: tuple[float, float] | None = None  # (row, col) mm at the model resolution
    training_summary: dict[str, Any] = field(default_factory=dict)  # de-identified
    train_config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    step: int = 0  # the training step of the weights held (the selected snapshot)
    quality: dict[str, Any] = field(default_factory=dict)  # Trainer.selection(): SWD per probe
    # Compact training history (medgan.train.listeners.TrainingHistory): losses, probes, a few
    # small sample grids; empty in files written before it existed or elsewhere.
    history: dict[str, Any] = field(default_factory=dict)
    # Labelled models (recipes conditional/paired); empty in unlabelled and older files.
    classes: list[str] = field(default_factory=list)  # class index i → its name as labelled
    class_counts: list[int] = field(default_factory=list)  # training slices per class
    segments: list[str] = field(default_factory=list)  # mask value k > 0 → segments[k - 1]
    segment_colours: list[list[int]] = field(default_factory=list)  # RGB per segment
    masks_from: str = ""  # the recipe whose generator draws the masks ("" = no masks)
    medgan_version: str = __version__
    torch_version: str = ""
    created: str = ""  # ISO 8601 UTC, when the file was written
    format_version: int = FORMAT_VERSION

    @property
    def n_classes(self) -> int:
        """Classes the generator is conditioned on (1 = unconditional)."""
        kw = self.model_kwargs if isinstance(self.model_kwargs, dict) else {}
        return int(kw.get("n_classes", 1) or 1)

    @property
    def n_segments(self) -> int:
        """Mask segments the generator draws with each image (0 = images only)."""
        kw = self.model_kwargs if isinstance(self.model_kwargs, dict) else {}
        return int(kw.get("n_segments", 0) or 0)

    def network_settings(self) -> dict[str, Any]:
        """The training settings that fix this model's network shapes (``z_dim``, ``channels``
        and, where recorded, ``width``, ``d_block``, ``g_noise``, ``d_image``, ``mask_first``,
        ``labelled_layout``): what fine-tuning must take over."""
        kw = self.model_kwargs if isinstance(self.model_kwargs, dict) else {}
        out: dict[str, Any] = {"z_dim": int(self.z_dim), "channels": int(self.channels)}
        if kw.get("width"):
            out["width"] = int(kw["width"])
        if kw.get("d_block"):
            out["d_block"] = str(kw["d_block"])
        for flag in ("g_noise", "d_image", "mask_first"):
            if isinstance(kw.get(flag), bool):
                out[flag] = kw[flag]
        if kw.get("labelled_layout") in (1, 2, 3):
            out["labelled_layout"] = int(kw["labelled_layout"])
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("window", "pixel_spacing"):
            if data[key] is not None:
                data[key] = [float(v) for v in data[key]]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        """Build from parsed JSON; unknown keys (from newer versions) are ignored."""
        if not isinstance(data, dict):
            raise ModelFileError("The model file's metadata is not a JSON object.")
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("recipe", "resolution") if k not in data]
        if missing:
            raise ModelFileError(
                f"The model file's metadata lacks {', '.join(missing)}.",
                advice="The file was not written by MedGAN Studio or was damaged.",
            )
        kwargs = {k: v for k, v in data.items() if k in known}
        try:
            meta = cls(**kwargs)
            meta.resolution = int(meta.resolution)
            meta.z_dim = int(meta.z_dim)
            meta.channels = int(meta.channels)
            meta.step = int(meta.step)
            meta.seed = int(meta.seed)
            meta.format_version = int(meta.format_version)
            if meta.window is not None:
                c, w = (float(v) for v in meta.window)
                meta.window = (c, w)
            if meta.pixel_spacing is not None:
                r, c2 = (float(v) for v in meta.pixel_spacing)
                meta.pixel_spacing = (r, c2)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(
                f"The model file's metadata is invalid ({exc}).",
                advice="The file was not written by MedGAN Studio or was damaged.",
            ) from exc
        if not isinstance(meta.quality, dict):
            meta.quality = {}
        if not isinstance(meta.history, dict):
            meta.history = {}
        if not isinstance(meta.recipe, str) or not meta.recipe:
            raise ModelFileError("The model file's metadata names no recipe.")
        _check_sizes(meta)
        _check_labels(meta)
        # a file older than an option holds the layout from before it existed
        for key, value in LEGACY_NETWORK_OPTIONS.get(meta.recipe, {}).items():
            if meta.format_version < OPTION_SINCE.get(key, FORMAT_VERSION):
                meta.model_kwargs.setdefault(key, value)
        return meta


SEGMENT_PALETTE: tuple[tuple[int, int, int], ...] = (
    (235, 64, 52), (66, 135, 245), (245, 197, 66), (76, 209, 55), (186, 85, 211),
    (0, 206, 209), (255, 140, 0), (240, 98, 146),
)  # fmt: skip
"""Segment colours (RGB) for mask values 1, 2, … (cycled), as the app's mask overlay."""


def segment_colours(n: int) -> list[list[int]]:
    """The display colour of each of ``n`` segments."""
    return [list(SEGMENT_PALETTE[k % len(SEGMENT_PALETTE)]) for k in range(n)]


def _check_labels(meta: ModelMetadata) -> None:
    """Class and segment tables: lists of short strings, counts that fit (else refused)."""
    try:
        meta.classes = [str(v) for v in meta.classes]
        meta.class_counts = [int(v) for v in meta.class_counts]
        meta.segments = [str(v) for v in meta.segments]
        meta.segment_colours = [[int(c) for c in rgb][:3] for rgb in meta.segment_colours]
        meta.masks_from = str(meta.masks_from or "")
    except (TypeError, ValueError) as exc:
        raise ModelFileError(
            f"The model file's class or segment table is invalid ({exc}).",
            advice="The file was not written by MedGAN Studio or was altered.",
        ) from exc
    if meta.class_counts and len(meta.class_counts) != len(meta.classes):
        raise ModelFileError("The model file's class counts do not match its classes.")
    kwargs = meta.model_kwargs if isinstance(meta.model_kwargs, dict) else {}
    n_classes, n_segments = kwargs.get("n_classes"), kwargs.get("n_segments")
    if isinstance(n_classes, int) and n_classes > 1 and len(meta.classes) != n_classes:
        raise ModelFileError(
            f"The model draws {n_classes} classes but its metadata names {len(meta.classes)}.",
            advice="The file was not written by MedGAN Studio or was altered.",
        )
    if isinstance(n_segments, int) and n_segments > 0 and len(meta.segments) != n_segments:
        raise ModelFileError(
            f"The model draws {n_segments} mask segments but its metadata names "
            f"{len(meta.segments)}.",
            advice="The file was not written by MedGAN Studio or was altered.",
        )


def _check_sizes(meta: ModelMetadata) -> None:
    """Refuse absurd sizes before any network is built from them (a crafted file could ask
    for terabytes)."""
    width = meta.model_kwargs.get("width") if isinstance(meta.model_kwargs, dict) else None
    problems = []
    if meta.resolution not in (32, 64, 128, 256, 512, 1024):
        problems.append(f"resolution {meta.resolution}")
    if not 1 <= meta.z_dim <= 4096:
        problems.append(f"z_dim {meta.z_dim}")
    if meta.channels not in (1, 3):
        problems.append(f"{meta.channels} channels")
    if not isinstance(meta.model_kwargs, dict):
        problems.append("model options that are not a mapping")
    elif width is not None and not (isinstance(width, int) and 1 <= width <= 1024):
        problems.append(f"width {width!r}")
    if isinstance(meta.model_kwargs, dict):
        for key, hi in (("n_classes", 10), ("n_segments", 8)):
            v = meta.model_kwargs.get(key)
            if v is not None and not (isinstance(v, int) and 0 <= v <= hi):
                problems.append(f"{key} {v!r}")
        d_block = meta.model_kwargs.get("d_block")
        if d_block is not None and d_block not in D_BLOCKS:
            problems.append(f"discriminator layout {d_block!r}")
        g_noise = meta.model_kwargs.get("g_noise")
        if g_noise is not None and not isinstance(g_noise, bool):
            problems.append(f"noise inputs {g_noise!r}")
        for flag, what in (("d_image", "image discriminator"), ("mask_first", "mask-first")):
            value = meta.model_kwargs.get(flag)
            if value is not None and not isinstance(value, bool):
                problems.append(f"{what} {value!r}")
        layout = meta.model_kwargs.get("labelled_layout")
        if layout is not None and (isinstance(layout, bool) or layout not in (1, 2, 3)):
            problems.append(f"labelled generator layout {layout!r}")
    if problems:
        raise ModelFileError(
            "The model file's metadata is invalid: " + ", ".join(problems) + ".",
            advice="The file was not written by MedGAN Studio or was altered.",
        )


@dataclass
class LoadedModel:
    """A model file read into memory: metadata and CPU state dicts per part."""

    path: str
    metadata: ModelMetadata
    state: dict[str, dict[str, torch.Tensor]]

    @property
    def recipe(self) -> str:
        return self.metadata.recipe

    @property
    def resolution(self) -> int:
        return self.metadata.resolution

    def as_init(self) -> dict[str, Any]:
        """The form ``Trainer(init_model=...)`` takes to fine-tune from this model."""
        return {
            **self.state,
            "recipe": self.metadata.recipe,
            "resolution": self.metadata.resolution,
            "metadata": self.metadata.to_dict(),
        }


# --------------------------------------------------------------------------- saving


def _flatten(state: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    flat: dict[str, torch.Tensor] = {}
    if "generator" not in state:
        raise ModelFileError("Cannot save a model without generator weights.")
    for part, tensors in state.items():
        if part not in PARTS:
            raise ModelFileError(f"Unknown model part {part!r}; expected {', '.join(PARTS)}.")
        for name, tensor in tensors.items():
            # Own, contiguous CPU copies: safetensors refuses shared or strided storage.
            flat[f"{part}.{name}"] = tensor.detach().to("cpu").contiguous().clone()
    return flat


def weights_digest(flat: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and raw bytes, in name order."""
    import torch

    h = hashlib.sha256()
    for name in sorted(flat):
        t = flat[name].detach().to("cpu").contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(repr(tuple(t.shape)).encode())
        # A uint8 view is valid for every dtype (bf16 included).
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_model(
    path: str | os.PathLike[str],
    state: dict[str, dict[str, torch.Tensor]],
    metadata: ModelMetadata,
) -> Path:
    """Write one ``.safetensors`` model file atomically (temp file in the same folder + rename).

    ``state`` maps ``generator`` (the EMA generator for recipes that keep one) and optionally
    ``discriminator`` to state dicts. ``created`` and ``torch_version`` are filled in when empty.
    Returns the path written.
    """
    import torch
    from safetensors.torch import save_file

    out = Path(path)
    if out.suffix != SUFFIX:
        out = out.with_name(out.name + SUFFIX) if out.suffix == "" else out
    if out.is_dir():
        raise ModelFileError(f"{out} is a folder; give a file name such as model{SUFFIX}.")
    out.parent.mkdir(parents=True, exist_ok=True)

    meta = ModelMetadata.from_dict(metadata.to_dict())  # validated copy
    if not meta.created:
        meta.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if not meta.torch_version:
        meta.torch_version = torch.__version__
    flat = _flatten(state)
    header = {
        "format": FORMAT_NAME,
        "format_version": str(meta.format_version),
        "medgan_metadata": json.dumps(meta.to_dict(), sort_keys=True),
        "weights_sha256": weights_digest(flat),
    }
    try:
        with atomic_path(out) as tmp:
            save_file(flat, str(tmp), metadata=header)
    except OSError as exc:
        raise ModelFileError(
            f"Could not write the model file {out}: {exc.strerror or exc}.",
            advice="Check free disk space and that the folder is writable.",
        ) from exc
    log.info("Model saved to %s (%d tensors, step %d)", out, len(flat), meta.step)
    return out


# --------------------------------------------------------------------------- loading


def _describe_foreign(head: bytes) -> str | None:
    if head[:1] == b"\x80" and len(head) > 1 and head[1] in range(2, 6):
        return "a Python pickle"
    if head[:4] == b"PK\x03\x04":
        return "a zip archive (for example a PyTorch .pt/.pth checkpoint, which holds pickles)"
    if head[:8] == b"\x93NUMPY\x01\x00"[:8] or head[:6] == b"\x93NUMPY":
        return "a NumPy array file"
    if head[:4] == b"\x89HDF":
        return "an HDF5 file"
    return None


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse and check a safetensors header (JSON only; nothing is executed).

    Raises :class:`ModelFileError` for a missing file, a non-safetensors payload, a corrupt
    header or tensor offsets that do not fit the file.
    """
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"Model file not found: {p}.", advice="Check the path.")
    if p.is_dir():
        raise ModelFileError(f"{p} is a folder, not a model file.")
    size = p.stat().st_size
    refuse = "MedGAN Studio only loads .safetensors model files it wrote; nothing was run."
    with open(p, "rb") as fh:
        head = fh.read(9)
        n = struct.unpack("<Q", head[:8])[0] if len(head) >= 8 else 0
        plausible = 0 < n <= _MAX_HEADER_BYTES and 8 + n <= size and head[8:9] == b"{"
        foreign = None if plausible else _describe_foreign(head)
        if foreign:
            raise ModelFileError(
                f"{p.name} is {foreign}, not a safetensors model file. Such files can run code "
                "when opened, so it was refused.",
                advice=refuse,
            )
        if len(head) < 9:
            raise ModelFileError(f"{p.name} is too short to be a model file ({size} bytes).")
        if not 0 < n <= _MAX_HEADER_BYTES or 8 + n > size:
            raise ModelFileError(
                f"{p.name} is not a safetensors model file (its header length is invalid).",
                advice=refuse,
            )
        fh.seek(8)
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(
            f"{p.name} has a corrupt header ({exc.__class__.__name__}).",
            advice="The file is damaged or not a model file; copy it again or retrain.",
        ) from exc
    if not isinstance(header, dict):
        raise ModelFileError(f"{p.name} has a corrupt header (not a JSON object).")
    data_len = size - 8 - n
    end_max = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, end = (int(v) for v in info["data_offsets"])
        except (TypeError, KeyError, ValueError) as exc:
            raise ModelFileError(f"{p.name} has a corrupt entry for tensor {name!r}.") from exc
        if not 0 <= begin <= end <= data_len:
            raise ModelFileError(
                f"{p.name} is truncated or corrupt (tensor {name!r} lies beyond the file end).",
                advice="Copy the file again; it was probably cut short.",
            )
        end_max = max(end_max, end)
    if end_max != data_len:
        raise ModelFileError(
            f"{p.name} has {data_len - end_max} unexplained bytes after its tensors.",
            advice="The file was altered after it was written; it was refused.",
        )
    return header


def read_metadata(path: str | os.PathLike[str]) -> ModelMetadata:
    """Read and validate only the metadata (fast: the weights are not loaded)."""
    header = read_header(path)
    return _metadata_from_header(Path(path), header)


def _metadata_from_header(p: Path, header: dict[str, Any]) -> ModelMetadata:
    meta_raw = header.get("__metadata__")
    if not isinstance(meta_raw, dict) or meta_raw.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"{p.name} is a safetensors file but not a MedGAN Studio model (no medgan metadata).",
            advice="Use a model file written by `medgan train` or the Train page.",
        )
    try:
        version = int(meta_raw.get("format_version", "0"))
    except ValueError:
        version = -1
    if not OLDEST_READABLE_VERSION <= version <= FORMAT_VERSION:
        raise ModelFileError(
            f"{p.name} uses model format version {version}; this MedGAN Studio reads versions "
            f"{OLDEST_READABLE_VERSION} to {FORMAT_VERSION}.",
            advice="Open it with the MedGAN Studio version that wrote it, or retrain.",
        )
    try:
        data = json.loads(meta_raw.get("medgan_metadata", ""))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{p.name} has invalid metadata JSON ({exc.msg}).") from exc
    meta = ModelMetadata.from_dict(data)
    if meta.format_version != version:
        raise ModelFileError(f"{p.name} has inconsistent format versions in its metadata.")
    return meta


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Read a model file: checked header, metadata and CPU tensors. Never unpickles anything."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    header = read_header(p)
    meta = _metadata_from_header(p, header)
    try:
        flat = load_file(str(p), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{p.name} could not be read as safetensors ({exc}).") from exc
    expected = header["__metadata__"].get("weights_sha256", "")
    if not expected or weights_digest(flat) != expected:
        raise ModelFileError(
            f"The weights in {p.name} do not match their recorded checksum: the file was "
            "altered or damaged after it was written, so it was refused.",
            advice="Use the original file or retrain.",
        )
    state: dict[str, dict[str, Any]] = {}
    for name, tensor in flat.items():
        part, _, key = name.partition(".")
        if part not in PARTS or not key:
            raise ModelFileError(f"{p.name} holds an unexpected tensor {name!r}.")
        state.setdefault(part, {})[key] = tensor
    if "generator" not in state:
        raise ModelFileError(f"{p.name} holds no generator weights.")
    return LoadedModel(path=str(p), metadata=meta, state=state)


def check_compatible(loaded: LoadedModel | ModelMetadata, recipe: str, resolution: int) -> None:
    """Refuse, with a message that says what to change, a model built for another recipe/size."""
    meta = loaded.metadata if isinstance(loaded, LoadedModel) else loaded
    problems = []
    if meta.recipe != recipe:
        problems.append(f"recipe {meta.recipe!r} (you asked for {recipe!r})")
    if int(meta.resolution) != int(resolution):
        problems.append(
            f"resolution {meta.resolution}x{meta.resolution} (you asked for "
            f"{resolution}x{resolution})"
        )
    if problems:
        raise ModelFileError(
            "The model file is incompatible: it was trained with " + " and ".join(problems) + ".",
            advice=f"Use --recipe {meta.recipe} --res {meta.resolution} (or leave them out to "
            "take them from the model), or start from a matching model.",
        )
