"""NVIDIA's libraries, in one place: importing ``tensorrt`` and cuda-python, calling the CUDA
runtime, the GPU's name and compute capability, and TensorRT / compute-capability parsing.

Used by the TensorRT backend (runtime.backends.tensorrt) and by the engine builder
(export.to_tensorrt), which imports these from here. Nothing is imported until a function is
called. Every failure a user can meet is an :class:`Unavailable` error of one line.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys

from pix2pix_edge.runtime.errors import Unavailable

# The TensorRT build and cuda-python must match the NVIDIA driver's CUDA major (pyproject extras).
INSTALL_HINT = ("on Jetson it comes with JetPack; on a desktop: pip install "
                "'pix2pix-edge[trt-cu12]' (NVIDIA driver >= 525) or 'pix2pix-edge[trt-cu13]' "
                "(driver >= 580)")
CUDA_PYTHON_HINT = ("pip install 'pix2pix-edge[trt-cu12]' (CUDA 12 driver, >= 525), "
                    "'pix2pix-edge[trt-cu13]' (CUDA 13 driver, >= 580) or, on JetPack 5, "
                    "'pix2pix-edge[trt-cu11]'")


# --------------------------------------------------------------------------- imports
def import_tensorrt(purpose: str = "the TensorRT backend"):
    """The ``tensorrt`` module; ``purpose`` ("the TensorRT backend", "building an engine")
    names what needs it in the error."""
    try:
        import tensorrt
    except ImportError as e:
        raise Unavailable(f"TensorRT is not installed: {purpose} needs the Python package "
                          f"'tensorrt' ({e}); {INSTALL_HINT}") from None
    return tensorrt


def import_cudart(purpose: str = "the TensorRT backend"):
    """cuda-python's runtime module: ``cuda.bindings.runtime`` (cuda-bindings >= 12.6 / 13),
    or the older ``cuda.cudart``."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as e:
            raise Unavailable(f"{purpose} needs NVIDIA's cuda-python ({e}); install the one "
                              f"for your driver: {CUDA_PYTHON_HINT}") from None
    return cudart


def init_plugins(trt, logger) -> None:
    """Register TensorRT's bundled plugins. Before TensorRT 10 the ONNX parser maps
    InstanceNormalization to the ``InstanceNormalization_TRT`` plugin: without this call before
    parsing, and again before deserialising in a fresh process, TensorRT fails with
    "getPluginCreator could not find plugin" (onnx/onnx-tensorrt #597). Harmless on 10+."""
    trt.init_libnvinfer_plugins(logger, "")


# --------------------------------------------------------------------------- CUDA runtime calls
def cuda_ok(cudart, err) -> bool:
    return err == cudart.cudaError_t.cudaSuccess


def cuda_call(cudart, result, what: str):
    """cuda-python returns ``(err, *values)``: raise on error, return the value(s)."""
    err, *values = result
    if not cuda_ok(cudart, err):
        raise RuntimeError(f"{what} failed: {getattr(err, 'name', err)}")
    return values[0] if len(values) == 1 else (tuple(values) or None)


def _cuda_version(v) -> str:
    """12080 -> "12.8" (the encoding of cudaDriverGetVersion / cudaRuntimeGetVersion)."""
    v = int(v)
    return f"{v // 1000}.{v % 1000 // 10}"


def _versions(cudart) -> tuple[int | None, int | None]:
    """(driver, runtime) CUDA versions as cuda-python reports them; driver 0 = no driver.
    None where the call itself fails (cuda-python 12.6 raises without libcuda)."""
    out = []
    for call in ("cudaDriverGetVersion", "cudaRuntimeGetVersion"):
        try:
            err, value = getattr(cudart, call)()
            out.append(int(value) if cuda_ok(cudart, err) else None)
        except Exception:
            out.append(None)
    return out[0], out[1]


