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

from pix2pix_edge.runtime.backends.base import check_batch, one_line, resolve_info, single_io
from pix2pix_edge.runtime.errors import BadInput, ModelMismatch, Unavailable, require
from pix2pix_edge.runtime.machine import physical_cores
from pix2pix_edge.runtime.model_info import ModelInfo
from pix2pix_edge.runtime.onnx_file import ORT_REFUSAL, refuse_external_data_outside

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
def _cuda_major(ort) -> int:
    """The CUDA major an onnxruntime-gpu wheel from the package index is built for (1.21-1.26:
    12, 1.27 and newer: 13)."""
    try:
        major, minor = (int(x) for x in str(ort.__version__).split(".")[:2])
    except ValueError:
        return 13
    return 13 if (major, minor) >= (1, 27) else 12


def _gpu_fix(ort) -> str:
    if sys.platform.startswith("linux") and os.uname().machine == "aarch64":
        return "on Jetson install JetPack's onnxruntime-gpu wheel and its CUDA / cuDNN / TensorRT"
    cu = _cuda_major(ort)
    return (f"onnxruntime-gpu {ort.__version__} is a CUDA {cu} / cuDNN 9 build: pip install "
            f"'onnxruntime-gpu[cuda,cudnn]=={ort.__version__}' (pix2pix-edge[ort-cu{cu}]), "
            f"or pix2pix-edge[ort-cu{25 - cu}] for a CUDA {25 - cu} driver")


@functools.lru_cache(maxsize=None)
def nvidia_driver_loads() -> bool:
    """Is there an NVIDIA driver (libcuda.so.1) on this machine?"""
    try:
        ctypes.CDLL("libcuda.so.1", mode=os.RTLD_LAZY | os.RTLD_LOCAL)
    except OSError:
        return False
    return True


def _libs_error(provider: str) -> str | None:
    """Why the provider's shared library (or one it links: libcublas, libcudnn, libnvinfer,
    libcuda ...) cannot be loaded, or None when it can.

    dlopen with lazy binding resolves the NEEDED libraries without running anything. Where the
    library is not where we expect it (other platforms), let the session probe decide."""
    if not sys.platform.startswith("linux"):
        return None
    ort = import_onnxruntime()
    lib = Path(ort.__file__).parent / "capi" / _PROVIDER_LIBS[provider]
    if not lib.is_file():
        return None
    try:
        ctypes.CDLL("libcuda.so.1", mode=os.RTLD_LAZY | os.RTLD_LOCAL)   # the driver (a GPU host)
    except OSError as e:
        return f"no NVIDIA driver here ({one_line(e, 120)})"
    try:
        ctypes.CDLL(str(lib), mode=os.RTLD_LAZY | os.RTLD_LOCAL)
    except OSError as e:
        missing = one_line(e, 160)
        if provider == TRT_EP and ("libnvinfer" in missing or "libnvonnxparser" in missing):
            return (f"TensorRT is missing ({missing}): this provider links TensorRT 10 (pip "
                    f"install 'tensorrt-cu{_cuda_major(ort)}>=10,<11'); it cannot load next to "
                    f"TensorRT 11")
        return f"a CUDA library is missing ({missing}): {_gpu_fix(ort)}"
    return None


def _libs_load(provider: str) -> bool:
    return _libs_error(provider) is None


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


def preload_gpu_libraries(ort) -> bool:
    """onnxruntime-gpu >= 1.21: load the CUDA / cuDNN libraries its ``[cuda,cudnn]`` extra
    installed (the nvidia-* wheels, which are not on the loader's path) so its CUDA and TensorRT
    providers can link them. Quiet; False where there is nothing to call or it failed."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return False
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            preload()
    except Exception:
        return False
    return True


def preload_tensorrt() -> bool:
    """Load TensorRT's libraries (libnvinfer ...) into this process by importing ``tensorrt``.

    A TensorRT installed from pip (tensorrt-cu12 / -cu13) keeps them in its own package folder,
    off the loader's path, and ``preload_dlls()`` loads CUDA and cuDNN only: the TensorRT
    provider then fails with "libnvinfer.so.10: cannot open shared object file" (onnxruntime
    issues 18597, 13501). ``import tensorrt`` loads them, and the provider's library then finds
    them by their sonames. Quiet; False where tensorrt is absent or fails to import."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import tensorrt  # noqa: F401
    except Exception:
        return False
    return True


