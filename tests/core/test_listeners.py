"""Trainer listeners: history recorder, CSV writer, TensorBoard writer (read back with
tensorboard's EventAccumulator), fan-out."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from medgan.train.events import QualityMeasured, SampleGrid, StepMetrics, TrainFinished
from medgan.train.listeners import (
    CsvMetricsWriter,
    HistoryRecorder,
    TensorBoardWriter,
    TrainingHistory,
    fan_out,
)
from medgan.train.listeners.history import sidecar_path
from medgan.train.trainer import Trainer
from tests.core._train_data import discs, one_thread, small  # noqa: F401


def _metrics(step: int) -> StepMetrics:
    return StepMetrics(
        step=step, total_steps=None, g_loss=1.0 + step, d_loss=0.5, d_real=0.6, d_fake=0.4,
        aug_p=0.1, img_per_s=100.0, elapsed_s=step * 0.1, eta_s=None, extra={"r1": 0.2},
    )  # fmt: skip


def test_history_is_bounded_and_spread():
    rec = HistoryRecorder(max_points=10, max_grids=4)
    for step in range(1, 101):
        rec(_metrics(step))
        if step % 10 == 0:
            rec(SampleGrid(step=step, images=np.zeros((4, 32, 32), np.float32)))
    rec(TrainFinished(step=100, elapsed_s=10.0, checkpoint_path=None))
    h = rec.history
    assert 5 <= h.n_rows <= 10 and h.stride > 1
    assert h.metrics["step"][0] == 1.0
    steps = [g["step"] for g in h.grids]
    assert len(steps) == 4 and steps[0] == 10 and steps[-1] == 100
    again = TrainingHistory.from_dict(h.to_dict())
    assert again is not None and again.to_dict() == h.to_dict()
    assert TrainingHistory.from_dict({}) is None and TrainingHistory.from_dict("x") is None


def test_listeners_on_a_tiny_run(tmp_path):
    """One real run feeds all listeners; the CSV, the sidecar and the event file read back."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = small(steps=6, sample_every=3, quality_every=3, quality_samples=8)
    model = tmp_path / "m.safetensors"
    rec = HistoryRecorder(sidecar=sidecar_path(model))
    csv_path = tmp_path / "logs" / "metrics.csv"
    tb_dir = tmp_path / "tb"
    tb = TensorBoardWriter(tb_dir, hparams={**config.to_dict(), "checkpoint_dir": "/x/y"})
    result = Trainer(config, discs(), on_event=fan_out(rec, CsvMetricsWriter(csv_path), tb)).run()
    assert result.status == "finished"

    h = rec.history
    assert h.status == "finished" and h.final_step == 6 and h.n_rows >= 1
    assert [g["step"] for g in h.grids] == [3, 6] and h.quality and h.best_step is not None
    side = TrainingHistory.load_json(tmp_path / "m.history.json")
    assert side is not None and side.final_step == 6

    rows = list(csv.DictReader(csv_path.open()))
    assert rows and any(r["g_loss"] for r in rows) and any(r["swd"] for r in rows)
    assert all(float(r["step"]) <= 6 for r in rows)

    acc = EventAccumulator(str(tb_dir), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert "loss/generator" in tags["scalars"] and "quality/swd" in tags["scalars"]
    assert [e.step for e in acc.Images("samples")] == [3, 6]
    assert acc.Scalars("loss/generator")[-1].step == 6
    blob = b"".join(p.read_bytes() for p in tb_dir.rglob("*") if p.is_file())
    assert b"lr_g" in blob  # hyper-parameters written
    assert b"/x/y" not in blob  # local paths never written


def test_fan_out_keeps_going_and_reraises():
    seen: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError("boom")

    fan = fan_out(broken, None, seen.append)
    with pytest.raises(RuntimeError):
        fan(QualityMeasured(step=1, swd=1.0, best_step=1, best_swd=1.0))
    assert len(seen) == 1


def test_unwritable_csv_is_a_clear_message(tmp_path):
    from medgan.core.errors import MedganError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(MedganError, match="metrics CSV"):
        CsvMetricsWriter(blocker / "metrics.csv")
    with pytest.raises(MedganError, match="TensorBoard logs"):
        TensorBoardWriter(blocker / "tb")


def test_cli_train_attaches_tensorboard_and_csv(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from medgan.cli import main
    from medgan.models.modelfile import read_metadata
    from tests.core._report_data import write_study

    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "cache"))
    data = write_study(tmp_path / "data")
    model, tb, csv_path = tmp_path / "m.safetensors", tmp_path / "tb", tmp_path / "m.csv"
    argv = ["train", "--data", str(data), "--out", str(model), "--steps", "3", "--batch", "4",
            "--device", "cpu", "--quality-every", "0", "--tensorboard", str(tb),
            "--metrics-csv", str(csv_path)]  # fmt: skip
    assert main(argv) == 0
    acc = EventAccumulator(str(tb))
    acc.Reload()
    assert acc.Scalars("loss/generator")[-1].step == 3
    assert list(csv.DictReader(csv_path.open()))[-1]["step"] == "3"
    history = read_metadata(model).history  # the model file carries its training history
    assert history["final_step"] == 3 and history["metrics"]["step"][-1] == 3.0
