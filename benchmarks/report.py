"""The suite's report step: RESULTS.md, the plots, and every measured figure in README.md and docs/.

    python -m benchmarks.report            # regenerate everything from benchmarks/results/*.json
    python -m benchmarks.report --check    # exit 1 if a generated block differs from the JSON
    python -m benchmarks.report RUN.json --out DIR   # RESULTS.md + plots of one run only

The committed result files (``benchmarks/results/*.json``, written by ``python -m benchmarks``)
are merged per section: each section's figures come from the newest file that measured it (a
skip or a failure does not replace an earlier measurement). A file that gives no section is
stale and is deleted. Every table names the file, date, machine and load it comes from.

Generated blocks. In README.md and docs/*.md the text between

    <!-- generated: NAME (benchmarks/report.py; do not edit) -->
    <!-- end generated: NAME -->

is written by the renderer ``BLOCKS[NAME]`` below from the merged results. Edit the renderer,
never the block: tests/test_docs_figures.py regenerates every block and fails on a difference.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Callable

import numpy as np

from .common import REPO, RESULTS_DIR, fmt, markdown_table

LATENCY_PNG = "latency_vs_size.png"
QUALITY_PNG = "quality_vs_latency.png"
DOC_PAGES = ("README.md", "docs/*.md")
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) \(benchmarks/report.py; do not edit\) -->\n)"
                   r"(?P<body>.*?)"
                   r"(<!-- end generated: (?P=name) -->)", re.S)
TITLES = {"inference": "Inference (generator only, batch 1)",
          "e2e": "End to end (video file → translate → video file)",
          "frames": "Pre- and post-processing per frame",
          "train": "Training speed",
          "reference": "Training speed: the reference implementation side by side",
          "quality": "Quality vs speed (facades, labels → photo)",
          "int8": "INT8 vs FP32 (ONNX Runtime CPU)",
          "edge": "Edge-sized generators: teacher vs students",
          "live": "Live latency (video replayed as a camera)",
          "flicker": "Flicker (warping error)",
          "ort": "ONNX Runtime session options",
          "steady": "Steady video: anti-aliasing, transform consistency, fine-tuning"}


# --------------------------------------------------------------------------- the result set
def load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def measured(section: dict | None) -> bool:
    """A section with figures: not a failure, not a skip without rows."""
    if not isinstance(section, dict) or "error" in section:
        return False
    return not (isinstance(section.get("skipped"), str) and not section.get("rows"))


def cpu_features(flags: list) -> str:
    """The CPU features that decide the speed-ups, in words."""
    flags = set(flags or [])
    if not flags:
        return "CPU flags not recorded"
    if "avx512f" in flags:
        extra = [name for flag, name in (("avx512_bf16", "BF16"), ("avx512_vnni", "VNNI"))
                 if flag in flags]
        text = "AVX-512" + (f" with {' and '.join(extra)}" if extra else "")
    elif "avx2" in flags:
        text = "AVX2 only: no AVX-512, no native BF16"
    else:
        text = "no AVX2"
    return text + (", AMX" if flags & {"amx_bf16", "amx_tile"} else "")


def provenance(path: Path, run: dict, name: str | None = None) -> dict:
    """Which run a figure comes from: file, date, machine, load, command."""
    m = run.get("machine") or {}
    load = (run.get("load") or {}).get(name) if name else None
    start = m.get("load_average_1_5_15")
    command = run.get("command") or "python -m benchmarks " + " ".join(m.get("argv") or [])
    cores = f"{m.get('cores')} cores" if m.get("cores") else "cores not recorded"
    return {"file": Path(path).name, "date": str(m["date"])[:10] if m.get("date") else "date not recorded",
            "machine": (f"{m.get('cpu') or 'CPU not recorded'} ({cores}; "
                        f"{cpu_features(m.get('cpu_flags'))})"),
            "load": (f"load {load['before'][0]} → {load['after'][0]}" if load and load.get("before")
                     and load.get("after") else f"load {start[0]} at the start of the run" if start
                     else "load not recorded"),
            "command": command.strip(), "note": m.get("note")}


def merge(runs: list[tuple[Path, dict]]) -> dict:
    """Sections of several runs, each from the newest run that measured it."""
    runs = sorted(runs, key=lambda pr: ((pr[1].get("machine") or {}).get("date") or "", pr[0].name))
    sections, source = {}, {}
    for path, run in runs:
        for name, sec in (run.get("sections") or {}).items():
            if measured(sec) or not measured(sections.get(name)):
                sections[name], source[name] = sec, (path, run)
    used = {p.name for p, _ in source.values()}
    # a section may carry columns measured by an older run (steady's quality_source): that file
    # stays committed, as the provenance of those columns
    borrowed = {name: sec["quality_source"]["file"] for name, sec in sections.items()
                if isinstance(sec, dict) and isinstance(sec.get("quality_source"), dict)
                and sec["quality_source"].get("file")}
    used |= set(borrowed.values())
    return {"sections": sections,
            "source": {name: provenance(p, r, name) for name, (p, r) in source.items()},
            "seconds": {name: (p.name, secs) for p, r in runs if p.name in used   # newest wins
                        for name, secs in (r.get("seconds") or {}).items() if secs is not None},
            "runs": [dict(provenance(p, r), sections=[n for n, (sp, _) in source.items() if sp == p]
                          + [f"{n} (quality columns)" for n, f in borrowed.items() if f == p.name])
                     for p, r in runs if p.name in used],
            "stale": [p for p, _ in runs if p.name not in used]}


def result_files(folder: Path = RESULTS_DIR) -> list[tuple[Path, dict]]:
    """The full-level suite results in ``folder`` (quick and smoke runs are never figures)."""
    runs = [(p, load(p)) for p in sorted(Path(folder).glob("*.json"))]
    return [(p, r) for p, r in runs if r.get("level") == "full"]


# --------------------------------------------------------------------------- small helpers
def run_line(src: dict | None) -> str:
    if not src:
        return "*Not measured yet: no result file has this section.*"
    note = f" ({src['note']})" if src.get("note") else ""
    return (f"*Run `{src['file']}`: {src['date']}, {src['machine']}, {src['load']}; "
            f"`{src['command']}`{note}.*")


def short_run(src: dict | None) -> str:
    return f"`{src['file']}` ({src['date']}, {src['machine']})" if src else "–"


def _skip_lines(sec: dict) -> list[str]:
    s = sec.get("skipped")
    if isinstance(s, str):
        return [f"- skipped: {s}"]
    if isinstance(s, list):
        return [f"- skipped {item.get('backend') or item.get('what', '')}: {item.get('reason')}"
                if isinstance(item, dict) else f"- skipped: {item}" for item in s]
    return []


def _range(values: list, spec: str) -> str:
    values = [v for v in values if isinstance(v, (int, float))]
    if not values:
        return "–"
    lo, hi = format(min(values), spec), format(max(values), spec)
    return lo if lo == hi else f"{lo} to {hi}" if min(values) < 0 else f"{lo}–{hi}"


# --------------------------------------------------------------------------- section renderers
def inference_md(sec: dict, full: bool = False) -> list[str]:
    rows = [dict(r, params_m=r["params"] / 1e6) for r in sec.get("rows", [])]
    cols: list[str] = []
    groups: dict[tuple, dict] = {}
    for r in rows:
        col = r["backend"] + ("" if r["norm_mode"] == "running" else f" {r['norm_mode']}")
        if col not in cols:
            cols.append(col)
        g = groups.setdefault((r["ngf"], r["size"]), {"model": r["model"], "size": f"{r['size']}²",
                                                       "params_m": r["params_m"], "gflop": r["gflop"]})
        g[col] = f"{r['p50_ms']:.1f} ({r['gflop_per_s']:.0f})"
    out = []
    peak = sec.get("machine_peak") or {}
    if peak:
        out += [f"Machine limit measured in the same run (2048² matmul): FP32 "
                f"{fmt(peak.get('fp32_gflop_per_s'), '.0f')} GFLOP/s, BF16 "
                f"{fmt(peak.get('bf16_gflop_per_s'), '.0f')} GFLOP/s.", ""]
    out += ["Median latency in ms (achieved GFLOP/s), batch 1; *running* = BatchNorm with running "
            "statistics folded, *per-image* = InstanceNorm (the reference `test.py` behaviour):", "",
            markdown_table(list(groups.values()),
                           [("model", "model", ""), ("size", "input", ""), ("params_m", "params (M)", ".1f"),
                            ("gflop", "GFLOP", ".2f")] + [(c, c, "") for c in cols]), ""]
    pairs = []
    for (ngf, size), g in groups.items():
        by = {r["backend"]: r for r in rows if (r["ngf"], r["size"]) == (ngf, size)
              and r["norm_mode"] == "running"}
        if "torch-fp32" in by and "ort-fp32" in by:
            pairs.append({"model": g["model"], "size": g["size"],
                          "ratio": by["torch-fp32"]["p50_ms"] / by["ort-fp32"]["p50_ms"],
                          "bf16": (by["torch-fp32"]["p50_ms"] / by["torch-bf16"]["p50_ms"]
                                   if "torch-bf16" in by else None),
                          "fp16": (by["ort-fp16"]["p50_ms"] / by["ort-fp32"]["p50_ms"]
                                   if "ort-fp16" in by else None),
                          "psnr16": (by.get("ort-fp16") or {}).get("psnr_vs_fp32_db"),
                          "psnr_bf16": (by.get("torch-bf16") or {}).get("psnr_vs_fp32_db")})
    if pairs:
        out += ["Side by side in the same run (ratios of medians; PSNR against PyTorch FP32):", "",
                markdown_table(pairs, [("model", "model", ""), ("size", "input", ""),
                                       ("ratio", "PyTorch FP32 / ORT FP32 time", ".2f"),
                                       ("bf16", "PyTorch FP32 / BF16 time", ".2f"),
                                       ("fp16", "ORT FP16 / FP32 time", ".2f"),
                                       ("psnr_bf16", "BF16 PSNR dB", ".1f"),
                                       ("psnr16", "ORT FP16 PSNR dB", ".1f")]), ""]
    if full:
        out += ["All statistics:", "", markdown_table(rows, [
            ("model", "model", ""), ("size", "input", "d"), ("backend", "backend", ""),
            ("norm_mode", "norm", ""), ("p50_ms", "p50 ms", ".2f"), ("p90_ms", "p90 ms", ".2f"),
            ("p99_ms", "p99 ms", ".2f"), ("fps", "FPS", ".1f"), ("gflop_per_s", "GFLOP/s", ".1f"),
            ("psnr_vs_fp32_db", "PSNR vs FP32 dB", ".1f"), ("max_abs_err", "max abs err", ".1e"),
            ("n", "runs", "d")]), ""]
    notes = sorted({(r["backend"], r["note"]) for r in rows if r.get("note")})
    out += [f"- {b}: {n}" for b, n in notes] + _skip_lines(sec)
    return out


def onnx_vs_torch_md(sec: dict) -> list[str]:
    rows = []
    for r in sec.get("rows", []):
        if r["backend"] == "ort-fp32" and r["norm_mode"] == "running":
            t = next((x for x in sec["rows"] if x["backend"] == "torch-fp32" and x["ngf"] == r["ngf"]
                      and x["size"] == r["size"] and x["norm_mode"] == "running"), None)
            if t:
                rows.append({"ngf": r["ngf"], "size": f"{r['size']}²", "torch": t["p50_ms"],
                             "ort": r["p50_ms"], "ratio": t["p50_ms"] / r["p50_ms"],
                             "diff": r.get("max_abs_err")})
    return [markdown_table(rows, [("ngf", "ngf", "d"), ("size", "input", ""),
                                  ("torch", "PyTorch eager ms", ".1f"), ("ort", "ONNX Runtime ms", ".1f"),
                                  ("ratio", "PyTorch / ORT", ".2f"),
                                  ("diff", "max \\|ONNX − PyTorch\\|", ".1e")])]


def e2e_md(sec: dict) -> list[str]:
    model, backend, video = sec.get("model") or {}, sec.get("backend") or {}, sec.get("video") or {}
    mo = sec.get("model_only") or {}
    out = [f"Model: {model.get('arch')} ngf {model.get('ngf')} at {model.get('size')}, norm "
           f"{model.get('norm')}, {backend.get('provider')} x{backend.get('intra_op_threads')} "
           f"threads. Video: {Path(str(video.get('path', ''))).name}, {video.get('frames_used')} "
           f"frames in {video.get('parts')} parts, fit {video.get('fit')}, output "
           f"{video.get('output')}. Model alone: {fmt(mo.get('fps_median'), '.2f')} FPS "
           f"(p50 {fmt(mo.get('latency_p50_ms'), '.1f')} ms), timed between the parts.", ""]
    rows = [{"variant": v, **d} for v, d in (sec.get("summary") or {}).items()]
    out += [markdown_table(rows, [
        ("variant", "helper threads", ""), ("frames", "frames", "d"),
        ("pipeline_fps", "pipeline FPS", ".2f"), ("median_ratio", "pipeline / model alone (median part)", ".3f"),
        ("whole_video_ratio", "whole video", ".3f"), ("median_cpu_ratio", "CPU-time ratio", ".3f"),
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
        out += ["Per-stage p50 latency (ms, median over the parts; stages overlap in threads; frame "
                "latency = capture to written, queueing included):", "",
                markdown_table(stage_rows, [("variant", "helper threads", "")] +
                               [(k, k, ".2f") for k in names])]
    return out


def frames_md(sec: dict) -> list[str]:
    by: dict[str, dict] = {}
    for r in sec.get("rows", []):
        if "cpu_p50_ms" in r:
            by.setdefault(r["fit"], {"fit": r["fit"]})[r["variant"]] = r["cpu_p50_ms"]
    s = sec.get("settings") or {}
    cols = [("fit", "fit", ""), ("pre: runtime.frames", "pre", ".2f"), ("post: runtime.frames", "post", ".2f"),
            ("pre+post: runtime.frames", "pre + post", ".2f"),
            ("pre: cv2.dnn.blobFromImage", "pre, blobFromImage", ".2f"), ("pre: numpy", "pre, numpy", ".2f"),
            ("post: numpy", "post, numpy", ".2f")]
    return [f"{s.get('frame')} BGR frame ↔ {s.get('model')} RGB [-1, 1] NCHW, OpenCV "
            f"{s.get('opencv')} with one thread, medians of {s.get('reps')} interleaved repetitions "
            f"in ms of thread CPU time (budget for pre + post: {sec.get('budget_ms')} ms):", "",
            markdown_table(list(by.values()), cols)]


def train_md(sec: dict) -> list[str]:
    rows = [dict(r, label=r["variant"] + (" (the default here)" if r.get("default") else ""))
            for r in sec.get("rows", [])]
    auto = sec.get("auto_resolves_to") or {}
    native = sec.get("native_bf16")
    out = [f"{sec.get('config')}, data: {sec.get('data')}, {sec.get('threads')} threads, "
           f"torch {sec.get('torch')}; {sec.get('rounds')} interleaved rounds x "
           f"{sec.get('iters_per_run')} timed iterations per variant after {sec.get('warmup_dropped')} "
           "warm-up ones (data loading included):", "",
           markdown_table(rows, [("label", "variant", ""), ("median_s", "s/it (median)", ".3f"),
                                 ("ratio_to_reference_like", "vs reference-like", ".2f"),
                                 ("n", "iterations timed", "d")]), ""]
    if auto:
        out.append(f"- `--amp auto` on this CPU: {auto.get('autocast')} autocast, channels_last "
                   f"{auto.get('channels_last')}" + ("" if native is None else
                                                     f" (native BF16: {'yes' if native else 'no'})"))
    if sec.get("meets_target") is not None:
        met = sec["meets_target"]
        met = met.get("relative") if isinstance(met, dict) else met
        out.append(f"- target (the default ≤ 0.8x reference-like, same run): {'met' if met else 'not met'}")
    return out


def reference_md(sec: dict) -> list[str]:
    if not sec.get("rows"):
        return _skip_lines(sec)
    return [f"{sec.get('job')}; {sec.get('iterations')} iterations per process, "
            f"{sec.get('rounds')} interleaved rounds, medians (per iteration: after the first "
            f"{sec.get('warmup_dropped')}). Reference "
            + (f"commit {sec['reference_commit']}" if sec.get("reference_commit") else
               f"copy (not a git checkout): {sec.get('reference_source') or 'source not recorded'}")
            + f"; its torch {sec.get('reference_torch')}.", "",
            markdown_table(sec["rows"], [("variant", "variant", ""), ("wall_s_median", "wall s per process", ".1f"),
                                         ("wall_vs_reference", "vs reference", ".2f"),
                                         ("s_per_iter_median", "s/it", ".3f"),
                                         ("s_per_iter_vs_reference", "vs reference", ".2f")]), "",
            *[f"- {k}: `{v}`" for k, v in (sec.get("commands") or {}).items()]]


def quality_md(sec: dict) -> list[str]:
    rows = [dict(r, params_m=r["params"] / 1e6) for r in sec.get("rows", [])]
    out = [f"Setup: {sec.get('setup', '')}.", "", markdown_table(rows, [
        ("ngf", "ngf", "d"), ("params_m", "params (M)", ".2f"), ("gflop", "GFLOP/frame", ".3f"),
        ("iterations", "train iters", "d"), ("psnr_untrained", "PSNR untrained", ".2f"),
        ("psnr", "PSNR dB", ".2f"), ("ssim_untrained", "SSIM untrained", ".3f"), ("ssim", "SSIM", ".3f"),
        ("latency_ms", "ORT FP32 ms", ".2f"), ("torch_latency_ms", "PyTorch ms", ".2f"),
        ("train_s_per_iter", "train s/iter", ".3f")]), "", f"- {sec.get('note', '')}"]
    base = sec.get("baseline_output_equals_input")
    if isinstance(base, dict):
        out.append(f"- trivial baseline (output = input label map): PSNR {fmt(base.get('psnr'), '.2f')} dB, "
                   f"SSIM {fmt(base.get('ssim'), '.3f')}")
    return out


def int8_md(sec: dict) -> list[str]:
    from .int8 import SPEED_COLUMNS

    out = ["Speed and accuracy per generator (random weights with real BatchNorm statistics), "
           "variants interleaved; PSNR / SNR of the output against FP32 on held-out inputs:", "",
           markdown_table(sec.get("rows", []), SPEED_COLUMNS), ""]
    held = sec.get("heldout") or {}
    if held.get("modes"):
        rows = [{"mode": m, **v} for m, v in held["modes"].items()]
        out += [f"Held-out quality of a trained model ({held.get('model')}, {held.get('iterations')} "
                f"iterations; {held.get('held_out')}, {held.get('n')} pairs at {held.get('size')}²):", "",
                markdown_table(rows, [("mode", "inference norm", ""), ("fp32_psnr", "FP32 PSNR", ".3f"),
                                      ("fp32_ssim", "FP32 SSIM", ".4f"), ("int8_psnr", "INT8 PSNR", ".3f"),
                                      ("int8_ssim", "INT8 SSIM", ".4f"), ("psnr_drop_db", "PSNR drop dB", ".3f"),
                                      ("ssim_drop", "SSIM drop", ".4f"),
                                      ("psnr_int8_vs_fp32_db", "INT8 vs FP32 dB", ".1f"),
                                      ("speedup", "INT8 speed-up", ".2f")]), ""]
    else:
        out += _skip_lines(held)
    peaks = sec.get("peaks") or {}
    if peaks.get("rows"):
        out += ["This machine's limits in the same run (GOP/s = 2 x multiply-adds / median time):", "",
                markdown_table(peaks["rows"], [("kernel", "kernel", ""), ("p50_ms", "p50 ms", ".2f"),
                                               ("gop_per_s", "GOP/s", ".1f")])]
    t = sec.get("targets") or {}
    if t:
        out.append(f"- targets: INT8 ≥ {t.get('speedup')}x FP32, ≥ {t.get('psnr_vs_fp32_db')} dB against "
                   f"FP32, held-out drop ≤ {t.get('heldout_psnr_drop_db')} dB / {t.get('heldout_ssim_drop')} SSIM")
    return out


def live_md(sec: dict) -> list[str]:
    rows = []
    for r in sec.get("rows", []):
        lat = r.get("latency") or {}
        rows.append({"ngf": r["ngf"], "run": r["repeat"] + 1, "load": r.get("loadavg_before", "").split(" ")[0],
                     "model": r.get("model_p50_ms"), "p50": lat.get("p50_ms"), "p95": lat.get("p95_ms"),
                     "p99": lat.get("p99_ms"), "target": r.get("target_p50_ms"),
                     "met": "yes" if r.get("meets_target") else "no",
                     "drops": f"{r.get('dropped')} / {r.get('frames_delivered')}",
                     "fps": r.get("fps_delivered")})
    p = sec.get("params") or {}
    return [f"unet_256 at 256², ORT CPU, one thread, {sec.get('video', 'the video')} played at its own "
            f"rate with the newest frame winning, {p.get('frames')} frames per run; target: p50 ≤ "
            "the model's p50 (timed alone right before and after the run) + one source frame "
            "interval + 5 ms.", "",
            markdown_table(rows, [("ngf", "ngf", "d"), ("run", "run", "d"), ("load", "load", ""),
                                  ("model", "model p50 ms", ".1f"), ("p50", "latency p50 ms", ".1f"),
                                  ("p95", "p95 ms", ".1f"), ("p99", "p99 ms", ".1f"),
                                  ("target", "target ms", ".1f"), ("met", "met", ""),
                                  ("drops", "dropped / delivered", ""), ("fps", "FPS delivered", ".1f")])]


def flicker_md(sec: dict) -> list[str]:
    rows = [dict(r, dropout="on" if r["dropout"] else "off") for r in sec.get("rows", [])]
    out = [f"Model: {sec.get('model')}. Video: {sec.get('video')} from frame {sec.get('start_frame')}, "
           f"{(sec.get('params') or {}).get('flicker_frames')} frames; pan: "
           f"{(sec.get('params') or {}).get('pans')} clips of held-out inputs. "
           f"{sec.get('definition', '')}." if sec.get("definition") else
           f"Model: {sec.get('model')}.", "",
           markdown_table(rows, [("norm", "norm mode", ""), ("dropout", "dropout", ""),
                                 ("video", "video", ".4f"), ("video_input", "video, input", ".4f"),
                                 ("pan", "pan", ".4f"), ("pan_input", "pan, input", ".4f")]
                          + ([("video_l2", "video, L2", ".6f"), ("pan_l2", "pan, L2", ".6f")]
                             if any("pan_l2" in r for r in rows) else []))]
    return out


def ort_md(sec: dict) -> list[str]:
    out = [f"{sec.get('model')}; ONNX Runtime {sec.get('onnxruntime')}, "
           f"{sec.get('physical_cores')} physical cores.", "",
           "All variants in one process, interleaved:", "",
           markdown_table(sec.get("rows", []), [("variant", "variant", ""), ("p50_ms", "p50 ms", ".2f"),
                                                ("p90_ms", "p90 ms", ".2f"), ("n", "runs", "d")]), ""]
    if sec.get("separate"):
        out += ["Each variant in its own process, alternating (the runtime's backend):", "",
                markdown_table(sec["separate"], [("variant", "variant", ""), ("p50_ms", "p50 ms", ".2f"),
                                                 ("p90_ms", "p90 ms", ".2f"), ("n", "runs", "d")]), ""]
    pipe, busy = sec.get("pipeline"), sec.get("pipeline_busy")
    if isinstance(pipe, dict) and "spin" in pipe:
        frames = (sec.get("config") or {}).get("pipeline")
        out.append(f"The video pipeline ({frames} frames per run), spinning on / off, alternating:")
        out.append("")
        rows = [dict(machine=label, spin=p["spin"]["median_fps"], nospin=p["no-spin"]["median_fps"],
                     ratio=p["no-spin"]["median_fps"] / p["spin"]["median_fps"],
                     runs=" / ".join(", ".join(format(f, ".1f") for f in p[k]["fps"]) for k in ("spin", "no-spin")))
                for label, p in (("idle", pipe), ("beside one busy process", busy))
                if isinstance(p, dict) and "spin" in p]
        out.append(markdown_table(rows, [("machine", "machine", ""), ("spin", "spin: median FPS", ".1f"),
                                         ("nospin", "no spin: median FPS", ".1f"),
                                         ("ratio", "no spin / spin", ".2f"),
                                         ("runs", "FPS per run (spin / no spin)", "")]))
    elif isinstance(pipe, dict):
        out += _skip_lines(pipe)
    return out


def edge_md(sec: dict, images: bool = False) -> list[str]:
    """The edge table; ``images``: with the grids' links (RESULTS.md, beside them)."""
    from .edge import markdown

    return markdown(sec, images)


