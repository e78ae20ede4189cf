"""The browser view (--output http://...): plain HTTP clients against a real server, the CLI in a
real process, and a real headless Chromium that watches the page (skipped without Chromium)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import EXIT_INTERRUPTED, EXIT_UNAVAILABLE, BadInput, Unavailable
from pix2pix_edge.runtime.video import Frame, FrameMeta, has_gstreamer, open_sink, open_source
from pix2pix_edge.runtime.web import WebSink, parse_web_uri
from tests.slow_model import SleepyBackend

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver"


def frame_image(i: int, w: int = 160, h: int = 120) -> np.ndarray:
    img = np.full((h, w, 3), (i * 37 % 256, 90, 200), np.uint8)
    cv2.putText(img, str(i), (10, h - 20), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
    return img


class Feeder:
    """Writes numbered frames into a sink at ``fps`` from a thread, timing every write()."""

    def __init__(self, sink, fps: float = 50.0, make=frame_image):
        self.sink, self.fps, self.make = sink, fps, make
        self.stop = threading.Event()
        self.write_s: list[float] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        i = 0
        while not self.stop.is_set():
            img = self.make(i)
            f = Frame(img, i)
            t0 = time.perf_counter()
            self.sink.write(img[:, : img.shape[1] // 2].copy(), FrameMeta(f, f.t_capture))
            self.write_s.append(time.perf_counter() - t0)
            i += 1
            self.stop.wait(1.0 / self.fps)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def sink():
    s = WebSink("http://127.0.0.1:0/", max_viewers=2, send_timeout=1.0)
    yield s
    s.close()


def request(sink, method, path, timeout=5.0):
    c = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=timeout)
    c.request(method, path)
    r = c.getresponse()
    body = r.read() if method != "HEAD" else b""
    c.close()
    return r, body


def open_stream(sink, path="/stream.mjpg", rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(("127.0.0.1", sink.port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return s


def read_head(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def read_jpegs(s: socket.socket, n: int) -> list[np.ndarray]:
    """Read ``n`` parts of a multipart MJPEG stream and decode them."""
    buf = b""
    out = []
    while len(out) < n:
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, buf = buf.split(b"\r\n\r\n", 1)
        length = int([ln.split(b":")[1] for ln in head.split(b"\r\n")
                      if ln.lower().startswith(b"content-length")][0])
        while len(buf) < length + 2:
            buf += s.recv(65536)
        out.append(cv2.imdecode(np.frombuffer(buf[:length], np.uint8), cv2.IMREAD_COLOR))
        buf = buf[length + 2:]
    return out


def wait_until(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


# ---------------------------------------------------------------------------- parsing, binding
def test_uri_defaults_to_loopback():
    assert parse_web_uri("http://:8090/") == ("127.0.0.1", 8090)
    assert parse_web_uri("http://0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_web_uri("http://127.0.0.1/") == ("127.0.0.1", 8090)
    with pytest.raises(BadInput, match="only host and port"):
        parse_web_uri("http://127.0.0.1:8090/etc")
    with pytest.raises(BadInput, match="port"):
        parse_web_uri("http://127.0.0.1:99999/")


def test_binds_loopback_only(sink):
    assert sink.host == "127.0.0.1" and sink.loopback_only
    assert sink.uri == f"http://127.0.0.1:{sink.port}/"


def test_open_sink_dispatches_http():
    s = open_sink("http://127.0.0.1:0/")
    try:
        assert isinstance(s, WebSink)
    finally:
        s.close()


# ---------------------------------------------------------------------------- what is served
def test_page_stats_and_stream(sink):
    with Feeder(sink):
        r, body = request(sink, "GET", "/")
        assert r.status == 200 and r.getheader("Content-Type").startswith("text/html")
        assert b"/stream.mjpg" in body and b"/stats.json" in body and b"input | output" in body
        assert wait_until(lambda: sink.stats()["frames"] > 3)
        r, body = request(sink, "GET", "/stats.json")
        st = json.loads(body)
        assert r.status == 200 and st["frames"] > 3 and st["fps"] > 0
        assert st["latency_ms"] is not None and st["max_viewers"] == 2
        assert st["output_size"] == [80, 120] and st["has_input"]

        s = open_stream(sink)
        head = read_head(s)
        assert b"200 OK" in head and b"multipart/x-mixed-replace" in head
        a, b = read_jpegs(s, 2)
        assert a.shape == (120, 80, 3) and b.shape == (120, 80, 3)
        assert not np.array_equal(a, b)          # frames change
        s.close()

        s = open_stream(sink, "/stream.mjpg?view=both")
        read_head(s)
        (both,) = read_jpegs(s, 1)
        assert both.shape == (120, 160 + 80, 3)   # input | output side by side
        s.close()


@pytest.mark.parametrize("path", ["/favicon.ico", "/etc/passwd", "/../../etc/passwd",
                                  "/stream.mjpg/x", "/index.htm", "/%2e%2e/x",
                                  "/stats.json/", "http://evil/"])
def test_other_paths_are_404(sink, path):
    r, _ = request(sink, "GET", path)
    assert r.status == 404


def test_bad_view_is_400(sink):
    r, _ = request(sink, "GET", "/stream.mjpg?view=secret")
    assert r.status == 400


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW"])
def test_other_methods_are_405(sink, method):
    r, _ = request(sink, method, "/")
    assert r.status == 405 and r.getheader("Allow") == "GET"


def test_viewer_limit_503(sink):
    with Feeder(sink):
        a, b = open_stream(sink), open_stream(sink)
        assert b"200 OK" in read_head(a) and b"200 OK" in read_head(b)
        assert wait_until(lambda: sink.viewers == 2)
        r, body = request(sink, "GET", "/stream.mjpg")
        assert r.status == 503 and b"at most 2 viewers" in body
        r, _ = request(sink, "GET", "/")                 # the page still loads
        assert r.status == 200
        a.close()
        assert wait_until(lambda: sink.viewers == 1)     # the slot comes back
        c = open_stream(sink)
        assert b"200 OK" in read_head(c)
        b.close()
        c.close()


# ---------------------------------------------------------------------------- never slowed
def big_noise(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)   # ~ 300 kB JPEGs


def test_stalled_viewer_never_blocks_writes_and_is_dropped():
    s = WebSink("http://127.0.0.1:0/", max_viewers=2, send_timeout=1.5)
    try:
        with Feeder(s, fps=40, make=big_noise) as feed:
            stalled = open_stream(s, rcvbuf=4096)         # asks for the stream, never reads
            assert wait_until(lambda: s.viewers == 1)
            time.sleep(1.0)
            # The server blocked on the full socket and gave up on it after send_timeout.
            assert wait_until(lambda: s.viewers == 0, timeout=6)
            stalled.close()
        assert len(feed.write_s) > 40
        assert max(feed.write_s) < 0.05, max(feed.write_s)   # write() never waited for a viewer
    finally:
        s.close()


def _pipeline_with_viewers(backend, video, stall: bool, frames: int):
    """One run of ``frames`` frames of ``video`` into a WebSink; with ``stall`` three viewers
    asked for the stream and stopped reading first (their sockets full). Returns the stats."""
    from pix2pix_edge.runtime.pipeline import PipelineOptions, run_pipeline

    s = WebSink("http://127.0.0.1:0/", max_viewers=3, send_timeout=60)
    socks = [open_stream(s, rcvbuf=4096) for _ in range(3)] if stall else []
    try:
        if stall:
            assert wait_until(lambda: s.viewers == 3)
            with Feeder(s, fps=20, make=big_noise):   # ~300 kB JPEGs fill the sockets
                time.sleep(1.0)
        seen = []
        opt = PipelineOptions(max_frames=frames, warmup=1,
                              on_frame=lambda f, out: seen.append(s.viewers))
        with open_source(str(video)) as src:
            st = run_pipeline(backend, src, s, opt)
        assert st.frames_out == frames
        if stall:
            assert min(seen) == 3        # connected all along, never reading
        return st
    finally:
        for k in socks:
            k.close()
        s.close()


def test_stalled_viewers_do_not_slow_the_pipeline(real_video):
    """A model that takes 10 ms a frame (sleeping, so the machine's load does not matter): the
    pipeline's FPS with three stalled viewers is the FPS without them."""
    be = SleepyBackend(10.0)
    fps = {False: [], True: []}
    for _ in range(2):
        for stall in (False, True):
            fps[stall].append(_pipeline_with_viewers(be, real_video, stall, 100).steady_fps())
    assert min(fps[False]) > 50, fps                       # the model's pace, ~90 FPS
    assert max(fps[True]) >= 0.8 * max(fps[False]), fps


def test_stalled_viewers_never_block_the_output_stage(tiny_onnx, real_video):
    """The real model and video: with stalled viewers, writing a frame to the sink stays a
    reference swap (the output stage never waits for a socket)."""
    from pix2pix_edge.runtime.backends import open_backend

    be = open_backend(str(tiny_onnx), "onnxruntime", threads=1)
    try:
        st = _pipeline_with_viewers(be, real_video, True, 300)
    finally:
        be.close()
    assert st.stage("output")["p50_ms"] < 1.0 and st.stage("output")["max_ms"] < 500, \
        st.stage("output")


# ---------------------------------------------------------------------------- closing
def test_close_ends_streams_and_frees_the_port():
    s = WebSink("http://127.0.0.1:0/")
    port = s.port
    with Feeder(s):
        k = open_stream(s)
        read_head(k)
        read_jpegs(k, 1)
        stalled = open_stream(s, rcvbuf=4096)
        assert wait_until(lambda: s.viewers == 2)
        t0 = time.monotonic()
        s.close()
        assert time.monotonic() - t0 < 3.0
    k.settimeout(3)
    data = b"x"
    while data:                                  # the server closed the stream: EOF
        data = k.recv(65536)
    k.close()
    stalled.close()
    again = WebSink(f"http://127.0.0.1:{port}/")   # the port is free again (no listener left)
    again.close()


def test_end_of_input_closes_streams(tiny_onnx, tmp_path):
    from pix2pix_edge.runtime.backends import open_backend
    from pix2pix_edge.runtime.pipeline import run_pipeline

    video = tmp_path / "short.avi"
    wr = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 24, (96, 64))
    for i in range(40):
        wr.write(np.full((64, 96, 3), (i * 6, 80, 160), np.uint8))
    wr.release()
    s = WebSink("http://127.0.0.1:0/")
    port = s.port
    k = open_stream(s)
    assert b"200 OK" in read_head(k)
    be = open_backend(str(tiny_onnx), "onnxruntime", threads=1)
    try:
        with open_source(str(video)) as src:
            st = run_pipeline(be, src, s)
    finally:
        be.close()
    assert st.stopped_by == "end" and st.frames_out == 40 and s.frames == 40
    k.settimeout(3)
    got = b""
    while True:                                   # some frames, then EOF: the stream ended
        chunk = k.recv(65536)
        if not chunk:
            break
        got += chunk
    assert got.count(b"Content-Type: image/jpeg") >= 1
    k.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)   # nobody listens any more


