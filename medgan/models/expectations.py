"""What to expect from a training run: images it will see, and whether structure can appear.

A GAN's samples go through stages: first the outline (a grey blob in a bright skull rim), then
internal anatomy (ventricles, grey/white contrast, cerebellum), then texture. What decides the
stage is mostly the number of images the networks have seen, and that is arithmetic: images =
budget × device speed / cost per image. This module turns the Train page's settings into that
estimate, with the figures it rests on named (docs/benchmarks.md). Qt-free and torch-free, so
the form can call it on every change.

Example::

    e = expect("default", 64, device="cpu", minutes=10, cpu_threads=2)
    e.images_in_budget, e.reaches_structure, e.message()
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

# GFLOP of one training step per image (G forward/backward, D on real + fake, D update),
# counted by torch's FlopCounterMode at each recipe's default width (medgan.models.flops;
# tests/core/test_expectations.py checks this table against the counter).
GFLOP_PER_IMAGE: dict[tuple[str, int], float] = {
    ("default", 32): 1.237,
    ("default", 64): 1.704,
    ("default", 128): 2.176,
    ("default", 256): 3.464,
    ("dcgan", 32): 0.376,
    ("dcgan", 64): 2.238,
    ("dcgan", 128): 10.415,
    ("dcgan", 256): 43.122,
}

# Sustained GFLOP/s of the training loop (bf16 where native, channels_last, probes included).
# CPU: the default recipe at 64² on the demo ran 75.4 img/s on one thread and 156.3 img/s on
# two of the idle 2-core AMD EPYC dev VM (benchmarks/bench_default_rate.py, docs/benchmarks.md)
# = 129 and 266 GFLOP/s by the count above (another run the same hour: 134 img/s on two; the
# VM's rounds vary by ±8 %). A second thread is taken as adding 95 %, and so is each further
# one (likely optimistic on bigger machines).
CPU_GFLOPS_ONE_THREAD = 129.0
CPU_EXTRA_THREAD_EFFICIENCY = 0.95
# CPUs without native bf16 (AVX2 only: most laptops, older servers) train in float32, about five
# times slower: on a 2-core AMD EPYC VM with AVX2 (no AVX-512) the same benchmark ran 18.7 img/s
# on one thread and 29.6 on two = 32 and 50 GFLOP/s (docs/benchmarks.md, 2026-12-02).
CPU_FP32_GFLOPS_ONE_THREAD = 32.0
CPU_FP32_EXTRA_THREAD_EFFICIENCY = 0.58
# GPUs: NOT MEASURED in this project yet (no GPU run recorded). Assumed effective rates for
# small GAN networks (a few % of the cards' bf16 peak), to be replaced by bench figures.
ASSUMED_GFLOPS = {"cuda": 30_000.0, "mps": 1_500.0}

# Images seen before samples show internal structure (finest-level SWD and C2ST AUC both below
# the structure-erased reference, docs/evaluation.md), measured with the default recipe on the
# version-3 demo at 64² (docs/recipes.md, "More quality per FLOP"; docs/benchmarks.md): yes at
# 1,900 steps (60,800 images: C2ST AUC 0.68 against the reference's 0.93-0.97) and at 2,830.
# By eye those samples have CT grain, skull and scalp, not yet ventricles or skull-base slices
# (those appear after ≈ 5,700 steps, 180,000 images). Larger images are assumed to need at least
# as many.
STRUCTURE_IMAGES = 61_000
ANATOMY_IMAGES = 180_000


@dataclass(frozen=True)
class Expectation:
    """The estimate for one set of settings; ``message()`` says it in a sentence or two."""

    recipe: str
    resolution: int
    device: str
    gflop_per_image: float | None
    gflops: float
    measured: bool  # False: the device speed is an assumption, not a measurement
    img_per_s: float | None
    images_in_budget: float | None
    minutes_to_structure_at_least: float | None
    reaches_structure: bool | None  # None: unknown (no budget in time, or no cost figure)
    cpu_float32: bool = False  # a CPU without native bf16: the slower float32 figures

    def message(self) -> str:
        if self.img_per_s is None:
            return f"No cost figure for {self.recipe} at {self.resolution}²."
        speed = f"≈ {self.img_per_s:,.0f} img/s" + ("" if self.measured else " (assumed)")
        if self.cpu_float32:
            speed += " (float32: this CPU has no native bf16)"
        need = (
            f"Samples typically show only the outline before ~{STRUCTURE_IMAGES:,} "
            f"images (≈ {self.minutes_to_structure_at_least:,.0f} min here)"
        )
        if self.images_in_budget is None:
            return f"{speed}. {need}."
        seen = f"this budget shows the networks ≈ {self.images_in_budget:,.0f} images"
        if self.reaches_structure is False:
            return (
                f"{speed}; {seen}. {need}: expect the outline and skull with smooth blobs "
                "inside, not anatomy. Use a GPU or a longer budget."
            )
        if self.images_in_budget < ANATOMY_IMAGES:
            return (
                f"{speed}; {seen}. {need}: expect skull, scalp and CT grain; ventricles and "
                f"skull-base slices typically need ~{ANATOMY_IMAGES:,} images."
            )
        return f"{speed}; {seen}. {need}: internal anatomy can appear in this budget."

    @property
    def warn(self) -> bool:
        """Whether the budget ends before the samples typically show anatomy."""
        return self.images_in_budget is not None and self.images_in_budget < ANATOMY_IMAGES


def device_gflops(
    device: str, cpu_threads: int | None = None, cpu_bf16: bool | None = None
) -> tuple[float, bool]:
    """(sustained GFLOP/s of the training loop, measured?) for a device kind.

    ``cpu_bf16``: whether the CPU runs bf16 natively (:func:`medgan.core.device.cpu_has_fast_bf16`,
    which the Train page's device probe reports); None (not probed yet) takes the bf16 figures.
    """
    kind = device.split(":")[0]
    if kind in ASSUMED_GFLOPS:
        return ASSUMED_GFLOPS[kind], False
    threads = max(1, cpu_threads or min(os.cpu_count() or 1, 8))
    if cpu_bf16 is False:
        one, extra = CPU_FP32_GFLOPS_ONE_THREAD, CPU_FP32_EXTRA_THREAD_EFFICIENCY
    else:
        one, extra = CPU_GFLOPS_ONE_THREAD, CPU_EXTRA_THREAD_EFFICIENCY
    return one * (1.0 + extra * (threads - 1)), True


def expect(
    recipe: str,
    resolution: int,
    *,
    device: str = "cpu",
    minutes: float | None = None,
    steps: int | None = None,
    batch_size: int = 32,
    cpu_threads: int | None = None,
    cpu_bf16: bool | None = None,
) -> Expectation:
    """Estimate images per second, images in the budget and whether structure can appear.

    Args:
        device: "cpu", "cuda", "mps" (or "auto", read as the CPU: the caller knows better).
        minutes / steps: the budget (one of them; both None = open-ended).
        cpu_bf16: whether the CPU runs bf16 natively (None: not known, the bf16 figures).
    """
    kind = "cpu" if device in ("auto", "") else device.split(":")[0]
    gflop = GFLOP_PER_IMAGE.get((recipe, int(resolution)))
    rate, measured = device_gflops(kind, cpu_threads, cpu_bf16)
    if gflop is None:
        return Expectation(recipe, resolution, kind, None, rate, measured, None, None, None, None)
    img_s = rate / gflop
    if minutes is not None:
        images: float | None = img_s * 60.0 * minutes
    elif steps is not None:
        images = float(steps * batch_size)
    else:
        images = None
    need_min = STRUCTURE_IMAGES / img_s / 60.0
    reaches = None if images is None else images >= STRUCTURE_IMAGES
    return Expectation(
        recipe, int(resolution), kind, gflop, rate, measured, img_s, images,
        math.ceil(need_min * 10) / 10, reaches, kind == "cpu" and cpu_bf16 is False,
    )  # fmt: skip
