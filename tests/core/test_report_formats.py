"""The export report reads the kept slices back from every export format (for its contact
sheet), with the same display values whatever the format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medgan.export import FORMATS, ExportConfig, export_set
from medgan.reports.export_images import ExportReader
from tests.core._export_data import provenance, synthetic


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_back_for_the_contact_sheet(fmt, tmp_path):
    sset = synthetic(4, keep=[True, False, True, True])
    out = tmp_path / fmt
    export_set(sset, ExportConfig(format=fmt, destination=str(out)), provenance(), durable=False)
    manifest = json.loads((out / "manifest.json").read_text())
    reader = ExportReader(out, manifest)
    images = [reader.read(row) for row in manifest["files"]]
    assert len(images) == 3 and all(im is not None and im.dtype == np.uint8 for im in images)
    # The window maps [-1, 1] onto 0..255: every format gives (nearly) the same pixels.
    expected = np.clip((sset.images[[0, 2, 3]] + 1) * 127.5, 0, 255)
    got = np.stack(images).astype(float)
    assert np.abs(got - expected).mean() < 2.0, fmt
