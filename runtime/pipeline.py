"""The frame loop: capture, inference and output overlap in their own threads.

::

    capture thread          inference thread          output thread
    read -> pre  --[ch1]-->  backend.infer  --[ch2]-->  post -> write / show -> stats

* Files and image sets deliver every frame in order: ``ch1`` is a bounded FIFO, so capture
  blocks while inference is busy and nothing is lost.
* Live sources (cameras, streams) keep only the newest frame: ``ch1`` holds one frame and a new
  one replaces a stale one (counted as ``dropped``), so latency does not grow behind a slow model.
* With a window (display://) the output stage runs in the calling thread instead, because GUI
  toolkits want their window calls there; otherwise the calling thread only waits, so Ctrl-C
  lands there at once. Ctrl-C, end of stream, ``q``/Esc, ``max_frames`` and errors all end the
  same way: the stop event is set, queues close, frames already inferred are still written,
  workers are joined (with timeouts; as daemon threads they cannot keep the process alive) and
  the output is closed, which flushes a video file. An error in a worker is raised again in the
  calling thread as a one-line error.

On a CPU the helpers' own work (decode, resize, colour conversion, encode) competes with the
inference threads for the cores. OpenCV's thread pool is set to one thread for the run
(``cv_threads``), because splitting a 640x480 resize over cores costs more than it saves, and
``helper_priority`` can run the capture and output threads at idle priority so that they fill
the gaps inference leaves instead of preempting it (benchmarks/end_to_end.py measures both).
"""

from __future__ import annotations

import collections
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from pix2pix_edge.runtime.errors import Pix2PixError
from pix2pix_edge.runtime.frames import (FITS, Geometry, Postprocessor, Preprocessor, draw_overlay,
                            model_size_for, plan, side_by_side)
from pix2pix_edge.runtime.interrupt import StopOnCtrlC
from pix2pix_edge.runtime.video import Frame, Sink, Source, open_sink, open_source

STAGES = ("capture", "pre", "infer", "post", "output")
HELPER_PRIORITY: str | None = None   # default scheduling of the capture / output threads
_END = object()
_EMPTY = object()


# ---------------------------------------------------------------------------- statistics
def percentiles(values, qs=(50, 95, 99)) -> dict[str, float]:
    """p50_ms/p95_ms/p99_ms (and mean_ms, max_ms, n) of a list of milliseconds; zeros when empty."""
    if len(values) == 0:
        return {**{f"p{q}_ms": 0.0 for q in qs}, "mean_ms": 0.0, "max_ms": 0.0, "n": 0}
    a = np.asarray(values, dtype=np.float64)
    out = {f"p{q}_ms": round(float(np.percentile(a, q)), 3) for q in qs}
    out.update(mean_ms=round(float(a.mean()), 3), max_ms=round(float(a.max()), 3), n=int(a.size))
    return out


