"""Fine-tuning: a model file starts a new run; incompatible or tampered files are refused clearly."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.core.errors import ModelFileError
from medgan.models import build_models
from medgan.models.modelfile import ModelMetadata, check_compatible, load_model, save_model


def _images(n: int = 8, res: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:res, :res]
    out = np.full((n, res, res), -1.0, dtype=np.float32)
    for i in range(n):
        r = res * (0.25 + 0.1 * rng.random())
        disk = (yy - res / 2) ** 2 + (xx - res / 2) ** 2 < r**2
        out[i][disk] = rng.uniform(-0.2, 0.6)
    return out


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model file as `medgan train` writes it, with distinctive (non-initial) weights."""
    torch.manual_seed(3)
    g, d = build_models("default", 64, z_dim=32, width=16)
    with torch.no_grad():
        for p in list(g.parameters()) + list(d.parameters()):
            p.add_(0.01 * torch.randn_like(p))
    meta = ModelMetadata(
        recipe="default",
        resolution=64,
        z_dim=32,
        model_kwargs={"width": 16},
        window=(40.0, 80.0),
        modality="CT",
        step=500,
    )
    path = tmp_path_factory.mktemp("ft") / "base.safetensors"
    return save_model(path, {"generator": g.state_dict(), "discriminator": d.state_dict()}, meta)


def _config(**kw):  # type: ignore[no-untyped-def]
    from medgan.train.config import TrainConfig

    base = dict(
        resolution=64,
        z_dim=32,
        width=16,
        steps=2,
        batch_size=4,
        device="cpu",
        sample_every=1000,
        checkpoint_dir=None,
        seed=0,
    )
    base.update(kw)
    return TrainConfig.for_recipe("default", **base)


def test_finetune_starts_from_the_model_weights(model_file: Path) -> None:
    from medgan.train.trainer import Trainer

    loaded = load_model(model_file)
    config = _config(freeze_d_blocks=1, finetune_lr_scale=0.25)
    trainer = Trainer(config, _images(), init_model=loaded.as_init())
    g_start = trainer.G.state_dict()
    for name, tensor in loaded.state["generator"].items():
        assert torch.equal(g_start[name].cpu(), tensor), name
    d_start = {k: v.detach().clone() for k, v in trainer.D.state_dict().items()}
    for name, tensor in loaded.state["discriminator"].items():
        assert torch.equal(d_start[name].cpu(), tensor), name
    lr = trainer.step_fn.opt_g.param_groups[0]["lr"]
    assert lr == pytest.approx(config.lr_g * 0.25)

    result = trainer.run()
    assert result.status == "finished" and result.step == 2
    d_end = trainer.D.state_dict()
    frozen = [
        k
        for k in d_end
        if k.startswith("blocks.0.")
        and d_end[k].is_floating_point()
        and "weight_u" not in k
        and "weight_v" not in k
    ]
    assert frozen and all(torch.equal(d_end[k], d_start[k]) for k in frozen)
    moved = [
        k
        for k in d_end
        if not k.startswith("blocks.0.")
        and d_end[k].is_floating_point()
        and not torch.equal(d_end[k], d_start[k])
    ]
    assert moved  # the rest of D learned


def test_scratch_run_differs_from_finetune(model_file: Path) -> None:
    from medgan.train.trainer import Trainer

    loaded = load_model(model_file)
    scratch = Trainer(_config(), _images())
    name = next(k for k in loaded.state["generator"] if k.endswith("weight"))
    assert not torch.equal(scratch.G.state_dict()[name].cpu(), loaded.state["generator"][name])


def test_incompatible_model_is_refused_with_a_clear_message(model_file: Path) -> None:
    from medgan.train.trainer import Trainer

    loaded = load_model(model_file)
    with pytest.raises(ModelFileError, match="resolution 64x64 .*128x128"):
        check_compatible(loaded, "default", 128)
    with pytest.raises(ModelFileError, match="recipe 'default'"):
        check_compatible(loaded, "dcgan", 64)
    # The trainer refuses it too, even when asked directly.
    with pytest.raises(ModelFileError):
        Trainer(_config(resolution=128), _images(res=128), init_model=loaded.as_init())


def test_cli_finetune_paths(model_file: Path, tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from medgan.cli import main

    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "empty"
    data.mkdir()
    args = ["train", "--data", str(data), "--out", str(tmp_path / "m"), "--steps", "1"]
    assert main([*args, "--init", str(model_file), "--res", "128"]) == 1
    err = capsys.readouterr().err
    assert "incompatible" in err and "--res 64" in err
    assert main([*args, "--init", str(model_file), "--resume", str(tmp_path)]) == 1
    assert "not both" in capsys.readouterr().err
    # A stranger's pickle passed as a starting model runs nothing.
    marker = tmp_path / "ran.txt"
    evil = tmp_path / "evil.safetensors"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (open, (str(marker), "w"))

    evil.write_bytes(pickle.dumps(Payload()))
    assert main([*args, "--init", str(evil)]) == 1
    assert "refused" in capsys.readouterr().err and not marker.exists()
    assert not (tmp_path / "m.safetensors").exists()
