"""FP16 ONNX with FP32 islands: what strongly typed TensorRT builds (>= 10) consume.

A small, explicit pass over the graph instead of a generic converter (onnxconverter-common is
not a dependency; ONNX Runtime's copy of it lives in an internal ``transformers`` tool module):
our generator graphs hold a handful of op types, and a strongly typed TensorRT network takes
every type literally, so we want to know exactly where each Cast goes.

* Float initializers become FP16 (clipped to the FP16 range), except those feeding an FP32 op.
* FP32 ops (normalisations and reductions, :data:`FP32_OPS`) get a Cast to FP32 on each float
  activation input and a Cast back to FP16 on each output. InstanceNormalization in FP16 has
  known accuracy bugs in TensorRT and ONNX Runtime (REFERENCE.md): it stays FP32, with its scale
  and bias.
* Graph I/O stays FP32 by default (a Cast after the input, one before the output), so callers
  feed the same arrays as for the FP32 model; ``keep_io_types=False`` makes the I/O FP16 too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pix2pix_edge.runtime.model_info import METADATA_KEY

FP32_OPS = frozenset({
    "InstanceNormalization", "BatchNormalization", "LayerNormalization", "GroupNormalization",
    "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSumExp",
    "ReduceProd", "Softmax", "LogSoftmax",
})
FP16_MAX = float(np.finfo(np.float16).max)


def _float_values(model: onnx.ModelProto) -> set[str]:
    """Names of all FP32 tensors in ``model`` (inputs, outputs, initializers, intermediates)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    names = {i.name for i in g.initializer if i.data_type == TensorProto.FLOAT}
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            names.add(vi.name)
    return names


def _to_fp16(init: TensorProto, name: str | None = None) -> TensorProto:
    array = numpy_helper.to_array(init).astype(np.float32)
    array = np.clip(array, -FP16_MAX, FP16_MAX).astype(np.float16)
    return numpy_helper.from_array(array, name or init.name)


def convert_model(model: onnx.ModelProto, keep_io_types: bool = True) -> onnx.ModelProto:
    """An FP16 copy of an FP32 ``model`` (see the module docstring for what stays FP32)."""
    src = onnx.ModelProto()
    src.CopyFrom(model)
    floats = _float_values(src)
    g = src.graph
    inits = {i.name: i for i in g.initializer}

    fp32_use, fp16_use = set(), set()
    for node in g.node:
        for name in node.input:
            if name in inits:
                (fp32_use if node.op_type in FP32_OPS else fp16_use).add(name)

    new_inits = []
    fp32_alias: dict[str, str] = {}  # initializer needed in both types: FP32 copy for FP32 ops
    for init in g.initializer:
        if init.data_type != TensorProto.FLOAT or init.name not in fp16_use:
            new_inits.append(init)
            continue
        new_inits.append(_to_fp16(init))
        if init.name in fp32_use:
            copy = TensorProto()
            copy.CopyFrom(init)
            copy.name = fp32_alias[init.name] = init.name + "__fp32"
            new_inits.append(copy)

    def cast(src_name: str, dst_name: str, to: int) -> onnx.NodeProto:
        return helper.make_node("Cast", [src_name], [dst_name], to=to,
                                name=f"{dst_name}__cast")

    renamed: dict[str, str] = {}  # graph-input name -> its FP16 copy
    nodes: list[onnx.NodeProto] = []
    for inp in g.input:
        if inp.name in inits or inp.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        if keep_io_types:
            renamed[inp.name] = inp.name + "__fp16"
            nodes.append(cast(inp.name, renamed[inp.name], TensorProto.FLOAT16))
        else:
            inp.type.tensor_type.elem_type = TensorProto.FLOAT16

    out_names = {o.name for o in g.output if o.type.tensor_type.elem_type == TensorProto.FLOAT}
    out_renamed = {name: name + "__fp16" for name in out_names} if keep_io_types else {}
    renamed.update(out_renamed)
    original_of = {r: o for o, r in renamed.items()}

    for node in g.node:
        node.input[:] = [renamed.get(n, n) for n in node.input]
        node.output[:] = [renamed.get(n, n) for n in node.output]
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    attr.t.CopyFrom(_to_fp16(attr.t, attr.t.name))
        elif node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to" and attr.i == TensorProto.FLOAT:
                    attr.i = TensorProto.FLOAT16
        if node.op_type not in FP32_OPS:
            nodes.append(node)
            continue
        # An FP32 island: cast float activations in, FP32 initializers as they are, cast out.
        for k, name in enumerate(node.input):
            if not name or original_of.get(name, name) not in floats:
                continue
            if name in inits:
                node.input[k] = fp32_alias.get(name, name)
                continue
            cast_name = f"{name}__to_fp32_{node.name or node.output[0]}_{k}"
            nodes.append(cast(name, cast_name, TensorProto.FLOAT))
            node.input[k] = cast_name
        after = []
        for k, name in enumerate(node.output):
            if not name or original_of.get(name, name) not in floats:
                continue
            node.output[k] = name + "__fp32"
            after.append(cast(node.output[k], name, TensorProto.FLOAT16))
        nodes.append(node)
        nodes.extend(after)

    for out in g.output:
        if out.name in out_renamed:
            nodes.append(cast(out_renamed[out.name], out.name, TensorProto.FLOAT))
        elif out.name in out_names:
            out.type.tensor_type.elem_type = TensorProto.FLOAT16

    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    del g.value_info[:]  # stale FP32 types; recomputed below and checked
    out = onnx.shape_inference.infer_shapes(src, check_type=True, strict_mode=True)
    onnx.checker.check_model(out)
    return out


def update_metadata(model: onnx.ModelProto, keep_io_types: bool) -> None:
    """Mark the pix2pix-edge metadata (if present) as FP16 compute, FP32 or FP16 I/O."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            d = json.loads(prop.value)
            d["precision"] = "fp16"
            d["io_dtype"] = "float32" if keep_io_types else "float16"
            prop.value = json.dumps(d, sort_keys=True)


def convert_file(src: str | Path, dst: str | Path, keep_io_types: bool = True) -> Path:
    """Read an FP32 ONNX file, write its FP16 version (metadata updated) to ``dst``."""
    model = convert_model(onnx.load(str(src)), keep_io_types=keep_io_types)
    update_metadata(model, keep_io_types)
    onnx.save(model, str(dst))
    return Path(dst)


def is_fp16(model: onnx.ModelProto) -> bool:
    """True when the graph carries FP16 weights (an output of :func:`convert_model`)."""
    return any(i.data_type == TensorProto.FLOAT16 for i in model.graph.initializer)
