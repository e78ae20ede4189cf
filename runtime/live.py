"""A camera without a camera, and the latency a live user feels.

:class:`RealtimeSource` plays a video file at its own frame rate the way a camera delivers
frames: frame ``k`` becomes available at ``start + k / fps`` (decoded ahead of time, so decoding
never delays it), a newer frame replaces one nobody has taken yet (newest frame wins, as with
``appsink drop=true max-buffers=1`` or ``CAP_PROP_BUFFERSIZE=1``), and each frame's
``t_capture`` is the moment it became available. ``pix2pix run --realtime`` uses it.

:func:`run_live` (``pix2pix bench MODEL --live URI``) runs the pipeline on such a source (or a
real camera or stream) and reports **capture-to-output latency**: from ``t_capture`` to the
moment the output frame has been written, p50 / p95 / p99; the frames the source delivered, the
frames written, the frames dropped (delivered but never written, the newest-frame policy at
work) and the FPS delivered. Next to it, the model alone (``infer`` p50 on a ready batch) and the
target a newest-frame pipeline should meet: model p50 + one source frame interval + 5 ms.
"""

from __future__ import annotations

import threading
import time

from pix2pix_edge.runtime.errors import BadInput
from pix2pix_edge.runtime.video import Frame, Source, open_source


class RealtimeSource(Source):
    """``inner`` (a file or image source) replayed in real time at ``fps`` (default: its own)."""

    live = True

    def __init__(self, inner: Source, fps: float | None = None):
        if getattr(inner, "live", False):
            raise BadInput(f"--realtime is for video files and image sets; {inner.uri} is "
                           f"already live")
        self.inner = inner
        self.uri = f"{inner.uri} (realtime)"
        self.size = inner.size
        self.fps = float(fps or inner.fps or 30.0)
        self.frame_count = getattr(inner, "frame_count", None)
        self.delivered = 0        # frames made available
        self.missed = 0           # replaced by a newer one before anybody read them
        self.taken = 0            # frames read
        self.delivered_by_last_read = 0   # frames made available until the last read
        self._cond = threading.Condition()
        self._newest: Frame | None = None
        self._ended = False
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def skipped(self) -> list:
        """The unreadable images the replayed image set skipped (none for a video)."""
        return list(getattr(self.inner, "skipped", ()))

    def _play(self) -> None:
        interval = 1.0 / self.fps
        start = time.perf_counter()
        k = 0
        try:
            while not self._closed.is_set():
                frame = self.inner.read()          # decode ahead of its due time
                if frame is None:
                    break
                delay = start + k * interval - time.perf_counter()
                if delay > 0 and self._closed.wait(delay):
                    break
                frame.t_capture = time.perf_counter()
                with self._cond:
                    if self._newest is not None:
                        self.missed += 1
                    self._newest = frame
                    self.delivered += 1
                    self._cond.notify_all()
                k += 1
        except BaseException as e:  # noqa: BLE001 - handed to the reader
            self.error = e
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def read(self) -> Frame | None:
        if self._thread is None:      # the clock starts with the first read, not at opening
            self._thread = threading.Thread(target=self._play, name="pix2pix-realtime", daemon=True)
            self._thread.start()
        with self._cond:
            while self._newest is None and not self._ended and not self._closed.is_set():
                self._cond.wait(0.1)
            frame, self._newest = self._newest, None
            if frame is not None:
                self.taken += 1
                self.delivered_by_last_read = self.delivered
        if frame is None and self.error is not None:
            raise self.error
        return frame

    def close(self) -> None:
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(2.0)
        self.inner.close()


def open_live_source(uri, *, realtime: bool = True, fps: float | None = None, **kw) -> Source:
    """A live source for ``uri``: cameras and streams as they are; files and image sets replayed
    in real time when ``realtime``."""
    src = open_source(uri, **kw)
    if realtime and not src.live:
        return RealtimeSource(src, fps=fps)
    return src


