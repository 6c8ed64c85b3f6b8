"""Pixels in modality units: rescale or Modality LUT, MONOCHROME1 inverted, colour → gray.

Native (uncompressed) pixel data is read straight from its byte offset with ``readinto``
into a reusable buffer and converted in place into the caller's float32 output; compressed
data goes through pydicom's decoder plugins (GDCM, pylibjpeg, pyjpegls, Pillow). Decoding
never re-reads headers except for the rare Modality LUT / PALETTE COLOR images.

The leaf of the DICOM package: the scanner, the series loader and the decoding worker
processes import it, and it imports nothing of the package but the records.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from pydicom.uid import UID

from medgan.core.errors import Cancelled, DicomError
from medgan.dicom.records import ImageRef

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

_MONO = {"MONOCHROME1", "MONOCHROME2"}
_COLOUR = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"}
_PALETTE = "PALETTE COLOR"
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)



@lru_cache(maxsize=64)
def _decoder_available(ts: str) -> tuple[bool, str]:
    from pydicom.pixels import get_decoder

    uid = UID(ts)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        return False, f"transfer syntax {uid.name or ts} is not supported by any pixel decoder"
    if not decoder.is_available:
        missing = ", ".join(sorted(decoder.missing_dependencies)) or "a decoder plugin"
        return False, f"no installed decoder for {uid.name} (needs {missing})"
    return True, ""


@lru_cache(maxsize=8)
def _plugins(ts: str) -> tuple[str, ...]:
    from pydicom.pixels import get_decoder

    try:
        return tuple(get_decoder(UID(ts)).available_plugins)
    except NotImplementedError:
        return ()


def decoder_problem(
    ts: str, photometric: str, samples: int, bits_allocated: int, bits_stored: int = 0
) -> str | None:
    """Why an image with these properties cannot be decoded here, or None when it can."""
    uid = UID(ts)
    if not uid.is_transfer_syntax:
        return f"unknown transfer syntax {ts!r}; no decoder can read it"
    if uid.is_compressed:
        ok, reason = _decoder_available(str(uid))
        if not ok:
            return reason
        # GDCM and Pillow (as driven by pydicom) decode 8-bit JPEG Extended only.
        if (
            uid == UID("1.2.840.10008.1.2.4.51")
            and bits_stored > 8
            and "pylibjpeg" not in _plugins(ts)
        ):
            return (
                "12-bit JPEG Extended needs the optional pylibjpeg-libjpeg decoder "
                "(GPL-3 licensed; pip install pylibjpeg-libjpeg)"
            )
    if photometric not in _MONO | _COLOUR and photometric != _PALETTE:
        return f"photometric interpretation {photometric or '(missing)'!r} is not supported"
    if samples not in (1, 3):
        return f"{samples} samples per pixel is not supported (expected 1 or 3)"
    if bits_allocated not in (1, 8, 16, 32):
        return f"BitsAllocated={bits_allocated} is not supported"
    return None


def _native_dtype(ref: ImageRef) -> np.dtype:
    kind = "i" if ref.pixel_representation == 1 else "u"
    return np.dtype(f"{'>' if ref.big_endian else '<'}{kind}{ref.bits_allocated // 8}")


def stored_range(ref: ImageRef) -> tuple[float, float]:
    bits = ref.bits_stored or ref.bits_allocated or 16
    if ref.pixel_representation == 1:
        return -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0**bits - 1


def fast_path(ref: ImageRef) -> bool:
    return (
        ref.pixel_offset is not None
        and ref.samples_per_pixel == 1
        and ref.photometric in _MONO
        and not ref.has_modality_lut
        and ref.bits_allocated in (8, 16, 32)
    )


def _finish_mono(raw: np.ndarray, ref: ImageRef, out: np.ndarray) -> None:
    """Stored values → modality units (slope/intercept), MONOCHROME1 inverted, into ``out``."""
    bits = ref.bits_stored
    if 0 < bits < raw.dtype.itemsize * 8 and np.issubdtype(raw.dtype, np.integer):
        raw = raw.astype(raw.dtype.newbyteorder("="), copy=False)
        if ref.pixel_representation == 1:
            shift = raw.dtype.itemsize * 8 - bits
            raw = (raw << shift) >> shift  # sign-extend, dropping any overlay bits
        else:
            raw = raw & raw.dtype.type((1 << bits) - 1)
    slope, intercept = np.float32(ref.rescale_slope), np.float32(ref.rescale_intercept)
    if slope != 1:
        np.multiply(raw, slope, out=out, casting="unsafe")
        if intercept != 0:
            out += intercept
    elif intercept != 0:
        np.add(raw, intercept, out=out, casting="unsafe")  # one pass: convert and shift
    else:
        np.copyto(out, raw, casting="unsafe")
    if ref.photometric == "MONOCHROME1":
        lo, hi = stored_range(ref)
        a, b = slope * lo + intercept, slope * hi + intercept
        np.subtract(np.float32(a + b), out, out=out)


def _read_native(fp: object, ref: ImageRef, out: np.ndarray, buf: bytearray | None) -> bytearray:
    """Read one frame of native pixel data at its offset into ``out``; returns the buffer."""
    dtype = _native_dtype(ref)
    nbytes = ref.rows * ref.cols * dtype.itemsize
    if buf is None or len(buf) != nbytes:
        buf = bytearray(nbytes)
    frame = ref.frame or 0
    fp.seek(int(ref.pixel_offset or 0) + frame * nbytes)  # type: ignore[attr-defined]
    got = fp.readinto(buf)  # type: ignore[attr-defined]
    if got != nbytes:
        raise DicomError(f"{ref.path}: the file is truncated (pixel data ends early).")
    raw = np.frombuffer(buf, dtype=dtype).reshape(ref.rows, ref.cols)
    _finish_mono(raw, ref, out)
    return buf


def _to_gray(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[-1] == 3:
        return arr.astype(np.float32) @ _LUMA
    return arr


def _decoded_to_out(arr: np.ndarray, ref: ImageRef, ds: Dataset, out: np.ndarray) -> None:
    """A decoded frame (stored values, RGB after YBR conversion) → modality units in ``out``."""
    from pydicom.pixels import apply_color_lut, apply_modality_lut

    if ref.photometric == _PALETTE:
        out[...] = _to_gray(apply_color_lut(arr, ds))
        return
    if arr.ndim == 3:
        out[...] = _to_gray(arr)
        return
    if ref.has_modality_lut:
        values = apply_modality_lut(arr, ds)
        out[...] = values
        if ref.photometric == "MONOCHROME1":
            lut = np.asarray(ds.ModalityLUTSequence[0].LUTData, dtype=np.float32)
            np.subtract(np.float32(lut.min() + lut.max()), out, out=out)
        return
    _finish_mono(arr, ref, out)


def decode_file(
    path: str,
    items: Sequence[tuple[int, ImageRef]],
    out: np.ndarray,
    cancel: threading.Event | None,
) -> None:
    """Decode the frames ``items`` (output index, ref) that all live in ``path``."""
    try:
        if all(fast_path(ref) for _, ref in items):
            buf: bytearray | None = None
            with open(path, "rb") as fp:
                for i, ref in items:
                    if cancel is not None and cancel.is_set():
                        return
                    buf = _read_native(fp, ref, out[i], buf)
            return
        _decode_with_plugins(path, items, out, cancel)
    except (DicomError, Cancelled):
        raise
    except MemoryError:
        raise
    except FileNotFoundError:
        raise DicomError(f"{path}: the file has disappeared since the scan.") from None
    except Exception as exc:  # noqa: BLE001 - a codec error names the file, never crashes
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise DicomError(f"{path}: the image cannot be decoded ({first}).") from exc


def _decode_with_plugins(
    path: str,
    items: Sequence[tuple[int, ImageRef]],
    out: np.ndarray,
    cancel: threading.Event | None,
) -> None:
    from pydicom.dataset import Dataset
    from pydicom.pixels import iter_pixels

    first = items[0][1]
    if UID(first.transfer_syntax) == UID("1.2.840.10008.1.2.1.99"):
        _decode_deflated(path, items, out)
        return
    wanted = {ref.frame or 0: i for i, ref in items}
    by_frame = {ref.frame or 0: ref for _, ref in items}
    indices = sorted(wanted) if first.n_frames > 1 else None
    plugin = _preferred_plugin(first.transfer_syntax)
    done = 0
    while True:
        ds_out = Dataset()
        frames = iter_pixels(
            path, ds_out=ds_out, indices=indices, as_rgb=True, decoding_plugin=plugin
        )
        try:
            for pos, arr in enumerate(frames):
                if pos < done:
                    continue
                if cancel is not None and cancel.is_set():
                    return
                frame = indices[pos] if indices is not None else 0
                _decoded_to_out(np.asarray(arr), by_frame[frame], ds_out, out[wanted[frame]])
                done += 1
            return
        except Exception:
            if not plugin:
                raise
            plugin = ""  # the fast plugin failed on this file: let pydicom try them all


# Fastest installed plugin per syntax, measured on 512x512 int16 CT-like slices.
_FAST_PLUGINS = {
    "1.2.840.10008.1.2.5": "pylibjpeg",  # RLE: pylibjpeg-rle is ~4x pydicom's numpy decoder
    "1.2.840.10008.1.2.4.80": "pyjpegls",  # JPEG-LS lossless: CharLS beats GDCM
    "1.2.840.10008.1.2.4.81": "pyjpegls",
    "1.2.840.10008.1.2.4.90": "pylibjpeg",  # JPEG 2000: OpenJPEG
    "1.2.840.10008.1.2.4.91": "pylibjpeg",
}


def _preferred_plugin(ts: str) -> str:
    """The fast plugin for ``ts`` when it is installed, else '' (pydicom's own order)."""
    plugin = _FAST_PLUGINS.get(ts, "")
    return plugin if plugin and plugin in _plugins(ts) else ""


def _decode_deflated(path: str, items: Sequence[tuple[int, ImageRef]], out: np.ndarray) -> None:
    import pydicom

    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    for i, ref in items:
        frame = arr[ref.frame] if ref.n_frames > 1 else arr
        _decoded_to_out(np.asarray(frame), ref, ds, out[i])


