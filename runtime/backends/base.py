"""The backend contract and the checks every backend shares.

:class:`Backend` is what :func:`runtime.backends.open_backend` returns and what the pipeline,
``pix2pix bench`` and ``pix2pix info`` rely on; the ONNX Runtime and TensorRT backends both
implement all of it. The helpers below are pure functions (no ORT or TensorRT objects), so both
backends and the tests use the same ones.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import List, Optional, Protocol

import numpy as np

from pix2pix_edge.runtime.errors import BadInput, ModelMismatch
from pix2pix_edge.runtime.model_info import ModelInfo


class Backend(Protocol):
    """One opened model: ``infer(NCHW float32 batch) -> NCHW float32 batch``."""

    name: str                 # "onnxruntime" | "tensorrt"
    provider: str             # what runs it: "CPUExecutionProvider", "TensorRT 10.3.0", ...
    providers: List[str]      # every provider in use, best first ([provider] for TensorRT)
    path: Path                # the model file
    info: ModelInfo           # size, colour order, range, layout, io dtype (runtime.model_info)
    metadata_source: str      # where info came from: "file" / "record", "flags", "graph" / "engine"
    threads: Optional[int]    # CPU threads the backend computes with; None when on a GPU

    @property
    def precision(self) -> str:
        """Compute precision: ``info.precision``, or what the TensorRT builder was allowed."""

    @property
    def input_shape(self) -> List[Optional[int]]:
        """The model's NCHW input shape; None for a dynamic axis."""

    @property
    def output_shape(self) -> List[Optional[int]]:
        """The model's output shape; None for a dynamic axis."""

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """NCHW float32 batch of N -> NCHW float32 (dtype conversion inside)."""

    def close(self) -> None:
        """Release the session / GPU memory (safe to call twice). Safe while another thread
        still runs ``infer`` (a pipeline thread that outlived its join timeout): nothing that
        inference uses is freed under it."""


# --------------------------------------------------------------------------- text
def one_line(text, limit: int = 240) -> str:
    """A library's (multi-line) error text as one line of at most ``limit`` characters."""
    text = re.sub(r"\s+", " ", str(text)).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shape_str(shape) -> str:
    """``[1, 3, None, 256]`` -> ``"1x3x?x256"``."""
    return "x".join(str(d) if d is not None else "?" for d in shape)


# --------------------------------------------------------------------------- model info
# ONNX Runtime's type strings; TensorRT passes numpy dtype names, which map to themselves.
IO_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16"}


def io_dtype_name(type_name: str) -> str:
    """``"tensor(float)"`` -> ``"float32"``; other names unchanged."""
    return IO_DTYPES.get(type_name, type_name)


def largest_pow2_dividing(*sides: int, cap: int = 256) -> int:
    """The largest power of two (at most ``cap``) that divides every side."""
    m = 1
    while m < cap and all(s % (m * 2) == 0 for s in sides):
        m *= 2
    return m


def dim(d):
    """A graph dimension as an int, or None when symbolic / unknown."""
    return d if isinstance(d, int) and d > 0 else None


def single_io(name: str, inputs: list, outputs: list, what: str = "graph"):
    """``(input, output)``: a generator has one of each (ModelMismatch otherwise)."""
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelMismatch(f"{name}: expected one input and one output, the {what} has "
                            f"{len(inputs)} and {len(outputs)}")
    return inputs[0], outputs[0]


def resolve_info(name: str, meta: ModelInfo | None, user: ModelInfo | None,
                 in_name: str, in_shape, in_type: str, out_name: str, out_shape) -> ModelInfo:
    """Decide the :class:`ModelInfo` to run a graph with, and check it against the graph.

    The file's own metadata wins; then the user's flags; then what the graph's static input
    shape says. The graph is the truth about tensor names, I/O dtype and which axes are fixed."""
    if len(in_shape) != 4:
        raise ModelMismatch(f"{name}: expected one NCHW image input, the graph's input "
                            f"{in_name!r} has shape {shape_str(in_shape)}")
    _, c, h, w = (dim(d) for d in in_shape)
    io_dtype = io_dtype_name(in_type)
    if io_dtype not in ("float32", "float16"):
        raise ModelMismatch(f"{name}: input {in_name!r} is {in_type}; expected float32 or float16")
    if meta is not None:
        if (meta.input_name, meta.output_name) != (in_name, out_name):
            raise ModelMismatch(
                f"{name}: metadata names tensors {meta.input_name!r} -> {meta.output_name!r} "
                f"but the graph has {in_name!r} -> {out_name!r}")
        info, origin = meta, "metadata"
    elif user is not None:
        info = dataclasses.replace(user, input_name=in_name, output_name=out_name)
        origin = "flags"
    else:
        if h is None or w is None:
            raise BadInput(f"{name} has no pix2pix-edge metadata and a dynamic input size: "
                           f"pass the model's size, e.g. --size 256")
        oc = dim(out_shape[1]) if len(out_shape) == 4 else None
        info = ModelInfo(input_name=in_name, output_name=out_name, height=h, width=w,
                         multiple=largest_pow2_dividing(h, w), in_channels=c or 3,
                         out_channels=oc or 3, extra={"metadata": "none (read from the graph)"})
        origin = "graph"
    fixed = h is not None and w is not None
    if fixed and (info.height, info.width) != (h, w):
        msg = (f"{name}: the model's input is fixed at {shape_str(in_shape)} but "
               f"{'its metadata says' if origin == 'metadata' else 'the size given is'} "
               f"{info.width}x{info.height} (WxH)")
        raise (ModelMismatch(msg) if origin == "metadata" else BadInput(msg))
    if c is not None and info.in_channels != c:
        raise ModelMismatch(f"{name}: the graph takes {c} input channels, "
                            f"the {origin} says {info.in_channels}")
    return dataclasses.replace(info, dynamic=not fixed, io_dtype=io_dtype)


def check_batch(batch, info: ModelInfo, in_shape) -> None:
    """Raise a one-line :class:`BadInput` unless ``batch`` fits the model's input."""
    n0, c, h, w = (dim(d) for d in in_shape)
    if h is not None and w is not None:
        expected = f"{n0 or 'N'}x{c or info.in_channels}x{h}x{w}"
    else:
        expected = (f"{n0 or 'N'}x{c or info.in_channels}xHxW with H and W multiples of "
                    f"{info.multiple}")
    if not isinstance(batch, np.ndarray):
        raise BadInput(f"model expects a numpy array {expected}, got {type(batch).__name__}")
    got = "x".join(map(str, batch.shape))
    ok = batch.ndim == 4 and batch.shape[0] >= 1 and batch.shape[1] == (c or info.in_channels)
    if ok:
        n, _, bh, bw = batch.shape
        ok = (n0 is None or n == n0) and bh > 0 and bw > 0
        if h is not None and w is not None:
            ok = ok and (bh, bw) == (h, w)
        else:
            ok = ok and bh % info.multiple == 0 and bw % info.multiple == 0
    if not ok:
        raise BadInput(f"model expects {expected}, got {got}")
