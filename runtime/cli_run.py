"""``pix2pix run``: translate a camera, stream, video, image or directory with an exported model.

Only click is imported at module level so that ``pix2pix run --help`` is instant; OpenCV, the
pipeline and the backend (ONNX Runtime / TensorRT) load when the command runs.
"""

from __future__ import annotations

import json
import sys

import click

from pix2pix_edge.runtime.options import click_options
from pix2pix_edge.runtime.run_options import (SOURCE_HELP, RunOptions, check_run_options,
                                              refuse_outputs_over_inputs)


@click.command("run")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--source", "-s", required=True, metavar="URI", help=SOURCE_HELP)
@click_options(RunOptions)
@click.pass_context
def run(ctx, model, **options):
    """Translate frames from --source with MODEL (.onnx or TensorRT .engine) and show or save them.

    \b
    Examples:
      pix2pix run model.onnx --source video.mp4 --output out.mp4
      pix2pix run model.onnx --source 0                    # webcam, window
      pix2pix run model.engine --source csi://0 --source-size 1280x720
      pix2pix run model.onnx --source photos/ --output translated/
      pix2pix run model.onnx --source rtsp://cam/stream --headless --stats-json stats.json
      pix2pix run model.onnx --source 0 --output http://127.0.0.1:8090/   # watch in a browser
      pix2pix run plain.onnx --source 0 --size 256 --color-order BGR --range 0,1
                                    # an ONNX file without pix2pix-edge metadata

    \b
    Window keys: q or Esc quit, space pause, s snapshot (PNG in --snapshot-dir).
    Live sources (cameras, streams) show the newest frame and drop stale ones; files and image
    sets translate every frame in order. With crop the output has the size of the cropped
    region; with letterbox or stretch, the source's size.
    """
    from pix2pix_edge.runtime.backends import open_backend
    from pix2pix_edge.runtime.backends.base import largest_pow2_dividing
    from pix2pix_edge.runtime.model_info import ModelInfo
    from pix2pix_edge.runtime.pipeline import run_pipeline
    from pix2pix_edge.runtime.run_options import model_format
    from pix2pix_edge.runtime.uri import parse_uri
    from pix2pix_edge.runtime.video import open_source

    def log(msg):
        click.echo(msg, err=True)

    o = RunOptions(**options, log=log)
    check_run_options(o)
    refuse_outputs_over_inputs(model, o)
    user_info = None
    if o.size is not None:
        w, h = o.size
        user_info = ModelInfo(height=h, width=w, multiple=largest_pow2_dividing(w, h))
    output = o.output_uri()
    # Hooks (issue 13): the browser view binds its port before the model loads, so a port in
    # use fails at once; --realtime replays a file as a camera would deliver it.
    web = be = None
    try:
        if output and parse_uri(output).scheme == "http":
            from pix2pix_edge.runtime.web import WebSink
            web = output = WebSink(output, max_viewers=o.max_viewers)
            where = "this machine only, " if web.loopback_only else ""
            log(f"watch at {web.uri}  ({where}at most {o.max_viewers} viewers; Ctrl-C stops)")
            if not web.loopback_only:
                log(f"WARNING: this view is served to every machine that can reach {web.host} "
                    f"port {web.port}, over plain HTTP (unencrypted): anyone who has the link "
                    f"above, token included, can watch. Share it only with whom may watch; for a "
                    f"private view serve on 127.0.0.1 and watch through an SSH tunnel "
                    f"(ssh -L {web.port}:127.0.0.1:{web.port} THIS-MACHINE).")
        be = open_backend(model, o.backend, info=user_info, device=o.device, threads=o.threads,
                          **model_format(o))
        info = be.info
        lo, hi = info.value_range
        log(f"model {click.format_filename(model)}: {be.name} ({be.provider}), "
            f"{'dynamic' if info.dynamic else f'{info.width}x{info.height}'}, {info.color_order} "
            f"[{lo:g}, {hi:g}]{'' if be.metadata_source in ('file', 'record') else ' (no metadata)'}")
        if o.realtime:
            from pix2pix_edge.runtime.live import open_live_source
            src = open_live_source(o.source, fps=o.source_fps, loop=o.loop, log=log)
        else:
            src = open_source(o.source, size=o.source_size, fps=o.source_fps, loop=o.loop,
                              log=log)
        with src:
            stats = run_pipeline(be, src, output, o)
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
    if o.stats_json:
        from pix2pix_edge.runtime.files import atomic_write

        record = {"model": str(model), "model_info": be.info.to_dict(), **stats.to_dict(),
                  "python": sys.version.split()[0]}
        text = json.dumps(record, indent=2) + "\n"
        atomic_write(o.stats_json, lambda f: f.write(text.encode("utf-8")))
        click.echo(f"stats written to {o.stats_json}")
    if stats.interrupted:
        ctx.exit(stats.exit_code)       # 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP
