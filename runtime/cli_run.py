"""``pix2pix run``: translate a camera, stream, video, image or directory with an exported model.

Only click is imported at module level so that ``pix2pix run --help`` is instant; OpenCV, the
pipeline and the backend (ONNX Runtime / TensorRT) load when the command runs.
"""

from __future__ import annotations

import json
import re
import sys

import click

SOURCE_HELP = ("Camera 0 | /dev/video0 | csi://0, stream rtsp://... | http://..., video file, "
               "image, directory or glob of images, or a GStreamer pipeline ('... ! appsink').")
OUTPUT_HELP = ("display://0 (window, the default unless --headless), a video file (.mp4/.avi/.mkv), "
               "an image directory (out/), an image pattern (out/%06d.png) or none.")


def parse_model_size(text: str | None):
    """--size: '256' or 'HxW' (e.g. 256x512) -> (h, w)."""
    from pix2pix_edge.runtime.errors import BadInput
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", text)
    if not m:
        raise BadInput(f"--size {text!r} is not N or HxW (e.g. 256 or 256x512)")
    h = int(m.group(1))
    w = int(m.group(2) or m.group(1))
    if not (1 <= h <= 8192 and 1 <= w <= 8192):
        raise BadInput(f"--size {text!r} is out of range (1..8192)")
    return h, w


def _multiple_of(h: int, w: int, cap: int = 256) -> int:
    m = 1
    while m < cap and h % (m * 2) == 0 and w % (m * 2) == 0:
        m *= 2
    return m


@click.command("run")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--source", "-s", required=True, metavar="URI", help=SOURCE_HELP)
@click.option("--output", "-o", default=None, metavar="URI", help=OUTPUT_HELP)
@click.option("--headless", is_flag=True, help="No window (servers, SSH, benchmarks).")
@click.option("--backend", type=click.Choice(["auto", "onnxruntime", "tensorrt"]), default="auto",
              show_default=True, help="auto: .engine/.plan -> TensorRT, .onnx -> ONNX Runtime.")
@click.option("--fit", type=click.Choice(["crop", "letterbox", "stretch"]), default="crop",
              show_default=True,
              help="How frames meet the model size: centre crop, letterbox (pad) or stretch.")
@click.option("--size", default=None, metavar="HxW",
              help="Model input size for files without metadata or dynamic models (e.g. 256).")
@click.option("--source-size", default=None, metavar="WxH", help="Camera capture size, e.g. 1280x720.")
@click.option("--source-fps", type=click.FloatRange(min=0.1, max=1000), default=None,
              help="Camera capture rate.")
@click.option("--loop", is_flag=True, help="Repeat a video file or image set until stopped.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None,
              help="Stop after this many output frames.")
@click.option("--no-overlay", is_flag=True, help="No FPS / latency text in the window.")
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help="CPU threads for ONNX Runtime (default: physical cores).")
@click.option("--device", type=click.IntRange(0, 64), default=0, show_default=True,
              help="GPU index.")
@click.option("--stats-json", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write frame counts and per-stage latency percentiles as JSON.")
@click.option("--snapshot-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where the window's 's' key saves PNG snapshots.")
@click.pass_context
def run(ctx, model, source, output, headless, backend, fit, size, source_size, source_fps, loop,
        max_frames, no_overlay, threads, device, stats_json, snapshot_dir):
    """Translate frames from --source with MODEL (.onnx or TensorRT .engine) and show or save them.

    \b
    Examples:
      pix2pix run model.onnx --source video.mp4 --output out.mp4
      pix2pix run model.onnx --source 0                    # webcam, window
      pix2pix run model.engine --source csi://0 --source-size 1280x720
      pix2pix run model.onnx --source photos/ --output translated/
      pix2pix run model.onnx --source rtsp://cam/stream --headless --stats-json stats.json

    \b
    Window keys: q or Esc quit, space pause, s snapshot (PNG in --snapshot-dir).
    Live sources (cameras, streams) show the newest frame and drop stale ones; files and image
    sets translate every frame in order. With crop the output has the size of the cropped
    region; with letterbox or stretch, the source's size.
    """
    from pix2pix_edge.runtime.backends import open_backend
    from pix2pix_edge.runtime.errors import EXIT_INTERRUPTED, BadInput
    from pix2pix_edge.runtime.model_info import ModelInfo
    from pix2pix_edge.runtime.pipeline import run_pipeline
    from pix2pix_edge.runtime.video import parse_size

    def log(msg):
        click.echo(msg, err=True)

    if headless and output and output.strip().lower().startswith("display://"):
        raise BadInput("--headless and --output display://... contradict each other")
    hw = parse_model_size(size)
    src_wh = parse_size(source_size, "--source-size")
    user_info = None
    if hw is not None:
        h, w = hw
        user_info = ModelInfo(height=h, width=w, multiple=_multiple_of(h, w))
    be = open_backend(model, backend, info=user_info, device=device, threads=threads)
    try:
        info = be.info
        run_wh = (hw[1], hw[0]) if hw is not None else None
        log(f"model {click.format_filename(model)}: {be.name} ({be.provider}), "
            f"{'dynamic' if info.dynamic else f'{info.height}x{info.width}'}, {info.color_order}")
        stats = run_pipeline(
            be, source, output, fit=fit, max_frames=max_frames, headless=headless, loop=loop,
            source_size=src_wh, source_fps=source_fps, overlay=not no_overlay, size=run_wh,
            snapshot_dir=snapshot_dir, log=log)
    finally:
        be.close()
    click.echo(f"{stats.source} -> {stats.output or 'none'}  "
               f"({stats.source_size[0]}x{stats.source_size[1]} -> model "
               f"{stats.model_size[0]}x{stats.model_size[1]} -> "
               f"{stats.output_size[0]}x{stats.output_size[1]}, fit {stats.fit})")
    for line in stats.summary_lines():
        click.echo(line)
    if stats_json:
        record = {"model": str(model), "model_info": be.info.to_dict(), **stats.to_dict(),
                  "python": sys.version.split()[0]}
        with open(stats_json, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)
            f.write("\n")
        click.echo(f"stats written to {stats_json}")
    if stats.interrupted:
        ctx.exit(EXIT_INTERRUPTED)
