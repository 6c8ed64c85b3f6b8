"""Labels and masks through the training set: order after sorting, nearest resize aligned
with the images, minority slices kept, class-aware hold-out, cache invalidation, summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from medgan.dataset.training_set import TrainingSetConfig, build_training_set
from medgan.dicom.index import scan_folder
from medgan.dicom.labels import load_labels
from tests.dicom_factory import write_seg, write_series


def _square_study(
    root: Path, n: int = 6, rows: int = 32, cols: int = 24
) -> tuple[list[Path], np.ndarray]:
    """Bright squares whose size grows with the slice's anatomical index, on a dark head."""
    pixels = np.full((n, rows, cols), 1024 - 100, np.int16)  # -100 HU: "tissue"
    masks = np.zeros((n, rows, cols), np.uint8)
    for k in range(n):
        if k % 2 == 0:
            masks[k, 4 : 8 + k, 3 : 7 + k] = 1
        pixels[k][masks[k] > 0] = 1024 + 300
    paths = write_series(
        root / "ct", n=n, rows=rows, cols=cols, pixels=pixels, window=(100.0, 800.0),
        extra_tags={"FrameOfReferenceUID": generate_uid()}, shuffle_names=True,
    )  # fmt: skip
    write_seg(root / "seg" / "s.dcm", paths, masks, segment_labels=("square",))
    return paths, masks


def test_masks_and_labels_follow_the_sorted_slices_through_pad_and_resize(tmp_path: Path) -> None:
    paths, masks = _square_study(tmp_path)
    sops = [str(pydicom.dcmread(p).SOPInstanceUID) for p in paths]
    rows = "\n".join(f"{sop},{'even' if k % 2 == 0 else 'odd'}" for k, sop in enumerate(sops))
    (tmp_path / "labels.csv").write_text("sop_instance_uid,label\n" + rows + "\n")
    scan = scan_folder(tmp_path)
    labels = load_labels(scan)
    assert labels.problems == []
    ts = build_training_set(
        scan.series, TrainingSetConfig(resolution=64, min_foreground=0.0), labels=labels,
        cache_root=tmp_path / "cache",
    )  # fmt: skip
    assert ts.class_names == ("even", "odd") and ts.segment_names == ("square",)
    assert ts.labels is not None and ts.masks is not None
    assert ts.labels.tolist() == [0, 1, 0, 1, 0, 1]
    assert ts.masks.shape == (6, 64, 64) and ts.masks.dtype == np.uint8
    assert ts.mask_known is not None and ts.mask_known.all()  # the SEG covers every slice
    for k in range(6):
        bright = ts.images[k] > 0.2
        mask = ts.masks[k] > 0
        assert set(np.unique(ts.masks[k])) <= {0, 1}  # nearest: no blended values
        assert mask.sum() == 4 * int(masks[k].sum())  # 32x24 → pad 32x32 → 64x64: ×2 each way
        if mask.any():
            iou = (bright & mask).sum() / (bright | mask).sum()
            assert iou > 0.8, (k, iou)
    summary = ts.summary()
    assert summary["classes"] == ["even", "odd"]
    assert summary["class_counts"] == {"even": 3, "odd": 3}
    assert summary["segments"] == ["square"] and summary["segment_slice_counts"] == {"square": 3}
    text = json.dumps(summary)
    assert all(sop not in text for sop in sops) and str(tmp_path) not in text


def test_cache_holds_labels_and_is_invalidated_when_they_change(tmp_path: Path) -> None:
    _square_study(tmp_path)
    scan = scan_folder(tmp_path)
    config = TrainingSetConfig(resolution=64, min_foreground=0.0)
    labels = load_labels(scan)
    first = build_training_set(scan.series, config, labels=labels, cache_root=tmp_path / "c")
    again = build_training_set(
        scan.series, config, labels=load_labels(scan), cache_root=tmp_path / "c"
    )
    assert again.from_cache and not first.from_cache
    assert np.array_equal(again.masks, first.masks) and np.array_equal(again.labels, first.labels)
    assert again.class_names == first.class_names and again.segment_names == first.segment_names
    assert np.array_equal(again.mask_known, first.mask_known)
    changed = load_labels(scan)
    uid = scan.series[0].series_uid
    changed.set_label(uid, 1, "special")
    rebuilt = build_training_set(scan.series, config, labels=changed, cache_root=tmp_path / "c")
    assert not rebuilt.from_cache and "special" in rebuilt.class_names
    plain = build_training_set(scan.series, config, cache_root=tmp_path / "c")
    assert not plain.from_cache and plain.labels is None and plain.masks is None


