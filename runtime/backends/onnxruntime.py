"""ONNX Runtime backend: the TensorRT, CUDA or CPU execution provider, whichever can really load.

``onnxruntime-gpu`` lists the TensorRT and CUDA providers as "available" even where their CUDA /
cuDNN / TensorRT libraries are missing; asking for them then prints a screen of errors and falls
back to the CPU. :func:`usable_providers` finds out quietly which ones actually load, so the
backend only ever asks for those.

``onnxruntime`` is imported inside functions: importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import os
import sys
from pathlib import Path

import numpy as np

from pix2pix_edge.runtime.backends.base import check_batch, one_line, resolve_info
from pix2pix_edge.runtime.errors import BadInput, ModelMismatch, Unavailable, require
from pix2pix_edge.runtime.machine import physical_cores
from pix2pix_edge.runtime.model_info import ModelInfo

TRT_EP = "TensorrtExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"
PROVIDER_ORDER = (TRT_EP, CUDA_EP, CPU_EP)
SHORT_NAMES = {"tensorrt": TRT_EP, "trt": TRT_EP, "cuda": CUDA_EP, "cpu": CPU_EP}

# The shared library each GPU provider lives in (Linux names; the pip and JetPack wheels agree).
_PROVIDER_LIBS = {TRT_EP: "libonnxruntime_providers_tensorrt.so",
                  CUDA_EP: "libonnxruntime_providers_cuda.so"}

# A one-node ONNX model (Identity, float[1] -> float[1], opset 13), serialised with the onnx
# package. Embedded so probing needs neither the onnx package nor a file.
_PROBE_MODEL = (b'\x08\x08:;\n\x10\n\x01x\x12\x01y"\x08Identity\x12\x05probeZ\x0f\n\x01x\x12\n\n'
                b'\x08\x08\x01\x12\x04\n\x02\x08\x01b\x0f\n\x01y\x12\n\n\x08\x08\x01\x12\x04\n'
                b'\x02\x08\x01B\x04\n\x00\x10\r')

_WORKSPACE_BYTES = 1 << 30   # TensorRT EP builder workspace; Jetson memory is shared with the CPU


def import_onnxruntime():
    """The ``onnxruntime`` module; one-line Unavailable error when it is not installed."""
    return require("onnxruntime", "ort", "the ONNX Runtime backend")


# --------------------------------------------------------------------------- providers
def _libs_load(provider: str) -> bool:
    """Can the provider's shared library and everything it links against be loaded?

    dlopen with lazy binding resolves the NEEDED libraries (libcublas, libcudnn, libnvinfer,
    libcuda ...) without running anything, and fails silently when one is missing. Where the
    library is not where we expect it (other platforms), let the session probe decide."""
    if not sys.platform.startswith("linux"):
        return True
    ort = import_onnxruntime()
    lib = Path(ort.__file__).parent / "capi" / _PROVIDER_LIBS[provider]
    if not lib.is_file():
        return True
    try:
        ctypes.CDLL("libcuda.so.1", mode=os.RTLD_LAZY | os.RTLD_LOCAL)   # the driver (a GPU host)
        ctypes.CDLL(str(lib), mode=os.RTLD_LAZY | os.RTLD_LOCAL)
    except OSError:
        return False
    return True


def _session_gets(provider: str) -> bool:
    """Does a session asking for ``provider`` keep it? (Quietly: logs raised to FATAL, and the
    Python-level "EP Error" banner that onnxruntime prints to stdout swallowed.)"""
    ort = import_onnxruntime()
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ort.set_default_logger_severity(4)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            sess = ort.InferenceSession(_PROBE_MODEL, opts, providers=[provider, CPU_EP])
        return provider in sess.get_providers()
    except Exception:
        return False
    finally:
        ort.set_default_logger_severity(2)   # ORT's default (warnings)


def usable_providers() -> list[str]:
    """The execution providers that can actually run here, best first (TensorRT, CUDA, CPU).

    Cached: the answer does not change within a process. Prints nothing."""
    return list(_usable())


@functools.lru_cache(maxsize=None)
def _usable() -> tuple[str, ...]:
    available = set(import_onnxruntime().get_available_providers())
    usable = [p for p in (TRT_EP, CUDA_EP)
              if p in available and _libs_load(p) and _session_gets(p)]
    return tuple(usable + [CPU_EP])


def resolve_providers(providers) -> list[str]:
    """Turn user names (``cpu``, ``cuda``, ``tensorrt`` or full EP names) into usable EPs.

    ``None`` means every usable provider, in priority order. Asking for one that cannot load
    here is an :class:`Unavailable` error, not a silent fallback."""
    usable = list(usable_providers())
    if providers is None:
        return usable
    if isinstance(providers, str):
        providers = [p for p in providers.split(",") if p]
    out = []
    for p in providers:
        ep = SHORT_NAMES.get(p.lower(), p)
        if ep not in PROVIDER_ORDER:
            raise BadInput(f"unknown ONNX Runtime provider {p!r} "
                           f"(choose from: cpu, cuda, tensorrt)")
        if ep not in usable:
            raise Unavailable(f"ONNX Runtime provider {ep} cannot load on this machine "
                              f"(usable here: {', '.join(usable)})")
        if ep not in out:
            out.append(ep)
    return out


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pix2pix-edge" / "ort-tensorrt"


# --------------------------------------------------------------------------- backend
class OnnxRuntimeBackend:
    """One ONNX Runtime session over a generator: ``infer(NCHW float32) -> NCHW float32``.
    Implements :class:`runtime.backends.base.Backend`."""

    name = "onnxruntime"

    def __init__(self, path, providers=None, info: ModelInfo | None = None, threads=None,
                 cache_dir=None, fp16: bool = True, device: int = 0, spin: bool = False):
        ort = import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise BadInput(f"model file not found: {self.path}")
        eps = resolve_providers(providers)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = int(threads) if threads else physical_cores()
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        if not spin:
            # Idle pool threads sleep instead of spinning. On a CPU shared with the video
            # threads (decode, resize, encode) spinning steals their cores: measured 1.1-2.7x
            # slower on the 2-core machines here (benchmarks/ort_session_options.py).
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.threads = opts.intra_op_num_threads
        self._trt_fp16 = bool(fp16)
        cache = Path(cache_dir) if cache_dir else default_cache_dir()
        ep_options = []
        for ep in eps:
            if ep == TRT_EP:
                cache.mkdir(parents=True, exist_ok=True)
                ep_options.append({
                    "device_id": device, "trt_fp16_enable": bool(fp16),
                    "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                    "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache),
                    "trt_max_workspace_size": _WORKSPACE_BYTES})
            elif ep == CUDA_EP:
                ep_options.append({"device_id": device})
            else:
                ep_options.append({})
        try:
            self._sess = ort.InferenceSession(str(self.path), opts, providers=eps,
                                              provider_options=ep_options)
        except Exception as e:   # ORT raises its own exception types for unreadable models
            raise BadInput(f"{self.path.name}: not a loadable ONNX model "
                           f"({one_line(e)})") from None
        inputs, outputs = self._sess.get_inputs(), self._sess.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelMismatch(f"{self.path.name}: expected one input and one output, the graph "
                                f"has {len(inputs)} and {len(outputs)}")
        self._in, self._out = inputs[0], outputs[0]
        meta = ModelInfo.from_props(self._sess.get_modelmeta().custom_metadata_map,
                                    source=self.path.name)
        self.metadata_source = "file" if meta is not None else ("flags" if info else "graph")
        self.info = resolve_info(self.path.name, meta, info, self._in.name, self._in.shape,
                                 self._in.type, self._out.name, self._out.shape)
        self._dtype = np.dtype(self.info.io_dtype)
        self.providers = self._sess.get_providers()
        self.provider = self.providers[0]

    @property
    def precision(self) -> str:
        """The model's precision; an FP32 model on the TensorRT provider with FP16 allowed
        runs as ``"fp16 (TensorRT EP builder)"``."""
        p = self.info.precision
        if self._trt_fp16 and p == "fp32" and TRT_EP in self.providers:
            return "fp16 (TensorRT EP builder)"
        return p

    @property
    def input_shape(self):
        return list(self._in.shape)

    @property
    def output_shape(self):
        return list(self._out.shape)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        check_batch(batch, self.info, self._in.shape)
        x = np.ascontiguousarray(batch, dtype=self._dtype)
        y = self._sess.run([self._out.name], {self._in.name: x})[0]
        return y.astype(np.float32, copy=False)

    def close(self) -> None:
        self._sess = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
