"""Checkpoints: exact round trip, atomic writes, keep-last-K, no pickle, kill-and-resume."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.core.errors import TrainingError
from medgan.train import checkpoint as ck
from medgan.train.config import TrainConfig
from medgan.train.trainer import Trainer
from tests.core._train_data import one_thread  # noqa: F401 - autouse fixture


def images(n: int = 16, r: int = 32) -> np.ndarray:
    rng = np.random.default_rng(5)
    return np.clip(rng.normal(-0.3, 0.4, (n, r, r)), -1, 1).astype(np.float32)


def config(tmp: Path, **kw) -> TrainConfig:
    base = dict(
        resolution=32,
        steps=4,
        batch_size=4,
        width=8,
        n_samples=2,
        checkpoint_every=2,
        keep_checkpoints=2,
        checkpoint_dir=str(tmp),
        seed=3,
        augment_p=0.3,
    )
    base.update(kw)
    return TrainConfig.for_recipe("default", **base)


def test_round_trip_is_exact(tmp_path):
    trainer = Trainer(config(tmp_path), images())
    trainer.run()
    original = trainer._checkpoint()
    path = ck.save_checkpoint(tmp_path / "x", original)
    loaded = ck.load_checkpoint(path)
    assert loaded.step == 4 and loaded.meta["config"] == trainer.config.to_dict()
    for name, state in original.modules.items():
        assert state.keys() == loaded.modules[name].keys()
        for key, value in state.items():
            assert torch.equal(value.cpu(), loaded.modules[name][key]), f"{name}.{key}"
    for name, opt in original.optimizers.items():
        got = loaded.optimizers[name]
        assert got["param_groups"] == opt["param_groups"]
        for idx, per in opt["state"].items():
            for key, value in per.items():
                assert torch.equal(value, got["state"][idx][key])
    assert torch.equal(loaded.rng["generator"], original.rng["generator"])
    assert torch.equal(loaded.rng["torch_cpu"], original.rng["torch_cpu"])
    assert np.array_equal(loaded.rng["numpy"][1], original.rng["numpy"][1])
    assert loaded.rng["python"] == original.rng["python"]
    assert loaded.meta["augment"] == trainer.augmenter.state_dict()
    assert loaded.meta["data_fingerprint"] == ck.data_fingerprint(images())


def test_keeps_last_k_and_leaves_no_temp_files(tmp_path):
    Trainer(config(tmp_path, steps=8), images()).run()
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [6, 8]
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))
    assert ck.latest_checkpoint(tmp_path).name == "ckpt-00000008.safetensors"


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    trainer = Trainer(config(tmp_path), images())
    trainer.run()
    before = ck.latest_checkpoint(tmp_path).read_bytes()

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck.os, "replace", disk_full)
    trainer.step = 99
    with pytest.raises(TrainingError, match="No space left") as info:
        ck.save_checkpoint(tmp_path, trainer._checkpoint())
    assert "disk space" in info.value.advice
    assert ck.latest_checkpoint(tmp_path).read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_pickle_payload_and_corruption_are_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    fake = tmp_path / "ckpt-00000001.safetensors"
    fake.write_bytes(pickle.dumps({"state": Evil()}))
    with pytest.raises(TrainingError, match="damaged or not a safetensors"):
        ck.load_checkpoint(fake)
    assert not marker.exists()

    trainer = Trainer(config(tmp_path / "run"), images())
    trainer.run()
    good = ck.latest_checkpoint(tmp_path / "run")
    data = bytearray(good.read_bytes())
    truncated = tmp_path / "trunc.safetensors"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(TrainingError, match="damaged"):
        ck.load_checkpoint(truncated)

    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(TrainingError, match="not a MedGAN checkpoint"):
        ck.load_checkpoint(plain)
    with pytest.raises(TrainingError, match="does not exist"):
        ck.load_checkpoint(tmp_path / "missing.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingError, match="No checkpoint found"):
        ck.load_checkpoint(tmp_path / "empty")


def test_loading_never_unpickles(tmp_path, monkeypatch):
    Trainer(config(tmp_path), images()).run()

    def forbidden(*a, **k):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    loaded = ck.load_checkpoint(tmp_path)
    resumed = Trainer(config(tmp_path, steps=5), images(), resume_from=tmp_path)
    assert loaded.step == 4 and resumed.run().step == 5


def test_newer_format_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "ckpt-00000001.safetensors"
    header = {"format": ck.FORMAT, "version": ck.VERSION + 1}
    save_file({"w": torch.zeros(1)}, str(path), metadata={"medgan_checkpoint": json.dumps(header)})
    with pytest.raises(TrainingError, match="newer") as info:
        ck.load_checkpoint(path)
    assert "Update" in info.value.advice


def test_resume_refuses_a_different_architecture(tmp_path):
    Trainer(config(tmp_path), images()).run()
    with pytest.raises(TrainingError, match="different run") as info:
        Trainer(config(tmp_path, width=16), images(), resume_from=tmp_path)
    assert "width" in info.value.message


def test_killed_process_resumes_from_last_periodic_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    script = textwrap.dedent(f"""
        import os, sys, numpy as np, torch
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        torch.set_num_threads(1)
        from medgan.train.config import TrainConfig
        from medgan.train.trainer import Trainer
        from medgan.train.events import StepMetrics
        from tests.core.test_checkpoint import config, images
        def killer(e):
            if isinstance(e, StepMetrics) and e.step == 5:
                os._exit(9)  # like a kill: no cleanup, no checkpoint on stop
        Trainer(config(__import__('pathlib').Path({str(run_dir)!r}), steps=8,
                metrics_interval_s=0.0), images(), on_event=killer).run()
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 9, proc.stderr
    assert [s for s, _ in ck.list_checkpoints(run_dir)] == [2, 4]

    straight = Trainer(config(tmp_path / "straight", steps=8, metrics_interval_s=0.0), images())
    straight.run()
    resumed = Trainer(
        config(run_dir, steps=8, metrics_interval_s=0.0), images(), resume_from=run_dir
    )
    assert resumed.step == 4
    assert resumed.run().step == 8
    a, b = straight.model_state(), resumed.model_state()
    for part in a:
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key}"


