"""Trainer behaviour: events, stop, pause, resume bit-for-bit, determinism, failures, fine-tuning."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.core.errors import DataError, ModelFileError
from medgan.train.checkpoint import list_checkpoints, load_checkpoint
from medgan.train.config import TrainConfig, TrainConfigError
from medgan.train.events import (
    CheckpointSaved,
    Paused,
    Resumed,
    SampleGrid,
    StepMetrics,
    TrainCancelled,
    TrainFailed,
    TrainFinished,
    TrainStarted,
)
from medgan.train.trainer import Trainer, read_checkpoint_config
from tests.core._train_data import (
    assert_same_state,
    discs,
    one_thread,  # noqa: F401 - autouse fixture
    small,
)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return discs()


@pytest.mark.parametrize("recipe", ["dcgan", "default"])
def test_recipe_trains_with_finite_losses_and_ordered_events(recipe, images, tmp_path):
    events: list = []
    trainer = Trainer(small(recipe, checkpoint_dir=str(tmp_path)), images, on_event=events.append)
    before = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    result = trainer.run()

    assert result.status == "finished" and result.step == 6
    kinds = [type(e) for e in events]
    assert kinds[0] is TrainStarted and kinds[-1] is TrainFinished
    metrics = [e for e in events if isinstance(e, StepMetrics)]
    assert [m.step for m in metrics] == [1, 2, 3, 4, 5, 6]  # interval 0: every step
    for m in metrics:
        assert np.isfinite([m.g_loss, m.d_loss]).all()
        assert 0.0 <= m.d_real <= 1.0 and 0.0 <= m.d_fake <= 1.0 and m.img_per_s > 0
    assert metrics[-1].eta_s == pytest.approx(0.0, abs=1e-6)
    grids = [e for e in events if isinstance(e, SampleGrid)]
    assert [g.step for g in grids] == [3, 6]
    assert grids[0].images.shape == (4, 32, 32) and grids[0].images.dtype == np.float32
    assert np.abs(grids[0].images).max() <= 1.0
    saved = [e for e in events if isinstance(e, CheckpointSaved)]
    assert [s.step for s in saved] == [3, 6] and events[-1].checkpoint_path == saved[-1].path
    # a checkpoint event comes after the step's metrics, the finish after everything
    assert events.index(saved[0]) > events.index(metrics[2])
    changed = any(not torch.equal(before[k], v) for k, v in trainer.G.state_dict().items())
    assert changed, "generator weights did not move"
    state = trainer.model_state()
    assert set(state) == {"generator", "discriminator"}
    assert all(t.device.type == "cpu" for t in state["generator"].values())


def test_metrics_are_throttled(images):
    events: list = []
    Trainer(
        small("dcgan", steps=8, metrics_interval_s=3600.0), images, on_event=events.append
    ).run()
    steps = [e.step for e in events if isinstance(e, StepMetrics)]
    assert steps == [8]  # nothing within the interval, but always the last step


def test_stop_within_one_step_saves_checkpoint(images, tmp_path):
    stop = threading.Event()
    events: list = []

    def listener(e):
        events.append(e)
        if isinstance(e, StepMetrics) and e.step == 2:
            stop.set()

    cfg = small("dcgan", steps=50, checkpoint_dir=str(tmp_path), checkpoint_every=100)
    result = Trainer(cfg, images, on_event=listener, stop=stop).run()
    assert result.status == "cancelled" and result.step == 2
    assert isinstance(events[-1], TrainCancelled) and events[-1].step == 2
    assert result.checkpoint_path and Path(result.checkpoint_path).exists()
    assert load_checkpoint(result.checkpoint_path).step == 2


def test_resume_is_bit_for_bit(images, tmp_path):
    straight = Trainer(small(checkpoint_dir=str(tmp_path / "a")), images)
    assert straight.run().step == 6

    stop = threading.Event()

    def stop_at_3(e):
        if isinstance(e, StepMetrics) and e.step == 3:
            stop.set()

    first = Trainer(
        small(checkpoint_dir=str(tmp_path / "b"), checkpoint_every=100),
        images,
        on_event=stop_at_3,
        stop=stop,
    )
    assert first.run().status == "cancelled"
    cfg = read_checkpoint_config(tmp_path / "b")
    assert cfg == small(checkpoint_dir=str(tmp_path / "b"), checkpoint_every=100)
    events: list = []
    second = Trainer(cfg, images, resume_from=tmp_path / "b", on_event=events.append)
    result = second.run()
    assert result.status == "finished" and result.step == 6
    assert events[0].start_step == 3
    assert [e.step for e in events if isinstance(e, StepMetrics)] == [4, 5, 6]
    assert_same_state(straight.model_state(), second.model_state())
    assert second.augmenter.p == straight.augmenter.p


def test_same_seed_same_weights_other_seed_differs(images):
    a = Trainer(small("default", steps=3), images)
    b = Trainer(small("default", steps=3), images)
    c = Trainer(small("default", steps=3, seed=2), images)
    for t in (a, b, c):
        t.run()
    assert_same_state(a.model_state(), b.model_state())
    g_a, g_c = a.model_state()["generator"], c.model_state()["generator"]
    assert any(not torch.equal(g_a[k], g_c[k]) for k in g_a)


def test_pause_blocks_and_stop_works_while_paused(images):
    pause, stop = threading.Event(), threading.Event()
    events: list = []
    seen_pause = threading.Event()

    def listener(e):
        events.append(e)
        if isinstance(e, StepMetrics) and e.step == 1:
            pause.set()
        if isinstance(e, Paused):
            seen_pause.set()

    trainer = Trainer(small("dcgan", steps=4), images, on_event=listener, stop=stop, pause=pause)
    worker = threading.Thread(target=lambda: setattr(trainer, "result", trainer.run()))
    worker.start()
    assert seen_pause.wait(30)
    steps_when_paused = trainer.step
    worker.join(0.3)
    assert worker.is_alive() and trainer.step == steps_when_paused == 1  # really blocked
    pause.clear()
    worker.join(30)
    assert trainer.result.status == "finished" and trainer.result.step == 4
    kinds = [type(e) for e in events]
    assert kinds.index(Paused) < kinds.index(Resumed)

    # stop while paused ends the run promptly, as cancelled
    pause2, stop2 = threading.Event(), threading.Event()
    pause2.set()
    t2 = Trainer(small("dcgan", steps=4), images, pause=pause2, stop=stop2)
    w2 = threading.Thread(target=lambda: setattr(t2, "result", t2.run()))
    w2.start()
    w2.join(0.3)
    assert w2.is_alive()
    stop2.set()
    w2.join(10)
    assert not w2.is_alive() and t2.result.status == "cancelled" and t2.result.step == 0


def test_nan_stops_run_and_keeps_last_good_checkpoint(images, tmp_path):
    events: list = []
    trainer: Trainer

    def poison(e):
        events.append(e)
        if isinstance(e, CheckpointSaved) and e.step == 2:
            with torch.no_grad():
                for p in trainer.G.parameters():
                    p.fill_(float("nan"))

    cfg = small("dcgan", steps=10, checkpoint_dir=str(tmp_path), checkpoint_every=2)
    trainer = Trainer(cfg, images, on_event=poison)
    result = trainer.run()
    assert result.status == "failed" and result.step == 3
    assert "NaN" in result.message and "lr_g" in (result.advice or "")
    assert isinstance(events[-1], TrainFailed)
    assert result.checkpoint_path and result.checkpoint_path.endswith("ckpt-00000002.safetensors")
    assert [s for s, _ in list_checkpoints(tmp_path)] == [2]
    good = load_checkpoint(result.checkpoint_path)
    assert all(torch.isfinite(t).all() for t in good.modules["G"].values())


def test_broken_listener_is_logged_not_fatal(images, caplog):
    def broken(e):
        raise RuntimeError("listener bug")

    with caplog.at_level(logging.ERROR, logger="medgan.train.trainer"):
        result = Trainer(small("dcgan", steps=2), images, on_event=broken).run()
    assert result.status == "finished"
    assert "listener failed" in caplog.text and "listener bug" in caplog.text


def test_finetune_from_model_state_with_frozen_blocks(images):
    source = Trainer(small("default", steps=2), images)
    source.run()
    init = source.model_state()
    cfg = small("default", steps=2, freeze_d_blocks=2, finetune_lr_scale=0.25)
    tuned = Trainer(cfg, images, init_model=init)
    for key, value in init["generator"].items():  # starts from the model (EMA weights)
        assert torch.equal(tuned.G.state_dict()[key].cpu(), value)
    frozen_before = {k: v.clone() for k, v in tuned.D.blocks[:2].state_dict().items()}
    assert tuned.step_fn.opt_g.param_groups[0]["lr"] == pytest.approx(cfg.lr_g * 0.25)
    assert tuned.run().status == "finished"
    for key, value in tuned.D.blocks[:2].state_dict().items():
        assert torch.equal(value, frozen_before[key]), f"frozen block changed: {key}"
    moved = tuned.D.blocks[2].state_dict()
    assert any(not torch.equal(v, init["discriminator"]["blocks.2." + k]) for k, v in moved.items())


def test_incompatible_init_model_is_refused_clearly(images):
    init = Trainer(small("dcgan", steps=1), images).model_state()
    with pytest.raises(ModelFileError, match="does not fit this run") as info:
        Trainer(small("default"), images, init_model=init)
    assert "recipe" in (info.value.advice or "")
    with pytest.raises(ModelFileError, match="resolution 64"):
        Trainer(small("dcgan"), images, init_model={**init, "resolution": 64})
    with pytest.raises(ModelFileError, match="generator"):
        Trainer(small("dcgan"), images, init_model={"discriminator": {}})
    with pytest.raises(TrainConfigError, match="whole discriminator"):
        Trainer(small("dcgan", freeze_d_blocks=3), images)


def test_bad_images_are_refused(images):
    with pytest.raises(DataError, match=r"expected \(N, 64, 64\)"):
        Trainer(small("dcgan", resolution=64), images)
    broken = images.copy()
    broken[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        Trainer(small("dcgan"), broken)


def test_time_budget_ends_run(images):
    result = Trainer(small("dcgan", steps=None, minutes=0.02), images).run()
    assert result.status == "finished" and result.step >= 1
    assert result.elapsed_s < 10


def test_compile_failure_falls_back_to_identical_eager_run(images, monkeypatch, caplog):
    eager = Trainer(small("default", steps=3), images)
    eager.run()

    class Broken(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *a):
            self.inner(*a)  # runs (and would change BatchNorm statistics) before failing
            raise RuntimeError("inductor stride assertion (simulated)")

    monkeypatch.setattr(torch, "compile", lambda module, **kw: Broken(module))
    with caplog.at_level(logging.WARNING, logger="medgan.train.compile"):
        fallback = Trainer(small("default", steps=3, compile=True), images)
        result = fallback.run()
    assert result.status == "finished"
    assert "continuing without compilation" in caplog.text
    assert_same_state(eager.model_state(), fallback.model_state())


def test_out_of_memory_fails_with_advice_naming_the_setting(images, tmp_path, monkeypatch):
    events: list = []
    trainer = Trainer(
        small("dcgan", steps=6, checkpoint_dir=str(tmp_path), checkpoint_every=2),
        images,
        on_event=events.append,
    )
    real_step = trainer.step_fn.__class__.__call__

    def step_then_oom(self, real, step):
        if step == 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(self, real, step)

    monkeypatch.setattr(trainer.step_fn.__class__, "__call__", step_then_oom)
    result = trainer.run()
    assert result.status == "failed" and result.step == 2
    assert "Out of memory" in result.message
    assert "batch size (now 4, try 2)" in result.advice and "resolution (now 32)" in result.advice
    assert isinstance(events[-1], TrainFailed) and events[-1].advice == result.advice
    assert result.checkpoint_path.endswith("ckpt-00000002.safetensors")


def test_config_defaults_round_trip_and_clear_errors():
    import json

    dcgan = TrainConfig.for_recipe("dcgan")
    assert (dcgan.loss, dcgan.lr_g, dcgan.lr_d, dcgan.betas) == ("bce", 2e-4, 2e-4, (0.5, 0.999))
    assert dcgan.augment == () and dcgan.ema_decay == 0 and dcgan.ada_target is None
    default = TrainConfig.for_recipe("default", minutes=10, steps=None)
    assert default.loss == "nonsat" and default.lr_d > default.lr_g and default.ema_decay > 0
    assert default.lecam_weight > 0 and default.ema_rampup == 0.2 and default.keep_best
    assert "translation" in default.augment and default.ada_target is not None
    for cfg in (dcgan, default):
        assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert TrainConfig.from_dict({**dcgan.to_dict(), "amp": False}).amp == "off"
    cases = [
        ({"batch_size": 0}, "'batch_size'"),
        ({"resolution": 48}, "'resolution'"),
        ({"steps": None, "minutes": None}, "No training budget"),
        ({"loss": "wasserstein"}, "'loss'"),
        ({"augment": ["elastic"]}, "'augment'"),
        ({"device": "tpu"}, "'device'"),
        ({"lr_g": float("nan")}, "'lr_g'"),
        ({"colour": 1}, "Unknown training setting"),
    ]
    for change, message in cases:
        with pytest.raises(TrainConfigError, match=message):
            TrainConfig.from_dict({**dcgan.to_dict(), **change})
    with pytest.raises(TrainConfigError, match="Unknown recipe"):
        TrainConfig.for_recipe("stylegan")


def test_ema_warms_up_then_holds_the_configured_decay():
    from torch import nn

    from medgan.train.step import EMA, ema_beta

    betas = [ema_beta(t, 0.999) for t in (1, 10, 100, 1000, 10_000, 20_000, 10**6)]
    assert betas == sorted(betas) and betas[0] < 1e-5 and betas[-1] == 0.999
    assert 0.85 < ema_beta(100, 0.999) < 0.9  # half-life 5 steps after 100 steps
    assert ema_beta(5, 0.999, rampup=0.0) == 0.999  # no ramp: constant decay

    g, g_ema = nn.Linear(3, 2), nn.Linear(3, 2)
    nn.init.zeros_(g_ema.weight), nn.init.zeros_(g_ema.bias)
    ema = EMA(g, g_ema, 0.999)
    ema.update(1)  # the first update all but copies G
    assert torch.allclose(g_ema.weight, g.weight, atol=1e-5)
    before = g_ema.weight.detach().clone()
    with torch.no_grad():
        g.weight.add_(1.0)
    ema.update(10**6)  # warm: moves 1 - 0.999 of the way
    assert torch.allclose(g_ema.weight - before, torch.full_like(before, 0.001), atol=1e-5)


def test_a_user_hook_runs_every_fifth_step_and_sees_the_run_state(images):
    from medgan.train.hooks import Hook, RunState

    seen: list[int] = []
    ended: list[str | None] = []

    class Recorder(Hook):
        every = 5

        def after_step(self, trainer: Trainer, state: RunState) -> None:
            assert trainer.step == state.step and state.outputs
            seen.append(state.step)

        def ended(self, trainer: Trainer, state: RunState) -> None:
            ended.append(state.end)

    calls: list[int] = []
    trainer = Trainer(small("dcgan", steps=12), images, hooks=[Recorder()])
    trainer.add_hook(lambda tr, state: calls.append(state.step), every=4)
    assert trainer.run().status == "finished"
    assert seen == [5, 10] and ended == ["finished"] and calls == [4, 8, 12]


def test_a_hook_can_end_the_run_and_a_failing_hook_fails_it_with_its_message(images, tmp_path):
    from medgan.train.hooks import END_CANCELLED

    def stop_at_2(tr, state):
        if state.step == 2:
            state.end = END_CANCELLED

    cfg = small("dcgan", steps=10, checkpoint_dir=str(tmp_path), checkpoint_every=100)
    result = Trainer(cfg, images, hooks=[stop_at_2]).run()
    assert result.status == "cancelled" and result.step == 2
    assert load_checkpoint(tmp_path).step == 2  # the checkpoint hook saved on the way out

    def broken(tr, state):
        raise RuntimeError("hook bug")

    failed = Trainer(small("dcgan", steps=3), images, hooks=[broken]).run()
    assert failed.status == "failed" and "hook bug" in failed.message


def test_checkpoints_by_minutes_as_well_as_steps(images, tmp_path, monkeypatch):
    import medgan.train.hooks as hooks

    clock = [0.0]
    monkeypatch.setattr(hooks.time, "perf_counter", lambda: clock[0])

    def tick(tr, state):
        clock[0] += 25.0  # every step "takes" 25 s

    cfg = small(
        "dcgan", steps=7, checkpoint_dir=str(tmp_path), checkpoint_every=6,
        checkpoint_minutes=1.0, keep_checkpoints=10,
    )  # fmt: skip
    events: list = []
    trainer = Trainer(cfg, images, on_event=events.append, hooks=[tick])
    assert trainer.run().status == "finished"
    saved = [e.step for e in events if isinstance(e, CheckpointSaved)]
    # by time at step 4 (75 s of steps 1-3 seen, the user hook runs after the built-ins),
    # by steps at 6, and at the end
    assert saved == [4, 6, 7]
    assert trainer.last_checkpoint_step == 7 and [s for s, _ in list_checkpoints(tmp_path)] == saved
