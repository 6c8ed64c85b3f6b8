"""Atomic save/load of the full training state without pickle.

One ``ckpt-<step>.safetensors`` file per checkpoint: every tensor (network weights and buffers,
optimizer moments, RNG states) is a safetensors entry; everything else (step, config,
optimizer hyper-parameters, augmentation state, data fingerprint) is JSON in the safetensors
header. Loading never runs code from the file (no ``torch.load``, no pickle). Files are written
to a temporary name, flushed to disk and renamed, so a crash leaves the previous checkpoint whole.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan.core.errors import TrainingError
from medgan.core.fileio import atomic_open

log = logging.getLogger(__name__)

FORMAT = "medgan-checkpoint"
VERSION = 1
_META_KEY = "medgan_checkpoint"
_NAME = re.compile(r"^ckpt-(\d{8,})\.safetensors$")


class CheckpointDamaged(TrainingError):
    """A checkpoint file is truncated, corrupted or not a safetensors file."""


@dataclass
class Checkpoint:
    """What a checkpoint holds, as plain Python values and CPU tensors."""

    step: int
    modules: dict[str, dict[str, torch.Tensor]]  # e.g. "G", "D", "EMA" → state_dict
    optimizers: dict[str, dict[str, Any]]  # "G", "D" → optimizer.state_dict() form
    rng: dict[str, Any]  # torch_cpu, cuda (list), generator, numpy, python
    meta: dict[str, Any] = field(default_factory=dict)  # config, augment, fingerprint, ...
    path: Path | None = None


def checkpoint_name(step: int) -> str:
    return f"ckpt-{step:08d}.safetensors"


def data_fingerprint(images: np.ndarray) -> str:
    """A short hash of the training images (shape + bytes) to notice resuming on other data."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((images.shape, str(images.dtype))).encode())
    h.update(np.ascontiguousarray(images).data)
    return h.hexdigest()


