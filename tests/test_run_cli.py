"""`pix2pix run` through click's CliRunner: real model, real files, messages and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import EXIT_BAD_INPUT, EXIT_UNAVAILABLE, EXIT_USAGE
from pix2pix_edge.runtime.video import has_gstreamer
from tests.videos import count_frames

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_video(path, n=30, w=96, h=64, fps=24):
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert wr.isOpened()
    for i in range(n):
        wr.write(np.full((h, w, 3), (i * 8, 100, 200), np.uint8))
    wr.release()
    return str(path)


def invoke(*args):
    return CliRunner().invoke(cli, ["run", *map(str, args)])


def error_line(result):
    """The one line the CLI printed for a user error (no traceback)."""
    lines = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_video_to_mp4_with_stats_json(tiny_onnx, tmp_path):
    src = write_video(tmp_path / "in.mp4")
    out, js = tmp_path / "out.mp4", tmp_path / "stats.json"
    r = invoke(tiny_onnx, "--source", src, "--output", out, "--stats-json", js)
    assert r.exit_code == 0, r.output
    assert "frames: 30 in, 30 out, 0 dropped" in r.output
    assert "stage p50 (ms): capture" in r.output
    assert count_frames(out) == 30
    d = json.loads(js.read_text())
    assert d["frames_out"] == 30 and d["model_info"]["height"] == 64
    assert set(d["stages"]) == {"capture", "pre", "infer", "post", "output"}


def test_images_to_directory_and_options(tiny_onnx, tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    for name in ("one", "two"):
        cv2.imwrite(str(src / f"{name}.png"), np.full((40, 70, 3), 90, np.uint8))
    r = invoke(tiny_onnx, "-s", src, "-o", tmp_path / "out", "--fit", "stretch", "--no-overlay")
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(tmp_path / "out")) == ["one.png", "two.png"]
    r = invoke(tiny_onnx, "-s", write_video(tmp_path / "v.mp4", n=10), "--headless",
               "--loop", "--max-frames", "23")
    assert r.exit_code == 0 and "23 out" in r.output


@pytest.mark.parametrize("source,code,message", [
    ("{tmp}/missing.mp4", EXIT_BAD_INPUT, "source not found: .*missing.mp4"),
    ("{tmp}/notes.txt", EXIT_BAD_INPUT, "notes.txt is not a video or image file"),
    ("/dev/video9", EXIT_UNAVAILABLE, "camera /dev/video9 not found"),
    ("9", EXIT_UNAVAILABLE, "camera /dev/video9 not found"),
])
def test_bad_sources_fail_fast_with_one_line(tiny_onnx, tmp_path, source, code, message):
    if "video9" in message and os.path.exists("/dev/video9"):
        pytest.skip("this machine has a /dev/video9")
    (tmp_path / "notes.txt").write_text("just text\n" * 50)
    r = invoke(tiny_onnx, "--source", source.format(tmp=tmp_path), "--headless")
    assert r.exit_code == code, r.output
    import re
    assert re.search(message, error_line(r))


@pytest.mark.skipif(has_gstreamer(), reason="this OpenCV has GStreamer")
def test_csi_without_gstreamer(tiny_onnx):
    r = invoke(tiny_onnx, "--source", "csi://0", "--headless")
    assert r.exit_code == EXIT_UNAVAILABLE
    assert "csi://0 needs OpenCV built with GStreamer (JetPack's OpenCV)" in error_line(r)


def test_no_display(tiny_onnx, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    src = write_video(tmp_path / "v.mp4", n=3)
    r = invoke(tiny_onnx, "--source", src)              # default output is the window
    assert r.exit_code == EXIT_UNAVAILABLE
    assert "--headless" in error_line(r)
    r = invoke(tiny_onnx, "--source", src, "--output", "display://0", "--headless")
    assert r.exit_code == EXIT_USAGE and "contradict" in error_line(r)     # a bad command line


def test_bad_sizes_and_model(tiny_onnx, tmp_path):
    src = write_video(tmp_path / "v.mp4", n=3)
    r = invoke(tiny_onnx, "--source", src, "--headless", "--size", "128")
    assert r.exit_code == EXIT_BAD_INPUT and "fixed input size 64x64" in error_line(r)
    r = invoke(tiny_onnx, "--source", src, "--headless", "--size", "big")      # exit 2: a bad
    assert r.exit_code == EXIT_USAGE and "--size 'big'" in error_line(r)     # command line
    r = invoke(tiny_onnx, "--source", "0", "--headless", "--source-size", "wide")
    assert r.exit_code == EXIT_USAGE and "WIDTHxHEIGHT" in error_line(r)
    r = invoke(tiny_onnx, "--source", src, "--headless", "--size", "128x64")   # WxH
    assert r.exit_code == EXIT_BAD_INPUT
    assert "--size 128x64 differs from the model's fixed input size 64x64" in error_line(r)
    r = invoke(tmp_path / "none.onnx", "--source", src, "--headless")
    assert r.exit_code == EXIT_BAD_INPUT and "model file not found" in error_line(r)


@pytest.mark.parametrize("output", ["/proc/x.mp4", "/sys/x.avi"])
def test_unwritable_output_is_reported_as_not_writable(tiny_onnx, tmp_path, output):
    r = invoke(tiny_onnx, "--source", write_video(tmp_path / "v.mp4", n=3), "--output", output)
    assert r.exit_code == EXIT_BAD_INPUT, r.output
    line = error_line(r)
    assert f"cannot write to {output}: not writable" in line and "encoder" not in line


def test_size_options_are_width_by_height_in_help():
    for command in (["run"], ["bench"], ["export", "onnx"]):
        r = CliRunner().invoke(cli, [*command, "--help"], terminal_width=400)
        assert r.exit_code == 0, r.output
        assert "WxH (width x height), or N for NxN" in " ".join(r.output.split()), command


def test_help_is_instant_and_loads_no_backend():
    code = ("import sys; from click.testing import CliRunner; from pix2pix_edge.runtime.cli import cli; "
            "r = CliRunner().invoke(cli, ['run', '--help']); assert r.exit_code == 0, r.output; "
            "assert '--source' in r.output and '--stats-json' in r.output; "
            "bad = [m for m in ('onnxruntime', 'tensorrt', 'torch', 'cv2') if m in sys.modules]; "
            "assert not bad, bad")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr


def test_run_works_where_torch_cannot_be_imported(tiny_onnx, tmp_path):
    """The runtime ships without PyTorch: block torch, train and export, translate a video."""
    src = write_video(tmp_path / "v.mp4", n=5)
    code = ("import sys\n"
            "for m in ('torch', 'train', 'export'): sys.modules[m] = None\n"
            "from pix2pix_edge.runtime.cli import main\n"
            f"main(['run', {str(tiny_onnx)!r}, '--source', {src!r}, '--output', "
            f"{str(tmp_path / 'o.mp4')!r}])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert count_frames(tmp_path / "o.mp4") == 5


@pytest.mark.parametrize("signame,code", [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_signal_ends_a_run_with_a_summary_and_a_playable_file(tiny_onnx, tmp_path, signame,
                                                                 code):
    """A real signal to a real `pix2pix run` process translating a looping video: Ctrl-C, a
    service manager's or `docker stop`'s SIGTERM, a closed SSH session's SIGHUP. Each finishes
    the frame, closes the mp4 properly (it used to lose its index: 0 playable frames) and exits
    with 128 + the signal (issue 21.6)."""
    import signal
    import time

    src = write_video(tmp_path / "v.mp4", n=10)
    out, js = tmp_path / "o.mp4", tmp_path / "stats.json"
    proc = subprocess.Popen([sys.executable, "-c", "from pix2pix_edge.runtime.cli import main; main()", "run",
                             str(tiny_onnx), "--source", src, "--loop", "--output", str(out),
                             "--stats-json", str(js)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stderr.readline().startswith("model ")    # the model is loaded
        deadline = time.time() + 30
        while (not list(tmp_path.glob(".o.mp4.pid*")) and time.time() < deadline
               and proc.poll() is None):
            time.sleep(0.05)                # the output is opened just before the frame loop
        time.sleep(1.0)                     # frames are being written
        proc.send_signal(getattr(signal, signame))
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()                         # never leave a looping run behind
    assert proc.returncode == code, stderr + stdout
    assert "Traceback" not in stderr and "(interrupt," in stdout
    written = json.loads(js.read_text())["frames_out"]
    assert written > 0 and count_frames(out) == written    # flushed: every frame is in the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4", "stats.json", "v.mp4"]


def _digest(path) -> bytes:
    import hashlib
    return hashlib.sha256(path.read_bytes()).digest()


def test_an_output_that_is_an_input_is_refused(tiny_onnx, tmp_path):
    """Issue 21.5: `--output v.mp4` with `--source v.mp4` turned a 1440-frame video into 32
    frames; an image folder or image written over itself and --stats-json over the model went
    the same way. Every spelling of an input is refused (exit 3) and the input is untouched."""
    video = tmp_path / "v.mp4"
    write_video(video, n=12)
    (tmp_path / "link.mp4").symlink_to(video)
    os.link(video, tmp_path / "hard.mp4")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("one", "two"):
        cv2.imwrite(str(photos / f"{name}.png"), np.full((40, 70, 3), 90, np.uint8))
    model = tmp_path / "m.onnx"
    model.write_bytes(tiny_onnx.read_bytes())
    before = {p: _digest(p) for p in (video, photos / "one.png", photos / "two.png", model)}
    cases = [
        (video, ["--output", video]), (video, ["--output", tmp_path / "link.mp4"]),
        (video, ["--output", tmp_path / "hard.mp4"]), (video, ["--output", f"file://{video}"]),
        (photos, ["--output", photos]), (photos, ["--output", f"{photos}/%03d.png"]),
        (f"{photos}/*.png", ["--output", tmp_path / "photos" / ".." / "photos"]),
        (photos / "one.png", ["--output", photos / "one.png"]),
        (photos / "one.png", ["--output", photos]),
        (video, ["--headless", "--stats-json", model]),
        (video, ["--headless", "--stats-json", video]),
    ]
    for source, args in cases:
        r = invoke(model, "--source", source, *args)
        assert r.exit_code == EXIT_BAD_INPUT, (source, args, r.output)
        line = error_line(r)
        assert "would destroy it" in line or "would replace them" in line, line
    assert {p: _digest(p) for p in before} == before
    assert count_frames(video) == 12


def test_an_existing_output_is_replaced_only_by_a_whole_file(tiny_onnx, tmp_path):
    """Files are written under a temporary name and renamed when whole: a second run replaces
    the first one's video; a run that fails leaves the old file as it was, and no temporary."""
    src = write_video(tmp_path / "v.mp4", n=8)
    out = tmp_path / "out.mp4"
    assert invoke(tiny_onnx, "--source", src, "--output", out).exit_code == 0
    assert count_frames(out) == 8
    r = invoke(tiny_onnx, "--source", src, "--output", out, "--max-frames", "3")
    assert r.exit_code == 0 and count_frames(out) == 3
    before = _digest(out)
    r = invoke(tiny_onnx, "--source", src, "--output", out, "--size", "48")   # the model refuses
    assert r.exit_code != 0 and _digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "v.mp4"]


