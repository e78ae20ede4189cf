"""Turn a suite run (JSON) into ``RESULTS.md`` and PNG plots that the README embeds.

    python -m benchmarks.report benchmarks/results/full-*.json [--out benchmarks/results]

Several JSON files can be given: their sections are merged, later files winning, so a section
rerun on its own (``python -m benchmarks --only quality``) can join an earlier full run.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import fmt, markdown_table

LATENCY_PNG = "latency_vs_size.png"
QUALITY_PNG = "quality_vs_latency.png"
SECTION_TITLES = {"inference": "Inference (generator only, batch 1)",
                  "e2e": "End to end (video file → translate → video file)",
                  "frames": "Pre- and post-processing per frame",
                  "train": "Training speed", "quality": "Quality vs speed (facades, labels → photo)",
                  "edge": "Edge-sized generators: teacher vs students (benchmarks/edge.py)"}

INFERENCE_COLUMNS = [
    ("model", "model", ""), ("size", "input", "d"), ("backend", "backend", ""),
    ("norm_mode", "norm", ""), ("params_m", "params (M)", ".2f"), ("gflop", "GFLOP/frame", ".2f"),
    ("p50_ms", "p50 ms", ".2f"), ("p90_ms", "p90 ms", ".2f"), ("p99_ms", "p99 ms", ".2f"),
    ("fps", "FPS", ".1f"), ("gflop_per_s", "GFLOP/s", ".1f"), ("psnr_vs_fp32_db", "PSNR vs FP32 dB", ".1f"),
    ("n", "runs", "d"),
]
QUALITY_COLUMNS = [
    ("ngf", "ngf", "d"), ("params_m", "params (M)", ".2f"), ("gflop", "GFLOP/frame", ".3f"),
    ("iterations", "train iters", "d"), ("psnr_untrained", "PSNR untrained", ".2f"),
    ("psnr", "PSNR dB", ".2f"), ("ssim_untrained", "SSIM untrained", ".3f"), ("ssim", "SSIM", ".3f"),
    ("l1", "L1", ".3f"), ("latency_ms", "ORT FP32 ms", ".2f"), ("torch_latency_ms", "PyTorch ms", ".2f"),
    ("train_s_per_iter", "train s/iter", ".3f"),
]


# --------------------------------------------------------------------------- Markdown
def _generic_table(rows: list[dict]) -> str:
    """A table of every key the rows have, in first-seen order (for sections owned elsewhere)."""
    keys: list[str] = []
    for r in rows:
        for k, v in r.items():
            if k not in keys and k not in ("mean_ms", "min_ms") and not isinstance(v, (dict, list)):
                keys.append(k)
    cols = [(k, k, ".4g" if any(isinstance(r.get(k), float) for r in rows) else "") for k in keys]
    return markdown_table(rows, cols)


def _rows_of(section: dict) -> list[dict]:
    for key in ("rows", "results", "runs"):
        if isinstance(section.get(key), list) and all(isinstance(r, dict) for r in section[key]):
            return section[key]
    return []


def _scalars(section: dict) -> list[str]:
    skip = {"rows", "results", "runs", "skipped", "config", "error"}
    return [f"- {k}: {fmt(v, '.4g') if isinstance(v, float) else fmt(v)}"
            for k, v in section.items() if k not in skip and not isinstance(v, (dict, list))]


def _skipped_lines(section: dict) -> list[str]:
    s = section.get("skipped")
    if isinstance(s, str):
        return [f"- skipped: {s}"]
    if isinstance(s, list):
        return [f"- skipped {item.get('backend') or item.get('what', '')}: {item.get('reason')}"
                if isinstance(item, dict) else f"- skipped: {item}" for item in s]
    return []


def machine_lines(machine: dict) -> list[str]:
    v = machine.get("versions", {})
    vers = ", ".join(f"{k} {val}" for k, val in v.items() if val)
    gpu = machine.get("gpu")
    gpu_s = gpu.get("name") if isinstance(gpu, dict) else "none"
    return [
        f"- CPU: {machine.get('cpu')} ({machine.get('cores')} cores; "
        f"{', '.join(machine.get('cpu_flags') or []) or 'no AVX-512 flags'})",
        f"- GPU: {gpu_s}",
        f"- Software: {vers}",
        f"- Date: {machine.get('date')}, git {machine.get('git_commit')}, load average at start "
        f"{machine.get('load_average_1_5_15')}",
        f"- Command: `python -m benchmarks {' '.join(machine.get('argv') or [])}`".replace(" `", " `"),
    ]


def inference_summary(rows: list[dict]) -> str:
    """One line per model and input size, one column per backend: "p50 ms (GFLOP/s)"."""
    cols: list[str] = []
    groups: dict[tuple, dict] = {}
    for r in rows:
        col = r["backend"] + ("" if r["norm_mode"] == "running" else f" {r['norm_mode']}")
        if col not in cols:
            cols.append(col)
        g = groups.setdefault((r["ngf"], r["size"]), {
            "model": r["model"], "size": f"{r['size']}²", "params_m": r["params"] / 1e6,
            "gflop": r["gflop"]})
        g[col] = f"{r['p50_ms']:.1f} ({r['gflop_per_s']:.0f})"
    columns = [("model", "model", ""), ("size", "input", ""), ("params_m", "params (M)", ".1f"),
               ("gflop", "GFLOP", ".2f")] + [(c, c, "") for c in cols]
    return markdown_table(list(groups.values()), columns)


def inference_markdown(sec: dict) -> list[str]:
    rows = [dict(r, params_m=r["params"] / 1e6) for r in sec.get("rows", [])]
    out = []
    peak = sec.get("machine_peak") or {}
    if peak:
        out += [f"Machine limit measured in the same run (2048² matmul): "
                f"FP32 {fmt(peak.get('fp32_gflop_per_s'), '.0f')} GFLOP/s, "
                f"BF16 {fmt(peak.get('bf16_gflop_per_s'), '.0f')} GFLOP/s.", ""]
    out += ["Median latency in ms (achieved GFLOP/s), batch 1:", "", inference_summary(rows), "",
            "All statistics:", "", markdown_table(rows, INFERENCE_COLUMNS)]
    out.append("")
    conv = (sec.get("config") or {}).get("flop_convention")
    if conv:
        out.append(f"GFLOP/frame: {conv}. GFLOP/s = GFLOP/frame ÷ p50 latency. "
                   "Backends were timed interleaved in one process; PSNR is against the PyTorch FP32 "
                   "output of the same model and normalisation (peak-to-peak 2 for [-1, 1]).")
        out.append("")
    notes = sorted({r["note"] for r in rows if r.get("note")})
    out += [f"- {r}: {n}" for n in notes for r in sorted({x['backend'] for x in rows
                                                          if x.get('note') == n})]
    return out


def e2e_markdown(sec: dict) -> list[str]:
    """benchmarks/end_to_end.py's result: per-variant summary, then per-stage latencies."""
    model = sec.get("model") or {}
    backend = sec.get("backend") or {}
    video = sec.get("video") or {}
    mo = sec.get("model_only") or {}
    out = [f"Model: {model.get('arch')} ngf {model.get('ngf')} at {model.get('size')} "
           f"({model.get('norm')}), {backend.get('provider')} x{backend.get('intra_op_threads')} "
           f"threads. Video: {Path(str(video.get('path', ''))).name}, {video.get('frames_used')} "
           f"frames in {video.get('parts')} parts, fit {video.get('fit')}, output "
           f"{video.get('output')}. Model-only: {fmt(mo.get('fps_median'), '.2f')} FPS "
           f"(p50 {fmt(mo.get('latency_p50_ms'), '.1f')} ms), measured between the parts.", ""]
    rows = [{"variant": v, **d} for v, d in (sec.get("summary") or {}).items()]
    out += [markdown_table(rows, [
        ("variant", "helper threads", ""), ("frames", "frames", "d"),
        ("pipeline_fps", "pipeline FPS", ".2f"), ("median_ratio", "pipeline / model-only", ".3f"),
        ("whole_video_ratio", "whole video ratio", ".3f"), ("median_cpu_ratio", "CPU-time ratio", ".3f"),
        ("meets_target", f"≥ {sec.get('target_ratio')}", "")]), ""]
    stage_rows = []
    for variant, parts in (sec.get("parts") or {}).items():
        stages: dict[str, list[float]] = {}
        for p in parts:
            for name, st in (p.get("stages") or {}).items():
                stages.setdefault(name, []).append(st["p50_ms"])
            stages.setdefault("frame latency", []).append((p.get("latency") or {}).get("p50_ms"))
        row = {"variant": variant}
        row.update({k: float(np.median([x for x in v if x is not None])) for k, v in stages.items()
                    if any(x is not None for x in v)})
        stage_rows.append(row)
    if stage_rows:
        names = [k for k in stage_rows[0] if k != "variant"]
        out += ["Per-stage p50 latency (ms, median over the parts; stages overlap in threads, "
                "frame latency = capture to written):", "",
                markdown_table(stage_rows, [("variant", "helper threads", "")] +
                               [(k, k, ".2f") for k in names]), ""]
    out += [f"- best variant: {sec.get('best_variant')}"]
    return out