def test_idle_connection_is_closed():
    s = WebSink("http://127.0.0.1:0/", request_timeout=0.5)
    try:
        k = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        t0 = time.monotonic()
        assert k.recv(100) == b""                 # sent nothing: the server hangs up
        assert time.monotonic() - t0 < 4
        k.close()
    finally:
        s.close()


def test_port_in_use_is_one_line_error(tiny_onnx, real_video):
    hold = socket.socket()
    hold.bind(("127.0.0.1", 0))
    hold.listen(1)
    port = hold.getsockname()[1]
    try:
        with pytest.raises(Unavailable, match="already in use"):
            WebSink(f"http://127.0.0.1:{port}/")
        r = CliRunner().invoke(cli, ["run", str(tiny_onnx), "--source", str(real_video),
                                     "--output", f"http://127.0.0.1:{port}/"])
        assert r.exit_code == EXIT_UNAVAILABLE, r.output
        lines = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
        assert len(lines) == 1 and f"port {port}" in lines[0] and "already in use" in lines[0]
        assert "Traceback" not in r.output
    finally:
        hold.close()


def test_rtp_without_gstreamer_says_so(tiny_onnx, real_video):
    if has_gstreamer():
        pytest.skip("this OpenCV has GStreamer: rtp:// would really send")
    with pytest.raises(Unavailable, match="GStreamer"):
        open_sink("rtp://127.0.0.1:5004", size=(64, 64), fps=24)
    r = CliRunner().invoke(cli, ["run", str(tiny_onnx), "--source", str(real_video),
                                 "--output", "rtp://127.0.0.1:5004", "--max-frames", "2"])
    assert r.exit_code == EXIT_UNAVAILABLE, r.output
    lines = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and "GStreamer" in lines[0], r.output


