"""Which ONNX Runtime session options make the generator faster on this CPU? Measured, side by side.

The suite's ``ort`` section (``python -m benchmarks --only ort``). The runtime's ONNX Runtime
backend (runtime/backends/onnxruntime.py) is compared, interleaved per repetition, with variants
that change one thing each:

* ``ort-defaults``   a bare ``InferenceSession`` (ORT's own defaults);
* ``backend``        what ``open_backend`` builds: ORT_ENABLE_ALL, sequential, one intra-op
                     thread per physical core, no spinning, plain ``run``;
* ``spin``           the same with ORT's default spinning pool threads;
* ``threads=1``      one intra-op thread;
* ``opt=basic`` / ``opt=extended``  fewer graph optimisations;
* ``io_binding``     ``run_with_iobinding`` with a pre-bound CPU input/output.

Interleaving puts every session's thread pool in one process, where a spinning pool also slows
its neighbours; the thread / spin variants are therefore also timed each in its own process,
alternating (``separate``), which is what a real run sees; and the whole video pipeline
(runtime.pipeline) runs with spinning on and off (``pipeline``, frames per FPS figure), on the
otherwise idle machine and beside one busy process (``pipeline_busy``: a pure-Python loop that
keeps one core busy, as another job on a shared machine or a Jetson's other work would).

Standalone: ``python -m benchmarks.ort_session_options [--level quick]`` prints the result.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import VIDEO, interleaved, log
from pix2pix_edge.runtime.stats import latency_stats

LEVELS = {
    # smoke (tests only): a depth-5 U-Net at 64x64, numbers mean nothing
    "smoke": dict(ngf=4, depth=5, size=64, reps=3, budget_s=1.0, rounds=1, separate_reps=3, pipeline=0),
    "quick": dict(ngf=16, depth=8, size=256, reps=10, budget_s=5.0, rounds=1, separate_reps=10,
                  pipeline=24),
    "full": dict(ngf=16, depth=8, size=256, reps=40, budget_s=60.0, rounds=4, separate_reps=20,
                 pipeline=300),
}


def export_generator(path: Path, ngf: int, size: int, depth: int = 8) -> Path:
    import torch

    from pix2pix_edge.train.models import UNetGenerator, inference_copy, init_weights
    torch.manual_seed(0)
    g = inference_copy(init_weights(UNetGenerator(depth=depth, ngf=ngf)), "running")
    torch.onnx.export(g, (torch.randn(1, 3, size, size),), str(path), dynamo=False,
                      opset_version=17, input_names=["input"], output_names=["output"])
    return path


SEPARATE = {"spin, 1 thread/core": (True, None), "no-spin, 1 thread/core": (False, None),
            "spin, 1 thread": (True, 1), "no-spin, 1 thread": (False, 1)}


def child(model: str, size: int, variant: str, reps: int) -> None:
    """Time one variant through the runtime's own backend, in this process; print JSON."""
    from pix2pix_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend
    spin, threads = SEPARATE[variant]
    be = OnnxRuntimeBackend(model, providers=["cpu"], threads=threads, spin=spin)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    for _ in range(3):
        be.infer(x)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        be.infer(x)
        times.append(time.perf_counter() - t0)
    print(json.dumps(times))


def separate(model: Path, size: int, reps: int, rounds: int) -> dict:
    samples: dict[str, list[float]] = {name: [] for name in SEPARATE}
    for r in range(rounds):
        names = list(SEPARATE)
        names = names[r % len(names):] + names[:r % len(names)]
        for name in names:
            out = subprocess.run([sys.executable, "-m", "pix2pix_edge.benchmarks.ort_session_options",
                                  "--child", name, "--model", str(model), "--size", str(size),
                                  "--reps", str(reps)], capture_output=True, text=True, check=True)
            samples[name] += json.loads(out.stdout.strip().splitlines()[-1])
    return {name: latency_stats(s) for name, s in samples.items()}


