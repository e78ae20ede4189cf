"""``pix2pix export onnx`` and ``pix2pix export trt``.

Heavy modules (torch, onnx, tensorrt) are imported inside the commands so that
``pix2pix export --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import click

from pix2pix_edge.runtime.contract import INFERENCE_NORMS
from pix2pix_edge.runtime.size import SIZE_HELP


@click.group()
def export():
    """Export a generator to ONNX (FP32 / FP16) or build a TensorRT engine.

    \b
      pix2pix export onnx runs/facades -o model.onnx
      pix2pix export onnx runs/facades -o model_fp16.onnx --fp16
      pix2pix export onnx runs/facades -o model_int8.onnx --int8 --calib data/facades
      pix2pix export trt model.onnx -o model.engine        (on the Jetson / GPU itself)
    """


@export.command("onnx")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="The .onnx file to write (written only after the parity check passed).")
@click.option("--size", metavar="WxH", default=None,
              help=f"Model input size: {SIZE_HELP}; sides multiples of 2**depth (default: the "
                   f"run's crop size, else 256).")
@click.option("--dynamic", is_flag=True,
              help="Dynamic batch, height and width (sides still multiples of 2**depth).")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset (>= 17).")
@click.option("--norm-mode", type=click.Choice(INFERENCE_NORMS), default=None,
              help="Override the recorded inference normalisation of a BatchNorm model: "
                   "per-image statistics (reference test.py) or running statistics (eval mode).")
@click.option("--fp16", is_flag=True,
              help="FP16 weights and compute (norms stay FP32), FP32 inputs/outputs. "
                   "What TensorRT >= 10 builds from.")
@click.option("--fp16-io", is_flag=True, help="With --fp16: FP16 inputs and outputs too.")
@click.option("--no-simplify", is_flag=True, help="Skip onnxslim graph simplification.")
@click.option("--check-images", type=click.Path(path_type=Path), default=None,
              help="Folder of images for the parity check (default: the run's dataset, if on "
                   "disk, else synthetic images). A|B pairs contribute their input half.")
@click.option("--int8", is_flag=True,
              help="INT8 (Q/DQ graph, static quantization): INT8 weights per channel, activation "
                   "ranges calibrated on --calib; the output layer stays float.")
@click.option("--calib", type=click.Path(path_type=Path), default=None, metavar="DATA",
              help="With --int8: images to calibrate on (a dataset root, its train split, or a "
                   "folder of input images); pairs the run held out are never used.")
@click.option("--calib-images", type=int, default=None, metavar="N",
              help="With --int8: calibration images, spread over DATA (default 32).")
@click.option("--min-psnr", type=float, default=30.0, show_default=True, metavar="DB",
              help="With --int8: fail unless the INT8 output is within this PSNR of the FP32 one.")
@click.option("--subpixel/--no-subpixel", default=None,
              help="Rewrite stride-2 ConvTransposes as 4 convolutions + DepthToSpace "
                   "(default: on with --int8, where it lets them quantize; off otherwise).")
def onnx_cmd(source, output, size, dynamic, opset, norm_mode, fp16, fp16_io, no_simplify,
             check_images, int8, calib, calib_images, min_psnr, subpixel):
    """Export SOURCE (a run directory, generator.pt, training checkpoint or a reference-code
    latest_net_G.pth) to ONNX, with metadata, and check it against PyTorch.

    Every export runs a parity check: ONNX Runtime (CPU) vs PyTorch on real or synthetic images,
    max |diff| <= 1e-4 for FP32, FP16 vs FP32 PSNR >= 40 dB for --fp16 and INT8 vs FP32 PSNR
    >= --min-psnr for --int8. A failed check exits with code 6 and leaves no OUTPUT file.
    """
    from pix2pix_edge.export.to_onnx import export_run, format_report
    from pix2pix_edge.runtime.size import parse_size

    report = export_run(source, output, size=parse_size(size, "--size"), dynamic=dynamic, opset=opset,
                        norm_mode=norm_mode, fp16=fp16, fp16_io=fp16_io, simplify=not no_simplify,
                        check_images=check_images, int8=int8, calib=calib,
                        calib_images=calib_images, min_psnr=min_psnr, subpixel=subpixel,
                        log=lambda line: click.echo(line, err=True))
    for line in format_report(report):
        click.echo(line)


@export.command("trt")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="The engine file (default: MODEL with .engine). Its record goes to OUTPUT.json.")
@click.option("--fp32", is_flag=True, help="A full-precision engine (needs the FP32 ONNX).")
@click.option("--workspace", type=float, default=2.0, show_default=True, metavar="GiB",
              help="Builder workspace memory limit.")
@click.option("--min", "min_size", metavar="WxH", default=None,
              help="Dynamic models: smallest input size, WxH (width x height) or N for NxN "
                   "(default: one 2**depth square).")
@click.option("--opt", "opt_size", metavar="WxH", default=None,
              help="Dynamic models: the size to optimise for, WxH (width x height) or N for NxN "
                   "(default: the export size).")
@click.option("--max", "max_size", metavar="WxH", default=None,
              help="Dynamic models: largest input size, WxH (width x height) or N for NxN "
                   "(default: twice the export size).")
@click.option("--batch", metavar="B|MIN,OPT,MAX", default=None,
              help="Dynamic models: batch sizes of the profile; B means min 1, opt and max B "
                   "(default: 1).")
@click.option("--timing-cache", type=click.Path(path_type=Path), default=None,
              help="Read and update this timing cache (valid for one TensorRT version and GPU); "
                   "rebuilds get much faster.")
@click.option("--device", type=click.IntRange(0), default=0, show_default=True,
              help="The CUDA GPU to build on (the engine runs on that kind of GPU).")
@click.option("--verbose", is_flag=True, help="TensorRT's verbose builder log.")
def trt_cmd(model, output, fp32, workspace, min_size, opt_size, max_size, batch, timing_cache,
            device, verbose):
    """Build a TensorRT engine from a pix2pix-edge ONNX MODEL, on the GPU that will run it.

    TensorRT 8.5/8.6 (JetPack 5): FP32 ONNX + BuilderFlag.FP16. TensorRT 10/11: a strongly
    typed network from the FP16 ONNX (an FP32 ONNX is converted on the fly).
    """
    from pix2pix_edge.export.to_tensorrt import build_engine

    output = output or model.with_suffix(".engine")
    report = build_engine(model, output, fp32=fp32, workspace_gib=workspace, min_size=min_size,
                          opt_size=opt_size, max_size=max_size, batch=batch, device=device,
                          timing_cache=timing_cache,
                          verbose=verbose, log=lambda line: click.echo(line, err=True))
    click.echo(f"wrote {report['engine']} ({report['engine_bytes'] / 2**20:.1f} MiB, "
               f"{report['precision'].upper()}, TensorRT {report['tensorrt_version']}, "
               f"{report['gpu']} sm {report['compute_capability']}) in {report['build_s']:.1f} s")
    click.echo(f"  record: {report['record']}")
    if report["profile"]:
        p = report["profile"]
        click.echo("  profile (batch x WxH): " + ", ".join(f"{k} {v[0]} x {v[3]}x{v[2]}"
                                                         for k, v in p.items()))
    if report["timing_cache"]:
        click.echo(f"  {report['timing_cache']}")
