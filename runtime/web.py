"""``--output http://HOST:PORT/``: watch the translated stream in any browser (MJPEG over HTTP).

Standard library (http.server, threading) and OpenCV's JPEG encoder only; no plugin, no
JavaScript framework. Three things are served, everything else is 404 and every method but GET
is 405::

    /               a small page: the live picture, an "input | output" toggle, FPS and latency
    /stream.mjpg    the stream, multipart/x-mixed-replace JPEGs (?view=output or ?view=both)
    /stats.json     frames, FPS, capture-to-output latency and viewers (the page polls it)

Safe by default: ``http://:8090/`` and ``http://127.0.0.1:8090/`` bind to loopback; another
machine can watch only when the user names a reachable address (``http://0.0.0.0:8090/``), and
then only with an access token: a random one (``secrets.token_urlsafe``) unless the URI gives
its own (``http://0.0.0.0:8090/?token=...``, also accepted on loopback). Every request must then
carry ``?token=`` (the page passes it on to the stream and the stats; 403 without it); the
command prints the link with its token and warns that the view is plain HTTP for anyone who
has that link. At most ``max_viewers`` streams at a time (503 after). The pipeline's ``write`` only swaps a
reference under a lock and never waits for a viewer: each viewer thread encodes (once per frame,
shared between viewers) and sends the newest frame when its socket has room, skipping the frames
it missed, at most ``max_fps`` (30) per second, so a slow, stalled or vanished viewer costs the
pipeline nothing and a fast pipeline does not spend its CPU on JPEGs nobody can see. A viewer whose socket accepts
nothing for ``send_timeout`` seconds is dropped, a client that sends no request within
``request_timeout`` seconds too. ``close()`` (end of input, Ctrl-C, errors) ends
every stream, closes every connection and frees the port.
"""

from __future__ import annotations

import collections
import errno
import hmac
import json
import re
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import cv2
import numpy as np

from pix2pix_edge.runtime.errors import BadInput, Unavailable
from pix2pix_edge.runtime.frames import side_by_side
from pix2pix_edge.runtime.run_options import DEFAULT_MAX_VIEWERS
from pix2pix_edge.runtime.uri import URI, host_port, parse_uri
from pix2pix_edge.runtime.video import FrameMeta, Sink

DEFAULT_PORT = 8090
DEFAULT_MAX_FPS = 30.0
SEND_BUFFER = 128 * 1024
VIEWS = ("output", "both")
BOUNDARY = "pix2pixframe"
TOKEN = re.compile(r"[A-Za-z0-9_-]{8,128}")     # a token given in the URI: URL-safe, 8+ chars


def parse_web_uri(uri) -> tuple[str, int]:
    """``http://HOST:PORT/`` (a string or a parsed :class:`~pix2pix_edge.runtime.uri.URI`) ->
    (host, port); no host means loopback, no port 8090, port 0 any free port. The only option
    is ``?token=`` (:func:`web_token`)."""
    u = uri if isinstance(uri, URI) else parse_uri(uri)
    if u.scheme != "http":
        raise BadInput(f"web output {u.text!r} must start with http://")
    path = u.location.partition("/")[2]
    if path or set(u.options) - {"token"} or "#" in u.location:
        raise BadInput(f"web output {u.text!r}: give only host and port (and ?token=), "
                       f"e.g. http://127.0.0.1:8090/")
    host, port = host_port(u)
    if port is not None and not (isinstance(port, int) and 0 <= port <= 65535):
        raise BadInput(f"web output {u.text!r}: the port is not a number in 1..65535")
    return host or "127.0.0.1", DEFAULT_PORT if port is None else port


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def web_token(uri) -> str | None:
    """The access token of a web output: the URI's ``?token=`` (8 to 128 URL-safe characters),
    else a random one when the view is reachable from other machines, else None."""
    u = uri if isinstance(uri, URI) else parse_uri(uri)
    host, _ = parse_web_uri(u)
    token = u.options.get("token")
    if token is not None:
        if not TOKEN.fullmatch(token):
            raise BadInput(f"web output token must be 8 to 128 characters of A-Z a-z 0-9 _ -, "
                           f"got {len(token)} character(s)")
        return token
    return None if is_loopback(host) else secrets.token_urlsafe(16)


