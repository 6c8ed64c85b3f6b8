"""Quality probes during training: SWD events, keeping the best generator, exact resume."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from medgan.models.modelfile import ModelMetadata, load_model, save_model
from medgan.train.checkpoint import load_checkpoint
from medgan.train.events import QualityMeasured, StepMetrics
from medgan.train.quality import QualityProbe
from medgan.train.trainer import Trainer, read_checkpoint_config
from tests.core._train_data import (
    assert_same_state,
    discs,
    one_thread,  # noqa: F401 - autouse fixture
    small,
)

SCRIPT = {2: 50.0, 4: 10.0, 6: 80.0}  # SWD by step: the best state is the one of step 4


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return discs()


def _scripted(monkeypatch: pytest.MonkeyPatch, trainer_box: list) -> None:
    """Make every probe return SCRIPT[step] for the trainer in ``trainer_box``."""
    monkeypatch.setattr(QualityProbe, "measure", lambda self, g: SCRIPT[trainer_box[0].step])


def test_probes_emit_quality_events_and_the_model_keeps_the_best(images, monkeypatch):
    box: list = []
    _scripted(monkeypatch, box)
    events: list = []
    ema_at: dict[int, dict] = {}

    def listen(e):
        events.append(e)
        if isinstance(e, QualityMeasured):
            ema_at[e.step] = {k: v.clone() for k, v in box[0].G_ema.state_dict().items()}

    tr = Trainer(small(quality_every=2, quality_samples=8), images, on_event=listen)
    box.append(tr)
    assert tr.run().status == "finished"

    quality = [e for e in events if isinstance(e, QualityMeasured)]
    assert [(q.step, q.swd, q.best_step, q.best_swd, q.final) for q in quality] == [
        (2, 50.0, 2, 50.0, False),
        (4, 10.0, 4, 10.0, False),
        (6, 80.0, 4, 10.0, False),
        (6, 80.0, 4, 10.0, True),  # the end-of-run probe reuses step 6's measurement
    ]
    kept = tr.model_state()["generator"]
    for key, value in ema_at[4].items():
        assert torch.equal(kept[key], value), key
    assert not torch.equal(kept["to_image.0.weight"], ema_at[6]["to_image.0.weight"])
    sel = tr.selection()
    assert (sel["selected_step"], sel["selected_swd"], sel["trained_steps"]) == (4, 10.0, 6)
    assert sel["final_swd"] == 80.0 and sel["history"] == [[2, 50.0], [4, 10.0], [6, 80.0]]


def test_keep_best_off_saves_the_last_step(images, monkeypatch):
    box: list = []
    _scripted(monkeypatch, box)
    tr = Trainer(small(quality_every=2, quality_samples=8, keep_best=False), images)
    box.append(tr)
    tr.run()
    final = {k: v.cpu() for k, v in tr.G_ema.state_dict().items()}
    for key, value in tr.model_state()["generator"].items():
        assert torch.equal(value, final[key]), key
    assert tr.selection()["selected_step"] == 6


def test_a_better_final_state_wins_over_the_snapshot(images, monkeypatch):
    box: list = []
    scores = {2: 50.0, 4: 40.0, 5: 5.0}
    monkeypatch.setattr(QualityProbe, "measure", lambda self, g: scores[box[0].step])
    tr = Trainer(small(steps=5, quality_every=2, quality_samples=8), images)
    box.append(tr)
    tr.run()
    assert tr.selection()["selected_step"] == 5
    final = {k: v.cpu() for k, v in tr.G_ema.state_dict().items()}
    for key, value in tr.model_state()["generator"].items():
        assert torch.equal(value, final[key]), key


def test_probing_does_not_change_the_trained_weights(images):
    with_probe = Trainer(small(quality_every=2, quality_samples=8), images)
    without = Trainer(small(quality_every=0), images)
    with_probe.run()
    without.run()
    for a, b in ((with_probe.G, without.G), (with_probe.D, without.D)):
        for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(va, vb), key
    assert without.quality is None and without.selection() == {
        "trained_steps": 6,
        "selected_step": 6,
    }


def test_real_swd_probe_resumes_to_the_same_selection(images, tmp_path):
    """Stop at step 3, resume: same probes, same kept generator as a straight run."""
    cfg = dict(quality_every=2, quality_samples=8, checkpoint_every=100)
    straight = Trainer(small(checkpoint_dir=str(tmp_path / "a"), **cfg), images)
    straight.run()

    stop = threading.Event()
    first = Trainer(
        small(checkpoint_dir=str(tmp_path / "b"), **cfg),
        images,
        on_event=lambda e: stop.set() if isinstance(e, StepMetrics) and e.step == 3 else None,
        stop=stop,
    )
    assert first.run().status == "cancelled"
    ckpt = load_checkpoint(tmp_path / "b")
    assert ckpt.meta["quality"]["history"] == [[2, pytest.approx(first.quality.history[0].swd)]]
    assert {"BEST_G", "BEST_D"} <= set(ckpt.modules)

    second = Trainer(read_checkpoint_config(tmp_path / "b"), images, resume_from=tmp_path / "b")
    second.run()
    assert [s.step for s in second.quality.history] == [2, 4, 6]
    assert [s.swd for s in second.quality.history] == [s.swd for s in straight.quality.history]
    assert second.selection() == straight.selection()
    assert_same_state(straight.model_state(), second.model_state())
    assert all(np.isfinite(s.swd) and s.swd > 0 for s in straight.quality.history)


def test_model_file_records_the_selected_step_and_quality(images, monkeypatch, tmp_path):
    box: list = []
    _scripted(monkeypatch, box)
    tr = Trainer(small(quality_every=2, quality_samples=8), images)
    box.append(tr)
    tr.run()
    sel = tr.selection()
    meta = ModelMetadata(
        recipe="default",
        resolution=32,
        model_kwargs={"width": 8},
        step=sel["selected_step"],
        quality=sel,
    )
    path = save_model(tmp_path / "m.safetensors", tr.model_state(), meta)
    loaded = load_model(path)
    assert loaded.metadata.step == 4
    assert loaded.metadata.quality["selected_swd"] == 10.0
    assert loaded.metadata.quality["metric"].startswith("swd")


def test_probe_reports_swd_per_level_in_snapshots() -> None:
    """The probe keeps each pyramid level's SWD (finest first) next to the mean."""
    import numpy as np
    import torch

    from medgan.models import build_models
    from medgan.train.quality import QualityProbe

    images = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32)).astype(np.float32)
    G, D = build_models("default", 32, z_dim=8, width=8)
    probe = QualityProbe(images, n_samples=8, z_dim=8, seed=0, device=torch.device("cpu"))
    snap = probe.probe(50, G, D)
    assert [lv for lv, _ in snap.per_level] == [32, 16]
    assert snap.swd == pytest.approx(sum(v for _, v in snap.per_level) / 2)
