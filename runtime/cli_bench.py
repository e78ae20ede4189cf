"""``pix2pix bench``: model-only latency per backend / precision / size / batch, and optionally
the end-to-end video pipeline. Prints a table; ``--json`` writes the full record."""

from __future__ import annotations

import click

from pix2pix_edge.runtime.options import check_options, click_options
from pix2pix_edge.runtime.run_options import BenchOptions


@click.command("bench")
@click.argument("model", type=click.Path(dir_okay=False))
@click_options(BenchOptions)
def bench(model, **options):
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
    o = BenchOptions(**options)
    check_options(o)
    if o.live or o.flicker:
        return _live_and_flicker(model, o)
    from pix2pix_edge.runtime.bench import format_table, run_bench, write_json
    from pix2pix_edge.runtime.run_options import model_format

    def log(msg):
        click.echo(msg, err=True)

    result = run_bench(
        model, o.backend, providers=o.providers, sizes=o.sizes, batches=o.batches,
        warmup=o.warmup, runs=o.runs, fp16_model=o.fp16_model, threads=o.threads,
        device=o.device, cache_dir=o.cache_dir, video=o.video, frames=o.frames,
        video_output=None if o.video_output.lower() == "none" else o.video_output, log=log,
        **model_format(o))
    click.echo(format_table(result))
    if o.json_path:
        click.echo(f"wrote {write_json(result, o.json_path)}")


def _live_and_flicker(model, o: BenchOptions):
    """``bench --live`` / ``--flicker`` (issue 13): the whole pipeline as a live user feels it."""
    import json

    from pix2pix_edge.runtime.backends import open_backend
    from pix2pix_edge.runtime.bench import machine_info, versions
    from pix2pix_edge.runtime.live import format_live, load_avg, run_live
    from pix2pix_edge.runtime.run_options import model_format

    def log(msg):
        click.echo(msg, err=True)

    result = {"schema": "pix2pix-edge-bench-live/1", "model": str(model),
              "machine": machine_info(), "versions": versions(), "threads": o.threads,
              "loadavg_before": load_avg()}
    frames = {"frames": o.frames} if o.frames else {}     # else run_live's / model_flicker's
    be = open_backend(model, o.backend, device=o.device, threads=o.threads, **model_format(o))
    try:
        if o.live:
            result["live"] = run_live(be, o.live, source_fps=o.source_fps, log=log, **frames)
            click.echo(format_live(result["live"]))
        if o.flicker:
            from pix2pix_edge.runtime.flicker import model_flicker
            r = result["flicker"] = model_flicker(be, o.flicker, **frames)
            click.echo(f"flicker (warping error, {r['pairs']} frame pairs of {o.flicker}): output "
                       f"{r['flicker']:.4f}, input {r['flicker_input']:.4f} "
                       f"(x{r['ratio']} the input's); Lai et al.'s squared L2: output "
                       f"{r['flicker_l2']:.6f}, input {r['flicker_l2_input']:.6f}")
    finally:
        be.close()
    result["loadavg_after"] = load_avg()
    click.echo(f"load average before / after: {result['loadavg_before']} / {result['loadavg_after']}")
    if o.json_path:
        with open(o.json_path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        click.echo(f"wrote {o.json_path}")