def usable_providers() -> list[str]:
    """The execution providers that can actually run here, best first (TensorRT, CUDA, CPU).

    Cached: the answer does not change within a process. Prints nothing."""
    return list(_probe()[0])


def why_not(provider: str) -> str:
    """One line: why ``provider`` cannot run here, and how to fix it ("" when it can)."""
    return _probe()[1].get(provider, "")


@functools.lru_cache(maxsize=None)
def _probe() -> tuple[tuple[str, ...], dict]:
    ort = import_onnxruntime()
    available = set(ort.get_available_providers())
    if available & {TRT_EP, CUDA_EP}:
        preload_gpu_libraries(ort)
    if TRT_EP in available:
        preload_tensorrt()
    usable, why = [], {}
    for p in (TRT_EP, CUDA_EP):
        if p not in available:
            why[p] = (f"this onnxruntime {ort.__version__} is a CPU-only build: replace it "
                      f"(pip uninstall onnxruntime) by onnxruntime-gpu, pip install "
                      f"'pix2pix-edge[ort-cu12]' (CUDA 12 driver) or 'pix2pix-edge[ort-cu13]' "
                      f"(CUDA 13 driver, >= 580); on Jetson JetPack's onnxruntime-gpu wheel")
            continue
        reason = _libs_error(p)
        if reason is None and not _session_gets(p):
            reason = f"a session asking for it fell back to the CPU: {_gpu_fix(ort)}"
        if reason is None:
            usable.append(p)
        else:
            why[p] = reason
    return tuple(usable + [CPU_EP]), why


def resolve_providers(providers) -> list[str]:
    """Turn user names (``cpu``, ``cuda``, ``tensorrt`` or full EP names) into usable EPs.

    ``None`` means every usable provider, in priority order. Asking for one that cannot load
    here is an :class:`Unavailable` error, not a silent fallback."""
    usable = list(usable_providers())
    if providers is None:
        note = fallback_note()
        if note:
            _note_once(note)
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
            raise Unavailable(f"ONNX Runtime provider {ep} cannot load on this machine: "
                              f"{why_not(ep)} (usable here: {', '.join(usable)})")
        if ep not in out:
            out.append(ep)
    return out


def fallback_note() -> str | None:
    """Where a GPU (a driver) and onnxruntime-gpu are there but no GPU provider can load, the
    automatic choice is the CPU: this line says why and how to fix it (never silently).
    None elsewhere: without a driver the CPU is the only choice."""
    if usable_providers()[0] != CPU_EP or not nvidia_driver_loads():
        return None
    if not set(import_onnxruntime().get_available_providers()) & {TRT_EP, CUDA_EP}:
        return None
    return f"ONNX Runtime runs on the CPU: {CUDA_EP} cannot load here: {why_not(CUDA_EP)}"


