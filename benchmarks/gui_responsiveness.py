"""Desktop-app responsiveness: launch-to-window time and the event loop's worst stall.

    .venv/bin/python benchmarks/gui_responsiveness.py [--runs 3]

(a) Launch → window shown, from process start: MedGAN Studio (torch/MONAI imported lazily)
    against a naive start that imports torch and MONAI before building the window.
(b) Worst event-loop stall while decoding a JPEG 2000 series of 120 slices of 256×256 one by
    one (as when scrolling through it): in a worker thread (what the app does) against decoding
    on the UI thread (the naive way).
Offscreen Qt; prints the machine and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NAIVE_START = "import torch, monai, runpy, sys; sys.argv = ['main.py', '--startup-check']; runpy.run_path('main.py', run_name='__main__')"


def time_to_window(cmd: list[str]) -> float:
    """Seconds from process start until it reports the window as shown."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MEDGAN_NO_WARMUP": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - started
        assert json.loads(line)["event"] == "shown", line
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return elapsed


def spin(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)


def worst_stall(app, work, in_worker: bool) -> float:
    """Max gap (ms) between 10 ms timer ticks while ``work`` runs."""
    from PySide6.QtCore import Qt, QTimer

    from ui.workers import FunctionWorker, start_worker

    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000)
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)
    timer.start(10)
    if in_worker:
        handle = start_worker(FunctionWorker(lambda: work(), progress_kw=None, cancel_kw=None))
        while not handle.done:
            app.processEvents()
            time.sleep(0.002)
        handle.wait()
    else:
        spin(app, 0.05)
        work()  # what a slot that decodes would do: the loop cannot tick meanwhile
        spin(app, 0.05)
    app.processEvents()
    tick()
    timer.stop()
    return max(gaps)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; torch device: cpu (not used)")

    ours = [time_to_window([sys.executable, "main.py", "--startup-check"]) for _ in range(args.runs)]
    naive = [time_to_window([sys.executable, "-c", NAIVE_START]) for _ in range(args.runs)]
    o, n = statistics.median(ours), statistics.median(naive)
    print(f"(a) launch → window shown, median of {args.runs}: MedGAN Studio {o:.2f} s, "
          f"naive (torch+MONAI at start) {n:.2f} s → {n / o:.1f}× faster")

    from ui.app import create_app
    from ui.main_window import warm_up_data_stack

    app = create_app()
    warm_up_data_stack()
    from pydicom.uid import JPEG2000Lossless

    from medgan.dicom.decode import read_image
    from medgan.dicom.index import scan_folder
    from tests.dicom_factory import write_series

    with tempfile.TemporaryDirectory() as tmp:
        write_series(Path(tmp) / "j2k", n=120, rows=256, cols=256, transfer_syntax=JPEG2000Lossless)
        refs = [ref for s in scan_folder(tmp).series for ref in s.images]

        def decode_all() -> None:
            for ref in refs:
                read_image(ref)

        worker_ms = worst_stall(app, decode_all, in_worker=True)
        ui_ms = worst_stall(app, decode_all, in_worker=False)
    print(f"(b) worst event-loop stall decoding 120 JPEG 2000 slices of 256×256: in a worker {worker_ms:.0f} ms, "
          f"on the UI thread {ui_ms:.0f} ms → {ui_ms / worker_ms:.0f}× shorter")
    return 0


if __name__ == "__main__":
    sys.exit(main())