def to_markdown(result: dict, plots: list[str]) -> str:
    lines = ["# Benchmark results", "", "Produced by `python -m benchmarks` "
             f"(level: {result.get('level')}). Every figure below comes from the JSON beside this file.",
             "", "## Machine", "", *machine_lines(result.get("machine", {}))]
    for run in result.get("merged_runs", []):
        lines.append(f"- Sections {', '.join(run['sections'])}: run of {run['date']} "
                     f"(`python -m benchmarks {' '.join(run.get('argv') or [])}`, git "
                     f"{run.get('git_commit')}, load average at start {run.get('load_average_1_5_15')})")
    lines.append("")
    for name, title in SECTION_TITLES.items():
        sec = result.get("sections", {}).get(name)
        if sec is None:
            continue
        lines += [f"## {title}", ""]
        if "error" in sec:
            lines += [f"- failed: {sec['error']}", ""]
            continue
        if isinstance(sec.get("skipped"), str) and not _rows_of(sec):
            lines += [f"- skipped: {sec['skipped']}", ""]
            continue
        if name == "inference":
            lines += inference_markdown(sec)
        elif name == "edge" and sec.get("rows"):
            lines += importlib.import_module("benchmarks.edge").markdown(sec)
        elif name == "e2e" and sec.get("summary"):
            lines += e2e_markdown(sec)
        elif name == "quality" and sec.get("rows"):
            lines += [f"Setup: {sec.get('setup', '')}.", "",
                      markdown_table([dict(r, params_m=r["params"] / 1e6) for r in sec["rows"]],
                                     QUALITY_COLUMNS), "",
                      f"- {sec.get('note', '')}"]
            base = sec.get("baseline_output_equals_input")
            if isinstance(base, dict):
                lines.append(f"- trivial baseline (output = input label map): PSNR "
                             f"{fmt(base.get('psnr'), '.2f')} dB, SSIM {fmt(base.get('ssim'), '.3f')}")
        else:
            rows = _rows_of(sec)
            if rows:
                lines += [_generic_table(rows), ""]
            lines += _scalars(sec)
        lines += _skipped_lines(sec)
        if name == "inference" and LATENCY_PNG in plots:
            lines += ["", f"![latency vs model size]({LATENCY_PNG})"]
        if name == "quality" and QUALITY_PNG in plots:
            lines += ["", f"![quality vs latency]({QUALITY_PNG})"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- plots
def _plt():
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    return plt


def _plain_log_ticks(*axes) -> None:
    """Log axes labelled 1, 2, 5, 10, 20, ... in plain numbers (not 10^0 or nothing at all)."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    for axis in axes:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())


def plot_latency(sec: dict, path: Path) -> Path | None:
    """p50 latency vs GFLOP/frame, one line per backend / norm / input size (log-log)."""
    rows = sec.get("rows") or []
    if not rows:
        return None
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    series: dict[tuple, list[dict]] = {}
    for r in rows:
        series.setdefault((r["backend"], r["norm_mode"], r["size"]), []).append(r)
    colors = plt.get_cmap("tab20").colors  # 20 distinct colours: no two series share one
    # Width labels once per input size (on one series), not on every point: they would overlap.
    labelled = {size: next((k for k in sorted(series) if k[2] == size and k[:2] == ("ort-fp32", "running")),
                           next(k for k in sorted(series) if k[2] == size)) for _, _, size in series}
    for i, ((backend, norm, size), rs) in enumerate(sorted(series.items())):
        rs = sorted(rs, key=lambda r: r["gflop"])
        label = f"{backend}{'' if norm == 'running' else ' ' + norm} @{size}"
        style = "-" if size == 256 else "--"
        x = [r["gflop"] for r in rs]
        line, = ax.plot(x, [r["p50_ms"] for r in rs], style, marker="o", label=label,
                        color=colors[i % len(colors)])
        ax2.plot(x, [r["gflop_per_s"] for r in rs], style, marker="o", color=line.get_color())
        for r in rs if labelled[size] == (backend, norm, size) else ():
            ax.annotate(f"ngf{r['ngf']} @{size}", (r["gflop"], r["p50_ms"]), fontsize=7,
                        textcoords="offset points", xytext=(4, -10))
    peak = sec.get("machine_peak") or {}
    for key, name in (("fp32_gflop_per_s", "FP32 matmul peak"), ("bf16_gflop_per_s", "BF16 matmul peak")):
        if peak.get(key):
            ax2.axhline(peak[key], color="grey", linestyle=":", linewidth=1)
            ax2.text(0.01, peak[key], f" {name} {peak[key]:.0f}", fontsize=7, color="grey",
                     va="bottom", transform=ax2.get_yaxis_transform())
    ax.set(xscale="log", yscale="log", xlabel="GFLOP per frame", ylabel="p50 latency (ms)",
           title="Latency vs model size")
    ax2.set(xscale="log", yscale="log", xlabel="GFLOP per frame", ylabel="achieved GFLOP/s",
            title="Achieved throughput vs machine limit")
    for a in (ax, ax2):
        a.grid(True, which="both", alpha=0.3)
        _plain_log_ticks(a.xaxis, a.yaxis)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_quality(sec: dict, path: Path) -> Path | None:
    """Held-out PSNR and SSIM vs latency per model width (the edge trade-off)."""
    rows = [r for r in (sec.get("rows") or []) if r.get("psnr") is not None and r.get("latency_ms")]
    if not rows:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "psnr", "held-out PSNR (dB)"), (axes[1], "ssim", "held-out SSIM")):
        pts = [r for r in rows if r.get(key) is not None]
        ax.plot([r["latency_ms"] for r in pts], [r[key] for r in pts], "o-")
        for r in pts:
            ax.annotate(f"ngf{r['ngf']}", (r["latency_ms"], r[key]), fontsize=8,
                        textcoords="offset points", xytext=(4, 4))
        base = [r.get(f"{key}_untrained") for r in pts]
        if all(b is not None for b in base):
            ax.plot([r["latency_ms"] for r in pts], base, "x:", color="grey", label="before training")
            ax.legend(fontsize=8)
        ax.set(xscale="log", xlabel=f"latency (ms, {rows[0].get('latency_backend', '')})",
               ylabel=label)
        _plain_log_ticks(ax.xaxis)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("Quality vs speed: " + str(sec.get("setup", "")), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- entry points
def write_report(result: dict, out_dir: str | Path) -> list[Path]:
    """RESULTS.md and the plots for one (possibly merged) run; returns the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = result.get("sections", {})
    written = []
    inf = sections.get("inference") or {}
    if p := plot_latency(inf, out_dir / LATENCY_PNG):
        written.append(p)
    q = sections.get("quality") or {}
    if p := plot_quality(q, out_dir / QUALITY_PNG):
        written.append(p)
    md = out_dir / "RESULTS.md"
    md.write_text(to_markdown(result, [p.name for p in written]), encoding="utf-8")
    return [md, *written]


def merge(results: list[dict]) -> dict:
    """Sections of several runs in one report; later runs win. Records which run gave what."""
    merged: dict[str, Any] = {}
    runs = []
    for r in results:
        sections = {**merged.get("sections", {}), **r.get("sections", {})}
        merged = {**merged, **r, "sections": sections}
        m = r.get("machine", {})
        runs.append({"date": m.get("date"), "argv": m.get("argv"), "git_commit": m.get("git_commit"),
                     "load_average_1_5_15": m.get("load_average_1_5_15"),
                     "sections": list(r.get("sections", {}))})
    for i, run in enumerate(runs):   # credit each section to the run whose figures are shown
        later = {name for r in runs[i + 1:] for name in r["sections"]}
        run["sections"] = [name for name in run["sections"] if name not in later]
    if len(runs) > 1:
        merged["merged_runs"] = [r for r in runs if r["sections"]]
    return merged


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n")[0])
    ap.add_argument("json", nargs="+", type=Path, help="suite result files (merged in order)")
    ap.add_argument("--out", type=Path, default=None, help="directory (default: the first file's)")
    args = ap.parse_args(argv)
    result = merge([json.loads(p.read_text(encoding="utf-8")) for p in args.json])
    for p in write_report(result, args.out or args.json[0].parent):
        print(p)


if __name__ == "__main__":
    main()
