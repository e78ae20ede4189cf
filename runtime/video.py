"""Video sources and sinks named by URI, the way jetson-utils users already name them.

Sources (``open_source``)::

    0, 1, /dev/video0, v4l2:///dev/video0     USB webcam through V4L2 (live)
    csi://0                                    Jetson CSI camera through GStreamer nvarguscamerasrc (live)
    rtsp://host/stream, http(s)://...          network stream through FFmpeg (live)
    video.mp4, file://video.mp4                a video file (every frame, in order; loop=True repeats)
    photo.jpg, frames/, 'frames/*.png'         one image, a directory of images, a glob (names kept)
    "videotestsrc ! ... ! appsink"             any GStreamer pipeline ending in appsink (live)

Sinks (``open_sink``)::

    display://0                                a window (needs a display; else use --headless)
    out.mp4 / out.avi / out.mkv                a video file (codec that this OpenCV can write)
    out_dir/, out/%06d.jpg, out.png            numbered images, or one image
    http://HOST:PORT/, rtp://HOST:PORT         a browser view (runtime/web.py), H.264 over RTP (rtp.py)
    none, headless, ""                         nothing (frames are counted and dropped)

Both are parsed by :func:`runtime.uri.parse_uri` (scheme, location, options), as the command
line parses them. Live sources deliver the newest frame (the pipeline drops stale ones); a
camera or stream that disconnects is reopened with exponential backoff, and a device that is not there fails at once.
Every failure a user can cause is a one-line :class:`BadInput` or :class:`Unavailable`.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import glob as globmod
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pix2pix_edge.runtime.contract import IMAGE_EXTS, UnreadableFile, read_rgb
from pix2pix_edge.runtime.errors import BadInput, Unavailable
from pix2pix_edge.runtime.files import (check_writable, remove_stale_temps, replace_bytes,
                                        temp_prefix)
from pix2pix_edge.runtime.frames import draw_overlay, side_by_side
from pix2pix_edge.runtime.uri import URI, parse_uri

VIDEO_EXTS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
              ".ts", ".mts", ".3gp", ".ogv")
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp")   # read by FFmpeg
# Writers tried in order per container; the first that opens is used (pip OpenCV has no H.264
# encoder, JetPack's / system builds often do).
FOURCCS = {
    ".mp4": ("avc1", "mp4v"), ".m4v": ("avc1", "mp4v"), ".mov": ("avc1", "mp4v"),
    ".mkv": ("avc1", "mp4v", "MJPG"), ".avi": ("MJPG", "XVID", "mp4v"),
}
_WORKING_FOURCC: dict[str, str] = {}
NO_GSTREAMER = ("needs OpenCV built with GStreamer (JetPack's OpenCV); "
                "this OpenCV (pip wheel) has none")

CSI_PIPELINE = (
    "nvarguscamerasrc sensor-id={sensor} ! "
    "video/x-raw(memory:NVMM), width={width}, height={height}, framerate={fps}/1 ! "
    "nvvidconv flip-method={flip} ! video/x-raw, format=BGRx ! videoconvert ! "
    "video/x-raw, format=BGR ! appsink drop=true max-buffers=1"
)


@dataclass
class Frame:
    """One captured frame: BGR uint8 pixels, its number, a name (image sources) and when it came."""

    image: np.ndarray
    index: int
    name: str | None = None
    t_capture: float = field(default_factory=time.perf_counter)


@dataclass
class FrameMeta:
    """What travels with every translated image to a sink.

    ``frame``: the captured frame (its pixels, index, name and ``t_capture``, the
    ``time.perf_counter()`` when it was read), so a sink can show it next to the result or
    measure the live latency ``perf_counter() - frame.t_capture`` at the moment it sends.
    ``t_start``: when the frame's journey began (live: its arrival; files: when decoding began).
    ``infer_ms``: its inference time; ``backend``: the provider label (for overlays)."""

    frame: Frame
    t_start: float
    infer_ms: float = 0.0
    backend: str = ""


# ---------------------------------------------------------------------------- helpers
def build_info_has(feature: str) -> bool:
    """Whether OpenCV's build information lists ``feature`` (e.g. 'GStreamer') as YES."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith(feature + ":"):
            return "YES" in line.split(":", 1)[1]
    return False


