"""The real slices samples are compared with, at the model's resolution."""

from __future__ import annotations

import numpy as np


def match_resolution(images: np.ndarray, resolution: int) -> np.ndarray:
    """(N, R, R) float32 in [-1, 1] → (N, resolution, resolution): area averaging when
    shrinking, bilinear when enlarging; unchanged (no copy) when the size already matches."""
    images = np.asarray(images, dtype=np.float32)
    if images.shape[-2:] == (resolution, resolution):
        return images
    import torch
    import torch.nn.functional as F  # noqa: N812

    t = torch.from_numpy(np.ascontiguousarray(images))[:, None]
    if resolution < images.shape[-1]:
        out = F.interpolate(t, size=(resolution, resolution), mode="area")
    else:
        out = F.interpolate(t, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return out[:, 0].clamp_(-1.0, 1.0).numpy().astype(np.float32)