# ---------------------------------------------------------------------------- the CLI, live
def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_run(model, video, port, *extra, output=None):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "pix2pix_edge.runtime.cli", "run", str(model), "--source",
           str(video), "--output", output or f"http://127.0.0.1:{port}/", "--realtime",
           "--threads", "1", *extra]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO,
                         text=True)
    line = p.stderr.readline()
    while line and "watch at" not in line:
        line = p.stderr.readline()
    assert "watch at" in line, p.communicate(timeout=30)
    return p


def test_cli_serves_until_ctrl_c_then_frees_the_port(tiny_onnx, real_video):
    port = free_port()
    p = start_run(tiny_onnx, real_video, port)
    try:
        conn_ok = wait_until(lambda: _stats(port) is not None and _stats(port)["frames"] > 2, 30)
        assert conn_ok
        k = socket.create_connection(("127.0.0.1", port), timeout=5)
        k.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in read_head(k)
        read_jpegs(k, 2)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        assert p.returncode == EXIT_INTERRUPTED, err
        assert "Traceback" not in err
        k.settimeout(3)
        while k.recv(65536):                      # the stream ended
            pass
        k.close()
        again = WebSink(f"http://127.0.0.1:{port}/")   # no listener left on the port
        again.close()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def _stats(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/stats.json")
        d = json.loads(c.getresponse().read())
        c.close()
        return d
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------- a real browser
def chromium_driver():
    if CHROMIUM is None or not os.path.exists(CHROMEDRIVER):
        pytest.skip("headless Chromium not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed "
                                    "(pip install 'pix2pix-edge[dev]')")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="pix2pix-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=900,700"):
        opts.add_argument(flag)
    # An explicit driver path: selenium-manager never runs (it would try to download one).
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    return driver, profile


