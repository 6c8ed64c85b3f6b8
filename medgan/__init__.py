"""MedGAN Studio core library: DICOM loading, GAN training, generation, scoring, export.

This package never imports Qt; the desktop app in ``ui/`` is one listener among others.
Heavy dependencies (torch, MONAI) are imported lazily inside the modules that need them.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__"]
