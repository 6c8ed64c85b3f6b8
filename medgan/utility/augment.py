"""Classic augmentation: the baseline a user would pick instead of synthetic slices.

MONAI dictionary transforms, so a mask moves with its image (nearest neighbour): flips, a
small affine (rotation, scale, shift), a mild elastic warp, and intensity scale/shift and
noise on the image only. Seeded: the same seed gives the same augmented batches.

MONAI transforms act on one channel-first image; a batch is augmented in groups of
``GROUP`` slices stacked as channels, which share one random draw. On a CPU this is about 10x
faster than one draw per slice, and over hundreds of steps the draws still vary widely.
"""

from __future__ import annotations

from typing import Any

import numpy as np

GROUP = 8


class ClassicAugment:
    """Augment a batch of images in [-1, 1] (``(n, R, R)``), with optional masks."""

    def __init__(self, seed: int, *, with_masks: bool = False) -> None:
        from monai.transforms import (
            Compose,
            Rand2DElasticd,
            RandAffined,
            RandFlipd,
            RandGaussianNoised,
            RandScaleIntensityd,
            RandShiftIntensityd,
        )

        keys = ["image", "mask"] if with_masks else ["image"]
        modes = ["bilinear", "nearest"] if with_masks else ["bilinear"]
        pad = ["border", "zeros"] if with_masks else ["border"]
        self.with_masks = with_masks
        self.transform = Compose(
            [
                RandFlipd(keys, prob=0.5, spatial_axis=1),
                RandAffined(
                    keys, prob=0.7, rotate_range=0.26, scale_range=0.1,
                    translate_range=(4, 4), mode=modes, padding_mode=pad,
                ),
                Rand2DElasticd(
                    keys, spacing=(16, 16), magnitude_range=(0.5, 1.5), prob=0.2,
                    mode=modes, padding_mode=pad,
                ),
                RandScaleIntensityd("image", factors=0.1, prob=0.5),
                RandShiftIntensityd("image", offsets=0.1, prob=0.5),
                RandGaussianNoised("image", std=0.03, prob=0.3),
            ]  # fmt: skip
        )
        self.transform.set_random_state(seed=seed)

    def __call__(
        self, images: np.ndarray, masks: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        out_i = np.empty_like(images, dtype=np.float32)
        out_m = None if masks is None else np.empty_like(masks)
        for start in range(0, len(images), GROUP):
            part = slice(start, start + GROUP)
            item: dict[str, Any] = {"image": images[part].astype(np.float32)}
            if self.with_masks and masks is not None:
                item["mask"] = masks[part].astype(np.float32)
            done = self.transform(item)
            out_i[part] = np.asarray(done["image"])
            if out_m is not None and "mask" in done:
                out_m[part] = np.rint(np.asarray(done["mask"])).astype(out_m.dtype)
        return np.clip(out_i, -1.0, 1.0), out_m
