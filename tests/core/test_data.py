"""Training set: window, square resize keeping aspect, empty-slice filter, patient hold-out, cache."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from medgan.core.errors import Cancelled, DataError
from medgan.dataset.training_set import TrainingSetConfig, build_training_set
from tests.dicom_factory import write_series

MARKERS = ("Zyxwvut^Marker", "MRN-MARKER-4711", "19990909")


def _pixels(n: int, rows: int, cols: int, empty: set[int]) -> np.ndarray:
    """Stored values (rescale -1024): air everywhere, a soft-tissue square in the middle."""
    stored = np.zeros((n, rows, cols), dtype=np.int16)  # -1024 HU
    r0, c0, half = rows // 2, cols // 2, min(rows, cols) // 4
    for k in range(n):
        if k not in empty:
            stored[k, r0 - half : r0 + half, c0 - half : c0 + half] = 1024 + 40 + k
    return stored


def _study(
    root: Path,
    patient: int,
    *,
    n: int = 6,
    rows: int = 24,
    cols: int = 32,
    empty: set[int] | None = None,
    modality: str = "CT",
) -> Path:
    folder = root / f"p{patient}"
    write_series(
        folder,
        n=n,
        rows=rows,
        cols=cols,
        modality=modality,
        pixels=_pixels(n, rows, cols, empty or set()),
        patient_name=f"{MARKERS[0]}{patient}",
        patient_id=f"{MARKERS[1]}-{patient}",
        extra_tags={"StudyDate": MARKERS[2]},
        seed=patient,
    )
    return folder


def _scan(root: Path) -> list:
    from medgan.dicom.index import scan_folder

    result = scan_folder(root)
    return sorted(result.series, key=lambda s: s.patient_id)


@pytest.fixture()
def three_patients(tmp_path: Path) -> list:
    root = tmp_path / "dicom"
    _study(root, 1, empty={0, 5})
    _study(root, 2)
    _study(root, 3, empty={2})
    series = _scan(root)
    assert len(series) == 3
    return series


def test_images_windowed_square_and_empty_slices_dropped(
    three_patients: list, tmp_path: Path
) -> None:
    seen: list[tuple[int, int]] = []
    ts = build_training_set(
        three_patients,
        TrainingSetConfig(resolution=64, window_center=40.0, window_width=400.0),
        progress=lambda d, t: seen.append((d, t)),
        cache_root=tmp_path / "cache",
    )
    assert ts.images.shape == (18 - 3, 64, 64) and ts.images.dtype == np.float32
    assert ts.images.min() >= -1.0 and ts.images.max() <= 1.0
    assert seen[-1] == (18, 18)
    # Padding keeps the aspect: 24x32 → 32x32 with air rows above/below, the square stays square.
    img = ts.images[0]
    assert np.all(img[:6] == -1.0) and np.all(img[-6:] == -1.0)
    bright = img > 0.0
    rows, cols = np.nonzero(bright.any(axis=1))[0], np.nonzero(bright.any(axis=0))[0]
    assert abs(len(rows) - len(cols)) <= 1 and len(rows) >= 20
    # 40 HU in a (40, 400) window is the middle of the range.
    assert abs(float(img[32, 32]) - 0.0) < 0.05
    summary = ts.summary()
    assert summary["n_dropped_empty"] == 3 and summary["n_train"] == 15
    assert summary["n_patients"] == 3 and summary["modality"] == "CT"
    assert summary["source_sizes"] == {"24x32": 18}
    assert summary["model_pixel_spacing_mm"] == pytest.approx([0.25, 0.25])


def test_summary_and_keys_hold_no_identifiers(three_patients: list, tmp_path: Path) -> None:
    ts = build_training_set(three_patients, TrainingSetConfig(), cache_root=tmp_path / "c")
    text = json.dumps(ts.summary()) + " ".join(ts.patient_keys.tolist())
    for marker in MARKERS + ("MARKER",):
        assert marker not in text
    for s in three_patients:
        assert s.series_uid not in text and s.study_uid not in text
    assert len(set(ts.patient_keys.tolist())) == 3
    cached = next((tmp_path / "c" / "trainsets").glob("*.npz")).read_bytes()
    assert b"MARKER" not in cached and b"Zyxwvut" not in cached


def test_window_modes(three_patients: list, tmp_path: Path) -> None:
    from medgan.dicom.window import CT_PRESETS

    name = next(iter(CT_PRESETS))
    preset = build_training_set(
        three_patients, TrainingSetConfig(window=f"preset:{name}"), use_cache=False
    )
    assert (preset.window.center, preset.window.width) == (
        CT_PRESETS[name].center,
        CT_PRESETS[name].width,
    )
    from_file = build_training_set(
        three_patients, TrainingSetConfig(window="file"), use_cache=False
    )
    assert (from_file.window.center, from_file.window.width) == (40.0, 400.0)
    auto = build_training_set(three_patients, TrainingSetConfig(window="auto"), use_cache=False)
    assert auto.window.width > 0 and auto.summary()["window_mode"] == "auto"
    parsed = TrainingSetConfig.with_window("-600,1500")
    assert (parsed.window, parsed.window_center, parsed.window_width) == (
        "explicit",
        -600.0,
        1500.0,
    )
    with pytest.raises(DataError, match="Unknown window preset"):
        build_training_set(three_patients, TrainingSetConfig(window="preset:nope"), use_cache=False)
    with pytest.raises(DataError):
        TrainingSetConfig(resolution=100)


def test_holdout_is_split_by_patient(three_patients: list, tmp_path: Path) -> None:
    config = TrainingSetConfig(holdout_fraction=0.34, seed=1)
    ts = build_training_set(three_patients, config, use_cache=False)
    assert ts.holdout is not None
    train_keys, held_keys = set(ts.patient_keys.tolist()), set(ts.holdout.patient_keys.tolist())
    assert len(held_keys) == 1 and len(train_keys) == 2 and not train_keys & held_keys
    assert len(ts.images) + len(ts.holdout.images) == 15
    again = build_training_set(three_patients, config, use_cache=False)
    assert set(again.holdout.patient_keys.tolist()) == held_keys  # type: ignore[union-attr]


def test_cache_reused_and_invalidated(three_patients: list, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = build_training_set(three_patients, TrainingSetConfig(), cache_root=cache)
    second = build_training_set(three_patients, TrainingSetConfig(), cache_root=cache)
    assert not first.from_cache and second.from_cache
    assert np.array_equal(first.images, second.images)
    assert second.summary() == first.summary()
    # A damaged entry is rebuilt, not trusted.
    entry = next((cache / "trainsets").glob("*.npz"))
    entry.write_bytes(b"not an npz")
    rebuilt = build_training_set(three_patients, TrainingSetConfig(), cache_root=cache)
    assert not rebuilt.from_cache and np.array_equal(rebuilt.images, first.images)
    # A changed file (new mtime) means a new decode.
    path = three_patients[0].images[0].path
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = build_training_set(three_patients, TrainingSetConfig(), cache_root=cache)
    assert not third.from_cache
    # Another config means another entry, not a stale hit.
    fourth = build_training_set(three_patients, TrainingSetConfig(resolution=128), cache_root=cache)
    assert not fourth.from_cache and fourth.images.shape[-1] == 128


def test_slice_ranges_cancel_and_errors(three_patients: list, tmp_path: Path) -> None:
    uid = three_patients[1].series_uid
    ts = build_training_set(
        three_patients[1:2], TrainingSetConfig(), slice_ranges={uid: (1, 4)}, use_cache=False
    )
    assert len(ts.images) == 3
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        build_training_set(three_patients, TrainingSetConfig(), cancel=stop, use_cache=False)
    with pytest.raises(DataError, match="No series"):
        build_training_set([], TrainingSetConfig())
    with pytest.raises(DataError, match="outside"):
        build_training_set(three_patients[1:2], slice_ranges={uid: [99]}, use_cache=False)


def test_mixed_modalities_and_all_empty_are_refused(tmp_path: Path) -> None:
    _study(tmp_path / "a", 1)
    _study(tmp_path / "a", 2, modality="MR")
    with pytest.raises(DataError, match="mix modalities"):
        build_training_set(_scan(tmp_path / "a"), use_cache=False)
    _study(tmp_path / "b", 1, n=3, empty={0, 1, 2})
    with pytest.raises(DataError, match="nearly empty"):
        build_training_set(_scan(tmp_path / "b"), use_cache=False)
