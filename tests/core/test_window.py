"""Window/level: presets, mapping to [-1, 1] and uint8, robust auto-window."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.dicom.window import (
    CT_PRESETS,
    Window,
    apply_window,
    auto_window,
    series_window,
    to_uint8,
)


def test_ct_presets_cover_the_usual_windows():
    assert set(CT_PRESETS) == {
        "brain", "subdural", "stroke", "lung", "mediastinum", "abdomen", "liver", "bone",
    }  # fmt: skip
    assert CT_PRESETS["brain"] == Window(40, 80)
    assert CT_PRESETS["lung"].center < -400 and CT_PRESETS["lung"].width >= 1000
    assert CT_PRESETS["bone"].center > 200
    assert CT_PRESETS["stroke"].width < CT_PRESETS["brain"].width


def test_apply_window_maps_edges_and_clips():
    w = Window(40, 80)
    values = np.array([-1000.0, 0.0, 40.0, 60.0, 80.0, 3000.0])
    out = apply_window(values, w)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [-1.0, -1.0, 0.0, 0.5, 1.0, 1.0])


def test_to_uint8_spans_full_range():
    w = Window(0, 200)
    out = to_uint8(np.array([[-500.0, -100.0, 0.0, 100.0, 900.0]]), w)
    assert out.dtype == np.uint8
    assert out.tolist() == [[0, 0, 128, 255, 255]]


def test_auto_window_ignores_outliers_and_nan():
    rng = np.random.default_rng(0)
    pixels = rng.normal(300.0, 50.0, size=(64, 64)).astype(np.float32)
    pixels[0, :8] = 1e6  # hot pixels
    pixels[1, :8] = np.nan
    w = auto_window(pixels)
    assert 100 < w.low < 250 and 350 < w.high < 500
    # Deterministic, and subsampling large arrays gives nearly the same window.
    assert auto_window(pixels) == w
    big = np.tile(pixels, (40, 40))
    w_big = auto_window(big, max_samples=10_000)
    assert w_big.center == pytest.approx(w.center, rel=0.1)


def test_auto_window_on_constant_and_empty_images():
    assert auto_window(np.full((4, 4), 7.0)).width == 1.0
    assert auto_window(np.full((4, 4), 7.0)).center == 7.0
    assert auto_window(np.array([np.nan, np.inf])).width == 1.0


def test_window_validation_and_helpers():
    with pytest.raises(ValueError):
        Window(0, 0)
    with pytest.raises(ValueError):
        Window(float("nan"), 10)
    assert Window.from_range(-100, 300) == Window(100, 400)
    assert Window(10, 20).to_dict() == {"center": 10.0, "width": 20.0}
    assert series_window((30.0, 300.0), "MR") == Window(30, 300)
    assert series_window(None, "CT") == CT_PRESETS["abdomen"]
    assert series_window(None, "MR", np.arange(100.0)).low == pytest.approx(0.495)