def steady_md(sec: dict, images: bool = False) -> list[str]:
    """The steady table; ``images``: with the pictures' links (RESULTS.md, beside them)."""
    from .steady import markdown

    return markdown(sec, images)


def generic_md(sec: dict) -> list[str]:
    """A section without its own renderer (a new one): its rows, every scalar column."""
    rows = sec.get("rows") if isinstance(sec.get("rows"), list) else []
    keys = list(dict.fromkeys(k for r in rows if isinstance(r, dict) for k, v in r.items()
                              if not isinstance(v, (dict, list))))
    out = [markdown_table(rows, [(k, k, ".4g" if any(isinstance(r.get(k), float) for r in rows) else "")
                                 for k in keys]), ""] if keys else []
    return out + [f"- {k}: {fmt(v, '.4g') if isinstance(v, float) else fmt(v)}" for k, v in sec.items()
                  if k not in ("rows", "skipped", "error") and not isinstance(v, (dict, list))]


SECTION_MD: dict[str, Callable[[dict], list[str]]] = {
    "inference": inference_md, "e2e": e2e_md, "frames": frames_md, "train": train_md,
    "reference": reference_md, "quality": quality_md, "int8": int8_md, "edge": edge_md,
    "live": live_md, "flicker": flicker_md, "ort": ort_md, "steady": steady_md}


def section_block(merged: dict, name: str, render=None) -> list[str]:
    """One section as the docs show it: the run it comes from, then its figures."""
    sec = merged["sections"].get(name)
    src = merged["source"].get(name)
    lines = [run_line(src)]
    if sec is None:
        return lines
    lines.append("")
    if "error" in sec:
        return lines + [f"- failed: {sec['error']}"]
    if not measured(sec):
        return lines + _skip_lines(sec)
    return lines + (render or SECTION_MD.get(name, generic_md))(sec)


# --------------------------------------------------------------------------- the summary
def summary_rows(merged: dict) -> list[dict]:
    """The README's Performance summary: one row per measured claim, each naming its run."""
    S, src = merged["sections"], merged["source"]
    rows = []

    def add(name, what, measured_text):
        if measured(S.get(name)) and measured_text:
            rows.append({"what": what, "measured": measured_text, "run": short_run(src.get(name))})

    inf = S.get("inference") or {}
    by = {(r["ngf"], r["size"], r["backend"], r["norm_mode"]): r for r in inf.get("rows", [])}
    ort = [by[k] for k in sorted(by, key=lambda k: -k[0]) if k[1] == 256 and k[2] == "ort-fp32"
           and k[3] == "running"]
    if ort:
        text = " / ".join(f"ngf {r['ngf']}: {r['p50_ms']:.1f} ms ({r['fps']:.0f} FPS)" for r in ort)
        t64 = by.get((ort[0]["ngf"], 256, "torch-fp32", "running"))
        if t64:
            text += f"; PyTorch eager FP32 ngf {ort[0]['ngf']}: {t64['p50_ms']:.1f} ms"
        add("inference", "unet_256 at 256², batch 1, ONNX Runtime FP32, median", text)
    e2e = S.get("e2e") or {}
    if e2e.get("summary"):
        s = e2e["summary"].get("normal") or next(iter(e2e["summary"].values()))
        add("e2e", f"`pix2pix run` on a real video ({s['frames']} frames), ngf "
                   f"{(e2e.get('model') or {}).get('ngf')}, vs the model alone",
            f"{100 * s['median_ratio']:.1f} % of the model-only FPS (median part), "
            f"{100 * s['whole_video_ratio']:.1f} % over the whole video")
    fr = S.get("frames") or {}
    if fr.get("pre_plus_post_p50_ms"):
        add("frames", "pre- + post-processing, 640×480 frame ↔ 256²",
            f"{_range(list(fr['pre_plus_post_p50_ms'].values()), '.2f')} ms per frame (CPU time, "
            f"budget {fr.get('budget_ms')} ms)")
    tr = S.get("train") or {}
    if tr.get("rows"):
        t = {r["variant"]: r for r in tr["rows"]}
        default = next((r for r in tr["rows"] if r.get("default")), None)
        parts = [f"{default['median_s']:.3f} s/it default ({default['variant']})"] if default else []
        parts += [f"{t[v]['median_s']:.3f} s/it {label}" for v, label in
                  (("fp32", "FP32 fused Adam"), ("reference-like: fp32, for-loop Adam", "reference-like FP32"))
                  if v in t and not t[v].get("default")]
        add("train", "training, unet_256 ngf 64 + PatchGAN, batch 1, 256² (our loop)", "; ".join(parts))
    ref = S.get("reference") or {}
    if ref.get("rows"):
        add("reference", f"training vs the reference code, {ref.get('iterations')} iterations, same run",
            "; ".join(f"{r['variant']}: {r['wall_s_median']:.1f} s ({r['wall_vs_reference']:.2f}x)"
                      for r in ref["rows"]))
    i8 = S.get("int8") or {}
    if i8.get("speed"):
        held = (i8.get("heldout") or {}).get("modes") or {}
        drop = (f"; held-out PSNR drop {_range([m['psnr_drop_db'] for m in held.values()], '.3f')} dB"
                if held else "")
        add("int8", "INT8 vs FP32, unet_256 at 256², ONNX Runtime CPU",
            ", ".join(f"{s['int8_speedup']:.2f}x at {s['model'].split()[-2]} {s['model'].split()[-1]}"
                      for s in i8["speed"]) + drop)
    lv = S.get("live") or {}
    if lv.get("rows"):
        met = sum(bool(r.get("meets_target")) for r in lv["rows"])
        add("live", "live capture-to-output latency, video replayed as a camera",
            "; ".join(f"ngf {n}: p50 {_range([r['latency']['p50_ms'] for r in lv['rows'] if r['ngf'] == n], '.0f')} ms"
                      for n in dict.fromkeys(r["ngf"] for r in lv["rows"]))
            + f"; target met in {met} of {len(lv['rows'])} runs")
    fl = S.get("flicker") or {}
    if fl.get("rows"):
        by_mode = {(r["norm"], r["dropout"]): r for r in fl["rows"]}
        on, off = by_mode.get(("per-image", True)), by_mode.get(("per-image", False))
        if on and off:
            add("flicker", "flicker (warping error, video), per-image norm",
                f"dropout on {on['video']:.4f}, off {off['video']:.4f} (input {off['video_input']:.4f})")
    ed = S.get("edge") or {}
    for task, t in (ed.get("tasks") or {}).items():
        d = (t.get("targets") or {}).get("distilled")
        if d:
            add("edge", f"distilled ngf-16 student vs its ngf-64 teacher ({task}), ORT CPU",
                f"{d['speedup']:.1f}x faster")
    st = S.get("steady") or {}
    for task in dict.fromkeys(r["task"] for r in st.get("rows") or []):
        by = {r["model"]: r for r in st["rows"] if r["task"] == task}
        if "baseline" in by and "both" in by:
            b, s2 = by["baseline"], by["both"]
            add("steady", f"steady video ({task}): --antialias --lambda-stability vs the baseline",
                f"pan warping error x{s2['pan_l1'] / b['pan_l1']:.2f}, held-out PSNR "
                f"{s2['psnr'] - b['psnr']:+.2f} dB, SSIM {s2['ssim'] - b['ssim']:+.3f}"
                + _steady_extra(st))
    skipped = [s for s in (inf.get("skipped") or []) if isinstance(s, dict)
               and s.get("backend") == "tensorrt-fp16"]
    if skipped:
        rows.append({"what": "TensorRT FP16 / INT8, every GPU figure",
                     "measured": f"not measured: {skipped[0]['reason']}", "run": short_run(src.get("inference"))})
    return rows


