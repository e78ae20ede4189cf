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
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the full result (machine, versions, model, settings, numbers) here.")
def bench(model, backend, providers, fp16_model, warmup, runs, sizes, batches, threads, device,
          cache_dir, video, frames, video_output, json_path):
    """Time MODEL (.onnx or TensorRT .engine) alone, and with --video the whole pipeline.

    \b
    Latency = one infer() call on a ready NCHW float32 batch (including the backend's own
    dtype casts and GPU copies); fps = batch * 1000 / median (p50) latency in ms.

    \b
    Examples:
      pix2pix bench model.onnx
      pix2pix bench model.onnx --fp16 model_fp16.onnx --sizes 256,512x256 --batch 1,4
      pix2pix bench model.engine --video clip.mp4 --frames 300 --json bench.json
    """
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
