"""Which ONNX Runtime session options make the generator faster on this CPU? Measured, side by side.

The runtime's ONNX Runtime backend (runtime/backends/onnxruntime.py) is compared, interleaved
per repetition, with variants that change one thing each:

* ``ort-defaults``   a bare ``InferenceSession`` (ORT's own defaults);
* ``backend``        what ``open_backend`` builds: ORT_ENABLE_ALL, sequential, one intra-op
                     thread per physical core, no spinning, plain ``run``;
* ``spin``           the same with ORT's default spinning pool threads;
* ``threads=1``      one intra-op thread;
* ``opt=basic`` / ``opt=extended``  fewer graph optimisations;
* ``io_binding``     ``run_with_iobinding`` with a pre-bound CPU input/output.

Interleaving puts every session's thread pool in one process, where a spinning pool also slows
its neighbours; ``--separate`` therefore also times the thread/spin variants each in its own
process, alternating A, B, A, B (``--rounds``), which is what a real run sees.

``--pipeline FRAMES`` runs the whole video pipeline (runtime.pipeline) with spinning on and off.

Usage: ``python -m benchmarks.ort_session_options [--ngf 16] [--size 256] [--reps 40]
[--separate] [--pipeline 80]``
Prints medians and writes benchmarks/results/ort_session_options.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS_DIR, interleaved, machine_info, write_json
from pix2pix_edge.runtime.stats import latency_stats


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
            out = subprocess.run([sys.executable, "-m", "benchmarks.ort_session_options",
                                  "--child", name, "--model", str(model), "--size", str(size),
                                  "--reps", str(reps)], capture_output=True, text=True, check=True)
            samples[name] += json.loads(out.stdout.strip().splitlines()[-1])
    return {name: latency_stats(s) for name, s in samples.items()}


def pipeline_spin(model: Path, frames: int, rounds: int) -> dict:
    """End-to-end ``run_pipeline`` on the shared video (decode -> infer -> encode to a temporary
    mp4) with spinning on and off, alternating; fps per run."""
    import os

    from benchmarks.common import VIDEO
    from pix2pix_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend
    from pix2pix_edge.runtime.pipeline import PipelineOptions, run_pipeline
    from pix2pix_edge.runtime.video import open_source
    if not VIDEO.is_file():
        return {"skipped": f"{VIDEO} not found"}
    fps: dict[str, list[float]] = {"spin": [], "no-spin": []}
    for r in range(rounds):
        for name in (("spin", "no-spin") if r % 2 == 0 else ("no-spin", "spin")):
            be = OnnxRuntimeBackend(model, providers=["cpu"], spin=name == "spin")
            with tempfile.TemporaryDirectory() as d, open_source(str(VIDEO)) as source:
                st = run_pipeline(be, source, os.path.join(d, "o.mp4"),
                                  PipelineOptions(max_frames=frames))
            fps[name].append(round(st.fps, 2))
            be.close()
    return {name: {"fps": v, "median_fps": float(np.median(v))} for name, v in fps.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--separate", action="store_true",
                    help="also time thread/spin variants in separate processes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pipeline", type=int, default=0, metavar="FRAMES",
                    help="also run the video pipeline with spinning on/off, FRAMES frames each")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--model", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--budget", type=float, default=60.0, help="seconds of timing at most")
    ap.add_argument("--out", default=str(RESULTS_DIR / "ort_session_options.json"))
    args = ap.parse_args(argv)
    if args.child:
        return child(args.model, args.size, args.child, args.reps)

    import onnxruntime as ort

    from pix2pix_edge.runtime.backends import open_backend
    from pix2pix_edge.runtime.machine import physical_cores

    tmp = tempfile.TemporaryDirectory()
    model = export_generator(Path(tmp.name) / "g.onnx", args.ngf, args.size)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, args.size, args.size)).astype(np.float32)
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

    samples = interleaved(fns, reps=args.reps, warmup=3, budget_s=args.budget)
    rows = {name: latency_stats(s) for name, s in samples.items()}
    print(f"unet_256 ngf {args.ngf} at {args.size}x{args.size}, batch 1, FP32, "
          f"CPU provider, {cores} physical cores; interleaved, median of {rows['backend']['n']}")
    print(f"{'variant':<14} {'p50 ms':>8} {'p90 ms':>8} {'fps':>8}")
    for name, r in rows.items():
        print(f"{name:<14} {r['p50_ms']:>8.2f} {r['p90_ms']:>8.2f} {r['fps']:>8.1f}")
    sep = None
    if args.separate:
        sep = separate(model, args.size, reps=max(5, args.reps // 2), rounds=args.rounds)
        print(f"separate processes, alternating, {args.rounds} rounds (runtime backend):")
        for name, r in sep.items():
            print(f"{name:<24} {r['p50_ms']:>8.2f} {r['p90_ms']:>8.2f} {r['fps']:>8.1f}")
    pipe = None
    if args.pipeline:
        pipe = pipeline_spin(model, args.pipeline, args.rounds)
        print(f"pipeline fps on the shared video ({args.pipeline} frames, {args.rounds} rounds):")
        for name, r in pipe.items():
            print(f"{name:<10} {r}")
    out = write_json(args.out, {"machine": machine_info(), "ngf": args.ngf, "size": args.size,
                                "cores": cores, "onnxruntime": ort.__version__,
                                "interleaved": rows, "separate": sep, "pipeline": pipe})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
