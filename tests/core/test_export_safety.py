"""Exports are all or nothing: failures, cancel, read-only and full disks leave nothing
partial, and an existing export is never changed unless an overwrite is asked for."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from medgan.core.errors import Cancelled, ExportError
from medgan.export import ExportConfig, export_set
from medgan.export.png import PngWriter
from tests.core._export_data import provenance, synthetic


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".partial-" in p.name or ".replaced-" in p.name]


def _run(dest: Path, n: int = 10, **kw: object):
    cfg = {k: kw.pop(k) for k in list(kw) if k in ExportConfig.__dataclass_fields__}
    config = ExportConfig(format="png", destination=str(dest), **cfg)  # type: ignore[arg-type]
    return export_set(synthetic(n), config, provenance(), batch_size=2, durable=True, **kw)  # type: ignore[arg-type]


def _fail_after(monkeypatch: pytest.MonkeyPatch, calls: int, exc: BaseException) -> None:
    original = PngWriter.write
    count = {"n": 0}

    def failing(self: PngWriter, batch):  # noqa: ANN001, ANN202
        count["n"] += 1
        if count["n"] > calls:
            raise exc
        return original(self, batch)

    monkeypatch.setattr(PngWriter, "write", failing)


def test_failing_writer_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_after(monkeypatch, 2, RuntimeError("writer broke"))
    with pytest.raises(RuntimeError, match="writer broke"):
        _run(tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def test_disk_full_is_explained_and_cleaned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_after(monkeypatch, 1, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(ExportError, match="disk is full") as info:
        _run(tmp_path / "out")
    assert "Free some space" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_second_export_does_not_change_the_first(tmp_path: Path) -> None:
    first = _run(tmp_path / "out", n=4)
    before = _snapshot(first.path)
    with pytest.raises(ExportError, match="already exists") as info:
        _run(tmp_path / "out", n=6)
    assert "overwrite" in str(info.value)
    assert _snapshot(first.path) == before
    assert _leftovers(tmp_path) == []


def test_overwrite_replaces_only_when_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(tmp_path / "out", n=4)
    before = _snapshot(tmp_path / "out")
    with monkeypatch.context() as m:
        _fail_after(m, 1, OSError(errno.ENOSPC, "No space left on device"))
        with pytest.raises(ExportError):
            _run(tmp_path / "out", n=6, overwrite=True)
    assert _snapshot(tmp_path / "out") == before  # a failed overwrite keeps the old export
    result = _run(tmp_path / "out", n=6, overwrite=True)
    assert result.n_synthetic == 6 and len(list(result.path.glob("*.png"))) == 6
    assert _leftovers(tmp_path) == []


def test_existing_empty_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    assert _run(tmp_path / "out", n=2).n_synthetic == 2


def test_destination_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("keep me")
    with pytest.raises(ExportError, match="is a file"):
        _run(tmp_path / "out")
    assert (tmp_path / "out").read_text() == "keep me"


def test_read_only_destination_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        if os.access(parent, os.W_OK):  # running as root: simulate the file system's answer

            def refuse(self: Path, *a: object, **k: object) -> None:
                raise OSError(errno.EROFS, "Read-only file system", str(self))

            monkeypatch.setattr(Path, "mkdir", refuse)
        with pytest.raises(ExportError, match="read-only") as info:
            _run(parent / "out")
        assert "Choose a folder you can write to" in str(info.value)
    finally:
        monkeypatch.undo()
        parent.chmod(0o755)
    assert list(parent.iterdir()) == []


def test_too_long_name_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="too long"):
        _run(tmp_path / ("x" * 300))
    assert list(tmp_path.iterdir()) == []


def test_cancel_leaves_nothing_and_progress_is_reported(tmp_path: Path) -> None:
    cancel = threading.Event()
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done >= 4:
            cancel.set()

    with pytest.raises(Cancelled):
        _run(tmp_path / "out", progress=progress, cancel=cancel)
    assert seen[0] == (0, 10) and seen[-1] == (4, 10)
    assert list(tmp_path.iterdir()) == []


def test_progress_reaches_total(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    _run(tmp_path / "out", n=5, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (5, 5) and [d for d, _ in seen] == sorted(d for d, _ in seen)
