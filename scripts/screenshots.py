"""Render every page of MedGAN Studio to docs/screenshots/*.png (offscreen, no display needed).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--train-steps 60]

Opens the demo study (writing it first if needed), picks series, builds the training set, then
captures each page. A page can add its own scenes by defining ``screenshot_scenes()`` that
returns ``[(name, prepare: Callable[[], None], ready: Callable[[], bool]), ...]``; the script
calls ``prepare()``, waits until ``ready()`` and saves ``<name>.png``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

log = logging.getLogger("screenshots")


def wait_until(app, condition: Callable[[], bool], timeout_s: float, what: str) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents()
        if condition():
            return True
        time.sleep(0.02)
    if what:
        log.warning("Timed out waiting for %s", what)
    return False


def settle(app, seconds: float = 0.3) -> None:
    wait_until(app, lambda: False, seconds, "")


def save(window, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    window.grab().save(str(path))
    print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--train-steps", type=int, default=300,
                        help="short real training run before the Train/Generate/Export shots (0: none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtCore import QSettings

    settings_dir = tempfile.mkdtemp(prefix="medgan-screenshots-")  # the user's settings stay as they are
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, settings_dir)

    from ui.app import create_app
    from ui.main_window import MainWindow
    from ui.state import AppState

    app = create_app()
    window = MainWindow(AppState())
    window.resize(args.width, args.height)
    window.show()
    wait_until(app, window.all_pages_built, 60, "pages")

    window.open_demo_study()
    data = window.page("data")
    wait_until(app, lambda: window.state.scan is not None, 300, "the demo study scan")
    wait_until(app, lambda: not data.is_scanning(), 30, "scan end")
    scan = window.state.scan
    if scan is None:
        print("the demo study could not be opened", file=sys.stderr)
        return 1
    # choose most patients' series (all but the last), and look at the third patient
    trainable = [s for s in scan.series if s.trainable]
    for series in trainable[:-1]:
        data.tree.set_checked(series.series_uid, True)
    if len(trainable) > 2:
        data.tree.select_series(trainable[2].series_uid)
    viewer = data.viewer
    wait_until(app, lambda: viewer.shown_index() >= 0, 30, "a slice")
    wait_until(app, lambda: all(not data.tree.item_for(u).icon(0).isNull() for u in data.tree.series_uids()),
               30, "thumbnails")
    data.build_training_set()
    wait_until(app, lambda: data.build_button.isEnabled(), 300, "the training set")
    window.show_page("data")
    wait_until(app, lambda: bool(window.state.device), 120, "the device probe")
    settle(app, 0.5)
    save(window, args.out, "data")

    window.log_dock.show()
    run_dir = Path(tempfile.mkdtemp(prefix="medgan-screenshots-run-"))
    if args.train_steps > 0:
        try:
            short_training_run(app, window, run_dir, args.train_steps)
        except Exception:  # noqa: BLE001 - still render the pages as they are
            log.exception("The short training run failed; pages are shown without it")
    for key in ("train", "generate", "export"):
        page = window.show_page(key)
        settle(app, 0.5)
        save(window, args.out, key)
        scenes = getattr(page, "screenshot_scenes", None)
        for name, prepare, ready in (scenes() if callable(scenes) else []):
            prepare()
            wait_until(app, ready, 600, name)
            settle(app, 0.5)
            save(window, args.out, name)

    # last: a messy folder, to show the problems panel
    window.log_dock.hide()
    with tempfile.TemporaryDirectory() as tmp:
        messy = make_messy_folder(Path(tmp) / "CD-export")
        window.open_folder(str(messy))
        wait_until(app, lambda: window.state.scan is not None and window.state.scan.root == str(messy)
                   and not data.is_scanning(), 120, "the messy folder")
        data.tabs.setCurrentIndex(1)
        wait_until(app, lambda: data.viewer.shown_index() >= 0, 30, "a slice")
        settle(app, 0.5)
        save(window, args.out, "data-problems")
    window.close()
    return 0


def short_training_run(app, window, run_dir: Path, steps: int) -> None:
    """Train briefly on the demo training set, save the model, generate and curate a set,
    and export it, so every page shows real content (uses the pages' public API)."""
    train = window.show_page("train")
    train.runs_dir = run_dir / "runs"
    train.settings.set_resolution(64)
    train.settings.steps.setValue(steps)
    train.config_overrides = {"sample_every": 10, "checkpoint_every": max(10, steps // 2),
                              "width": 16}
    ended: list[str] = []
    train.run_ended.connect(ended.append)
    if not train.start_training():
        raise RuntimeError("the Train page refused to start")
    wait_until(app, lambda: bool(ended) and not train.is_training(), 1800, "training")
    train.loss_plot.flush()
    saved: list[str] = []
    train.model_saved.connect(saved.append)
    train.save_model_to(str(run_dir / "demo-model.safetensors"))
    wait_until(app, lambda: bool(saved), 120, "the model file")
    gen = window.show_page("generate")
    gen.count.setValue(96)
    done: list[bool] = []
    gen.generated.connect(lambda: done.append(True))
    if gen.start_generation():
        wait_until(app, lambda: bool(done) and not gen.is_busy(), 600, "generation")
    export = window.show_page("export")
    export.destination.setText(str(run_dir / "export"))
    finished: list[str] = []
    export.export_finished.connect(finished.append)
    if export.start_export():
        wait_until(app, lambda: bool(finished) and not export.is_busy(), 600, "export")


def make_messy_folder(root: Path) -> Path:
    """A CD-export-like folder: good series plus every kind of file the scan must explain."""
    from pydicom.uid import JPEG2000Lossless, RLELossless

    from tests import dicom_factory as f

    series = f.write_series(root / "DICOM" / "S1", n=24, rows=128, cols=128, modality="MR",
                            rescale=None, window=None, series_description="T2 axial",
                            patient_name="Example^Patient", transfer_syntax=JPEG2000Lossless)
    f.write_series(root / "DICOM" / "S2", n=16, rows=128, cols=128, series_description="CT head",
                   patient_name="Example^Patient", transfer_syntax=RLELossless, series_number=2)
    f.write_color_image(root / "DICOM" / "SC" / "photo.dcm", patient_name="Example^Patient")
    f.write_truncated(root / "DICOM" / "S1" / "IM_cut", series[0], keep=0.4)
    f.write_broken_header(root / "DICOM" / "IM_broken")
    f.write_zero_byte(root / "DICOM" / "IM_empty")
    f.write_garbage(root / "AUTORUN.INF")
    f.write_text_file(root / "README.TXT")
    f.write_non_image(root / "DICOM" / "SR" / "report.dcm", "SR", patient_name="Example^Patient")
    f.write_non_image(root / "DICOM" / "PR" / "state.dcm", "PR", patient_name="Example^Patient")
    return root


if __name__ == "__main__":
    sys.exit(main())
