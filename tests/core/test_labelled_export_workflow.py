"""A labelled generated set through the workflows (score → curate → export), mixed with REAL
labelled slices of a small demo study (classes from labels.csv, masks from its SEGs)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medgan.core.errors import ExportError
from medgan.curate.filters import FilterConfig
from medgan.curate.label_fidelity import FidelityConfig
from medgan.export import ExportConfig
from medgan.generate.sampling import GeneratedSet
from medgan.workflows.curation import CurateRequest, curate
from medgan.workflows.exporting import ExportRequest, export_curated
from medgan.workflows.generation import GenerateRequest, score_generated


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from medgan.dataset.training_set import TrainingSetConfig, build_training_set
    from medgan.demo.study import write_demo_study
    from medgan.dicom.index import scan_folder
    from medgan.dicom.labels import load_labels

    root = tmp_path_factory.mktemp("labelled-demo")
    write_demo_study(root / "study", seed=0, n_patients=4, slices_per_patient=8, size=64)
    scan = scan_folder(root / "study")
    ts = build_training_set(scan.series, TrainingSetConfig(resolution=64),
                            labels=load_labels(scan), cache_root=root / "cache")  # fmt: skip
    assert ts.labels is not None and ts.masks is not None and len(ts.class_names) >= 2
    return ts


def _generated(ts: Any) -> GeneratedSet:
    """'Synthetic' pairs: the real slices mirrored and shifted, with noise, same classes."""
    rng = np.random.default_rng(1)
    images = np.roll(ts.images[:, :, ::-1], (3, -2), axis=(1, 2))
    images = np.clip(images + rng.normal(0, 0.05, images.shape), -1, 1).astype(np.float32)
    masks = np.roll(ts.masks[:, :, ::-1], (3, -2), axis=(1, 2))
    n = len(images)
    return GeneratedSet(
        images, images.copy(), seed=4, indices=np.arange(n), labels=np.maximum(ts.labels, 0),
        class_names=ts.class_names, masks=masks, segment_names=ts.segment_names,
        metadata={"recipe": "paired", "modality": "CT"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def scored(demo_set: Any) -> Any:
    ts = demo_set
    request = GenerateRequest(
        model_path="", n=len(ts.images), reference_images=ts.images,
        reference_keys=ts.patient_keys, reference_labels=ts.labels, reference_masks=ts.masks,
        reference_mask_known=ts.mask_known, class_names=ts.class_names,
        segment_names=ts.segment_names, fidelity=FidelityConfig(epochs=5), device="cpu",
    )  # fmt: skip
    return score_generated(_generated(ts), request)


def test_labelled_scores_reach_the_curation(scored: Any) -> None:
    cols = scored.scores.columns
    assert {"label", "label_fidelity", "mask_plausible", "mask_memorized"} <= set(cols)
    assert scored.scores.settings["label_fidelity"]["cv_folds_by_patient"] >= 2
    result = curate(CurateRequest(n=len(cols["label"]), scores=scored.scores,
                                  filters=FilterConfig(allow_memorized=True,
                                                       per_class_keep_top=4)))  # fmt: skip
    labels = cols["label"]
    for c in np.unique(labels):
        assert result.decisions.keep[labels == c].sum() <= 4
    with pytest.raises(ExportError, match="label fidelity"):
        curate(CurateRequest(n=3, realism=np.ones(3), filters=FilterConfig(min_label_fidelity=0.5)))


def _rows(dest: Path) -> list[dict[str, str]]:
    with open(dest / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("fmt", ["imagefolder", "pairs-png", "nnunet", "monai", "dicom"])
def test_mixed_real_and_synthetic_labelled_export(tmp_path: Path, scored: Any, fmt: str) -> None:
    ts_names = scored.generated.class_names
    decisions = curate(CurateRequest(n=len(scored.generated.images), scores=scored.scores,
                                     filters=FilterConfig(allow_memorized=True))).decisions  # fmt: skip
    dest = tmp_path / fmt
    result = export_curated(ExportRequest(
        scored, decisions, ExportConfig(format=fmt, destination=str(dest), include_real=True),
    ))  # fmt: skip
    rows = _rows(dest)
    kinds = {r["kind"] for r in rows}
    assert kinds == {"synthetic", "real"} and result.n_real > 0
    document = json.loads((dest / "manifest.json").read_text())
    assert [c["name"] for c in document["classes"]] == list(ts_names)
    assert [s["name"] for s in document["segments"]][1:] == list(scored.generated.segment_names)
    assert {r["label"] for r in rows if r["kind"] == "synthetic"} <= set(ts_names)
    assert "score_label_fidelity" in rows[0]
    assert document["filters"]["per_class"][0]["class"] == ts_names[0]
    if fmt in ("pairs-png", "nnunet", "monai"):  # real slices without a known mask left out
        known = int(scored.reference_mask_known.sum())
        assert result.n_real == known < len(scored.reference)
        assert document["filters"]["real_left_out"]["no_mask"] == len(scored.reference) - known
        assert all(r["mask_file"] for r in rows)
