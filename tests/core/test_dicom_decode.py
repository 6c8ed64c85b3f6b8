"""Decoding: every writable transfer syntax, rescale / LUT, MONOCHROME1, colour, refusals."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    JPEG2000,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSNearLossless,
    RLELossless,
)

from medgan.core.errors import Cancelled, DicomError
from medgan.dicom.decode import load_series, read_image
from medgan.dicom.index import scan_folder
from tests.dicom_factory import (
    WRITABLE_SYNTAXES,
    default_pixels,
    slice_positions,
    write_color_image,
    write_series,
)

_LOSSY_TOLERANCE = {JPEGLSNearLossless: 1.0, JPEG2000: 8.0, JPEGBaseline8Bit: 3.0}


def _only_series(root: Path):
    result = scan_folder(root)
    assert len(result.series) == 1, result.problems
    return result.series[0]


@pytest.mark.parametrize("syntax", WRITABLE_SYNTAXES, ids=lambda uid: uid.name)
def test_every_writable_syntax_decodes_to_modality_units(tmp_path, syntax):
    write_series(tmp_path, n=3, transfer_syntax=syntax)
    series = _only_series(tmp_path)
    assert series.transfer_syntax == syntax
    volume = load_series(series, workers=2)
    stored = default_pixels(3, 32, 32).astype(np.float32)
    if syntax == JPEGBaseline8Bit:
        stored = stored % 256
    expected = stored - 1024.0
    assert volume.dtype == np.float32 and volume.shape == (3, 32, 32)
    tolerance = _LOSSY_TOLERANCE.get(syntax, 0.0)
    assert np.abs(volume - expected).max() <= tolerance
    # read_image gives the same slice as load_series.
    np.testing.assert_array_equal(read_image(series.images[1]), volume[1])


def test_rescale_slope_and_intercept(tmp_path):
    write_series(tmp_path, n=2, rescale=(2.5, -100.0))
    volume = load_series(_only_series(tmp_path))
    np.testing.assert_allclose(volume, default_pixels(2, 32, 32) * 2.5 - 100.0)


def test_bits_stored_masks_overlay_bits(tmp_path):
    stored = default_pixels(2, 32, 32, dtype=np.uint16)
    dirty = stored | np.uint16(0xF000)  # junk in the 4 bits above BitsStored=12
    write_series(tmp_path, n=2, pixels=dirty, signed=False, rescale=None)
    np.testing.assert_array_equal(load_series(_only_series(tmp_path)), stored)


def test_monochrome1_is_inverted_and_window_flipped(tmp_path):
    stored = default_pixels(3, 32, 32, dtype=np.uint16)
    write_series(tmp_path, n=3, photometric="MONOCHROME1", modality="CR", rescale=None,
                 signed=False, pixels=stored, window=(1000.0, 500.0))  # fmt: skip
    series = _only_series(tmp_path)
    volume = load_series(series)
    np.testing.assert_array_equal(volume, 4095.0 - stored)  # BitsStored 12
    assert series.window == (3095.0, 500.0)


def test_modality_lut_replaces_rescale(tmp_path):
    lut = Dataset()
    lut.LUTDescriptor = [1024, 0, 16]
    lut.ModalityLUTType = "US"
    lut.LUTData = (np.arange(1024, dtype="<u2") * 2 + 5).tobytes()
    write_series(tmp_path, n=2, rescale=None, signed=False,
                 extra_tags={"ModalityLUTSequence": DicomSequence([lut])})  # fmt: skip
    series = _only_series(tmp_path)
    assert series.images[0].has_modality_lut
    np.testing.assert_array_equal(load_series(series), default_pixels(2, 32, 32) * 2 + 5)


def test_rgb_ybr_and_palette_become_grayscale(tmp_path):
    rgb_path = write_color_image(tmp_path / "rgb", photometric="RGB")
    ybr_path = write_color_image(tmp_path / "ybr", photometric="YBR_FULL")
    pal_path = write_color_image(tmp_path / "pal", photometric="PALETTE COLOR")
    result = scan_folder(tmp_path)
    by_name = {Path(s.files[0]).name: s for s in result.series}
    rr, cc = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    luma = 0.299 * (rr * 8) + 0.587 * (cc * 8) + 0.114 * 128
    rgb = read_image(by_name[rgb_path.name].images[0])
    np.testing.assert_allclose(rgb, luma, atol=1e-3)
    assert np.abs(read_image(by_name[ybr_path.name].images[0]) - luma).max() < 2.0
    index = (rr + cc) * 4 % 256
    pal_luma = 0.299 * index * 257 + 0.587 * (255 - index) * 257 + 0.114 * (index // 2) * 257
    np.testing.assert_allclose(read_image(by_name[pal_path.name].images[0]), pal_luma, rtol=1e-4)
    assert all(s.trainable for s in result.series)
    assert all(any("grayscale" in w for w in s.warnings) for s in result.series)


def test_colour_series_and_multiframe_colour(tmp_path):
    write_series(tmp_path / "rgb", n=2, photometric="RGB", bits_allocated=8, signed=False,
                 rescale=None)  # fmt: skip
    shutil.copy(get_testdata_file("SC_rgb_rle_2frame.dcm"), tmp_path / "rle2")
    result = scan_folder(tmp_path)
    for series in result.series:
        volume = load_series(series)
        assert volume.shape == (series.n_images, series.rows, series.cols)
        assert np.isfinite(volume).all() and volume.max() > 0
    frames = next(s for s in result.series if s.n_images == 2 and s.rows == 100)
    reference = pydicom.dcmread(tmp_path / "rle2").pixel_array.astype(np.float32)
    np.testing.assert_allclose(load_series(frames), reference @ np.float32([0.299, 0.587, 0.114]),
                               rtol=1e-5)  # fmt: skip


def test_enhanced_multiframe_in_anatomical_order(tmp_path):
    positions = slice_positions(4)[::-1]
    write_series(tmp_path, n=4, multiframe=True, enhanced=True, positions=positions,
                 transfer_syntax=RLELossless)  # fmt: skip
    volume = load_series(_only_series(tmp_path))
    # Frame k holds k*100 + ...; anatomical order reverses the frames.
    means = volume.mean(axis=(1, 2)) + 1024.0
    np.testing.assert_allclose(means, [331.0, 231.0, 131.0, 31.0])


@pytest.mark.parametrize(
    "name",
    ["CT_small.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_RLE.dcm",
     "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "SC_rgb_small_odd.dcm",
     "SC_rgb_jpeg_gdcm.dcm", "image_dfl.dcm", "MR_small_padded.dcm", "SC_rgb_rle.dcm"],
)  # fmt: skip
def test_matches_pydicom_on_sample_files(tmp_path, name):
    shutil.copy(get_testdata_file(name), tmp_path / name)
    series = _only_series(tmp_path)
    ds = pydicom.dcmread(get_testdata_file(name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference decode warns about padding
        arr = ds.pixel_array.astype(np.float64)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        expected = arr @ [0.299, 0.587, 0.114]
    else:
        expected = arr * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    np.testing.assert_allclose(read_image(series.images[0]), expected, rtol=1e-5, atol=1e-3)


def test_12bit_jpeg_extended_without_decoder_is_refused_with_reason(tmp_path):
    from medgan.dicom.pixels import _plugins

    shutil.copy(get_testdata_file("JPGExtended.dcm"), tmp_path / "ext12.dcm")
    result = scan_folder(tmp_path)
    if "pylibjpeg" in _plugins("1.2.840.10008.1.2.4.51"):
        assert result.series and not result.problems
    else:
        (problem,) = result.problems
        assert "12-bit JPEG Extended" in problem.reason and "pylibjpeg-libjpeg" in problem.reason


@pytest.mark.parametrize("implicit", [True, False])
def test_files_without_meta_header(tmp_path, implicit):
    from pydicom.dataset import FileMetaDataset

    (src,) = write_series(tmp_path / "src", n=1, rescale=(1.0, -1000.0))
    ds = pydicom.dcmread(src)
    ds.file_meta = FileMetaDataset()
    ds.preamble = None
    ds.save_as(tmp_path / "nometa", implicit_vr=implicit, little_endian=True)
    src.unlink()
    series = _only_series(tmp_path)
    assert series.images[0].pixel_offset is not None
    np.testing.assert_array_equal(
        read_image(series.images[0]), default_pixels(1, 32, 32)[0] - 1000.0
    )


def test_unsupported_syntax_is_refused_per_file(tmp_path):
    good = write_series(tmp_path, n=2)
    ds = pydicom.dcmread(good[0])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video: no decoder
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "video.dcm", enforce_file_format=True)
    result = scan_folder(tmp_path)
    (problem,) = result.problems
    assert problem.path.endswith("video.dcm") and "MPEG2" in problem.reason
    assert result.series[0].n_images == 2


def test_corrupt_compressed_data_raises_dicom_error_naming_the_file(tmp_path):
    paths = write_series(tmp_path, n=2, transfer_syntax=RLELossless, shuffle_names=False)
    ds = pydicom.dcmread(paths[1])
    ds.PixelData = encapsulate([b"\x01\x00\x00\x00" + b"\xff" * 60])  # bad RLE header
    ds.save_as(paths[1])
    series = _only_series(tmp_path)
    with pytest.raises(DicomError, match=paths[1].name):
        load_series(series)
    read_image(series.images[0])  # the good file still decodes


def test_missing_file_after_scan_is_a_clear_error(tmp_path):
    paths = write_series(tmp_path, n=2)
    series = _only_series(tmp_path)
    paths[0].unlink()
    with pytest.raises(DicomError, match="disappeared"):
        load_series(series)


def test_indices_progress_and_cancel(tmp_path):
    write_series(tmp_path, n=12, transfer_syntax=ExplicitVRLittleEndian)
    series = _only_series(tmp_path)
    full = load_series(series, workers=1)
    calls: list[tuple[int, int]] = []
    part = load_series(series, [5, 0, 11], progress=lambda d, t: calls.append((d, t)), workers=2)
    np.testing.assert_array_equal(part, full[[5, 0, 11]])
    assert calls[-1] == (3, 3)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        load_series(series, cancel=cancel, workers=2)
    with pytest.raises(DicomError, match="out of range"):
        load_series(series, [12])


def test_cancel_during_load_stops_quickly(tmp_path, monkeypatch):
    import time

    from medgan.dicom import pixels

    write_series(tmp_path, n=40, rows=16, cols=16)
    series = _only_series(tmp_path)
    real = pixels.decode_file

    def slow(*args, **kwargs):
        time.sleep(0.05)
        return real(*args, **kwargs)

    monkeypatch.setattr(pixels, "decode_file", slow)
    cancel = threading.Event()
    threading.Timer(0.15, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        load_series(series, cancel=cancel, workers=2)
    assert time.monotonic() - started < 1.15


def test_worker_processes_give_the_same_pixels(tmp_path):
    from pydicom.uid import JPEGLSLossless

    write_series(tmp_path / "a", n=6, transfer_syntax=JPEGLSLossless, series_uid="1.2.826.0.1.9")
    write_series(tmp_path / "b", n=3, multiframe=True, enhanced=True,
                 transfer_syntax=JPEG2000Lossless)  # fmt: skip
    for series in scan_folder(tmp_path).series:
        threaded = load_series(series, processes=0, workers=2)
        calls: list[tuple[int, int]] = []
        in_processes = load_series(
            series, processes=2, progress=lambda d, t, rec=calls.append: rec((d, t))
        )
        np.testing.assert_array_equal(in_processes, threaded)
        assert calls[-1] == (series.n_images, series.n_images)


def test_crashed_worker_costs_one_file_and_is_replaced(tmp_path):
    from medgan.dicom import parallel

    write_series(tmp_path, n=2, transfer_syntax=RLELossless)
    series = _only_series(tmp_path)
    pool = parallel.worker_pool(1)
    try:
        worker = pool._idle.queue[0]
        worker.proc.kill()
        worker.proc.wait()
        with pytest.raises(DicomError, match="decoder crashed"):
            pool.decode(series.images[0].path, [series.images[0]])
        again = pool.decode(series.images[0].path, [series.images[0]])
        np.testing.assert_array_equal(again[0], read_image(series.images[0]))
    finally:
        parallel.close_pool()


def test_hand_built_refs_are_completed_from_the_header(tmp_path):
    from medgan.dicom.records import ImageRef

    (path,) = write_series(tmp_path, n=3, multiframe=True, enhanced=True)
    image = read_image(ImageRef(path=str(path), frame=2))
    np.testing.assert_array_equal(image, default_pixels(3, 32, 32)[2] - 1024.0)
    with pytest.raises(DicomError, match="frame 7"):
        read_image(ImageRef(path=str(path), frame=7))
    (tmp_path / "x.txt").write_text("not dicom")
    with pytest.raises(DicomError):
        read_image(ImageRef(path=str(tmp_path / "x.txt")))


def test_stuck_worker_is_killed_after_the_timeout(tmp_path, monkeypatch):
    from medgan.dicom import parallel

    write_series(tmp_path, n=1, transfer_syntax=RLELossless)
    series = _only_series(tmp_path)
    monkeypatch.setattr(parallel, "DECODE_TIMEOUT_S", 0.5)
    pool = parallel.worker_pool(1)
    try:
        worker = pool._idle.queue[0]
        worker.proc.stdin.write(b"\n")  # ignored by the worker, so it keeps waiting...
        os.kill(worker.proc.pid, signal.SIGSTOP)  # ...and now it cannot answer at all
        with pytest.raises(DicomError, match="did not finish"):
            pool.decode(series.images[0].path, [series.images[0]])
        monkeypatch.setattr(parallel, "DECODE_TIMEOUT_S", 120.0)  # the new worker must start
        again = pool.decode(series.images[0].path, [series.images[0]])
        np.testing.assert_array_equal(again[0], read_image(series.images[0]))
    finally:
        parallel.close_pool()
