"""Export a trained generator to ONNX, with metadata and a parity check that runs every time.

Choices (REFERENCE.md, "Inference behaviour"):

* The graph computes :func:`train.models.inference_copy`, THE definition of inference behaviour:
  ``running`` = BatchNorm with running statistics, folded into the preceding Conv /
  ConvTranspose weights before export (``torch.nn.utils.fusion.fuse_conv_bn_eval``), so no
  BatchNormalization node is left whether or not onnxslim runs (checked after export);
  ``per-image`` = InstanceNormalization carrying BatchNorm's affine parameters. Dropout removed.
* Exporter: the TorchScript-based one (``dynamo=False``). It is the mature path for a plain
  conv net, needs no extra package (the dynamo exporter needs onnxscript) and exports a 54 M
  parameter U-Net in about a second. Opset 17 by default (InstanceNormalization, ConvTranspose
  and LeakyRelu are stable there; TensorRT 8.6 parses it).
* Static shape by default (TensorRT and ORT optimise best for one size); ``dynamic=True`` makes
  batch, height and width symbolic. Sizes must be multiples of ``2 ** depth``.
* The file is written under a temporary name and renamed only after ``onnx.checker`` and the
  parity check passed, so a failed export never leaves a valid-looking ``model.onnx``.

Cost convention: multiply-adds (MACs) of every Conv2d / ConvTranspose2d, counted on the model;
a transposed convolution counts at its *input* resolution (the work it really does), so unet_256
at 256x256 is 6.05 G MACs = 12.1 GFLOP (tools counting at output resolution say 18.1 G MACs).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from pix2pix_edge.export import parity
from pix2pix_edge.runtime.errors import BadInput, CheckFailed
from pix2pix_edge.runtime.files import check_writable
from pix2pix_edge.runtime.model_info import DIRECTIONS, ModelInfo
from pix2pix_edge.runtime.size import Size, parse_size  # noqa: F401 - parse_size: --size
from pix2pix_edge.train.models import count_parameters, inference_copy

DEFAULT_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "output"
FP32_MAX_ABS = 1e-4     # ORT vs PyTorch, FP32
FP16_MIN_PSNR = 40.0    # FP16 ONNX vs FP32 ONNX, dB
N_CHECK_IMAGES = 4
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


# --------------------------------------------------------------------------- model preparation
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm2d that directly follows a Conv2d / ConvTranspose2d in an
    ``nn.Sequential`` into that convolution (in place). Identity replaces the BatchNorm."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if (isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(bn, nn.BatchNorm2d)
                    and not bn.training and bn.track_running_stats):
                seq[i] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
                seq[i + 1] = nn.Identity()
    return model


def count_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-adds of all Conv2d / ConvTranspose2d for one ``height x width`` frame."""
    total = 0

    def hook(m, inputs, output):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1]
        if isinstance(m, nn.ConvTranspose2d):
            total += inputs[0].numel() * (m.out_channels // m.groups) * k
        else:
            total += output.numel() * (m.in_channels // m.groups) * k

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            model(torch.zeros(1, model.config["in_channels"], height, width))
    finally:
        for h in handles:
            h.remove()
    return total


def check_size(height: int, width: int, multiple: int, what: str = "size") -> None:
    if height % multiple or width % multiple or height <= 0 or width <= 0:
        raise BadInput(f"{what} {width}x{height} is not a multiple of {multiple} (2**depth of this "
                       f"U-Net); try {max(multiple, round(width / multiple) * multiple)}x"
                       f"{max(multiple, round(height / multiple) * multiple)}")


def resolve_norm_mode(config: dict, record: dict, override: str | None) -> tuple[str, str, str]:
    """``(torch_mode, recorded_mode, note)``: the mode for inference_copy, the one written into
    the metadata, and a remark for the report. BatchNorm models honour the recorded choice or the
    override; InstanceNorm / no-norm models are per-image by construction."""
    norm = config.get("norm", "batch")
    if norm != "batch":
        recorded = "instance" if norm == "instance" else "none"
        note = f"model trained with norm={norm}: --norm-mode ignored" if override else ""
        return "running", recorded, note
    mode = override or record.get("inference", {}).get("norm_mode", "per-image")
    note = "" if not override else f"--norm-mode {override} overrides the recorded " \
                                   f"{record.get('inference', {}).get('norm_mode', '?')}"
    return mode, mode, note


def make_info(config: dict, record: dict, *, height: int, width: int, dynamic: bool,
              norm_mode: str, source: str, precision: str = "fp32",
              io_dtype: str = "float32", opset: int = DEFAULT_OPSET) -> ModelInfo:
    """The metadata record (runtime.model_info) for an export of this generator."""
    data = record.get("data") or {}
    direction = data.get("direction", "AtoB")
    dataset = data.get("dataset") or data.get("root") or data.get("data") or ""
    info = ModelInfo(
        input_name=INPUT_NAME, output_name=OUTPUT_NAME, layout="NCHW", color_order="RGB",
        value_range=(-1.0, 1.0), height=height, width=width, dynamic=dynamic,
        multiple=2 ** config["depth"], in_channels=config.get("in_channels", 3),
        out_channels=config.get("out_channels", 3), io_dtype=io_dtype, precision=precision,
        norm_mode=norm_mode, depth=config["depth"], ngf=config["ngf"],
        direction=direction if direction in DIRECTIONS else "AtoB",
        source_run=str(record.get("run") or source), dataset=str(dataset),
        # the decoder (train --upsample), so a reader knows which U-Net variant it holds
        extra={"opset": opset, "exporter": "pix2pix-edge",
               "upsample": config.get("upsample", "transpose")},
    )
    info.validate()
    return info


# --------------------------------------------------------------------------- export
def export_model(model: nn.Module, path: str | Path, *, height: int, width: int,
                 dynamic: bool = False, opset: int = DEFAULT_OPSET, simplify: bool = True,
                 info: ModelInfo | None = None) -> Path:
    """Export an inference-ready generator (e.g. from ``inference_copy``) to ``path``.

    Eval-mode BatchNorm is folded first; onnxslim simplifies when asked; the metadata is written
    last (simplifiers may drop metadata_props); ``onnx.checker`` runs on the result. No parity
    check here: :func:`export_run` does that."""
    import onnx

    path = Path(path)
    model = fold_batchnorm(_copy(model)).eval()
    channels = model.config["in_channels"] if hasattr(model, "config") else 3
    x = torch.zeros(1, channels, height, width)
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation, instance_norm train=True
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          do_constant_folding=True,
                          dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes} if dynamic else None)
    proto = onnx.load(str(path))
    if simplify:
        import onnxslim

        proto = onnxslim.slim(proto)
    proto.producer_name = "pix2pix-edge"
    proto.doc_string = "pix2pix-edge U-Net generator"
    if info is not None:
        del proto.metadata_props[:]
        for k, v in info.to_props().items():
            proto.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return path


