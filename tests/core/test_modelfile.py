"""Model file: round trip, and refusal of tampered, corrupt, foreign or incompatible files."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import pytest
import torch

from medgan.core.errors import ModelFileError
from medgan.models.modelfile import (
    ModelMetadata,
    check_compatible,
    load_model,
    read_metadata,
    save_model,
)


class _Payload:
    """Unpickling this would create the marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (str(self.marker), "w"))


def _state() -> dict[str, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return {
        "generator": {
            "net.0.weight": torch.randn(8, 4, 3, 3, generator=g),
            "net.1.running_mean": torch.randn(8, generator=g),
            "net.1.num_batches_tracked": torch.tensor(12),
            "half": torch.randn(5, generator=g).to(torch.bfloat16),
        },
        "discriminator": {"head.weight": torch.randn(1, 16, generator=g)},
    }


def _meta() -> ModelMetadata:
    return ModelMetadata(
        recipe="default",
        resolution=64,
        z_dim=32,
        window=(40.0, 400.0),
        modality="CT",
        pixel_spacing=(3.1, 3.1),
        training_summary={"n_images": 20, "n_patients": 2, "modality": "CT"},
        train_config={"steps": 10, "batch_size": 4},
        seed=7,
        step=10,
    )


@pytest.fixture()
def model_path(tmp_path: Path) -> Path:
    return save_model(tmp_path / "model.safetensors", _state(), _meta())


def test_round_trip_keeps_weights_and_metadata(model_path: Path) -> None:
    loaded = load_model(model_path)
    original = _state()
    for part, tensors in original.items():
        assert set(loaded.state[part]) == set(tensors)
        for name, tensor in tensors.items():
            assert loaded.state[part][name].dtype == tensor.dtype
            assert torch.equal(loaded.state[part][name], tensor)
    meta = loaded.metadata
    assert (meta.recipe, meta.resolution, meta.z_dim, meta.step, meta.seed) == (
        "default",
        64,
        32,
        10,
        7,
    )
    assert meta.window == (40.0, 400.0) and meta.pixel_spacing == (3.1, 3.1)
    assert meta.training_summary["n_images"] == 20
    assert meta.torch_version == torch.__version__ and meta.created.endswith("Z")
    assert read_metadata(model_path).to_dict() == meta.to_dict()
    # One file, nothing left behind by the atomic write.
    assert sorted(p.name for p in model_path.parent.iterdir()) == ["model.safetensors"]


def test_pickle_file_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran.txt"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(evil)
    assert not marker.exists()


def test_torch_zip_checkpoint_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran.txt"
    evil = tmp_path / "evil.safetensors"
    torch.save({"generator": _Payload(marker)}, evil)
    with pytest.raises(ModelFileError, match="zip archive"):
        load_model(evil)
    assert not marker.exists()


def test_pickle_in_place_of_weights_is_refused(model_path: Path, tmp_path: Path) -> None:
    """Keep the genuine header, overwrite the tensor bytes with a pickle payload."""
    marker = tmp_path / "code-ran.txt"
    raw = bytearray(model_path.read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    payload = pickle.dumps(_Payload(marker))
    start = 8 + n
    assert len(raw) - start >= len(payload)
    raw[start : start + len(payload)] = payload
    model_path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(model_path)
    assert not marker.exists()


def test_appended_payload_is_refused(model_path: Path, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran.txt"
    with open(model_path, "ab") as fh:
        fh.write(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelFileError, match="unexplained bytes"):
        load_model(model_path)
    assert not marker.exists()


def test_missing_truncated_and_corrupt_files(model_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "nope.safetensors")
    raw = model_path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(raw[: len(raw) - 10])
    with pytest.raises(ModelFileError, match="truncated"):
        load_model(cut)
    (n,) = struct.unpack("<Q", raw[:8])
    garbled = tmp_path / "garbled.safetensors"
    garbled.write_bytes(raw[:8] + b"{" * n + raw[8 + n :])
    with pytest.raises(ModelFileError, match="corrupt header"):
        load_model(garbled)
    tiny = tmp_path / "tiny.safetensors"
    tiny.write_bytes(b"abc")
    with pytest.raises(ModelFileError, match="too short"):
        load_model(tiny)


def _rewrite_metadata(path: Path, out: Path, change) -> None:  # type: ignore[no-untyped-def]
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    change(header["__metadata__"])
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    out.write_bytes(struct.pack("<Q", len(blob)) + blob + raw[8 + n :])


def test_foreign_safetensors_and_bad_metadata(model_path: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(ModelFileError, match="not a MedGAN Studio model"):
        load_model(plain)

    future = tmp_path / "future.safetensors"
    _rewrite_metadata(model_path, future, lambda m: m.update(format_version="99"))
    with pytest.raises(ModelFileError, match="version 99"):
        load_model(future)

    broken = tmp_path / "broken.safetensors"
    _rewrite_metadata(model_path, broken, lambda m: m.update(medgan_metadata="{not json"))
    with pytest.raises(ModelFileError, match="invalid metadata"):
        load_model(broken)

    norecipe = tmp_path / "norecipe.safetensors"
    _rewrite_metadata(
        model_path,
        norecipe,
        lambda m: m.update(medgan_metadata=json.dumps({"resolution": 64, "format_version": 1})),
    )
    with pytest.raises(ModelFileError, match="lacks recipe"):
        load_model(norecipe)

    huge = tmp_path / "huge.safetensors"
    meta = _meta().to_dict()
    meta.update(z_dim=10**9, model_kwargs={"width": 10**6})
    _rewrite_metadata(model_path, huge, lambda m: m.update(medgan_metadata=json.dumps(meta)))
    with pytest.raises(ModelFileError, match="z_dim 1000000000, width 1000000"):
        load_model(huge)


def test_check_compatible_names_what_differs(model_path: Path) -> None:
    loaded = load_model(model_path)
    check_compatible(loaded, "default", 64)
    with pytest.raises(ModelFileError) as info:
        check_compatible(loaded, "dcgan", 128)
    text = str(info.value)
    assert "'default'" in text and "'dcgan'" in text and "128x128" in text
    assert "--recipe default --res 64" in text


def test_save_is_atomic_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "m.safetensors"
    save_model(target, _state(), _meta())
    before = target.read_bytes()
    bad = {"generator": {"w": torch.zeros(2)}, "optimizer": {"x": torch.zeros(1)}}
    with pytest.raises(ModelFileError, match="Unknown model part"):
        save_model(target, bad, _meta())
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))
