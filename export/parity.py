"""Run an exported model the way users will, and compare outputs.

The parity check runs the ONNX file through the runtime's own backend
(``runtime.backends.onnxruntime.OnnxRuntimeBackend``) so it exercises the code users run; when
that module is absent it falls back to a plain ONNX Runtime CPU session, tuned the same way, and
says so in the report. Only the CPU provider is asked for: CUDA / TensorRT providers are listed
by onnxruntime-gpu here but cannot load (REFERENCE.md: only request providers that can load).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from pix2pix_edge.runtime.machine import physical_cores
from pix2pix_edge.runtime.stats import latency_stats

Runner = Callable[[np.ndarray], np.ndarray]


def cpu_threads() -> int:
    """The threads the runtime's ONNX Runtime backend computes with by default: the physical
    cores this process may use (runtime.machine)."""
    return physical_cores()


def ort_session(path: str, threads: int | None = None):
    """A CPU ONNX Runtime session: all graph optimisations, one intra-op thread per core,
    sequential execution (a U-Net is one chain of big convolutions: inter-op parallelism only
    adds scheduling overhead), no spinning pool threads (measured in
    benchmarks/onnx_vs_torch.py: spinning costs time on a shared CPU; same as the runtime)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or cpu_threads()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def onnx_runner(path: str, threads: int | None = None) -> tuple[Runner, str]:
    """``(infer, description)`` for an ONNX file: the runtime backend when it exists."""
    try:
        from pix2pix_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend
    except ImportError:
        OnnxRuntimeBackend = None
    if OnnxRuntimeBackend is not None:
        try:
            backend = OnnxRuntimeBackend(str(path), providers=["CPUExecutionProvider"],
                                         threads=threads)
        except TypeError:  # another signature than agreed: use the plain session
            backend = None
        if backend is not None:
            return backend.infer, "runtime OnnxRuntimeBackend (CPU provider)"
    sess = ort_session(path, threads)
    inp = sess.get_inputs()[0]
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32

    def infer(batch: np.ndarray) -> np.ndarray:
        return sess.run(None, {inp.name: np.ascontiguousarray(batch, dtype=dtype)})[0]

    return infer, "onnxruntime InferenceSession (CPU provider; runtime backend not present)"


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 2.0) -> float:
    """PSNR in dB for arrays in [-1, 1] (peak-to-peak 2); inf when identical."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range ** 2 / mse))


def compare(reference: list[np.ndarray], outputs: list[np.ndarray]) -> dict:
    """Worst case over pairs of arrays: max |difference| and the lowest PSNR."""
    max_abs = max(float(np.max(np.abs(np.asarray(r, np.float64) - np.asarray(o, np.float64))))
                  for r, o in zip(reference, outputs))
    min_psnr = min(psnr(r, o) for r, o in zip(reference, outputs))
    return {"max_abs": max_abs, "psnr_db": min_psnr, "n": len(reference)}


def median_latency_ms(fn: Callable[[], object], runs: int = 5, warmup: int = 1) -> float:
    """p50 of ``runs`` timed calls after ``warmup`` untimed ones (runtime.stats)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return latency_stats(times)["p50_ms"]
