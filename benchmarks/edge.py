"""The edge model table: a teacher, and edge-sized students at one budget, on two real tasks.

For each task, each with a held-out split that is never trained on,

* facades labels -> photo (``../shared/datasets/facades``, direction BtoA, the last 40 held out),
* edges -> photo (``../shared/datasets/edges2shoes_handbags``, direction BtoA, every tenth pair
  held out: shoes and handbags alike),

it trains a teacher (unet_128 = depth 7, ngf 64, the reference objective) and, at the same student
budget (iterations, batch 1, seed 0), ngf-16 students (DEFAULT_VARIANTS): from scratch (``pix2pix
train``), from scratch with pix2pixHD's objective (``--d-scales 2 --lambda-fm 10``: compared with
the reference objective at equal iterations), distilled (``pix2pix distill``, its defaults),
distilled with the resize decoder, distilled without a discriminator (as OMGD) and distilled with
the separable decoder. Columns: parameters, GFLOP, held-out L1 / PSNR / SSIM against the ground
truth, PSNR against the teacher's output, ONNX Runtime CPU FP32 p50 latency (all models of a task
interleaved in one timing loop, the load average recorded), speed-up over the teacher. Also a PNG
grid (input | teacher | distilled | scratch | target) per task and a quality-vs-latency plot.

    python -m benchmarks --only edge                         # full: 128x128, see LEVELS
    python -m benchmarks --only edge --edge-runs DIR         # keep runs in DIR, reuse finished ones
    python -m benchmarks --only edge --edge-variants distilled-noFeat,distilled-noGT  # ablations
    python -m benchmarks.edge quick                          # one section, printed as JSON

Sizes fit a developer's machine: 128x128, a few hundred iterations. Far from the paper's 200
epochs, so absolute quality is low: the comparison at equal budgets is the point.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import (FACADES, FACADES_HELD_OUT, RESULTS_DIR, SHARED, held_out_dataset,
                     interleaved, log)
from pix2pix_edge.runtime.machine import usable_cpus as cpu_cores
from pix2pix_edge.runtime.stats import latency_stats as summarize

EDGES = SHARED / "datasets" / "edges2shoes_handbags"
TASKS = {
    "facades": dict(data=FACADES, direction="BtoA", holdout_last=FACADES_HELD_OUT.last,
                    holdout_every=0,
                    what="facades labels → photo, last 40 of 400 held out"),
    "edges": dict(data=EDGES, direction="BtoA", holdout_last=0, holdout_every=10,
                  what="edges → photo (shoes + handbags), every 10th of 2,000 held out"),
}
LEVELS: dict[str, dict[str, Any]] = {
    # smoke: synthetic data, proves the plumbing in seconds; numbers mean nothing
    "smoke": dict(depth=5, side=64, load=72, teacher_ngf=8, teacher_ndf=8, ngf=4, ndf=4,
                  teacher_iters=3, iters=3, grid=2, reps=3, budget_s=1.0, synthetic=True),
    # quick: one task (facades), the default students only (QUICK_VARIANTS)
    "quick": dict(depth=6, side=64, load=72, teacher_ngf=16, teacher_ndf=16, ngf=4, ndf=8,
                  teacher_iters=15, iters=15, grid=4, reps=10, budget_s=3.0, max_eval=20,
                  tasks=["facades"]),
    # Two shared CPU cores, one torch thread: the teacher trains at about 3.3 s/iteration (400:
    # ~22 min); a student at 0.14 s/iteration from scratch, ~1.2 s distilled (the teacher's
    # forward pass dominates). Students' discriminator at ndf 32: at ndf 64 a scratch student
    # measured 0.85 s/iteration, six times slower, for a generator 16 times smaller than D's.
    "full": dict(depth=7, side=128, load=143, teacher_ngf=64, teacher_ndf=64, ngf=16, ndf=32,
                 teacher_iters=400, iters=300, grid=6, reps=40, budget_s=30.0),
}
# student variants: name -> (command, extra options)
VARIANTS = {
    "scratch": ("train", {}),
    "scratch-hd": ("train", {"d_scales": 2, "lambda_fm": 10.0}),
    "distilled": ("distill", {}),
    "distilled-resize": ("distill", {"upsample": "resize"}),
    "distilled-noD": ("distill", {"lambda_gan": 0.0}),
    "distilled-separable": ("distill", {"upsample": "separable"}),
    # ablations of distill's defaults (only with --edge-variants)
    "distilled-noFeat": ("distill", {"lambda_feat": 0.0}),
    "distilled-noGT": ("distill", {"lambda_l1": 0.0}),
}
QUICK_VARIANTS = ["scratch", "distilled"]
DEFAULT_VARIANTS = ["scratch", "scratch-hd", "distilled", "distilled-resize", "distilled-noD",
                    "distilled-separable"]
LABELS = {"teacher": "teacher", "scratch": "from scratch", "distilled": "distilled",
          "distilled-resize": "distilled, resize decoder",
          "distilled-noD": "distilled, no discriminator",
          "distilled-separable": "distilled, separable decoder",
          "distilled-noFeat": "distilled, no feature distillation",
          "distilled-noGT": "distilled, no ground-truth L1",
          "scratch-hd": "from scratch, --d-scales 2 --lambda-fm 10"}


def _common(cfg: dict, task: dict, data: Path) -> dict:
    return dict(data=str(data), direction=task["direction"], holdout_last=task["holdout_last"],
                holdout_every=task["holdout_every"], depth=cfg["depth"], load_size=cfg["load"],
                crop_size=cfg["side"], ndf=cfg["ndf"], workers=0, threads=1, progress=False,
                tensorboard=False, seed=0, log_every=20, save_every=1000)


def _done(run: Path, iters: int) -> bool:
    """A finished run of ``iters`` iterations (or more) is reused instead of retrained."""
    latest = run / "checkpoints" / "latest.pt"
    if not (run / "generator.pt").is_file() or not latest.is_file():
        return False
    from pix2pix_edge.train.checkpoint import load_training_checkpoint

    return load_training_checkpoint(latest)["iteration"] >= iters


def train_variant(name: str, run: Path, teacher: Path, cfg: dict, task: dict, data: Path) -> dict:
    """Train one model into ``run`` (unless already there); its iterations and s/it."""
    from pix2pix_edge.train.checkpoint import load_training_checkpoint

    iters = cfg["teacher_iters"] if name == "teacher" else cfg["iters"]
    summary = {}
    if not _done(run, iters):
        log(f"edge: training {name} -> {run} ({iters} iterations)")
        base = dict(_common(cfg, task, data), run=str(run), max_iters=iters,
                    resume=(run / "checkpoints" / "latest.pt").is_file())
        if name == "teacher":
            from pix2pix_edge.train.loop import train
            from pix2pix_edge.train.options import TrainOptions
            summary = train(TrainOptions(**dict(base, ndf=cfg["teacher_ndf"]), ngf=cfg["teacher_ngf"]))
        else:
            command, extra = VARIANTS[name]
            if command == "train":
                from pix2pix_edge.train.loop import train
                from pix2pix_edge.train.options import TrainOptions
                summary = train(TrainOptions(**base, ngf=cfg["ngf"], **extra))
            else:
                from pix2pix_edge.train.distill import distill
                from pix2pix_edge.train.distill_options import DistillOptions
                summary = distill(DistillOptions(**base, ngf=cfg["ngf"], teacher=str(teacher), **extra))
    state = load_training_checkpoint(run / "checkpoints" / "latest.pt")
    return {"iterations": state["iteration"], "train_s_per_iter": summary.get("seconds_per_iter")}


def held_out(runs: list, task: dict, data: Path, cfg: dict):
    """The pairs every model of ``runs`` held out (the hold-out their runs recorded, which must
    agree), at the benchmark's size: the test set of the table."""
    from pix2pix_edge.runtime.contract import held_out as recorded

    holds = {(h.last, h.every) for h in map(recorded, runs)}
    if len(holds) != 1:
        raise RuntimeError(f"the runs in {Path(runs[0]).parent} record different hold-outs "
                           f"{sorted(holds)}: delete them and rerun")
    return held_out_dataset(recorded(runs[0]), task["direction"], cfg["side"],
                            cfg.get("max_eval"), data)


