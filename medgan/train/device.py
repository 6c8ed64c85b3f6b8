"""Device choice (CUDA → Apple MPS → CPU, or an explicit override) and a readable description."""

from __future__ import annotations

import logging
import os
import platform

import torch

from medgan.errors import TrainingError

log = logging.getLogger(__name__)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a ``torch.device``; explain when it is missing."""
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
            raise TrainingError(
                f"A CUDA GPU was requested but none is usable (PyTorch {torch.__version__}, {build}).",
                advice="Choose device 'auto' or 'cpu', or install the CUDA build of PyTorch "
                "and an NVIDIA driver.",
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise TrainingError(
                f"GPU {dev.index} was requested but only {torch.cuda.device_count()} are present.",
                advice="Choose 'cuda' (the first GPU) or 'auto'.",
            )
        return dev if dev.index is not None else torch.device("cuda", torch.cuda.current_device())
    if name == "mps":
        if not _mps_available():
            raise TrainingError(
                "Apple MPS was requested but is not available on this machine.",
                advice="Choose device 'auto' or 'cpu'.",
            )
        return torch.device("mps")
    raise TrainingError(f"Unknown device {name!r}.", advice="Choose auto, cpu, cuda or mps.")


def describe_device(device: torch.device) -> str:
    """E.g. ``cuda:0 (NVIDIA H100 80GB HBM3, 79.1 GiB)`` or ``cpu (x86_64, 2 threads)``."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{device} ({props.name}, {props.total_memory / 2**30:.1f} GiB)"
    if device.type == "mps":
        return "mps (Apple GPU)"
    cpu = platform.processor() or platform.machine()
    return f"cpu ({cpu}, {torch.get_num_threads()} threads of {os.cpu_count()} cores)"


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX-512 BF16 / AMX); elsewhere bf16 is slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def amp_dtype(device: torch.device, mode: str) -> torch.dtype | None:
    """The autocast dtype for ``amp`` mode ``auto|bf16|off`` on this device, or None."""
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
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate memory" in text or isinstance(exc, MemoryError)
    )