def test_an_unreadable_image_is_skipped_with_a_warning(tiny_onnx, tmp_path):
    """Issue 21.9: one bad image in a folder aborted the run and the frames already translated
    were not written. It is skipped, named in a warning and in the summary."""
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(6):
        cv2.imwrite(str(src / f"{i:02d}.png"), np.full((40, 70, 3), 20 * i, np.uint8))
    (src / "03.png").write_bytes(b"garbage, not a PNG")
    r = invoke(tiny_onnx, "--source", src, "--output", tmp_path / "out", "--stats-json",
               tmp_path / "s.json")
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(tmp_path / "out")) == ["00.png", "01.png", "02.png", "04.png", "05.png"]
    assert "warning: skipped cannot read image" in r.output and "03.png" in r.output
    assert "frames: 5 in, 5 out, 0 dropped, 1 unreadable skipped" in r.output
    skipped = json.loads((tmp_path / "s.json").read_text())["skipped"]
    assert [s["path"] for s in skipped] == [str(src / "03.png")]
    (src / "00.png").write_bytes(b"")
    r = invoke(tiny_onnx, "--source", src / "00.png", "--headless")
    assert r.exit_code == EXIT_BAD_INPUT and "cannot read image" in error_line(r)


def test_a_full_disk_ends_the_run_with_one_line_and_keeps_the_old_file(tiny_onnx, tmp_path,
                                                                        small_disk):
    """Issue 21.7: a full disk during `run` printed "300 in, 300 out", exit 0, and left a file
    without its index. Now: one line naming the disk and the file, exit 1, the earlier output
    as it was, no temporary left (a real 16 KiB tmpfs)."""
    disk = small_disk(16)
    rng = np.random.default_rng(0)
    src = tmp_path / "noise.mp4"
    wr = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 24, (320, 240))
    for _ in range(300):
        wr.write(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    wr.release()
    out = disk / "out.mp4"
    assert invoke(tiny_onnx, "--source", src, "--output", out, "--max-frames", "5").exit_code == 0
    before = _digest(out)
    r = invoke(tiny_onnx, "--source", src, "--output", out)
    assert r.exit_code == 1, r.output
    assert error_line(r).startswith(f"Error: no space left on device: {out}")
    assert "300 out" not in r.output
    assert _digest(out) == before and count_frames(out) == 5
    assert sorted(p.name for p in disk.iterdir()) == ["out.mp4"]

    r = invoke(tiny_onnx, "--source", src, "--output", disk / "frames")   # images: one by one
    assert r.exit_code == 1 and "no space left on device" in error_line(r)
    assert not [p for p in (disk / "frames").iterdir() if p.name.startswith(".")]


def test_a_decompression_bomb_is_refused_by_run_in_one_line(tiny_onnx, tmp_path):
    """Issue 21.3: `pix2pix run` decoded a 109 KB 30000x30000 PNG (5.4 GB, 24 s). The same
    pixel limit as training: refused from the header, one line, exit 3."""
    from tests.images import bomb_png

    bomb_png(tmp_path / "bomb.png", 30000, 30000)
    r = invoke(tiny_onnx, "--source", tmp_path / "bomb.png", "--headless")
    assert r.exit_code == EXIT_BAD_INPUT, r.output
    assert "900,000,000 pixels, more than the 67,108,864" in error_line(r)