@dataclass
class PipelineStats:
    """What one run did. Times in milliseconds; ``fps`` counts frames written per wall second."""

    source: str = ""
    output: str = ""
    backend: str = ""
    provider: str = ""
    fit: str = "crop"
    live: bool = False
    source_size: tuple[int, int] | None = None      # (w, h)
    model_size: tuple[int, int] | None = None       # (w, h)
    output_size: tuple[int, int] | None = None      # (w, h)
    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    elapsed_s: float = 0.0
    stopped_by: str = "end"       # end | max_frames | key | callback | interrupt | error
    reconnects: int = 0
    snapshots: list[str] = field(default_factory=list)
    stage_ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    latency_ms: list[float] = field(default_factory=list)
    t_out: list[float] = field(default_factory=list)   # perf_counter() of every written frame

    @property
    def fps(self) -> float:
        return self.frames_out / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == "interrupt"

    def steady_fps(self, skip: int = 5) -> float:
        """Frames per second between the ``skip``-th and the last written frame (no start-up)."""
        t = self.t_out
        if len(t) <= skip + 1:
            return self.fps
        return (len(t) - 1 - skip) / (t[-1] - t[skip]) if t[-1] > t[skip] else 0.0

    def stage(self, name: str) -> dict[str, float]:
        return percentiles(self.latency_ms if name == "latency" else self.stage_ms[name])

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "output": self.output, "backend": self.backend,
            "provider": self.provider, "fit": self.fit, "live": self.live,
            "source_size": list(self.source_size) if self.source_size else None,
            "model_size": list(self.model_size) if self.model_size else None,
            "output_size": list(self.output_size) if self.output_size else None,
            "frames": self.frames_out, "frames_in": self.frames_in,
            "frames_out": self.frames_out, "dropped": self.dropped,
            "elapsed_s": round(self.elapsed_s, 4), "fps": round(self.fps, 3),
            "steady_fps": round(self.steady_fps(), 3), "stopped_by": self.stopped_by,
            "reconnects": self.reconnects, "snapshots": list(self.snapshots),
            "stages": {s: percentiles(self.stage_ms[s]) for s in STAGES},
            "latency": percentiles(self.latency_ms),
        }

    def summary_lines(self) -> list[str]:
        """A short human summary (the CLI prints it at the end of a run)."""
        p50 = "  ".join(f"{s} {percentiles(self.stage_ms[s])['p50_ms']:.1f}" for s in STAGES)
        lat = percentiles(self.latency_ms)
        lines = [
            f"frames: {self.frames_in} in, {self.frames_out} out, {self.dropped} dropped"
            f"  ({self.stopped_by}, {self.elapsed_s:.1f} s)",
            f"throughput: {self.fps:.1f} FPS   latency p50 {lat['p50_ms']:.1f} ms, "
            f"p95 {lat['p95_ms']:.1f} ms",
            f"stage p50 (ms): {p50}",
        ]
        return lines


# ---------------------------------------------------------------------------- channels
class _Channel:
    """A bounded hand-over between two threads.

    FIFO mode blocks the producer while full (every frame is kept). Latest mode never blocks:
    a new item pushes out the oldest one, which is counted in ``dropped``.
    """

    def __init__(self, maxsize: int, latest: bool):
        self.maxsize = max(1, int(maxsize))
        self.latest = latest
        self.items: collections.deque = collections.deque()
        self.cond = threading.Condition()
        self.closed = False
        self.dropped = 0

    def put(self, item, stop: threading.Event) -> bool:
        with self.cond:
            if self.latest:
                while len(self.items) >= self.maxsize:
                    self.items.popleft()
                    self.dropped += 1
            else:
                while len(self.items) >= self.maxsize:
                    if stop.is_set() or self.closed:
                        return False
                    self.cond.wait(0.05)
            if self.closed:
                return False
            self.items.append(item)
            self.cond.notify_all()
            return True

    def get(self, timeout: float):
        with self.cond:
            if not self.items and not self.closed:
                self.cond.wait(timeout)
            if self.items:
                item = self.items.popleft()
                self.cond.notify_all()
                return item
            return _END if self.closed else _EMPTY

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


@dataclass
class _Item:
    frame: Frame
    geom: Geometry
    blob: np.ndarray
    t0: float                       # when the frame's journey started (read began / arrived)
    out: np.ndarray | None = None


class _Stop(Exception):
    pass


