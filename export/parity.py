"""Run an exported model the way users will, and compare outputs.

The parity check runs the ONNX file through the runtime's own backend
(``runtime.backends.onnxruntime.OnnxRuntimeBackend``), so it exercises the code users run. There
is no other path: where that backend cannot load (onnxruntime not installed, the module missing)
the export stops with a one-line :class:`~pix2pix_edge.runtime.errors.Unavailable` (exit 5)
before any work. Only the CPU provider is asked for: CUDA / TensorRT providers are listed by
onnxruntime-gpu here but cannot load (REFERENCE.md: only request providers that can load).

:func:`ort_session` is a plain tuned session for the benchmarks that compare session variants
(benchmarks/int8.py); exports never use it.
"""

from __future__ import annotations

import importlib
import time
from typing import Callable

import numpy as np

from pix2pix_edge.runtime.errors import Unavailable
from pix2pix_edge.runtime.machine import physical_cores
from pix2pix_edge.runtime.stats import latency_stats

Runner = Callable[[np.ndarray], np.ndarray]
BACKEND = "runtime OnnxRuntimeBackend (CPU provider)"   # what the report says ran the check


def backend_class():
    """``OnnxRuntimeBackend``, its module and onnxruntime loaded; a one-line Unavailable error
    (exit 5) when they cannot be."""
    try:
        ort_backend = importlib.import_module("pix2pix_edge.runtime.backends.onnxruntime")
    except ImportError as e:
        raise Unavailable(f"the export parity check runs through the runtime's ONNX Runtime "
                          f"backend, which cannot be imported ({e}): reinstall pix2pix-edge") from None
    ort_backend.import_onnxruntime()
    return ort_backend.OnnxRuntimeBackend


def onnx_backend(path, threads: int | None = None):
    """The runtime's backend on ``path``, CPU provider, ``threads`` intra-op threads (default:
    the physical cores, as ``pix2pix run``)."""
    return backend_class()(str(path), providers=["CPUExecutionProvider"], threads=threads)


def onnx_runner(path, threads: int | None = None) -> tuple[Runner, str]:
    """``(infer, description)`` for an ONNX file, through :func:`onnx_backend`."""
    return onnx_backend(path, threads).infer, BACKEND


def ort_session(path: str, threads: int | None = None):
    """A CPU ONNX Runtime session for the benchmarks, tuned as the runtime's backend: all graph
    optimisations, one intra-op thread per core, sequential execution (a U-Net is one chain of
    big convolutions: inter-op parallelism only adds scheduling overhead), no spinning pool
    threads (measured by benchmarks/ort_session_options.py: spinning costs time on a shared CPU)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or physical_cores()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


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


def median_latencies_ms(fns: dict[str, Callable[[], object]], runs: int = 5,
                        warmup: int = 1) -> dict[str, float]:
    """p50 (runtime.stats) of each function over ``runs`` timed calls after ``warmup`` untimed
    ones, called in turns (one call of each per round) so a change of load hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: latency_stats(t)["p50_ms"] for name, t in times.items()}
