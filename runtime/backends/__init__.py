"""Inference backends: one small interface, ``infer(batch) -> batch``.

The contract (:class:`runtime.backends.base.Backend`, a ``typing.Protocol``) is what both
backends implement and every caller relies on:

    name, provider, providers   "onnxruntime" | "tensorrt"; what actually runs it
                                ("CPUExecutionProvider", "TensorRT 10.3.0", ...)
    path, info, metadata_source the file; input size, colour order, range, layout
                                (runtime.model_info); where that came from
    precision, threads          compute precision; CPU threads (None on a GPU)
    input_shape, output_shape   NCHW, None for a dynamic axis
    infer(batch)                NCHW float32 batch of N -> NCHW float32 (dtype conversion inside)
    close()

:func:`open_backend` picks one from the file name. The heavy libraries (onnxruntime, tensorrt,
cuda-python) are imported only when a backend is opened.

Modules: ``base`` (the contract and the shared checks), ``onnxruntime``, ``tensorrt``,
``nvidia`` (tensorrt / cuda-python imports, CUDA calls, GPU properties, version parsing).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pix2pix_edge.runtime.backends.base import Backend
from pix2pix_edge.runtime.errors import BadInput, BadUsage, ModelMismatch
from pix2pix_edge.runtime.model_info import ModelInfo

BACKENDS = ("auto", "onnxruntime", "tensorrt")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
ONNX_SUFFIXES = (".onnx",)
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt")   # generators and checkpoints: exported first


def backend_for(model_path, backend: str = "auto") -> str:
    """``onnxruntime`` or ``tensorrt`` for this file and the user's ``--backend`` choice."""
    if backend not in BACKENDS:
        raise BadInput(f"unknown backend {backend!r} (choose from: {', '.join(BACKENDS)})")
    suffix = Path(model_path).suffix.lower()
    if suffix in TORCH_SUFFIXES:
        raise ModelMismatch(f"{Path(model_path).name} is a PyTorch file, which the runtime "
                            f"does not run: export it first: pix2pix export onnx {model_path} "
                            f"-o model.onnx")
    if backend == "auto":
        if suffix in ENGINE_SUFFIXES:
            return "tensorrt"
        if suffix in ONNX_SUFFIXES:
            return "onnxruntime"
        raise BadInput(f"cannot tell the backend from the file name {Path(model_path).name!r} "
                       f"(expected .onnx or .engine/.plan); pass --backend")
    if backend == "tensorrt" and suffix in ONNX_SUFFIXES:
        raise BadInput(f"{Path(model_path).name} is an ONNX file: build an engine first with "
                       f"`pix2pix export trt {model_path} -o model.engine`, or run it with "
                       f"--backend onnxruntime (its TensorRT provider is used when it can load)")
    return backend


def open_backend(model_path, backend: str = "auto", *, info: ModelInfo | None = None,
                 device: int = 0, threads: int | None = None, cache_dir=None,
                 fp16: bool | None = None, providers=None, color_order: str | None = None,
                 value_range: tuple[float, float] | None = None) -> Backend:
    """Open a model for inference.

    ``info`` comes from the user's flags and is used only for files that carry no metadata of
    their own; so are ``color_order`` ("RGB" / "BGR") and ``value_range`` ((-1, 1) / (0, 1)),
    which a model with metadata refuses when they contradict it (:func:`with_format`).
    ``providers`` (ONNX Runtime only) restricts the execution providers, e.g. ``["cpu"]``; by
    default every provider that can load here is used, best first. ``fp16`` (ONNX Runtime's
    TensorRT provider only): None decides by the model's normalisation
    (runtime.backends.onnxruntime.trt_fp16_default)."""
    path = Path(model_path)
    if not path.is_file():
        raise BadInput(f"model file not found: {path}")
    kind = backend_for(path, backend)
    if kind == "tensorrt":
        from pix2pix_edge.runtime.backends.tensorrt import TensorRTBackend
        be = TensorRTBackend(path, info=info, device=device)
    else:
        from pix2pix_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend
        be = OnnxRuntimeBackend(path, providers=providers, info=info, threads=threads,
                                cache_dir=cache_dir, fp16=fp16, device=device)
    try:
        return with_format(be, color_order, value_range)
    except BadUsage:
        be.close()
        raise


def with_format(be: Backend, color_order: str | None = None,
                value_range: tuple[float, float] | None = None) -> Backend:
    """The user's colour order / value range (``--color-order`` / ``--range``) for a model
    without pix2pix-edge metadata. A model with metadata keeps its own; a flag that says
    otherwise is a usage error (exit 2), not silently ignored."""
    asked = {}
    if color_order is not None:
        asked["color_order"] = color_order
    if value_range is not None:
        asked["value_range"] = (float(value_range[0]), float(value_range[1]))
    if not asked:
        return be
    if be.metadata_source in ("file", "record"):
        for key, flag in (("color_order", "--color-order"), ("value_range", "--range")):
            have = tuple(getattr(be.info, key)) if key == "value_range" else be.info.color_order
            if key in asked and asked[key] != have:
                raise BadUsage(f"{flag} {_show(asked[key])}: {be.path.name} carries pix2pix-edge "
                               f"metadata that says {_show(have)}; {flag} is for models "
                               f"without metadata")
        return be
    be.info = dataclasses.replace(be.info, **asked)
    return be


def _show(value) -> str:
    return f"{value[0]:g},{value[1]:g}" if isinstance(value, tuple) else str(value)
