"""Synthetic-set sources of the utility: labelled export folders read back, model files and
their recorded training patients, and segmentation with image+mask pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgan.core.errors import DataError, ModelFileError
from medgan.export import ExportConfig, SliceSet, export_set
from medgan.utility.export_folder import read_export_folder
from medgan.utility.records import UtilityConfig
from medgan.utility.sources import ArraySource, ModelFileSource, model_patients
from medgan.workflows.utility import LabelledData, UtilityRequest, run_utility
from tests.core._export_data import provenance
from tests.core._labelled_data import CLASSES, SEGMENTS, labelled_set

RES = 16


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _export(tmp_path, fmt: str):
    images, labels, masks, _ = labelled_set(8, RES)
    syn = SliceSet(images, seeds=np.full(8, 3), indices=np.arange(8), labels=labels, masks=masks)
    dest = tmp_path / fmt
    export_set(syn, ExportConfig(format=fmt, destination=str(dest)), provenance(),
               class_names=CLASSES, segment_names=SEGMENTS)  # fmt: skip
    return dest, images, labels, masks


@pytest.mark.parametrize("fmt", ["pairs-png", "pairs-nifti", "imagefolder"])
def test_labelled_exports_read_back_with_classes_and_masks(tmp_path, fmt):
    dest, images, labels, masks = _export(tmp_path, fmt)
    source = read_export_folder(dest, resolution=RES)
    assert list(source.label_names) == [CLASSES[c] for c in labels]
    assert np.abs(source.images - images).max() < 0.05  # 8-bit round trip
    if fmt.startswith("pairs"):
        assert np.array_equal(source.masks, masks)
    source.check("classify", CLASSES)
    assert source.seen_patients() is None  # the manifest names no patients: unknown


def test_an_export_of_another_size_is_refused(tmp_path):
    dest, *_ = _export(tmp_path, "pairs-png")
    with pytest.raises(DataError, match="16x16") as info:
        read_export_folder(dest, resolution=64)
    assert "--res 16" in info.value.advice


def _tiny_model(tmp_path, name: str, patients: list[str] | None):
    from medgan.train.config import TrainConfig
    from medgan.workflows.training import TrainRequest, train_and_save

    config = TrainConfig.for_recipe(
        "default", resolution=32, steps=2, batch_size=4, width=8, device="cpu",
        quality_every=0, sample_every=1000, checkpoint_dir=str(tmp_path / f"{name}.ckpt"),
    )  # fmt: skip
    images, *_ = labelled_set(8, 32)
    outcome = train_and_save(TrainRequest(config, images, out=tmp_path / f"{name}.safetensors",
                                          patient_keys=patients or ()))  # fmt: skip
    return outcome.model_path


def test_model_files_record_hashed_patients_and_per_class_models_are_checked(tmp_path):
    from medgan.models.modelfile import read_metadata

    a = _tiny_model(tmp_path, "a", ["k2", "k1", "k1"])
    assert model_patients(read_metadata(a)) == frozenset({"k1", "k2"})
    assert read_metadata(a).training_summary["patients"] == ["k1", "k2"]
    with pytest.raises(ModelFileError, match="cannot make labelled slices") as info:
        ModelFileSource({"none": a}).check("classify", ("none", "lesion"))
    assert "--model CLASS=FILE" in info.value.advice
    both = ModelFileSource({"none": a, "lesion": a})
    both.check("classify", ("none", "lesion"))
    assert both.seen_patients() == frozenset({"k1", "k2"})
    with pytest.raises(DataError, match="without masks"):
        both.check("segment", ("lesion",))
    unknown = _tiny_model(tmp_path, "b", None)
    assert ModelFileSource({"none": a, "lesion": unknown}).seen_patients() is None


def test_segmentation_with_image_and_mask_pairs():
    images, _, masks, keys = labelled_set(36, RES, patients=6)
    data = LabelledData(images, keys, None, (), masks, SEGMENTS)
    syn_i, _, syn_m, _ = labelled_set(20, RES, seed=1)
    source = ArraySource(syn_i, None, syn_m, patients=frozenset())
    cfg = UtilityConfig(task="segment", seeds=1, folds=3, steps=4, batch_size=8,
                        fractions=(1.0,), bootstrap=100, device="cpu", controls=False)  # fmt: skip
    result = run_utility(UtilityRequest(cfg, data=data, synthetic=source))
    assert result.primary_metric == "dice"
    assert {"dice", "hd95"} <= set(result.runs[0].metrics)
    assert "lesion" in result.runs[0].per_class
    with pytest.raises(DataError, match="no masks"):
        run_utility(UtilityRequest(cfg, data=data, synthetic=ArraySource(syn_i, None)))


@pytest.mark.parametrize("recipe", ["default", "conditional"])
def test_gans_are_trained_per_fold_on_its_training_patients_only(tmp_path, recipe):
    from medgan.models.modelfile import read_metadata
    from medgan.workflows.utility import GanBudget

    images, labels, _, keys = labelled_set(36, 32, patients=6)
    data = LabelledData(images, keys, labels, CLASSES)
    cfg = UtilityConfig(seeds=1, folds=2, steps=2, batch_size=4, fractions=(1.0,),
                        bootstrap=50, device="cpu", controls=False)  # fmt: skip
    drawn: dict[int, tuple[str, ...]] = {}
    result = run_utility(
        UtilityRequest(cfg, data=data, gan=GanBudget(steps=2, batch_size=4, recipe=recipe, width=8),
                       checkpoint_dir=tmp_path),
        on_draw=lambda r: drawn.setdefault(r.fold, r.train_patients),
    )  # fmt: skip
    models = sorted((tmp_path / "gan").glob("*.safetensors"))
    assert len(models) == (2 if recipe == "conditional" else 4)  # per fold (x class)
    for path in models:
        fold = int(path.name.split("_k")[1][0])
        recorded = read_metadata(path).training_summary["patients"]
        assert recorded == sorted(drawn[fold])  # exactly that fold's training patients
    assert result.synthetic["recipe"] == recipe and len(result.synthetic["models"]) == len(models)
