"""DICOM with masks: the Secondary Capture images of :mod:`medgan.export.dicom` plus, for every
slice that has a mask, a DICOM Segmentation (highdicom, binary, one segment per entry of the
segment table) referencing that image. SYNTHETIC is stated in the SEG's series and content
descriptions, as in the images.

One SEG instance per image (all in one SEG series per kind): highdicom builds a multi-frame
SEG over several source images only when they share a frame of reference, and a generated
slice deliberately has no patient geometry (no frame of reference, no position).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from medgan.core.logs import quiet_identifying_loggers
from medgan.export.base import SliceRecord, WriterContext
from medgan.export.dicom import DicomWriter

quiet_identifying_loggers()  # highdicom logs source UIDs at INFO

_SEG_SERIES_NUMBER = {"synthetic": 3, "real": 4}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "~"


class DicomSegWriter(DicomWriter):
    """Images as :class:`DicomWriter`; a SEG next to each image that has a mask."""

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self.seg_series_uids = {kind: generate_uid() for kind in _SEG_SERIES_NUMBER}
        self._descriptions: list[Any] | None = None
        self._n_seg = 0

    def _segment_descriptions(self) -> list[Any]:
        if self._descriptions is None:
            import highdicom as hd
            from pydicom.sr.codedict import codes

            algorithm = hd.AlgorithmIdentificationSequence(
                name="MedGAN Studio GAN",
                version=_clip(f"{self.ctx.provenance.recipe} {self.ctx.app_version}", 64),
                family=codes.cid7162.ArtificialIntelligence,
            )
            self._descriptions = [
                hd.seg.SegmentDescription(
                    segment_number=k,
                    segment_label=_clip(name, 64),
                    segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                    segmented_property_type=codes.SCT.MorphologicallyAbnormalStructure,
                    algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                    algorithm_identification=algorithm,
                )
                for k, name in enumerate(self.ctx.segment_names or ("segment",), start=1)
            ]
        return self._descriptions

    def _seg(self, record: SliceRecord, source: pydicom.Dataset) -> bytes:
        import highdicom as hd

        assert record.mask is not None
        synthetic = record.kind == "synthetic"
        seg = hd.seg.Segmentation(
            source_images=[source],
            pixel_array=np.asarray(record.mask, np.uint8)[None],
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=self._segment_descriptions(),
            series_instance_uid=self.seg_series_uids[record.kind],
            series_number=_SEG_SERIES_NUMBER[record.kind],
            sop_instance_uid=generate_uid(),
            instance_number=record.number + 1,
            manufacturer="MedGAN Studio",
            manufacturer_model_name="MedGAN Studio",
            software_versions=f"MedGAN Studio {self.ctx.app_version}",
            device_serial_number="0",
            series_description=(
                "SYNTHETIC MedGAN masks" if synthetic else "MEDGAN REAL TRAINING MASKS"
            ),
            content_label="SYNTHETIC" if synthetic else "REAL",
            content_description=_clip(
                "SYNTHETIC mask generated with the image by MedGAN Studio; not for diagnosis"
                if synthetic
                else "Mask of a preprocessed real training slice (MedGAN Studio export)",
                64,
            ),
            content_creator_name="MedGAN^Studio",
            omit_empty_frames=False,
        )
        # A generated slice has no patient geometry: General Image's Type 2C Patient
        # Orientation is then required (empty), and Pixel Measures without a slice thickness
        # (optional without a frame of reference) would stop highdicom's own reader.
        seg.PatientOrientation = None
        for item in seg.get("SharedFunctionalGroupsSequence", []):
            if "PixelMeasuresSequence" in item:
                del item.PixelMeasuresSequence
        out = io.BytesIO()
        seg.save_as(out, enforce_file_format=True)
        return out.getvalue()

    def write(self, batch: list[SliceRecord]) -> list[str]:
        return [image for image, _ in self.write_labelled(batch)]

    def write_labelled(self, batch: list[SliceRecord]) -> list[tuple[str, str]]:
        out, tasks = [], []
        folder = self.ctx.folder
        for record in batch:
            name, data = self.encode(record)
            tasks.append(lambda path=folder / name, data=data: path.write_bytes(data))
            mask_name = ""
            if record.mask is not None:
                source = pydicom.dcmread(io.BytesIO(data))
                mask_name = f"{record.stem}_seg{self.suffix}"
                seg = self._seg(record, source)
                tasks.append(lambda path=folder / mask_name, data=seg: path.write_bytes(data))
                self._n_seg += 1
            out.append((name, mask_name))
        self.run_parallel(tasks)
        if self._n_seg:
            self.ctx.details["seg_series_instance_uids"] = dict(self.seg_series_uids)
            self.ctx.details["masks"] = (
                "one DICOM Segmentation (<file>_seg.dcm, binary, one segment per entry of the "
                "segment table) per image that has a mask, referencing it"
            )
        return out
