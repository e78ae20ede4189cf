"""``pix2pix run``: translate a camera, stream, video, image or directory with an exported model.

Only click is imported at module level so that ``pix2pix run --help`` is instant; OpenCV, the
pipeline and the backend (ONNX Runtime / TensorRT) load when the command runs.
"""

from __future__ import annotations

import json
import sys

import click

from pix2pix_edge.runtime.size import SIZE_HELP

SOURCE_HELP = ("Camera 0 | /dev/video0 | csi://0, stream rtsp://... | http://..., video file, "
               "image, directory or glob of images, or a GStreamer pipeline ('... ! appsink').")
OUTPUT_HELP = ("display://0 (window, the default unless --headless), a video file (.mp4/.avi/.mkv), "
               "an image directory (out/), an image pattern (out/%06d.png), none, "
               "http://HOST:PORT/ (a page to watch in a browser; loopback unless HOST is given) "
               "or rtp://HOST:PORT (H.264 over RTP; needs OpenCV with GStreamer).")


def _multiple_of(w: int, h: int, cap: int = 256) -> int:
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
@click.option("--size", default=None, metavar="WxH",
              help=f"Model input size for files without metadata or dynamic models: {SIZE_HELP} "
                   f"(e.g. 256 or 512x256).")
@click.option("--source-size", default=None, metavar="WxH",
              help=f"Camera capture size: {SIZE_HELP} (e.g. 1280x720).")
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
@click.option("--max-viewers", type=click.IntRange(1, 1000), default=4, show_default=True,
              help="--output http://...: browsers that may watch at once (503 after).")
@click.option("--realtime", is_flag=True,
              help="Play a video file or image set at its own frame rate (or --source-fps), "
                   "newest frame wins: a camera simulated, frames the model cannot keep up "
                   "with are dropped.")
@click.option("--stats-json", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write frame counts and per-stage latency percentiles as JSON.")
@click.option("--snapshot-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where the window's 's' key saves PNG snapshots.")
@click.pass_context
def run(ctx, model, source, output, headless, backend, fit, size, source_size, source_fps, loop,
        max_frames, no_overlay, threads, device, max_viewers, realtime, stats_json, snapshot_dir):
    """Translate frames from --source with MODEL (.onnx or TensorRT .engine) and show or save them.

    \b
    Examples:
      pix2pix run model.onnx --source video.mp4 --output out.mp4
      pix2pix run model.onnx --source 0                    # webcam, window
      pix2pix run model.engine --source csi://0 --source-size 1280x720
      pix2pix run model.onnx --source photos/ --output translated/
      pix2pix run model.onnx --source rtsp://cam/stream --headless --stats-json stats.json
      pix2pix run model.onnx --source 0 --output http://127.0.0.1:8090/   # watch in a browser

    \b
    Window keys: q or Esc quit, space pause, s snapshot (PNG in --snapshot-dir).
    Live sources (cameras, streams) show the newest frame and drop stale ones; files and image
    sets translate every frame in order. With crop the output has the size of the cropped
    region; with letterbox or stretch, the source's size.
    """
    from pix2pix_edge.runtime.backends import open_backend
    from pix2pix_edge.runtime.errors import EXIT_INTERRUPTED, BadInput
    from pix2pix_edge.runtime.model_info import ModelInfo
    from pix2pix_edge.runtime.pipeline import PipelineOptions, run_pipeline
    from pix2pix_edge.runtime.size import parse_size
    from pix2pix_edge.runtime.video import open_source

    def log(msg):
        click.echo(msg, err=True)

    if headless and output and output.strip().lower().startswith("display://"):
        raise BadInput("--headless and --output display://... contradict each other")
    run_size = parse_size(size, "--size")
    capture_size = parse_size(source_size, "--source-size")
    user_info = None
    if run_size is not None:
        w, h = run_size
        user_info = ModelInfo(height=h, width=w, multiple=_multiple_of(w, h))
    # Hooks (issue 13): the browser view binds its port before the model loads, so a port in
    # use fails at once; --realtime replays a file as a camera would deliver it.
    web = be = None
    try:
        if output and output.strip().lower().startswith("http://"):
            from pix2pix_edge.runtime.web import WebSink
            web = output = WebSink(output, max_viewers=max_viewers)
            where = "this machine only" if web.loopback_only else "reachable from the network"
            log(f"watch at {web.uri}  ({where}, at most {max_viewers} viewers; Ctrl-C stops)")
        be = open_backend(model, backend, info=user_info, device=device, threads=threads)
        info = be.info
        log(f"model {click.format_filename(model)}: {be.name} ({be.provider}), "
            f"{'dynamic' if info.dynamic else f'{info.width}x{info.height}'}, {info.color_order}")
        options = PipelineOptions(fit=fit, size=run_size, max_frames=max_frames,
                                  overlay=not no_overlay, snapshot_dir=snapshot_dir, log=log)
        if realtime:
            from pix2pix_edge.runtime.live import open_live_source
            src = open_live_source(source, fps=source_fps, loop=loop)
        else:
            src = open_source(source, size=capture_size, fps=source_fps, loop=loop)
        with src:
            stats = run_pipeline(be, src, output or (None if headless else "display://0"),
                                 options)
    finally:
        if be is not None:
            be.close()
        if web is not None:
            web.close()
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
