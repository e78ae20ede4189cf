"""Run the benchmark suite: ``python -m benchmarks [--quick] [--only SECTIONS]``.

Sections (each can be chosen with ``--only``):

* ``inference``  generator latency / FPS / GFLOP/s per backend and width (benchmarks/inference.py)
* ``e2e``        ``pix2pix run`` on the real video vs model-only FPS (benchmarks/end_to_end.py)
* ``frames``     pre/post-processing cost per frame, runtime.frames vs alternatives
                 (benchmarks/frames_speed.py)
* ``train``      seconds per training iteration and speed options (benchmarks/train_speed.py)
* ``quality``    held-out PSNR/SSIM vs latency for ngf 16/32/64 (benchmarks/quality_vs_speed.py)
* ``int8``       ONNX Runtime CPU INT8 vs FP32 (and sub-pixel FP32): speed, accuracy, held-out
                 quality of a trained model, the CPU's FP32/INT8/BF16 peaks (benchmarks/int8.py)
* ``edge``       teacher vs edge-sized students (scratch, distilled, cheaper decoders, pix2pixHD
                 objective) on facades and edges2shoes_handbags (benchmarks/edge.py)
* ``steady``     steady video: --antialias / --lambda-stability / fine-tune vs the baseline,
                 held-out quality, warping error on a pan and the real video, latency
                 (benchmarks/steady.py)

Writes ``<out>/<level>-<UTC time>.json`` (rewritten after every section, so a crash keeps what
was measured), ``<out>/RESULTS.md`` and PNG plots. The full run writes to benchmarks/results/
(committed, embedded in the README); ``--quick`` to benchmarks/results/quick/ (not committed).
A section that cannot run here (no GPU, no dataset, a missing script) is reported as skipped
with the reason; a section that fails is reported with its error and the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import time
import traceback
from pathlib import Path

from benchmarks.common import RESULTS_DIR, log, machine_info, optional, write_json

# section -> its module; every module has ``run(level, **opts) -> dict``
SECTIONS = {
    "inference": "benchmarks.inference",
    "e2e": "benchmarks.end_to_end",
    "frames": "benchmarks.frames_speed",
    "train": "benchmarks.train_speed",
    "quality": "benchmarks.quality_vs_speed",
    "int8": "benchmarks.int8",
    "edge": "benchmarks.edge",
    "steady": "benchmarks.steady",
}


def call_section(name: str, level: str, opts: dict | None = None) -> dict:
    """``run(level, **opts)`` of the section's module ("smoke" | "quick" | "full"; options the
    user did not give are left out). A missing module is a skip, not an error."""
    module, why = optional(SECTIONS[name])
    if module is None:
        return {"skipped": why}
    out = module.run(level, **{k: v for k, v in (opts or {}).items() if v is not None})
    if not isinstance(out, dict):
        return {"error": f"{SECTIONS[name]}.run returned {type(out).__name__}, not a dict"}
    return out


def _split(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="a couple of minutes on a 2-core CPU: ngf 16, smallest sizes, few repetitions")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tests: seconds
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help=f"comma-separated sections to run (default: all of {','.join(SECTIONS)})")
    ap.add_argument("--quality-iters", type=int, default=None, metavar="N",
                    help="training iterations per width in the quality section "
                         "(default: 1000 full, 60 quick)")
    ap.add_argument("--quality-widths", default=None, metavar="NGF,...",
                    help="generator widths in the quality section (default: 16,32,64 full)")
    ap.add_argument("--int8-run", type=Path, default=None, metavar="RUN",
                    help="int8 section: a facades run trained with --holdout-last 40 for the "
                         "held-out comparison (default: it trains a small one)")
    ap.add_argument("--edge-runs", type=Path, default=None, metavar="DIR",
                    help="edge section: keep the trained runs in DIR and reuse finished ones "
                         "(default: a temporary folder)")
    ap.add_argument("--edge-variants", default=None, metavar="NAME,...",
                    help="edge section: which students (default: benchmarks/edge.py DEFAULT_VARIANTS; "
                         "ablations: distilled-noFeat, distilled-noGT)")
    ap.add_argument("--edge-tasks", default=None, metavar="TASK,...",
                    help="edge section: facades, edges (default: both)")
    ap.add_argument("--out", type=Path, default=None,
                    help="output directory (default: benchmarks/results, or results/quick for --quick)")
    args = ap.parse_args(argv)

    level = "smoke" if args.smoke else "quick" if args.quick else "full"
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    out = args.out or (RESULTS_DIR if level == "full" else RESULTS_DIR / "quick")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    json_path = out / f"{level}-{stamp}.json"

    result = {"suite": "pix2pix-edge benchmarks", "level": level, "machine": machine_info(),
              "sections": {}, "seconds": {}}
    log(f"benchmarks ({level}): {', '.join(only)} -> {json_path}")
    for name in only:
        t0 = time.perf_counter()
        try:
            widths = args.quality_widths.split(",") if args.quality_widths else None
            opts = ({"iters": args.quality_iters, "widths": widths} if name == "quality" else
                    {"trained_run": args.int8_run} if name == "int8" else
                    {"runs": args.edge_runs, "tasks": _split(args.edge_tasks),
                     "variants": _split(args.edge_variants)} if name == "edge" else None)
            section = call_section(name, level, opts)
        except Exception as e:  # noqa: BLE001 - one failing section must not lose the others
            traceback.print_exc()
            section = {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:300]}
        result["sections"][name] = section
        result["seconds"][name] = round(time.perf_counter() - t0, 1)
        status = ("skipped: " + section["skipped"]) if isinstance(section.get("skipped"), str) \
            and not section.get("rows") else ("FAILED: " + section["error"]) if "error" in section \
            else "done"
        log(f"{name}: {status} ({result['seconds'][name]} s)")
        write_json(json_path, result)
    report = importlib.import_module("benchmarks.report")
    files = report.write_report(result, out)
    for p in [json_path, *files]:
        print(p)
    return 1 if any("error" in s for s in result["sections"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
