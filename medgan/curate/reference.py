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


def match_mask_resolution(masks: np.ndarray, resolution: int) -> np.ndarray:
    """(N, R, R) uint8 label masks → (N, resolution, resolution) by nearest neighbour (labels
    are never blended); unchanged when the size already matches."""
    masks = np.asarray(masks, dtype=np.uint8)
    size = masks.shape[-1]
    if masks.shape[-2:] == (resolution, resolution):
        return masks
    idx = np.minimum(((np.arange(resolution) + 0.5) * size / resolution).astype(np.int64), size - 1)
    return np.ascontiguousarray(masks[:, idx][:, :, idx])


def remap_labels(
    labels: np.ndarray | None, names: tuple[str, ...], target: tuple[str, ...]
) -> np.ndarray | None:
    """Labels indexing ``names`` re-expressed as indices into ``target`` (-1 where a class is
    not in ``target``, or unlabelled)."""
    if labels is None:
        return None
    labels = np.asarray(labels, dtype=np.int64)
    if not target or tuple(names) == tuple(target):
        return labels
    lookup = np.array([target.index(n) if n in target else -1 for n in names] + [-1], np.int64)
    return lookup[np.where((labels >= 0) & (labels < len(names)), labels, len(names))]
