"""Which ONNX Runtime session options make the generator faster on this CPU? Measured, side by side.

The runtime's ONNX Runtime backend (runtime/backends/onnxruntime.py) is compared, interleaved
per repetition, with variants that change one thing each:

* ``ort-defaults``   a bare ``InferenceSession`` (ORT's own defaults);
* ``backend``        what ``open_backend`` builds: ORT_ENABLE_ALL, sequential, one intra-op
                     thread per physical core, plain ``run``;
* ``threads=1``      one intra-op thread;
* ``no-spin``        ``session.intra_op.allow_spinning = 0`` (idle pool threads sleep instead of
                     spinning, which leaves the cores to the video threads in a pipeline);
* ``opt=basic`` / ``opt=extended``  fewer graph optimisations;
* ``io_binding``     ``run_with_iobinding`` with a pre-bound CPU input/output.

Usage: ``python -m benchmarks.ort_session_options [--ngf 16] [--size 256] [--reps 40]``
Prints medians and writes benchmarks/results/ort_session_options.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS_DIR, interleaved, machine_info, summarize, write_json


def export_generator(path: Path, ngf: int, size: int, depth: int = 8) -> Path:
    import torch

    from train.models import UNetGenerator, inference_copy, init_weights
    torch.manual_seed(0)
    g = inference_copy(init_weights(UNetGenerator(depth=depth, ngf=ngf)), "running")
    torch.onnx.export(g, (torch.randn(1, 3, size, size),), str(path), dynamo=False,
                      opset_version=17, input_names=["input"], output_names=["output"])
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--budget", type=float, default=60.0, help="seconds of timing at most")
    ap.add_argument("--out", default=str(RESULTS_DIR / "ort_session_options.json"))
    args = ap.parse_args(argv)

    import onnxruntime as ort

    from runtime.backends import open_backend
    from runtime.backends.onnxruntime import physical_cores

    tmp = tempfile.TemporaryDirectory()
    model = export_generator(Path(tmp.name) / "g.onnx", args.ngf, args.size)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, args.size, args.size)).astype(np.float32)
    cores = physical_cores()

    def session(threads=cores, level="ORT_ENABLE_ALL", spin=True):
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
    bound = session()
    binding = bound.io_binding()
    y = np.empty_like(x)
    binding.bind_cpu_input("input", x)
    binding.bind_output("output", "cpu", 0, np.float32, y.shape, y.ctypes.data)

    fns = {
        "ort-defaults": plain(bare),
        "backend": lambda: be.infer(x),
        "threads=1": plain(session(threads=1)),
        "no-spin": plain(session(spin=False)),
        "opt=basic": plain(session(level="ORT_ENABLE_BASIC")),
        "opt=extended": plain(session(level="ORT_ENABLE_EXTENDED")),
        "io_binding": lambda: bound.run_with_iobinding(binding),
    }
    ref = be.infer(x)
    bound.run_with_iobinding(binding)
    assert np.allclose(y, ref, atol=1e-5), "io_binding output differs"

    samples = interleaved(fns, reps=args.reps, warmup=3, budget_s=args.budget)
    rows = {name: summarize(s) for name, s in samples.items()}
    print(f"unet_256 ngf {args.ngf} at {args.size}x{args.size}, batch 1, FP32, "
          f"CPU provider, {cores} physical cores; interleaved, median of {rows['backend']['n']}")
    print(f"{'variant':<14} {'p50 ms':>8} {'p90 ms':>8} {'fps':>8}")
    for name, r in rows.items():
        print(f"{name:<14} {r['p50_ms']:>8.2f} {r['p90_ms']:>8.2f} {r['fps']:>8.1f}")
    out = write_json(args.out, {"machine": machine_info(), "ngf": args.ngf, "size": args.size,
                                "cores": cores, "onnxruntime": ort.__version__, "results": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
