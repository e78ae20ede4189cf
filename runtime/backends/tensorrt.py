"""TensorRT backend: a serialized engine run through ``tensorrt`` and NVIDIA's cuda-python.

No PyTorch and no pycuda: pinned host buffers (``cudaMallocHost``), device buffers
(``cudaMalloc``), one stream, async copies and ``execute_async_v3`` -- the TensorRT >= 8.5 API,
the only one TensorRT 10 and 11 have (NVIDIA's ``samples/python/common_runtime.py`` does the
same). Dynamic shapes go through ``set_input_shape``; buffers are sized for the profile's maximum.

Engines only run on the TensorRT version and GPU they were built with. The record that
``pix2pix export trt`` writes beside the engine (``model.engine.json``) says which; it is
compared with this machine *before* deserializing, so a mismatch is one clear sentence instead
of TensorRT's log. The comparison is a pure function (:func:`engine_mismatch`), tested on CPU.

Importing tensorrt / cuda-python, CUDA calls, GPU properties and version parsing live in
:mod:`runtime.backends.nvidia` (shared with ``pix2pix export trt``).
"""

from __future__ import annotations

import ctypes
import dataclasses
import re
import threading
from pathlib import Path

import numpy as np

from pix2pix_edge.runtime.backends.base import (check_batch, largest_pow2_dividing, resolve_info,
                                               shape_str, single_io)
from pix2pix_edge.runtime.backends.nvidia import (cuda_call, gpu_properties, import_cudart,
                                                 import_tensorrt, init_plugins, native_handle,
                                                 parse_compute_capability, same_version, sm)
from pix2pix_edge.runtime.errors import BadInput, ModelMismatch
from pix2pix_edge.runtime.model_info import ModelInfo, read_engine_record


# --------------------------------------------------------------------------- pure checks
def _norm_gpu(name) -> str:
    return re.sub(r"\s+", " ", str(name or "")).strip().lower()


def engine_mismatch(engine_name: str, record: ModelInfo, trt_version: str, gpu_name: str,
                    compute_capability) -> str | None:
    """Why the engine described by ``record`` cannot run here, or None when it can.

    Compares TensorRT major.minor.patch, the GPU's compute capability and its name (an engine is
    tuned for the exact device). Fields the record lacks are not compared."""
    built_v, built_gpu, built_cc = (record.tensorrt_version, record.gpu_name,
                                    record.compute_capability)
    problems = []
    if built_v and not same_version(built_v, trt_version):
        problems.append("TensorRT version")
    if built_cc and parse_compute_capability(built_cc) != parse_compute_capability(
            compute_capability):
        problems.append("compute capability")
    if built_gpu and _norm_gpu(built_gpu) != _norm_gpu(gpu_name):
        problems.append("GPU")
    if not problems:
        return None
    onnx_name = Path(engine_name).with_suffix(".onnx").name
    return (f"{engine_name} was built with TensorRT {built_v or '?'} for {built_gpu or '?'} "
            f"({sm(built_cc)}); this is TensorRT {trt_version} on {gpu_name} "
            f"({sm(compute_capability)}): rebuild it on this device with "
            f"`pix2pix export trt {onnx_name} -o {engine_name}`")


def profile_shapes(engine, name: str) -> tuple[tuple, tuple, tuple]:
    """(min, opt, max) input shapes of profile 0. ``get_tensor_profile_shape`` is the name-based
    call of TensorRT >= 8.5 (the only one in 10 / 11); where a binding lacks it, the 8.x call
    ``get_profile_shape(profile, name)`` (deprecated in its favour) gives the same."""
    if hasattr(engine, "get_tensor_profile_shape"):
        shapes = engine.get_tensor_profile_shape(name, 0)
    else:
        shapes = engine.get_profile_shape(0, name)
    lo, opt, hi = (tuple(int(d) for d in s) for s in shapes)
    return lo, opt, hi


