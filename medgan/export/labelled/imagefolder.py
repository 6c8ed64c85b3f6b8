"""Class folders: ``<class>/<file>.png`` (8-bit windowed), the layout torchvision's
``ImageFolder`` and MONAI users load directly. Folder names are made safe for every file
system; the manifest keeps each class name exactly as given."""

from __future__ import annotations

from medgan.core.errors import ExportError
from medgan.export.base import SliceRecord, WriterContext
from medgan.export.labelled.names import class_folders
from medgan.export.png import PngWriter


class ImageFolderWriter(PngWriter):
    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self.folders = class_folders(ctx.class_names)
        ctx.details["layout"] = "one folder per class: <class folder>/<file>.png"
        ctx.details["class_folders"] = dict(zip(ctx.class_names, self.folders, strict=True))
        self._made: set[str] = set()

    def write(self, batch: list[SliceRecord]) -> list[str]:
        names, tasks = [], []
        level = self.ctx.config.png_compress_level
        for record in batch:
            if record.label is None or not 0 <= record.label < len(self.folders):
                raise ExportError(f"Slice {record.stem} has no class; class folders need one.")
            folder = self.folders[record.label]
            if folder not in self._made:
                (self.ctx.folder / folder).mkdir(exist_ok=True)
                self._made.add(folder)
            name = f"{folder}/{record.stem}{self.suffix}"
            pixels = self._pixels(record)
            tasks.append(lambda p=pixels, path=self.ctx.folder / name: self._save(p, path, level))
            names.append(name)
        self.run_parallel(tasks)
        return names
