"""Generate-page gallery: time until N generated slices are shown and scrollable.

Compares the app's model/view gallery (lazy, cached thumbnails; numpy sort) with a naive
QListWidget that builds one icon item per image up front, in the same run, offscreen.

Run: ``.venv/bin/python benchmarks/gallery.py [N]``
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import ui.compat  # noqa: E402, F401
from PySide6.QtCore import QSize  # noqa: E402
from PySide6.QtGui import QIcon, QPixmap  # noqa: E402
from PySide6.QtWidgets import QApplication, QListView, QListWidget, QListWidgetItem  # noqa: E402

from ui.widgets.gallery import GalleryModel, GalleryView  # noqa: E402
from ui.widgets.sample_grid import gray_qimage, to_uint8  # noqa: E402


def settle(app: QApplication, seconds: float = 0.05) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()


def lazy(app: QApplication, images: np.ndarray, realism: np.ndarray) -> dict[str, float]:
    model = GalleryModel(thumb_size=96)
    view = GalleryView(model)
    view.resize(900, 700)
    view.show()
    t0 = time.perf_counter()
    model.set_images(images, {"realism": realism})
    app.processEvents()
    shown = time.perf_counter() - t0
    t1 = time.perf_counter()
    model.set_order(np.argsort(-realism))
    app.processEvents()
    resort = time.perf_counter() - t1
    view.close()
    return {"show_s": shown, "sort_s": resort, "thumbs": model.renders}


def naive(app: QApplication, images: np.ndarray, realism: np.ndarray) -> dict[str, float]:
    widget = QListWidget()
    widget.setViewMode(QListView.ViewMode.IconMode)
    widget.setIconSize(QSize(96, 96))
    widget.resize(900, 700)
    widget.show()
    t0 = time.perf_counter()
    for i, img in enumerate(images):
        pix = QPixmap.fromImage(gray_qimage(to_uint8(img)).scaled(96, 96))
        QListWidgetItem(QIcon(pix), f"#{i} {realism[i]:.2f}", widget)
    app.processEvents()
    shown = time.perf_counter() - t0
    t1 = time.perf_counter()
    items = [widget.takeItem(0) for _ in range(widget.count())]
    for i in np.argsort(-realism):
        widget.addItem(items[i])
    app.processEvents()
    resort = time.perf_counter() - t1
    widget.close()
    return {"show_s": shown, "sort_s": resort, "thumbs": len(images)}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (n, 64, 64)).astype(np.float32)
    realism = rng.uniform(0, 1, n)
    settle(app)
    fast = lazy(app, images, realism)
    settle(app)
    slow = naive(app, images, realism)
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
          f", Qt platform {os.environ['QT_QPA_PLATFORM']}")
    print(f"{n} slices of 64x64, 96 px thumbnails")
    for name, r in (("model/view (app)", fast), ("naive QListWidget", slow)):
        print(f"  {name:18s} show {r['show_s'] * 1000:8.1f} ms   re-sort {r['sort_s'] * 1000:8.1f} ms"
              f"   thumbnails rendered {int(r['thumbs'])}")
    print(f"speed-up: show x{slow['show_s'] / fast['show_s']:.0f}, "
          f"re-sort x{slow['sort_s'] / max(fast['sort_s'], 1e-9):.0f}")


if __name__ == "__main__":
    main()
