"""``medgan generate --format`` with the labelled formats: refusals before any work, and a
labelled set (generation patched in: the labelled recipes come later) scored against a demo
study's real labels and masks and exported with its real slices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medgan.cli import main
from medgan.generate.sampling import GeneratedSet

CLASSES = ["none", "haemorrhage", "infarct", "subdural", "tumour"]
SEGMENTS = ["haemorrhage", "infarct", "subdural", "tumour"]


def _model(path: Path, **labelled: Any) -> Path:
    import torch

    from medgan.models import build_models
    from medgan.models.modelfile import ModelMetadata, save_model

    torch.manual_seed(0)
    g, d = build_models("default", 64, z_dim=16, width=8)
    with torch.no_grad():
        for param in g.parameters():
            param.normal_(0.0, 0.3)
    meta = ModelMetadata(recipe="default", resolution=64, z_dim=16, model_kwargs={"width": 8},
                         window=(40.0, 80.0), modality="CT", **labelled)  # fmt: skip
    return save_model(path, {"generator": g.state_dict(), "discriminator": d.state_dict()}, meta)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    plain = _model(root / "plain.safetensors")
    labelled = _model(root / "labelled.safetensors", classes=CLASSES, segments=SEGMENTS)
    return plain, labelled


@pytest.mark.parametrize(
    ("fmt", "extra", "needle"),
    [
        ("nnunet", [], "draws no masks"),
        ("imagefolder", [], "draws no classes"),
        ("png", ["--keep-top-per-class", "3"], "--keep-top-per-class needs a labelled set"),
    ],
)
def test_labelled_options_for_an_unlabelled_model_are_refused_first(
    models: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    fmt: str, extra: list[str], needle: str,
) -> None:  # fmt: skip
    out = tmp_path / "out"
    argv = ["generate", "--model", str(models[0]), "-n", "2", "--out", str(out),
            "--format", fmt, "--allow-memorized", *extra]  # fmt: skip
    assert main(argv) == 1
    assert needle in capsys.readouterr().err
    assert not out.exists()


def test_labelled_nnunet_export_with_real_slices(
    models: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medgan.demo.study import write_demo_study
    from medgan.workflows import generation

    data = write_demo_study(tmp_path / "study", seed=0, n_patients=3, slices_per_patient=6,
                            size=64)  # fmt: skip
    real_generate = generation.generate

    def labelled_generate(*args: Any, **kwargs: Any) -> GeneratedSet:
        g = real_generate(*args, **kwargs)
        n = len(g.images)
        masks = np.zeros(g.images.shape, np.uint8)
        for i in range(n):
            masks[i, 28:33, 28:33] = 1 + i % len(SEGMENTS)
        return GeneratedSet(g.images, g.modality, g.seed, g.indices, g.window, g.metadata,
                            labels=np.arange(n) % len(CLASSES), class_names=tuple(CLASSES),
                            masks=masks, segment_names=tuple(SEGMENTS))  # fmt: skip

    monkeypatch.setattr(generation, "generate", labelled_generate)
    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "Dataset001_Synth"
    argv = ["generate", "--model", str(models[1]), "-n", "10", "--seed", "2", "--out", str(out),
            "--format", "nnunet", "--data", str(data), "--include-real",
            "--keep-implausible-masks", "--keep-top-per-class", "1"]  # fmt: skip
    assert main(argv) == 0
    spec = json.loads((out / "dataset.json").read_text())
    assert spec["labels"] == {"background": 0, **{n: k for k, n in enumerate(SEGMENTS, 1)}}
    manifest = json.loads((out / "manifest.json").read_text())
    rows = manifest["files"]
    synthetic = [r for r in rows if r["kind"] == "synthetic"]
    assert len(synthetic) <= len(CLASSES)  # one per class at most
    assert {r["label"] for r in synthetic} <= set(CLASSES)
    assert any(r["kind"] == "real" for r in rows)
    assert spec["numTraining"] == len(rows) == len(list((out / "labelsTr").iterdir()))
    assert "label_fidelity" in manifest["filters"]["scoring"]
