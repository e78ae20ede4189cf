"""The frame loop: capture, inference and output overlap in their own threads.

::

    source = open_source("video.mp4")                 # the caller opens (and closes) the source
    stats = run_pipeline(backend, source, "out.mp4", PipelineOptions(fit="crop"))

    capture thread               inference thread              output thread
    read -> pre  --[to_infer]-->  backend.infer  --[to_output]-->  post -> sink.write(image, meta)

* Files and image sets deliver every frame in order: ``to_infer`` is a bounded FIFO, so capture
  blocks while inference is busy and nothing is lost.
* Live sources (cameras, streams) keep only the newest frame: ``to_infer`` holds one frame and a
  new one replaces a stale one (counted as ``dropped``), so latency does not grow behind a slow
  model.
* The output stage only post-processes and writes: each image goes to the sink with a
  :class:`~pix2pix_edge.runtime.video.FrameMeta` (the captured frame and its capture time);
  after each write ``sink.poll()`` says whether to go on. Whatever a window does (side-by-side
  view, FPS text, pause, snapshot, keys) lives in the display sink.
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
import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from pix2pix_edge.runtime.errors import BadInput, Pix2PixError
from pix2pix_edge.runtime.frames import (FITS, Geometry, Postprocessor, Preprocessor,
                                         choose_model_size, model_size_for, plan)
from pix2pix_edge.runtime.interrupt import StopOnSignal, exit_code
from pix2pix_edge.runtime.run_options import PipelineOptions  # noqa: F401 - re-exported
from pix2pix_edge.runtime.stats import percentiles
from pix2pix_edge.runtime.video import Frame, FrameMeta, Sink, Source, open_sink

STAGES = ("capture", "pre", "infer", "post", "output")
HELPER_PRIORITY: str | None = None   # default scheduling of the capture / output threads
_END = object()
_EMPTY = object()


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
    skipped: list[tuple[str, str]] = field(default_factory=list)   # unreadable images (path, why)
    elapsed_s: float = 0.0
    stopped_by: str = "end"       # end | max_frames | key | callback | interrupt | error
    signal: int = 0               # the signal that interrupted the run (SIGINT, SIGTERM, SIGHUP)
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

    @property
    def exit_code(self) -> int:
        """The command's exit status: 0, or 128 + the signal that interrupted the run."""
        return exit_code(self.signal) if self.interrupted else 0

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
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "elapsed_s": round(self.elapsed_s, 4), "fps": round(self.fps, 3),
            "steady_fps": round(self.steady_fps(), 3), "stopped_by": self.stopped_by,
            "signal": self.signal or None,
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
            f"{f', {len(self.skipped)} unreadable skipped' if self.skipped else ''}"
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
    blob: np.ndarray | None
    t0: float                       # when the frame's journey started (read began / arrived)
    out: np.ndarray | None = None
    infer_ms: float = 0.0


# ---------------------------------------------------------------------------- the loop
def run_pipeline(backend, source: Source, output=None,
                 options: PipelineOptions | None = None) -> PipelineStats:
    """Translate every frame of ``source`` with ``backend`` and write it to ``output``.

    ``source``: an open :class:`Source` (``open_source(uri, ...)``; the caller closes it).
    ``output``: a sink URI (see runtime.video; None: no output) or an open :class:`Sink`; a URI
    is opened here, once the output size is known, and every sink is closed here (which
    flushes a video file). Returns :class:`PipelineStats`; Ctrl-C ends the run cleanly with
    ``stopped_by == "interrupt"`` (the caller decides the exit code).
    """
    opt = options or PipelineOptions()
    if opt.fit not in FITS:
        raise BadInput(f"unknown fit {opt.fit!r}: expected one of {', '.join(FITS)}")
    if not isinstance(source, Source):
        raise TypeError("run_pipeline takes an open Source: source = open_source(uri, ...)")
    sink = None
    old_cv_threads = cv2.getNumThreads()
    try:
        pipe = Pipeline(backend, source, opt)
        geom = pipe.processors(tuple(source.size))[0]
        fps = source.fps or getattr(source, "req_fps", None) or 30.0
        sink = open_sink(output, size=geom.out_size, fps=fps, overlay=opt.overlay,
                         snapshot_dir=opt.snapshot_dir, log=pipe.say)
        pipe.sink = sink
        pipe.stats = PipelineStats(
            source=str(source.uri), output=str(getattr(sink, "uri", "")),
            backend=backend.name, provider=backend.provider, fit=opt.fit, live=pipe.live,
            source_size=tuple(source.size), model_size=geom.model_size, output_size=geom.out_size)
        if opt.cv_threads is not None:
            cv2.setNumThreads(int(opt.cv_threads))
        mw, mh = geom.model_size
        for _ in range(max(0, opt.warmup)):
            backend.infer(np.zeros((1, 3, mh, mw), np.float32))
        pipe.run()
    except BaseException:
        if sink is not None:    # keep what was translated where the file is whole; this error wins
            with contextlib.suppress(Exception):
                sink.close()
        raise
    finally:
        if opt.cv_threads is not None:
            cv2.setNumThreads(old_cv_threads)
    sink.close()   # flushes a video file; an output that could not be written whole raises
    return pipe.stats


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