# ---------------------------------------------------------------------------- the loop
def run_pipeline(backend, source_uri, output_uri=None, *, fit: str = "crop",
                 max_frames: int | None = None, headless: bool = True, loop: bool = False,
                 source_size: tuple[int, int] | None = None, source_fps: float | None = None,
                 overlay: bool = True, on_frame: Callable | None = None,
                 size: tuple[int, int] | None = None, queue_size: int = 4,
                 cv_threads: int | None = 1, decode_threads: int | None = None,
                 warmup: int = 1, join_timeout: float = 5.0, snapshot_dir: str | Path = ".",
                 helper_priority: str | None = "default", start_frame: int = 0,
                 log: Callable[[str], None] | None = None) -> PipelineStats:
    """Translate every frame of ``source_uri`` with ``backend`` and write it to ``output_uri``.

    ``source_uri``/``output_uri`` are URIs (see runtime.video) or ready Source / Sink objects.
    ``output_uri=None`` means no output when ``headless`` (the default), a window otherwise.
    ``size`` (w, h) sets the run size of dynamic models. ``on_frame(frame, output_bgr)`` is
    called for each written frame in the output stage; returning False stops the run.
    ``cv_threads``: OpenCV's thread pool during the run (None leaves it); ``decode_threads``:
    FFmpeg decoder threads for files (None: FFmpeg's choice). ``helper_priority``: None, "low"
    or "idle" for the capture and output threads ("default": the module's HELPER_PRIORITY).
    ``warmup`` inferences run before the clock starts. Returns :class:`PipelineStats`; Ctrl-C ends the run cleanly with
    ``stopped_by == "interrupt"`` (the caller decides the exit code).
    """
    if fit not in FITS:
        from pix2pix_edge.runtime.errors import BadInput
        raise BadInput(f"unknown fit {fit!r}: expected one of {', '.join(FITS)}")
    info = backend.info
    say = log or (lambda msg: None)
    source = open_source(source_uri, size=source_size, fps=source_fps, loop=loop,
                         decode_threads=decode_threads, start_frame=start_frame)
    sink = None
    ctx = {"capture_alive": False}
    old_cv_threads = cv2.getNumThreads()
    try:
        src_size = source.size
        geom_cache: dict[tuple[int, int], tuple[Geometry, Preprocessor, Postprocessor]] = {}

        def processors(wh: tuple[int, int]):
            if wh not in geom_cache:
                region_src = wh
                model_wh = model_size_for(info, region_src, size, fit)
                g = plan(wh, model_wh, fit)
                geom_cache[wh] = (g, Preprocessor(g, info.color_order, info.value_range),
                                  Postprocessor(g, info.color_order, info.value_range))
            return geom_cache[wh]

        geom, _, _ = processors(src_size)
        if output_uri is None and not headless:
            output_uri = "display://0"
        sink = open_sink(output_uri, size=geom.out_size, fps=source.fps or source_fps or 30.0)
        stats = PipelineStats(
            source=str(getattr(source, "uri", source_uri)), output=str(getattr(sink, "uri", "")),
            backend=str(getattr(backend, "name", type(backend).__name__)),
            provider=str(getattr(backend, "provider", "")), fit=fit, live=bool(source.live),
            source_size=tuple(src_size), model_size=geom.model_size, output_size=geom.out_size)
        if cv_threads is not None:
            cv2.setNumThreads(int(cv_threads))
        mw, mh = geom.model_size
        for _ in range(max(0, warmup)):
            backend.infer(np.zeros((1, 3, mh, mw), np.float32))
        _loop(backend, source, sink, stats, processors, max_frames=max_frames,
              overlay=overlay, on_frame=on_frame, queue_size=queue_size,
              join_timeout=join_timeout, snapshot_dir=Path(snapshot_dir), say=say,
              helper_priority=HELPER_PRIORITY if helper_priority == "default" else helper_priority,
              ctx=ctx)
        return stats
    finally:
        if sink is not None:
            sink.close()        # flushes a video file on every exit path
        if not ctx["capture_alive"]:   # never release a capture another thread is reading
            source.close()
        if cv_threads is not None:
            cv2.setNumThreads(old_cv_threads)


def _lower_priority(mode: str | None) -> None:
    """Let the inference thread win the cores: run this (helper) thread at a lower priority.

    ``idle`` (Linux SCHED_IDLE): the thread runs only on a core nothing else wants, i.e. in the
    gaps ONNX Runtime leaves between and inside inferences. ``low``: nice 10. Lowering one's own
    priority needs no privileges; where the OS refuses, nothing changes."""
    if not mode:
        return
    try:
        if mode == "idle" and hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        elif mode in ("idle", "low") and hasattr(os, "setpriority"):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (OSError, AttributeError):
        pass


