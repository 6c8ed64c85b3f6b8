"""GUI for labelled sets: mask overlays in the gallery and the compare view, the per-class
filters, and the labelled formats on the Export page (offered only when the set has them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medgan.generate.sampling import GeneratedSet
from tests.core._labelled_data import CLASSES, SEGMENTS, labelled_set
from ui.state import AppState
from ui.widgets import error_dialog


def _training_set(n: int = 8):
    from medgan.dataset.training_set import TrainingSet, TrainingSetConfig

    images, labels, masks, keys = labelled_set(n, 32, seed=3)
    known = np.ones(n, bool)
    known[0] = False  # one real slice no mask source covers
    from medgan.dicom.window import Window

    return TrainingSet(images, keys, Window(40.0, 400.0), None, TrainingSetConfig(), labels=labels,
                       class_names=CLASSES, masks=masks, segment_names=SEGMENTS,
                       mask_known=known)  # fmt: skip


def _generated(n: int = 6, *, labelled: bool = True) -> GeneratedSet:
    images, labels, masks, _ = labelled_set(n, 32, seed=5)
    extra = dict(labels=labels, class_names=CLASSES, masks=masks, segment_names=SEGMENTS)
    return GeneratedSet(images, images * 200 + 40, seed=1, indices=np.arange(n),
                        window=(40.0, 400.0), **(extra if labelled else {}))  # type: ignore[arg-type]


def test_gallery_draws_masks_and_class_captions(qtbot) -> None:
    from ui.widgets.gallery import CaptionRole, GalleryModel

    model = GalleryModel(thumb_size=32)
    gen = _generated()
    model.set_images(gen.images)
    model.set_labels(gen.labels, gen.class_names, gen.masks, len(SEGMENTS))
    img = model.thumbnail(0).toImage()
    assert not img.isGrayscale()  # the lesion is drawn in colour
    assert "bright/disc"[:10] in model.data(model.index(1), CaptionRole)
    assert model.sources_of_class(1).tolist() == (gen.labels == 1).tolist()
    model.set_show_masks(False)
    assert model.thumbnail(0).toImage().isGrayscale()


def test_compare_view_overlays_both_masks_and_toggles(qtbot) -> None:
    from ui.widgets.compare_view import CompareView

    view = CompareView()
    qtbot.addWidget(view)
    gen = _generated()
    view.set_pair(gen.images[0], gen.images[1], mask=gen.masks[0], real_mask=gen.masks[1],
                  n_segments=1)  # fmt: skip
    assert not view.mask_toggle.isHidden()
    left, right = view.visible_masks()
    assert left is not None and right is not None and view.left_mask.isVisible()
    view.mask_toggle.setChecked(False)
    assert view.visible_masks() == (None, None) and not view.left_mask.isVisible()
    view.set_pair(gen.images[0], None)
    assert view.mask_toggle.isHidden()


def test_filter_panel_shows_per_class_filters_only_for_labelled_sets(qtbot) -> None:
    from ui.widgets.filter_panel import FilterPanel

    panel = FilterPanel()
    qtbot.addWidget(panel)
    panel.top_per_class.setValue(3)
    assert panel.filter_config().per_class_keep_top is None  # hidden: not applied
    panel.set_labelled(True, masks=True, fidelity=True)
    panel.min_fidelity.setValue(60)
    cfg = panel.filter_config()
    assert cfg.per_class_keep_top == 3 and cfg.min_label_fidelity == pytest.approx(0.6)


@pytest.fixture
def export_page(qtbot):
    from ui.pages.export_page import ExportPage

    state = AppState()
    page = ExportPage(state)
    qtbot.addWidget(page)
    yield page
    page.shutdown()
    error_dialog.close_all()


def _enabled(page, key: str) -> bool:
    return page.format_combo.model().item(page.format_combo.findData(key)).isEnabled()


def test_export_page_offers_labelled_formats_only_for_labelled_sets(qtbot, export_page) -> None:
    state = export_page.state
    state.set_generated(_generated(labelled=False), None, None)
    assert not _enabled(export_page, "nnunet") and not _enabled(export_page, "imagefolder")
    assert _enabled(export_page, "dicom") and _enabled(export_page, "png")
    state.set_generated(_generated(), None, None)
    assert _enabled(export_page, "nnunet") and _enabled(export_page, "imagefolder")


def test_export_page_writes_a_labelled_nnunet_set_with_real_slices(
    qtbot, export_page, tmp_path: Path
) -> None:
    state = export_page.state
    state.set_training_set(_training_set())
    state.set_generated(_generated(), None, None)
    export_page.include_real.setChecked(True)
    export_page.format_combo.setCurrentIndex(export_page.format_combo.findData("nnunet"))
    dest = tmp_path / "Dataset002_Synth"
    export_page.destination.setText(str(dest))
    assert export_page.start_export()
    qtbot.waitUntil(lambda: not export_page.is_busy(), timeout=60000)
    assert export_page.outcome == "done", export_page.status_label.text()
    manifest = json.loads((dest / "manifest.json").read_text())
    kinds = [r["kind"] for r in manifest["files"]]
    assert kinds.count("synthetic") == 6 and kinds.count("real") == 7  # one has no known mask
    assert manifest["filters"]["real_left_out"]["no_mask"] == 1
    assert {r["label"] for r in manifest["files"]} == set(CLASSES)
    assert json.loads((dest / "dataset.json").read_text())["numTraining"] == 13


def test_generate_page_shows_classes_masks_fidelity_and_per_class_filters(qtbot) -> None:
    from medgan.curate.label_fidelity import FidelityConfig
    from medgan.workflows.generation import GenerateRequest, score_generated
    from ui.pages.generate_page import GeneratePage

    ts = _training_set(16)
    gen = _generated(8)
    request = GenerateRequest(
        model_path="", n=8, reference_images=ts.images, reference_keys=ts.patient_keys,
        reference_labels=ts.labels, reference_masks=ts.masks, class_names=CLASSES,
        segment_names=SEGMENTS, fidelity=FidelityConfig(epochs=3), device="cpu",
    )  # fmt: skip
    result = score_generated(gen, request)
    state = AppState()
    page = GeneratePage(state)
    qtbot.addWidget(page)
    page.show()
    assert page.class_combo.isHidden() and page.mask_toggle.isHidden()
    page.show_result(result)
    assert not page.class_combo.isHidden() and not page.mask_toggle.isHidden()
    assert page.class_combo.count() == 1 + len(CLASSES)
    page.class_combo.setCurrentIndex(2)  # the second class only
    shown = [page.gallery_model.source_index(r) for r in range(page.gallery_model.rowCount())]
    assert shown and all(gen.labels[s] == 1 for s in shown)  # type: ignore[index]
    page.show_image(shown[0])
    assert "Class: bright/disc" in page.score_label.text()
    assert "label_fidelity" in page.score_label.text()
    assert page.compare.visible_masks()[0] is not None
    assert not page.filters.top_per_class.isHidden() and not page.filters.min_fidelity.isHidden()
    page.filters.top_per_class.setValue(1)
    page.apply_filters()
    decisions = page.current_decisions()
    for c in (0, 1):
        assert decisions.keep[gen.labels == c].sum() <= 1
    page.mask_toggle.setChecked(False)
    assert not page.gallery_model.show_masks
    page.shutdown()


def test_generate_job_scores_against_the_training_sets_labels_and_masks() -> None:
    """The Generate page hands the training set's classes and masks to the workflow."""
    from types import SimpleNamespace

    from ui.jobs import _labelled_reference

    labels, masks = np.array([0, 1, -1]), np.zeros((3, 8, 8), np.uint8)
    known = np.array([True, True, False])
    ts = SimpleNamespace(labels=labels, masks=masks, mask_known=known,
                         class_names=("normal", "lesion"), segment_names=("haemorrhage",))  # fmt: skip
    fields = _labelled_reference(ts)
    assert fields["reference_labels"] is labels and fields["reference_masks"] is masks
    assert fields["reference_mask_known"] is known
    assert fields["class_names"] == ("normal", "lesion")
    assert fields["segment_names"] == ("haemorrhage",)
    assert _labelled_reference(np.zeros((3, 8, 8), np.float32)) == {}
    assert _labelled_reference(None) == {}
