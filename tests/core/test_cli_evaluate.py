"""``medgan evaluate`` end to end on a tiny generated DICOM study and an untrained model file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from medgan.cli import main


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def study_and_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from medgan.demo.study import write_demo_study
    from medgan.models import build_models
    from medgan.models.modelfile import ModelMetadata, save_model

    root = tmp_path_factory.mktemp("evaluate")
    study = write_demo_study(root / "study", seed=0, n_patients=3, slices_per_patient=8, size=64)
    torch.manual_seed(0)
    g, d = build_models("dcgan", 64, z_dim=16)
    with torch.no_grad():  # untrained nets give near-constant images: make samples distinct
        for param in g.parameters():
            param.normal_(0.0, 0.3)
    holdout = {"extra": {"trainset": {"resolution": 64, "holdout_fraction": 0.34, "seed": 0}}}
    meta = ModelMetadata(recipe="dcgan", resolution=64, z_dim=16, window=(40.0, 80.0),
                         modality="CT", train_config=holdout)  # fmt: skip
    model = save_model(root / "model.safetensors",
                       {"generator": g.state_dict(), "discriminator": d.state_dict()}, meta)  # fmt: skip
    return study, model


def test_evaluate_writes_a_json_report_naming_its_metrics(
    study_and_model: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study, model = study_and_model
    out = tmp_path / "report" / "eval.json"
    args = ["evaluate", "--model", str(model), "--data", str(study), "-n", "24", "--seed", "3",
            "--pairs", "32", "--device", "cpu", "--json", str(out)]  # fmt: skip
    assert main(args) == 0
    report = json.loads(out.read_text())
    for key in ("swd", "swd_per_level", "diversity_ssim", "real_diversity_ssim", "ms_ssim",
                "real_ms_ssim", "histogram_distance", "memorization_rate", "model_sha256"):  # fmt: skip
        assert key in report, key
    assert list(report["swd_per_level"]) == ["64", "32", "16"]
    assert report["n_synthetic"] == 24 and report["n_real"] > 0
    # the model's training-set settings are reused: one of three patients was held out
    assert report["n_patients"] == 2 and report["memorization"]["cross_patient"] is True
    assert (
        report["holdout"]["n_real"] > 0 and report["holdout"]["swd"] > report["holdout"]["real_swd"]
    )
    assert report["model"]["recipe"] == "dcgan" and len(report["model_sha256"]) == 64
    # an untrained generator is far from the real slices and copies nothing
    assert report["swd"] > 1.0 and report["memorization_rate"] == 0.0
    err = capsys.readouterr().err
    assert "SWD" in err and "Memorization rate" in err


def test_evaluate_explains_a_bad_model_file(
    study_and_model: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study, _ = study_and_model
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"\x80\x04not a model")
    assert main(["evaluate", "--model", str(bogus), "--data", str(study)]) == 1
    assert "error" in capsys.readouterr().err
