"""NumPy writers: one ``images.npy`` stack, or ``images.npz`` with scores and provenance."""

from __future__ import annotations

import numpy as np

from medgan.export.base import SliceRecord, Writer, WriterContext


class NpyWriter(Writer):
    """``images.npy``: float32 (N, R, R) in modality units, rows in manifest order."""

    suffix = ".npy"
    file_name = "images.npy"

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        res = ctx.provenance.resolution
        self._stack: np.memmap | None = None
        self._shape = (ctx.total, res, res)
        ctx.details["values"] = f"float32 {ctx.provenance.units or 'modality units'}".strip()
        ctx.details["stack"] = self.file_name

    def _ensure(self, record: SliceRecord) -> np.ndarray:
        if self._stack is None:
            shape = (self.ctx.total, *record.modality.shape)
            self._stack = np.lib.format.open_memmap(
                self.ctx.folder / self.file_name, mode="w+", dtype=np.float32, shape=shape
            )
        return self._stack

    def write(self, batch: list[SliceRecord]) -> list[str]:
        for record in batch:
            self._ensure(record)[record.number] = record.modality
        return [self.file_name] * len(batch)

    def close(self) -> list[str]:
        if self._stack is None:  # an empty export still gets a (0, R, R) stack
            np.save(self.ctx.folder / self.file_name, np.zeros(self._shape, np.float32))
        else:
            self._stack.flush()
            del self._stack
            self._stack = None
        return []

    def abort(self) -> None:
        self._stack = None


class NpzWriter(Writer):
    """``images.npz``: ``images`` (modality units), ``normalized`` ([-1, 1]), ``kind``,
    ``seed``, ``index`` (-1 for real slices) and one array per score (NaN where absent)."""

    suffix = ".npz"
    file_name = "images.npz"

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self._records: list[SliceRecord] = []
        ctx.details["values"] = "float32 'images' in modality units, 'normalized' in [-1, 1]"
        ctx.details["stack"] = self.file_name

    def write(self, batch: list[SliceRecord]) -> list[str]:
        self._records.extend(batch)
        return [self.file_name] * len(batch)

    def close(self) -> list[str]:
        records = sorted(self._records, key=lambda r: r.number)
        res = self.ctx.provenance.resolution
        shape = (0, res, res)
        score_names = sorted({name for r in records for name in r.scores})
        arrays: dict[str, np.ndarray] = {
            "images": np.stack([r.modality for r in records])
            if records
            else np.zeros(shape, np.float32),
            "normalized": np.stack([r.normalized for r in records])
            if records
            else np.zeros(shape, np.float32),
            "kind": np.array([r.kind for r in records], dtype="U9"),
            "seed": np.array([-1 if r.seed is None else r.seed for r in records], dtype=np.int64),
            "index": np.array(
                [-1 if r.index is None else r.index for r in records], dtype=np.int64
            ),
        }
        for name in score_names:
            arrays[f"score_{name}"] = np.array(
                [float(r.scores.get(name, np.nan)) for r in records], dtype=np.float64
            )
        np.savez(self.ctx.folder / self.file_name, allow_pickle=False, **arrays)
        self._records = []
        return []
