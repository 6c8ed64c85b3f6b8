"""The nnU-Net v2 raw data set layout: ``imagesTr/<case>_0000.nii.gz``,
``labelsTr/<case>.nii.gz`` and ``dataset.json`` (channel names, labels with background 0,
numTraining, file_ending), as nnU-Net's documentation (``dataset_format.md``) describes.
Name the export folder ``DatasetNNN_Name`` inside ``nnUNet_raw`` to train on it directly.
Each 2D slice is one case of shape (x, y, 1)."""

from __future__ import annotations

import json

from medgan.export.base import SYNTHETIC_NOTICE, SliceRecord, WriterContext
from medgan.export.labelled.pairs import NiftiPairWriter


def dataset_json(ctx: WriterContext, n_cases: int) -> dict[str, object]:
    """nnU-Net v2 ``dataset.json``: one channel named after the modality (``CT`` switches
    nnU-Net to its CT intensity normalisation), labels ``background`` = 0 then the segments."""
    modality = ctx.provenance.modality.upper()
    labels: dict[str, int] = {"background": 0}
    for k, name in enumerate(ctx.segment_names, start=1):
        labels[name if name not in labels else f"{name}_{k}"] = k
    return {
        "channel_names": {"0": modality if modality in ("CT", "MR") else "image"},
        "labels": labels,
        "numTraining": int(n_cases),
        "file_ending": ".nii.gz",
        "name": "MedGAN Studio synthetic export",
        "description": SYNTHETIC_NOTICE,
    }


class NnunetWriter(NiftiPairWriter):
    image_dir, mask_dir, image_tail = "imagesTr", "labelsTr", "_0000.nii.gz"

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self.n = 0

    def write_labelled(self, batch: list[SliceRecord]) -> list[tuple[str, str]]:
        out = super().write_labelled(batch)
        self.n += len(out)
        return out

    def close(self) -> list[str]:
        text = json.dumps(dataset_json(self.ctx, self.n), indent=2)
        (self.ctx.folder / "dataset.json").write_text(text + "\n", encoding="utf-8")
        return ["dataset.json"]
