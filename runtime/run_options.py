"""Every option of ``pix2pix run``, ``bench`` and ``info``, written once.

Each command's flags, help, defaults and checks come from one dataclass (runtime/options.py
fields, as :class:`~pix2pix_edge.train.options.TrainOptions` for ``train``):

* :class:`PipelineOptions` is what :func:`runtime.pipeline.run_pipeline` reads; its fields that
  a user sets (``--fit``, ``--size``, ``--max-frames``, ``--overlay``, ``--snapshot-dir``) are
  options, the rest (callbacks, queue sizes, thread priorities) are plain fields.
* :class:`RunOptions` is a PipelineOptions plus what ``pix2pix run`` opens (model backend,
  source, output), so the command hands it to ``run_pipeline`` as it is.
* :class:`BenchOptions` holds ``pix2pix bench``'s; its fields are named as
  :func:`runtime.bench.run_bench`'s keywords (tested, with their defaults).
* :class:`InfoOptions` holds ``pix2pix info``'s.

The options every command that opens a model shares (``--backend``, ``--threads``,
``--device``, and ``--color-order`` / ``--range`` for models without pix2pix-edge metadata) are
made by one function each, so their choices, bounds, defaults and help exist once.

Click, the standard library and the light runtime modules only (no OpenCV, ONNX Runtime or
TensorRT), so ``pix2pix run --help`` stays instant; Python 3.8 grammar (JetPack 5).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import click

from pix2pix_edge.runtime.backends import BACKENDS
from pix2pix_edge.runtime.contract import IMAGE_EXTS
from pix2pix_edge.runtime.errors import BadInput, BadUsage
from pix2pix_edge.runtime.files import refuse_same_files, same_file
from pix2pix_edge.runtime.model_info import COLOR_ORDERS
from pix2pix_edge.runtime.options import check_options, flag_of, option, option_fields
from pix2pix_edge.runtime.size import SIZE_HELP, parse_size, parse_sizes
from pix2pix_edge.runtime.uri import parse_uri

FITS = ("crop", "letterbox", "stretch")              # runtime.frames: how frames meet the model
VALUE_RANGES = {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0)}
RANGE_CHOICES = tuple(VALUE_RANGES)
DEFAULT_MAX_VIEWERS = 4                              # runtime.web: browsers at once


# ----------------------------------------------------------------------------- value types
class SizeType(click.ParamType):
    """``WxH`` or ``N`` on the command line -> :class:`~pix2pix_edge.runtime.size.Size`; a bad
    value is a usage error (exit 2, one line)."""

    name = "WxH"

    def convert(self, value, param, ctx):
        if value is None or not isinstance(value, str):
            return value
        try:
            return parse_size(value, param.opts[0] if param is not None else "--size")
        except BadInput as e:
            self.fail(str(e), param, ctx)


class ListType(click.ParamType):
    """A comma-separated list (``256,512x256`` / ``1,4``) read by ``parse(text, flag)``, the
    parser Python callers use too; a bad value is a usage error (exit 2, one line)."""

    name = "LIST"

    def __init__(self, parse: Callable[[str, str], list]):
        self.parse = parse

    def convert(self, value, param, ctx):
        if value is None or not isinstance(value, str):
            return None if value is None else list(value)
        what = param.opts[0] if param is not None else "value"
        try:
            items = self.parse(value, what)
        except BadInput as e:
            self.fail(str(e), param, ctx)
        if not items:
            self.fail(f"{what} {value!r} names nothing", param, ctx)
        return items


def parse_ints(text, what: str) -> list[int]:
    """``"1,4"`` -> [1, 4] (``--batch``): positive integers, else a one-line BadInput."""
    try:
        values = [int(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError:
        raise BadInput(f"bad {what} {text!r}: use comma-separated integers, e.g. 1,4") from None
    if not values or min(values) < 1:
        raise BadInput(f"bad {what} {text!r}: use positive integers, e.g. 1,4")
    return values


SIZE = SizeType()
SIZES = ListType(parse_sizes)
POSITIVE_INTS = ListType(parse_ints)


# ----------------------------------------------------------------------------- shared options
def backend_option():
    return option("auto", "auto: .engine/.plan -> TensorRT, .onnx -> ONNX Runtime.",
                  choices=BACKENDS)


def threads_option(help: str = "CPU threads for ONNX Runtime (default: physical cores)."):
    return option(None, help, type=int, min=1, max=1024)


def device_option(help: str = "GPU index."):
    return option(0, help, min=0, max=64)


def color_order_option():
    return option(None, "For a model without pix2pix-edge metadata: the channel order it takes "
                  "and gives (default RGB). A model with metadata keeps its own.",
                  choices=COLOR_ORDERS, type=str)


def value_range_option():
    return option(None, "For a model without pix2pix-edge metadata: the value range of its "
                  "input and output, -1,1 or 0,1 (default -1,1). A model with metadata keeps "
                  "its own.", choices=RANGE_CHOICES, type=str, flag="--range")


def model_format(o) -> dict:
    """``open_backend``'s ``color_order`` / ``value_range`` keywords from an options object."""
    return {"color_order": o.color_order, "value_range": VALUE_RANGES.get(o.value_range)}


