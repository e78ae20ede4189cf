"""Quality vs speed: the edge trade-off between generator width and image quality.

Generators of width ``ngf`` 16 / 32 / 64 are trained *the same short way* by
``benchmarks/facades_quality.py`` (the training loop's own quality benchmark: shared facades,
labels -> photo, direction BtoA, unet_128 = depth 7 at 128x128, resize 143 -> random crop 128 +
flip, basic D, reference losses and optimiser, seed 0, the same number of iterations for every
width, the last 40 pairs held out and never trained on). It reports held-out L1 / PSNR / SSIM
before and after training. This module adds, per width, the latency of the trained model at
128x128: exported with ``export.to_onnx.export_model`` and run by ONNX Runtime FP32 (CPU),
interleaved with PyTorch FP32 eager, all widths in one timing loop.

A short run is far from the paper's 200 epochs: absolute quality is low, the comparison between
widths under the same budget is the point. Skips with a clear reason where the shared facades
are absent (they live outside the repository) or a piece it calls is missing.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import FACADES, interleaved, log, optional
from pix2pix_edge.runtime.machine import usable_cpus
from pix2pix_edge.runtime.stats import latency_stats

SIDE = 128  # facades_quality trains unet_128 (depth 7) at 128x128
LEVEL_CONFIG: dict[str, dict[str, Any]] = {
    # smoke: proves the plumbing, numbers mean nothing
    # heldout_n: score that many of the 40 held-out pairs (SSIM is most of the section's time);
    # threads 1: shares a busy CPU far better than torch's default
    "smoke": dict(widths=[4], iters=2, reps=3, budget_s=1.0, heldout_n=2, threads=1),
    "quick": dict(widths=[16], iters=15, reps=10, budget_s=3.0, heldout_n=8, threads=1),
    "full": dict(widths=[16, 32, 64], iters=1000, reps=40, budget_s=20.0),
}


def train_one(fq, ngf: int, iters: int, workdir: Path, heldout_n: int | None = None,
              threads: int = 0) -> dict:
    """Train and evaluate one width with benchmarks/facades_quality.py; keep its run."""
    run, out = workdir / f"ngf{ngf}", workdir / f"quality_ngf{ngf}.json"
    rc = fq.main(["--ngf", str(ngf), "--iters", str(iters), "--run", str(run), "--json", str(out),
                  "--threads", str(threads), *(["--heldout-n", str(heldout_n)] if heldout_n else [])])
    if rc or not out.is_file():
        raise RuntimeError(f"benchmarks/facades_quality.py --ngf {ngf} exited with {rc}, no result")
    d = json.loads(out.read_text(encoding="utf-8"))
    mode = d.get("recorded_norm_mode", "per-image")
    after, before = d["after"][mode], d["before"][mode]
    return {
        "ngf": ngf, "model": d.get("model"), "iterations": d["iterations"],
        "train_s_per_iter": d.get("seconds_per_iter_median"), "train_precision": d.get("precision"),
        "norm_mode": mode, "l1": after["l1"], "psnr": after["psnr"], "ssim": after["ssim"],
        "l1_untrained": before["l1"], "psnr_untrained": before["psnr"],
        "ssim_untrained": before["ssim"], "n_heldout": d.get("held_out_n"),
        "psnr_running_stats": (d["after"].get("running") or {}).get("psnr"),
        "_baseline": d.get("baseline_output_equals_input"), "_run": run,
    }


def time_models(rows: list[dict], cfg: dict, workdir: Path) -> None:
    """Latency of every trained model, ORT FP32 and PyTorch FP32, interleaved in one loop."""
    import numpy as np
    import torch
    from .inference import ort_session
    from pix2pix_edge.export.to_onnx import count_macs, export_model
    from pix2pix_edge.train.checkpoint import load_generator
    from pix2pix_edge.train.models import inference_copy

    threads = usable_cpus()
    torch.set_num_threads(threads)
    side = SIDE
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (1, 3, side, side))
                         .astype(np.float32))
    x_np = x.numpy()
    fns = {}
    keep = []  # sessions and models stay alive while timing
    for r in rows:
        G, _ = load_generator(r["_run"])
        model = inference_copy(G, "per-image")
        r["params"] = sum(p.numel() for p in model.parameters())
        r["gflop"] = round(2 * count_macs(model, side, side) / 1e9, 3)
        path = export_model(model, workdir / f"q{r['ngf']}.onnx", height=side, width=side)
        sess = ort_session(path, threads)  # the runtime's backend, as in the inference section
        keep += [model, sess]

        def run_torch(m=model):
            with torch.inference_mode():
                return m(x)

        fns[f"ort {r['ngf']}"] = lambda s=sess: s.infer(x_np)
        fns[f"torch {r['ngf']}"] = run_torch
    samples = interleaved(fns, reps=cfg["reps"], warmup=2, budget_s=cfg["budget_s"])
    for r in rows:
        ort_s, torch_s = latency_stats(samples[f"ort {r['ngf']}"]), latency_stats(samples[f"torch {r['ngf']}"])
        r.update(latency_ms=ort_s["p50_ms"], latency_p90_ms=ort_s["p90_ms"], fps=ort_s["fps"],
                 latency_backend=f"ort-fp32 CPU, {side}x{side}",
                 torch_latency_ms=torch_s["p50_ms"], latency_n=ort_s["n"])


def run(level: str = "full", iters: int | None = None, widths=None) -> dict[str, Any]:
    """The quality-vs-speed section. ``iters`` / ``widths`` override the level's settings."""
    if not (FACADES / "train").is_dir():
        return {"skipped": f"shared facades dataset not found at {FACADES} (it lives outside "
                           "the repository; docs/development.md, Test data, says what goes where)"}
    fq, why = optional(f"{__package__}.facades_quality")
    if fq is None:
        return {"skipped": why}
    for module in ("pix2pix_edge.export.to_onnx", "onnxruntime"):
        if optional(module)[0] is None:
            return {"skipped": optional(module)[1]}
    cfg = dict(LEVEL_CONFIG[level])
    if iters:
        cfg["iters"] = int(iters)
    if widths:
        cfg["widths"] = [int(w) for w in widths]
    setup = (f"unet_128 (depth 7) at {SIDE}x{SIDE}, basic D, {cfg['iters']} iterations batch 1, "
             f"seed 0, last 40 facades pairs held out, labels -> photo"
             + (f", scored on {cfg['heldout_n']} of them" if cfg.get("heldout_n") else ""))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        for ngf in cfg["widths"]:
            log(f"quality: training ngf {ngf} ({setup})")
            r = train_one(fq, ngf, cfg["iters"], Path(tmp), cfg.get("heldout_n"), cfg.get("threads", 0))
            log(f"  ngf {ngf}: PSNR {r['psnr']} dB (untrained {r['psnr_untrained']}), "
                f"SSIM {r['ssim']}, {r['train_s_per_iter']} s/it")
            rows.append(r)
        log("quality: timing the trained models")
        time_models(rows, cfg, Path(tmp))
    baseline = rows[0]["_baseline"] if rows else None
    for r in rows:
        r.pop("_run")
        r.pop("_baseline")
    return {"config": cfg, "setup": setup, "rows": rows, "baseline_output_equals_input": baseline,
            "note": "metrics on [0, 1] images, held-out pairs, per-image normalisation (the "
                    "recorded inference mode); SSIM: 11x11 Gaussian window (train/evaluate.py); "
                    "latency: the trained model, ORT FP32 CPU and PyTorch FP32, batch 1"}


if __name__ == "__main__":  # python -m benchmarks.quality_vs_speed [level] [iters]
    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "quick",
                         int(sys.argv[2]) if len(sys.argv) > 2 else None), indent=1, default=str))
