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
* :func:`export_run` is one flow: ``_prepare`` (every argument and input check, before any
  work) -> ``_export_fp32`` -> optional ``_export_fp16`` / ``_export_int8`` ->
  ``_measure_latency`` -> ``os.replace``. Each precision passes the same ``_check_parity``: its
  outputs through the runtime's own ONNX Runtime backend (export/parity.py) against PyTorch
  (FP32, max |diff| <= 1e-4) or the FP32 ONNX (FP16 >= 40 dB, INT8 >= ``min_psnr``), on the
  check images and, for ``dynamic``, a batch of 2 at a second size.
* The files are written in a temporary folder beside the output and the result renamed only after
  ``onnx.checker`` and every parity check passed, so a failed export never leaves a
  valid-looking ``model.onnx`` (the rejected file is kept as ``model.onnx.failed``).

Cost convention: multiply-adds (MACs) of every Conv2d / ConvTranspose2d, counted on the model;
a transposed convolution counts at its *input* resolution (the work it really does), so unet_256
at 256x256 is 6.05 G MACs = 12.1 GFLOP (tools counting at output resolution say 18.1 G MACs).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from pix2pix_edge.export import parity
from pix2pix_edge.runtime import contract
from pix2pix_edge.runtime.errors import BadInput, BadUsage, CheckFailed
from pix2pix_edge.runtime.files import (check_writable, format_bytes, refuse_same_files,
                                        remove_stale_temps, temp_prefix)
from pix2pix_edge.runtime.model_info import DIRECTIONS, ModelInfo
from pix2pix_edge.runtime.size import Size, parse_size  # noqa: F401 - parse_size: --size
from pix2pix_edge.train.models import LowPass, count_parameters, inference_copy