# ----------------------------------------------------------------------------- the commands
@dataclass
class PipelineOptions:
    """How :func:`~pix2pix_edge.runtime.pipeline.run_pipeline` runs: everything but the source
    (opened by the caller, with its own capture options) and the output.

    ``fit``: crop | letterbox | stretch. ``size``: the run size of dynamic models (a
    :class:`~pix2pix_edge.runtime.size.Size`, width first). ``max_frames``: stop after this
    many output frames. ``on_frame(frame, output_bgr)``: called for each written frame in the
    output stage; returning False stops the run. ``overlay``, ``snapshot_dir``: the window's
    FPS text and where its 's' key saves (used when the output is display://). ``queue_size``:
    frames between stages for files. ``cv_threads``: OpenCV's thread pool during the run (None
    leaves it). ``helper_priority``: None, "low" or "idle" for the capture and output threads
    ("default": the module's HELPER_PRIORITY). ``warmup``: inferences before the clock starts.
    ``join_timeout``: how long the end of a run waits for each thread. ``log``: one-line
    messages (snapshots, hung threads)."""

    fit: str = option("crop", "How frames meet the model size: centre crop, letterbox (pad) or "
                      "stretch.", choices=FITS)
    size: tuple[int, int] | None = option(
        None, f"Model input size for files without metadata or dynamic models: {SIZE_HELP} "
              f"(e.g. 256 or 512x256).", type=SIZE, metavar="WxH")
    max_frames: int | None = option(None, "Stop after this many output frames.", type=int, min=1)
    overlay: bool = option(True, "FPS / latency text in the window.")
    snapshot_dir: str | Path = option(".", "Where the window's 's' key saves PNG snapshots.",
                                      type=click.Path(file_okay=False))
    on_frame: Callable | None = None
    queue_size: int = 4
    cv_threads: int | None = 1
    helper_priority: str | None = "default"
    warmup: int = 1
    join_timeout: float = 5.0
    log: Callable[[str], None] | None = None


SOURCE_HELP = ("Camera 0 | /dev/video0 | csi://0, stream rtsp://... | http://..., video file, "
               "image, directory or glob of images, or a GStreamer pipeline ('... ! appsink').")
OUTPUT_HELP = ("display://0 (window, the default unless --headless), a video file (.mp4/.avi/.mkv), "
               "an image directory (out/), an image pattern (out/%06d.png), none, "
               "http://HOST:PORT/ (a page to watch in a browser; loopback unless HOST is given) "
               "or rtp://HOST:PORT (H.264 over RTP; needs OpenCV with GStreamer). Files are "
               "written under a temporary name and replace an existing file only when whole; "
               "an output that is the model or a source is refused.")


@dataclass
class RunOptions(PipelineOptions):
    """Every option of ``pix2pix run``: the pipeline's, then what the command opens. ``source``
    is declared by the command itself (a required option)."""

    source: str = ""
    output: str | None = option(None, OUTPUT_HELP, type=str, short="-o", metavar="URI")
    headless: bool = option(False, "No window (servers, SSH, benchmarks).", switch=True)
    backend: str = backend_option()
    threads: int | None = threads_option()
    device: int = device_option()
    color_order: str | None = color_order_option()
    value_range: str | None = value_range_option()
    source_size: tuple[int, int] | None = option(
        None, f"Camera capture size: {SIZE_HELP} (e.g. 1280x720).", type=SIZE, metavar="WxH")
    source_fps: float | None = option(None, "Camera capture rate.", type=float, min=0.1,
                                      max=1000)
    loop: bool = option(False, "Repeat a video file or image set until stopped.", switch=True)
    realtime: bool = option(False, "Play a video file or image set at its own frame rate (or "
                            "--source-fps), newest frame wins: a camera simulated, frames the "
                            "model cannot keep up with are dropped.", switch=True)
    max_viewers: int = option(DEFAULT_MAX_VIEWERS, "--output http://...: browsers that may watch "
                              "at once (503 after).", min=1, max=1000)
    stats_json: str | None = option(None, "Write frame counts and per-stage latency percentiles "
                                    "as JSON.", type=click.Path(dir_okay=False), metavar="FILE")

    def output_uri(self):
        """The output to open: --output, else a window unless --headless."""
        return self.output or (None if self.headless else "display://0")