def _cuda_python_version() -> str:
    from importlib import metadata

    for dist in ("cuda-bindings", "cuda-python"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "?"


def on_jetson() -> bool:
    """Is this a Jetson (Linux for Tegra)? Its driver comes with JetPack and cannot be updated
    on its own."""
    return os.path.exists("/etc/nv_tegra_release")


def driver_too_old_fix(driver: int, runtime: int, jetson: bool) -> str:
    """What to do when cuda-python's CUDA ``runtime`` is newer than the ``driver`` (both in
    cudaDriverGetVersion's encoding, 12060 = 12.6).

    On a Jetson the driver is JetPack's: the fix is the cuda-python of JetPack's CUDA (a newer
    one would need NVIDIA's CUDA upgrade package; jetson-containers pins cuda-python to
    JetPack's CUDA for this reason). Elsewhere the cuda-python for the driver's CUDA major, or
    a newer driver."""
    have, need = driver // 1000, runtime // 1000
    if jetson:
        version = _cuda_version(driver)
        fix = (f"on a Jetson the driver comes with JetPack: install the cuda-python matching "
               f"JetPack's CUDA {version}, pip install 'cuda-python=={version}.*'")
        if have == 11:   # JetPack 5: PyPI's oldest CUDA 11 cuda-python is 11.5
            fix += (" (the package index starts at 11.5: pip install 'pix2pix-edge[trt-cu11]', "
                    "or build cuda-python v11.4.0 from source)")
        return fix
    if have < need:
        return (f"install the cuda-python for this driver, pip install "
                f"'pix2pix-edge[trt-cu{have}]', or update the driver")
    return "update the driver"


def no_gpu_error(cudart, err, purpose: str) -> Unavailable:
    """The one-line error for a failed device query: no driver / GPU, or (the error CUDA gives
    for both) a driver too old for this cuda-python, told apart by the driver's version."""
    name = getattr(err, "name", err)
    driver, runtime = _versions(cudart)
    too_old = [getattr(cudart.cudaError_t, n, None)
               for n in ("cudaErrorInsufficientDriver", "cudaErrorCallRequiresNewerDriver")]
    if err in [e for e in too_old if e is not None] and driver and runtime and driver < runtime:
        jetson = on_jetson()
        return Unavailable(
            f"{purpose}: the NVIDIA driver supports CUDA {_cuda_version(driver)} but cuda-python "
            f"{_cuda_python_version()} needs a CUDA {_cuda_version(runtime)} driver"
            f"{' (>= 580)' if runtime // 1000 >= 13 and not jetson else ''}: "
            f"{driver_too_old_fix(driver, runtime, jetson)} ({name})")
    return Unavailable(f"{purpose} needs an NVIDIA GPU; CUDA found none ({name})")


@contextlib.contextmanager
def _unraisable_quietly():
    """Collect (instead of print) the errors that cuda-python 11.x reports from inside Cython
    before it raises: its "Failed to dlopen libcuda.so" goes through sys.excepthook (a
    traceback) and sys.unraisablehook ("Exception ignored in ..."). Yields their messages."""
    ignored = []
    hooks = sys.excepthook, sys.unraisablehook
    sys.excepthook = lambda kind, value, tb: ignored.append(str(value))
    sys.unraisablehook = lambda u: ignored.append(str(u.exc_value))
    try:
        yield ignored
    finally:
        sys.excepthook, sys.unraisablehook = hooks


def gpu_properties(cudart, device: int = 0, purpose: str = "the TensorRT backend"
                   ) -> tuple[str, str]:
    """(GPU name, ``"X.Y"`` compute capability) of ``device``; Unavailable without a GPU.

    cuda-python 12.6 raises RuntimeError ("Failed to dlopen libcuda.so.1") where there is no
    driver; 12.9 and 13 return an error tuple (cudaErrorInsufficientDriver, also when the driver
    is too old for them): each becomes one line, never a traceback."""
    with _unraisable_quietly() as ignored:
        try:
            err, count = cudart.cudaGetDeviceCount()
        except RuntimeError as e:
            cause = ignored[0] if ignored else e
            raise Unavailable(f"{purpose} needs an NVIDIA GPU; CUDA found none (cuda-python: "
                              f"{cause})") from None
    if not cuda_ok(cudart, err) or count < 1:
        raise no_gpu_error(cudart, err, purpose)
    if not 0 <= device < count:
        raise Unavailable(f"GPU {device} does not exist (this machine has {count}: "
                          f"--device 0{f' to {count - 1}' if count > 1 else ''})")
    err, props = cudart.cudaGetDeviceProperties(device)
    if not cuda_ok(cudart, err):
        raise Unavailable(f"cannot read the properties of CUDA device {device} "
                          f"({getattr(err, 'name', err)})")
    name = props.name
    if isinstance(name, bytes):
        name = name.split(b"\0", 1)[0].decode("utf-8", "replace")
    return str(name).split("\0", 1)[0].strip(), f"{props.major}.{props.minor}"


def native_handle(cudart, obj) -> int:
    """The address behind a cuda-python object (a stream), for TensorRT's ``execute_async_v3``.
    ``int(obj)`` is deprecated since cuda-bindings 13 (12.9 too) in favour of
    ``cuda.bindings.utils.get_cuda_native_handle``; older cuda-python has only ``int``."""
    if getattr(cudart, "__name__", "").startswith("cuda.bindings."):
        try:
            from cuda.bindings.utils import get_cuda_native_handle
        except ImportError:
            pass
        else:
            return int(get_cuda_native_handle(obj))
    return int(obj)


# --------------------------------------------------------------------------- versions
def parse_version(text) -> tuple[int, int, int]:
    """A TensorRT version as (major, minor, patch): ``"10.3.0.30"`` -> (10, 3, 0), ``"8.6"`` ->
    (8, 6, 0), ``"8.5.2.2+cuda11.4"`` -> (8, 5, 2). Engines are tied to major.minor.patch.
    ValueError when the text does not start with a number."""
    m = re.match(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    if not m:
        raise ValueError(f"cannot parse TensorRT version {text!r}")
    return tuple(int(g or 0) for g in m.groups())  # type: ignore[return-value]


def same_version(a, b) -> bool:
    """Do two TensorRT versions agree in major.minor.patch? (Unparsable ones: equal text.)"""
    try:
        return parse_version(a) == parse_version(b)
    except ValueError:
        return str(a).strip() == str(b).strip()


def parse_compute_capability(cc) -> tuple[int, int] | None:
    """``"8.7"``, ``"sm_87"``, ``"87"`` or ``(8, 7)`` -> ``(8, 7)``; None when unknown."""
    if cc is None or cc == "":
        return None
    if isinstance(cc, (tuple, list)) and len(cc) == 2:
        return int(cc[0]), int(cc[1])
    text = re.sub(r"^sm_?", "", str(cc).strip().lower())
    m = re.fullmatch(r"\s*(\d+)\s*[.,]\s*(\d+)\s*", text)
    if m:
        return int(m.group(1)), int(m.group(2))
    m = re.fullmatch(r"\s*(\d+)(\d)\s*", text)
    if m:
        return int(m.group(1)), int(m.group(2))
    return None


def sm(cc) -> str:
    """``"8.7"`` -> ``"sm_87"``; ``"sm_?"`` when unknown."""
    parsed = parse_compute_capability(cc)
    return f"sm_{parsed[0]}{parsed[1]}" if parsed else "sm_?"
