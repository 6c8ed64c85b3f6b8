"""The Qt-free workflow layer: progress adapters, curation without scores, the memorization
record, training-set settings of a model, series selection, export and evaluate plumbing."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from medgan.core.errors import Cancelled, DataError, ExportError
from medgan.curate.decisions import USER_ACCEPT, USER_REJECT, memorization_record, undecided
from medgan.curate.filters import FilterConfig
from medgan.dicom.window import Window, apply_window, to_modality
from medgan.workflows.curation import CurateRequest, curate
from medgan.workflows.progress import overall_fraction, per_stage, stage
from tests.dicom_factory import write_series


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from medgan.models import build_models
    from medgan.models.modelfile import ModelMetadata, save_model

    torch.manual_seed(0)
    g, d = build_models("default", 64, z_dim=16, width=8)
    with torch.no_grad():
        for param in g.parameters():
            param.normal_(0.0, 0.3)
    meta = ModelMetadata(recipe="default", resolution=64, z_dim=16, model_kwargs={"width": 8},
                         window=(40.0, 400.0), modality="CT",
                         train_config={"extra": {"trainset": {"min_foreground": 0.01}}})  # fmt: skip
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


def test_one_window_type_with_its_inverse() -> None:
    import medgan.export
    import medgan.generate.sampling

    assert medgan.generate.sampling.to_modality is to_modality is medgan.export.to_modality
    w = Window.coerce((40, 400))
    assert w == Window(40.0, 400.0) == (40.0, 400.0) and Window.coerce(w.to_dict()) == w
    assert Window.coerce(None) is None and w.as_tuple() == (40.0, 400.0)
    hu = np.array([-160.0, 40.0, 240.0], np.float32)
    np.testing.assert_allclose(w.to_modality(apply_window(hu, w)), hu, atol=1e-4)
    np.testing.assert_allclose(to_modality(np.zeros(2), None), 0.0)
    # Passed as a Window along generate → export; numbers only where a file is written.
    from medgan.export import ExportConfig, Provenance

    config = ExportConfig(window=(40, 400))
    assert isinstance(config.window, Window) and config.to_dict()["window"] == [40.0, 400.0]
    assert ExportConfig.from_dict(config.to_dict()).window == w
    prov = Provenance("0" * 64, "m", "dcgan", 8, 0, window=[40, 400])
    assert isinstance(prov.window, Window) and prov.to_dict()["window"] == [40.0, 400.0]
    with pytest.raises(ExportError, match="width must be positive"):
        ExportConfig(window=(40, 0))


def test_progress_adapters() -> None:
    seen: list[float] = []
    report = overall_fraction(lambda f, message="": seen.append(f), {"generate": 1, "score": 3})
    for name, done in (("generate", 5), ("generate", 10), ("other", 1), ("score", 2), ("score", 4)):
        report(name, done, 10 if name == "generate" else 4)
    assert seen == pytest.approx([0.125, 0.25, 0.625, 1.0])
    made: list[str] = []
    counts: list[tuple[int, int]] = []
    bars = per_stage(lambda name: made.append(name) or (lambda d, t: counts.append((d, t))))
    bars("scan", 1, 2)
    bars("scan", 2, 2)
    bars("prepare", 1, 1)
    assert made == ["scan", "prepare"] and counts == [(1, 2), (2, 2), (1, 1)]
    assert stage(None, "x") is None


def test_curate_without_scores_keeps_top_k_and_says_the_guard_did_not_run() -> None:
    realism = np.array([0.2, 0.9, 0.5, 0.7])
    result = curate(CurateRequest(n=4, realism=realism,
                                  filters=FilterConfig(keep_top_k=2, allow_memorized=True)))  # fmt: skip
    d = result.decisions
    assert d.keep.tolist() == [False, True, False, True]
    assert "top 2" in d.reasons[0] and d.counts["top_k"] == 2
    assert d.to_dict()["memorization_guard"] == "not run (no training data)"
    record = memorization_record(d, None, n_training_slices=None)
    assert record["checked"] is False and record["override"] is True and record["note"]
    with pytest.raises(ExportError, match="no discriminator"):
        curate(CurateRequest(n=2, filters=FilterConfig(min_realism=0.5)))


def test_config_for_model_uses_the_saved_settings_and_the_model_window(model: Path) -> None:
    from medgan.models.modelfile import read_metadata
    from medgan.workflows.dataset import config_for_model

    meta = read_metadata(model)
    cfg = config_for_model(meta, holdout=False)
    assert (cfg.resolution, cfg.window, cfg.window_center, cfg.window_width) == (
        64, "explicit", 40.0, 400.0)  # fmt: skip
    assert cfg.min_foreground == 0.01 and cfg.holdout_fraction == 0.0


def test_build_training_set_from_a_folder_by_uid_prefix(data: Path) -> None:
    from medgan.dataset.training_set import TrainingSetConfig
    from medgan.dicom.index import scan_folder
    from medgan.workflows.dataset import TrainingSetRequest, build_training_set, select_series

    scan = scan_folder(data)
    uid = scan.series[0].series_uid
    stages: list[str] = []
    built = build_training_set(
        TrainingSetRequest(config=TrainingSetConfig(resolution=64), folder=str(data),
                           series_uids=[uid[:-2]], slice_ranges={uid: (1, 4)}),
        progress=lambda name, done, total: stages.append(name),
    )  # fmt: skip
    assert [s.series_uid for s in built.series] == [uid]
    assert len(built.training_set.images) == 3 and built.scan is not None
    assert stages[0] == "scan" and stages[-1] == "prepare"
    with pytest.raises(DataError, match="No series matches"):
        select_series(scan, ["9.9.9"])
    with pytest.raises(DataError, match="No series chosen"):
        build_training_set(TrainingSetRequest())


def test_generate_cancel_and_unscored_export(model: Path, tmp_path: Path) -> None:
    from medgan.export import ExportConfig
    from medgan.workflows.exporting import ExportRequest, export_curated
    from medgan.workflows.generation import GenerateRequest, generate_and_score

    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        generate_and_score(GenerateRequest(str(model), 4, device="cpu"), cancel=stop)
    result = generate_and_score(GenerateRequest(str(model), 4, seed=2, device="cpu"))
    assert result.scores is None and result.realism is not None and len(result.realism) == 4
    assert result.generated.window == Window(40.0, 400.0)
    out = tmp_path / "unscored"
    exported = export_curated(ExportRequest(result, None, ExportConfig("npy", str(out))))
    assert exported.n_synthetic == 4
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["memorization"]["checked"] is False and doc["memorization"]["override"] is False
    assert doc["filters"]["memorization_guard"] == "not run (no training data)"
    assert doc["model"]["extra"]["generation"] == {"n": 4, "seed": 2, "start_index": 0}
    assert "realism" in doc["files"][0]["scores"]


def test_scored_curation_and_the_same_record_keys(model: Path, data: Path) -> None:
    from medgan.models.modelfile import read_metadata
    from medgan.workflows.dataset import TrainingSetRequest, build_training_set, config_for_model
    from medgan.workflows.generation import GenerateRequest, generate_and_score

    ts = build_training_set(TrainingSetRequest(
        config=config_for_model(read_metadata(model), holdout=False), folder=str(data))
    ).training_set  # fmt: skip
    result = generate_and_score(GenerateRequest(
        str(model), 6, device="cpu", reference_images=ts.images, reference_keys=ts.patient_keys,
    ))  # fmt: skip
    assert result.scores is not None and result.n_reference == len(ts.images)
    manual = undecided(6)
    manual[0], manual[1] = USER_REJECT, USER_ACCEPT
    request = CurateRequest(n=6, scores=result.scores, manual=manual,
                            filters=FilterConfig(allow_memorized=True))  # fmt: skip
    d = curate(request).decisions
    assert not d.keep[0] and d.reasons[0] == "rejected by the user" and d.keep[1]
    checked = memorization_record(d, result.scores, n_training_slices=len(ts.images))
    unchecked = memorization_record(curate(CurateRequest(n=6)).decisions, None,
                                    n_training_slices=None)  # fmt: skip
    assert checked["checked"] is True and checked["n_training_slices"] == len(ts.images)
    assert set(checked) == set(unchecked)


def test_evaluate_passes_every_metric_through(
    model: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medgan.workflows.evaluation as evaluation

    def fake_metrics(syn: np.ndarray, real: np.ndarray, **_: object) -> dict[str, object]:
        return {"swd": 1.0, "a_new_metric": {"per_level": [1, 2]}, "n_real": len(real)}

    monkeypatch.setattr(evaluation, "evaluate_sets", fake_metrics)
    result = evaluation.evaluate(
        evaluation.EvaluateRequest(str(model), str(data), n=4, device="cpu")
    )
    assert result.report["a_new_metric"] == {"per_level": [1, 2]}
    assert (
        result.report["model"]["recipe"] == "default" and len(result.report["model_sha256"]) == 64
    )
    assert result.n_real == result.report["n_real"] > 0 and result.n_patients == 2


def test_with_patients_records_sorted_unique_hashes_only() -> None:
    from medgan.workflows.training import with_patients

    summary = {"n_train": 3}
    out = with_patients(summary, np.array(["bbbb", "aaaa", "bbbb"]))
    assert out == {"n_train": 3, "patients": ["aaaa", "bbbb"]} and summary == {"n_train": 3}
    assert with_patients(summary, None) == summary and with_patients(summary, []) == summary