def refuse_outputs_over_inputs(model, o: RunOptions) -> None:
    """BadInput (exit 3) when --output or --stats-json would write over the model or a source
    file (the same file by any name), or --output is the folder of the source images."""
    inputs, folders = [("the model", Path(model))], []
    src = parse_uri(o.source) if o.source else None
    if src is not None and src.scheme == "file":
        loc = Path(src.location).expanduser()
        if any(ch in src.location for ch in "*?["):
            files = [Path(p) for p in glob.glob(str(loc))]
            inputs += [("a source image", p) for p in files]
            folders += sorted({p.parent for p in files})
        elif loc.is_dir():
            folders.append(loc)
        else:
            inputs.append(("the source", loc))
            if loc.suffix.lower() in IMAGE_EXTS:
                folders.append(loc.parent)
    outputs, out_folder = [], None
    if o.stats_json:
        outputs.append(("--stats-json", Path(o.stats_json)))
    out = parse_uri(o.output) if o.output else None
    if out is not None and out.scheme == "file":
        path = Path(out.location).expanduser()
        if "%" in out.location:
            out_folder = path.parent
        elif path.is_dir():
            out_folder = path
        else:
            outputs.append(("--output", path))
    refuse_same_files(outputs, inputs)
    if out_folder is not None and any(same_file(out_folder, f) for f in folders):
        raise BadInput(f"--output {out.location} is the folder of the source images: the "
                       f"translations would replace them; write them to another folder")


def check_run_options(o: RunOptions) -> None:
    """The fields' bounds and choices, then the rules that involve several options."""
    check_options(o)
    if o.headless and o.output and parse_uri(o.output).scheme == "display":
        raise BadUsage("--headless and --output display://... contradict each other")


# The options `pix2pix info` names for a model without metadata (tested: they exist on run).
PLAIN_MODEL_OPTIONS = ("size", "color_order", "value_range")


def plain_model_flags() -> str:
    by_name = {f.name: f for f in option_fields(RunOptions)}
    return " / ".join(flag_of(by_name[name]) for name in PLAIN_MODEL_OPTIONS)


@dataclass
class BenchOptions:
    """Every option of ``pix2pix bench``. The fields up to ``video_output`` are
    :func:`runtime.bench.run_bench`'s keywords; the rest choose the live / flicker runs and
    the JSON file."""

    backend: str = backend_option()
    providers: str | None = option(None, "ONNX Runtime providers to time, e.g. cpu or "
                                   "tensorrt,cuda (default: every provider that can load here).",
                                   type=str, flag="--provider", metavar="LIST")
    fp16_model: str | None = option(None, "Also time this FP16 variant of the model.",
                                    type=click.Path(dir_okay=False), flag="--fp16",
                                    metavar="MODEL_FP16.onnx")
    warmup: int = option(10, "Untimed calls before timing.", min=0, max=10000)
    runs: int = option(100, "Timed calls per configuration.", min=1, max=100000)
    sizes: list | None = option(None, f"Input sizes for dynamic models, comma-separated, each "
                                f"{SIZE_HELP}, e.g. 256,512 or 512x256 (default: the model's "
                                f"size; fixed-size models use theirs).", type=SIZES,
                                metavar="LIST")
    batches: list = option((1,), "Batch sizes, e.g. 1,4 (models with a dynamic batch axis).",
                           type=POSITIVE_INTS, flag="--batch", metavar="LIST")
    threads: int | None = threads_option()
    device: int = device_option()
    color_order: str | None = color_order_option()
    value_range: str | None = value_range_option()
    cache_dir: str | None = option(None, "TensorRT provider engine cache (default: "
                                   "~/.cache/pix2pix-edge/ort-tensorrt).",
                                   type=click.Path(file_okay=False))
    video: str | None = option(None, "Also run the full pipeline (decode, pre, infer, post, "
                               "encode) on this video.", type=click.Path(dir_okay=False))
    frames: int | None = option(None, "Frames of --video to process (default: all); frames to "
                                "measure with --live (default 240) and --flicker (default 120).",
                                type=int, min=1)
    video_output: str = option("temp", "Where the pipeline writes its video: a temporary mp4 "
                               "that is deleted, a file to keep, or none (no encoding).",
                               metavar="PATH|temp|none")
    live: str | None = option(None, "Measure capture-to-output latency on a live source "
                              "instead: a camera or stream, or a video file replayed at its own "
                              "frame rate (newest frame wins).", type=str, metavar="URI")
    source_fps: float | None = option(None, "--live: replay a file at this rate instead of its "
                                      "own.", type=float, min=0.1, max=1000)
    flicker: str | None = option(None, "Measure frame-to-frame flicker (warping error) of the "
                                 "output on this video, next to the input's.",
                                 type=click.Path(dir_okay=False), metavar="VIDEO")
    json_path: str | None = option(None, "Write the full result (machine, versions, model, "
                                   "settings, numbers) here.", type=click.Path(dir_okay=False),
                                   flag="--json")


@dataclass
class InfoOptions:
    """Every option of ``pix2pix info``."""

    backend: str = backend_option()
    device: int = device_option("GPU index (TensorRT engines).")
    as_json: bool = option(False, "Print the description as JSON.", switch=True, flag="--json")