def test_empty_slice_filter_keeps_labelled_minority_slices_and_reports_counts(
    tmp_path: Path,
) -> None:
    pixels = np.full((6, 32, 32), 1024 + 40, np.int16)
    pixels[:, 4:28, 4:28] = 1024 + 300
    pixels[2] = 1024 - 1000  # uniform air: "empty"
    pixels[4] = 1024 - 1000
    paths = write_series(tmp_path / "ct", n=6, pixels=pixels, window=(40.0, 400.0))
    sops = [str(pydicom.dcmread(p).SOPInstanceUID) for p in paths]
    names = ["none", "none", "rare", "none", "none", "none"]
    (tmp_path / "l.csv").write_text(
        "sop_instance_uid,label\n"
        + "\n".join(f"{s},{n}" for s, n in zip(sops, names, strict=True))
        + "\n"
    )
    scan = scan_folder(tmp_path)
    ts = build_training_set(scan.series, TrainingSetConfig(resolution=64), labels=load_labels(scan),
                            cache_root=tmp_path / "c")  # fmt: skip
    info = ts.summary()
    assert len(ts.images) == 5  # slice 4 (majority class, empty) dropped, slice 2 kept
    assert info["class_counts"] == {"none": 4, "rare": 1}
    assert info["dropped_empty_per_class"] == {"none": 1, "rare": 0}
    assert info["kept_labelled_low_foreground"] == 1


def test_patient_holdout_keeps_every_class_on_both_sides(tmp_path: Path) -> None:
    lines = ["sop_instance_uid,label"]
    for p in range(6):
        pixels = np.full((4, 32, 32), 1024 + 40, np.int16)
        pixels[:, 6:26, 6:26] = 1024 + 200 + 10 * p
        paths = write_series(tmp_path / f"p{p}", n=4, pixels=pixels, patient_id=f"P{p}",
                             patient_name=f"P^{p}", seed=p)  # fmt: skip
        kind = ["a", "b", "c"][p % 3]
        for k, path in enumerate(paths):
            lines.append(f"{pydicom.dcmread(path).SOPInstanceUID},{kind if k == 0 else 'none'}")
    (tmp_path / "l.csv").write_text("\n".join(lines) + "\n")
    scan = scan_folder(tmp_path)
    labels = load_labels(scan)
    for seed in range(3):
        ts = build_training_set(
            scan.series, TrainingSetConfig(resolution=64, holdout_fraction=0.5, seed=seed),
            labels=labels, cache_root=tmp_path / "c",
        )  # fmt: skip
        assert ts.holdout is not None and ts.holdout.labels is not None
        assert set(ts.labels.tolist()) == set(ts.holdout.labels.tolist()) == {0, 1, 2, 3}
        assert not set(ts.patient_keys.tolist()) & set(ts.holdout.patient_keys.tolist())


def test_slices_no_mask_covers_are_marked_unknown_not_empty(tmp_path: Path) -> None:
    pixels = np.full((6, 32, 32), 1024 + 40, np.int16)
    pixels[:, 4:28, 4:28] = 1024 + 300
    paths = write_series(tmp_path / "ct", n=6, pixels=pixels, window=(40.0, 400.0),
                         extra_tags={"FrameOfReferenceUID": generate_uid()})  # fmt: skip
    sub = np.zeros((2, 32, 32), np.uint8)
    sub[0, 5:9, 5:9] = 1
    write_seg(tmp_path / "seg.dcm", paths[3:5], sub)  # covers slices 3 and 4 only
    scan = scan_folder(tmp_path)
    ts = build_training_set(scan.series, TrainingSetConfig(resolution=64),
                            labels=load_labels(scan), cache_root=tmp_path / "c")  # fmt: skip
    assert ts.mask_known is not None and ts.mask_known.tolist() == [False] * 3 + [True] * 2 + [
        False
    ]
    assert ts.masks is not None and ts.masks[3].any() and not ts.masks[4].any()
