"""End to end: demo study at 64² → `medgan train` → model file → generate; Ctrl-C and resume."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medgan.cli import main
from medgan.modelfile import load_model, read_metadata


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medgan.demo import write_demo_study

    root = tmp_path_factory.mktemp("demo")
    return write_demo_study(root / "study", n_patients=2, slices_per_patient=6, size=64)


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "cache"))


def _identifiers(folder: Path) -> set[str]:
    values: set[str] = set()
    for path in folder.rglob("*"):
        if path.is_file():
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            for key in (
                "PatientName",
                "PatientID",
                "StudyInstanceUID",
                "SeriesInstanceUID",
                "SOPInstanceUID",
                "StudyDate",
                "PatientBirthDate",
            ):
                value = str(ds.get(key, "") or "")
                if len(value) >= 4:
                    values.add(value)
    return values


def _train_args(demo: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--data",
        str(demo),
        "--out",
        str(out),
        "--batch",
        "4",
        "--device",
        "cpu",
        "--seed",
        "1",
        *extra,
    ]


def test_train_writes_a_model_that_generates(demo: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from medgan.generate import generate

    out = tmp_path / "head"
    assert main(_train_args(demo, out, "--steps", "3")) == 0
    model = tmp_path / "head.safetensors"
    loaded = load_model(model)
    meta = loaded.metadata
    assert (meta.recipe, meta.resolution, meta.step, meta.seed) == ("default", 64, 3, 1)
    assert meta.modality == "CT" and meta.window is not None and meta.window[1] > 0
    assert meta.training_summary["n_train"] == 12 and meta.training_summary["n_patients"] == 2
    assert "checkpoint_dir" not in meta.train_config
    assert any((tmp_path / "head.checkpoints").glob("ckpt-*.safetensors"))
    err = capsys.readouterr().err
    assert "step 3/3" in err and "Model written" in err
    # Nothing identifying in the model file, header or weights.
    blob = model.read_bytes()
    for value in _identifiers(demo):
        assert value.encode() not in blob, value
    assert str(demo).encode() not in blob and str(tmp_path).encode() not in blob

    a = generate(model, 4, seed=5, batch_size=3, device="cpu")
    b = generate(model, 4, seed=5, batch_size=4, device="cpu")
    assert a.images.shape == (4, 64, 64) and np.isfinite(a.images).all()
    np.testing.assert_allclose(a.images, b.images, atol=1e-5)
    center, width = meta.window
    np.testing.assert_allclose(a.modality, center + a.images * width / 2, rtol=1e-5, atol=1e-3)


def test_ctrl_c_stops_cleanly_writes_the_model_and_resumes(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medgan.cli.progress as progress
    from medgan.train.events import StepMetrics

    class InterruptingBar(progress.TrainProgress):
        def __call__(self, event: object) -> None:
            super().__call__(event)
            if isinstance(event, StepMetrics) and event.step >= 1:
                signal.raise_signal(signal.SIGINT)  # what Ctrl-C does

    monkeypatch.setattr(progress, "TrainProgress", InterruptingBar)
    out = tmp_path / "run.safetensors"
    assert main(_train_args(demo, out, "--steps", "200")) == 130
    stopped = read_metadata(out).step
    assert 1 <= stopped < 200
    ckpts = sorted((tmp_path / "run.checkpoints").glob("ckpt-*.safetensors"))
    assert ckpts and ckpts[-1].name == f"ckpt-{stopped:08d}.safetensors"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored

    monkeypatch.setattr(progress, "TrainProgress", InterruptingBar.__mro__[1])
    resumed = tmp_path / "resumed.safetensors"
    args = _train_args(demo, resumed, "--resume", str(ckpts[-1]), "--steps", str(stopped + 2))
    assert main(args) == 0
    meta = read_metadata(resumed)
    assert meta.step == stopped + 2 and meta.recipe == "default"


def test_bad_inputs_give_clear_errors(demo: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(_train_args(tmp_path / "missing", tmp_path / "m", "--steps", "1")) == 1
    assert "error" in capsys.readouterr().err
    assert main(_train_args(demo, tmp_path / "m", "--steps", "1", "--series", "1.2.3.999")) == 1
    assert "No series matches" in capsys.readouterr().err
    assert main(_train_args(demo, tmp_path / "m", "--steps", "1", "--window", "preset:nope")) == 1
    assert "Unknown window preset" in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()