# --------------------------------------------------------------------------- backend
class _Buffer:
    """A pinned host array and a device allocation of the same size."""

    def __init__(self, cudart, count: int, dtype: np.dtype):
        self.cudart = cudart
        self.nbytes = int(count) * dtype.itemsize
        self.host_ptr = cuda_call(cudart, cudart.cudaMallocHost(self.nbytes), "cudaMallocHost")
        # A byte view retyped by numpy: ctypes has no float16, and FP16 I/O is common here.
        raw = ctypes.cast(int(self.host_ptr), ctypes.POINTER(ctypes.c_uint8))
        self.host = np.ctypeslib.as_array(raw, (self.nbytes,)).view(dtype)
        self.device = None
        try:
            self.device = cuda_call(cudart, cudart.cudaMalloc(self.nbytes), "cudaMalloc")
        except RuntimeError:
            self.free()
            raise

    def free(self):
        if self.device is not None:
            cuda_call(self.cudart, self.cudart.cudaFree(self.device), "cudaFree")
            self.device = None
        if self.host_ptr is not None:
            self.host = None
            cuda_call(self.cudart, self.cudart.cudaFreeHost(self.host_ptr), "cudaFreeHost")
            self.host_ptr = None


class TensorRTBackend:
    """A TensorRT engine: ``infer(NCHW float32) -> NCHW float32`` on one GPU stream.
    Implements :class:`runtime.backends.base.Backend`."""

    name = "tensorrt"
    threads = None   # computes on the GPU
    # How long close() waits for an inference still in flight (a pipeline whose inference
    # thread outlived its join timeout) before it gives up and frees nothing.
    CLOSE_WAIT_S = 10.0

    def __init__(self, path, info: ModelInfo | None = None, device: int = 0):
        self.path = Path(path)
        self._buffers: list[_Buffer] = []
        self._stream = None
        self._context = self._engine = self._runtime = None
        self.device = int(device)
        # Held by infer() while the GPU uses the buffers: close() never frees them under it.
        self._busy = threading.Lock()
        # CUDA's current device is per thread: every thread that calls into CUDA for this
        # engine (the pipeline's inference thread, not only the one that opened it) selects it.
        self._device_set = threading.local()
        if not self.path.is_file():
            raise BadInput(f"engine file not found: {self.path}")
        trt = import_tensorrt()
        cudart = self._cudart = import_cudart()
        self.gpu_name, self.compute_capability = gpu_properties(cudart, device)
        self.trt_version = trt.__version__
        self.provider = f"TensorRT {self.trt_version}"
        self.providers = [self.provider]
        record = read_engine_record(self.path)
        self.metadata_source = "record" if record else ("flags" if info else "engine")
        if record is not None:
            why = engine_mismatch(self.path.name, record, self.trt_version, self.gpu_name,
                                  self.compute_capability)
            if why:
                raise ModelMismatch(why)
        self._use_device()

        logger = trt.Logger(trt.Logger.ERROR)
        init_plugins(trt, logger)   # engines built by TensorRT 8.x may hold InstanceNorm plugins
        self._runtime = trt.Runtime(logger)
        self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise ModelMismatch(
                f"{self.path.name}: TensorRT {self.trt_version} on {self.gpu_name} "
                f"({sm(self.compute_capability)}) cannot load this engine (not an engine file, or "
                f"built with another TensorRT version or GPU): rebuild it on this device with "
                f"`pix2pix export trt {self.path.with_suffix('.onnx').name} -o {self.path.name}`")
        try:
            self._setup(trt, cudart, record, info)
        except BaseException:
            self.close()
            raise

    def _setup(self, trt, cudart, record, info):
        engine = self._engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        ins = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self._in_name, self._out_name = single_io(self.path.name, ins, outs, "engine")
        in_shape = [d if d >= 0 else None for d in engine.get_tensor_shape(self._in_name)]
        out_shape = [d if d >= 0 else None for d in engine.get_tensor_shape(self._out_name)]
        self._in_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self._in_name)))
        self._out_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self._out_name)))
        self._dynamic = any(d is None for d in in_shape)
        if self._dynamic:
            lo, opt, hi = profile_shapes(engine, self._in_name)
            self._profile = (lo, hi)
            if record is None and info is None:   # no record: the profile's opt size is the size
                info = ModelInfo(height=opt[2], width=opt[3],
                                 multiple=largest_pow2_dividing(opt[2], opt[3]),
                                 extra={"metadata": "none (read from the engine)"})
            max_in = hi
        else:
            self._profile = None
            max_in = tuple(in_shape)
        self.info = resolve_info(self.path.name, record, info, self._in_name, in_shape,
                                 self._in_dtype.name, self._out_name, out_shape)
        if self._dynamic:   # the engine's own profile: the run size is chosen inside it
            self.info = dataclasses.replace(self.info, extra={
                **self.info.extra, "profile": {"min": list(lo), "opt": list(opt),
                                               "max": list(hi)}})
        self._in_shape, self._out_shape = in_shape, out_shape

        self._context = engine.create_execution_context()
        if self._dynamic:
            self._context.set_input_shape(self._in_name, max_in)
        max_out = tuple(self._context.get_tensor_shape(self._out_name))
        self._stream = cuda_call(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._inp = _Buffer(cudart, int(np.prod(max_in)), self._in_dtype)
        self._buffers.append(self._inp)
        self._outp = _Buffer(cudart, int(np.prod(max_out)), self._out_dtype)
        self._buffers.append(self._outp)
        self._context.set_tensor_address(self._in_name, int(self._inp.device))
        self._context.set_tensor_address(self._out_name, int(self._outp.device))
        self._current = None

    def _use_device(self) -> None:
        """cudaSetDevice(self.device) once on each thread that uses this engine."""
        if getattr(self._device_set, "done", False):
            return
        cuda_call(self._cudart, self._cudart.cudaSetDevice(self.device), "cudaSetDevice")
        self._device_set.done = True

    @property
    def precision(self) -> str:
        return self.info.precision

    @property
    def input_shape(self):
        return list(self._in_shape)

    @property
    def output_shape(self):
        return list(self._out_shape)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        check_batch(batch, self.info, self._in_shape)
        with self._busy:
            if self._context is None:
                raise RuntimeError(f"{self.path.name}: the TensorRT backend is closed")
            return self._infer(batch)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        self._use_device()
        shape = tuple(batch.shape)
        if self._dynamic:
            lo, hi = self._profile
            if any(s < a or s > b for s, a, b in zip(shape, lo, hi)):
                raise BadInput(f"{self.path.name} accepts {shape_str(lo)} up to {shape_str(hi)} "
                               f"(its optimisation profile), got {shape_str(shape)}")
            if shape != self._current:
                if not self._context.set_input_shape(self._in_name, shape):
                    raise BadInput(f"{self.path.name} rejected input shape {shape_str(shape)}")
                self._current = shape
        cudart = self._cudart
        out_shape = tuple(self._context.get_tensor_shape(self._out_name))
        n_in, n_out = int(np.prod(shape)), int(np.prod(out_shape))
        np.copyto(self._inp.host[:n_in], np.asarray(batch).reshape(-1), casting="unsafe")
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        cuda_call(cudart, cudart.cudaMemcpyAsync(
            self._inp.device, self._inp.host_ptr, n_in * self._in_dtype.itemsize, h2d,
            self._stream), "cudaMemcpyAsync (host to device)")
        if not self._context.execute_async_v3(native_handle(cudart, self._stream)):
            raise RuntimeError(f"TensorRT execute_async_v3 failed on {self.path.name}")
        cuda_call(cudart, cudart.cudaMemcpyAsync(
            self._outp.host_ptr, self._outp.device, n_out * self._out_dtype.itemsize, d2h,
            self._stream), "cudaMemcpyAsync (device to host)")
        cuda_call(cudart, cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        return self._outp.host[:n_out].reshape(out_shape).astype(np.float32)   # a copy

    def close(self) -> None:
        """Free the GPU memory, the pinned buffers and the stream (safe to call twice).

        Waits up to CLOSE_WAIT_S for an inference still running on another thread; if it does
        not finish, frees nothing (the process's exit does) rather than pull the buffers from
        under ``execute_async_v3``."""
        if not self._busy.acquire(timeout=self.CLOSE_WAIT_S):
            return
        try:
            self._free()
        finally:
            self._busy.release()

    def _free(self) -> None:
        if self._stream is not None or self._buffers:
            self._use_device()
        if self._stream is not None:
            self._cudart.cudaStreamSynchronize(self._stream)
        self._context = None   # context before engine before runtime
        self._engine = None
        self._runtime = None
        for buf in self._buffers:
            buf.free()
        self._buffers = []
        if self._stream is not None:
            cuda_call(self._cudart, self._cudart.cudaStreamDestroy(self._stream),
                      "cudaStreamDestroy")
            self._stream = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
