"""Fault injection with real processes: `python -m medgan train` killed with -9 mid-step and
mid-checkpoint-write, stopped by SIGTERM / SIGHUP (once and twice), damaged checkpoints, a full
disk and a read-only checkpoint folder. Tiny data (2 patients x 6 slices, 64²), CPU, 1 thread.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from medgan.cli import main
from medgan.models.modelfile import read_metadata
from medgan.train import checkpoint as ck

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medgan.demo.study import write_demo_study

    root = tmp_path_factory.mktemp("crash-demo")
    return write_demo_study(root / "study", n_patients=2, slices_per_patient=6, size=64)


@pytest.fixture(scope="module")
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("crash-cache")  # shared: the slices are prepared once


@pytest.fixture(autouse=True)
def _cache(_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDGAN_CACHE", str(_cache_dir))


def _args(demo: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(demo), "--out", str(out), "--batch", "4", "--device", "cpu",
            "--seed", "1", "--quality-every", "0", *extra]  # fmt: skip


def _default_stop_signals() -> None:
    """In the child: the stop signals as a terminal leaves them, whatever started the tests.

    ``nohup`` ignores SIGHUP and a non-interactive shell's ``&`` ignores SIGINT; a child
    inherits that, and the trainer rightly keeps an ignored signal ignored.
    """
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


class Run:
    """A `python -m medgan train` process with its stderr in a file."""

    def __init__(self, args: list[str], tmp: Path, python_args: bool = False, **env: str) -> None:
        self.log = tmp / f"stderr-{time.monotonic_ns()}.txt"
        full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **env}
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, *(args if python_args else ["-m", "medgan", *args])],
                cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=err,
                preexec_fn=_default_stop_signals,
            )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                raise AssertionError(f"exited early ({self.proc.returncode}):\n{self.text()}")
            if time.monotonic() > end:
                self.proc.kill()
                raise AssertionError(f"timed out:\n{self.text()}")
            time.sleep(0.05)

    def finish(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"did not exit:\n{self.text()}") from None


def _steps(folder: Path) -> list[int]:
    return [s for s, _ in ck.list_checkpoints(folder)]


def _all_load(folder: Path) -> None:
    for _, path in ck.list_checkpoints(folder):
        ck.load_checkpoint(path)  # raises if any is incomplete


def test_kill_9_mid_step_loses_at_most_one_interval_and_resumes(demo, tmp_path, capsys):
    out, ckpts = tmp_path / "m.safetensors", tmp_path / "m.checkpoints"
    interval_s = 1.2  # --checkpoint-minutes 0.02: the time-based checkpoints are under test
    run = Run(_args(demo, out, "--steps", "100000", "--checkpoint-every", "100000",
                    "--checkpoint-minutes", "0.02"), tmp_path)  # fmt: skip
    run.wait_for(lambda: len(_steps(ckpts)) >= 1)  # the first one is by time (1.2 s)
    time.sleep(0.5)
    killed_at = time.time()
    run.proc.send_signal(signal.SIGKILL)
    assert run.finish() == -signal.SIGKILL
    assert not out.exists()
    newest = ck.load_checkpoint(ckpts)  # complete and loadable
    assert newest.path == ck.latest_checkpoint(ckpts)
    assert killed_at - newest.meta["saved_at"] < interval_s + 2.0  # at most one interval lost
    _all_load(ckpts)

    resumed = tmp_path / "resumed.safetensors"
    target = newest.step + 2
    assert main(_args(demo, resumed, "--resume", str(ckpts), "--steps", str(target))) == 0
    assert f"(step {newest.step})" in capsys.readouterr().err
    assert read_metadata(resumed).step == target


def test_kill_9_mid_checkpoint_write_keeps_the_previous_one(demo, tmp_path):
    out, ckpts = tmp_path / "m.safetensors", tmp_path / "m.checkpoints"
    run = Run(_args(demo, out, "--steps", "100", "--checkpoint-every", "3"), tmp_path,
              MEDGAN_FAULT_INJECT="stall@6")  # fmt: skip
    partial = lambda: list(ckpts.glob(".ckpt-00000006.safetensors.*.tmp*"))  # noqa: E731
    run.wait_for(lambda: any(p.stat().st_size > 0 for p in partial()))
    run.proc.send_signal(signal.SIGKILL)
    assert run.finish() == -signal.SIGKILL
    assert _steps(ckpts) == [3] and partial()  # half a file under a temporary name
    assert ck.load_checkpoint(ckpts).step == 3

    resumed = tmp_path / "resumed.safetensors"
    assert main(_args(demo, resumed, "--resume", str(ckpts), "--steps", "7",
                      "--checkpoint-every", "3")) == 0  # fmt: skip
    assert read_metadata(resumed).step == 7
    assert _steps(ckpts) == [3, 6, 7] and not partial()  # the stale temp file is cleaned up


def test_damaged_newest_checkpoints_fall_back_with_a_message(demo, tmp_path, capsys, caplog):
    out, ckpts = tmp_path / "m.safetensors", tmp_path / "m.checkpoints"
    assert main(_args(demo, out, "--steps", "6", "--checkpoint-every", "2")) == 0
    assert _steps(ckpts) == [2, 4, 6]
    newest = ckpts / ck.checkpoint_name(6)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # power loss
    middle = ckpts / ck.checkpoint_name(4)
    data = bytearray(middle.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")  # past the safetensors header
    data[start + 1000 : start + 5096] = bytes(4096)  # a zeroed block: parses, but wrong
    middle.write_bytes(bytes(data))
    capsys.readouterr()

    resumed = tmp_path / "resumed.safetensors"
    with caplog.at_level("WARNING", logger="medgan.train.checkpoint"):
        assert main(_args(demo, resumed, "--resume", str(ckpts), "--steps", "8")) == 0
    assert "ckpt-00000006.safetensors is damaged" in caplog.text
    assert "do not match their digest" in caplog.text
    assert "Resuming from ckpt-00000002.safetensors instead" in caplog.text
    assert "(step 2)" in capsys.readouterr().err
    assert read_metadata(resumed).step == 8


@pytest.mark.parametrize("fault", ["disk-full", "read-only"])
def test_unwritable_checkpoints_warn_keep_the_previous_and_training_goes_on(
    fault, demo, tmp_path
):
    first, ckpts = tmp_path / "first.safetensors", tmp_path / "run"
    every = ("--checkpoint-every", "2", "--checkpoint-dir", str(ckpts))
    assert main(_args(demo, first, "--steps", "2", *every)) == 0
    env = {"MEDGAN_FAULT_INJECT": "enospc"}
    if fault == "read-only":
        env = {"MEDGAN_FAULT_INJECT": "erofs"} if os.geteuid() == 0 else {}
        ckpts.chmod(0o555)  # root ignores permissions: there the file system's answer is injected
    out = tmp_path / "m.safetensors"
    run = Run(_args(demo, out, "--resume", str(ckpts), "--steps", "6", *every), tmp_path, **env)
    try:
        code = run.finish()
    finally:
        ckpts.chmod(0o755)
    text = run.text()
    assert code == 0, text
    assert read_metadata(out).step == 6  # training went on and the model was written
    assert _steps(ckpts) == [2] and ck.load_checkpoint(ckpts).step == 2  # the previous one
    assert "Checkpoint at step 4 not saved" in text and "Training goes on" in text
    reason = ["No space left"] if fault == "disk-full" else ["Read-only", "ermission denied"]
    assert any(r in text for r in reason), text
    assert "2 checkpoint write(s) failed" in text  # steps 4 and 6
    assert ("Free disk space" if fault == "disk-full" else "not writable") in text


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_save_a_checkpoint_and_the_model(sig, demo, tmp_path):
    out, ckpts = tmp_path / "m.safetensors", tmp_path / "m.checkpoints"
    run = Run(_args(demo, out, "--steps", "100000", "--checkpoint-every", "100000"), tmp_path)
    run.wait_for(lambda: "step " in run.text() and "/100000" in run.text())
    run.proc.send_signal(sig)
    assert run.finish() == 128 + sig, run.text()
    step = read_metadata(out).step
    assert step >= 1 and _steps(ckpts)[-1] == step
    assert ck.load_checkpoint(ckpts).step == step
    assert "stopping after this step" in run.text() and f"Stopped at step {step}" in run.text()


def test_a_second_sigterm_exits_at_once_leaving_complete_checkpoints(demo, tmp_path):
    out, ckpts = tmp_path / "m.safetensors", tmp_path / "m.checkpoints"
    # The checkpoint at step 4 hangs half-written: the second signal must not wait for it.
    run = Run(_args(demo, out, "--steps", "100000", "--checkpoint-every", "2"), tmp_path,
              MEDGAN_FAULT_INJECT="stall@3")  # fmt: skip
    run.wait_for(lambda: bool(list(ckpts.glob(".ckpt-00000004*.tmp*"))))
    run.proc.send_signal(signal.SIGTERM)
    run.wait_for(lambda: "stopping after this step" in run.text())
    began = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    assert run.finish() == 128 + signal.SIGTERM
    assert time.monotonic() - began < 5 and "exiting now" in run.text()
    assert _steps(ckpts) == [2] and ck.load_checkpoint(ckpts).step == 2  # intact
    assert not out.exists()


def test_sighup_stays_ignored_under_nohup(demo, tmp_path):
    out = tmp_path / "m.safetensors"
    run = Run(["-c", "import signal, runpy, sys; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
               "sys.argv = ['medgan', *sys.argv[1:]]; runpy.run_module('medgan', run_name='__main__')",
               *_args(demo, out, "--steps", "30")], tmp_path, python_args=True)  # fmt: skip
    run.wait_for(lambda: "step " in run.text())
    run.proc.send_signal(signal.SIGHUP)  # as nohup asks: ignored, the run goes on to the end
    assert run.finish() == 0, run.text()
    assert read_metadata(out).step == 30 and "SIGHUP" not in run.text()