def evaluate_models(models: dict, dataset, grid: int):
    """Held-out L1 / PSNR / SSIM vs the target and PSNR vs the teacher for every model, and the
    first ``grid`` images of each (input, outputs, target) for the PNG grid."""
    import numpy as np
    import torch

    from pix2pix_edge.train.evaluate import l1_per_image, psnr_per_image, ssim_per_image, to_unit

    per = {name: {"l1": [], "psnr": [], "ssim": [], "psnr_vs_teacher": []} for name in models}
    images: dict[str, list] = {"input": [], "target": [], **{n: [] for n in models}}
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=False)
    with torch.inference_mode():
        for batch in loader:
            A, target = batch["A"], to_unit(batch["B"])
            outs = {name: to_unit(m(A).float()) for name, m in models.items()}
            for name, out in outs.items():
                per[name]["l1"] += l1_per_image(out, target).tolist()
                per[name]["psnr"] += psnr_per_image(out, target).tolist()
                per[name]["ssim"] += ssim_per_image(out, target).tolist()
                per[name]["psnr_vs_teacher"] += psnr_per_image(out, outs["teacher"]).tolist()
            if len(images["input"]) < grid:
                images["input"] += list(to_unit(A))
                images["target"] += list(target)
                for name, out in outs.items():
                    images[name] += list(out)
    metrics = {name: {k: float(np.mean(v)) for k, v in d.items()} for name, d in per.items()}
    for name in metrics:
        metrics[name]["n"] = len(per[name]["l1"])
    return metrics, {k: v[:grid] for k, v in images.items()}