def _steady_extra(st: dict) -> str:
    """The steady row's latency ratios, and where its quality columns come from when another run."""
    out, lat = "", st.get("latency") or {}
    if lat.get("ngf64_ratio") and lat.get("ngf16_ratio"):
        out += (f"; ORT CPU latency (--antialias) x{lat['ngf64_ratio']:.2f} at ngf 64, "
                f"x{lat['ngf16_ratio']:.2f} at ngf 16")
        if lat.get("ngf64_zero_ratio") and lat.get("ngf16_zero_ratio"):
            out += (f" (--antialias-pad zero: x{lat['ngf64_zero_ratio']:.2f}, "
                    f"x{lat['ngf16_zero_ratio']:.2f})")
    src = st.get("quality_source") or {}
    if src.get("file"):
        out += f" (quality columns from `{src['file']}`, {src.get('date', '?')})"
    return out


def runs_table(merged: dict) -> list[str]:
    rows = [dict(r, sections=", ".join(r["sections"]), file=f"`{r['file']}`", command=f"`{r['command']}`")
            for r in merged["runs"]]
    if not rows:
        return ["*No result files yet: run `make bench`.*"]
    head = ("All figures come from one run:" if len(rows) == 1 else
            f"The figures come from {len(rows)} runs, on the days and machines below: read each "
            "table with the run it names, and compare figures only within one table.")
    return [head, "", markdown_table(rows, [("file", "file", ""), ("date", "date", ""), ("machine", "machine", ""),
                                  ("sections", "sections", ""), ("command", "command", "")])]