def has_gstreamer() -> bool:
    return build_info_has("GStreamer")


@contextlib.contextmanager
def quiet_opencv(native: bool = False):
    """Silence OpenCV's log while probing devices and codecs (we report failures ourselves).

    ``native=True`` also mutes file descriptor 2 for the duration, because FFmpeg prints its
    encoder-probe errors straight to stderr. Used only before the pipeline threads start."""
    saved_fd = None
    if native:
        with contextlib.suppress(OSError):
            sys.stderr.flush()
            saved_fd = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
    old = None
    try:
        log = cv2.utils.logging
        old = log.getLogLevel()
        log.setLogLevel(log.LOG_LEVEL_SILENT)
    except Exception:  # older OpenCV: nothing to silence with
        log = None
    try:
        yield
    finally:
        if log is not None and old is not None:
            log.setLogLevel(old)
        if saved_fd is not None:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)


def _uri_kind(uri: URI) -> tuple[str, object]:
    """Classify a parsed source URI -> (kind, target)."""
    scheme, loc = uri.scheme, uri.location
    if scheme == "none" and not uri.text:
        raise BadInput("empty --source; give a camera (0, /dev/video0, csi://0), a stream, a video, "
                       "an image or a directory")
    if scheme == "gst":
        return "gstreamer", loc
    if scheme == "csi":
        if not loc.isdigit():
            raise BadInput(f"bad CSI camera URI {uri.text!r}: expected csi://N (e.g. csi://0)")
        return "csi", int(loc)
    if scheme == "v4l2":
        return "v4l2", int(loc) if loc.isdigit() else loc
    if scheme in STREAM_SCHEMES:
        return "stream", uri.text
    if scheme != "file":
        raise BadInput(f"{uri.text!r} is not a source: {scheme}:// is not one of csi, v4l2, "
                       f"{', '.join(STREAM_SCHEMES)}, file (or a path, a camera number, "
                       f"a GStreamer pipeline)")
    if any(ch in loc for ch in "*?["):
        return "glob", loc
    p = Path(loc).expanduser()
    if p.is_dir():
        return "dir", p
    if not p.exists():
        raise BadInput(f"source not found: {loc} (no such file, directory or camera)")
    if not p.is_file():
        raise BadInput(f"source {loc} is not a regular file")
    if p.suffix.lower() in IMAGE_EXTS:
        return "image", p
    return "file", p


# ---------------------------------------------------------------------------- sources
class Source:
    """Base: ``read() -> Frame | None`` (None = end of stream), ``close()``.

    ``live``: a camera or stream (newest frame wins); ``size``: (w, h) of the frames as far as
    known before reading; ``fps``: the nominal rate (0 when unknown).
    """

    live = False
    uri = ""
    size: tuple[int, int] | None = None
    fps: float = 0.0

    def read(self) -> Frame | None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


STREAM_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322, "rtmp": 1935}


def unopened_stream(url: str) -> Exception:
    """Why FFmpeg could not open the network stream ``url``, told apart by connecting to it:
    nothing answers there (:class:`Unavailable`, exit 5), or something answers but sends nothing
    FFmpeg decodes as video (:class:`BadInput`, exit 3: a wrong path, a web page, a login)."""
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or STREAM_PORTS.get(parts.scheme.lower())
    except ValueError:
        host = port = None
    if not host or not port or parts.scheme.lower() == "udp":   # nothing to connect to
        return Unavailable(f"cannot open stream {url}: nothing FFmpeg can decode arrived (is the "
                           f"sender running, and the address right?)")
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as e:
        return Unavailable(f"cannot open stream {url}: nothing answers at {host} port {port} "
                           f"({e.strerror or e}; is the camera or server on, and the address "
                           f"right?)")
    return BadInput(f"cannot open stream {url}: {host} port {port} answers, but with nothing "
                    f"FFmpeg can decode as video (a wrong path, a web page, or a login needed?)")