def time_models(models: dict, side: int, cfg: dict, workdir: Path) -> dict:
    """ORT FP32 CPU p50 of every model, exported at side x side, interleaved in one loop."""
    import numpy as np

    from .inference import ort_session
    from pix2pix_edge.export.to_onnx import export_model

    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, side, side)).astype(np.float32)
    fns, keep = {}, []
    for name, m in models.items():
        path = export_model(m, workdir / f"{name}.onnx", height=side, width=side)
        sess = ort_session(path, cpu_cores())
        keep.append(sess)
        fns[name] = lambda s=sess: s.infer(x)
    load_before = os.getloadavg()
    samples = interleaved(fns, reps=cfg["reps"], warmup=2, budget_s=cfg["budget_s"])
    return {"latency": {n: summarize(s) for n, s in samples.items()},
            "load_before": [round(v, 2) for v in load_before],
            "load_after": [round(v, 2) for v in os.getloadavg()]}


def write_grid(images: dict, columns: list[str], path: Path) -> Path:
    import torch
    from PIL import Image

    rows = []
    for i in range(len(images["input"])):
        cells = [images[c][i][:3].expand(3, -1, -1) if images[c][i].shape[0] == 1 else images[c][i][:3]
                 for c in columns]
        rows.append(torch.cat(cells, dim=2))
    grid = torch.cat(rows, dim=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()).save(path)
    return path


