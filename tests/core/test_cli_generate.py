"""``medgan generate``: generate → score → filter → export, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medgan.cli import main
from tests.dicom_factory import write_series


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from medgan.models import build_models
    from medgan.models.modelfile import ModelMetadata, save_model

    torch.manual_seed(0)
    g, d = build_models("default", 64, z_dim=16, width=8)
    with torch.no_grad():  # an untrained net gives near-constant images: make samples distinct
        for param in g.parameters():
            param.normal_(0.0, 0.3)
    meta = ModelMetadata(recipe="default", resolution=64, z_dim=16, model_kwargs={"width": 8},
                         window=(40.0, 400.0), modality="CT", pixel_spacing=(0.5, 0.5))  # fmt: skip
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_model(path, {"generator": g.state_dict(), "discriminator": d.state_dict()}, meta)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(1)
    for k in range(2):
        pixels = (rng.normal(0, 250, (5, 40, 40)) + 1064).astype(np.int16)
        write_series(root / f"p{k}", n=5, rows=40, cols=40, pixels=pixels,
                     patient_id=f"P{k}", seed=k)  # fmt: skip
    return root


def test_refuses_without_training_data(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["generate", "--model", str(model), "-n", "2", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "memorization guard" in err and "--data" in err and "--allow-memorized" in err
    assert not out.exists()


def test_unchecked_export_is_explicit_and_recorded(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["generate", "--model", str(model), "-n", "5", "--seed", "4", "--out", str(out),
            "--format", "npy", "--allow-memorized", "--keep-top", "2", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "Exported 2 of 5" in captured.out and "did not run" in captured.err
    stack = np.load(out / "images.npy")
    assert stack.shape == (2, 64, 64) and stack.dtype == np.float32
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["memorization"]["checked"] is False and doc["memorization"]["override"] is True
    assert "did not run" in (out / "README.md").read_text()
    # The kept slices are the two most realistic, and they regenerate from (seed, index).
    from medgan.generate.sampling import generate

    kept = [row["index"] for row in doc["files"]]
    realism = {row["index"]: row["scores"]["realism"] for row in doc["files"] + doc["rejected"]}
    assert sorted(kept, key=lambda i: -realism[i]) == sorted(realism, key=lambda i: -realism[i])[:2]
    again = generate(str(model), 5, seed=4, device="cpu")
    np.testing.assert_allclose(stack, again.modality[kept], atol=1e-2)


def test_scores_filters_and_mixes_real_slices(
    model: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["generate", "--model", str(model), "-n", "4", "--out", str(out), "--format", "png16",
            "--data", str(data), "--include-real", "--allow-memorized", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads((out / "manifest.json").read_text())
    kinds = [row["kind"] for row in doc["files"]]
    assert kinds.count("real") == 10 and kinds.count("synthetic") >= 1
    assert doc["memorization"]["checked"] is True and doc["memorization"]["n_training_slices"] == 10
    assert "memorization_risk" in doc["files"][0]["scores"]
    assert doc["filters"]["config"]["allow_memorized"] is True
    assert all((out / row["file"]).is_file() for row in doc["files"])
    # A second export into the same folder is refused and changes nothing.
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(argv) == 1
    assert "already exists" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_include_real_needs_data(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "--model", str(model), "-n", "2", "--out", str(tmp_path / "o"),
            "--include-real", "--allow-memorized"]  # fmt: skip
    assert main(argv) == 1 and "--include-real needs the training data" in capsys.readouterr().err