class CaptureSource(Source):
    """A cv2.VideoCapture: file, V4L2 camera, network stream, CSI camera or GStreamer pipeline.

    Files end at their last frame (or start over with ``loop``). Live sources that stop
    delivering are reopened with exponential backoff (``backoff`` = 0.25 s doubling up to 8 s,
    ``retries`` tries)
    before giving up with :class:`Unavailable`.
    """

    def __init__(self, uri: str, kind: str, target, *, size=None, fps=None, loop=False,
                 retries: int = 6, backoff: float = 0.25, decode_threads: int | None = None,
                 start_frame: int = 0):
        self.uri, self.kind, self.target = str(uri), kind, target
        self.live = kind in ("v4l2", "stream", "csi", "gstreamer")
        self.loop = loop and not self.live
        self.req_size, self.req_fps = size, fps
        self.retries, self.backoff = retries, backoff
        self.decode_threads = decode_threads
        self._closed = threading.Event()
        self._reading = threading.Lock()     # close() never releases a capture mid-read
        self._index = 0
        self._since_open = 0
        self.reconnects = 0
        self._cap = self._open(first=True)
        if start_frame and not self.live:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, int(start_frame))
        ok, img = self._cap.read()
        if not ok or img is None:
            self._cap.release()
            if self.live:
                raise Unavailable(f"{self._describe()} opened but delivered no frame")
            raise BadInput(f"cannot decode video {self.target}: no frame could be read "
                           f"(not a video file, or a codec this OpenCV lacks)")
        self._pending = img
        self.size = (img.shape[1], img.shape[0])
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else 0.0
        n = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(n) if not self.live and n and n > 0 else None

    # -- opening
    def _describe(self) -> str:
        return {"v4l2": f"camera {self.target}", "csi": f"CSI camera csi://{self.target}",
                "stream": f"stream {self.target}", "gstreamer": "GStreamer pipeline",
                "file": f"video {self.target}"}[self.kind]

    def _open(self, first: bool = False) -> cv2.VideoCapture:
        kind, target = self.kind, self.target
        # FFmpeg prints to stderr itself: muted for files, and for a stream's first opening
        # (a reopening runs beside the pipeline's threads, whose lines must not be lost)
        with quiet_opencv(native=kind == "file" or (first and kind == "stream")):
            if kind == "file":
                params = []
                n_threads = getattr(cv2, "CAP_PROP_N_THREADS", None)  # OpenCV >= 4.6 only
                if self.decode_threads and n_threads is not None:
                    params = [n_threads, int(self.decode_threads)]
                cap = cv2.VideoCapture(str(target), cv2.CAP_FFMPEG, params)
                if not cap.isOpened():
                    raise BadInput(f"cannot open video {target}: not a video file, or a format "
                                   f"this OpenCV cannot decode")
                return cap
            if kind in ("csi", "gstreamer"):
                if not has_gstreamer():
                    what = f"csi://{target}" if kind == "csi" else "a GStreamer pipeline source"
                    raise Unavailable(f"{what} {NO_GSTREAMER}")
                pipeline = target if kind == "gstreamer" else self._csi_pipeline()
                cap = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
            elif kind == "v4l2":
                dev = f"/dev/video{target}" if isinstance(target, int) else str(target)
                if sys.platform.startswith("linux") and not os.path.exists(dev):
                    raise Unavailable(f"camera {dev} not found (no such device; "
                                      f"is it plugged in? try `ls /dev/video*`)")
                api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
                cap = cv2.VideoCapture(target if isinstance(target, int) else dev, api)
                if cap.isOpened():
                    self._configure_camera(cap)
            else:  # network stream
                cap = cv2.VideoCapture(str(target), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            if first and kind == "stream":
                raise unopened_stream(str(target))
            if first:
                raise Unavailable(f"cannot open {self._describe()} (device busy, absent, or "
                                  f"not reachable)")
        return cap

    def _csi_pipeline(self) -> str:
        w, h = self.req_size or (1280, 720)
        fps = int(round(self.req_fps or 30))
        return CSI_PIPELINE.format(sensor=self.target, width=w, height=h, fps=fps, flip=0)

    def _configure_camera(self, cap: cv2.VideoCapture) -> None:
        """Ask a V4L2 camera for size / rate; MJPG above 640x480 (raw YUYV saturates USB 2)."""
        if self.req_size:
            w, h = self.req_size
            if w * h > 640 * 480:
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
        if self.req_fps:
            cap.set(cv2.CAP_PROP_FPS, float(self.req_fps))
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)   # newest frame, not a queue of old ones

    # -- reading
    def read(self) -> Frame | None:
        with self._reading:
            return self._read()

    def _read(self) -> Frame | None:
        if self._pending is not None:
            img, self._pending = self._pending, None
            return self._frame(img)
        while not self._closed.is_set():
            ok, img = self._cap.read()
            if ok and img is not None:
                return self._frame(img)
            if not self.live:
                if self.loop and self._since_open > 0:
                    self._cap.release()
                    self._cap = self._open()
                    self._since_open = 0
                    continue
                return None
            self._reconnect()
        return None

    def _frame(self, img: np.ndarray) -> Frame:
        f = Frame(img, self._index)
        self._index += 1
        self._since_open += 1
        return f

    def _reconnect(self) -> None:
        """Reopen a live source that stopped, waiting 0.25, 0.5, 1, ... 8 s between tries."""
        self._cap.release()
        delay = self.backoff
        for attempt in range(1, self.retries + 1):
            if self._closed.wait(delay):
                return
            delay = min(delay * 2, 8.0)
            try:
                cap = self._open()
            except (Unavailable, BadInput):
                continue
            if cap.isOpened():
                self._cap = cap
                self.reconnects += 1
                self._since_open = 0
                return
            cap.release()
        raise Unavailable(f"lost {self._describe()} and could not reopen it "
                          f"after {self.retries} tries")

    def close(self, timeout: float = 2.0) -> None:
        """Release the capture. A reader stuck in the driver for longer than ``timeout`` keeps
        it (releasing a capture under a running read can crash OpenCV)."""
        self._closed.set()
        cap = getattr(self, "_cap", None)
        if cap is None or not self._reading.acquire(timeout=timeout):
            return
        try:
            cap.release()
        finally:
            self._reading.release()