def _loop(backend, source: Source, sink: Sink, stats: PipelineStats, processors, *,
          max_frames, overlay, on_frame, queue_size, join_timeout, snapshot_dir: Path, say,
          helper_priority, ctx):
    live = bool(source.live)
    stop = threading.Event()
    ch1 = _Channel(1 if live else queue_size, latest=live)
    ch2 = _Channel(2 if live else queue_size, latest=False)
    errors: list[tuple[str, BaseException]] = []
    counts = {"in": 0}
    limit = int(max_frames) if max_frames else None
    in_main = sink.is_display        # GUI calls belong to the calling thread

    def fail(stage: str, e: BaseException):
        errors.append((stage, e))
        stop.set()

    def capture():
        try:
            _lower_priority(helper_priority)
            while not stop.is_set():
                t0 = time.perf_counter()
                frame = source.read()
                t1 = time.perf_counter()
                if frame is None:
                    break
                counts["in"] += 1
                img = frame.image
                geom, pre, _ = processors((img.shape[1], img.shape[0]))
                blob = pre(img)
                t2 = time.perf_counter()
                stats.stage_ms["capture"].append((t1 - t0) * 1e3)
                stats.stage_ms["pre"].append((t2 - t1) * 1e3)
                # Latency starts when a live frame arrives, or when decoding a file frame began.
                item = _Item(frame, geom, blob, t1 if live else t0)
                if not ch1.put(item, stop):
                    break
                if limit is not None and not live and counts["in"] >= limit:
                    break
        except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread
            fail("capture", e)
        finally:
            ch1.close()

    def infer():
        try:
            while not stop.is_set():
                item = ch1.get(0.05)
                if item is _END:
                    break
                if item is _EMPTY:
                    continue
                t0 = time.perf_counter()
                item.out = backend.infer(item.blob)
                stats.stage_ms["infer"].append((time.perf_counter() - t0) * 1e3)
                item.blob = None
                if not ch2.put(item, stop):
                    break
        except BaseException as e:  # noqa: BLE001
            fail("infer", e)
        finally:
            ch2.close()

    recent = collections.deque(maxlen=30)     # output times, for the live FPS overlay
    state = {"paused": False, "shown": None}
    done = threading.Event()

    def output():
        """Post-process and write until the inference stage closes ch2 (frames finished before
        a stop or an error are still written), or until a key, the callback or max_frames."""
        try:
            if not in_main:
                _lower_priority(helper_priority)
            while True:
                if state["paused"]:
                    if stop.is_set():
                        break
                    _keys(sink.poll_key(30))
                    continue
                item = ch2.get(0.05)
                if item is _END:
                    break
                if item is _EMPTY:
                    continue
                t0 = time.perf_counter()
                _, _, post = processors((item.frame.image.shape[1], item.frame.image.shape[0]))
                out = post(item.out)
                t1 = time.perf_counter()
                if sink.is_display:
                    shown = side_by_side(item.frame.image, out)
                    if overlay:
                        draw_overlay(shown, _overlay_lines(stats, recent, backend))
                    sink.write(shown, item.frame.name)
                    state["shown"] = shown
                else:
                    sink.write(out, item.frame.name)
                t2 = time.perf_counter()
                stats.stage_ms["post"].append((t1 - t0) * 1e3)
                stats.stage_ms["output"].append((t2 - t1) * 1e3)
                stats.latency_ms.append((t2 - item.t0) * 1e3)
                stats.t_out.append(t2)
                recent.append(t2)
                stats.frames_out += 1
                if on_frame is not None and on_frame(item.frame, out) is False:
                    stats.stopped_by = "callback"
                    break
                if sink.is_display:
                    _keys(sink.poll_key(1))
                if limit is not None and stats.frames_out >= limit:
                    stats.stopped_by = "max_frames"
                    break
        except _Stop:
            stats.stopped_by = "key"
        except BaseException as e:  # noqa: BLE001
            if in_main:
                raise
            fail("output", e)
        finally:
            stop.set()
            done.set()

    def _keys(key: int):
        state["paused"], state["shown"] = _handle_key(key, state["paused"], state["shown"],
                                                      stats, snapshot_dir, say)

    threads = [threading.Thread(target=capture, name="pix2pix-capture", daemon=True),
               threading.Thread(target=infer, name="pix2pix-infer", daemon=True)]
    if not in_main:
        threads.append(threading.Thread(target=output, name="pix2pix-output", daemon=True))
    # Ctrl-C: the stages wind down as at the end of a stream; a second one interrupts at once.
    with StopOnCtrlC(on_stop=stop.set) as ctrl_c:
        t_start = time.perf_counter()
        for t in threads:
            t.start()
        try:
            if in_main:
                output()
            else:
                # Wait on an event, not Thread.join: a Ctrl-C that interrupts join() can leave
                # the thread looking dead while it still runs (seen with CPython 3.11).
                while not done.wait(0.1):
                    pass
        except KeyboardInterrupt:
            ctrl_c.requested = True
        finally:
            if ctrl_c.requested:
                stats.stopped_by = "interrupt"
            stop.set()
            ch1.close()
            deadline = time.perf_counter() + join_timeout
            for t in threads:
                if t.name == "pix2pix-output":
                    ch2.close()       # the inference stage is done (or hung): let output finish
                t.join(max(0.0, deadline - time.perf_counter()))
            ctx["capture_alive"] = threads[0].is_alive()
            stats.elapsed_s = (stats.t_out[-1] if stats.t_out else time.perf_counter()) - t_start
            stats.frames_in = counts["in"]
            stats.dropped = ch1.dropped
            stats.reconnects = int(getattr(source, "reconnects", 0))
            hung = [t.name for t in threads if t.is_alive()]
            if hung:
                say(f"warning: thread(s) {', '.join(hung)} did not stop within {join_timeout:.0f} s")
    if errors and stats.stopped_by != "interrupt":
        stats.stopped_by = "error"
        stage, e = errors[0]
        if isinstance(e, Pix2PixError):
            raise e
        msg = (str(e).strip().splitlines() or [""])[0]
        raise Pix2PixError(f"{stage} stage failed: {type(e).__name__}: {msg}") from e
    if stats.stopped_by == "end" and limit is not None and stats.frames_out >= limit:
        stats.stopped_by = "max_frames"


def _overlay_lines(stats: PipelineStats, recent, backend) -> list[str]:
    fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0
    lat = stats.latency_ms[-1] if stats.latency_ms else 0.0
    inf = stats.stage_ms["infer"][-1] if stats.stage_ms["infer"] else 0.0
    name = getattr(backend, "provider", "") or getattr(backend, "name", "")
    return [f"{fps:5.1f} FPS  latency {lat:5.1f} ms", f"infer {inf:5.1f} ms  {name}"]


def _handle_key(key: int, paused: bool, last_shown, stats: PipelineStats, snapshot_dir: Path, say):
    """q / Esc quit, space pauses and resumes, s saves the window as a PNG."""
    if key in (ord("q"), ord("Q"), 27):
        raise _Stop()
    if key == ord(" "):
        return (not paused), last_shown
    if key in (ord("s"), ord("S")) and last_shown is not None:
        snapshot_dir.mkdir(parents=True, exist_ok=True)
        path = snapshot_dir / f"snapshot_{time.strftime('%Y%m%d-%H%M%S')}_{len(stats.snapshots):03d}.png"
        cv2.imwrite(str(path), last_shown)
        stats.snapshots.append(str(path))
        say(f"snapshot saved: {path}")
    return paused, last_shown