def test_resume_on_another_device_type_continues_with_a_warning(tmp_path, caplog):
    Trainer(config(tmp_path / "a"), images()).run()
    ckpt = ck.load_checkpoint(tmp_path / "a")
    ckpt.rng["generator"] = torch.zeros(16, dtype=torch.uint8)  # a CUDA Philox state
    ck.save_checkpoint(tmp_path / "b", ckpt)
    with caplog.at_level("WARNING", logger="medgan.train.setup"):
        resumed = Trainer(config(tmp_path / "b", steps=5), images(), resume_from=tmp_path / "b")
    assert "another device" in caplog.text
    assert resumed.run().step == 5


def test_checkpoint_from_before_digests_and_time_intervals_still_resumes(tmp_path):
    import struct

    Trainer(config(tmp_path), images()).run()
    path = ck.latest_checkpoint(tmp_path)
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    inner = json.loads(header["__metadata__"]["medgan_checkpoint"])
    assert "digest" in inner
    del inner["digest"]  # written by an earlier version: no digest, no checkpoint_minutes
    del inner["meta"]["config"]["checkpoint_minutes"]
    header["__metadata__"]["medgan_checkpoint"] = json.dumps(inner)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    old = tmp_path / "old" / path.name
    old.parent.mkdir()
    old.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n :])
    resumed = Trainer(config(tmp_path / "old", steps=5), images(), resume_from=old.parent)
    from medgan.train.trainer import read_checkpoint_config

    assert read_checkpoint_config(old).checkpoint_minutes == 5.0  # the new default fills in
    assert resumed.step == 4
    assert resumed.run().step == 5