class ImageSource(Source):
    """One image, a directory of images or a glob: every image once (or looped), names kept.

    Images are read by the contract's reader (:func:`~pix2pix_edge.runtime.contract.read_rgb`,
    as training reads them: the pixel limit, 16-bit scaled to 8, EXIF orientation applied). An
    image that cannot be read is skipped with a warning (``log``) and listed in ``skipped``;
    only a source without one readable image fails."""

    def __init__(self, uri: str, paths: list[Path], *, loop: bool = False, log=None):
        self.uri = str(uri)
        if not paths:
            raise BadInput(f"no images found in {uri} (looked for {', '.join(IMAGE_EXTS)})")
        self.paths = paths
        self.loop = loop
        self.say = log or (lambda msg: None)
        self.skipped: list[tuple[str, str]] = []     # (path, why) of every image skipped
        self._i = 0
        self._index = 0
        self._pending = self._next()
        if self._pending is None:
            if len(paths) == 1:
                raise BadInput(self.skipped[0][1])
            raise BadInput(f"none of the {len(paths)} images in {uri} can be read (first: "
                           f"{self.skipped[0][1]})")
        self.size = (self._pending[1].shape[1], self._pending[1].shape[0])
        self.frame_count = None if loop else len(paths)

    @staticmethod
    def _load(path: Path) -> np.ndarray:
        """``path`` as BGR pixels, read as training reads images (UnreadableFile if it cannot)."""
        return cv2.cvtColor(np.asarray(read_rgb(path, orient=True)), cv2.COLOR_RGB2BGR)

    def _next(self):
        """``(path, pixels)`` of the next readable image (skipping and reporting the others),
        or None at the end (after a whole pass without one readable image when looping)."""
        misses = 0
        while misses < len(self.paths):
            if self._i >= len(self.paths):
                if not self.loop:
                    return None
                self._i = 0
            path = self.paths[self._i]
            self._i += 1
            try:
                return path, self._load(path)
            except UnreadableFile as e:
                misses += 1
                if all(p != str(path) for p, _ in self.skipped):
                    self.skipped.append((str(path), str(e)))
                    self.say(f"warning: skipped {e}")
        return None

    def read(self) -> Frame | None:
        item = self._pending if self._pending is not None else self._next()
        self._pending = None
        if item is None:
            return None
        path, img = item
        f = Frame(img, self._index, name=path.stem)
        self._index += 1
        return f


