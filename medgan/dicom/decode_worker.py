"""A decoding worker process: ``python -m medgan.dicom.decode_worker``.

Reads one JSON request per line on stdin (``{"path": ..., "refs": [ImageRef fields]}``) and
answers with one JSON header line (``{"ok": true, "shape": [...]}`` or ``{"ok": false,
"error": ...}``) followed, when ok, by the float32 pixels as raw bytes. Only plain values cross
the pipe (no pickle). The worker exits when stdin closes, so it never outlives its parent.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import fields
from typing import Any, BinaryIO

import numpy as np

from medgan.core.errors import MedganError
from medgan.dicom.pixels import decode_file
from medgan.dicom.records import ImageRef

_TUPLE_FIELDS = {"position", "orientation"}
_REF_FIELDS = {f.name for f in fields(ImageRef)}


def ref_to_json(ref: ImageRef) -> dict[str, Any]:
    return {name: getattr(ref, name) for name in _REF_FIELDS}


def ref_from_json(data: dict[str, Any]) -> ImageRef:
    values: dict[str, Any] = {
        k: (tuple(v) if k in _TUPLE_FIELDS and v is not None else v) for k, v in data.items()
    }
    return ImageRef(**{k: v for k, v in values.items() if k in _REF_FIELDS})


def _answer(out: BinaryIO, header: dict[str, Any], payload: bytes = b"") -> None:
    out.write(json.dumps(header).encode() + b"\n")
    if payload:
        out.write(payload)
    out.flush()


def serve(stdin: BinaryIO, out: BinaryIO) -> None:
    """Answer requests until stdin closes."""

    for line in stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            refs = [ref_from_json(r) for r in request["refs"]]
            arr = np.empty((len(refs), refs[0].rows, refs[0].cols), dtype=np.float32)
            decode_file(request["path"], list(enumerate(refs)), arr, None)
        except MedganError as exc:
            _answer(out, {"ok": False, "error": str(exc)})
            continue
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            _answer(out, {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        _answer(out, {"ok": True, "shape": list(arr.shape)}, arr.tobytes())


def main() -> None:
    # Keep the answer channel private: anything a codec prints goes to stderr instead.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    main()
