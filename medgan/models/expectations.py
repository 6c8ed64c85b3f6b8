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
    ("default", 32): 2.709,
    ("default", 64): 3.855,
    ("default", 128): 5.007,
    ("default", 256): 6.748,
    ("dcgan", 32): 0.376,
    ("dcgan", 64): 2.238,
    ("dcgan", 128): 10.415,
    ("dcgan", 256): 43.122,
}

# Sustained GFLOP/s of the training loop (bf16 where native, channels_last, probes included).
# CPU: the default recipe at 64² ran 38.6 img/s on one thread of an idle AMD EPYC core
# (docs/benchmarks.md, quality against time) = 149 GFLOP/s by the count above; more threads
# a second thread added 25 % (two cores: ~48 img/s, issue 14's measurement of 94 GFLOP/s at
# its 1.95 GFLOP per image); that gain per extra thread is assumed beyond two.
CPU_GFLOPS_ONE_THREAD = 149.0
CPU_EXTRA_THREAD_EFFICIENCY = 0.25
# GPUs: NOT MEASURED in this project yet (no GPU run recorded). Assumed effective rates for
# small GAN networks (a few % of the cards' bf16 peak), to be replaced by bench figures.
ASSUMED_GFLOPS = {"cuda": 30_000.0, "mps": 1_500.0}

# Images seen before samples show internal structure (beating the structure-erased reference,
# docs/evaluation.md). The evidence is a lower bound: 10 minutes of default at 64² on two CPU
# cores (23-29 thousand images) still gave outline-only blobs on third-party brain MR
# (issue 14). Larger images are assumed to need at least as many.
STRUCTURE_IMAGES_LOWER_BOUND = 30_000


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

    def message(self) -> str:
        if self.img_per_s is None:
            return f"No cost figure for {self.recipe} at {self.resolution}²."
        speed = f"≈ {self.img_per_s:,.0f} img/s" + ("" if self.measured else " (assumed)")
        need = (
            f"Samples typically show only the outline before ~{STRUCTURE_IMAGES_LOWER_BOUND:,} "
            f"images (≥ {self.minutes_to_structure_at_least:,.0f} min here)"
        )
        if self.images_in_budget is None:
            return f"{speed}. {need}."
        seen = f"this budget shows the networks ≈ {self.images_in_budget:,.0f} images"
        if self.reaches_structure is False:
            return (
                f"{speed}; {seen}. {need}: expect smooth blobs with the right outline, not "
                "anatomy. Use a GPU, a longer budget or a lower resolution."
            )
        return f"{speed}; {seen}. {need}: internal structure can appear in this budget."

    @property
    def warn(self) -> bool:
        return self.reaches_structure is False


def device_gflops(device: str, cpu_threads: int | None = None) -> tuple[float, bool]:
    """(sustained GFLOP/s of the training loop, measured?) for a device kind."""
    kind = device.split(":")[0]
    if kind in ASSUMED_GFLOPS:
        return ASSUMED_GFLOPS[kind], False
    threads = max(1, cpu_threads or min(os.cpu_count() or 1, 8))
    return CPU_GFLOPS_ONE_THREAD * (1.0 + CPU_EXTRA_THREAD_EFFICIENCY * (threads - 1)), True


def expect(
    recipe: str,
    resolution: int,
    *,
    device: str = "cpu",
    minutes: float | None = None,
    steps: int | None = None,
    batch_size: int = 32,
    cpu_threads: int | None = None,
) -> Expectation:
    """Estimate images per second, images in the budget and whether structure can appear.

    Args:
        device: "cpu", "cuda", "mps" (or "auto", read as the CPU: the caller knows better).
        minutes / steps: the budget (one of them; both None = open-ended).
    """
    kind = "cpu" if device in ("auto", "") else device.split(":")[0]
    gflop = GFLOP_PER_IMAGE.get((recipe, int(resolution)))
    rate, measured = device_gflops(kind, cpu_threads)
    if gflop is None:
        return Expectation(recipe, resolution, kind, None, rate, measured, None, None, None, None)
    img_s = rate / gflop
    if minutes is not None:
        images: float | None = img_s * 60.0 * minutes
    elif steps is not None:
        images = float(steps * batch_size)
    else:
        images = None
    need_min = STRUCTURE_IMAGES_LOWER_BOUND / img_s / 60.0
    reaches = None if images is None else images >= STRUCTURE_IMAGES_LOWER_BOUND
    return Expectation(
        recipe, int(resolution), kind, gflop, rate, measured, img_s, images,
        math.ceil(need_min * 10) / 10, reaches,
    )  # fmt: skip
