"""Generation: seeded, batch-size independent, mapped back to modality units, strict loading."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.core.errors import Cancelled, ModelFileError
from medgan.generate.sampling import generate, load_generator, to_modality
from medgan.models import build_models
from medgan.models.modelfile import ModelMetadata, load_model, save_model


def _model_file(tmp_path: Path, recipe: str = "default") -> Path:
    torch.manual_seed(0)
    g, d = build_models(recipe, 32, z_dim=16)
    with torch.no_grad():  # untrained nets give near-constant images: make samples distinct
        for param in g.parameters():
            param.normal_(0.0, 0.3)
    meta = ModelMetadata(
        recipe=recipe, resolution=32, z_dim=16, window=(40.0, 400.0), modality="CT"
    )
    return save_model(
        tmp_path / f"{recipe}.safetensors",
        {"generator": g.state_dict(), "discriminator": d.state_dict()},
        meta,
    )


@pytest.mark.parametrize("recipe", ["default", "dcgan"])
def test_same_seed_same_images_whatever_the_batch_size(tmp_path: Path, recipe: str) -> None:
    model = load_generator(_model_file(tmp_path, recipe), device="cpu")
    a = generate(model, 7, seed=11, batch_size=7, device="cpu")
    b = generate(model, 7, seed=11, batch_size=2, device="cpu")
    again = generate(model, 7, seed=11, batch_size=7, device="cpu")
    other = generate(model, 7, seed=12, batch_size=7, device="cpu")
    assert a.images.shape == (7, 32, 32) and a.images.dtype == np.float32
    assert np.array_equal(a.images, again.images)
    np.testing.assert_allclose(a.images, b.images, atol=1e-5)
    assert not np.allclose(a.images, other.images, atol=1e-3)
    # Samples differ from each other (noise per index, not one noise repeated).
    assert np.abs(a.images[0] - a.images[1]).max() > 1e-4
    assert a.images.min() >= -1.0 and a.images.max() <= 1.0
    assert list(a.indices) == list(range(7)) and a.seed == 11


def test_start_index_continues_a_set(tmp_path: Path) -> None:
    model = load_generator(_model_file(tmp_path), device="cpu")
    full = generate(model, 6, seed=3, batch_size=4)
    tail = generate(model, 2, seed=3, start_index=4)
    np.testing.assert_allclose(full.images[4:], tail.images, atol=1e-5)
    assert list(tail.indices) == [4, 5]


def test_modality_units_follow_the_stored_window(tmp_path: Path) -> None:
    from medgan.dicom.window import Window, apply_window

    out = generate(_model_file(tmp_path), 3, seed=0, device="cpu")
    np.testing.assert_allclose(out.modality, 40.0 + out.images * 200.0, rtol=1e-6, atol=1e-4)
    assert out.window == (40.0, 400.0) and out.metadata["modality"] == "CT"
    # The inverse agrees with the forward window used for training (inside the window).
    hu = np.linspace(-150.0, 230.0, 50, dtype=np.float32).reshape(1, 5, 10)
    back = to_modality(apply_window(hu, Window(40.0, 400.0)), (40.0, 400.0))
    np.testing.assert_allclose(back, hu, atol=1.0)


def test_progress_and_cancel(tmp_path: Path) -> None:
    model = load_generator(_model_file(tmp_path), device="cpu")
    seen: list[tuple[int, int]] = []
    generate(model, 5, batch_size=2, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(2, 5), (4, 5), (5, 5)]
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        generate(model, 5, cancel=stop)


def test_weights_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    path = _model_file(tmp_path)
    loaded = load_model(path)
    weight = next(k for k in loaded.state["generator"] if k.endswith("weight"))
    loaded.state["generator"].pop(weight)
    with pytest.raises(ModelFileError, match="do not fit"):
        load_generator(loaded, device="cpu")
    loaded = load_model(path)
    loaded.metadata.recipe = "stylegan9"
    with pytest.raises(ModelFileError, match="does not know"):
        load_generator(loaded, device="cpu")
