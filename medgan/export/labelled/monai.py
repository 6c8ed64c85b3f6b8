"""A MONAI datalist: ``images/<case>.nii.gz``, ``labels/<case>.nii.gz`` and ``datalist.json``
(``{"training": [{"image": ..., "label": ...}]}``, paths relative to the folder), which
``monai.data.load_decathlon_datalist("datalist.json")`` loads as it is. Each item also says
its ``source`` (synthetic / real) and, for labelled sets, its ``class``."""

from __future__ import annotations

import json

from medgan.export.base import SYNTHETIC_NOTICE, SliceRecord, WriterContext
from medgan.export.labelled.pairs import NiftiPairWriter


class MonaiWriter(NiftiPairWriter):
    image_dir, mask_dir, image_tail = "images", "labels", ".nii.gz"

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self.items: list[dict[str, object]] = []

    def write_labelled(self, batch: list[SliceRecord]) -> list[tuple[str, str]]:
        out = super().write_labelled(batch)
        for record, (image, mask) in zip(batch, out, strict=True):
            item: dict[str, object] = {"image": image, "label": mask, "source": record.kind}
            if record.label is not None and 0 <= record.label < len(self.ctx.class_names):
                item["class"] = self.ctx.class_names[record.label]
            self.items.append(item)
        return out

    def close(self) -> list[str]:
        labels = {"0": "background"}
        labels.update({str(k): n for k, n in enumerate(self.ctx.segment_names, start=1)})
        document = {
            "name": "MedGAN Studio synthetic export",
            "description": SYNTHETIC_NOTICE,
            "labels": labels,
            "numTraining": len(self.items),
            "training": self.items,
        }
        text = json.dumps(document, indent=2, ensure_ascii=False)
        (self.ctx.folder / "datalist.json").write_text(text + "\n", encoding="utf-8")
        return ["datalist.json"]