class Pipeline:
    """One run's three stages and what they share.

    ``capture`` reads and pre-processes into ``to_infer``; ``infer`` runs the model into
    ``to_output``; ``output`` post-processes, hands each image and its :class:`FrameMeta` to
    the sink, records the statistics and asks the sink whether to go on. Live sources keep
    only the newest frame in ``to_infer`` (stale ones are counted as dropped); files and image
    sets keep every frame. ``run()`` starts the threads, waits, and ends them all the same way
    for every reason a run stops."""

    def __init__(self, backend, source: Source, options: PipelineOptions):
        self.backend, self.source, self.opt = backend, source, options
        self.sink: Sink | None = None
        self.stats = PipelineStats()
        self.live = bool(source.live)
        self.limit = int(options.max_frames) if options.max_frames else None
        self.say = options.log or (lambda msg: None)
        self.helper_priority = (HELPER_PRIORITY if options.helper_priority == "default"
                                else options.helper_priority)
        self.label = backend.provider or backend.name
        queue = options.queue_size
        self.to_infer = _Channel(1 if self.live else queue, latest=self.live)
        self.to_output = _Channel(2 if self.live else queue, latest=False)
        self.stop = threading.Event()
        self.done = threading.Event()        # the output stage has finished
        self.errors: list[tuple[str, BaseException]] = []
        self.frames_in = 0
        self._geoms: dict[tuple[int, int], tuple[Geometry, Preprocessor, Postprocessor]] = {}
        if backend.info.dynamic:   # which size a dynamic model runs at, and why (one line)
            (w, h), why = choose_model_size(backend.info, options.size)
            self.say(f"model size {w}x{h}: {why}")

    def processors(self, wh: tuple[int, int]) -> tuple[Geometry, Preprocessor, Postprocessor]:
        """Geometry and pre/post-processors for frames of size ``wh`` (w, h), made once."""
        if wh not in self._geoms:
            info = self.backend.info
            g = plan(wh, model_size_for(info, wh, self.opt.size, self.opt.fit), self.opt.fit)
            self._geoms[wh] = (g, Preprocessor(g, info.color_order, info.value_range),
                               Postprocessor(g, info.color_order, info.value_range))
        return self._geoms[wh]

    def _fail(self, stage: str, e: BaseException) -> None:
        self.errors.append((stage, e))
        self.stop.set()

    # -- the stages
    def capture(self) -> None:
        stage_ms = self.stats.stage_ms
        try:
            _lower_priority(self.helper_priority)
            while not self.stop.is_set():
                t0 = time.perf_counter()
                frame = self.source.read()
                t1 = time.perf_counter()
                if frame is None:
                    break
                self.frames_in += 1
                img = frame.image
                geom, pre, _ = self.processors((img.shape[1], img.shape[0]))
                blob = pre(img)
                t2 = time.perf_counter()
                stage_ms["capture"].append((t1 - t0) * 1e3)
                stage_ms["pre"].append((t2 - t1) * 1e3)
                # Latency starts when a live frame arrives, or when decoding a file frame began.
                item = _Item(frame, geom, blob, t1 if self.live else t0)
                if not self.to_infer.put(item, self.stop):
                    break
                # Enough frames taken in for max_frames: a live channel drops no frame once
                # capture stops putting, so frames in = frames out + dropped, as asked.
                if self.limit is not None and self.frames_in - self.to_infer.dropped >= self.limit:
                    break
        except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread
            # Like the end of the input: the frames taken in before are still translated and
            # written, then the error is raised.
            self.errors.append(("capture", e))
        finally:
            self.to_infer.close()

    def infer(self) -> None:
        try:
            while not self.stop.is_set():
                item = self.to_infer.get(0.05)
                if item is _END:
                    break
                if item is _EMPTY:
                    continue
                t0 = time.perf_counter()
                item.out = self.backend.infer(item.blob)
                item.infer_ms = (time.perf_counter() - t0) * 1e3
                self.stats.stage_ms["infer"].append(item.infer_ms)
                item.blob = None
                if not self.to_output.put(item, self.stop):
                    break
        except BaseException as e:  # noqa: BLE001
            self._fail("infer", e)
        finally:
            self.to_output.close()

    def output(self, in_main: bool = False) -> None:
        """Post-process and write until the inference stage closes ``to_output`` (frames
        finished before a stop or an error are still written), or until the sink's user quits,
        the callback says stop or ``max_frames`` is reached."""
        stats, sink, on_frame = self.stats, self.sink, self.opt.on_frame
        try:
            if not in_main:
                _lower_priority(self.helper_priority)
            while True:
                item = self.to_output.get(0.05)
                if item is _END:
                    break
                if item is _EMPTY:
                    continue
                t0 = time.perf_counter()
                img = item.frame.image
                out = self.processors((img.shape[1], img.shape[0]))[2](item.out)
                t1 = time.perf_counter()
                sink.write(out, FrameMeta(item.frame, item.t0, item.infer_ms, self.label))
                t2 = time.perf_counter()
                stats.stage_ms["post"].append((t1 - t0) * 1e3)
                stats.stage_ms["output"].append((t2 - t1) * 1e3)
                stats.latency_ms.append((t2 - item.t0) * 1e3)
                stats.t_out.append(t2)
                stats.frames_out += 1
                if on_frame is not None and on_frame(item.frame, out) is False:
                    stats.stopped_by = "callback"
                    break
                if not sink.poll(self.stop):
                    stats.stopped_by = "key"
                    break
                if self.limit is not None and stats.frames_out >= self.limit:
                    stats.stopped_by = "max_frames"
                    break
        except BaseException as e:  # noqa: BLE001
            if in_main:
                raise
            self._fail("output", e)
        finally:
            self.stop.set()
            self.done.set()

    # -- the run
    def run(self) -> None:
        """Run the stages to the end; raise a worker's error in the calling thread.

        With a window (``sink.is_display``) the output stage runs in the calling thread,
        because GUI toolkits want their window calls there; otherwise the calling thread only
        waits, so Ctrl-C lands there at once."""
        stats, stop = self.stats, self.stop
        in_main = bool(self.sink.is_display)
        threads = [threading.Thread(target=self.capture, name="pix2pix-capture", daemon=True),
                   threading.Thread(target=self.infer, name="pix2pix-infer", daemon=True)]
        if not in_main:
            threads.append(threading.Thread(target=self.output, name="pix2pix-output",
                                            daemon=True))
        # Ctrl-C, SIGTERM, SIGHUP: the stages wind down as at the end of a stream (the output is
        # closed properly); a second signal interrupts at once.
        with StopOnSignal(on_stop=stop.set) as signalled:
            t_start = time.perf_counter()
            for t in threads:
                t.start()
            try:
                if in_main:
                    self.output(in_main=True)
                else:
                    # Wait on an event, not Thread.join: a Ctrl-C that interrupts join() can
                    # leave the thread looking dead while it still runs (seen with CPython 3.11).
                    while not self.done.wait(0.1):
                        pass
            except KeyboardInterrupt as e:
                signalled.requested = True
                signalled.signum = signalled.signum or getattr(e, "signum", None)
            finally:
                if signalled.requested:
                    stats.stopped_by = "interrupt"
                    stats.signal = signalled.interrupted().signum
                stop.set()
                self.to_infer.close()
                deadline = time.perf_counter() + self.opt.join_timeout
                for t in threads:
                    if t.name == "pix2pix-output":
                        self.to_output.close()   # inference is done (or hung): let output finish
                    t.join(max(0.0, deadline - time.perf_counter()))
                stats.elapsed_s = (stats.t_out[-1] if stats.t_out else time.perf_counter()) - t_start
                stats.frames_in = self.frames_in
                stats.dropped = self.to_infer.dropped
                stats.reconnects = int(getattr(self.source, "reconnects", 0))
                stats.skipped = list(getattr(self.source, "skipped", ()))
                stats.snapshots = list(getattr(self.sink, "snapshots", ()))
                hung = [t.name for t in threads if t.is_alive()]
                if hung:
                    self.say(f"warning: thread(s) {', '.join(hung)} did not stop within "
                             f"{self.opt.join_timeout:.0f} s")
        if self.errors and stats.stopped_by != "interrupt":
            stats.stopped_by = "error"
            stage, e = self.errors[0]
            if isinstance(e, (Pix2PixError, OSError)):   # OSError: the CLI names disk full etc.
                raise e
            msg = (str(e).strip().splitlines() or [""])[0]
            raise Pix2PixError(f"{stage} stage failed: {type(e).__name__}: {msg}") from e
        if stats.stopped_by == "end" and self.limit is not None and stats.frames_out >= self.limit:
            stats.stopped_by = "max_frames"
