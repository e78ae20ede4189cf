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

from pathlib import Path

from pix2pix_edge.runtime.backends.base import Backend
from pix2pix_edge.runtime.errors import BadInput
from pix2pix_edge.runtime.model_info import ModelInfo

BACKENDS = ("auto", "onnxruntime", "tensorrt")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
ONNX_SUFFIXES = (".onnx",)


def backend_for(model_path, backend: str = "auto") -> str:
    """``onnxruntime`` or ``tensorrt`` for this file and the user's ``--backend`` choice."""
    if backend not in BACKENDS:
        raise BadInput(f"unknown backend {backend!r} (choose from: {', '.join(BACKENDS)})")
    suffix = Path(model_path).suffix.lower()
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
                 fp16: bool | None = None, providers=None) -> Backend:
    """Open a model for inference.

    ``info`` comes from the user's flags and is used only for files that carry no metadata of
    their own. ``providers`` (ONNX Runtime only) restricts the execution providers, e.g.
    ``["cpu"]``; by default every provider that can load here is used, best first. ``fp16``
    (ONNX Runtime's TensorRT provider only): None decides by the model's normalisation
    (runtime.backends.onnxruntime.trt_fp16_default)."""
    path = Path(model_path)
    if not path.is_file():
        raise BadInput(f"model file not found: {path}")
    kind = backend_for(path, backend)
    if kind == "tensorrt":
        from pix2pix_edge.runtime.backends.tensorrt import TensorRTBackend
        return TensorRTBackend(path, info=info, device=device)
    from pix2pix_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend
    return OnnxRuntimeBackend(path, providers=providers, info=info, threads=threads,
                              cache_dir=cache_dir, fp16=fp16, device=device)