def _looks_like_video(path) -> bool:
    """Does the file start like a common video container (MP4/MOV, Matroska/WebM, AVI, MPEG-TS,
    MPEG-PS, FLV, Ogg, ASF)?"""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    return (head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide")
            or head.startswith((b"\x1aE\xdf\xa3", b"FLV", b"OggS", b"\x00\x00\x01\xba",
                                b"0&\xb2u\x8ef\xcf\x11"))
            or (head.startswith(b"RIFF") and head[8:12] == b"AVI ")
            or (len(head) >= 1 and head[0] == 0x47 and _is_ts(path)))


def _is_ts(path) -> bool:
    """MPEG transport stream: a 0x47 sync byte every 188 bytes."""
    with open(path, "rb") as f:
        data = f.read(188 * 3 + 1)
    return len(data) > 188 * 2 and all(data[i] == 0x47 for i in (0, 188, 376))


def _image_paths(kind: str, target) -> list[Path]:
    if kind == "image":
        return [Path(target)]
    if kind == "dir":
        return sorted(p for p in Path(target).iterdir()
                      if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    return sorted(Path(p) for p in globmod.glob(os.path.expanduser(str(target)))
                  if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_EXTS)


def open_source(uri, *, size: tuple[int, int] | None = None, fps: float | None = None,
                loop: bool = False, decode_threads: int | None = None,
                start_frame: int = 0, log=None) -> Source:
    """Open a source named by ``uri`` (see the module docstring); fails at once, naming it.

    ``size`` (w, h) and ``fps`` are requests for cameras; ``loop`` repeats files and image sets;
    ``decode_threads`` caps FFmpeg's decoder threads for files (None: FFmpeg's choice);
    ``start_frame`` skips into a file or image set (benchmarks use it to cover a video in parts);
    ``log`` gets a warning for each unreadable image an image set skips.
    """
    if isinstance(uri, Source):
        return uri
    kind, target = _uri_kind(parse_uri(uri))
    if kind in ("image", "dir", "glob"):
        paths = _image_paths(kind, target)
        return ImageSource(str(uri), paths[int(start_frame):] if start_frame else paths, loop=loop,
                           log=log)
    if kind == "file" and Path(target).suffix.lower() not in VIDEO_EXTS and not _looks_like_video(target):
        # FFmpeg "decodes" almost anything (a .txt file becomes ANSI-art frames): without a video
        # extension, insist on a container signature.
        raise BadInput(f"{target} is not a video or image file (unknown extension "
                       f"{Path(target).suffix or '(none)'} and no video container signature)")
    return CaptureSource(str(uri), kind, target, size=size, fps=fps, loop=loop,
                         decode_threads=decode_threads, start_frame=start_frame)


# ---------------------------------------------------------------------------- sinks
class Sink:
    """Base of every output.

    ``write(image, meta)`` takes one translated BGR image and its :class:`FrameMeta` (the
    captured frame with its capture time); ``poll(stop)`` is called after each write and
    returns False when the user asked to quit (a window's q / Esc); ``close()`` flushes and is
    idempotent. ``frames``: images written so far. ``is_display``: the sink drives a GUI, so
    the pipeline calls it from the calling thread."""

    uri = ""
    frames = 0
    is_display = False
    path: Path | None = None
    snapshots: tuple = ()

    def write(self, image: np.ndarray, meta: FrameMeta | None = None) -> None:
        self.frames += 1

    def poll(self, stop: threading.Event) -> bool:
        return True

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class NullSink(Sink):
    """--headless: frames are counted, nothing is written."""

    def __init__(self, uri: str = "none"):
        self.uri = uri
        self.frames = 0


def _check_output_file(path: Path, example: str) -> None:
    """A missing or read-only directory, a directory in the file's place and a read-only file
    fail before any work, saying so (OpenCV's writer would only report that it did not open)."""
    if not path.parent.exists():
        raise BadInput(f"output directory {path.parent} does not exist")
    check_writable(path, example)
    if path.is_file() and not os.access(path, os.W_OK):
        raise BadInput(f"cannot write to {path}: not writable (a read-only file)")


class WriterSink(Sink):
    """A sink around one cv2.VideoWriter (``self.writer``, opened by the subclass) at
    ``self.size``: frames of another size are resized (OpenCV would silently drop them)."""

    writer = None
    size: tuple[int, int] = (0, 0)

    def write(self, image: np.ndarray, meta: FrameMeta | None = None) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_LINEAR)
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()   # flushes the encoder (and writes a file's container index)
            self.writer = None


