"""Latency of a model alone (and, with a video, of the whole pipeline), as a table and as JSON.

Definitions (also written into the JSON):

- **latency**: wall-clock time of one ``backend.infer(batch)`` call on a ready NCHW float32
  batch (``time.perf_counter``), after ``warmup`` untimed calls. It includes what the backend
  does inside ``infer``: dtype casts and, on a GPU, the host<->device copies and the stream
  synchronisation. It excludes frame capture and pre/post-processing.
- **mean / p50 / p90 / p99 / max** over the ``runs`` timed calls, in milliseconds
  (percentiles by linear interpolation, numpy's default).
- **fps** = images per second = ``batch * 1000 / p50_ms`` (the median latency; runtime.stats,
  the same definition as ``pix2pix run``'s figures and the benchmark suite's).

Every result names the machine, backend, provider, precision, model (path, sha256 prefix,
metadata) and library versions, so numbers from different devices can sit side by side.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from pix2pix_edge.runtime.backends import Backend, backend_for
from pix2pix_edge.runtime.backends.base import largest_pow2_dividing
from pix2pix_edge.runtime.errors import BadInput
from pix2pix_edge.runtime.machine import machine_info, versions
from pix2pix_edge.runtime.model_info import ModelInfo
from pix2pix_edge.runtime.run_options import parse_ints  # noqa: F401 - --batch, as the CLI reads it
from pix2pix_edge.runtime.size import Size, parse_sizes  # noqa: F401 - parse_sizes: --sizes
from pix2pix_edge.runtime.stats import FPS_DEFINITION, PERCENTILE_DEFINITION
from pix2pix_edge.runtime.stats import latency_stats as _latency_stats

SCHEMA = "pix2pix-edge-bench/1"
DEFINITIONS = {
    "latency_ms": "wall-clock time of one backend.infer(batch) call on a ready NCHW float32 batch "
                  "after warm-up; includes dtype casts and host<->device copies, excludes "
                  "capture and pre/post-processing",
    "percentiles": PERCENTILE_DEFINITION,
    "fps": FPS_DEFINITION,
    "video": "end-to-end pipeline on a real video: per-stage p50/p95/p99 ms, frames, dropped "
             "frames, fps = frames written per second of wall-clock time",
}


# --------------------------------------------------------------------------- statistics
def latency_stats(seconds, batch: int = 1) -> dict:
    """Summary of per-call latencies given in seconds (:func:`runtime.stats.latency_stats`;
    the count is called ``runs`` here, like the ``--runs`` flag)."""
    s = _latency_stats(seconds, batch=batch)
    return {"runs": s.pop("n"), **s}


def time_infer(backend, shape, warmup: int = 10, runs: int = 100, seed: int = 0) -> dict:
    """Warm up, then time ``runs`` calls of ``backend.infer`` on one random batch of ``shape``."""
    lo, hi = backend.info.value_range
    x = np.random.default_rng(seed).uniform(lo, hi, size=shape).astype(np.float32)
    for _ in range(max(0, warmup)):
        backend.infer(x)
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        backend.infer(x)
        times.append(time.perf_counter() - t0)
    return latency_stats(times, batch=shape[0])


# --------------------------------------------------------------------------- identification
def sha256_prefix(path, n: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


def model_summary(path, backend: Backend) -> dict:
    p = Path(path)
    return {"path": str(p), "name": p.name, "bytes": p.stat().st_size,
            "sha256": sha256_prefix(p),
            "metadata_source": backend.metadata_source,
            "metadata": backend.info.to_dict()}


# --------------------------------------------------------------------------- planning
def shapes_for(backend: Backend, sizes, batches, notes: list[str]
               ) -> list[tuple[int, int, int, int]]:
    """The input shapes to time on ``backend``; a note for each request the model cannot take."""
    info = backend.info
    name = backend.path.name
    in_shape = backend.input_shape
    fixed_batch = in_shape[0] if isinstance(in_shape[0], int) and in_shape[0] > 0 else None
    if not info.dynamic:
        if sizes and any(s != (info.width, info.height) for s in sizes):
            notes.append(f"{name} has a fixed input size {info.width}x{info.height}: "
                         f"timed at that size only (asked for "
                         f"{', '.join(f'{w}x{h}' for w, h in sizes)})")
        sizes = [Size(info.width, info.height)]
    else:
        sizes = sizes or [Size(info.width, info.height)]
        bad = [f"{w}x{h}" for w, h in sizes if h % info.multiple or w % info.multiple]
        if bad:
            raise BadInput(f"{name} needs sides that are multiples of {info.multiple}; "
                           f"cannot time {', '.join(bad)}")
    if fixed_batch is not None and any(b != fixed_batch for b in batches):
        notes.append(f"{name} has a fixed batch size of {fixed_batch}: timed at that batch only "
                     f"(asked for {', '.join(map(str, batches))})")
        batches = [fixed_batch]
    seen, shapes = set(), []
    for b in batches:
        for w, h in sizes:
            s = (b, info.in_channels, h, w)
            if s not in seen:
                seen.add(s)
                shapes.append(s)
    return shapes


def plan_configs(model, backend: str = "auto", providers=None, fp16_model=None) -> list[dict]:
    """Which (file, backend, provider list, TensorRT-EP fp16) combinations to time.

    An ONNX file runs on every usable ONNX Runtime provider (the TensorRT provider twice: FP32
    and FP16 engines); an optional FP16 ONNX variant runs on the same providers; an engine runs
    on TensorRT."""
    configs = []
    for path in [model] + ([fp16_model] if fp16_model else []):
        kind = backend_for(path, backend)
        if kind == "tensorrt":
            configs.append({"path": str(path), "backend": "tensorrt", "providers": None,
                            "trt_fp16": None})
            continue
        from pix2pix_edge.runtime.backends.onnxruntime import TRT_EP, resolve_providers
        eps = resolve_providers(providers)
        for i, ep in enumerate(eps):
            chain = [ep] + [p for p in eps[i + 1:]]   # lesser providers take unsupported nodes
            for fp16 in ((False, True) if ep == TRT_EP else (None,)):
                configs.append({"path": str(path), "backend": "onnxruntime", "providers": chain,
                                "trt_fp16": fp16})
    return configs


# --------------------------------------------------------------------------- the benchmark
def _open(cfg: dict, info, sizes, **kw):
    """Open one configuration. Files whose metadata or static shape says the size need no
    flags; a dynamic model without metadata takes its size from ``info`` or the first of
    ``sizes``."""
    from pix2pix_edge.runtime.backends import open_backend

    def go(i):
        return open_backend(cfg["path"], cfg["backend"], info=i, fp16=bool(cfg["trt_fp16"]),
                            providers=cfg["providers"], **kw)
    try:
        return go(None)
    except BadInput:
        if info is None and not sizes:
            raise
        if info is None:
            w, h = sizes[0]
            info = ModelInfo(height=h, width=w, multiple=largest_pow2_dividing(h, w))
        return go(info)


def run_bench(model, backend: str = "auto", *, providers=None, sizes=None, batches=(1,),
              warmup: int = 10, runs: int = 100, fp16_model=None, info: ModelInfo | None = None,
              threads: int | None = None, device: int = 0, cache_dir=None, video=None,
              frames: int | None = None, video_output="temp", color_order: str | None = None,
              value_range: tuple[float, float] | None = None, log=None) -> dict:
    """Time every configuration; return the JSON-ready result (see module docstring).

    ``video``: a video file to run the full pipeline on with the best configuration at
    batch 1; ``video_output``: "temp" (encode to a temporary mp4, deleted), None (no output),
    or a path to keep. ``color_order`` / ``value_range``: for models without metadata
    (runtime.backends.open_backend)."""
    log = log or (lambda msg: None)
    if video is not None and not Path(video).is_file():
        raise BadInput(f"video file not found: {video}")   # before minutes of timing
    opening = dict(threads=threads, device=device, cache_dir=cache_dir, color_order=color_order,
                   value_range=value_range)
    sizes = list(sizes or [])
    notes: list[str] = []
    results: list[dict] = []
    models: dict[str, dict] = {}
    best = None
    for cfg in plan_configs(model, backend, providers, fp16_model):
        be = _open(cfg, info, sizes, **opening)
        try:
            if cfg["path"] not in models:
                models[cfg["path"]] = model_summary(cfg["path"], be)
            for shape in shapes_for(be, sizes, batches, notes):
                label = (f"{be.name}/{be.provider} {be.precision} "
                         f"{shape[3]}x{shape[2]} batch {shape[0]}")
                log(f"timing {label} ({warmup} warm-up + {runs} runs)")
                timing = time_infer(be, shape, warmup=warmup, runs=runs)
                row = {"model": Path(cfg["path"]).name, "backend": be.name,
                       "provider": be.provider, "providers": list(be.providers),
                       "precision": be.precision,
                       "io_dtype": be.info.io_dtype, "height": shape[2], "width": shape[3],
                       "batch": shape[0], "warmup": warmup,
                       "threads": be.threads, **timing}
                results.append(row)
                if best is None and shape[0] == 1:
                    best = (cfg, row)
        finally:
            be.close()
    notes = list(dict.fromkeys(notes))
    out = {
        "schema": SCHEMA,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(),
        "models": list(models.values()),
        "settings": {"warmup": warmup, "runs": runs, "threads": threads,
                     "sizes": [f"{w}x{h}" for w, h in sizes] or None, "batches": list(batches)},
        "definitions": DEFINITIONS,
        "results": results,
        "notes": notes,
    }
    if video is not None:
        if best is None:
            raise BadInput("--video needs a batch-1 configuration (add 1 to --batch)")
        out["video"] = run_video(best[0], best[1], video, frames=frames, info=info,
                                 output=video_output, log=log, runs=runs, **opening)
    return out


def run_video(cfg: dict, model_row: dict, video, *, frames=None, info=None, output="temp",
              log=None, runs: int = 100, **opening) -> dict:
    """The end-to-end pipeline on ``video`` with the configuration of ``model_row``, and its
    throughput relative to the model alone.

    The model-only side of that ratio is measured side by side: a block of ``runs // 2`` (at
    least 10) ``infer`` calls on the pipeline's own backend right before and right after the
    pipeline; ``pipeline_vs_model`` uses their mean, so a machine that changes speed between
    the latency table and the video run does not skew it. ``opening``: open_backend's
    threads, device, cache_dir, color_order, value_range."""
    from pix2pix_edge.runtime.pipeline import PipelineOptions, run_pipeline
    from pix2pix_edge.runtime.video import open_source
    log = log or (lambda msg: None)
    if not Path(video).is_file():
        raise BadInput(f"video file not found: {video}")
    be = _open(cfg, info, [], **opening)
    tmp = None
    try:
        if output == "temp":
            tmp = tempfile.TemporaryDirectory(prefix="pix2pix-bench-")
            output_uri = os.path.join(tmp.name, "bench.mp4")
        else:
            output_uri = output
        shape = (1, 3, model_row["height"], model_row["width"])
        block = max(10, runs // 2)
        before = time_infer(be, shape, warmup=3, runs=block)
        log(f"running the pipeline on {Path(video).name} "
            f"({frames or 'all'} frames, output: {output_uri or 'none'})")
        with open_source(str(video)) as source:
            stats = run_pipeline(be, source, output_uri, PipelineOptions(max_frames=frames))
        d = stats.to_dict()
        after = time_infer(be, shape, warmup=0, runs=block)
    finally:
        be.close()
        if tmp is not None:
            tmp.cleanup()
    model_fps = round((before["fps"] + after["fps"]) / 2, 3)
    fps = d.get("fps")
    steady = d.get("steady_fps")
    d.update({"source": str(video), "output": None if output == "temp" else output,
              "encoded": output is not None, "backend": be.name, "provider": be.provider,
              "precision": model_row["precision"], "height": model_row["height"],
              "width": model_row["width"], "model_only_fps": model_fps,
              "model_only_fps_before": before["fps"], "model_only_fps_after": after["fps"],
              "model_only_runs_per_block": block,
              "pipeline_vs_model": round(fps / model_fps, 6) if fps and model_fps else None,
              "steady_pipeline_vs_model": (round(steady / model_fps, 6)
                                           if steady and model_fps else None)})
    return d


# --------------------------------------------------------------------------- output
def format_table(result: dict) -> str:
    """A plain-text table of the model-only results (and the pipeline summary)."""
    head = ["backend", "provider", "precision", "size", "batch", "mean", "p50", "p90", "p99",
            "max", "fps"]
    rows = [head]
    for r in result["results"]:
        rows.append([r["backend"], r["provider"], r["precision"], f"{r['width']}x{r['height']}",
                     str(r["batch"]), *(f"{r[k]:.2f}" for k in ("mean_ms", "p50_ms", "p90_ms",
                                                                 "p99_ms", "max_ms")),
                     f"{r['fps']:.1f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i < 4 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    m = result["machine"]
    lines.insert(0, f"model-only latency in ms ({result['settings']['runs']} runs after "
                    f"{result['settings']['warmup']} warm-up) on {m['cpu']}"
                    f"{' + ' + m['gpu'] if m.get('gpu') else ''}")
    v = result.get("video")
    if v:
        lines.append("")
        lines.append(f"pipeline on {Path(v['source']).name} ({v['provider']}, "
                     f"{v['width']}x{v['height']}): {v.get('frames')} frames, "
                     f"{v.get('dropped', 0)} dropped, {_f(v.get('fps'))} fps = "
                     f"{_pct(v.get('pipeline_vs_model'))} of model-only {_f(v['model_only_fps'])} "
                     f"(same session, timed right before and after)")
        stages = v.get("stages") or {}
        if stages:
            lines.append("  stage     p50     p95     p99  (ms)")
            for name, s in stages.items():
                lines.append(f"  {name:<7} {_f(s.get('p50_ms'), 7)} {_f(s.get('p95_ms'), 7)} "
                             f"{_f(s.get('p99_ms'), 7)}")
    for note in result.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _f(x, width: int = 0) -> str:
    return (f"{x:.2f}" if isinstance(x, (int, float)) else "-").rjust(width)


def _pct(x) -> str:
    return f"{100 * x:.1f}%" if isinstance(x, (int, float)) else "-"


def write_json(result: dict, path) -> Path:
    """Write atomically (a half-written benchmark file is worse than none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
