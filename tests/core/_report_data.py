"""A tiny trained model (with history) and an export of it, shared by the report tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.dicom_factory import write_series


def write_study(root: Path) -> Path:
    """Two patients, one small CT series each, with smooth blobs (values in HU)."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:40, :40]
    for k in range(2):
        pixels = []
        for _ in range(6):
            cy, cx, r = rng.uniform(14, 26), rng.uniform(14, 26), rng.uniform(6, 12)
            disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) * 1100.0
            pixels.append(disc + 1000 + rng.normal(0, 20, (40, 40)))
        write_series(root / f"p{k}", n=6, rows=40, cols=40, pixels=np.asarray(pixels, np.int16),
                     patient_id=f"REPORT-{k}", seed=k)  # fmt: skip
    return root


def train_model(data: Path, out: Path, **extra) -> Path:
    """Scan → training set → train_and_save (a few steps, tiny width) → model file."""
    from medgan.dataset.training_set import TrainingSetConfig, build_training_set
    from medgan.dicom.index import scan_folder
    from medgan.train.config import TrainConfig
    from medgan.workflows.training import TrainRequest, train_and_save

    training = build_training_set(
        scan_folder(data).series, TrainingSetConfig.with_window("file", resolution=64)
    )
    config = TrainConfig.for_recipe(
        "default", resolution=64, steps=4, batch_size=4, width=8, device="cpu",
        sample_every=2, n_samples=4, quality_every=2, quality_samples=8, metrics_interval_s=0.0,
        checkpoint_dir=str(out.parent / "checkpoints"), augment_p=0.1,
    )  # fmt: skip
    outcome = train_and_save(
        TrainRequest(config, training.images, training_summary=training.summary(), out=out),
        **extra,
    )
    assert outcome.status == "finished", outcome.message
    assert outcome.model_path is not None
    return outcome.model_path