# With less than one block free on the output's disk a video file stops with ENOSPC: OpenCV's
# writer reports no write error at all (a full disk gave "300 in, 300 out" and a file without
# its index). Writes that fail otherwise (a quota) are caught when the file is checked at close.
MIN_FREE_BYTES = 4096


class VideoFileSink(WriterSink):
    """A video file. The writer is opened (and checked) before the first frame is processed, so
    an unwritable path or a missing codec fails at once; frames of another size are resized
    (OpenCV would silently drop them).

    The frames go to a temporary file beside ``path`` (``.NAME.pidPID.*.tmp.EXT``); ``close()``
    checks that it plays with every frame written and only then renames it to ``path``, so a
    full disk or a write error never replaces an existing file with a broken one. The free
    space is checked as frames are written: a full disk ends the run with ENOSPC (exit 1)."""

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float, fourcc: str | None = None):
        self.path = Path(path)
        self.uri = str(path)
        self.size = (int(size[0]), int(size[1]))
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.frames = 0
        self.writer = None
        self.tmp: Path | None = None
        ext = self.path.suffix.lower()
        codes = (fourcc,) if fourcc else FOURCCS.get(ext)
        _check_output_file(self.path, f"out{ext or '.mp4'}")
        if not codes:
            raise BadInput(f"cannot write video {self.path}: unknown container {ext!r} "
                           f"(use one of {', '.join(FOURCCS)})")
        if not fourcc and ext in _WORKING_FOURCC:      # probed before in this process
            codes = (_WORKING_FOURCC[ext],) + tuple(c for c in codes if c != _WORKING_FOURCC[ext])
        remove_stale_temps(self.path.parent, self.path.name)   # a killed run's partial file
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(self.path.name), suffix=".tmp" + ext,
                                   dir=self.path.parent)
        os.close(fd)
        for code in codes:
            with quiet_opencv(native=True):
                w = cv2.VideoWriter(tmp, cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*code),
                                    self.fps, self.size)
            if w.isOpened():
                self.writer, self.fourcc, self.tmp = w, code, Path(tmp)
                _WORKING_FOURCC[ext] = code
                break
            w.release()
        if self.writer is None:
            os.unlink(tmp)
            raise Unavailable(f"cannot write video {self.path}: this OpenCV has no working "
                              f"encoder for {ext} (tried {', '.join(codes)}); "
                              f"try an .avi output or an image directory")

    def write(self, image: np.ndarray, meta: FrameMeta | None = None) -> None:
        if self.frames % 8 == 0 and shutil.disk_usage(self.tmp.parent).free < MIN_FREE_BYTES:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        super().write(image, meta)

    def close(self) -> None:
        """Finish the file and move it into place when it plays with every frame written; a
        file without frames replaces nothing; a broken one is removed and raises ENOSPC / EIO."""
        if self.writer is None:
            return
        super().close()
        tmp, self.tmp = self.tmp, None
        if self.frames == 0:
            os.unlink(tmp)
            return
        playable = _frames_in(tmp)
        if playable < self.frames - max(1, self.frames // 100):    # containers may round
            full = shutil.disk_usage(self.path.parent).free < MIN_FREE_BYTES
            os.unlink(tmp)
            code = errno.ENOSPC if full else errno.EIO
            raise OSError(code, f"{os.strerror(code)}: the video was not written whole "
                          f"({max(playable, 0)} of {self.frames} frames play)", str(self.path))
        os.replace(tmp, self.path)


def _frames_in(path: Path) -> int:
    """The frame count a video file's container reports (-1 when it does not open)."""
    with quiet_opencv(native=True):
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        try:
            return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else -1
        finally:
            cap.release()


class ImageSink(Sink):
    """Images: a directory (``name.png`` per named frame, else ``000000.png``), a printf pattern
    (``out/%06d.jpg``) or a single file (``out.png``, rewritten by every frame).

    Each image is encoded in memory and written under a temporary name, then renamed: an
    existing image is replaced only by a whole one, and a write error (a full disk) raises
    OSError naming the file."""

    def __init__(self, uri: str, ext: str = ".png"):
        self.uri = str(uri)
        self.frames = 0
        s = os.path.expanduser(str(uri))
        self.pattern = None
        self.single = None
        if "%" in s:
            self.pattern = s
            self.path = Path(s).parent
        elif Path(s).suffix.lower() in IMAGE_EXTS:
            self.single = Path(s)
            self.path = self.single.parent
        else:
            self.path = Path(s)
            self.ext = ext
        if self.single is not None:
            _check_output_file(self.single, f"out{self.single.suffix}")
        if self.single is None and self.pattern is None:   # a directory of images: make it
            self.path.mkdir(parents=True, exist_ok=True)
        if self.pattern is not None:
            try:
                self.pattern % 0
            except (TypeError, ValueError):
                raise BadInput(f"output pattern {uri!r} needs one integer field like %06d") from None
            if self.path and not self.path.exists():
                self.path.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.path if str(self.path) else ".")   # a killed run's leftovers

    def write(self, image: np.ndarray, meta: FrameMeta | None = None) -> None:
        name = meta.frame.name if meta is not None else None
        if self.single is not None:
            target = self.single
        elif self.pattern is not None:
            target = Path(self.pattern % self.frames)
        else:
            target = self.path / f"{name if name else f'{self.frames:06d}'}{self.ext}"
        try:
            ok, data = cv2.imencode(target.suffix or ".png", image)
        except cv2.error:
            ok = False
        if not ok:
            raise BadInput(f"cannot write image {target}: OpenCV cannot encode {target.suffix!r}")
        replace_bytes(target, data.tobytes())
        self.frames += 1


