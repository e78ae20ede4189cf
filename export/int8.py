"""INT8 export: static quantization of a pix2pix-edge FP32 ONNX file to a Q/DQ graph.

Library: ONNX Runtime's quantization tools (``onnxruntime.quantization.quantize_static``,
``QuantFormat.QDQ``): they come with the ``onnxruntime`` package the export already uses, and
their Q/DQ output is standard ONNX that ONNX Runtime (CPU, CUDA, TensorRT providers) and
TensorRT's parser read. NVIDIA Model Optimizer's ONNX quantizer (``nvidia-modelopt`` 0.47) was
measured against it on the trained facades ngf-16 model (128x128, ORT CPU, 2 cores): its
TensorRT-style graph (symmetric INT8 on Conv/ConvTranspose inputs only) was 48.3 dB from FP32
but ran 2.1x *slower* than FP32 in ONNX Runtime (1.5x slower with the sub-pixel rewrite), where
ours ran 1.8x faster at 43.7 dB (47.2 dB with the 7-bit weights below). Its ``[onnx]`` extra
also pins onnx ~=1.21 and onnxruntime-gpu ~=1.24 (this project has 1.23 / 1.31), needs torch
>= 2.8, cupy-cuda12x, polygraphy, onnx-graphsurgeon, onnxscript, and looks for NVML on a CPU.

What is quantized and how (measured on this CPU, benchmarks/int8.py):

* Weights INT8, symmetric, per output channel, in a 7-bit range (:data:`REDUCE_RANGE`);
  activations UINT8, asymmetric, per tensor, from min/max ranges calibrated on real input
  images. U8 activations with S8 weights is the pair
  ONNX Runtime's CPU provider fuses into QLinearConv (with S8 symmetric activations it left
  almost every Conv in float with DequantizeLinear in front: slower than FP32).
* Quantized op types: :data:`QUANT_OPS` (convolutions, activations, skip concatenations and the
  sub-pixel DepthToSpace). Kept in float: the output layer (the last transposed convolution and
  Tanh: the image itself, where 8 bits would show as banding), normalisations
  (InstanceNormalization of the per-image mode has no INT8 kernel) and, unless the sub-pixel
  rewrite runs, every ConvTranspose (no INT8 ConvTranspose kernel in ONNX Runtime's CPU
  provider, onnxruntime #8988).
* The sub-pixel rewrite (export/subpixel.py) turns the other stride-2 ConvTransposes into four
  2x2 convolutions + DepthToSpace first, so the up-sampling half quantizes too.

TensorRT wants symmetric INT8 (zero point 0) everywhere: :func:`to_symmetric` rewrites the
UINT8 activation Q/DQ pairs into INT8 ones covering the same range, for ``pix2pix export trt``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

import numpy as np

from pix2pix_edge.runtime import contract
from pix2pix_edge.runtime.errors import BadInput, BadUsage
from pix2pix_edge.runtime.model_info import METADATA_KEY

QUANT_OPS = ("Conv", "Relu", "LeakyRelu", "Concat", "DepthToSpace")
# 7-bit weights (ONNX Runtime's reduce_range): x86 CPUs without VNNI (AVX2 only, like the
# machines here) multiply U8 x S8 pairs with VPMADDUBSW, whose 16-bit sums saturate with 8-bit
# weights. Measured on the trained facades model: +3.5 dB INT8-vs-FP32 PSNR, same speed.
REDUCE_RANGE = True
DEFAULT_CALIB_IMAGES = 32
DEFAULT_MIN_PSNR = 30.0
CALIB_METHODS = ("minmax", "percentile", "entropy")


# --------------------------------------------------------------------------- options
def check_options(*, int8: bool, fp16: bool, calib, calib_images) -> None:
    """One-line errors for flag combinations that cannot work (before anything is loaded)."""
    if not int8:
        raise BadUsage("--calib / --calib-images need --int8")
    if fp16:
        raise BadUsage("--int8 and --fp16 are two different exports: choose one")
    if calib is None:
        raise BadUsage("--int8 needs --calib DATA: a folder of real input images (or the "
                       "training dataset) to calibrate the activation ranges on")
    if not Path(calib).is_dir():
        raise BadInput(f"--calib {calib}: not a directory")
    if calib_images is not None and calib_images < 1:
        raise BadUsage(f"--calib-images {calib_images}: must be at least 1")


# --------------------------------------------------------------------------- calibration data
def calibration_pairs(data: str | Path, source: str | Path | None = None,
                      exclude_names: set[str] = frozenset()) -> tuple[list, str]:
    """The training pairs of ``data`` usable for calibration, and a note on what was left out.

    Pairs the run that made ``source`` held out (``--holdout-last`` or ``--holdout-every``, as
    recorded in RUN/config.json; runtime/contract.py :func:`held_out`) are never used: they are
    what the model is evaluated on. ``exclude_names`` (file names of the parity check images)
    are dropped too, so the check does not see calibration images."""
    root = Path(data)
    if not root.is_dir():
        raise BadInput(f"--calib {data}: not a directory")
    pairs = contract.list_pairs(root, "train")
    notes = []
    held = contract.held_out(source) if source is not None else contract.HeldOut(recorded=False)
    if held.any:
        keys = held.held_keys(root)
        before = len(pairs)
        pairs = [p for p in pairs if p.key() not in keys]
        if before - len(pairs):
            notes.append(f"the run's {before - len(pairs)} held-out pairs excluded")
    before = len(pairs)
    pairs = [p for p in pairs if p.a_path.name not in exclude_names]
    if before - len(pairs):
        notes.append(f"{before - len(pairs)} parity check images excluded")
    return pairs, "; ".join(notes)


def load_calibration(data: str | Path, height: int, width: int, *, direction: str = "AtoB",
                     n: int = DEFAULT_CALIB_IMAGES, source: str | Path | None = None,
                     exclude_names: set[str] = frozenset()) -> tuple[np.ndarray, str]:
    """``n`` calibration inputs (float32 NCHW RGB in [-1, 1], ``height x width``), spread evenly
    over the usable pairs, and a description for the report. Read as every model input is
    (runtime/contract.py: an A|B file of the run's own dataset gives its input half; in another
    folder a lone image about twice as wide as tall is taken for an A|B pair). A file among them
    that cannot be decoded is an error naming it (not skipped: a silently smaller calibration
    set changes the ranges)."""
    if n < 1:
        raise BadInput(f"--calib-images {n}: must be at least 1")
    pairs, note = calibration_pairs(data, source, exclude_names)
    if not pairs:
        raise BadInput(f"--calib {data}: no usable images (expected images, aligned A|B pairs or "
                       f"A/ and B/ folders{'; ' + note if note else ''})")
    own_data = source is not None and contract.held_out(source).same_dataset(data)
    aligned = True if own_data else None     # None: guess from the aspect ratio
    picks = np.unique(np.linspace(0, len(pairs) - 1, min(n, len(pairs))).round().astype(int))
    try:
        x = contract.load_inputs([pairs[i] for i in picks], width, height, direction, aligned)
    except BadInput as e:
        raise BadInput(f"calibration image unreadable: {e} (remove it or point --calib "
                       f"elsewhere)") from None
    text = f"{len(x)} of {len(pairs)} images from {Path(data)}"
    return x, text + (f" ({note})" if note else "")


# --------------------------------------------------------------------------- graph facts
def output_layers(model) -> list[str]:
    """Names of the output layer's nodes: the Tanh and the convolution feeding it (through the
    sub-pixel DepthToSpace / Concat, if rewritten). These stay in float."""
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    tanh = [n for n in g.node if n.op_type == "Tanh"]
    names = []
    for t in tanh:
        names.append(t.name)
        stack = [producer[t.input[0]]] if t.input[0] in producer else []
        while stack:
            node = stack.pop()
            names.append(node.name)
            if node.op_type in ("DepthToSpace", "Concat") and node.name.endswith(("/d2s", "/concat")):
                stack += [producer[i] for i in node.input if i in producer]
    return names


def float_layers(model) -> list[str]:
    """``"OpType name"`` of the compute nodes of a Q/DQ ``model`` that run in float: some input
    (activation or weight) is not a dequantized INT8 tensor. Q/DQ nodes are left out."""
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    inits = {i.name for i in g.initializer if i.data_type in (1, 10, 11, 16)}  # float types
    out = []
    for node in g.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear", "Constant"):
            continue
        inputs = [i for i in node.input if i and (i in producer or i in inits)]
        if not inputs:
            continue
        if not all(i in producer and producer[i].op_type == "DequantizeLinear" for i in inputs):
            out.append(f"{node.op_type} {node.name}")
    return out


def is_int8(model) -> bool:
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def asymmetric_quantizers(model) -> list[str]:
    """Q/DQ nodes whose zero point is not an INT8 zero (UINT8 or nonzero): TensorRT refuses
    those (it supports symmetric signed INT8 only)."""
    from onnx import TensorProto, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    bad = []
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(node.input) < 3:
            continue
        zp = inits.get(node.input[2])
        if zp is None:
            continue
        if zp.data_type != TensorProto.INT8 or np.any(numpy_helper.to_array(zp) != 0):
            bad.append(node.name or node.output[0])
    return bad


# --------------------------------------------------------------------------- quantization
def quantize(fp32_path: str | Path, out_path: str | Path, calibration: np.ndarray, *,
             subpixel: bool = True, method: str = "minmax",
             log: Callable[[str], None] = print) -> dict:
    """Quantize an FP32 pix2pix-edge ONNX file (static, Q/DQ) into ``out_path``.

    ``calibration`` is an NCHW float32 batch fed one image at a time. Returns facts for the
    report and the metadata: rewritten layers, layers kept in float, settings."""
    import onnx
    import onnxruntime
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)

    from pix2pix_edge.export import subpixel as sp

    if method not in CALIB_METHODS:
        raise BadInput(f"calibration method {method!r} not in {CALIB_METHODS}")
    model = onnx.load(str(fp32_path))
    keep = set(output_layers(model))
    if subpixel:
        model, _ = sp.rewrite(model, skip=keep)
    keep = set(output_layers(model))
    input_name = model.graph.input[0].name
    work = Path(out_path).with_name(Path(out_path).name + ".pre.onnx")
    onnx.save(model, str(work))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(calibration)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {input_name: np.ascontiguousarray(x[None], np.float32)}

    calib = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
             "entropy": CalibrationMethod.Entropy}[method]
    log(f"calibrating activation ranges ({method}) on {len(calibration)} images ...")
    logging.disable(logging.WARNING)  # its advice to pre-process: onnxslim already did
    try:
        quantize_static(
            str(work), str(out_path), Reader(), quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANT_OPS), per_channel=True, reduce_range=REDUCE_RANGE,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=sorted(keep), calibrate_method=calib,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False,
                           # keep Relu nodes: the UINT8 clamp at 0 replaces them otherwise,
                           # and to_symmetric (TensorRT) would lose them
                           "QDQKeepRemovableActivations": True})
    finally:
        logging.disable(logging.NOTSET)
        work.unlink(missing_ok=True)
        for leftover in Path(out_path).parent.glob("augmented_model*.onnx"):
            leftover.unlink(missing_ok=True)
    q = onnx.load(str(out_path))
    kept = float_layers(q)
    facts = {"quantizer": f"onnxruntime.quantization {onnxruntime.__version__} (QDQ)",
             "weights": "int8 symmetric per-channel" + (" (7-bit range)" if REDUCE_RANGE else ""),
             "activations": "uint8 asymmetric per-tensor",
             "calibration_method": method, "calibration_images": int(len(calibration)),
             "subpixel_layers": sum(1 for n in q.graph.node if n.op_type == "DepthToSpace"
                                    and n.name.endswith("/d2s")), "float_layers": kept,
             "quantized_layers": sum(1 for n in q.graph.node if n.op_type in QUANT_OPS)
             - sum(1 for k in kept if k.split(" ", 1)[0] in QUANT_OPS)}
    return facts


def rewrite_file(path: str | Path, keep_output_layer: bool = False) -> int:
    """Sub-pixel rewrite of an ONNX file in place (metadata kept); the number of rewritten
    ConvTransposes. ``keep_output_layer``: leave the output layer's ConvTranspose as it is
    (it stays in float in an INT8 model, where the native kernel is the faster one)."""
    import onnx

    from pix2pix_edge.export import subpixel as sp

    model = onnx.load(str(path))
    skip = set(output_layers(model)) if keep_output_layer else set()
    model, names = sp.rewrite(model, skip=skip)
    onnx.save(model, str(path))
    return len(names)


def export_int8(fp32_path: str | Path, out_path: str | Path, calibration: np.ndarray,
                calibration_text: str, *, method: str = "minmax",
                log: Callable[[str], None] = print) -> dict:
    """Quantize ``fp32_path`` (already in sub-pixel form if wanted) into ``out_path`` with the
    calibration batch from :func:`load_calibration`, and write the INT8 metadata. Returns the
    facts for the report."""
    facts = quantize(fp32_path, out_path, calibration, subpixel=False, method=method, log=log)
    facts["calibration"] = calibration_text
    set_metadata(out_path, facts, calibration_text)
    return facts


def set_metadata(path: str | Path, facts: dict, calibration_text: str) -> None:
    """Write precision int8 and the INT8 facts into the file's pix2pix-edge metadata."""
    import onnx

    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            d = json.loads(prop.value)
            d["precision"] = "int8"
            d["float_layers"] = list(facts["float_layers"])
            d["int8"] = {k: v for k, v in facts.items() if k != "float_layers"}
            d["int8"]["calibration"] = calibration_text
            prop.value = json.dumps(d, sort_keys=True)
    keep = [p for p in model.metadata_props if p.key != "onnx.infer"]  # the quantizer's marker
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    model.producer_name, model.producer_version = "pix2pix-edge", ""
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


