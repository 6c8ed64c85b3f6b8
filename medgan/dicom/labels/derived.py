"""Slice labels derived from masks: a slice is labelled with the segment it shows, so a SEG
gives a classification set too.

A segment counts on a slice when it covers at least ``min_area`` pixels; when several do, the
largest wins; a masked slice with none is :data:`NO_LABEL`. Slices no mask covers stay
unlabelled. Explicit labels (CSV, user) are never overwritten.
"""

from __future__ import annotations

import numpy as np

from medgan.dicom.labels.records import NO_LABEL, LabelSet


def slice_label(mask: np.ndarray, segments: list[str], min_area: int) -> str:
    """The label of one mask (values = 1-based index into ``segments``)."""
    counts = np.bincount(mask.ravel(), minlength=len(segments) + 1)[1:]
    if counts.size == 0 or counts.max() < min_area:
        return NO_LABEL
    return segments[int(np.argmax(counts))]


def labels_from_masks(labels: LabelSet, *, min_area: int = 20, overwrite: bool = False) -> LabelSet:
    """Add derived labels to ``labels`` in place (and return it)."""
    names = labels.segment_names()
    for uid in list(labels.masks):
        have = labels.labels.get(uid, {})
        for index in sorted(labels.masked_indices(uid)):
            if index in have and not overwrite:
                continue
            mask = labels.mask_for(uid, index, names)
            if mask is not None:
                labels.set_label(uid, index, slice_label(mask, names, min_area))
    return labels