def display_available() -> str | None:
    """None when a window can be opened, else the reason why not (one line)."""
    gui = ""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            gui = line.split(":", 1)[1].strip()
    if gui.upper() in ("", "NONE"):
        return "this OpenCV has no GUI support (opencv-python-headless?)"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return "no display ($DISPLAY is not set)"
    return None


class DisplaySink(Sink):
    """display://N: an OpenCV window showing the camera frame and its translation side by side,
    with live FPS / latency text (``overlay``). Keys: q or Esc quit, space pauses and resumes,
    s saves the window as it is shown to a PNG in ``snapshot_dir`` (listed in ``snapshots``).

    The OpenCV calls are :meth:`show` and :meth:`poll_key`; everything else is plain code that
    a test can drive with those two replaced."""

    is_display = True

    def __init__(self, uri: str = "display://0", title: str = "pix2pix-edge", *,
                 overlay: bool = True, snapshot_dir: str | Path = ".", log=None):
        why = display_available()
        if why:
            raise Unavailable(f"cannot open {uri}: {why}; use --headless or an output file "
                              f"(--output out.mp4)")
        self._setup(uri, title, overlay=overlay, snapshot_dir=snapshot_dir, log=log)

    def _setup(self, uri: str, title: str = "pix2pix-edge", *, overlay: bool = True,
               snapshot_dir: str | Path = ".", log=None) -> None:
        self.uri, self.title = uri, title
        self.overlay = overlay
        self.snapshot_dir = Path(snapshot_dir)
        self.log = log or (lambda msg: None)
        self.frames = 0
        self.snapshots: list[str] = []
        self.paused = False
        self.last_shown: np.ndarray | None = None
        self._times: collections.deque = collections.deque(maxlen=30)   # for the live FPS
        self._open = False

    # -- what the window shows
    def write(self, image: np.ndarray, meta: FrameMeta | None = None) -> None:
        shown = side_by_side(meta.frame.image, image) if meta is not None else image.copy()
        now = time.perf_counter()
        self._times.append(now)
        if self.overlay and meta is not None:
            t = self._times
            fps = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0
            lat = (now - meta.t_start) * 1e3
            draw_overlay(shown, [f"{fps:5.1f} FPS  latency {lat:5.1f} ms",
                                 f"infer {meta.infer_ms:5.1f} ms  {meta.backend}"])
        self.show(shown)
        self.last_shown = shown
        self.frames += 1

    def poll(self, stop: threading.Event) -> bool:
        """Handle the keys pressed since the last frame; while paused, wait here (polling the
        keys) until space again, q / Esc, or ``stop``. False: the user asked to quit."""
        if not self._key(self.poll_key(1)):
            return False
        while self.paused and not stop.is_set():
            if not self._key(self.poll_key(30)):
                return False
        return True

    def _key(self, key: int) -> bool:
        if key in (ord("q"), ord("Q"), 27):
            return False
        if key == ord(" "):
            self.paused = not self.paused
        elif key in (ord("s"), ord("S")) and self.last_shown is not None:
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            path = (self.snapshot_dir / f"snapshot_{time.strftime('%Y%m%d-%H%M%S')}_"
                                        f"{len(self.snapshots):03d}.png")
            cv2.imwrite(str(path), self.last_shown)
            self.snapshots.append(str(path))
            self.log(f"snapshot saved: {path}")
        return True

    # -- the OpenCV window
    def show(self, image: np.ndarray) -> None:
        if not self._open:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
            cv2.resizeWindow(self.title, image.shape[1], image.shape[0])
            self._open = True
        cv2.imshow(self.title, image)

    def poll_key(self, wait_ms: int = 1) -> int:
        """The key pressed within ``wait_ms`` (or -1); closing the window counts as q."""
        if not self._open:
            return -1
        key = cv2.waitKey(wait_ms)
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                return ord("q")
        except cv2.error:
            return ord("q")
        return key & 0xFF if key >= 0 else -1

    def close(self) -> None:
        if self._open:
            with contextlib.suppress(cv2.error):
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            self._open = False


