"""Train-page expectations: counted FLOPs, images in a budget, the CPU warning."""

from __future__ import annotations

import sys

import pytest

from medgan.models.expectations import (
    ANATOMY_IMAGES,
    GFLOP_PER_IMAGE,
    STRUCTURE_IMAGES,
    device_gflops,
    expect,
)


def test_expectations_import_no_torch() -> None:
    import importlib

    importlib.import_module("medgan.models.expectations")
    # torch may already be loaded by other tests; the module itself must not need it
    src = open(sys.modules["medgan.models.expectations"].__file__ or "").read()
    assert "import torch" not in src


@pytest.mark.parametrize("recipe,res", [("default", 64), ("dcgan", 32)])
def test_flop_table_matches_the_counter(recipe: str, res: int) -> None:
    from medgan.models.flops import step_gflop_per_image

    assert step_gflop_per_image(recipe, res) == pytest.approx(GFLOP_PER_IMAGE[(recipe, res)],
                                                               rel=2e-3)  # fmt: skip


def test_ten_cpu_minutes_at_64_warn_and_a_gpu_does_not() -> None:
    cpu = expect("default", 64, device="cpu", minutes=10, cpu_threads=2)
    assert cpu.measured and cpu.img_per_s is not None
    assert cpu.images_in_budget == pytest.approx(cpu.img_per_s * 600)
    assert STRUCTURE_IMAGES <= cpu.images_in_budget < ANATOMY_IMAGES and cpu.warn
    assert "CT grain" in cpu.message() and "ventricles" in cpu.message()
    short = expect("default", 64, device="cpu", minutes=3, cpu_threads=2)
    assert short.warn and not short.reaches_structure
    assert "blobs" in short.message() and "GPU" in short.message()
    gpu = expect("default", 128, device="cuda", minutes=10)
    assert not gpu.measured and not gpu.warn and "(assumed)" in gpu.message()
    long_cpu = expect("default", 64, device="cpu", minutes=60, cpu_threads=2)
    assert long_cpu.reaches_structure and not long_cpu.warn
    assert "anatomy can appear" in long_cpu.message()


def test_steps_budget_and_unknown_cases() -> None:
    e = expect("default", 64, steps=100, batch_size=32)
    assert e.images_in_budget == 3200 and e.warn
    assert expect("default", 64, minutes=None).reaches_structure is None
    assert expect("nope", 64).message().startswith("No cost figure")
    assert device_gflops("cpu", 4)[0] > device_gflops("cpu", 1)[0]


def test_a_cpu_without_native_bf16_takes_the_slower_float32_figures() -> None:
    fast = expect("default", 64, device="cpu", minutes=10, cpu_threads=2, cpu_bf16=True)
    slow = expect("default", 64, device="cpu", minutes=10, cpu_threads=2, cpu_bf16=False)
    assert fast.img_per_s is not None and slow.img_per_s is not None
    # measured: 156 against 30 img/s on two threads (docs/benchmarks.md)
    assert 4 < fast.img_per_s / slow.img_per_s < 7
    assert not slow.reaches_structure and slow.warn and "blobs" in slow.message()
    assert "float32" in slow.message() and "float32" not in fast.message()
    unknown = expect("default", 64, device="cpu", minutes=10, cpu_threads=2)
    assert unknown.img_per_s == fast.img_per_s  # not probed yet: the bf16 figures
    gpu = expect("default", 64, device="cuda", minutes=10, cpu_bf16=False)
    assert "float32" not in gpu.message()


def test_the_device_probe_says_whether_the_cpu_runs_bf16() -> None:
    from medgan.core.device import available_devices, cpu_has_fast_bf16

    devices = available_devices()
    assert devices[0]["key"] == "auto"
    cpu = next(d for d in devices if d["key"] == "cpu")
    assert cpu["available"] and cpu["bf16"] is cpu_has_fast_bf16()
