"""Quality vs speed: the edge trade-off between generator width and image quality.

Generators of width ``ngf`` 16 / 32 / 64 are trained *the same short way* with the project's own
training loop (``train.loop.train``) on the shared facades (labels -> photo, direction BtoA,
unet_128 = depth 7 at 128x128, resize 143 -> random crop 128 + flip, reference optimiser and
losses, the same number of iterations and seed for every width). The last 40 pairs are held out
and never trained on. Then, per width:

* held-out L1 / PSNR / SSIM with ``train.evaluate`` (per-image normalisation, the recorded
  inference choice), and the same metrics for the untrained network as a baseline;
* latency of the trained model at 128x128, exported with ``export.to_onnx.export_model`` and run
  by ONNX Runtime FP32 (CPU), interleaved with PyTorch FP32 eager, all widths in one timing loop.

A short run is far from the paper's 200 epochs: absolute quality is low, the comparison between
widths under the same budget is the point. Skips with a clear reason where the shared facades
are absent (they live outside the repository).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import FACADES, cpu_cores, interleaved, log, optional, summarize

HOLDOUT = 40
LEVEL_CONFIG: dict[str, dict[str, Any]] = {
    # smoke: proves the plumbing in seconds (tests), numbers mean nothing
    "smoke": dict(widths=[4], depth=5, size=64, load=72, iters=2, holdout=8, reps=3, budget_s=1.0,
                  workers=0),
    "quick": dict(widths=[16], depth=7, size=128, load=143, iters=60, holdout=HOLDOUT, reps=10,
                  budget_s=4.0),
    "full": dict(widths=[16, 32, 64], depth=7, size=128, load=143, iters=600, holdout=HOLDOUT,
                 reps=40, budget_s=20.0),
}


def _heldout_dataset(cfg: dict):
    from train.data import PairedDataset, list_pairs, split_holdout

    files = split_holdout(list_pairs(FACADES, "train"), cfg["holdout"])[1]
    return PairedDataset(FACADES, "train", direction="BtoA", load_size=cfg["size"],
                         crop_size=cfg["size"], augment=False, files=files)


def train_one(ngf: int, cfg: dict, workdir: Path) -> dict:
    """Train one width, evaluate it (and its untrained self) on the held-out pairs."""
    import torch
    from train.checkpoint import load_generator
    from train.evaluate import evaluate, evaluate_generator
    from train.loop import TrainOptions, train
    from train.models import UNetGenerator, count_parameters, inference_copy, init_weights

    run = workdir / f"ngf{ngf}"
    opts = TrainOptions(data=str(FACADES), run=str(run), direction="BtoA", load_size=cfg["load"],
                        crop_size=cfg["size"], holdout_last=cfg["holdout"], depth=cfg["depth"],
                        ngf=ngf, max_iters=cfg["iters"], seed=0, progress=False,
                        workers=cfg.get("workers", -1),
                        tensorboard=False, log_every=max(1, cfg["iters"] // 5), save_every=1000,
                        inference_norm="per-image")
    summary = train(opts)
    metrics = evaluate(run, FACADES, holdout_last=cfg["holdout"], out=workdir / f"eval{ngf}",
                       log=lambda *a, **k: None)
    m = metrics["metrics"]["per-image"]

    torch.manual_seed(0)  # the same init train() starts from (seed 0), never trained
    untrained = inference_copy(init_weights(UNetGenerator(depth=cfg["depth"], ngf=ngf)),
                               "per-image")
    base, _, _ = evaluate_generator(untrained, _heldout_dataset(cfg), keep=0)
    G, _ = load_generator(run)
    return {
        "ngf": ngf, "depth": cfg["depth"], "size": cfg["size"],
        "params": count_parameters(G), "iterations": summary["iterations"],
        "train_s_per_iter": round(summary["seconds_per_iter"] or 0.0, 4),
        "train_precision": summary.get("precision"),
        "l1": round(m["l1"], 4), "psnr": round(m["psnr"], 2), "ssim": round(m["ssim"], 4),
        "l1_untrained": round(base["l1"], 4), "psnr_untrained": round(base["psnr"], 2),
        "ssim_untrained": round(base["ssim"], 4), "n_heldout": m["n"],
        "_run": run,
    }


def time_models(rows: list[dict], cfg: dict, workdir: Path) -> None:
    """Latency of every trained model, ORT FP32 and PyTorch FP32, interleaved in one loop."""
    import onnxruntime as ort
    import torch
    from export.to_onnx import count_macs, export_model
    from train.checkpoint import load_generator
    from train.models import inference_copy

    threads = cpu_cores()
    torch.set_num_threads(threads)
    side = cfg["size"]
    x = torch.from_numpy(__import__("numpy").random.default_rng(0).uniform(
        -1, 1, (1, 3, side, side)).astype("float32"))
    x_np = x.numpy()
    fns = {}
    keep = []  # sessions and models stay alive while timing
    for r in rows:
        G, _ = load_generator(r["_run"])
        model = inference_copy(G, "per-image")
        r["gflop"] = round(2 * count_macs(model, side, side) / 1e9, 3)
        path = export_model(model, workdir / f"q{r['ngf']}.onnx", height=side, width=side)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = threads
        so.log_severity_level = 3
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        keep += [model, sess]

        def run_torch(m=model):
            with torch.inference_mode():
                return m(x)

        fns[f"ort {r['ngf']}"] = lambda s=sess, n=name: s.run(None, {n: x_np})
        fns[f"torch {r['ngf']}"] = run_torch
    samples = interleaved(fns, reps=cfg["reps"], warmup=2, budget_s=cfg["budget_s"])
    for r in rows:
        ort_s, torch_s = summarize(samples[f"ort {r['ngf']}"]), summarize(samples[f"torch {r['ngf']}"])
        r.update(latency_ms=ort_s["p50_ms"], latency_p90_ms=ort_s["p90_ms"], fps=ort_s["fps"],
                 latency_backend=f"ort-fp32 CPU, {side}x{side}",
                 torch_latency_ms=torch_s["p50_ms"], latency_n=ort_s["n"])


def run(level: str = "full", iters: int | None = None) -> dict[str, Any]:
    """The quality-vs-speed section. ``iters`` overrides the level's training length."""
    if not (FACADES / "train").is_dir():
        return {"skipped": f"shared facades dataset not found at {FACADES} (it lives outside "
                           "the repository; see /work/shared/datasets/README.md)"}
    for module in ("train.loop", "train.evaluate", "export.to_onnx"):
        mod, why = optional(module)
        if mod is None:
            return {"skipped": why}
    cfg = dict(LEVEL_CONFIG[level])
    if iters:
        cfg["iters"] = int(iters)
    setup = (f"unet depth {cfg['depth']} at {cfg['size']}x{cfg['size']}, {cfg['iters']} iterations "
             f"batch 1 (same seed), last {cfg['holdout']} pairs held out, labels -> photo")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        for ngf in cfg["widths"]:
            log(f"quality: training ngf {ngf} ({setup})")
            r = train_one(ngf, cfg, Path(tmp))
            log(f"  ngf {ngf}: PSNR {r['psnr']} dB (untrained {r['psnr_untrained']}), "
                f"SSIM {r['ssim']}, {r['train_s_per_iter']} s/it")
            rows.append(r)
        log("quality: timing the trained models")
        time_models(rows, cfg, Path(tmp))
    for r in rows:
        r.pop("_run")
    return {"config": cfg, "setup": setup, "rows": rows,
            "note": "metrics on [0, 1] images; SSIM: 11x11 Gaussian window (train/evaluate.py); "
                    "latency: trained model, per-image normalisation, ORT FP32 CPU"}


if __name__ == "__main__":  # python -m benchmarks.quality_vs_speed [level] [iters]
    import json
    import sys

    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "quick",
                         int(sys.argv[2]) if len(sys.argv) > 2 else None), indent=1, default=str))