def open_sink(uri, *, size: tuple[int, int] | None = None, fps: float | None = None,
              overlay: bool = True, snapshot_dir: str | Path = ".", log=None) -> Sink:
    """Open an output named by ``uri``; ``size`` (w, h) and ``fps`` are needed for video files,
    ``overlay``, ``snapshot_dir`` and ``log`` (snapshot messages) configure a window."""
    if isinstance(uri, Sink):
        return uri
    u = parse_uri(uri)
    if u.scheme == "none":
        return NullSink(u.text or "none")
    if u.scheme == "display":
        return DisplaySink(u.text, overlay=overlay, snapshot_dir=snapshot_dir, log=log)
    if u.scheme == "http":       # the browser view (runtime/web.py)
        from pix2pix_edge.runtime.web import WebSink
        return WebSink(u.text)
    if u.scheme == "rtp":        # H.264 over RTP through GStreamer (runtime/rtp.py)
        from pix2pix_edge.runtime.rtp import RtpSink
        return RtpSink(u.text, size=size, fps=fps)
    if u.scheme in ("rtsp", "webrtc"):
        raise Unavailable(f"streaming output {u.text} is not supported by the OpenCV runtime; "
                          f"write a file or use display://0")
    if u.scheme != "file":
        raise BadInput(f"cannot tell what output {u.text!r} is: use a video file (.mp4, .avi, "
                       f".mkv), an image directory, an image (.png/.jpg), display://0, "
                       f"http://HOST:PORT/ or rtp://HOST:PORT")
    s = u.location
    ext = Path(s).suffix.lower()
    if ext in FOURCCS or (ext in VIDEO_EXTS and ext not in IMAGE_EXTS):
        if size is None:
            raise BadInput(f"video output {s} needs the frame size")
        return VideoFileSink(Path(s).expanduser(), size, fps or 30.0)
    if ext and ext not in IMAGE_EXTS and "%" not in s and not Path(s).is_dir():
        raise BadInput(f"cannot tell what output {s!r} is: use a video file (.mp4, .avi, .mkv), "
                       f"an image directory, an image (.png/.jpg) or display://0")
    if not ext and "%" not in s and os.path.exists(s) and not Path(s).is_dir():
        raise BadInput(f"output {s} exists and is not a folder: give a folder for the images, a "
                       f"video file (.mp4, .avi, .mkv) or an image (.png/.jpg); no output: "
                       f"--headless")
    return ImageSink(s)