def test_browser_sees_frames_change_and_the_toggle(tiny_onnx, real_video, tmp_path):
    driver, profile = chromium_driver()
    port = free_port()
    p = start_run(tiny_onnx, real_video, port, "--loop")
    try:
        driver.set_page_load_timeout(30)
        driver.get(f"http://127.0.0.1:{port}/")
        js_w = "return document.getElementById('stream').naturalWidth"
        js_frames = "return Number(document.getElementById('stats').dataset.frames)"
        assert wait_until(lambda: driver.execute_script(js_w) > 0, 30), "no frame shown"
        out_w = driver.execute_script(js_w)
        assert out_w == 360                                           # the output alone
        driver.find_element("id", "both").click()                     # input | output
        assert wait_until(lambda: driver.execute_script(js_w) == out_w + 640, 30)
        assert wait_until(lambda: driver.execute_script(js_frames) > 0, 30)   # stats polled
        img = driver.find_element("id", "stream")
        shots, frames = [], []
        for _ in range(2):
            frames.append(driver.execute_script(js_frames))
            shots.append(img.screenshot_as_png)
            time.sleep(1.5)
        frames.append(driver.execute_script(js_frames))
        a, b = (cv2.imdecode(np.frombuffer(s, np.uint8), cv2.IMREAD_COLOR) for s in shots)
        assert a.shape == b.shape and a.shape[0] > 10
        assert np.abs(a.astype(int) - b.astype(int)).mean() > 2.0   # the picture moved
        text = driver.find_element("id", "stats").text
        assert frames[2] > frames[0] > 0, (frames, text)              # the counter runs
        assert "FPS" in text, text
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# ---------------------------------------------------------------------------- access token
def _status(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    status = r.status
    if path.startswith("/stream.mjpg") and status == 200:
        r.close()                           # a stream never ends by itself
    else:
        r.read()
    c.close()
    return status


def test_a_view_served_to_the_network_needs_its_token():
    """Issue 21.4: `--output http://0.0.0.0:PORT/` served anyone on the network. Such a view
    gets a random token; every path without it (or with a wrong one) is 403."""
    s = WebSink("http://0.0.0.0:0/")
    try:
        assert not s.loopback_only and len(s.token) >= 16
        assert s.uri == f"http://0.0.0.0:{s.port}/?token={s.token}"
        with Feeder(s):
            for path in ("/", "/stats.json", "/stream.mjpg", "/stream.mjpg?view=both", "/nope"):
                sep = "&" if "?" in path else "?"
                assert _status(s.port, path) == 403
                assert _status(s.port, f"{path}{sep}token={s.token[:-1]}x") == 403
            assert _status(s.port, f"/?token={s.token}") == 200
            assert _status(s.port, f"/stats.json?token={s.token}") == 200
            assert _status(s.port, f"/stream.mjpg?view=both&token={s.token}") == 200
            assert _status(s.port, f"/nope?token={s.token}") == 404
    finally:
        s.close()


def test_a_token_can_be_given_and_must_be_long_enough():
    s = WebSink("http://127.0.0.1:0/?token=my-secret_1")
    try:
        assert s.token == "my-secret_1" and s.uri.endswith("/?token=my-secret_1")
        assert _status(s.port, "/stats.json") == 403
        assert _status(s.port, "/stats.json?token=my-secret_1") == 200
    finally:
        s.close()
    loop = WebSink("http://127.0.0.1:0/")
    loop.close()
    assert loop.token is None and "token" not in loop.uri
    for bad in ("short", "has space!", "x" * 129):
        with pytest.raises(BadInput, match="token must be 8 to 128 characters"):
            WebSink(f"http://127.0.0.1:0/?token={bad}")
    with pytest.raises(BadInput, match="only host and port"):
        parse_web_uri("http://127.0.0.1:0/?tokn=abcdefgh")


def test_the_cli_prints_the_link_with_its_token_and_a_warning(tiny_onnx, real_video):
    port = free_port()
    p = start_run(tiny_onnx, real_video, port, output=f"http://0.0.0.0:{port}/")
    try:
        err = p.stderr.readline()          # the line after "watch at http://0.0.0.0:...?token="
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "WARNING: this view is served to every machine that can reach 0.0.0.0" in err
    assert "plain HTTP" in err and "ssh -L" in err


def test_the_page_passes_its_token_on_to_the_stream_and_the_stats(tiny_onnx, real_video):
    """The page opened with ?token= in a real browser shows frames and live stats."""
    driver, profile = chromium_driver()
    port = free_port()
    token = "tok-123456789"
    p = start_run(tiny_onnx, real_video, port, "--loop",
                  output=f"http://127.0.0.1:{port}/?token={token}")
    try:
        driver.set_page_load_timeout(30)
        driver.get(f"http://127.0.0.1:{port}/?token={token}")
        assert wait_until(lambda: driver.execute_script(
            "return document.getElementById('stream').naturalWidth") > 0, 30), "no frame shown"
        assert wait_until(lambda: driver.execute_script(
            "return Number(document.getElementById('stats').dataset.frames)") > 0, 30)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6(), reason="no IPv6 on this machine")
def test_ipv6_hosts_are_served_not_called_unknown():
    """Issue 21, item 12: `http://[::]:P/` was "unknown host '::'" (the server was IPv4 only).
    [::1] is loopback; [::] is every interface (IPv4 too, on Linux), so it gets a token."""
    s = WebSink("http://[::1]:0/")
    try:
        assert s.loopback_only and s.uri == f"http://[::1]:{s.port}/"
        with Feeder(s):
            c = http.client.HTTPConnection("::1", s.port, timeout=5)
            c.request("GET", "/stats.json")
            assert c.getresponse().status == 200
            c.close()
    finally:
        s.close()
    s = WebSink("http://[::]:0/")
    try:
        assert not s.loopback_only and s.token and s.uri.startswith(f"http://[::]:{s.port}/?token=")
        with Feeder(s):
            assert _status(s.port, f"/stats.json?token={s.token}") == 200   # over IPv4
    finally:
        s.close()