DEFAULT_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "output"
FP32_MAX_ABS = 1e-4     # ORT vs PyTorch, FP32
FP16_MIN_PSNR = 40.0    # FP16 ONNX vs FP32 ONNX, dB
N_CHECK_IMAGES = 4


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
    """Multiply-adds of all Conv2d / ConvTranspose2d (and --antialias low-pass filters) for one
    ``height x width`` frame."""
    total = 0

    def hook(m, inputs, output):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1]
        if isinstance(m, nn.ConvTranspose2d):
            total += inputs[0].numel() * (m.out_channels // m.groups) * k
        else:
            total += output.numel() * (m.in_channels // m.groups) * k

    def low_pass(m, inputs, output):   # train --antialias: a 4x4 depthwise filter
        nonlocal total
        total += output.numel() * m.kernel.shape[-1] * m.kernel.shape[-2]

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    handles += [m.register_forward_hook(low_pass) for m in model.modules()
                if isinstance(m, LowPass)]
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
    recorded = record.get("inference", {}).get("norm_mode", contract.DEFAULT_INFERENCE_NORM)
    mode = override or recorded
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
        value_range=contract.VALUE_RANGE, height=height, width=width, dynamic=dynamic,
        multiple=2 ** config["depth"], in_channels=config.get("in_channels", 3),
        out_channels=config.get("out_channels", 3), io_dtype=io_dtype, precision=precision,
        norm_mode=norm_mode, depth=config["depth"], ngf=config["ngf"],
        direction=direction if direction in DIRECTIONS else "AtoB",
        source_run=str(record.get("run") or source), dataset=str(dataset),
        # the decoder (train --upsample) and the steady-video choices (train --antialias,
        # --lambda-stability), so a reader knows which U-Net variant it holds and how it trained
        extra={"opset": opset, "exporter": "pix2pix-edge",
               "upsample": config.get("upsample", "transpose"),
               "antialias": bool(config.get("antialias", False)),
               **({"antialias_pad": config["antialias_pad"]} if config.get("antialias") else {}),
               **(record.get("training") or {})},
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
def dataset_image_dir(record: dict) -> Path | None:
    """A folder of images from the run's dataset (val / test / train split), if it is on disk."""
    data = record.get("data") or {}
    for key in ("root", "path", "data_dir", "dataset", "data"):
        value = data.get(key)
        if not isinstance(value, str) or not value:
            continue
        root = Path(value)
        for sub in (root / "val", root / "test", root / "train", root):
            if sub.is_dir() and contract.image_files(sub):
                return sub
    return None


def load_images(folder: Path, height: int, width: int, direction: str = "AtoB",
                n: int = N_CHECK_IMAGES) -> np.ndarray:
    """Up to ``n`` images as float32 NCHW RGB in [-1, 1], resized to ``height x width``, read
    as every model input is (runtime/contract.py: an A|B pair contributes its input half).
    Unreadable files are skipped (others may do)."""
    arrays = []
    for path in contract.image_files(folder):
        try:
            arrays.append(contract.load_inputs([path], width, height, direction)[0])
        except BadInput:
            continue
        if len(arrays) == n:
            break
    if not arrays:
        raise BadInput(f"no readable images ({', '.join(contract.IMAGE_EXTS)}) in {folder}")
    return np.stack(arrays).astype(np.float32)


def check_names(folder: Path | None, n: int = N_CHECK_IMAGES) -> list[str]:
    """File names :func:`load_images` reads first from ``folder`` (kept out of calibration)."""
    return [p.name for p in contract.image_files(folder)[:n]] if folder is not None else []


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
@dataclass
class Job:
    """One export, resolved and checked by :func:`_prepare` before any export work."""
    source: str
    output: Path
    generator: nn.Module
    record: dict
    reference: nn.Module        # inference_copy(generator, torch_mode): what the graph computes
    torch_mode: str
    norm_mode: str              # the mode written into the metadata
    notes: list[str]
    width: int
    height: int
    images: np.ndarray          # the check images, NCHW float32 in [-1, 1]
    image_source: str
    extra: np.ndarray | None    # --dynamic: a batch of 2 at a second size, checked too
    calibration: tuple[np.ndarray, str] | None   # INT8: (inputs, description)
    precision: str
    dynamic: bool
    opset: int
    simplify: bool
    subpixel: bool
    fp16_io: bool
    min_psnr: float | None      # INT8 limit, dB
    threads: int | None         # ONNX Runtime CPU threads (None: the physical cores)


@dataclass
class Outputs:
    """What one model gives on the check images (one array each) and on the dynamic batch."""
    images: list[np.ndarray]
    extra: np.ndarray | None


@dataclass
class Checked:
    """An exported file that passed its parity check, with the backend that ran it."""
    path: Path
    backend: object             # runtime.backends.onnxruntime.OnnxRuntimeBackend
    outputs: Outputs


def export_run(source: str | Path, output: str | Path, *, size: Size | None = None,
               dynamic: bool = False, opset: int = DEFAULT_OPSET, norm_mode: str | None = None,
               fp16: bool = False, fp16_io: bool = False, simplify: bool = True,
               check_images: str | Path | None = None, int8: bool = False,
               calib: str | Path | None = None, calib_images: int | None = None,
               min_psnr: float | None = None, subpixel: bool | None = None,
               threads: int | None = None, log: Callable[[str], None] = print) -> dict:
    """``pix2pix export onnx``: prepare -> FP32 + parity -> optional FP16 / INT8 + parity ->
    latency -> replace. Returns the report as a dict; writes ``output`` only when every check
    passed (a rejected file is kept as ``output.failed``, :class:`CheckFailed`, exit 6).

    ``size``: (width, height), a runtime.size.Size (``report["size"]`` stays [height, width]).
    ``int8``: quantize (export/int8.py) with activation ranges calibrated on ``calib``;
    ``subpixel`` (default: on for INT8 only) rewrites stride-2 ConvTransposes into sub-pixel
    form (export/subpixel.py) before the FP32 parity check, which therefore checks it too.
    ``threads``: ONNX Runtime CPU threads of the parity sessions and the latency figure
    (default: the physical cores, as the runtime)."""
    job = _prepare(source, output, size=size, dynamic=dynamic, opset=opset, norm_mode=norm_mode,
                   fp16=fp16, fp16_io=fp16_io, simplify=simplify, check_images=check_images,
                   int8=int8, calib=calib, calib_images=calib_images, min_psnr=min_psnr,
                   subpixel=subpixel, threads=threads)
    report = _report_head(job)
    remove_stale_temps(job.output.parent, job.output.name)   # a killed export's work folder
    workdir = Path(tempfile.mkdtemp(prefix=temp_prefix(job.output.name), dir=job.output.parent))
    try:
        fp32 = _export_fp32(job, workdir / "fp32.onnx", report, log)
        final = fp32
        if job.precision == "fp16":
            final = _export_fp16(job, fp32, workdir / "fp16.onnx", report)
        elif job.precision == "int8":
            final = _export_int8(job, fp32, workdir / "int8.onnx", report, log)
        _measure_latency(job, fp32, final, report)
        os.replace(final.path, job.output)
        report["file_bytes"] = job.output.stat().st_size
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


# --------------------------------------------------------------------------- prepare
def _prepare(source, output, *, size, dynamic, opset, norm_mode, fp16, fp16_io, simplify,
             check_images, int8, calib, calib_images, min_psnr, subpixel, threads) -> Job:
    """Every check of the arguments and of the user's files, the generator, the size, the
    normalisation mode, the check images and the calibration set: all that can fail on the
    user's input fails here, before any export work."""
    from pix2pix_edge.train.checkpoint import load_generator

    output = Path(output)
    _check_arguments(source, output, opset=opset, fp16=fp16, fp16_io=fp16_io,
                     check_images=check_images, int8=int8, calib=calib, calib_images=calib_images)
    parity.backend_class()  # the parity check runs through the runtime's backend, or not at all
    generator, record = load_generator(source)
    width, height = _resolve_size(generator.config, record, size)
    torch_mode, recorded_mode, note = resolve_norm_mode(generator.config, record, norm_mode)
    notes = [n for n in [note] if n]
    if record.get("inference", {}).get("dropout"):
        notes.append("dropout was recorded as on at inference; exports remove it")
    direction = (record.get("data") or {}).get("direction", "AtoB")
    folder = Path(check_images) if check_images else dataset_image_dir(record)
    if folder is not None:
        images, image_source = load_images(folder, height, width, direction), f"images from {folder}"
    else:
        images, image_source = synthetic_images(N_CHECK_IMAGES, height, width), "synthetic images"
    calibration = None
    if int8:
        from pix2pix_edge.export import int8 as int8_mod

        calibration = int8_mod.load_calibration(
            calib, height, width, direction=direction,
            n=calib_images or int8_mod.DEFAULT_CALIB_IMAGES, source=source,
            exclude_names=set(check_names(folder)))
    return Job(source=str(source), output=output, generator=generator, record=record,
               reference=inference_copy(generator, torch_mode), torch_mode=torch_mode,
               norm_mode=recorded_mode, notes=notes, width=width, height=height, images=images,
               image_source=image_source,
               extra=_dynamic_batch(height, width, 2 ** generator.config["depth"]) if dynamic else None,
               calibration=calibration, precision="fp16" if fp16 else "int8" if int8 else "fp32",
               dynamic=dynamic, opset=opset, simplify=simplify,
               subpixel=int8 if subpixel is None else subpixel, fp16_io=fp16_io,
               min_psnr=min_psnr, threads=threads)


def _check_arguments(source, output: Path, *, opset, fp16, fp16_io, check_images, int8, calib,
                     calib_images) -> None:
    """One-line errors for arguments that cannot work, before anything is loaded."""
    if Path(source).suffix.lower() == ".onnx":
        raise BadInput(f"{source} is already an ONNX file: `export onnx` takes a run directory or "
                       f"checkpoint (for an engine: pix2pix export trt {source})")
    if fp16_io and not fp16:
        raise BadUsage("--fp16-io needs --fp16 (an FP32 model has FP32 inputs and outputs)")
    if opset < 17:
        raise BadUsage(f"--opset {opset}: pix2pix-edge exports need opset 17 or newer")
    if check_images is not None and not Path(check_images).is_dir():
        raise BadInput(f"--check-images {check_images}: not a directory")
    if int8 or calib is not None:
        from pix2pix_edge.export import int8 as int8_mod

        int8_mod.check_options(int8=int8, fp16=fp16, calib=calib, calib_images=calib_images)
    generator = Path(source) / "generator.pt" if Path(source).is_dir() else Path(source)
    refuse_same_files([("-o", output)], [("the generator it exports", generator),
                                         ("the run record", generator.parent / "config.json")])
    check_writable(output, "model.onnx")


def _resolve_size(config: dict, record: dict, size: Size | None) -> tuple[int, int]:
    """``(width, height)``: ``size``, else the run's crop size, else 256 (checked)."""
    multiple = 2 ** config["depth"]
    crop = (record.get("data") or {}).get("crop_size")
    if size is None:
        side = crop if isinstance(crop, int) and crop > 0 and crop % multiple == 0 else max(256, multiple)
        size = (side, side)
    width, height = size
    check_size(height, width, multiple, "--size")
    return width, height


def _dynamic_batch(height: int, width: int, multiple: int) -> np.ndarray:
    """Two synthetic images at a second size (another shape than the export's), for the
    --dynamic check."""
    h2, w2 = (multiple, 2 * multiple) if (multiple, 2 * multiple) != (height, width) \
        else (2 * multiple, multiple)
    return synthetic_images(2, h2, w2, seed=1)


def _report_head(job: Job) -> dict:
    return {"source": job.source, "output": str(job.output), "size": [job.height, job.width],
            "dynamic": job.dynamic, "opset": job.opset, "norm_mode": job.norm_mode,
            "precision": job.precision, "io_dtype": "float16" if job.fp16_io else "float32",
            "parameters": count_parameters(job.generator),
            "macs": count_macs(job.reference, job.height, job.width),
            "check_images": job.image_source, "notes": job.notes}


# --------------------------------------------------------------------------- the precisions
def _export_fp32(job: Job, path: Path, report: dict, log: Callable[[str], None]) -> Checked:
    """Export the reference model (sub-pixel form if asked), then check it against PyTorch."""
    config = job.generator.config
    info = make_info(config, job.record, height=job.height, width=job.width, dynamic=job.dynamic,
                     norm_mode=job.norm_mode, source=job.source, opset=job.opset)
    log(f"exporting {job.source} (U-Net depth {config['depth']}, ngf {config['ngf']}, "
        f"norm {job.norm_mode}) at {job.width}x{job.height}, opset {job.opset} ...")
    try:
        export_model(job.reference, path, height=job.height, width=job.width,
                     dynamic=job.dynamic, opset=job.opset, simplify=job.simplify, info=info)
    except (torch.onnx.errors.OnnxExporterError, torch.onnx.errors.UnsupportedOperatorError) as e:
        raise BadInput(f"ONNX export failed at opset {job.opset}: {str(e).splitlines()[0]}") from None
    if job.subpixel:
        from pix2pix_edge.export import int8 as int8_mod

        report["subpixel"] = int8_mod.rewrite_file(path, keep_output_layer=job.precision == "int8")
    report["ops"] = ops = op_counts(path)
    if job.torch_mode == "running" and ops.get("BatchNormalization"):
        _fail(path, job.output, f"{ops['BatchNormalization']} BatchNormalization nodes were not "
                                "folded into the convolutions")
    log(f"checking parity against PyTorch on {job.image_source} ...")
    with torch.no_grad():
        expected = _outputs(job, lambda x: job.reference(torch.from_numpy(x)).numpy())
    return _check_parity(job, "fp32", path, expected, report)


def _export_fp16(job: Job, fp32: Checked, path: Path, report: dict) -> Checked:
    from pix2pix_edge.export import fp16 as fp16_mod

    fp16_mod.convert_file(fp32.path, path, keep_io_types=not job.fp16_io)
    return _check_parity(job, "fp16", path, fp32.outputs, report)


def _export_int8(job: Job, fp32: Checked, path: Path, report: dict,
                 log: Callable[[str], None]) -> Checked:
    from pix2pix_edge.export import int8 as int8_mod

    calib_x, calib_text = job.calibration
    report["int8"] = int8_mod.export_int8(fp32.path, path, calib_x, calib_text, log=log)
    return _check_parity(job, "int8", path, fp32.outputs, report)


# --------------------------------------------------------------------------- the parity check
def _outputs(job: Job, infer: Callable[[np.ndarray], np.ndarray]) -> Outputs:
    """``infer`` on each check image (batch 1) and on the dynamic batch."""
    return Outputs([infer(x[None]) for x in job.images],
                   infer(job.extra) if job.extra is not None else None)


def _check_parity(job: Job, precision: str, path: Path, expected: Outputs,
                  report: dict) -> Checked:
    """The one parity check of every precision: run ``path`` through the runtime's ONNX Runtime
    backend on the check images (and the --dynamic batch), compare with ``expected`` (PyTorch
    for FP32, the FP32 ONNX for FP16 / INT8), record ``report["parity_<precision>"]``, and fail
    with the numbers (:func:`_fail`: exit 6, the file kept as OUTPUT.failed) outside the limit."""
    backend = parity.onnx_backend(path, job.threads)
    got = _outputs(job, backend.infer)
    result = parity.compare(expected.images, got.images)
    if got.extra is not None:
        dyn = parity.compare([expected.extra], [got.extra])
        result["dynamic_check"] = {"shape": list(job.extra.shape), **dyn}
        result["max_abs"] = max(result["max_abs"], dyn["max_abs"])
        result["psnr_db"] = min(result["psnr_db"], dyn["psnr_db"])
    limit = _limit(job, precision)
    if precision == "int8":
        result["min_psnr"] = limit
    report["backend"] = parity.BACKEND
    report[f"parity_{precision}"] = result
    failure = _failure(precision, result, limit)
    if failure:
        _fail(path, job.output, f"{failure} on {job.image_source}")
    return Checked(path, backend, got)


def _limit(job: Job, precision: str) -> float:
    """FP32: max |diff| vs PyTorch; FP16 / INT8: the lowest PSNR vs FP32, dB."""
    if precision == "fp32":
        return FP32_MAX_ABS
    if precision == "fp16":
        return FP16_MIN_PSNR
    from pix2pix_edge.export import int8 as int8_mod

    return int8_mod.DEFAULT_MIN_PSNR if job.min_psnr is None else float(job.min_psnr)


def _failure(precision: str, p: dict, limit: float) -> str | None:
    """None when ``p`` is within ``limit`` (a NaN never is), else the one-line reason."""
    if precision == "fp32":
        if p["max_abs"] <= limit:
            return None
        return (f"parity check failed: ONNX Runtime vs PyTorch max |diff| {p['max_abs']:.2e} > "
                f"{limit:.0e} (PSNR {p['psnr_db']:.1f} dB)")
    if p["psnr_db"] >= limit:
        return None
    bound = f"--min-psnr {limit:g}" if precision == "int8" else f"{limit:.0f}"
    return (f"{precision.upper()} check failed: PSNR {p['psnr_db']:.1f} dB vs the FP32 model < "
            f"{bound} dB (max |diff| {p['max_abs']:.3g})")


def _measure_latency(job: Job, fp32: Checked, final: Checked, report: dict) -> None:
    """ONNX Runtime CPU median latency of the model to be written, batch 1; an FP16 / INT8
    model is timed in turns with its FP32 model, so the report compares what it measured."""
    x1 = job.images[:1]
    fns = {"final": lambda: final.backend.infer(x1)}
    if final is not fp32:
        fns["fp32"] = lambda: fp32.backend.infer(x1)
    ms = parity.median_latencies_ms(fns, runs=5, warmup=1)
    report["ort_cpu_ms"] = ms["final"]
    if "fp32" in ms:
        report["ort_cpu_ms_fp32"] = ms["fp32"]
    report["threads"] = final.backend.threads


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
        f"wrote {report['output']} ({format_bytes(report['file_bytes'])}, {report['precision'].upper()}"
        f" weights, {report['io_dtype']} I/O, opset {report['opset']}, "
        f"{'dynamic batch/H/W' if report['dynamic'] else 'static'} {w}x{h}, norm {report['norm_mode']})",
        f"  parameters {report['parameters']:,}; {_si(report['macs'])} multiply-adds = "
        f"{_si(2 * report['macs'])}FLOP per {w}x{h} frame (transposed convs at input resolution)",
    ]
    p = report["parity_fp32"]
    lines.append(f"  parity FP32 vs PyTorch: max |diff| {p['max_abs']:.2e} (limit {FP32_MAX_ABS:.0e}), "
                 f"PSNR {p['psnr_db']:.1f} dB on {p['n']} {report['check_images']}"
                 + _dynamic_text(p))
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
    threads = report["threads"]
    lines.append(f"  ONNX Runtime CPU latency: {report['ort_cpu_ms']:.1f} ms median (batch 1, "
                 f"{threads} thread{'s' * (threads != 1)}) via {report['backend']}")
    if "ort_cpu_ms_fp32" in report:  # only what was measured, in the same call
        ms32 = report["ort_cpu_ms_fp32"]
        lines.append(f"  the FP32 model, timed in turns with it: {ms32:.1f} ms "
                     f"({report['precision'].upper()} / FP32 time {report['ort_cpu_ms'] / ms32:.2f})")
    for note in report["notes"]:
        lines.append(f"  note: {note}")
    return lines


def _dynamic_text(p: dict) -> str:
    """`` + batch 2 at WxH`` for a --dynamic export's second check (the shape is NCHW)."""
    if "dynamic_check" not in p:
        return ""
    n, _, h, w = p["dynamic_check"]["shape"]
    return f" + batch {n} at {w}x{h}"