def durations(merged: dict) -> list[str]:
    """Seconds per full section, from the newest result file that recorded them."""
    rows = []
    for name in TITLES:
        file, secs = merged["seconds"].get(name, (None, None))
        run = next((r for r in merged["runs"] if r["file"] == file), None)
        rows.append({"section": name, "seconds": "not recorded" if secs is None else
                     f"{secs:.0f} s" + (f" ({secs / 60:.1f} min)" if secs >= 60 else ""), "run": short_run(run),
                     "load": run["load"] if run else "–"})
    return [markdown_table(rows, [("section", "section", ""), ("seconds", "full level, as recorded", ""),
                                  ("run", "run", ""), ("load", "load", "")])]


def summary_block(merged: dict) -> list[str]:
    rows = summary_rows(merged)
    if not rows:
        return ["*Nothing measured yet: run `make bench`.*"]
    one = len({r["run"] for r in rows}) == 1
    head = (f"Every figure below comes from one run: {rows[0]['run']}." if one else
            f"These figures come from {len({r['run'] for r in rows})} different runs, on the machines and "
            "dates each row names; compare figures only within a row.")
    return [head, "", markdown_table(rows, [("what", "what", ""), ("measured", "measured", ""),
                                            ("run", "run (file, date, machine)", "")])]


