"""`medgan train --recipe conditional|paired` on a tiny demo study, `medgan generate --per-class`,
and labelled bad input refused before training with advice."""

from __future__ import annotations

import csv
from pathlib import Path

import pydicom
import pytest

from medgan.cli import main
from medgan.models.modelfile import read_metadata


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medgan.demo.study import write_demo_study

    root = tmp_path_factory.mktemp("demo")
    return write_demo_study(root / "study", n_patients=2, slices_per_patient=6, size=64)


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "cache"))


def _labels_csv(demo: Path, path: Path, names: tuple[str, ...]) -> Path:
    """Our own labels: the CT slices alternate between ``names``."""
    uids = []
    for f in sorted(demo.rglob("*")):
        if f.is_file() and f.suffix != ".csv":
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            if ds.Modality == "CT":
                uids.append(str(ds.SOPInstanceUID))
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sop_instance_uid", "label"])
        for i, uid in enumerate(uids):
            w.writerow([uid, names[i % len(names)]])
    return path


def _train(demo: Path, out: Path, *extra: str) -> int:
    return main(
        ["train", "--data", str(demo), "--out", str(out), "--batch", "4", "--device", "cpu",
         "--steps", "2", "--quality-every", "0", *extra]
    )  # fmt: skip


def test_conditional_trains_and_generates_per_class(demo: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    labels = _labels_csv(demo, tmp_path / "labels.csv", ("calm", "spotted"))
    model = tmp_path / "cond.safetensors"
    code = _train(demo, model, "--recipe", "conditional", "--labels", str(labels),
                  "--no-auto-labels")  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Training conditional on classes: calm 6, spotted 6" in err
    meta = read_metadata(model)
    assert meta.classes == ["calm", "spotted"] and meta.class_counts == [6, 6]
    assert meta.n_classes == 2 and meta.model_kwargs["width"] == 16
    out = tmp_path / "export"
    code = main(["generate", "--model", str(model), "--per-class", "spotted=3,calm=2",
                 "--out", str(out), "--allow-memorized", "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr()
    assert code == 0, err
    assert "of 5 synthetic slices" in err.out
    code = main(["generate", "--model", str(model), "--per-class", "nosuch=3",
                 "--out", str(tmp_path / "x"), "--allow-memorized"])  # fmt: skip
    assert code != 0 and "no class 'nosuch'" in capsys.readouterr().err


def test_paired_trains_on_the_demo_seg_masks(demo: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = tmp_path / "pairs.safetensors"
    code = _train(demo, model, "--recipe", "paired", "--paint-check", "0.5")
    err = capsys.readouterr().err
    assert code == 0, err
    meta = read_metadata(model)
    assert meta.n_segments >= 1 and meta.masks_from == "paired" and meta.segments
    assert meta.train_config["paint_check"] == 0.5


def test_one_class_only_is_refused_before_training(demo: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    labels = _labels_csv(demo, tmp_path / "one.csv", ("calm",))
    code = _train(demo, tmp_path / "m.safetensors", "--recipe", "conditional", "--labels",
                  str(labels), "--no-auto-labels")  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0
    assert "one class only" in err and "default recipe" in err
    assert "step 1/" not in err  # refused before training started
    assert not (tmp_path / "m.safetensors").exists()
