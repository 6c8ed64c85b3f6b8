"""The export report reads the kept slices back from every export format (for its contact
sheet), with the same display values whatever the format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medgan.export import FORMATS, LABELLED_FORMATS, ExportConfig, SliceSet, export_set
from medgan.reports.export_images import ExportReader
from tests.core._export_data import provenance, synthetic
from tests.core._labelled_data import CLASSES, SEGMENTS, labelled_set


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


@pytest.mark.parametrize("fmt", LABELLED_FORMATS)
def test_labelled_formats_read_back_for_the_contact_sheet(fmt, tmp_path):
    """Class folders and PNG pairs read as PNG; NIfTI pairs, nnU-Net and MONAI as NIfTI."""
    images, labels, masks, _ = labelled_set(4, 16)
    sset = SliceSet(images, seeds=np.full(4, 3), indices=np.arange(4), labels=labels,
                    masks=masks, keep=np.array([True, False, True, True]))  # fmt: skip
    out = tmp_path / fmt
    export_set(sset, ExportConfig(format=fmt, destination=str(out)), provenance(),
               class_names=CLASSES, segment_names=SEGMENTS, durable=False)  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    reader = ExportReader(out, manifest)
    rows = [r for r in manifest["files"] if r.get("kind") == "synthetic"]
    got = [reader.read(row) for row in rows]
    assert len(got) == 3 and all(im is not None and im.dtype == np.uint8 for im in got), fmt
    expected = np.clip((images[[0, 2, 3]] + 1) * 127.5, 0, 255)
    assert np.abs(np.stack(got).astype(float) - expected).mean() < 2.0, fmt
