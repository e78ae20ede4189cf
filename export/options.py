"""Every option of ``pix2pix export onnx`` and ``pix2pix export trt``, written once.

:class:`ExportOnnxOptions`'s fields are :func:`export.to_onnx.export_run`'s keywords and
:class:`ExportTrtOptions`'s are :func:`export.to_tensorrt.build_engine`'s (names and defaults,
tested), so each command calls ``export_run(source, output, **fields)`` /
``build_engine(model, output, **fields)`` and the flags, help, bounds and checks come from the
fields (runtime/options.py).

No torch, onnx or tensorrt here (``pix2pix export --help`` stays instant), and Python 3.8
grammar: ``pix2pix export trt`` runs on JetPack 5.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from pix2pix_edge.export.to_tensorrt import DEFAULT_WORKSPACE_GIB
from pix2pix_edge.runtime.options import option
from pix2pix_edge.runtime.run_options import SIZE, device_option, threads_option
from pix2pix_edge.runtime.size import SIZE_HELP
from pix2pix_edge.runtime.contract import INFERENCE_NORMS

DEFAULT_OPSET = 17                        # export.to_onnx.DEFAULT_OPSET (torch-bound; tested equal)
PATH = click.Path()


@dataclass
class ExportOnnxOptions:
    """``pix2pix export onnx``'s options = ``export_run``'s keywords."""

    size: tuple[int, int] | None = option(
        None, f"Model input size: {SIZE_HELP}; sides multiples of 2**depth (default: the run's "
              f"crop size, else 256).", type=SIZE, metavar="WxH")
    dynamic: bool = option(False, "Dynamic batch, height and width (sides still multiples of "
                           "2**depth).", switch=True)
    opset: int = option(DEFAULT_OPSET, f"ONNX opset (>= {DEFAULT_OPSET}).", min=DEFAULT_OPSET)
    norm_mode: str | None = option(None, "Override the recorded inference normalisation of a "
                                   "BatchNorm model: per-image statistics (reference test.py) or "
                                   "running statistics (eval mode).", choices=INFERENCE_NORMS, type=str)
    fp16: bool = option(False, "FP16 weights and compute (norms stay FP32), FP32 "
                        "inputs/outputs. What TensorRT >= 10 builds from.", switch=True)
    fp16_io: bool = option(False, "With --fp16: FP16 inputs and outputs too.", switch=True)
    simplify: bool = option(True, "onnxslim graph simplification.")
    check_images: str | None = option(None, "Folder of images for the parity check (default: "
                                      "the run's dataset, if on disk, else synthetic images). "
                                      "A|B pairs contribute their input half.", type=PATH)
    int8: bool = option(False, "INT8 (Q/DQ graph, static quantization): INT8 weights per "
                        "channel, activation ranges calibrated on --calib; the output layer "
                        "stays float.", switch=True)
    calib: str | None = option(None, "With --int8: images to calibrate on (a dataset root, its "
                               "train split, or a folder of input images); pairs the run held "
                               "out are never used.", type=PATH, metavar="DATA")
    calib_images: int | None = option(None, "With --int8: calibration images, spread over DATA "
                                      "(default 32).", type=int, min=1, metavar="N")
    min_psnr: float | None = option(None, "With --int8: fail unless the INT8 output is within "
                                    "this PSNR of the FP32 one (default 30).", type=float, min=0,
                                    metavar="DB")
    subpixel: bool | None = option(None, "Rewrite stride-2 ConvTransposes as 4 convolutions + "
                                   "DepthToSpace (default: on with --int8, where it lets them "
                                   "quantize; off otherwise).", type=bool)
    threads: int | None = threads_option("CPU threads for ONNX Runtime in the parity check and "
                                         "the latency figures (default: physical cores).")


@dataclass
class ExportTrtOptions:
    """``pix2pix export trt``'s options = ``build_engine``'s keywords."""

    fp32: bool = option(False, "A full-precision engine (needs the FP32 ONNX).", switch=True)
    workspace_gib: float = option(DEFAULT_WORKSPACE_GIB, "Builder workspace memory limit.",
                                  flag="--workspace", min=0.001, metavar="GiB")
    min_size: tuple[int, int] | None = option(
        None, f"Dynamic models: smallest input size, {SIZE_HELP} (default: one 2**depth square).",
        type=SIZE, flag="--min", metavar="WxH")
    opt_size: tuple[int, int] | None = option(
        None, f"Dynamic models: the size to optimise for, {SIZE_HELP} (default: the export size).",
        type=SIZE, flag="--opt", metavar="WxH")
    max_size: tuple[int, int] | None = option(
        None, f"Dynamic models: largest input size, {SIZE_HELP} (default: twice the export size).",
        type=SIZE, flag="--max", metavar="WxH")
    batch: str | None = option(None, "Dynamic models: batch sizes of the profile; B means min 1, "
                               "opt and max B (default: 1).", type=str, metavar="B|MIN,OPT,MAX")
    device: int = device_option("The CUDA GPU to build on (the engine runs on that kind of GPU).")
    timing_cache: str | None = option(None, "Read and update this timing cache (valid for one "
                                      "TensorRT version and GPU); rebuilds get much faster.",
                                      type=PATH)
    verbose: bool = option(False, "TensorRT's verbose builder log.", switch=True)
