"""All evaluation metrics on two arrays, as one JSON-ready report (``medgan evaluate``).

Example::

    report = evaluate_sets(generated.images, training.images,
                           patient_keys=training.patient_keys, seed=0)
    report["swd"], report["memorization_rate"]
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from medgan.core.errors import Cancelled, DataError

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)

STAGES = ("swd", "diversity", "histogram", "memorization")


@dataclass(frozen=True)
class EvaluationConfig:
    """Sizes and seeds of the evaluation; defaults follow ProGAN's SWD settings."""

    seed: int = 0
    n_pairs: int = 500  # random pairs for SSIM / MS-SSIM diversity
    descriptors_per_image: int = 128
    max_descriptors: int = 2**17
    memorization_quantile: float = 0.05
    device: str = "auto"


def evaluate_sets(
    synthetic: np.ndarray,
    real: np.ndarray,
    *,
    patient_keys: np.ndarray | list[str] | None = None,
    config: EvaluationConfig | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Compare synthetic slices with the real (training) slices; returns named metrics.

    Args:
        synthetic: (N, R, R) float32 in [-1, 1].
        real: (M, R, R) float32 in [-1, 1], the training slices.
        patient_keys: hashed patient key per real slice (calibrates memorization across patients).
        progress: ``progress(stage, done, total)`` with stages ``swd``, ``diversity``,
            ``histogram``, ``memorization``.
        cancel: set it to stop; raises :class:`medgan.core.errors.Cancelled`.
    """
    from medgan.core.device import resolve_device
    from medgan.metrics.histogram import histogram_distance
    from medgan.metrics.memorization import memorization_rate
    from medgan.metrics.ssim import diversity
    from medgan.metrics.swd import sliced_wasserstein

    cfg = config or EvaluationConfig()
    syn = np.asarray(synthetic, np.float32)
    ref = np.asarray(real, np.float32)
    if syn.ndim != 3 or ref.ndim != 3 or syn.shape[1:] != ref.shape[1:]:
        raise DataError(
            f"Synthetic {syn.shape} and real {ref.shape} slices must be (N, R, R) of one size."
        )
    if len(syn) < 2 or len(ref) < 2:
        raise DataError("Evaluation needs at least two synthetic and two real slices.")
    device = str(resolve_device(cfg.device))
    t0 = time.perf_counter()

    def stage(name: str, k: int) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("Evaluation cancelled.")
        if progress is not None:
            progress(name, k, len(STAGES))

    stage("swd", 0)
    swd = sliced_wasserstein(
        syn, ref, seed=cfg.seed, descriptors_per_image=cfg.descriptors_per_image,
        max_descriptors=cfg.max_descriptors, device=device, cancel=cancel,
    )  # fmt: skip
    floor = _real_split_swd(ref, patient_keys, cfg, device, cancel)
    stage("diversity", 1)
    div_syn = diversity(syn, n_pairs=cfg.n_pairs, seed=cfg.seed, device=device, cancel=cancel)
    div_real = diversity(ref, n_pairs=cfg.n_pairs, seed=cfg.seed, device=device, cancel=cancel)
    stage("histogram", 2)
    hist = histogram_distance(syn, ref, cancel=cancel)
    stage("memorization", 3)
    rate, cal = memorization_rate(
        syn, ref, patient_keys, quantile=cfg.memorization_quantile, seed=cfg.seed,
        device=device, cancel=cancel,
    )  # fmt: skip
    if progress is not None:
        progress("done", len(STAGES), len(STAGES))
    report: dict[str, Any] = {
        "swd": swd.swd,
        "swd_per_level": {str(k): v for k, v in swd.per_level.items()},
        "real_swd": floor,
        "diversity_ssim": div_syn.ssim,
        "real_diversity_ssim": div_real.ssim,
        "ms_ssim": div_syn.ms_ssim,
        "real_ms_ssim": div_real.ms_ssim,
        "ms_ssim_scales": div_syn.ms_ssim_scales,
        "histogram_distance": hist,
        "memorization_rate": rate,
        "memorization": cal.to_dict(),
        "n_synthetic": int(len(syn)),
        "n_real": int(len(ref)),
        "n_patients": cal.n_patients,
        "resolution": int(syn.shape[-1]),
        "settings": asdict(cfg),
        "device": device,
        "machine": f"{platform.platform()}, {platform.machine()}",
        "seconds": round(time.perf_counter() - t0, 3),
        "units": {
            "swd": "x 1e3, ProGAN convention (lower is better)",
            "real_swd": "SWD between two halves of the real slices (split by patient): "
            "the floor a perfect generator would reach with this much data",
            "diversity_ssim": "mean SSIM of random pairs (lower = more diverse)",
            "histogram_distance": "Wasserstein-1 on the [-1, 1] scale",
            "memorization_rate": "share of samples under the calibrated NN threshold",
        },
    }
    log.info(
        "Evaluation: SWD %.2f, SSIM %.3f (real %.3f), histogram %.4f, memorization %.1f%%",
        swd.swd, div_syn.ssim, div_real.ssim, hist, 100 * rate,
    )  # fmt: skip
    return report


def _real_split_swd(
    real: np.ndarray,
    patient_keys: np.ndarray | list[str] | None,
    cfg: EvaluationConfig,
    device: str,
    cancel: threading.Event | None,
) -> float | None:
    """SWD between two halves of the real set, split by patient where keys are known."""
    from medgan.metrics.swd import sliced_wasserstein

    rng = np.random.default_rng(cfg.seed)
    if patient_keys is not None and len(set(np.asarray(patient_keys).tolist())) >= 2:
        keys = np.asarray(patient_keys)
        patients = np.unique(keys)
        rng.shuffle(patients)
        first = np.isin(keys, patients[: len(patients) // 2])
    else:
        first = np.zeros(len(real), bool)
        first[rng.permutation(len(real))[: len(real) // 2]] = True
    if first.sum() < 1 or (~first).sum() < 1:
        return None
    return sliced_wasserstein(
        real[first], real[~first], seed=cfg.seed, descriptors_per_image=cfg.descriptors_per_image,
        max_descriptors=cfg.max_descriptors, device=device, cancel=cancel,
    ).swd  # fmt: skip