@functools.lru_cache(maxsize=None)
def _note_once(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


# TensorRT provider options that older onnxruntime builds may not know (the session then
# fails naming the key); the backend retries without them.
TRT_OPTIONAL = ("trt_timing_cache_enable", "trt_timing_cache_path")


def trt_provider_options(device: int, fp16: bool, cache: Path) -> dict:
    """Options for ONNX Runtime's TensorRT provider: engine and timing caches in ``cache``."""
    return {"device_id": device, "trt_fp16_enable": bool(fp16),
            "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache),
            "trt_max_workspace_size": _WORKSPACE_BYTES}


def trt_fp16_default(norm_mode: str | None) -> bool:
    """Does ONNX Runtime's TensorRT provider build FP16 engines by default for a model whose
    metadata says ``norm_mode``? Only where the graph has no InstanceNormalization ("running":
    BatchNorm folded into the convolutions; "none"). The provider builds weakly typed engines
    and cannot keep layers in FP32, so with ``trt_fp16_enable`` InstanceNormalization ("per-image",
    "instance"; also the FP32 islands of an FP16 export) may run in FP16, which has known
    accuracy problems (torch2trt #776, onnxruntime #10079) -- what ``pix2pix export trt`` avoids.
    Unknown (no metadata): FP32. ``fp16=True`` asks for FP16 anyway (``pix2pix bench`` measures
    both)."""
    return norm_mode in ("running", "none")


def _norm_mode(ort, path: Path) -> str | None:
    """The model's recorded normalisation mode, read through a quick CPU session (no graph
    optimisation): the TensorRT provider's options must be known before its session exists."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 4
    try:
        sess = ort.InferenceSession(str(path), opts, providers=[CPU_EP])
        meta = ModelInfo.from_props(sess.get_modelmeta().custom_metadata_map, source=path.name)
    except Exception:
        return None   # the real session reports what is wrong with the file
    return meta.norm_mode if meta is not None else None


def load_error(path: Path, error: Exception) -> Exception:
    """The one-line error for an ONNX file this onnxruntime could not load."""
    if ORT_REFUSAL in str(error):   # onnxruntime's own check of external data (>= 1.24)
        return ModelMismatch(f"{path.name}: refused: a tensor keeps its data outside the model's "
                             f"folder ({one_line(error)})")
    return BadInput(f"{path.name}: not a loadable ONNX model ({one_line(error)})")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pix2pix-edge" / "ort-tensorrt"


# --------------------------------------------------------------------------- backend
class OnnxRuntimeBackend:
    """One ONNX Runtime session over a generator: ``infer(NCHW float32) -> NCHW float32``.
    Implements :class:`runtime.backends.base.Backend`."""

    name = "onnxruntime"

    def __init__(self, path, providers=None, info: ModelInfo | None = None, threads=None,
                 cache_dir=None, fp16: bool | None = None, device: int = 0,
                 spin: bool = False):
        ort = import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise BadInput(f"model file not found: {self.path}")
        refuse_external_data_outside(self.path)
        eps = resolve_providers(providers)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = int(threads) if threads else physical_cores()
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        if not spin:
            # Idle pool threads sleep instead of spinning. Beside another busy process spinning
            # steals its cores and the video pipeline loses about a third of its frame rate; on
            # an idle machine it gains little (benchmarks/ort_session_options.py, docs/performance.md).
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.threads = opts.intra_op_num_threads
        if TRT_EP in eps and fp16 is None:
            fp16 = trt_fp16_default(_norm_mode(ort, self.path))
        self._trt_fp16 = bool(fp16)
        cache = Path(cache_dir) if cache_dir else default_cache_dir()
        ep_options = []
        for ep in eps:
            if ep == TRT_EP:
                cache.mkdir(parents=True, exist_ok=True)
                ep_options.append(trt_provider_options(device, self._trt_fp16, cache))
            elif ep == CUDA_EP:
                ep_options.append({"device_id": device})
            else:
                ep_options.append({})
        self._sess = self._session(ort, opts, eps, ep_options)
        self._in, self._out = single_io(self.path.name, self._sess.get_inputs(),
                                        self._sess.get_outputs())
        meta = ModelInfo.from_props(self._sess.get_modelmeta().custom_metadata_map,
                                    source=self.path.name)
        self.metadata_source = "file" if meta is not None else ("flags" if info else "graph")
        self.info = resolve_info(self.path.name, meta, info, self._in.name, self._in.shape,
                                 self._in.type, self._out.name, self._out.shape)
        self._dtype = np.dtype(self.info.io_dtype)
        self.providers = self._sess.get_providers()
        self.provider = self.providers[0]

    def _session(self, ort, opts, eps, ep_options):
        """The session; where this onnxruntime does not know the TensorRT provider's timing-cache
        options (older builds, e.g. for JetPack 5), once more without them, with a note."""
        try:
            return ort.InferenceSession(str(self.path), opts, providers=eps,
                                        provider_options=ep_options)
        except Exception as e:   # ORT raises its own exception types for unreadable models
            error = e
        unknown = [k for k in TRT_OPTIONAL if k in str(error)] if TRT_EP in eps else []
        if unknown:
            ep_options = [{k: v for k, v in o.items() if k not in TRT_OPTIONAL} for o in ep_options]
            _note_once(f"onnxruntime {ort.__version__} does not know {', '.join(unknown)}: the "
                       f"TensorRT provider runs without its timing cache")
            try:
                return ort.InferenceSession(str(self.path), opts, providers=eps,
                                            provider_options=ep_options)
            except Exception as e:
                error = e
        raise load_error(self.path, error) from None

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