# name -> renderer of a generated block (merged results -> Markdown lines)
BLOCKS: dict[str, Callable[[dict], list[str]]] = {
    "summary": summary_block,
    "runs": runs_table,
    "durations": durations,
    "onnx-vs-torch": lambda m: section_block(m, "inference", onnx_vs_torch_md),
    **{name: (lambda m, n=name: section_block(m, n)) for name in SECTION_MD},
}


def render(name: str, merged: dict) -> str:
    if name not in BLOCKS:
        raise KeyError(f"no renderer for the generated block {name!r} (benchmarks/report.py BLOCKS)")
    return "\n".join(BLOCKS[name](merged)).rstrip() + "\n"


def fill_blocks(text: str, merged: dict) -> str:
    """``text`` with every generated block rewritten from ``merged``."""
    return BLOCK.sub(lambda m: m.group(1) + render(m.group("name"), merged) + m.group(4), text)


def doc_pages(repo: Path = REPO) -> list[Path]:
    return [p for pattern in DOC_PAGES for p in sorted(repo.glob(pattern))]


def stale_blocks(merged: dict, repo: Path = REPO) -> list[str]:
    """Generated blocks whose text is not what the results give ("page: block")."""
    bad = []
    for page in doc_pages(repo):
        text = page.read_text(encoding="utf-8")
        for m in BLOCK.finditer(text):
            if m.group("body") != render(m.group("name"), merged):
                bad.append(f"{page.relative_to(repo)}: {m.group('name')}")
    return bad


