"""Labelled generation: per-class counts and proportions, masks with images, determinism per
(seed, index, class) across batch sizes, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.core.errors import DataError
from medgan.generate.sampling import class_counts, generate, load_generator
from medgan.models import build_models
from medgan.models.modelfile import ModelMetadata, read_metadata, save_model, segment_colours


def _model_file(tmp_path: Path, recipe: str, n_classes: int, n_segments: int) -> Path:
    torch.manual_seed(0)
    kw = {"width": 8, "n_classes": n_classes, "n_segments": n_segments}
    g, d = build_models(recipe, 32, z_dim=16, **kw)
    with torch.no_grad():  # untrained nets give near-constant images: make samples distinct
        for param in g.parameters():
            param.normal_(0.0, 0.3)
    classes = ["normal", "lesion", "other"][:n_classes] if n_classes > 1 else []
    segments = ["lesion", "oedema"][:n_segments]
    meta = ModelMetadata(
        recipe=recipe,
        resolution=32,
        z_dim=16,
        model_kwargs=kw,
        window=(40.0, 400.0),
        classes=classes,
        class_counts=[30, 3, 5][: len(classes)],
        segments=segments,
        segment_colours=segment_colours(len(segments)),
        masks_from=recipe if n_segments else "",
    )
    return save_model(
        tmp_path / f"{recipe}.safetensors",
        {"generator": g.state_dict(), "discriminator": d.state_dict()},
        meta,
    )


def test_per_class_counts_labels_and_masks(tmp_path: Path) -> None:
    path = _model_file(tmp_path, "conditional", 2, 1)
    meta = read_metadata(path)
    assert meta.classes == ["normal", "lesion"] and meta.class_counts == [30, 3]
    assert meta.segments == ["lesion"] and meta.masks_from == "conditional"
    out = generate(path, 0, seed=3, per_class={"lesion": 5, "normal": 2}, device="cpu")
    assert out.class_names == ("normal", "lesion")
    assert out.labels.tolist() == [0, 0, 1, 1, 1, 1, 1]
    assert out.indices.tolist() == [0, 1, 0, 1, 2, 3, 4]
    assert out.masks is not None and out.masks.dtype == np.uint8
    assert set(np.unique(out.masks)) <= {0, 1}  # integer labels, never blurred
    assert out.segment_names == ("lesion",)


def test_deterministic_per_seed_index_class_whatever_the_batch_size(tmp_path: Path) -> None:
    model = load_generator(_model_file(tmp_path, "conditional", 3, 2), device="cpu")
    a = generate(model, 0, seed=5, per_class={"normal": 3, "lesion": 4, "other": 2}, batch_size=9)
    b = generate(model, 0, seed=5, per_class={"normal": 3, "lesion": 4, "other": 2}, batch_size=2)
    # batch size may change the last float bits (docs/benchmarks.md), nothing more
    np.testing.assert_allclose(a.images, b.images, atol=1e-5)
    assert np.mean(a.masks != b.masks) < 1e-3
    # (seed, index, class) alone decides a sample: lesion #2 is the same without the others
    only = generate(model, 0, seed=5, per_class={"lesion": 3}, batch_size=1)
    np.testing.assert_allclose(only.images, a.images[a.labels == 1][:3], atol=1e-5)
    # another class with the same index is another sample
    assert not np.allclose(a.images[0], a.images[3])
    # start_index continues the set
    more = generate(model, 0, seed=5, per_class={"lesion": 2}, start_index=2)
    np.testing.assert_allclose(more.images, a.images[a.labels == 1][2:4], atol=1e-5)


def test_proportions_and_even_split() -> None:
    names = ("a", "b", "c")
    assert class_counts(names, 10, proportions={"a": 0.5, "b": 0.25, "c": 0.25}) == [5, 3, 2]
    assert sum(class_counts(names, 7, proportions={"a": 1, "b": 1, "c": 1})) == 7
    assert class_counts(names, 9) == [3, 3, 3]
    assert class_counts(names, 0, per_class={"b": 4}) == [0, 4, 0]
    with pytest.raises(DataError, match="no class 'd'") as err:
        class_counts(names, 0, per_class={"d": 1})
    assert "a, b, c" in (err.value.advice or "")
    with pytest.raises(DataError):
        class_counts(names, 5, proportions={"a": 0})


def test_paired_model_draws_masks_without_classes(tmp_path: Path) -> None:
    out = generate(_model_file(tmp_path, "paired", 1, 2), 6, seed=1, device="cpu")
    assert out.labels is None and out.masks is not None and out.masks.shape == (6, 32, 32)
    assert set(np.unique(out.masks)) <= {0, 1, 2}
    assert out.segment_names == ("lesion", "oedema")


def test_per_class_on_an_unconditional_model_is_refused(tmp_path: Path) -> None:
    path = _model_file(tmp_path, "paired", 1, 1)
    with pytest.raises(DataError, match="not class-conditional"):
        generate(path, 0, per_class={"lesion": 3}, device="cpu")


def test_an_older_model_file_without_class_tables_still_loads(tmp_path: Path) -> None:
    """A file written before labelled models (no classes/segments keys) loads and samples."""
    import json

    from safetensors.torch import save_file

    from medgan.models.modelfile import FORMAT_NAME, load_model, weights_digest

    torch.manual_seed(0)
    g, d = build_models("default", 32, z_dim=16, width=8, d_block="full", g_noise=False)
    flat = {f"generator.{k}": v.contiguous() for k, v in g.state_dict().items()}
    flat.update({f"discriminator.{k}": v.contiguous() for k, v in d.state_dict().items()})
    old_meta = {  # the keys a version-1 file had before this change
        "recipe": "default", "resolution": 32, "z_dim": 16, "channels": 1,
        "model_kwargs": {"width": 8}, "window": [40.0, 400.0], "modality": "CT",
        "training_summary": {"n_train": 10}, "train_config": {}, "seed": 0, "step": 5,
        "quality": {}, "medgan_version": "0.1.0", "torch_version": "2", "created": "",
        "format_version": 1,
    }  # fmt: skip
    path = tmp_path / "old.safetensors"
    save_file(
        flat,
        str(path),
        metadata={
            "format": FORMAT_NAME,
            "format_version": "1",
            "medgan_metadata": json.dumps(old_meta),
            "weights_sha256": weights_digest(flat),
        },
    )
    meta = load_model(path).metadata
    assert meta.n_classes == 1 and meta.n_segments == 0
    assert meta.classes == [] and meta.segments == [] and meta.masks_from == ""
    out = generate(path, 3, seed=0, device="cpu")
    assert out.labels is None and out.masks is None and out.images.shape == (3, 32, 32)


def test_a_class_table_that_disagrees_with_the_network_is_refused(tmp_path: Path) -> None:
    from medgan.core.errors import ModelFileError

    with pytest.raises(ModelFileError, match="draws 3 classes but its metadata names 2"):
        ModelMetadata.from_dict(
            {"recipe": "conditional", "resolution": 32, "model_kwargs": {"n_classes": 3},
             "classes": ["a", "b"]}
        )  # fmt: skip
    with pytest.raises(ModelFileError, match="n_classes 50"):
        ModelMetadata.from_dict(
            {"recipe": "conditional", "resolution": 32, "model_kwargs": {"n_classes": 50}}
        )
