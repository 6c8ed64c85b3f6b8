"""End to end: demo study at 64² → `medgan train` → model file → generate; Ctrl-C and resume."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medgan.cli import main
from medgan.models.modelfile import load_model, read_metadata


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medgan.demo.study import write_demo_study

    root = tmp_path_factory.mktemp("demo")
    return write_demo_study(root / "study", n_patients=2, slices_per_patient=6, size=64)


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "cache"))


def _identifiers(folder: Path) -> set[str]:
    values: set[str] = set()
    for path in folder.rglob("*"):
        if path.is_file():
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            except pydicom.errors.InvalidDicomError:  # e.g. the demo study's labels.csv
                continue
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
    from medgan.generate.sampling import generate

    out = tmp_path / "head"
    assert main(_train_args(demo, out, "--steps", "3")) == 0
    model = tmp_path / "head.safetensors"
    loaded = load_model(model)
    meta = loaded.metadata
    assert (meta.recipe, meta.resolution, meta.step, meta.seed) == ("default", 64, 3, 1)
    assert meta.modality == "CT" and meta.window is not None and meta.window[1] > 0
    assert meta.training_summary["n_train"] == 12 and meta.training_summary["n_patients"] == 2
    # Hashed patients (for `medgan utility`'s leakage check), never raw IDs.
    patients = meta.training_summary["patients"]
    assert len(patients) == 2 and all(len(p) == 16 and int(p, 16) >= 0 for p in patients)
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


def test_quality_probes_choose_the_model_and_keep_last_opts_out(
    demo: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "best"
    assert main(_train_args(demo, out, "--steps", "4", "--quality-every", "2")) == 0
    quality = read_metadata(tmp_path / "best.safetensors").quality
    assert [s for s, _ in quality["history"]] == [2, 4] and quality["trained_steps"] == 4
    chosen = min(quality["history"], key=lambda h: h[1])
    assert (
        quality["selected_step"] == chosen[0] == read_metadata(out.with_suffix(".safetensors")).step
    )
    assert "SWD" in capsys.readouterr().err

    last = tmp_path / "last"
    assert main(_train_args(demo, last, "--steps", "4", "--quality-every", "2", "--keep-last",
                            "--mode-seeking", "0.1")) == 0
    meta = read_metadata(tmp_path / "last.safetensors")
    assert meta.step == 4 and meta.quality["keep_best"] is False
    assert meta.train_config["mode_seeking"] == pytest.approx(0.1)
    assert read_metadata(tmp_path / "best.safetensors").train_config["mode_seeking"] == 0.0


@pytest.fixture
def _sigint_as_a_terminal_leaves_it() -> Iterator[None]:
    """Ctrl-C delivered, whatever started the tests: ``nohup ... &`` ignores SIGINT, and the
    trainer rightly keeps an ignored signal ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("_sigint_as_a_terminal_leaves_it")
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


def test_progress_bar_is_a_plain_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setenv("COLUMNS", "200")

    from medgan.cli.progress import CountProgress, TrainProgress, format_duration
    from medgan.train.events import StepMetrics, TrainFinished, TrainStarted

    def metrics(step: int) -> StepMetrics:
        return StepMetrics(
            step=step,
            total_steps=10,
            g_loss=0.5,
            d_loss=1.25,
            d_real=0.6,
            d_fake=0.4,
            aug_p=0.1,
            img_per_s=320.0,
            elapsed_s=step * 1.0,
            eta_s=(10 - step) * 1.0,
        )

    started = TrainStarted(
        total_steps=10,
        time_limit_s=None,
        start_step=0,
        device="cpu",
        n_images=50,
        resolution=64,
        recipe="default",
    )
    tty = io.StringIO()
    bar = TrainProgress(tty, tty=True)
    for event in (started, metrics(5), metrics(10), TrainFinished(10, 10.0, None)):
        bar(event)
    text = tty.getvalue()
    assert "Training default at 64x64 on 50 images" in text
    assert "\rstep 5/10 [######------]  50% | 320 img/s | ETA 5s" in text
    assert "G 0.500 D 1.250 | D(x) 0.60 D(G(z)) 0.40 | aug p 0.10" in text
    assert text.endswith("\n") and bar.outcome is not None and bar.last.step == 10  # type: ignore[union-attr]

    plain = io.StringIO()
    bar = TrainProgress(plain, tty=False, plain_every_s=3600)
    for event in (started, *(metrics(s) for s in range(1, 11)), TrainFinished(10, 10.0, None)):
        bar(event)
    lines = plain.getvalue().splitlines()
    assert "\r" not in plain.getvalue() and "\x1b" not in plain.getvalue()
    assert (
        len(lines) == 3 and lines[1].startswith("step 1/10") and lines[2].startswith("step 10/10")
    )

    counts = io.StringIO()
    count = CountProgress("Decoding", counts, tty=False, plain_every_s=3600, unit="slices")
    for done in range(0, 5):
        count(done, 4)
    assert counts.getvalue().splitlines()[-1].startswith("Decoding 4/4 slices")
    assert format_duration(75) == "1m15s" and format_duration(3700) == "1h01m"
    assert format_duration(None) == "?"
