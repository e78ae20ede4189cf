"""``pix2pix export onnx`` and ``pix2pix export trt``.

Heavy modules (torch, onnx, tensorrt) are imported inside the commands so that
``pix2pix export --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import click

from pix2pix_edge.export.options import ExportOnnxOptions, ExportTrtOptions
from pix2pix_edge.runtime.options import check_options, click_options


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
              help="The .onnx file to write: written under a temporary name and moved into "
                   "place (replacing an existing file) only after the parity check passed; the "
                   "generator file it exports is refused.")
@click_options(ExportOnnxOptions)
def onnx_cmd(source, output, **options):
    """Export SOURCE (a run directory, generator.pt, training checkpoint or a reference-code
    latest_net_G.pth) to ONNX, with metadata, and check it against PyTorch.

    Every export runs a parity check: ONNX Runtime (CPU) vs PyTorch on real or synthetic images,
    max |diff| <= 1e-4 for FP32, FP16 vs FP32 PSNR >= 40 dB for --fp16 and INT8 vs FP32 PSNR
    >= --min-psnr for --int8. A failed check exits with code 6 and leaves no OUTPUT file.
    """
    from dataclasses import asdict

    from pix2pix_edge.export.to_onnx import export_run, format_report

    o = ExportOnnxOptions(**options)
    check_options(o)
    report = export_run(source, output, **asdict(o), log=lambda line: click.echo(line, err=True))
    for line in format_report(report):
        click.echo(line)


@export.command("trt")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="The engine file (default: MODEL with .engine), written whole or not at all "
                   "(an existing one is replaced only by a whole engine; MODEL itself is refused). "
                   "Its record goes to OUTPUT.json.")
@click_options(ExportTrtOptions)
def trt_cmd(model, output, **options):
    """Build a TensorRT engine from a pix2pix-edge ONNX MODEL, on the GPU that will run it.

    TensorRT 8.5/8.6 (JetPack 5): FP32 ONNX + BuilderFlag.FP16. TensorRT 10/11: a strongly
    typed network from the FP16 ONNX (an FP32 ONNX is converted on the fly).
    """
    from dataclasses import asdict

    from pix2pix_edge.export.to_tensorrt import build_engine
    from pix2pix_edge.runtime.files import format_bytes

    o = ExportTrtOptions(**options)
    check_options(o)
    output = output or model.with_suffix(".engine")
    report = build_engine(model, output, **asdict(o), log=lambda line: click.echo(line, err=True))
    click.echo(f"wrote {report['engine']} ({format_bytes(report['engine_bytes'])}, "
               f"{report['precision'].upper()}, TensorRT {report['tensorrt_version']}, "
               f"{report['gpu']} sm {report['compute_capability']}) in {report['build_s']:.1f} s")
    click.echo(f"  record: {report['record']}")
    if report["profile"]:
        p = report["profile"]
        click.echo("  profile (batch x WxH): " + ", ".join(f"{k} {v[0]} x {v[3]}x{v[2]}"
                                                         for k, v in p.items()))
    if report["timing_cache"]:
        click.echo(f"  {report['timing_cache']}")
