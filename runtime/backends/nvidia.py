"""NVIDIA's libraries, in one place: importing ``tensorrt`` and cuda-python, calling the CUDA
runtime, the GPU's name and compute capability, and TensorRT / compute-capability parsing.

Used by the TensorRT backend (runtime.backends.tensorrt) and by the engine builder
(export.to_tensorrt), which imports these from here. Nothing is imported until a function is
called. Every failure a user can meet is an :class:`Unavailable` error of one line.
"""

from __future__ import annotations

import re

from pix2pix_edge.runtime.errors import Unavailable

INSTALL_HINT = "on Jetson it comes with JetPack, elsewhere: pip install 'pix2pix-edge[trt]'"


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
            raise Unavailable(f"{purpose} needs NVIDIA's cuda-python ({e}); install it with: "
                              f"pip install 'pix2pix-edge[trt]'") from None
    return cudart


# --------------------------------------------------------------------------- CUDA runtime calls
def cuda_ok(cudart, err) -> bool:
    return err == cudart.cudaError_t.cudaSuccess


def cuda_call(cudart, result, what: str):
    """cuda-python returns ``(err, *values)``: raise on error, return the value(s)."""
    err, *values = result
    if not cuda_ok(cudart, err):
        raise RuntimeError(f"{what} failed: {getattr(err, 'name', err)}")
    return values[0] if len(values) == 1 else (tuple(values) or None)


def gpu_properties(cudart, device: int = 0, purpose: str = "the TensorRT backend"
                   ) -> tuple[str, str]:
    """(GPU name, ``"X.Y"`` compute capability) of ``device``; Unavailable without a GPU."""
    err, count = cudart.cudaGetDeviceCount()
    if not cuda_ok(cudart, err) or count < 1:
        raise Unavailable(f"{purpose} needs an NVIDIA GPU; CUDA found none "
                          f"({getattr(err, 'name', err)})")
    if not 0 <= device < count:
        raise Unavailable(f"GPU {device} does not exist (this machine has {count})")
    err, props = cudart.cudaGetDeviceProperties(device)
    if not cuda_ok(cudart, err):
        raise Unavailable(f"cannot read the properties of CUDA device {device} "
                          f"({getattr(err, 'name', err)})")
    name = props.name
    if isinstance(name, bytes):
        name = name.split(b"\0", 1)[0].decode("utf-8", "replace")
    return str(name).split("\0", 1)[0].strip(), f"{props.major}.{props.minor}"


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
