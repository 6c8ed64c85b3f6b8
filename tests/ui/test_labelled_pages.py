"""Train page: recipe and class selection (counts, minority warning, ticked classes reach the
trainer); Generate page: per-class counts for a class-conditional model."""

from __future__ import annotations

import numpy as np
import torch

from medgan.dataset.training_set import TrainingSet, TrainingSetConfig
from medgan.dicom.window import Window
from medgan.models import build_models
from medgan.models.modelfile import ModelMetadata, save_model
from ui.pages.generate_page import GeneratePage
from ui.pages.train_page import TrainPage
from ui.state import AppState
from ui.widgets import error_dialog


def _labelled_set(n: int = 40) -> TrainingSet:
    labels = np.array([0] * (n - 3) + [1] * 3, np.int64)
    return TrainingSet(
        images=np.zeros((n, 32, 32), np.float32),
        patient_keys=np.array(["p1"] * n),
        window=Window(40.0, 400.0),
        holdout=None,
        config=TrainingSetConfig(resolution=64),
        labels=labels,
        class_names=("normal", "lesion"),
        masks=np.zeros((n, 32, 32), np.uint8),
        mask_known=np.ones(n, bool),
        segment_names=("lesion",),
    )


def _select(page: TrainPage, recipe: str) -> None:
    page.settings.recipe.setCurrentIndex(page.settings.recipe.findData(recipe))


def test_train_page_shows_classes_warns_on_the_minority_and_passes_the_chosen(qtbot, tmp_path):
    state = AppState()
    state.set_training_set(_labelled_set())
    page = TrainPage(state)
    qtbot.addWidget(page)
    settings = page.settings
    assert settings.classes.count() == 2 and "37 slices" in settings.classes.item(0).text()
    _select(page, "default")
    assert not settings.classes.isEnabled() and settings.class_info.text() == ""
    _select(page, "conditional")
    assert settings.classes.isEnabled()
    assert "Minority class lesion" in settings.class_info.text()
    assert settings.chosen_classes() == ["normal", "lesion"]
    values = settings.values()
    assert values["balanced_classes"] is True and values["class_pairs"] is False
    from ui.widgets.train_settings import make_train_config

    config = make_train_config(values, checkpoint_dir=str(tmp_path))
    assert config.recipe == "conditional" and config.balanced_classes
    inputs = page._labelled_inputs(config)
    assert inputs["class_names"] == ("normal", "lesion") and inputs["segment_names"] == ("lesion",)
    # untick a class: one class left, the page says the recipe cannot train
    settings.classes.item(1).setCheckState(settings.classes.item(1).checkState().Unchecked)
    assert "at least two" in settings.class_info.text()
    inputs = page._labelled_inputs(config)
    assert inputs["class_names"] == ("normal",) and (inputs["labels"][-3:] == -1).all()
    _select(page, "paired")
    assert "lesion" in settings.class_info.text()
    assert page._auto_width(settings.values()) == 16  # CPU-sized
    error_dialog.close_all()


def test_generate_page_asks_counts_per_class_for_a_conditional_model(qtbot, tmp_path):
    torch.manual_seed(0)
    kw = {"width": 8, "n_classes": 2}
    g, d = build_models("conditional", 32, z_dim=16, **kw)
    path = save_model(
        tmp_path / "c.safetensors",
        {"generator": g.state_dict(), "discriminator": d.state_dict()},
        ModelMetadata(
            recipe="conditional", resolution=32, z_dim=16, model_kwargs=kw,
            classes=["normal", "lesion"], class_counts=[37, 3],
        ),
    )  # fmt: skip
    state = AppState()
    page = GeneratePage(state)
    qtbot.addWidget(page)
    state.set_model_path(str(path))
    assert not page.per_class.isHidden() and set(page.per_class.counts()) == {"normal", "lesion"}
    assert not page.count.isEnabled()
    page.per_class.boxes["lesion"].setValue(5)
    page.per_class.boxes["normal"].setValue(2)
    with qtbot.waitSignal(page.generated, timeout=30000):
        assert page.start_generation()
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=30000)
    assert page.result is not None
    assert page.result.generated.labels.tolist() == [0, 0] + [1] * 5
    state.set_model_path("")
    assert page.per_class.isHidden()
    page.shutdown()
    error_dialog.close_all()


def test_labelled_sample_grid_has_a_row_per_class_and_tinted_masks(qtbot):
    from medgan.train.events import SampleGrid as GridEvent
    from ui.widgets.sample_grid import SampleGrid

    grid = SampleGrid()
    qtbot.addWidget(grid)
    masks = np.zeros((5, 8, 8), np.uint8)
    masks[:, 2:4, 2:4] = 1
    event = GridEvent(
        step=3, images=np.full((5, 8, 8), -1.0, np.float32),
        labels=np.array([0, 0, 0, 1, 1]), masks=masks, class_names=("a", "b"),
    )  # fmt: skip
    grid.set_labelled(event)
    assert grid.mosaic.shape == (2 * 10 + 2, 3 * 10 + 2, 3)  # 2 rows (classes), 3 columns
    tile = grid.mosaic[2:10, 2:10]
    assert tile[2, 2, 0] > tile[2, 2, 2] and tile[0, 0].tolist() == [0, 0, 0]  # red-tinted mask
    assert "rows: a, b" in grid.caption.text()