# ------------------------------------------------------------------------- flattening
def _flatten_optimizer(
    name: str, state: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """Move optimizer tensors into ``tensors``; return the JSON rest."""
    plain: dict[str, dict[str, Any]] = {}
    for idx, per_param in state["state"].items():
        entry: dict[str, Any] = {}
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{name}/{idx}/{key}"] = value
            else:
                entry[key] = value
        plain[str(idx)] = entry
    groups = [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
        for g in state["param_groups"]
    ]
    return {"state": plain, "param_groups": groups}


def _unflatten_optimizer(
    name: str, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in meta["state"].items()}
    prefix = f"optim/{name}/"
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, _, sub = key[len(prefix) :].partition("/")
            state.setdefault(int(idx), {})[sub] = value
    groups = [
        {k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def _rng_to_tensors(rng: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    tensors["rng/torch_cpu"] = rng["torch_cpu"]
    for i, s in enumerate(rng.get("cuda") or []):
        tensors[f"rng/cuda/{i}"] = s
    plain["cuda_count"] = len(rng.get("cuda") or [])
    if rng.get("generator") is not None:
        tensors["rng/generator"] = rng["generator"]
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    tensors["rng/numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    plain["numpy"] = [kind, int(pos), int(has_gauss), float(cached)]
    version, internal, gauss = rng["python"]
    plain["python"] = [version, list(internal), gauss]
    return plain


def _rng_from_tensors(plain: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    kind, pos, has_gauss, cached = plain["numpy"]
    keys = tensors["rng/numpy_keys"].numpy().astype(np.uint32)
    version, internal, gauss = plain["python"]
    return {
        "torch_cpu": tensors["rng/torch_cpu"],
        "cuda": [tensors[f"rng/cuda/{i}"] for i in range(int(plain.get("cuda_count", 0)))],
        "generator": tensors.get("rng/generator"),
        "numpy": (kind, keys, int(pos), int(has_gauss), float(cached)),
        "python": (version, tuple(internal), gauss),
    }


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    """blake2b of every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.blake2b(digest_size=16)
    for key in sorted(tensors):
        t = tensors[key].detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


_FAULTS = {"enospc": errno.ENOSPC, "erofs": errno.EROFS}


def _injected_fault(step: int) -> str | None:
    """The fault ``MEDGAN_FAULT_INJECT`` asks for at this step (tests only), else None."""
    spec = os.environ.get("MEDGAN_FAULT_INJECT", "").strip()
    if not spec:
        return None
    kind, _, at = spec.partition("@")
    if at and step < int(at):
        return None
    return kind


# ------------------------------------------------------------------------- save / load
def save_checkpoint(
    directory: str | os.PathLike[str], ckpt: Checkpoint, *, keep: int | None = None
) -> Path:
    """Write ``ckpt`` atomically into ``directory``; keep only the newest ``keep`` files."""
    from safetensors.torch import save as st_save

    folder = Path(directory)
    tensors: dict[str, torch.Tensor] = {}
    for mod_name, state in ckpt.modules.items():
        for key, value in state.items():
            tensors[f"module/{mod_name}/{key}"] = value
    optim_meta = {
        name: _flatten_optimizer(name, st, tensors) for name, st in ckpt.optimizers.items()
    }
    rng_meta = _rng_to_tensors(ckpt.rng, tensors)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    header = {
        "format": FORMAT,
        "version": VERSION,
        "step": ckpt.step,
        "modules": sorted(ckpt.modules),
        "optimizers": optim_meta,
        "rng": rng_meta,
        "meta": ckpt.meta,
        "digest": _digest(tensors),
    }
    try:
        payload = st_save(tensors, metadata={_META_KEY: json.dumps(header, allow_nan=False)})
    except (ValueError, TypeError) as exc:
        raise TrainingError(f"Could not encode the checkpoint: {exc}.") from exc
    final = folder / checkpoint_name(ckpt.step)
    fault = _injected_fault(ckpt.step)
    try:
        if fault in _FAULTS:
            raise OSError(_FAULTS[fault], os.strerror(_FAULTS[fault]))
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_open(final, "wb") as fh:
            if fault == "stall":
                fh.write(payload[: len(payload) // 2])
                fh.flush()
                time.sleep(600)
            fh.write(payload)
    except OSError as exc:
        not_writable = exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
        raise TrainingError(
            f"Could not write checkpoint {final}: {exc.strerror or exc}.",
            advice="The checkpoint folder is not writable: fix its permissions or choose "
            "another folder (--checkpoint-dir)."
            if not_writable
            else "Free disk space or choose another checkpoint folder (--checkpoint-dir).",
        ) from exc
    if keep is not None:
        prune_checkpoints(folder, keep, protect=final)
    log.debug("checkpoint saved: %s", final)
    return final


def list_checkpoints(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(step, path) of complete checkpoints in ``directory``, oldest first."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The newest checkpoint in ``directory`` (None when there is none)."""
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def prune_checkpoints(
    directory: str | os.PathLike[str], keep: int, protect: Path | None = None
) -> None:
    """Delete all but the newest ``keep`` checkpoints (and stale temporary files)."""
    folder = Path(directory)
    found = list_checkpoints(folder)
    for _, path in found[: max(0, len(found) - keep)]:
        if protect is None or path != protect:
            path.unlink(missing_ok=True)
    for stale in folder.glob(".ckpt-*.tmp*"):  # half-written by a killed process
        if f".{os.getpid()}-" not in stale.name:
            stale.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint file, or the newest complete one in a folder (falling back, with a
    warning, past damaged newer files). Never unpickles anything."""
    p = Path(path)
    if not p.is_dir():
        return _load_file(p)
    found = list_checkpoints(p)
    if not found:
        raise TrainingError(
            f"No checkpoint found in {p}.",
            advice="Choose a checkpoint file or the run's checkpoint folder.",
        )
    first_error: CheckpointDamaged | None = None
    for _, candidate in reversed(found):
        try:
            ckpt = _load_file(candidate)
        except CheckpointDamaged as exc:
            first_error = first_error or exc
            log.warning("%s Trying the previous checkpoint.", exc.message)
            continue
        if first_error is not None:
            log.warning("Resuming from %s instead.", candidate.name)
        return ckpt
    assert first_error is not None
    raise CheckpointDamaged(
        f"Every checkpoint in {p} is damaged ({first_error.message})",
        advice="Start the run again from scratch, or from a model file (--init).",
    )


def _load_file(p: Path) -> Checkpoint:
    from safetensors import SafetensorError, safe_open

    if not p.is_file():
        raise TrainingError(f"Checkpoint {p} does not exist.")
    try:
        with safe_open(str(p), framework="pt", device="cpu") as fh:
            header_text = (fh.metadata() or {}).get(_META_KEY)
            if header_text is None:
                raise TrainingError(f"{p} is not a MedGAN checkpoint (no checkpoint header).")
            header = json.loads(header_text)
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except (SafetensorError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointDamaged(
            f"Checkpoint {p} is damaged or not a safetensors file ({exc}).",
            advice="Resume from an earlier checkpoint in the same folder.",
        ) from exc
    if header.get("format") != FORMAT:
        raise TrainingError(f"{p} is not a MedGAN checkpoint.")
    if int(header.get("version", 0)) > VERSION:
        raise TrainingError(
            f"Checkpoint {p} was written by a newer MedGAN Studio (format {header['version']}).",
            advice="Update MedGAN Studio to resume it.",
        )
    if "digest" in header and header["digest"] != _digest(tensors):
        raise CheckpointDamaged(
            f"Checkpoint {p} is damaged (its contents do not match their digest).",
            advice="Resume from an earlier checkpoint in the same folder.",
        )
    modules: dict[str, dict[str, torch.Tensor]] = {name: {} for name in header["modules"]}
    for key, value in tensors.items():
        if key.startswith("module/"):
            mod_name, _, sub = key[len("module/") :].partition("/")
            modules.setdefault(mod_name, {})[sub] = value
    optimizers = {
        name: _unflatten_optimizer(name, meta, tensors)
        for name, meta in header["optimizers"].items()
    }
    return Checkpoint(
        step=int(header["step"]),
        modules=modules,
        optimizers=optimizers,
        rng=_rng_from_tensors(header["rng"], tensors),
        meta=header.get("meta", {}),
        path=p,
    )
