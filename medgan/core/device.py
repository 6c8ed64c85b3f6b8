"""Device choice (CUDA → Apple MPS → CPU, or an explicit override) and a readable description."""

from __future__ import annotations

import logging
import os
import platform
from typing import TYPE_CHECKING, Any

from medgan.core.errors import MedganError

if TYPE_CHECKING:  # torch is imported lazily so that importing medgan stays fast
    import torch

log = logging.getLogger(__name__)


class DeviceError(MedganError):
    """A requested compute device is missing or unknown."""


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a ``torch.device``; explain when it is missing.

    ``auto`` picks CUDA, then Apple MPS, then the CPU: the one order used everywhere.
    """
    import torch

    if isinstance(name, torch.device):
        return name
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            build = (
                "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            )
            raise DeviceError(
                f"A CUDA GPU was requested but none is usable (PyTorch {torch.__version__}, {build}).",
                advice="Choose device 'auto' or 'cpu', or install the CUDA build of PyTorch "
                "and an NVIDIA driver.",
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(
                f"GPU {dev.index} was requested but only {torch.cuda.device_count()} are present.",
                advice="Choose 'cuda' (the first GPU) or 'auto'.",
            )
        return dev if dev.index is not None else torch.device("cuda", torch.cuda.current_device())
    if name == "mps":
        if not _mps_available():
            raise DeviceError(
                "Apple MPS was requested but is not available on this machine.",
                advice="Choose device 'auto' or 'cpu'.",
            )
        return torch.device("mps")
    raise DeviceError(f"Unknown device {name!r}.", advice="Choose auto, cpu, cuda or mps.")


def describe_device(device: torch.device) -> str:
    """E.g. ``cuda:0 (NVIDIA H100 80GB HBM3, 79.1 GiB)`` or ``cpu (x86_64, 2 threads)``."""
    import torch

    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{device} ({props.name}, {props.total_memory / 2**30:.1f} GiB)"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({cpu_name()}, {torch.get_num_threads()} threads of {os.cpu_count()} cores)"


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX-512 BF16 / AMX); elsewhere bf16 is slower."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def amp_dtype(device: torch.device, mode: str) -> torch.dtype | None:
    """The autocast dtype for ``amp`` mode ``auto|bf16|off`` on this device, or None."""
    import torch

    if mode == "off":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        if mode == "bf16" or cpu_has_fast_bf16():
            return torch.bfloat16
        return None
    return torch.bfloat16 if mode == "bf16" else None


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures."""
    import torch

    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate memory" in text or isinstance(exc, MemoryError)
    )


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else the machine type; never forks a process
    (``platform.processor()`` runs ``uname``, and a fork holds the interpreter lock)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.machine() or "CPU"


def available_devices() -> list[dict[str, Any]]:
    """Compute devices with names and memory (``key``, ``label``, ``available``); ``auto`` first.

    ``auto`` names what :func:`resolve_device` would pick.
    """
    import psutil
    import torch

    cores = os.cpu_count() or 1
    mem_gib = psutil.virtual_memory().total / 2**30
    devices: list[dict[str, Any]] = [
        {
            "key": "cpu",
            "label": f"{cpu_name()}, {cores} cores, {mem_gib:.0f} GiB",
            "available": True,
            "bf16": cpu_has_fast_bf16(),  # float32 training without it: several times slower
        }
    ]
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        label = f"{props.name}, {props.total_memory / 2**30:.0f} GiB"
        devices.append({"key": "cuda", "label": label, "available": True})
    else:
        devices.append({"key": "cuda", "label": "not available", "available": False})
    if _mps_available():
        devices.append({"key": "mps", "label": "Apple GPU (Metal)", "available": True})
    else:
        devices.append({"key": "mps", "label": "not available", "available": False})
    best = resolve_device("auto").type
    by_key = {d["key"]: d for d in devices}
    devices.insert(
        0, {"key": "auto", "label": f"{best}: {by_key[best]['label']}", "available": True}
    )
    return devices