# --------------------------------------------------------------------------- TensorRT form
def to_symmetric(model):
    """A copy of a Q/DQ ``model`` with every UINT8 activation quantizer made symmetric INT8:
    scale ``max(|rmin|, |rmax|) / 127`` with ``[rmin, rmax] = [(0 - zp) s, (255 - zp) s]``, zero
    point 0, so each tensor keeps the range it was calibrated to (what TensorRT needs)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    inits = {i.name: i for i in out.graph.initializer}
    done: dict[tuple[str, str], tuple[str, str]] = {}
    new = []
    for node in out.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(node.input) < 3:
            continue
        s_name, zp_name = node.input[1], node.input[2]
        zp_t = inits.get(zp_name)
        if zp_t is None or zp_t.data_type != TensorProto.UINT8:
            continue
        key = (s_name, zp_name)
        if key not in done:
            s = numpy_helper.to_array(inits[s_name]).astype(np.float64)
            zp = numpy_helper.to_array(zp_t).astype(np.float64)
            r = np.maximum(np.abs((0 - zp) * s), np.abs((255 - zp) * s))
            scale = np.maximum(r / 127.0, np.finfo(np.float32).tiny).astype(np.float32)
            names = (f"{s_name}__sym", f"{zp_name}__sym")
            new.append(numpy_helper.from_array(scale.reshape(s.shape), names[0]))
            new.append(numpy_helper.from_array(np.zeros(zp.shape, np.int8), names[1]))
            done[key] = names
        node.input[1], node.input[2] = done[key]
    out.graph.initializer.extend(new)
    # INT32 biases were quantized with (old activation scale x weight scale): give them back
    # as float constants (what TensorRT expects of a bias anyway).
    inits = {i.name: i for i in out.graph.initializer}
    nodes = []
    for node in out.graph.node:
        q = inits.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if q is not None and q.data_type == TensorProto.INT32:
            s = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
            b = numpy_helper.to_array(q).astype(np.float64) * s
            out.graph.initializer.append(numpy_helper.from_array(b.astype(np.float32),
                                                                 node.output[0]))
            continue
        nodes.append(node)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    used = {i for n in out.graph.node for i in n.input}
    kept = [i for i in out.graph.initializer if i.name in used]
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept)
    return out


def symmetric_file(src: str | Path, dst: str | Path) -> Path:
    """:func:`to_symmetric` from file to file (metadata kept)."""
    import onnx

    model = to_symmetric(onnx.load(str(src)))
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return Path(dst)
