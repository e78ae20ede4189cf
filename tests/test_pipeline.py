"""The threaded frame loop with a real ONNX Runtime session on real decoded / encoded video."""

from __future__ import annotations

import os
import signal
import threading
import time

import cv2
import numpy as np
import pytest

from pix2pix_edge.runtime.backends import open_backend
from pix2pix_edge.runtime.errors import BadInput, Pix2PixError
from pix2pix_edge.runtime.frames import Postprocessor, Preprocessor, plan
from pix2pix_edge.runtime.pipeline import STAGES, PipelineOptions, run_pipeline
from pix2pix_edge.runtime.video import DisplaySink, Frame, Sink, Source, open_source


def write_video(path, n=30, w=96, h=64, fps=24):
    """A short real video whose frames differ (moving gradient), so order and content show."""
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert wr.isOpened()
    y, x = np.mgrid[0:h, 0:w]
    for i in range(n):
        img = np.stack([(x * 3 + i * 7) % 256, (y * 4 + i * 5) % 256, (x + y + i * 11) % 256], -1)
        wr.write(img.astype(np.uint8))
    wr.release()
    return path


def decode_all(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    return frames


def translate(backend, source, output=None, *, loop=False, **options):
    """Open ``source`` (a URI) as a caller does, run the pipeline on it, close it."""
    if not isinstance(source, Source):
        with open_source(source, loop=loop) as src:
            return run_pipeline(backend, src, output, PipelineOptions(**options))
    return run_pipeline(backend, source, output, PipelineOptions(**options))


def pix2pix_threads():
    return [t for t in threading.enumerate() if t.name.startswith("pix2pix-")]


@pytest.fixture(scope="module")
def backend(tiny_onnx):
    be = open_backend(tiny_onnx, "onnxruntime", threads=1)
    yield be
    be.close()


def reference(backend, img, fit="crop"):
    """What the pipeline should produce for one frame, computed directly."""
    g = plan((img.shape[1], img.shape[0]), (64, 64), fit)
    return Postprocessor(g)(backend.infer(Preprocessor(g)(img)))


def test_video_to_video_keeps_every_frame_in_order(backend, tmp_path):
    src = write_video(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    pngs = tmp_path / "pngs"
    stats = translate(backend, str(src), str(out))
    assert stats.frames_in == stats.frames_out == 30 and stats.dropped == 0
    assert stats.stopped_by == "end" and not stats.live
    decoded = decode_all(out)
    assert len(decoded) == 30
    assert decoded[0].shape == (64, 64, 3)          # crop of a 96x64 frame for a square model
    # Content: lossless PNG run equals the direct computation on each input frame, in order.
    translate(backend, str(src), str(pngs))
    inputs = decode_all(src)
    for i, img in enumerate(inputs):
        got = cv2.imread(str(pngs / f"{i:06d}.png"))
        np.testing.assert_array_equal(got, reference(backend, img))
    # And the mp4 (lossy) is close to the same frames, not blank.
    err = np.mean([np.abs(d.astype(int) - reference(backend, s).astype(int)).mean()
                   for d, s in zip(decoded, inputs)])
    assert err < 8 and np.std(decoded[5]) > 1
    assert not pix2pix_threads()


def test_image_directory_to_image_directory(backend, tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    rng = np.random.default_rng(0)
    names = ["cat", "dog", "zebra"]
    for n in names:
        cv2.imwrite(str(src / f"{n}.jpg"), rng.integers(0, 255, (48, 80, 3), np.uint8))
    stats = translate(backend, str(src), str(dst), fit="letterbox")
    assert stats.frames_out == 3
    assert sorted(p.name for p in dst.iterdir()) == [f"{n}.png" for n in names]
    assert cv2.imread(str(dst / "dog.png")).shape == (48, 80, 3)   # letterbox: source size


def test_real_video_48_frames(backend, real_video, tmp_path):
    out = tmp_path / "bunny.mp4"
    stats = translate(backend, str(real_video), str(out), max_frames=48)
    assert stats.frames_in == stats.frames_out == 48 and stats.stopped_by == "max_frames"
    assert stats.source_size == (640, 360) and stats.output_size == (360, 360)
    frames = decode_all(out)
    assert len(frames) == 48 and frames[0].shape == (360, 360, 3)
    assert np.std(frames[40]) > 1


def test_stats_fields(backend, tmp_path):
    stats = translate(backend, str(write_video(tmp_path / "in.mp4", n=12)), None)
    d = stats.to_dict()
    for key in ("source", "output", "backend", "provider", "fit", "live", "source_size",
                "model_size", "output_size", "frames", "frames_in", "frames_out", "dropped",
                "elapsed_s", "fps", "steady_fps", "stopped_by", "stages", "latency"):
        assert key in d, key
    assert d["frames"] == 12 and d["backend"] == "onnxruntime"
    assert d["provider"] == "CPUExecutionProvider" and d["model_size"] == [64, 64]
    assert set(d["stages"]) == set(STAGES)
    for name in STAGES:
        s = d["stages"][name]
        assert s["n"] == 12 and 0 <= s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert d["latency"]["p50_ms"] >= d["stages"]["infer"]["p50_ms"]
    assert d["fps"] > 0 and d["elapsed_s"] > 0
    assert any("FPS" in line for line in stats.summary_lines())


class FastLiveSource(Source):
    """A test double for a camera (none exists here): a live source that produces frames far
    faster than the model consumes them, like a 1000 fps camera."""

    live = True

    def __init__(self, n=60, size=(96, 64)):
        self.uri, self.size, self.fps, self.n, self.i = "fake-camera", size, 1000.0, n, 0

    def read(self):
        if self.i >= self.n:
            return None
        time.sleep(0.001)
        img = np.full((self.size[1], self.size[0], 3), self.i % 256, np.uint8)
        self.i += 1
        return Frame(img, self.i - 1)


class SlowBackend:
    """The real tiny ORT session plus a delay: a model slower than the camera."""

    def __init__(self, inner, delay=0.02, fail_at=None, error=None):
        self.inner, self.delay, self.fail_at, self.error, self.calls = inner, delay, fail_at, error, 0
        self.info, self.name, self.provider = inner.info, inner.name, inner.provider

    def infer(self, batch):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise self.error
        time.sleep(self.delay)
        return self.inner.infer(batch)


def test_live_source_keeps_only_the_newest_frame(backend):
    seen = []
    stats = translate(SlowBackend(backend), FastLiveSource(60), None,
                         on_frame=lambda f, out: seen.append(f.index))
    assert stats.live and stats.frames_in == 60
    assert stats.dropped > 20                           # most frames were stale and dropped
    assert stats.frames_out + stats.dropped == stats.frames_in   # none lost otherwise
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert seen[-1] == 59                               # the newest frame made it


def test_file_source_never_drops_with_a_slow_model(backend, tmp_path):
    stats = translate(SlowBackend(backend, delay=0.01), str(write_video(tmp_path / "v.mp4", n=15)))
    assert stats.frames_out == 15 and stats.dropped == 0


def test_error_in_infer_stage_shuts_down_cleanly_and_flushes(backend, tmp_path):
    out = tmp_path / "out.mp4"
    written = []
    slow = SlowBackend(backend, delay=0.0, fail_at=6, error=RuntimeError("boom\nsecond line"))
    with pytest.raises(Pix2PixError) as e:
        translate(slow, str(write_video(tmp_path / "v.mp4")), str(out), warmup=0,
                     on_frame=lambda f, o: written.append(f.index))
    assert str(e.value) == "infer stage failed: RuntimeError: boom"
    assert type(e.value) is Pix2PixError and isinstance(e.value.__cause__, RuntimeError)
    assert not pix2pix_threads()
    assert written == [0, 1, 2, 3, 4]
    assert len(decode_all(out)) == 5                    # the file was flushed and is complete


def test_user_errors_from_a_worker_keep_their_class(backend, tmp_path):
    slow = SlowBackend(backend, fail_at=1, error=BadInput("model expects 1x3x64x64"))
    with pytest.raises(BadInput, match="model expects"):
        translate(slow, str(write_video(tmp_path / "v.mp4", n=5)), None, warmup=0)
    assert not pix2pix_threads()


def test_ctrl_c_and_callback_stop_cleanly(backend, tmp_path):
    src = str(write_video(tmp_path / "v.mp4"))
    out = tmp_path / "out.mp4"

    def interrupt(frame, img):
        if frame.index == 7:       # a real Ctrl-C: SIGINT to this process
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)        # the main thread handles it while this thread waits

    stats = translate(backend, src, str(out), on_frame=interrupt)
    assert stats.interrupted and 8 <= stats.frames_out <= 12
    assert len(decode_all(out)) == stats.frames_out and not pix2pix_threads()
    stats = translate(backend, src, None, on_frame=lambda f, o: f.index < 3)
    assert stats.stopped_by == "callback" and stats.frames_out == 4


def test_max_frames_and_loop(backend, tmp_path):
    src = str(write_video(tmp_path / "v.mp4", n=10))
    stats = translate(backend, src, None, loop=True, max_frames=25)
    assert stats.frames_out == 25 and stats.stopped_by == "max_frames"
    stats = translate(backend, src, None, max_frames=4)
    assert stats.frames_in == stats.frames_out == 4


class ScriptedWindow(DisplaySink):
    """Stands in for display://0, which needs a screen this machine does not have: only the two
    OpenCV window calls are replaced; it records what is shown and answers poll_key from a
    script {frames shown: key}. The window code it drives (side-by-side view, overlay, key
    handling, pause, snapshot) is DisplaySink's real one."""

    def __init__(self, keys: dict[int, str], paused_polls: int = 3, **options):
        self._setup("display://scripted", **options)
        self.shown, self.keys = [], keys
        self.polls_while_paused, self.paused_polls = 0, paused_polls
        self.thread = None

    def show(self, image):
        self.thread = threading.current_thread().name
        self.shown.append(image.copy())

    def poll_key(self, wait_ms=1):
        if wait_ms > 1:            # the pipeline polls with a longer wait only while paused
            self.polls_while_paused += 1
            return ord(" ") if self.polls_while_paused == self.paused_polls else -1
        key = self.keys.get(self.frames)
        return -1 if key is None else (27 if key == "esc" else ord(key))


@pytest.mark.parametrize("quit_key", ["q", "esc"])
def test_window_keys_snapshot_pause_and_quit(backend, tmp_path, quit_key):
    src = str(write_video(tmp_path / "v.mp4", n=30))
    said = []
    window = ScriptedWindow({2: "s", 3: " ", 5: quit_key}, snapshot_dir=tmp_path / "snaps",
                            log=said.append)
    stats = translate(backend, src, window)
    assert stats.stopped_by == "key" and stats.frames_out == window.frames == 5
    assert window.polls_while_paused == 3                       # space paused, space resumed
    assert window.thread == "MainThread"                         # GUI calls stay in one thread
    shown = window.shown[0]
    assert shown.shape == (64, 96 + 64, 3)            # input | output (the 64x64 centre crop)
    first = decode_all(src)[0]
    assert not np.array_equal(shown[:, :96], first)              # FPS / latency overlay drawn
    assert np.array_equal(shown[-8:, :96], first[-8:])           # under it: the camera frame
    assert (len(stats.snapshots) == 1 and said == [f"snapshot saved: {stats.snapshots[0]}"])
    snap = cv2.imread(stats.snapshots[0])
    assert np.array_equal(snap, window.shown[1])                 # the window as shown at 's'
    assert not pix2pix_threads()


class RecordingSink(Sink):
    """A sink that keeps what the pipeline hands it with each image (as a network sink would
    use it: the capture time for the live latency, the frame for its name)."""

    uri = "recording"

    def __init__(self):
        self.frames, self.got = 0, []

    def write(self, image, meta=None):
        self.got.append((image.shape, meta, time.perf_counter()))
        self.frames += 1


def test_every_output_frame_carries_its_capture_time_to_the_sink(backend, tmp_path):
    sink = RecordingSink()
    with open_source(str(write_video(tmp_path / "v.mp4", n=6))) as src:
        stats = run_pipeline(backend, src, sink, PipelineOptions(warmup=0))
    assert stats.frames_out == sink.frames == 6 and stats.output == "recording"
    assert [m.frame.index for _, m, _ in sink.got] == list(range(6))
    for shape, meta, t_write in sink.got:
        assert shape == (64, 64, 3) and meta.frame.image.shape == (64, 96, 3)
        assert meta.t_start <= meta.frame.t_capture < t_write     # file: decoding began first
        assert meta.infer_ms > 0 and meta.backend == "CPUExecutionProvider"
    latency = [(t - m.t_start) * 1e3 for _, m, t in sink.got]
    assert all(a <= b for a, b in zip(latency, stats.latency_ms))  # measured up to the write


def test_the_caller_opens_the_source(backend, tmp_path):
    with pytest.raises(TypeError, match="open_source"):
        run_pipeline(backend, str(write_video(tmp_path / "v.mp4", n=2)))
    with pytest.raises(BadInput, match="unknown fit 'zoom'"):
        translate(backend, str(write_video(tmp_path / "w.mp4", n=2)), fit="zoom")


@pytest.fixture
def http_server(tmp_path):
    """A real local HTTP server (the network-stream case: FFmpeg reads http:// like rtsp://)."""
    import functools
    import http.server

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()

    def stop():
        if thread.is_alive():
            srv.shutdown()
            srv.server_close()

    yield f"http://127.0.0.1:{srv.server_address[1]}", stop
    stop()


def test_http_stream_reconnects_then_a_dead_stream_ends_with_one_error_and_a_flushed_file(
        backend, tmp_path, http_server):
    from pix2pix_edge.runtime.errors import Unavailable
    from pix2pix_edge.runtime.video import open_source

    url, stop_server = http_server
    write_video(tmp_path / "cam.mp4", n=20)
    src = open_source(f"{url}/cam.mp4")
    assert src.live and src.size == (96, 64)
    src.retries, src.backoff = 2, 0.05          # the CLI waits 0.25 s doubling, 6 tries
    out, written = tmp_path / "out.mp4", []

    def on_frame(frame, img):
        written.append(frame.index)
        if src.reconnects >= 1 and len(written) >= 25:
            stop_server()                        # the stream dies for good

    with pytest.raises(Unavailable, match=r"lost stream .*could not reopen it after 2 tries"):
        run_pipeline(backend, src, str(out), PipelineOptions(on_frame=on_frame))
    assert src.reconnects >= 1 and len(written) >= 25
    assert len(decode_all(out)) == len(written)  # every translated frame is in the file
    assert not pix2pix_threads()
