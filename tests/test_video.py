"""Sources and sinks: real decode and encode with OpenCV's FFmpeg, real failures."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from pix2pix_edge.runtime.errors import BadInput, Unavailable
from pix2pix_edge.runtime.size import Size, parse_size, parse_sizes
from pix2pix_edge.runtime.video import (CaptureSource, DisplaySink, Frame, FrameMeta, ImageSink,
                                        NullSink, VideoFileSink, has_gstreamer, open_sink,
                                        open_source)
from tests.videos import count_frames


def write_video(path, n=30, w=96, h=64, fps=24):
    """A short real video: frame i is a flat colour that encodes i (so order can be checked)."""
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert wr.isOpened()
    for i in range(n):
        wr.write(np.full((h, w, 3), (i * 8 % 256, 128, 255 - i * 8 % 256), np.uint8))
    wr.release()
    return path


def test_video_file_source_delivers_every_frame_in_order(tmp_path):
    src = open_source(write_video(tmp_path / "v.mp4"))
    assert not src.live and src.size == (96, 64) and src.fps == pytest.approx(24)
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    src.close()
    assert len(frames) == 30
    assert [f.index for f in frames] == list(range(30))
    blue = [int(f.image[32, 48, 0]) for f in frames]
    assert all(abs(b - i * 8) <= 6 for i, b in enumerate(blue))     # the colour ramp, in order


def test_file_uri_and_loop(tmp_path):
    path = write_video(tmp_path / "v.mp4", n=10)
    src = open_source(f"file://{path}", loop=True)
    got = [src.read() for _ in range(25)]
    src.close()
    assert all(f is not None for f in got)
    assert got[24].index == 24


def test_image_directory_glob_and_single_image(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    for name in ("b", "a", "c"):
        cv2.imwrite(str(d / f"{name}.png"), np.full((20, 30, 3), 50, np.uint8))
    (d / "notes.txt").write_text("not an image")
    src = open_source(str(d))
    names = [f.name for f in iter(src.read, None)]
    assert names == ["a", "b", "c"]
    assert [f.name for f in iter(open_source(str(d / "*.png")).read, None)] == ["a", "b", "c"]
    one = open_source(str(d / "b.png"))
    assert one.size == (30, 20) and one.read().name == "b" and one.read() is None


def test_missing_and_non_video_files_fail_at_once(tmp_path):
    with pytest.raises(BadInput, match="source not found: .*nope.mp4"):
        open_source(str(tmp_path / "nope.mp4"))
    txt = tmp_path / "notes.txt"
    txt.write_text("hello " * 100)
    with pytest.raises(BadInput, match="not a video or image file"):
        open_source(str(txt))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(BadInput, match="cannot (open|decode) video .*junk.mp4"):
        open_source(str(junk))
    bad_png = tmp_path / "bad.png"
    bad_png.write_bytes(b"not a png")
    with pytest.raises(BadInput, match="cannot read image .*bad.png"):
        open_source(str(bad_png))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadInput, match="no images found"):
        open_source(str(empty))


@pytest.mark.parametrize("uri", ["/dev/video9", "9", "v4l2:///dev/video9"])
def test_absent_camera_fails_at_once(uri):
    if os.path.exists("/dev/video9"):
        pytest.skip("this machine has a /dev/video9")
    with pytest.raises(Unavailable, match="camera /dev/video9 not found"):
        open_source(uri)


@pytest.mark.skipif(has_gstreamer(), reason="this OpenCV has GStreamer")
def test_csi_and_gstreamer_need_gstreamer():
    with pytest.raises(Unavailable, match=r"csi://0 needs OpenCV built with GStreamer \(JetPack"):
        open_source("csi://0")
    with pytest.raises(Unavailable, match="GStreamer pipeline source needs OpenCV built with"):
        open_source("videotestsrc ! videoconvert ! appsink")
    with pytest.raises(BadInput, match="expected csi://N"):
        open_source("csi://front")


def test_live_source_reconnects_after_a_drop(tmp_path):
    """A 'stream' that ends is a disconnect: it is reopened and delivers again. The stream is a
    local file opened through FFmpeg like a network URL (no camera or server exists here)."""
    path = write_video(tmp_path / "cam.mp4", n=5)
    src = CaptureSource(str(path), "stream", str(path), retries=3, backoff=0.02)
    assert src.live
    got = [src.read() for _ in range(12)]      # 5 frames, drop, reopen, 5 frames, drop, ...
    assert all(f is not None for f in got) and src.reconnects == 2
    os.remove(path)                            # now the "camera" is gone for good
    with pytest.raises(Unavailable, match="lost stream .*could not reopen it after 3 tries"):
        for _ in range(10):
            src.read()
    src.close()


def test_video_sink_writes_exact_frame_count(tmp_path):
    out = tmp_path / "out.mp4"
    sink = open_sink(str(out), size=(96, 64), fps=24)
    assert isinstance(sink, VideoFileSink)
    for i in range(17):
        sink.write(np.full((64, 96, 3), i * 10, np.uint8))
    sink.write(np.zeros((32, 48, 3), np.uint8))     # another size: resized, not silently lost
    sink.close()
    sink.close()                                     # idempotent
    assert count_frames(out) == 18
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (96, 64)


def test_sink_errors(tmp_path, monkeypatch):
    with pytest.raises(BadInput, match="output directory .* does not exist"):
        open_sink(str(tmp_path / "no" / "out.mp4"), size=(96, 64), fps=24)
    with pytest.raises(BadInput, match="unknown container '.webm'"):
        open_sink(str(tmp_path / "out.webm"), size=(96, 64), fps=24)
    with pytest.raises(BadInput, match="cannot tell what output"):
        open_sink(str(tmp_path / "out.xyz"), size=(96, 64))
    # issue 21, item 12: an existing file or device without an extension is not a folder of
    # images (it was "File exists: /dev/full")
    (tmp_path / "plain").write_text("a file")
    for path in [str(tmp_path / "plain")] + (["/dev/full"] if os.path.exists("/dev/full") else []):
        with pytest.raises(BadInput, match=f"output {path} exists and is not a folder"):
            open_sink(path, size=(96, 64))
    with pytest.raises(Unavailable, match="not supported"):
        open_sink("rtsp://localhost:8554/out", size=(96, 64))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(Unavailable, match=r"cannot open display://0: .*use --headless"):
        open_sink("display://0")
    with pytest.raises(Unavailable):
        DisplaySink()


def test_image_and_null_sinks(tmp_path):
    d = ImageSink(str(tmp_path / "out"))
    img = np.zeros((8, 8, 3), np.uint8)
    d.write(img, FrameMeta(Frame(img, 0, name="x"), t_start=0.0))
    d.write(np.zeros((8, 8, 3), np.uint8))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["000001.png", "x.png"]
    pat = open_sink(str(tmp_path / "new" / "f%03d.jpg"))       # the directory is made
    pat.write(np.zeros((8, 8, 3), np.uint8))
    assert (tmp_path / "new" / "f000.jpg").is_file()
    with pytest.raises(BadInput, match="integer field"):
        open_sink(str(tmp_path / "other" / "f%s%s.png"))
    assert not (tmp_path / "other").exists()
    with pytest.raises(BadInput, match="output directory .* does not exist"):
        open_sink(str(tmp_path / "missing" / "one.png"))
    n = open_sink(None)
    assert isinstance(n, NullSink) and isinstance(open_sink("none"), NullSink)
    n.write(np.zeros((2, 2, 3), np.uint8))
    assert n.frames == 1


def test_unwritable_video_output_says_so_not_no_encoder(tmp_path):
    with pytest.raises(BadInput, match=r"^cannot write to /proc/x.mp4: not writable \(") as e:
        open_sink("/proc/x.mp4", size=(96, 64), fps=24)
    assert "encoder" not in str(e.value)
    with pytest.raises(BadInput, match="cannot write to /proc/x.png"):
        open_sink("/proc/x.png")
    (tmp_path / "out.mp4").mkdir()
    with pytest.raises(BadInput, match="is a directory; give a file name like out.mp4"):
        open_sink(str(tmp_path / "out.mp4"), size=(96, 64), fps=24)
    # A directory without write permission (sysfs refuses new files even to root).
    with pytest.raises(BadInput, match=r"cannot write to /sys/o.avi: not writable \(Permission"):
        open_sink("/sys/o.avi", size=(96, 64), fps=24)
    if os.geteuid() != 0:                   # root may write to a mode-500 directory
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(BadInput, match=r"locked/o.avi: not writable \(Permission denied"):
                open_sink(str(locked / "o.avi"), size=(96, 64), fps=24)
        finally:
            locked.chmod(0o700)
        done = tmp_path / "done.mp4"
        done.write_bytes(b"")
        done.chmod(0o444)
        with pytest.raises(BadInput, match="done.mp4: not writable .a read-only file"):
            open_sink(str(done), size=(96, 64), fps=24)


def test_parse_size_is_width_by_height():
    assert parse_size("640x480") == Size(640, 480) == (640, 480)
    s = parse_size(" 1280 X 720 ")
    assert (s.width, s.height, str(s)) == (1280, 720, "1280x720")
    assert parse_size("256") == Size(256, 256)
    assert parse_size(None) is None and parse_size("") is None
    assert parse_sizes("256, 512x256") == [(256, 256), (512, 256)]
    assert parse_sizes(None) == []
    for bad in ("wide", "640x", "x480", "0x10", "1x2x3", "640,480", "-5", "99999"):
        with pytest.raises(BadInput, match=r"^bad size --source-size '") as e:
            parse_size(bad, "--source-size")
        assert "\n" not in str(e.value)
    with pytest.raises(BadInput, match="WIDTHxHEIGHT .width x height. or N for NxN"):
        parse_size("wide")


def test_images_are_read_as_training_reads_them_16_bit_scaled(tmp_path):
    """Issue 21.8: one reader for training and the runtime (runtime/contract.read_rgb); a
    16-bit greyscale PNG is scaled to 8 bits (65535 -> 255), not clipped to white."""
    from pix2pix_edge.runtime.contract import read_rgb
    from tests.images import png16

    ramp = np.linspace(0, 65535, 96 * 64).round().astype(np.uint16).reshape(64, 96)
    png16(tmp_path / "g16.png", ramp)
    rgb = np.asarray(read_rgb(tmp_path / "g16.png"))
    expected = np.round(ramp / 257.0).astype(np.uint8)
    assert np.abs(rgb[..., 0].astype(int) - expected).max() <= 1
    assert (rgb[..., 0] == 255).mean() < 0.01                   # was 99.5 % white in training
    with open_source(str(tmp_path / "g16.png")) as src:
        frame = src.read().image
    assert np.array_equal(frame[..., ::-1], rgb)                # the runtime: same pixels (BGR)


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    """Issue 21.3: a small PNG that declares 8200 x 8200 (just over MAX_PIXELS; 30000 x 30000
    took 5.4 GB and 24 s) is refused from its header in one line, fast, and PIL's
    DecompressionBombWarning never leaks."""
    import time
    import warnings

    from pix2pix_edge.runtime.contract import MAX_PIXELS, UnreadableFile, read_rgb
    from tests.images import bomb_png

    assert 8200 * 8200 > MAX_PIXELS >= 8192 * 8192
    bomb = tmp_path / "bomb.png"
    assert bomb_png(bomb, 8200, 8200) < 20_000
    bomb_png(tmp_path / "huge.png", 9800, 9800)        # over PIL's own warning threshold
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for path in (bomb, tmp_path / "huge.png"):
            with pytest.raises(UnreadableFile, match=r" pixels, more than the 67,108,864 \(8192x8192\)") as e:
                read_rgb(path)
            assert "\n" not in str(e.value)
        with pytest.raises(BadInput, match=r"bomb.png: 8200x8200 is 67,240,000 pixels"):
            open_source(str(bomb))
    assert time.perf_counter() - t0 < 2.0


def test_a_stream_server_that_sends_garbage_is_not_called_unreachable(capfd):
    """Issue 21, item 12: a reachable server sending garbage was reported "absent or not
    reachable", with FFmpeg's own lines on stderr. Now: a server that answers with no video is
    bad input (3); a port where nothing answers is unavailable (5); FFmpeg stays quiet."""
    import http.server
    import socket
    import threading

    class Garbage(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = bytes(range(256)) * 64
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/cam.mp4"
        capfd.readouterr()
        with pytest.raises(BadInput, match=r"127.0.0.1 port \d+ answers, but with nothing FFmpeg "
                                           r"can decode as video"):
            open_source(url)
    finally:
        srv.shutdown()
        srv.server_close()
    with socket.socket() as s:          # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Unavailable, match=rf"nothing answers at 127.0.0.1 port {port}"):
        open_source(f"http://127.0.0.1:{port}/cam.mp4")
    err = capfd.readouterr().err
    assert "@ 0x" not in err and "moov atom" not in err and "Connection" not in err, err
