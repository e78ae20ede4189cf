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
import dataclasses
import functools
import io
import os
import re
import sys
from pathlib import Path

import numpy as np

from pix2pix_edge.runtime.errors import BadInput, ModelMismatch, Unavailable, require
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

_ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16"}
_WORKSPACE_BYTES = 1 << 30   # TensorRT EP builder workspace; Jetson memory is shared with the CPU


def _ort():
    return require("onnxruntime", "ort", "the ONNX Runtime backend")


# --------------------------------------------------------------------------- providers
def _libs_load(provider: str) -> bool:
    """Can the provider's shared library and everything it links against be loaded?

    dlopen with lazy binding resolves the NEEDED libraries (libcublas, libcudnn, libnvinfer,
    libcuda ...) without running anything, and fails silently when one is missing. Where the
    library is not where we expect it (other platforms), let the session probe decide."""
    if not sys.platform.startswith("linux"):
        return True
    ort = _ort()
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
    ort = _ort()
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
    available = set(_ort().get_available_providers())
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


def physical_cores() -> int:
    """Physical CPU cores this process may use (hyper-threads share one core's FP units)."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:
        allowed = os.cpu_count() or 1
    cores = set()
    try:
        phys = core = None
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    phys = value.strip()
                elif key == "core id":
                    core = value.strip()
                elif not line.strip():
                    if core is not None:
                        cores.add((phys, core))
                    phys = core = None
    except OSError:
        pass
    return max(1, min(allowed, len(cores) or allowed))


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pix2pix-edge" / "ort-tensorrt"


# --------------------------------------------------------------------------- model info
def _one_line(text: str, limit: int = 240) -> str:
    text = re.sub(r"\s+", " ", str(text)).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _largest_pow2_dividing(*sides: int, cap: int = 256) -> int:
    m = 1
    while m < cap and all(s % (m * 2) == 0 for s in sides):
        m *= 2
    return m


def _dim(d):
    """An ONNX dimension as an int, or None when symbolic / unknown."""
    return d if isinstance(d, int) and d > 0 else None


def shape_str(shape) -> str:
    return "x".join(str(d) if d is not None else "?" for d in shape)


def resolve_info(name: str, meta: ModelInfo | None, user: ModelInfo | None,
                 in_name: str, in_shape, in_type: str, out_name: str, out_shape) -> ModelInfo:
    """Decide the :class:`ModelInfo` to run a graph with, and check it against the graph.

    The file's own metadata wins; then the user's flags; then what the graph's static input
    shape says. The graph is the truth about tensor names, I/O dtype and which axes are fixed.
    Pure function (no ORT objects) so the TensorRT backend and the tests can use it too."""
    if len(in_shape) != 4:
        raise ModelMismatch(f"{name}: expected one NCHW image input, the graph's input "
                            f"{in_name!r} has shape {shape_str(in_shape)}")
    _, c, h, w = (_dim(d) for d in in_shape)
    io_dtype = _ORT_DTYPES.get(in_type, in_type)
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
        oc = _dim(out_shape[1]) if len(out_shape) == 4 else None
        info = ModelInfo(input_name=in_name, output_name=out_name, height=h, width=w,
                         multiple=_largest_pow2_dividing(h, w), in_channels=c or 3,
                         out_channels=oc or 3, extra={"metadata": "none (read from the graph)"})
        origin = "graph"
    fixed = h is not None and w is not None
    if fixed and (info.height, info.width) != (h, w):
        msg = (f"{name}: the model's input is fixed at {shape_str(in_shape)} but "
               f"{'its metadata says' if origin == 'metadata' else 'the size given is'} "
               f"{info.height}x{info.width}")
        raise (ModelMismatch(msg) if origin == "metadata" else BadInput(msg))
    if c is not None and info.in_channels != c:
        raise ModelMismatch(f"{name}: the graph takes {c} input channels, "
                            f"the {origin} says {info.in_channels}")
    return dataclasses.replace(info, dynamic=not fixed, io_dtype=io_dtype)


def check_batch(batch, info: ModelInfo, in_shape) -> None:
    """Raise a one-line :class:`BadInput` unless ``batch`` fits the model's input."""
    n0, c, h, w = (_dim(d) for d in in_shape)
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


# --------------------------------------------------------------------------- backend
class OnnxRuntimeBackend:
    """One ONNX Runtime session over a generator: ``infer(NCHW float32) -> NCHW float32``."""

    name = "onnxruntime"

    def __init__(self, path, providers=None, info: ModelInfo | None = None, threads=None,
                 cache_dir=None, fp16: bool = True, device: int = 0, spin: bool = False):
        ort = _ort()
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
                           f"({_one_line(e)})") from None
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
