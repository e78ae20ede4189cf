"""The sub-pixel form of a stride-2 transposed convolution, as an ONNX graph rewrite.

A ``ConvTranspose`` with a 4x4 kernel, stride 2 and padding 1 (every up-sampling layer of the
pix2pix U-Net) computes each output pixel of phase ``(py, px)`` (row parity, column parity)
from a 2x2 neighbourhood of the input. So it equals four ordinary 2x2 convolutions over the
same input, one per phase, whose outputs are interleaved by ``DepthToSpace`` (blocksize 2,
DCR order):

* along one axis, ``y[2m] = w[3]·x[m-1] + w[1]·x[m]`` and ``y[2m+1] = w[2]·x[m] + w[0]·x[m+1]``
  (``o = 2i - 1 + k``), so phase 0 is a 2-tap correlation with taps ``w[3], w[1]`` over the input
  padded by one *before*, phase 1 one with taps ``w[2], w[0]`` padded by one *after*;
* in 2-D the phase ``(py, px)`` convolution has weight
  ``W'[co, ci, a, b] = W[ci, co, TAPS[py][a], TAPS[px][b]]`` and pads
  ``[top, left, bottom, right] = [1-py, 1-px, py, px]``; each gets the transposed conv's bias.

Same multiply-adds as the transposed convolution (counted at its input resolution), but four
plain convolutions: ONNX Runtime's CPU provider has an INT8 kernel for those (QLinearConv) and
none for ConvTranspose (onnxruntime #8988), so this is what makes the up-sampling half of
unet_256 quantizable there. Exact in real arithmetic; in FP32 the sums are taken in another
order (differences ~1e-6). :func:`rewrite` leaves every other node untouched.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

TAPS = ((3, 1), (2, 0))   # kernel taps used by output phase 0 / 1 along one axis


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def is_subpixel_candidate(node: onnx.NodeProto, weights: dict[str, np.ndarray]) -> bool:
    """A ConvTranspose this rewrite handles: 4x4 kernel (constant weights), stride 2,
    padding 1 on every side, no dilation, output padding or groups, no explicit output_shape."""
    if node.op_type != "ConvTranspose" or len(node.input) < 2 or node.input[1] not in weights:
        return False
    w = weights[node.input[1]]
    a = _attrs(node)
    return (w.ndim == 4 and w.shape[2:] == (4, 4)
            and list(a.get("strides", [1, 1])) == [2, 2]
            and list(a.get("pads", [0, 0, 0, 0])) == [1, 1, 1, 1]
            and list(a.get("dilations", [1, 1])) == [1, 1]
            and list(a.get("output_padding", [0, 0])) == [0, 0]
            and int(a.get("group", 1)) == 1
            and "output_shape" not in a
            and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET"))


def phase_weights(w: np.ndarray) -> list[np.ndarray]:
    """The four 2x2 Conv weights ``(cout, cin, 2, 2)`` of a ConvTranspose weight
    ``(cin, cout, 4, 4)``, in DepthToSpace DCR order: phases (0,0), (0,1), (1,0), (1,1)."""
    out = []
    for py in (0, 1):
        for px in (0, 1):
            k = w[:, :, list(TAPS[py]), :][:, :, :, list(TAPS[px])]   # (cin, cout, 2, 2)
            out.append(np.ascontiguousarray(k.transpose(1, 0, 2, 3)))
    return out


def rewrite(model: onnx.ModelProto, skip=()) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of ``model`` with every candidate ConvTranspose (except those named in ``skip``)
    in sub-pixel form.

    Returns ``(model, names)``: ``names`` are the rewritten ConvTranspose nodes; each becomes
    ``<name>/phaseYX`` Conv nodes, a ``<name>/concat`` Concat and a ``<name>/d2s`` DepthToSpace
    whose output keeps the original output name (so nothing downstream changes)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    inits = {i.name: i for i in g.initializer}
    weights = {name: numpy_helper.to_array(t) for name, t in inits.items()
               if name in {n.input[1] for n in g.node if n.op_type == "ConvTranspose"}}
    uses: dict[str, int] = {}
    for node in g.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1

    nodes, rewritten, drop = [], [], set()
    for k, node in enumerate(g.node):
        if node.name in skip or not is_subpixel_candidate(node, weights):
            nodes.append(node)
            continue
        base = node.name or f"ConvTranspose_{k}"
        w = weights[node.input[1]]
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else ""
        phases = []
        for i, pw in enumerate(phase_weights(w)):
            py, px = divmod(i, 2)
            wname = f"{base}/phase{py}{px}.weight"
            g.initializer.append(numpy_helper.from_array(pw.astype(w.dtype), wname))
            phases.append(f"{base}/phase{py}{px}")
            nodes.append(helper.make_node(
                "Conv", [node.input[0], wname] + ([bias] if bias else []), [phases[-1]],
                name=phases[-1], kernel_shape=[2, 2], strides=[1, 1], dilations=[1, 1],
                group=1, pads=[1 - py, 1 - px, py, px]))
        nodes.append(helper.make_node("Concat", phases, [f"{base}/concat"], axis=1,
                                      name=f"{base}/concat"))
        nodes.append(helper.make_node("DepthToSpace", [f"{base}/concat"], [node.output[0]],
                                      blocksize=2, mode="DCR", name=f"{base}/d2s"))
        rewritten.append(base)
        if uses.get(node.input[1]) == 1:
            drop.add(node.input[1])
    del g.node[:]
    g.node.extend(nodes)
    kept = [i for i in g.initializer if i.name not in drop]
    del g.initializer[:]
    g.initializer.extend(kept)
    del g.value_info[:]   # recomputed by shape inference below
    out = onnx.shape_inference.infer_shapes(out, strict_mode=True)
    onnx.checker.check_model(out)
    return out, rewritten