def run_live(backend, uri, *, frames: int | None = 240, source_fps: float | None = None,
             fit: str = "crop", model_runs: int = 30, skip: int = 5, output=None,
             log=None) -> dict:
    """Capture-to-output latency of the whole pipeline on a live (or realtime-replayed) source.

    ``frames``: output frames to write (None: to the end of the source), as many as asked; the
    latency figures leave out the first ``skip`` of them (start-up); ``model_runs``: timed infer calls for the model-alone p50, measured in the same
    process just before and just after the run (the mean of the two p50s: on a shared machine
    the load drifts during a run)."""
    from pix2pix_edge.runtime.bench import time_infer
    from pix2pix_edge.runtime.frames import model_size_for, plan
    from pix2pix_edge.runtime.pipeline import PipelineOptions, run_pipeline
    from pix2pix_edge.runtime.stats import percentiles

    say = log or (lambda msg: None)
    src = open_live_source(uri, fps=source_fps)
    try:
        mw, mh = plan(src.size, model_size_for(backend.info, src.size, None, fit), fit).model_size
        before = time_infer(backend, (1, 3, mh, mw), warmup=5, runs=model_runs)
        lat: list[float] = []
        idx: list[int] = []

        def on_frame(frame, out):
            lat.append((time.perf_counter() - frame.t_capture) * 1e3)
            idx.append(frame.index)

        stats = run_pipeline(backend, src, output,
                             PipelineOptions(fit=fit, max_frames=frames, on_frame=on_frame,
                                             warmup=2, log=log))
    finally:
        src.close()            # the source stops playing before the model is timed again
    after = time_infer(backend, (1, 3, mh, mw), warmup=2, runs=model_runs)
    model = {"p50_ms": round((before["p50_ms"] + after["p50_ms"]) / 2, 3),
             "before": before, "after": after}
    say(f"model alone: infer p50 {before['p50_ms']:.1f} ms before, {after['p50_ms']:.1f} ms after "
        f"the run ({model_runs} runs each at {mw}x{mh})")
    fps = float(src.fps or 0.0)
    interval_ms = 1000.0 / fps if fps > 0 else None
    # Frames delivered while the pipeline was reading (a replayed file goes on playing until
    # it is closed; frames after the last read were never the pipeline's to take).
    delivered = int(getattr(src, "delivered_by_last_read", stats.frames_in))
    steady = lat[skip:] if len(lat) > skip + 1 else lat
    latency = percentiles(steady)
    target = (round(model["p50_ms"] + interval_ms + 5.0, 2) if interval_ms is not None else None)
    # The same bound with the model's time inside this run (on a shared CPU the decoder and
    # other processes slow inference down): what is left is the pipeline's own waiting.
    infer_in_run = stats.stage("infer")["p50_ms"]
    target_in_run = round(infer_in_run + interval_ms + 5.0, 2) if interval_ms is not None else None
    return {
        "source": str(uri), "realtime": isinstance(src, RealtimeSource),
        "source_fps": round(fps, 3), "source_interval_ms": round(interval_ms, 2) if interval_ms else None,
        "model_p50_ms": model["p50_ms"], "model": model,
        "latency": latency, "startup_frames": len(lat) - len(steady),
        "target_p50_ms": target,
        "meets_target": bool(latency["n"] and target is not None and latency["p50_ms"] <= target),
        "infer_p50_in_run_ms": infer_in_run, "target_in_run_p50_ms": target_in_run,
        "meets_target_in_run": bool(latency["n"] and target_in_run is not None
                                    and latency["p50_ms"] <= target_in_run),
        "frames_delivered": delivered, "frames_out": stats.frames_out,
        "dropped": max(0, delivered - stats.frames_out),
        "dropped_in_source": delivered - stats.frames_in, "dropped_in_pipeline": stats.dropped,
        "fps_delivered": round(stats.fps, 2), "steady_fps": round(stats.steady_fps(skip), 2),
        "elapsed_s": round(stats.elapsed_s, 3),
        "stages_p50_ms": {s: stats.stage(s)["p50_ms"] for s in ("pre", "infer", "post", "output")},
        "definitions": {
            "latency": "t_capture (the frame became available at the source) to the output "
                       "frame written, per output frame, after the first frames",
            "dropped": "frames the source delivered that were never written (newest frame wins)",
            "target_p50_ms": "model p50 + one source frame interval + 5 ms",
        },
    }


def format_live(r: dict) -> str:
    lat = r["latency"]
    lines = [
        f"live source {r['source']}: {r['source_fps']:.2f} fps"
        f"{' (file replayed in real time, newest frame wins)' if r['realtime'] else ''}",
        f"capture-to-output latency: p50 {lat['p50_ms']:.1f} ms  p95 {lat['p95_ms']:.1f} ms  "
        f"p99 {lat['p99_ms']:.1f} ms  ({lat['n']} frames after {r['startup_frames']} "
        f"start-up frames)",
        f"model alone p50 {r['model_p50_ms']:.1f} ms; target p50 <= {r['target_p50_ms']} ms "
        f"(model + one frame interval + 5 ms): {'met' if r['meets_target'] else 'MISSED'}",
        f"infer p50 inside this run {r['infer_p50_in_run_ms']:.1f} ms; p50 <= "
        f"{r['target_in_run_p50_ms']} ms: {'met' if r['meets_target_in_run'] else 'MISSED'}",
        f"frames: {r['frames_delivered']} delivered, {r['frames_out']} written, "
        f"{r['dropped']} dropped; {r['fps_delivered']:.1f} FPS delivered",
    ]
    return "\n".join(lines)


def load_avg() -> str:
    """The 1 / 5 / 15 minute load average as text (the machine is shared: note it)."""
    from pix2pix_edge.runtime.machine import load_average
    la = load_average()
    return " ".join(f"{x:.2f}" for x in la) if la else "unknown"