def _copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model)


def op_counts(path: str | Path) -> dict[str, int]:
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


# --------------------------------------------------------------------------- check images
def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def dataset_image_dir(record: dict) -> Path | None:
    """A folder of images from the run's dataset (val / test / train split), if it is on disk."""
    data = record.get("data") or {}
    for key in ("root", "path", "data_dir", "dataset", "data"):
        value = data.get(key)
        if not isinstance(value, str) or not value:
            continue
        root = Path(value)
        for sub in (root / "val", root / "test", root / "train", root):
            if sub.is_dir() and _image_files(sub):
                return sub
    return None


def load_images(folder: Path, height: int, width: int, direction: str = "AtoB",
                n: int = N_CHECK_IMAGES) -> np.ndarray:
    """Up to ``n`` images as float32 NCHW RGB in [-1, 1], resized to ``height x width``.
    An aligned A|B pair (about twice as wide as tall) contributes its input half."""
    from PIL import Image

    arrays = []
    for path in _image_files(folder):
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                w, h = im.size
                if 1.9 <= w / h <= 2.1:  # aligned A|B: the model input is A (AtoB) or B (BtoA)
                    half = w // 2
                    im = im.crop((0, 0, half, h) if direction == "AtoB" else (half, 0, w, h))
                im = im.resize((width, height), Image.BICUBIC)
                arrays.append(np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1.0)
        except OSError:
            continue  # unreadable file: skip, others may do
        if len(arrays) == n:
            break
    if not arrays:
        raise BadInput(f"no readable images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return np.stack(arrays).astype(np.float32)


def check_names(folder: Path | None, n: int = N_CHECK_IMAGES) -> list[str]:
    """File names :func:`load_images` reads first from ``folder`` (kept out of calibration)."""
    return [p.name for p in _image_files(folder)[:n]] if folder is not None else []


def synthetic_images(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour fields with edges (closer to photos than white noise)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, max(1, height // 16), max(1, width // 16), generator=g) * 2 - 1
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic",
                                             align_corners=False)
    edges = torch.sign(torch.rand(n, 1, max(1, height // 32), max(1, width // 32), generator=g) - 0.5)
    edges = torch.nn.functional.interpolate(edges, size=(height, width), mode="nearest") * 0.3
    return (smooth + edges).clamp(-1, 1).numpy().astype(np.float32)


# --------------------------------------------------------------------------- the full export
def export_run(source: str | Path, output: str | Path, *, size: Size | None = None,
               dynamic: bool = False, opset: int = DEFAULT_OPSET, norm_mode: str | None = None,
               fp16: bool = False, fp16_io: bool = False, simplify: bool = True,
               check_images: str | Path | None = None, int8: bool = False,
               calib: str | Path | None = None, calib_images: int | None = None,
               min_psnr: float | None = None, subpixel: bool | None = None,
               threads: int | None = None, log: Callable[[str], None] = print) -> dict:
    """``pix2pix export onnx``: load, export, check, write. Returns the report as a dict.

    ``size``: (width, height), a runtime.size.Size (``report["size"]`` stays [height, width]).
    ``int8``: quantize (export/int8.py) with activation ranges calibrated on ``calib``;
    ``subpixel`` (default: on for INT8 only) rewrites stride-2 ConvTransposes into sub-pixel
    form (export/subpixel.py) before the FP32 parity check, which therefore checks it too."""
    from pix2pix_edge.train.checkpoint import load_generator

    output = Path(output)
    if Path(source).suffix.lower() == ".onnx":
        raise BadInput(f"{source} is already an ONNX file: `export onnx` takes a run directory or "
                       f"checkpoint (for an engine: pix2pix export trt {source})")
    if fp16_io and not fp16:
        raise BadInput("--fp16-io needs --fp16 (an FP32 model has FP32 inputs and outputs)")
    if opset < 17:
        raise BadInput(f"--opset {opset}: pix2pix-edge exports need opset 17 or newer")
    if check_images is not None and not Path(check_images).is_dir():
        raise BadInput(f"--check-images {check_images}: not a directory")
    if int8 or calib is not None:
        from pix2pix_edge.export import int8 as int8_mod

        int8_mod.check_options(int8=int8, fp16=fp16, calib=calib, calib_images=calib_images)
    subpixel = int8 if subpixel is None else subpixel
    check_writable(output, "model.onnx")

    generator, record = load_generator(source)
    config = generator.config
    multiple = 2 ** config["depth"]
    crop = (record.get("data") or {}).get("crop_size")
    if size is None:
        side = crop if isinstance(crop, int) and crop > 0 and crop % multiple == 0 else max(256, multiple)
        size = (side, side)
    width, height = size
    check_size(height, width, multiple, "--size")
    torch_mode, recorded_mode, note = resolve_norm_mode(config, record, norm_mode)
    reference = inference_copy(generator, torch_mode)
    direction = (record.get("data") or {}).get("direction", "AtoB")

    # Check images: --check-images, else the run's dataset, else synthetic.
    folder = Path(check_images) if check_images else dataset_image_dir(record)
    if folder is not None:
        images, image_source = load_images(folder, height, width, direction), f"images from {folder}"
    else:
        images, image_source = synthetic_images(N_CHECK_IMAGES, height, width), "synthetic images"
    if int8:  # before any export work: a bad calibration folder fails at once
        calib_x, calib_text = int8_mod.load_calibration(
            calib, height, width, direction=direction,
            n=calib_images or int8_mod.DEFAULT_CALIB_IMAGES, source=source,
            exclude_names=set(check_names(folder)))
    # A dynamic export is also checked at a second size with batch 2.
    extra = None
    if dynamic:
        h2, w2 = (multiple, 2 * multiple) if (multiple, 2 * multiple) != (height, width) \
            else (2 * multiple, multiple)
        extra = synthetic_images(2, h2, w2, seed=1)

    with torch.no_grad():
        ref_out = [reference(torch.from_numpy(x[None])).numpy() for x in images]
        ref_extra = reference(torch.from_numpy(extra)).numpy() if extra is not None else None

    report: dict = {"source": str(source), "output": str(output), "size": [height, width],
                    "dynamic": dynamic, "opset": opset, "norm_mode": recorded_mode,
                    "precision": "fp16" if fp16 else "int8" if int8 else "fp32",
                    "io_dtype": "float16" if fp16_io else "float32",
                    "parameters": count_parameters(generator),
                    "macs": count_macs(reference, height, width), "check_images": image_source,
                    "notes": [n for n in [note] if n]}
    if record.get("inference", {}).get("dropout"):
        report["notes"].append("dropout was recorded as on at inference; exports remove it")

    workdir = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        info32 = make_info(config, record, height=height, width=width, dynamic=dynamic,
                           norm_mode=recorded_mode, source=str(source), opset=opset)
        tmp32 = workdir / "fp32.onnx"
        log(f"exporting {source} (U-Net depth {config['depth']}, ngf {config['ngf']}, "
            f"norm {recorded_mode}) at {width}x{height}, opset {opset} ...")
        try:
            export_model(reference, tmp32, height=height, width=width, dynamic=dynamic,
                         opset=opset, simplify=simplify, info=info32)
        except (torch.onnx.errors.OnnxExporterError, torch.onnx.errors.UnsupportedOperatorError) as e:
            raise BadInput(f"ONNX export failed at opset {opset}: {str(e).splitlines()[0]}") from None
        if subpixel:  # the FP32 parity check below then also checks the rewrite
            from pix2pix_edge.export import int8 as int8_mod

            report["subpixel"] = int8_mod.rewrite_file(tmp32, keep_output_layer=int8)
        ops = op_counts(tmp32)
        report["ops"] = ops
        if torch_mode == "running" and ops.get("BatchNormalization"):
            _fail(tmp32, output, f"{ops['BatchNormalization']} BatchNormalization nodes were not "
                                 "folded into the convolutions")

        log(f"checking parity against PyTorch on {image_source} ...")
        infer32, backend = parity.onnx_runner(str(tmp32), threads)
        report["backend"] = backend
        out32 = [infer32(x[None]) for x in images]
        p32 = parity.compare(ref_out, out32)
        if extra is not None:
            p_extra = parity.compare([ref_extra], [infer32(extra)])
            p32["dynamic_check"] = {"shape": list(extra.shape), **p_extra}
            p32["max_abs"] = max(p32["max_abs"], p_extra["max_abs"])
            p32["psnr_db"] = min(p32["psnr_db"], p_extra["psnr_db"])
        report["parity_fp32"] = p32
        if not p32["max_abs"] <= FP32_MAX_ABS:
            _fail(tmp32, output, f"parity check failed: ONNX Runtime vs PyTorch max |diff| "
                                 f"{p32['max_abs']:.2e} > {FP32_MAX_ABS:.0e} "
                                 f"(PSNR {p32['psnr_db']:.1f} dB) on {image_source}")
        final, infer = tmp32, infer32
        if fp16:
            from pix2pix_edge.export import fp16 as fp16_mod

            tmp16 = workdir / "fp16.onnx"
            fp16_mod.convert_file(tmp32, tmp16, keep_io_types=not fp16_io)
            infer16, _ = parity.onnx_runner(str(tmp16), threads)
            cast = (lambda a: a.astype(np.float16)) if fp16_io else (lambda a: a)
            out16 = [infer16(cast(x[None])).astype(np.float32) for x in images]
            p16 = parity.compare(out32, out16)
            if extra is not None:
                p_extra = parity.compare([infer32(extra)], [infer16(cast(extra)).astype(np.float32)])
                p16["psnr_db"] = min(p16["psnr_db"], p_extra["psnr_db"])
                p16["max_abs"] = max(p16["max_abs"], p_extra["max_abs"])
            report["parity_fp16"] = p16
            if not p16["psnr_db"] >= FP16_MIN_PSNR:
                _fail(tmp16, output, f"FP16 check failed: PSNR {p16['psnr_db']:.1f} dB vs the FP32 "
                                     f"model < {FP16_MIN_PSNR:.0f} dB (max |diff| "
                                     f"{p16['max_abs']:.3g}) on {image_source}")
            final, infer = tmp16, infer16
            x1 = cast(images[:1])
        elif int8:
            tmp8 = workdir / "int8.onnx"
            report["int8"] = int8_mod.export_int8(tmp32, tmp8, calib_x, calib_text, log=log)
            infer8, _ = parity.onnx_runner(str(tmp8), threads)
            out8 = [infer8(x[None]) for x in images]
            p8 = parity.compare(out32, out8)
            if extra is not None:
                p_extra = parity.compare([infer32(extra)], [infer8(extra)])
                p8["psnr_db"] = min(p8["psnr_db"], p_extra["psnr_db"])
                p8["max_abs"] = max(p8["max_abs"], p_extra["max_abs"])
            p8["min_psnr"] = int8_mod.DEFAULT_MIN_PSNR if min_psnr is None else float(min_psnr)
            report["parity_int8"] = p8
            if not p8["psnr_db"] >= p8["min_psnr"]:
                _fail(tmp8, output, f"INT8 check failed: PSNR {p8['psnr_db']:.1f} dB vs the FP32 "
                                    f"model < --min-psnr {p8['min_psnr']:g} dB (max |diff| "
                                    f"{p8['max_abs']:.3g}) on {image_source}")
            final, infer = tmp8, infer8
            x1 = images[:1]
        else:
            x1 = images[:1]
        report["ort_cpu_ms"] = parity.median_latency_ms(lambda: infer(x1), runs=5, warmup=1)
        os.replace(final, output)
        report["file_bytes"] = output.stat().st_size
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def _fail(tmp: Path, output: Path, message: str) -> None:
    """Keep the failed file for inspection under a name no loader will take for the model."""
    failed = output.with_name(output.name + ".failed")
    try:
        os.replace(tmp, failed)
        message += f"; the rejected file is kept as {failed}"
    except OSError:
        pass
    raise CheckFailed(message)


def _si(n: float) -> str:
    return f"{n / 1e9:.2f} G" if n >= 1e8 else f"{n / 1e6:.1f} M"


def format_report(report: dict) -> list[str]:
    """The short human report ``pix2pix export onnx`` prints."""
    h, w = report["size"]
    lines = [
        f"wrote {report['output']} ({report['file_bytes'] / 2**20:.1f} MiB, {report['precision'].upper()}"
        f" weights, {report['io_dtype']} I/O, opset {report['opset']}, "
        f"{'dynamic batch/H/W' if report['dynamic'] else 'static'} {w}x{h}, norm {report['norm_mode']})",
        f"  parameters {report['parameters']:,}; {_si(report['macs'])} multiply-adds = "
        f"{_si(2 * report['macs'])}FLOP per {w}x{h} frame (transposed convs at input resolution)",
    ]
    p = report["parity_fp32"]
    lines.append(f"  parity FP32 vs PyTorch: max |diff| {p['max_abs']:.2e} (limit {FP32_MAX_ABS:.0e}), "
                 f"PSNR {p['psnr_db']:.1f} dB on {p['n']} {report['check_images']}"
                 + (f" + batch {p['dynamic_check']['shape'][0]} at "
                    f"{p['dynamic_check']['shape'][2]}x{p['dynamic_check']['shape'][3]}"
                    if "dynamic_check" in p else ""))
    if "parity_int8" in report:
        q, i8 = report["parity_int8"], report["int8"]
        lines.append(f"  parity INT8 vs FP32: PSNR {q['psnr_db']:.1f} dB (limit {q['min_psnr']:g}), "
                     f"max |diff| {q['max_abs']:.2e}; {i8['quantized_layers']} layers INT8, "
                     f"{len(i8['float_layers'])} kept in float, {i8['subpixel_layers']} "
                     f"ConvTransposes in sub-pixel form")
        lines.append(f"  calibration: {i8['calibration']} ({i8['calibration_method']})")
    elif report.get("subpixel"):
        lines.append(f"  sub-pixel form: {report['subpixel']} ConvTransposes rewritten "
                     "(4 Conv 2x2 + DepthToSpace each)")
    if "parity_fp16" in report:
        q = report["parity_fp16"]
        lines.append(f"  parity FP16 vs FP32: PSNR {q['psnr_db']:.1f} dB (limit {FP16_MIN_PSNR:.0f}), "
                     f"max |diff| {q['max_abs']:.2e}")
    lines.append(f"  ONNX Runtime CPU latency: {report['ort_cpu_ms']:.1f} ms median (batch 1, "
                 f"{parity.cpu_threads()} threads) via {report['backend']}"
                 + ("; FP16 on a CPU runs through casts (slower than FP32)" if report['precision'] == 'fp16' else ""))
    for note in report["notes"]:
        lines.append(f"  note: {note}")
    return lines