def plot(rows: list[dict], path: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    models = list(dict.fromkeys(r["model"] for r in rows))
    colours = {m: plt.cm.tab10(i % 10) for i, m in enumerate(models)}
    markers = dict(zip(dict.fromkeys(r["task"] for r in rows), "os^D"))
    for ax, metric in zip(axes, ("ssim", "l1")):
        for r in rows:
            ax.scatter(r["p50_ms"], r[metric], marker=markers[r["task"]], color=colours[r["model"]],
                       s=40, label=f"{r['task']}: {LABELS.get(r['model'], r['model'])}")
        ax.set_xscale("log")
        ax.set_xlabel("ONNX Runtime CPU p50 latency (ms, log)")
        ax.set_ylabel(f"held-out {metric.upper()}" + (" (lower is better)" if metric == "l1" else ""))
        ax.grid(True, alpha=0.3)
    axes[1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle("Edge-sized generators: held-out quality vs latency")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def gap(rows: list[dict], model: str, metric: str) -> dict | None:
    """Teacher, scratch and ``model`` on ``metric`` (lower is better for l1); ``recovered`` =
    (model - scratch) / (teacher - scratch), 1 = all of the teacher's lead over scratch, None
    where the teacher has no lead to recover (``teacher_ahead`` false)."""
    by = {r["model"]: r for r in rows}
    if model not in by or "scratch" not in by:
        return None
    t, s, m = by["teacher"][metric], by["scratch"][metric], by[model][metric]
    ahead = t < s if metric == "l1" else t > s
    return {"teacher": t, "scratch": s, "student": m, "teacher_ahead": ahead,
            "recovered": round((m - s) / (t - s), 3) if ahead else None,
            "beats_teacher": m < t if metric == "l1" else m > t}


def run_task(name: str, cfg: dict, runs: Path, png_dir: Path | None, variants: list[str]) -> dict:
    import torch

    from pix2pix_edge.export.to_onnx import count_macs
    from pix2pix_edge.train.checkpoint import load_generator
    from pix2pix_edge.train.models import count_parameters, inference_copy

    task = dict(TASKS[name])
    data = Path(task["data"])
    if cfg.get("synthetic"):
        from pix2pix_edge.train.synth import make_dataset
        data = runs / "synthetic-data"
        if not data.is_dir():
            data = make_dataset(data, n=8, size=cfg["side"], seed=1)
        task.update(direction="AtoB", holdout_last=2, holdout_every=0, what="synthetic pairs")
    torch.set_num_threads(1)
    facts = {"teacher": train_variant("teacher", runs / name / "teacher", None, cfg, task, data)}
    for v in variants:
        facts[v] = train_variant(v, runs / name / v, runs / name / "teacher", cfg, task, data)
    models, records = {}, {}
    for model in facts:
        G, record = load_generator(runs / name / model)
        models[model] = inference_copy(G, record["inference"]["norm_mode"])
        records[model] = G.config
    dataset = held_out([runs / name / model for model in facts], task, data, cfg)
    metrics, images = evaluate_models(models, dataset, cfg["grid"])
    torch.set_num_threads(cpu_cores())
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp:
        timing = time_models(models, cfg["side"], cfg, Path(tmp))
    teacher_ms = timing["latency"]["teacher"]["p50_ms"]
    rows = []
    for model, m in models.items():
        lat = timing["latency"][model]
        rows.append({
            "task": name, "model": model, "label": LABELS.get(model, model), "ngf": records[model]["ngf"],
            "upsample": records[model].get("upsample", "transpose"),
            "params": count_parameters(m), "gflop": round(2 * count_macs(m, cfg["side"], cfg["side"]) / 1e9, 3),
            "l1": round(metrics[model]["l1"], 4), "psnr": round(metrics[model]["psnr"], 2),
            "ssim": round(metrics[model]["ssim"], 4),
            "psnr_vs_teacher": None if model == "teacher" else round(metrics[model]["psnr_vs_teacher"], 2),
            "p50_ms": lat["p50_ms"], "p90_ms": lat["p90_ms"], "timed_runs": lat["n"],
            "speedup": round(teacher_ms / lat["p50_ms"], 2),
            "iterations": facts[model]["iterations"],
            "train_s_per_iter": facts[model]["train_s_per_iter"],
        })
    columns = ["input", "teacher"] + [c for c in ("distilled", "scratch") if c in images] + ["target"]
    files = []
    if png_dir is not None:
        files.append(str(write_grid(images, columns, png_dir / f"edge_grid_{name}.png")))
    targets = {}
    for model in [v for v in VARIANTS if v.startswith("distilled")]:
        if model in models:
            r = next(r for r in rows if r["model"] == model)
            g = {metric: gap(rows, model, metric) for metric in ("ssim", "l1")}
            # met: at least half of the teacher's lead recovered where it has one, and never
            # worse than scratch where it has none
            ok = all((v["recovered"] >= 0.5) if v["teacher_ahead"] else
                     (v["student"] <= v["scratch"] if m == "l1" else v["student"] >= v["scratch"])
                     for m, v in g.items() if v)
            targets[model] = {"speedup": r["speedup"], "speedup_ok": r["speedup"] >= 10,
                              "ssim": g["ssim"], "l1": g["l1"], "gap_ok": ok}
    hd = None
    if "scratch-hd" in models:
        by = {r["model"]: r for r in rows}
        hd = {k: round(by["scratch-hd"][k] - by["scratch"][k], 4) for k in ("l1", "psnr", "ssim")}
    return {"rows": rows, "targets": targets, "hd_minus_reference": hd, "timing_load": timing,
            "held_out": metrics["teacher"]["n"], "what": task["what"], "grid_columns": columns,
            "files": files}


def run(level: str = "full", runs: str | Path | None = None, tasks=None, variants=None,
        png_dir: str | Path | None = "auto") -> dict[str, Any]:
    """The edge section. ``runs``: a folder to keep (and reuse) the trained runs in (default: a
    temporary one); ``tasks`` / ``variants``: subsets; ``png_dir``: where the grid and plot go
    ("auto": benchmarks/results for full, results/quick otherwise; None: nowhere)."""
    cfg = dict(LEVELS[level])
    tasks = list(tasks or cfg.get("tasks") or TASKS)
    variants = list(variants or (QUICK_VARIANTS if level == "quick" else DEFAULT_VARIANTS))
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        return {"error": f"unknown edge variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}"}
    if png_dir == "auto":
        png_dir = None if level == "smoke" else RESULTS_DIR if level == "full" else RESULTS_DIR / "quick"
    png_dir = Path(png_dir) if png_dir else None
    if not cfg.get("synthetic"):
        missing = [t for t in tasks if not (Path(TASKS[t]["data"]) / "train").is_dir()]
        if level == "quick" and missing:
            cfg["synthetic"] = True
        elif missing:
            return {"skipped": f"dataset(s) not found: {', '.join(str(TASKS[t]['data']) for t in missing)} "
                               "(they live outside the repository; docs/development.md, Test data, says what goes where)"}
    if cfg.get("synthetic"):
        tasks = tasks[:1]
    setup = (f"unet depth {cfg['depth']} at {cfg['side']}x{cfg['side']} (resize {cfg['load']} -> "
             f"random crop {cfg['side']} + flip), batch 1, seed 0, one torch thread; teacher ngf "
             f"{cfg['teacher_ngf']}, {cfg['teacher_iters']} iterations; students ngf {cfg['ngf']}, "
             f"{cfg['iters']} iterations each; basic PatchGAN ndf {cfg['teacher_ndf']} (teacher), "
             f"{cfg['ndf']} (students)")
    out: dict[str, Any] = {"config": cfg, "setup": setup, "rows": [], "tasks": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-edge-runs-") as tmp:
        root = Path(runs) if runs else Path(tmp)
        for name in tasks:
            res = run_task(name, cfg, root, png_dir, variants)
            out["rows"] += res.pop("rows")
            out["tasks"][name] = res
            log(f"edge: {name} done ({time.perf_counter() - started:.0f} s)")
    if png_dir is not None and out["rows"]:
        p = plot(out["rows"], png_dir / "edge_quality_latency.png")
        if p:
            out["plot"] = str(p)
    out["note"] = ("metrics on [0, 1] images of the held-out pairs, each model in its recorded "
                   "inference mode (per-image BatchNorm); SSIM 11x11 Gaussian (train/evaluate.py); "
                   "latency: ONNX Runtime FP32 CPU, batch 1, all models of a task interleaved; "
                   "gap recovered = (student - scratch) / (teacher - scratch)")
    return out


if __name__ == "__main__":  # python -m benchmarks.edge [level] [runs-dir]
    result = run(sys.argv[1] if len(sys.argv) > 1 else "quick",
                 runs=sys.argv[2] if len(sys.argv) > 2 else None)
    print(json.dumps(result, indent=1, default=str))


# --------------------------------------------------------------------------- report
COLUMNS = [("task", "task", ""), ("label", "model", ""), ("params_m", "params (M)", ".3f"),
           ("gflop", "GFLOP", ".3f"), ("l1", "L1 ↓", ".4f"), ("psnr", "PSNR dB", ".2f"),
           ("ssim", "SSIM", ".4f"), ("psnr_vs_teacher", "PSNR vs teacher", ".2f"),
           ("p50_ms", "ORT p50 ms", ".2f"), ("speedup", "speed-up", ".1f"),
           ("iterations", "iterations", "d")]


def markdown(sec: dict, images: bool = True) -> list[str]:
    """The edge section of RESULTS.md and docs/distill.md (benchmarks/report.py calls this);
    ``images``: link the grids and the plot (relative to the results folder)."""
    from .common import fmt, markdown_table

    rows = [dict(r, params_m=r["params"] / 1e6) for r in sec.get("rows", [])]
    lines = [f"Setup: {sec.get('setup', '')}.", "", markdown_table(rows, COLUMNS), ""]
    for task, t in sec.get("tasks", {}).items():
        lines.append(f"- **{task}** ({t.get('what')}; {t.get('held_out')} held-out pairs; load "
                     f"average while timing {t.get('timing_load', {}).get('load_before')}):")
        for model, v in (t.get("targets") or {}).items():
            parts = []
            for metric in ("ssim", "l1"):
                g = v.get(metric)
                if not g:
                    continue
                if g["teacher_ahead"]:
                    parts.append(f"recovers {g['recovered']:.0%} of the teacher's {metric.upper()} "
                                 f"lead over scratch")
                else:
                    parts.append(f"no teacher-vs-scratch {metric.upper()} gap to recover (teacher "
                                 f"{g['teacher']:.4f}, scratch {g['scratch']:.4f})")
                if g["beats_teacher"]:
                    parts[-1] += f", {metric.upper()} {g['student']:.4f} beats the teacher"
            lines.append(f"  - {model}: {fmt(v['speedup'], '.1f')}x faster than the teacher "
                         f"({'meets' if v['speedup_ok'] else 'misses'} 10x); " + "; ".join(parts)
                         + f" ({'meets' if v['gap_ok'] else 'misses'} the quality target)")
        hd = t.get("hd_minus_reference")
        if hd:
            lines.append(f"  - `--d-scales 2 --lambda-fm 10` minus the reference objective (scratch, "
                         f"same iterations): L1 {hd['l1']:+.4f}, PSNR {hd['psnr']:+.2f} dB, SSIM "
                         f"{hd['ssim']:+.4f}")
        for f in t.get("files", []) if images else ():
            lines.append(f"  - ![{task} grid]({Path(f).name}) ({' | '.join(t.get('grid_columns', []))})")
    if sec.get("plot") and images:
        lines += ["", f"![edge quality vs latency]({Path(sec['plot']).name})"]
    lines += ["", f"- {sec.get('note', '')}"]
    return lines
