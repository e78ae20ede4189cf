"""``pix2pix bench``: model-only latency per backend / precision / size / batch, and optionally
the end-to-end video pipeline. Prints a table; ``--json`` writes the full record."""

from __future__ import annotations

import click

from pix2pix_edge.runtime.backends import BACKENDS
from pix2pix_edge.runtime.size import SIZE_HELP


@click.command("bench")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="auto: .engine/.plan -> TensorRT, .onnx -> ONNX Runtime.")
@click.option("--provider", "providers", default=None, metavar="LIST",
              help="ONNX Runtime providers to time, e.g. cpu or tensorrt,cuda "
                   "(default: every provider that can load here).")
@click.option("--fp16", "fp16_model", type=click.Path(dir_okay=False), default=None,
              metavar="MODEL_FP16.onnx", help="Also time this FP16 variant of the model.")
@click.option("--warmup", type=click.IntRange(0, 10000), default=10, show_default=True,
              help="Untimed calls before timing.")
@click.option("--runs", type=click.IntRange(1, 100000), default=100, show_default=True,
              help="Timed calls per configuration.")
@click.option("--sizes", default=None, metavar="LIST",
              help=f"Input sizes for dynamic models, comma-separated, each {SIZE_HELP}, "
                   "e.g. 256,512 or 512x256 (default: the model's size; fixed-size models use "
                   "theirs).")
@click.option("--batch", "batches", default="1", show_default=True, metavar="LIST",
              help="Batch sizes, e.g. 1,4 (models with a dynamic batch axis).")
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help="CPU threads for ONNX Runtime (default: physical cores).")
@click.option("--device", type=click.IntRange(0, 64), default=0, show_default=True,
              help="GPU index.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="TensorRT provider engine cache (default: ~/.cache/pix2pix-edge/ort-tensorrt).")
@click.option("--video", type=click.Path(dir_okay=False), default=None,
              help="Also run the full pipeline (decode, pre, infer, post, encode) on this video.")
@click.option("--frames", type=click.IntRange(1), default=None,
              help="Frames of --video to process (default: all).")
@click.option("--video-output", default="temp", show_default=True, metavar="PATH|temp|none",
              help="Where the pipeline writes its video: a temporary mp4 that is deleted, a "
                   "file to keep, or none (no encoding).")
@click.option("--live", "live", default=None, metavar="URI",
              help="Measure capture-to-output latency on a live source instead: a camera or "
                   "stream, or a video file replayed at its own frame rate (newest frame wins).")
@click.option("--source-fps", type=click.FloatRange(min=0.1, max=1000), default=None,
              help="--live: replay a file at this rate instead of its own.")
@click.option("--flicker", "flicker", type=click.Path(dir_okay=False), default=None,
              metavar="VIDEO", help="Measure frame-to-frame flicker (warping error) of the output "
                                    "on this video, next to the input's (--frames, default 120).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the full result (machine, versions, model, settings, numbers) here.")
def bench(model, backend, providers, fp16_model, warmup, runs, sizes, batches, threads, device,
          cache_dir, video, frames, video_output, live, source_fps, flicker, json_path):
    """Time MODEL (.onnx or TensorRT .engine) alone, and with --video the whole pipeline.

    \b
    Latency = one infer() call on a ready NCHW float32 batch (including the backend's own
    dtype casts and GPU copies); fps = batch * 1000 / median (p50) latency in ms.

    \b
    Examples:
      pix2pix bench model.onnx
      pix2pix bench model.onnx --fp16 model_fp16.onnx --sizes 256,512x256 --batch 1,4
      pix2pix bench model.engine --video clip.mp4 --frames 300 --json bench.json
      pix2pix bench model.onnx --live clip.mp4 --frames 240 --threads 1
      pix2pix bench model.onnx --flicker clip.mp4 --frames 120

    \b
    --live: capture-to-output latency p50/p95/p99, frames dropped, FPS delivered, against the
    target model p50 + one source frame interval + 5 ms. --flicker: the warping error of Lai et
    al. (2018) with DIS optical flow on the input frames, for the output and for the input.
    """
    if live or flicker:
        return _live_and_flicker(model, backend, threads, device, live, source_fps, flicker,
                                 frames, json_path)
    from pix2pix_edge.runtime.bench import format_table, parse_ints, run_bench, write_json
    from pix2pix_edge.runtime.size import parse_sizes

    def log(msg):
        click.echo(msg, err=True)

    result = run_bench(
        model, backend, providers=providers, sizes=parse_sizes(sizes),
        batches=parse_ints(batches, "--batch"), warmup=warmup, runs=runs, fp16_model=fp16_model,
        threads=threads, device=device, cache_dir=cache_dir, video=video, frames=frames,
        video_output=None if video_output.lower() == "none" else video_output, log=log)
    click.echo(format_table(result))
    if json_path:
        click.echo(f"wrote {write_json(result, json_path)}")


def _live_and_flicker(model, backend, threads, device, live, source_fps, flicker, frames, json_path):
    """``bench --live`` / ``--flicker`` (issue 13): the whole pipeline as a live user feels it."""
    import json

    from pix2pix_edge.runtime.backends import open_backend
    from pix2pix_edge.runtime.bench import machine_info, versions
    from pix2pix_edge.runtime.live import format_live, load_avg, run_live

    def log(msg):
        click.echo(msg, err=True)

    result = {"schema": "pix2pix-edge-bench-live/1", "model": str(model),
              "machine": machine_info(), "versions": versions(), "threads": threads,
              "loadavg_before": load_avg()}
    be = open_backend(model, backend, device=device, threads=threads)
    try:
        if live:
            result["live"] = run_live(be, live, frames=frames or 240, source_fps=source_fps, log=log)
            click.echo(format_live(result["live"]))
        if flicker:
            from pix2pix_edge.runtime.flicker import model_flicker
            r = result["flicker"] = model_flicker(be, flicker, frames=frames or 120)
            click.echo(f"flicker (warping error, {r['pairs']} frame pairs of {flicker}): output "
                       f"{r['flicker']:.4f}, input {r['flicker_input']:.4f} "
                       f"(x{r['ratio']} the input's)")
    finally:
        be.close()
    result["loadavg_after"] = load_avg()
    click.echo(f"load average before / after: {result['loadavg_before']} / {result['loadavg_after']}")
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        click.echo(f"wrote {json_path}")
