"""runtime.files: atomic writes and the temporaries a killed process leaves (issue 21.10), with a
real SIGKILL sent to a writer in the middle of its write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from pix2pix_edge.runtime.files import atomic_write, remove_stale_temps, temp_prefix

REPO = Path(__file__).resolve().parents[1]

SLOW_WRITER = """
import sys, time
from pix2pix_edge.runtime.files import atomic_write

def write(f):
    f.write(b"x" * (1 << 20))
    f.flush()
    print("writing", flush=True)
    time.sleep(60)

atomic_write(sys.argv[1], write)
"""


def _kill_mid_write(path: Path) -> int:
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(path)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    return proc.pid


def test_kill_9_mid_write_keeps_the_old_file_and_the_next_write_removes_the_leftover(tmp_path):
    target = tmp_path / "latest.pt"
    target.write_bytes(b"good")
    pid = _kill_mid_write(target)
    left = [p for p in tmp_path.iterdir() if p != target]
    assert [p.name.startswith(f".latest.pt.pid{pid}.") for p in left] == [True]
    assert left[0].stat().st_size == 1 << 20 and target.read_bytes() == b"good"

    atomic_write(target, lambda f: f.write(b"new"))
    assert sorted(tmp_path.iterdir()) == [target] and target.read_bytes() == b"new"


def test_only_temporaries_of_processes_that_are_gone_are_removed(tmp_path):
    dead = _kill_mid_write(tmp_path / "a.onnx")
    mine = tmp_path / f"{temp_prefix('a.onnx')}k3j4l5m6"          # this (running) process
    mine.mkdir()
    foreign = [tmp_path / ".a.onnx.1234.tmp", tmp_path / "a.onnx.pid1.tmp", tmp_path / "x.onnx"]
    for p in foreign:
        p.write_text("not ours")
    folder = tmp_path / f".b.onnx.pid{dead}.q1w2e3r4"               # a killed export's folder
    (folder / "sub").mkdir(parents=True)
    removed = remove_stale_temps(tmp_path, "a.onnx")
    assert [p.name.split(".pid")[0] for p in removed] == [".a.onnx"]
    assert mine.is_dir() and folder.is_dir() and all(p.exists() for p in foreign)
    assert remove_stale_temps(tmp_path) == [folder] and mine.is_dir()
