"""Warm-up: load the heavy libraries in a worker once the window is on screen.

Importing torch, MONAI, pydicom or highdicom, creating the first optimizer, or a full garbage
collection over their objects each hold the interpreter lock for 100 ms to seconds. Done in the
middle of a job, that freezes the window; done once at start-up, while the user looks at the
fresh window, it costs nothing visible. The main window runs :func:`warm_up_data_stack` right
after it shows and :func:`warm_up` a moment later; tests call them before they measure stalls.
"""

from __future__ import annotations

import gc
import importlib
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

# Heavy imports happen one thread at a time: pydicom (and torch) import themselves through
# circular paths, and two threads importing them at once can see a half-initialised module
# ("partially initialized module 'pydicom'"). Every worker takes this lock before it starts
# (see ``ensure_data_stack``) and the warm-ups hold it while they import.
IMPORT_LOCK = threading.RLock()
_data_stack_loaded = False

# highdicom: the demo study's SEG writer and the label readers need it, and its import parses
# large JSON tables of the standard while holding the interpreter lock (~200 ms).
DATA_STACK = ("pydicom", "scipy.ndimage", "medgan.dicom.index", "medgan.dicom.decode",
              "medgan.dicom.window", "medgan.dataset.training_set", "medgan.demo.study",
              "highdicom", "medgan.demo.seg_writer", "medgan.dicom.labels.load")


# Imported by the warm-up after torch: what training, generation, scoring and export load.
JOB_STACK = ("medgan.train.trainer", "medgan.models.modelfile", "medgan.generate.sampling", "medgan.curate.score",
             "medgan.curate.filters", "medgan.export", "nibabel", "PIL.Image", "highdicom")


def warm_up_data_stack() -> list[str]:
    """Import the DICOM/data libraries (runs in a worker right after the window shows).

    Some of their imports hold the interpreter lock for ~100 ms (large dictionaries in
    pydicom); doing it before the first job keeps scans free of that stall.
    """
    global _data_stack_loaded
    loaded = []
    with IMPORT_LOCK:
        for name in DATA_STACK:
            try:
                importlib.import_module(name)
                loaded.append(name)
            except Exception:  # noqa: BLE001 - a missing optional module is reported by its job
                log.debug("Warm-up could not import %s", name, exc_info=True)
        _data_stack_loaded = True
    freeze_long_lived_objects()
    return loaded


def ensure_data_stack() -> None:
    """Make sure the data stack is imported before a job runs (waits for a warm-up in flight)."""
    with IMPORT_LOCK:
        if not _data_stack_loaded:
            warm_up_data_stack()


def freeze_long_lived_objects() -> None:
    """Move everything allocated so far out of the cyclic garbage collector's reach.

    With torch, MONAI, pydicom and Qt loaded there are ~300k long-lived objects, and a full
    collection walks them all: a 100-400 ms pause that can land in the middle of a job.
    They live as long as the app, so the collector has nothing to find there.
    """
    gc.freeze()


def _exercise_torch(torch: Any) -> None:
    """One tiny optimizer step: pulls in what torch imports lazily on first use.

    Creating the first optimizer imports ``torch._dynamo`` (seconds, holding the interpreter
    lock in long stretches); doing it here keeps that stall out of the first training run.
    """
    param = torch.zeros(1, 1, 8, 8, requires_grad=True)
    optimizer = torch.optim.Adam([param], lr=1e-3)
    loss = torch.nn.functional.conv2d(param, torch.ones(1, 1, 3, 3)).square().mean()
    loss.backward()
    optimizer.step()


def warm_up(*, progress: Any = None, cancel: Any = None) -> dict[str, Any]:
    """Import torch and MONAI and describe the compute device (runs in a worker).

    Importing torch holds the interpreter lock for a few hundred ms; doing it once while the
    user is still looking at the fresh window keeps every later job free of that stall.
    """
    import os

    info: dict[str, Any] = {"device": "cpu", "name": "CPU", "memory_gb": None,
                            "torch": None, "cores": os.cpu_count()}
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # noqa: BLE001 - optional information
        pass
    with IMPORT_LOCK:  # one importer at a time (see IMPORT_LOCK)
        try:
            import torch

            info["torch"] = torch.__version__
            _exercise_torch(torch)
            if torch.cuda.is_available():
                props = torch.cuda.get_device_properties(0)
                info.update(device="cuda", name=props.name,
                            memory_gb=round(props.total_memory / 2**30, 1))
            elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
                info.update(device="mps", name="Apple GPU (MPS)")
        except Exception as exc:  # noqa: BLE001 - no torch: the app still browses data
            info["error"] = str(exc)
        for module_name, func_name in (("ui.train_worker", "warm_up_training"),
                                       ("ui.jobs", "warm_up_export")):
            try:  # the pages' own warm-ups (first optimizer, highdicom's IOD tables)
                getattr(importlib.import_module(module_name), func_name)()
            except Exception:  # noqa: BLE001 - the page reports its own problems when used
                log.debug("Warm-up %s.%s failed", module_name, func_name, exc_info=True)
        for name in JOB_STACK:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a missing optional module is reported by its job
                log.debug("Warm-up could not import %s", name, exc_info=True)
        try:
            import monai
            import monai.transforms  # noqa: F401 - used by the training-set builder

            info["monai"] = monai.__version__
        except Exception:  # noqa: BLE001
            pass
    freeze_long_lived_objects()
    return info


def describe_device(info: dict[str, Any]) -> str:
    """Status-bar text for the probe's JSON."""
    if info.get("device") == "cuda":
        return f"GPU: {info.get('name')} ({info.get('memory_gb')} GiB)"
    if info.get("device") == "mps":
        return "GPU: Apple (MPS)"
    mem = info.get("memory_gb")
    cores = info.get("cores")
    return f"CPU only ({cores} cores, {mem} GiB RAM)" if mem else "CPU only"
