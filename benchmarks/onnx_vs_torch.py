"""ONNX Runtime (CPU, FP32) vs PyTorch eager on the same generator, input and machine.

For unet_256 (BatchNorm) at 256x256, batch 1, ``ngf`` 64 / 32 / 16, the model is exported with
``export.to_onnx.export_model`` (BatchNorm folded for ``running``; InstanceNormalization for
``per-image``) and these run side by side, interleaved per repetition
(benchmarks.common.interleaved), on one input:

* ``torch-eager``  ``inference_copy(G, mode)`` under ``torch.inference_mode()``, FP32, NCHW,
                   torch's default intra-op threads (one per core);
* ``ort-default``  a bare ``onnxruntime.InferenceSession`` (ORT's own defaults);
* ``ort-spin``     ORT_ENABLE_ALL, ORT_SEQUENTIAL, intra-op threads = cores, inter-op 1,
                   pool threads spinning between ops (ORT's default);
* ``ort-tuned``    the same without spinning (``session.intra_op.allow_spinning = 0``), as the
                   runtime's backend (export/parity.py ``ort_session``);
* ``ort-backend``  the runtime's OnnxRuntimeBackend (what ``pix2pix run`` uses), if present.

Also records max |ONNX - torch| per model, so a fast but wrong export would show.

Usage: ``python -m benchmarks.onnx_vs_torch [--quick] [--reps N]``; prints medians and writes
benchmarks/results/onnx_vs_torch.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS_DIR, interleaved, log, machine_info, markdown_table, write_json
from pix2pix_edge.runtime.machine import usable_cpus
from pix2pix_edge.runtime.stats import latency_stats

FULL = [(64, "running"), (64, "per-image"), (32, "running"), (16, "running")]
QUICK = [(16, "running"), (16, "per-image")]


def bench_one(ngf: int, mode: str, side: int, reps: int, budget_s: float, workdir: Path) -> dict:
    import onnxruntime as ort
    import torch

    from pix2pix_edge.export.parity import ort_session
    from pix2pix_edge.export.to_onnx import export_model, synthetic_images
    from pix2pix_edge.train.models import UNetGenerator, inference_copy, init_weights

    torch.manual_seed(0)
    g = init_weights(UNetGenerator(depth=8, ngf=ngf, norm="batch")).train()
    with torch.no_grad():  # give BatchNorm real running statistics
        for _ in range(2):
            g(torch.randn(2, 3, side, side))
    model = inference_copy(g, mode)
    path = export_model(model, workdir / f"g{ngf}_{mode}.onnx", height=side, width=side)
    x = synthetic_images(1, side, side)
    xt = torch.from_numpy(x)

    default = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    tuned = ort_session(str(path))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = usable_cpus()
    opts.inter_op_num_threads = 1
    spin = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    fns = {
        "torch-eager": lambda: model(xt),
        "ort-default": lambda: default.run(None, {"input": x})[0],
        "ort-spin": lambda: spin.run(None, {"input": x})[0],
        "ort-tuned": lambda: tuned.run(None, {"input": x})[0],
    }
    try:
        from pix2pix_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend

        backend = OnnxRuntimeBackend(str(path), providers=["CPUExecutionProvider"])
        fns["ort-backend"] = lambda: backend.infer(x)
    except ImportError:
        pass
    with torch.inference_mode():
        ref = model(xt).numpy()
        max_abs = float(np.abs(tuned.run(None, {"input": x})[0] - ref).max())
        samples = interleaved(fns, reps=reps, warmup=3, budget_s=budget_s)
    stats = {name: latency_stats(s) for name, s in samples.items()}
    torch_ms = stats["torch-eager"]["p50_ms"]
    row = {"ngf": ngf, "norm_mode": mode, "size": side, "max_abs_onnx_vs_torch": max_abs,
           "torch_threads": torch.get_num_threads(), "stats": stats}
    for name in fns:
        row[f"{name}_ms"] = stats[name]["p50_ms"]
    row["speedup_ort_tuned"] = round(torch_ms / stats["ort-tuned"]["p50_ms"], 3)
    row["onnx_not_slower"] = stats["ort-tuned"]["p50_ms"] <= torch_ms
    return row


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="ngf 16 only, fewer repetitions")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per backend (upper bound)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=RESULTS_DIR / "onnx_vs_torch.json")
    args = ap.parse_args(argv)
    models = QUICK if args.quick else FULL
    reps = args.reps or (10 if args.quick else 40)
    budget = 8.0 if args.quick else 40.0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for ngf, mode in models:
            log(f"unet_256 ngf {ngf} {mode} at {args.size}: exporting and timing")
            rows.append(bench_one(ngf, mode, args.size, reps, budget, Path(tmp)))
            r = rows[-1]
            log(f"  torch {r['torch-eager_ms']:.1f} ms | ort-default {r['ort-default_ms']:.1f} | "
                f"ort-spin {r['ort-spin_ms']:.1f} | ort-tuned {r['ort-tuned_ms']:.1f} | "
                f"max|diff| {r['max_abs_onnx_vs_torch']:.1e}")
    result = {"benchmark": "onnx_vs_torch", "machine": machine_info(), "cores": usable_cpus(),
              "batch": 1, "rows": rows,
              "all_onnx_not_slower": all(r["onnx_not_slower"] for r in rows)}
    cols = [("ngf", "ngf", ""), ("norm_mode", "norm", ""), ("torch-eager_ms", "torch eager ms", ".1f"),
            ("ort-default_ms", "ORT default ms", ".1f"), ("ort-spin_ms", "ORT spin ms", ".1f"),
            ("ort-tuned_ms", "ORT tuned (no spin) ms", ".1f"),
            ("ort-backend_ms", "ORT backend ms", ".1f"), ("speedup_ort_tuned", "torch/ORT", ".2f"),
            ("max_abs_onnx_vs_torch", "max |diff|", ".1e")]
    print(markdown_table(rows, cols))
    print(f"ONNX Runtime not slower than PyTorch in every row: {result['all_onnx_not_slower']}")
    write_json(args.out, result)
    log(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