# --------------------------------------------------------------------------- RESULTS.md
def to_markdown(merged: dict, plots: list[str], title: str = "Benchmark results") -> str:
    lines = [f"# {title}", "", "Generated by `benchmarks/report.py` from the JSON files beside this page; "
             "every section names the run it comes from.", "", "## Runs", "", *runs_table(merged), ""]
    for name in [*TITLES, *(n for n in merged["sections"] if n not in TITLES)]:
        heading = TITLES.get(name, name)
        if name not in merged["sections"]:
            continue
        render = {"inference": lambda s: inference_md(s, full=True),
                  "edge": lambda s: edge_md(s, images=True),
                  "steady": lambda s: steady_md(s, images=True)}.get(name)
        lines += [f"## {heading}", "", *section_block(merged, name, render), ""]
        if name == "inference" and LATENCY_PNG in plots:
            lines += [f"![latency vs model size]({LATENCY_PNG})", ""]
        if name == "quality" and QUALITY_PNG in plots:
            lines += [f"![quality vs latency]({QUALITY_PNG})", ""]
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
def write_report(merged: dict, out_dir: str | Path, title: str = "Benchmark results") -> list[Path]:
    """RESULTS.md and the plots of ``merged`` into ``out_dir``; returns the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = merged.get("sections", {})
    written = []
    if measured(sections.get("inference")) and (p := plot_latency(sections["inference"], out_dir / LATENCY_PNG)):
        written.append(p)
    if measured(sections.get("quality")) and (p := plot_quality(sections["quality"], out_dir / QUALITY_PNG)):
        written.append(p)
    md = out_dir / "RESULTS.md"
    md.write_text(to_markdown(merged, [p.name for p in written], title), encoding="utf-8")
    return [md, *written]


def update(folder: Path = RESULTS_DIR, repo: Path = REPO) -> list[Path]:
    """The full report step on the committed results: delete stale result files, write
    RESULTS.md and the plots, rewrite every generated block of the README and docs/."""
    merged = merge(result_files(folder))
    for stale in merged["stale"]:
        stale.unlink()
    written = write_report(merged, folder, "Benchmark results (the figures of README.md and docs/)")
    for page in doc_pages(repo):
        text = page.read_text(encoding="utf-8")
        new = fill_blocks(text, merged)
        if new != text:
            page.write_text(new, encoding="utf-8")
            written.append(page)
    return written + [Path(f"deleted {p.name}") for p in merged["stale"]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n")[0])
    ap.add_argument("json", nargs="*", type=Path,
                    help="result files of one report (default: every file in benchmarks/results)")
    ap.add_argument("--out", type=Path, default=None, help="where RESULTS.md goes (with files given)")
    ap.add_argument("--check", action="store_true",
                    help="only check that every generated block in README.md and docs/ matches")
    args = ap.parse_args(argv)
    if args.check:
        bad = stale_blocks(merge(result_files()))
        for b in bad:
            print(f"out of date: {b} (run python -m benchmarks.report)")
        return 1 if bad else 0
    if args.json:
        merged = merge([(p, load(p)) for p in args.json])
        files = write_report(merged, args.out or args.json[0].parent)
    else:
        files = update()
    for p in files:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