# ---------------------------------------------------------------------------- the newest frame
class _Hub:
    """The newest (input, output) pair, its JPEGs (encoded at most once per view) and live stats."""

    def __init__(self, max_viewers: int, quality: int, max_fps: float):
        self.cond = threading.Condition()
        self.encode_lock = threading.Lock()
        self.max_viewers = max_viewers
        self.quality = quality
        self.max_fps = max_fps
        self.seq = 0
        self.pair: tuple[np.ndarray | None, np.ndarray] | None = None
        self.jpegs: dict[str, tuple[int, bytes]] = {}
        self.viewers = 0
        self.served = 0            # streams opened so far
        self.refused = 0           # 503s
        self.closed = False
        self.t_out: collections.deque = collections.deque(maxlen=30)
        self.lat_ms: collections.deque = collections.deque(maxlen=30)

    def publish(self, image_in, image_out, t_capture: float | None) -> None:
        now = time.perf_counter()
        with self.cond:
            self.pair = (image_in, image_out)
            self.seq += 1
            self.t_out.append(now)
            if t_capture is not None:
                self.lat_ms.append((now - t_capture) * 1e3)
            self.cond.notify_all()

    def wait_newer(self, seen: int, timeout: float) -> int | None:
        """The sequence number of a frame newer than ``seen`` (waiting up to ``timeout``), ``seen``
        when none came, None once closed."""
        with self.cond:
            if self.seq == seen and not self.closed:
                self.cond.wait(timeout)
            return None if self.closed else self.seq

    def jpeg(self, view: str) -> bytes:
        with self.cond:
            seq, pair = self.seq, self.pair
        with self.encode_lock:
            cached = self.jpegs.get(view)
            if cached is not None and cached[0] == seq:
                return cached[1]
            image_in, image_out = pair
            img = side_by_side(image_in, image_out) if view == "both" and image_in is not None \
                else image_out
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if not ok:
                raise RuntimeError("JPEG encoding failed")
            data = buf.tobytes()
            self.jpegs[view] = (seq, data)
            return data

    def enter(self) -> bool:
        with self.cond:
            if self.closed or self.viewers >= self.max_viewers:
                self.refused += 1
                return False
            self.viewers += 1
            self.served += 1
            return True

    def leave(self) -> None:
        with self.cond:
            self.viewers -= 1

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def stats(self) -> dict:
        with self.cond:
            t, lat = list(self.t_out), sorted(self.lat_ms)
            fps = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0
            size = None
            if self.pair is not None:
                size = [int(self.pair[1].shape[1]), int(self.pair[1].shape[0])]
            return {"frames": self.seq, "fps": round(fps, 2),
                    "latency_ms": round(lat[len(lat) // 2], 1) if lat else None,
                    "viewers": self.viewers, "max_viewers": self.max_viewers,
                    "output_size": size, "has_input": bool(self.pair and self.pair[0] is not None),
                    "closed": self.closed}


# ---------------------------------------------------------------------------- HTTP
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pix2pix-edge live</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { background: #111; color: #ddd; font: 14px system-ui, sans-serif; margin: 1em; }
img { max-width: 100%; background: #000; display: block; margin: .5em 0; }
#stats { font-family: ui-monospace, monospace; }
</style></head>
<body>
<label><input type="checkbox" id="both"> input | output</label>
<img id="stream" alt="live output">
<div id="stats" data-frames="0">connecting...</div>
<script>
"use strict";
const img = document.getElementById("stream"), box = document.getElementById("both");
const stats = document.getElementById("stats");
const params = new URLSearchParams(location.search);
const token = params.get("token") ? "&token=" + encodeURIComponent(params.get("token")) : "";
box.checked = params.get("view") === "both";
function show() {
  img.src = "/stream.mjpg?view=" + (box.checked ? "both" : "output") + token + "&t=" + Date.now();
}
box.addEventListener("change", show);
show();
async function poll() {
  try {
    const s = await (await fetch("/stats.json?" + token.slice(1), {cache: "no-store"})).json();
    stats.dataset.frames = s.frames;
    const lat = s.latency_ms === null ? "-" : s.latency_ms.toFixed(1);
    stats.textContent = s.fps.toFixed(1) + " FPS   latency " + lat + " ms   frame " + s.frames +
      "   viewers " + s.viewers + "/" + s.max_viewers;
  } catch (e) {
    stats.textContent = "stream ended";
  }
  setTimeout(poll, 500);
}
poll();
</script>
</body></html>
""".encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    server_version = "pix2pix-edge"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def setup(self):
        self.timeout = self.server.request_timeout   # idle or slow clients are hung up on
        super().setup()

    def log_message(self, format, *args):  # noqa: A002 - quiet: the run prints its own summary
        pass

    # Every method but GET: 405 (BaseHTTPRequestHandler would say 501 for unknown ones).
    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self):
        self.close_connection = True
        self.send_response(405)
        self.send_header("Allow", "GET")
        self._body(b"method not allowed\n", "text/plain")

    def _body(self, data: bytes, ctype: str, code: int | None = None):
        if code is not None:
            self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - http.server's naming
        hub: _Hub = self.server.hub
        path, _, query = self.path.partition("?")
        token = self.server.token
        if token is not None and not hmac.compare_digest(
                parse_qs(query).get("token", [""])[0].encode(), token.encode()):
            self.close_connection = True
            self._body(b"forbidden: this view needs the ?token= printed by pix2pix run\n",
                       "text/plain", 403)
        elif path in ("/", "/index.html"):
            self._body(PAGE, "text/html; charset=utf-8", 200)
        elif path == "/stats.json":
            self._body(json.dumps(hub.stats()).encode(), "application/json", 200)
        elif path == "/stream.mjpg":
            view = parse_qs(query).get("view", ["output"])[0]
            if view not in VIEWS:
                self.close_connection = True
                self._body(f"unknown view {view!r}: output or both\n".encode(), "text/plain", 400)
            else:
                self._stream(hub, view)
        else:
            self.close_connection = True
            self._body(b"not found\n", "text/plain", 404)

    def _stream(self, hub: _Hub, view: str):
        self.close_connection = True
        if not hub.enter():
            self.send_response(503)
            self.send_header("Retry-After", "5")
            self._body(f"at most {hub.max_viewers} viewers\n".encode(), "text/plain")
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.connection.settimeout(self.server.send_timeout)
            # A small send buffer: a slow viewer gets recent frames instead of seconds of
            # buffered ones, and a stalled one blocks (costing nothing) after a frame or two.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            seen, next_t = 0, 0.0
            while True:
                seq = hub.wait_newer(seen, 0.5)
                if seq is None:
                    break
                if seq == seen:
                    continue
                wait = next_t - time.perf_counter()
                if wait > 0:                 # at most max_fps frames per second per viewer
                    time.sleep(wait)
                    continue
                next_t = time.perf_counter() + 1.0 / hub.max_fps
                data = hub.jpeg(view)
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                seen = seq
        except (OSError, ValueError):   # gone, stalled past send_timeout, or closed by us
            pass
        finally:
            hub.leave()


class _Server(HTTPServer):
    daemon_threads = True
    allow_reuse_address = True      # rebinding right after a run; a live listener still refuses

    def __init__(self, address, hub: _Hub, send_timeout: float, request_timeout: float,
                 token: str | None = None):
        self.hub = hub
        self.token = token
        self.send_timeout = send_timeout
        self.request_timeout = request_timeout
        self.lock = threading.Lock()
        self.conns: dict[threading.Thread, socket.socket] = {}
        # HTTPServer is IPv4 only; an IPv6 host ([::1], or [::]: every interface, IPv4 too on
        # Linux) needs an IPv6 socket
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        t = threading.Thread(target=self._serve_one, args=(request, client_address),
                             name="pix2pix-web-viewer", daemon=True)
        with self.lock:
            self.conns[t] = request
        t.start()

    def _serve_one(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one broken client never ends the server
            pass
        finally:
            self.shutdown_request(request)
            with self.lock:
                self.conns.pop(threading.current_thread(), None)

    def close_all(self, timeout: float = 2.0) -> None:
        with self.lock:
            conns = dict(self.conns)
        for sock in conns.values():
            try:
                sock.shutdown(socket.SHUT_RDWR)   # wakes a viewer blocked in send
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for t in conns:
            t.join(max(0.0, deadline - time.monotonic()))


class WebSink(Sink):
    """The browser view. ``write(output, meta)`` keeps ``meta.frame`` too: its pixels for the
    side-by-side view, its ``t_capture`` for the latency figure. ``token``: what every request
    must carry as ``?token=`` (None: nothing; see :func:`web_token`); ``uri`` is the link to
    watch, token included."""

    def __init__(self, uri: str = f"http://127.0.0.1:{DEFAULT_PORT}/", *,
                 max_viewers: int = DEFAULT_MAX_VIEWERS, quality: int = 80,
                 send_timeout: float = 10.0, max_fps: float = DEFAULT_MAX_FPS,
                 request_timeout: float = 10.0):
        if int(max_viewers) < 1:
            raise BadInput(f"--max-viewers must be at least 1 (got {max_viewers})")
        host, port = parse_web_uri(uri)
        self.token = web_token(uri)
        self.host, self.frames = host, 0
        self._hub = _Hub(int(max_viewers), int(quality), float(max_fps))
        try:
            self._server = _Server((host, port), self._hub, float(send_timeout),
                                   float(request_timeout), self.token)
        except socket.gaierror as e:
            raise BadInput(f"cannot serve {uri}: unknown host {host!r} ({e.strerror})") from None
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise Unavailable(f"cannot serve {uri}: port {port} on {host} is already in use "
                                  f"(another run or server?); pick another port") from None
            raise Unavailable(f"cannot serve {uri}: {e.strerror or e}") from None
        self.port = self._server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.uri = f"http://{shown}:{self.port}/" + (f"?token={self.token}" if self.token else "")
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="pix2pix-web", daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.host)

    @property
    def viewers(self) -> int:
        return self._hub.viewers

    def stats(self) -> dict:
        return self._hub.stats()

    def write(self, image: np.ndarray, meta: FrameMeta | None = None) -> None:
        frame = meta.frame if meta is not None else None
        self._hub.publish(None if frame is None else frame.image, image,
                          None if frame is None else frame.t_capture)
        self.frames += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._hub.close()
        self._server.shutdown()          # stops accepting
        self._server.close_all()         # ends every stream and connection
        self._server.server_close()      # frees the port
        self._thread.join(2.0)
