"""Labelled export formats: class folders, image + mask pairs (PNG, NIfTI), the nnU-Net v2 raw
layout, a MONAI datalist, and DICOM with a SEG per synthetic image.

Each writer is a :class:`medgan.export.base.Writer` whose ``write_labelled`` returns the image
file and the mask file of every slice (``medgan.export.run`` records both in the manifest).
"""

from __future__ import annotations

from medgan.export.labelled.names import class_folders, safe_name

__all__ = ["class_folders", "safe_name"]