@contextlib.contextmanager
def busy_process(on: bool = True):
    """Another job on the machine while the block runs: a Python loop that keeps one core busy
    (nothing when ``on`` is false)."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    try:
        yield
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()


def pipeline_spin(model: Path, frames: int, rounds: int, busy: bool = False) -> dict:
    """End-to-end ``run_pipeline`` on the shared video (decode -> infer -> encode to a temporary
    mp4) with spinning on and off, alternating; fps per run. ``busy``: beside ``busy_process``."""
    import os

    from pix2pix_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend
    from pix2pix_edge.runtime.pipeline import PipelineOptions, run_pipeline
    from pix2pix_edge.runtime.video import open_source
    if not VIDEO.is_file():
        return {"skipped": f"{VIDEO} not found"}
    fps: dict[str, list[float]] = {"spin": [], "no-spin": []}
    with busy_process(busy):
        for r in range(rounds):
            for name in (("spin", "no-spin") if r % 2 == 0 else ("no-spin", "spin")):
                be = OnnxRuntimeBackend(model, providers=["cpu"], spin=name == "spin")
                with tempfile.TemporaryDirectory() as d, open_source(str(VIDEO)) as source:
                    st = run_pipeline(be, source, os.path.join(d, "o.mp4"),
                                      PipelineOptions(max_frames=frames))
                fps[name].append(round(st.fps, 2))
                be.close()
    return {name: {"fps": v, "median_fps": float(np.median(v))} for name, v in fps.items()}


def interleaved_variants(model: Path, size: int, reps: int, budget_s: float) -> dict:
    """Every session variant in one process, interleaved: p50 / p90 / fps per variant."""
    import onnxruntime as ort

    from pix2pix_edge.runtime.backends import open_backend
    from pix2pix_edge.runtime.machine import physical_cores

    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    cores = physical_cores()

    def session(threads=cores, level="ORT_ENABLE_ALL", spin=False):
        o = ort.SessionOptions()
        o.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        o.intra_op_num_threads = threads
        o.inter_op_num_threads = 1
        if not spin:
            o.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(model), o, providers=["CPUExecutionProvider"])

    def plain(sess):
        return lambda: sess.run(["output"], {"input": x})

    bare = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    be = open_backend(model, providers=["cpu"])
    bound = session()   # same options as the backend
    binding = bound.io_binding()
    y = np.empty_like(x)
    binding.bind_cpu_input("input", x)
    binding.bind_output("output", "cpu", 0, np.float32, y.shape, y.ctypes.data)

    fns = {
        "ort-defaults": plain(bare),
        "backend": lambda: be.infer(x),
        "threads=1": plain(session(threads=1)),
        "spin": plain(session(spin=True)),
        "opt=basic": plain(session(level="ORT_ENABLE_BASIC")),
        "opt=extended": plain(session(level="ORT_ENABLE_EXTENDED")),
        "io_binding": lambda: bound.run_with_iobinding(binding),
    }
    ref = be.infer(x)
    bound.run_with_iobinding(binding)
    assert np.allclose(y, ref, atol=1e-5), "io_binding output differs"
    samples = interleaved(fns, reps=reps, warmup=3, budget_s=budget_s)
    return {name: latency_stats(s) for name, s in samples.items()}


def run(level: str = "full", **opts) -> dict:
    """The ``ort`` section: interleaved variants, separate processes, the pipeline."""
    import onnxruntime as ort

    from pix2pix_edge.runtime.machine import physical_cores

    cfg = {**LEVELS[level], **{k: v for k, v in opts.items() if v is not None}}
    with tempfile.TemporaryDirectory(prefix="bench-ort-") as tmp:
        model = export_generator(Path(tmp) / "g.onnx", cfg["ngf"], cfg["size"], cfg["depth"])
        log("ort: the session variants, interleaved in one process")
        rows = [{"variant": k, **v} for k, v in
                interleaved_variants(model, cfg["size"], cfg["reps"], cfg["budget_s"]).items()]
        log(f"ort: thread / spin variants in separate processes ({cfg['rounds']} rounds)")
        sep = [{"variant": k, **v} for k, v in
               separate(model, cfg["size"], cfg["separate_reps"], cfg["rounds"]).items()]
        pipe = busy = None
        if cfg["pipeline"]:
            log(f"ort: the video pipeline with spinning on and off ({cfg['pipeline']} frames each)")
            pipe = pipeline_spin(model, cfg["pipeline"], cfg["rounds"])
            if not (isinstance(pipe, dict) and "skipped" in pipe):
                log("ort: the same beside one busy process")
                busy = pipeline_spin(model, cfg["pipeline"], cfg["rounds"], busy=True)
    return {"model": f"unet depth {cfg['depth']} ngf {cfg['ngf']} at {cfg['size']}x{cfg['size']}, "
                     "FP32, batch 1, random weights",
            "config": cfg, "physical_cores": physical_cores(), "onnxruntime": ort.__version__,
            "rows": rows, "separate": sep, "pipeline": pipe, "pipeline_busy": busy}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--level", choices=list(LEVELS), default="full")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--model", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=256, help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, default=40, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.model, args.size, args.child, args.reps)
    print(json.dumps(run(args.level), indent=1))


if __name__ == "__main__":
    main()
