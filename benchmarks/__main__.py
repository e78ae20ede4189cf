"""The benchmark suite: every measured figure of the README and docs/ comes from one command.

    make bench                               # the full run (hours on a 2-core CPU: docs/development.md)
    python -m pix2pix_edge.benchmarks ...    # the same suite from any folder
    python -m benchmarks ...                 # the same, in the checkout's root

Sections (``--only a,b``; each is a module with ``run(level, **opts) -> dict``):

* ``inference``  generator latency / FPS / GFLOP/s per backend and width (inference.py)
* ``e2e``        ``pix2pix run`` on the real video vs model-only FPS (end_to_end.py)
* ``frames``     pre/post-processing cost per frame, runtime.frames vs alternatives (frames_speed.py)
* ``train``      seconds per training iteration per speed option (train_speed.py)
* ``reference``  the reference implementation's training, side by side with ours: optional,
                 needs ``--reference-dir`` (reference.py; skipped with the reason otherwise)
* ``quality``    held-out PSNR / SSIM vs latency for ngf 16/32/64 (quality_vs_speed.py)
* ``int8``       ONNX Runtime CPU INT8 vs FP32: speed, accuracy, held-out quality, peaks (int8.py)
* ``edge``       teacher vs edge-sized students on facades and edges2shoes_handbags (edge.py)
* ``live``       capture-to-output latency on the video replayed as a camera (live.py)
* ``flicker``    warping error per inference mode, real video and a pan (flicker.py)
* ``ort``        ONNX Runtime session options, spinning threads (ort_session_options.py)
* ``steady``     steady video: --antialias / --lambda-stability / fine-tune vs the baseline:
                 held-out quality, pan and real-video warping error, latency (steady.py)

Levels: full (default: the figures the docs show), ``--quick`` (each section takes seconds to
well under a minute on a 2-core CPU: a check that everything runs; its timings are not
results), ``--smoke`` (tests). Progress goes to stderr while a section runs.

Writes ``<out>/<level>-<UTC time>.json``, rewritten after every section (a crash keeps what was
measured): the machine (CPU model and flags, cores, torch's CPU kernels), versions, date, the
exact command, and per section its result, its seconds and the load average before and after.
Then the report step (benchmarks/report.py): a full run into benchmarks/results/ deletes the
result files whose every section a newer file measured and regenerates RESULTS.md, the plots,
the README's Performance summary and the measured tables of docs/ from the files that remain.
``--quick`` (into benchmarks/results/quick/, not committed), ``--smoke`` and ``--out DIR`` write
RESULTS.md and the plots for that run only. A section that cannot run here (no GPU, no dataset,
no reference checkout) is reported as skipped with the reason; one that fails is reported with
its error and the others still run.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import traceback
from pathlib import Path

from . import report
from .common import CHECKOUT, RESULTS_DIR, command_line, log, machine_info, optional, write_json
from pix2pix_edge.runtime.machine import load_average

# section -> its module (in this package); every module has ``run(level, **opts) -> dict``
SECTIONS = {
    "inference": "inference",
    "e2e": "end_to_end",
    "frames": "frames_speed",
    "train": "train_speed",
    "reference": "reference",
    "quality": "quality_vs_speed",
    "int8": "int8",
    "edge": "edge",
    "live": "live",
    "flicker": "flicker",
    "ort": "ort_session_options",
    "steady": "steady",
}
HEARTBEAT_S = 30.0   # a "still running" line when a section has been quiet this long


def call_section(name: str, level: str, opts: dict | None = None) -> dict:
    """``run(level, **opts)`` of the section's module ("smoke" | "quick" | "full"; options the
    user did not give are left out). A missing module is a skip, not an error."""
    module, why = optional(f"{__package__}.{SECTIONS[name]}")
    if module is None:
        return {"skipped": why}
    out = module.run(level, **{k: v for k, v in (opts or {}).items() if v is not None})
    if not isinstance(out, dict):
        return {"error": f"{SECTIONS[name]}.run returned {type(out).__name__}, not a dict"}
    return out


def status(section: dict) -> str:
    if "error" in section:
        return "FAILED: " + section["error"]
    if isinstance(section.get("skipped"), str) and not section.get("rows"):
        return "skipped: " + section["skipped"]
    return "done"


class Heartbeat:
    """Prints "<section>: still running (N s)" every HEARTBEAT_S seconds until stopped, so a long
    step inside a section (a quantisation, a training run) never looks like a hang."""

    def __init__(self, name: str):
        self.name, self.t0, self.stop = name, time.perf_counter(), threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self):
        while not self.stop.wait(HEARTBEAT_S):
            log(f"{self.name}: still running ({time.perf_counter() - self.t0:.0f} s, load "
                f"{load_average()})")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()


def torch_threads(n: int | None = None) -> int | None:
    """torch's intra-op thread count (set it to ``n`` when given); None without torch."""
    try:
        import torch
    except ImportError:
        return None
    if n:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def _split(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def section_options(name: str, args, out: Path) -> dict | None:
    """The command-line options a section takes (None: none)."""
    return {
        "quality": {"iters": args.quality_iters, "widths": _split(args.quality_widths)},
        "int8": {"trained_run": args.int8_run},
        "edge": {"runs": args.edge_runs, "tasks": _split(args.edge_tasks),
                 "variants": _split(args.edge_variants), "png_dir": out},
        "flicker": {"run_dir": args.flicker_run},
        "steady": {"runs": args.steady_runs, "train": args.steady_train or None,
                   "parts": _split(args.steady_parts), "variants": _split(args.steady_variants),
                   "tasks": _split(args.steady_tasks), "png_dir": out},
        "reference": {"reference_dir": args.reference_dir,
                      "reference_python_path": args.reference_python,
                      "iterations": args.reference_iters},
    }.get(name)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\nWrites ")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Durations per section (full and quick, and under what load they were measured): "
               "docs/development.md. The figures: docs/performance.md.")
    ap.add_argument("--quick", action="store_true",
                    help="a check that every section runs (smaller models, few repetitions; the "
                         "timings are not results): each section well under a minute on a 2-core "
                         "CPU (measured: 1-31 s per section, 2 min 17 s in all, on a 2-core AMD "
                         "EPYC shared with other jobs at load average 4-6, 2026-12-06)")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tests: seconds
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help=f"comma-separated sections to run (default: all of {','.join(SECTIONS)})")
    ap.add_argument("--out", type=Path, default=None,
                    help="output directory (default: benchmarks/results, or results/quick for "
                         "--quick); only the default full run updates the docs")
    g = ap.add_argument_group("section options")
    g.add_argument("--reference-dir", type=Path, default=None, metavar="DIR",
                   help="reference section: a checkout of junyanz/pytorch-CycleGAN-and-pix2pix "
                        "(never downloaded by the suite); its Python: DIR/.venv/bin/python with "
                        "torch, torchvision, dominate and visdom (benchmarks/reference.py)")
    g.add_argument("--reference-python", type=Path, default=None, metavar="PY",
                   help="reference section: the Python that runs the reference's train.py")
    g.add_argument("--reference-iters", type=int, default=None, metavar="N",
                   help="reference section: iterations per process (default 100 full, 8 quick)")
    g.add_argument("--flicker-run", type=Path, default=None, metavar="RUN",
                   help="flicker section: a trained run that held pairs out (default: it trains "
                        "a small one)")
    g.add_argument("--quality-iters", type=int, default=None, metavar="N",
                   help="quality section: training iterations per width (default: 1000 full, 15 quick)")
    g.add_argument("--quality-widths", default=None, metavar="NGF,...",
                   help="quality section: generator widths (default: 16,32,64 full)")
    g.add_argument("--int8-run", type=Path, default=None, metavar="RUN",
                   help="int8 section: a facades run trained with --holdout-last 40 for the "
                        "held-out comparison (default: it trains a small one)")
    g.add_argument("--edge-runs", type=Path, default=None, metavar="DIR",
                   help="edge section: keep the trained runs in DIR and reuse finished ones "
                        "(default: a temporary folder)")
    g.add_argument("--edge-variants", default=None, metavar="NAME,...",
                   help="edge section: which students (default: benchmarks/edge.py DEFAULT_VARIANTS; "
                        "ablations: distilled-noFeat, distilled-noGT)")
    g.add_argument("--edge-tasks", default=None, metavar="TASK,...",
                   help="edge section: facades, edges (default: both)")
    g.add_argument("--steady-train", action="store_true",
                   help="steady section: train the rows (hours on a 2-core CPU) instead of taking "
                        "the quality columns from the newest committed result")
    g.add_argument("--steady-runs", type=Path, default=None, metavar="DIR",
                   help="steady section: keep the trained runs in DIR and reuse finished ones")
    g.add_argument("--steady-parts", default=None, metavar="PART,...",
                   help="steady section: quality, latency (default: both)")
    g.add_argument("--steady-variants", default=None, metavar="NAME,...",
                   help="steady section: which rows (default: benchmarks/steady.py ROWS + CHOICES)")
    g.add_argument("--steady-tasks", default=None, metavar="TASK,...",
                   help="steady section: facades, edges (default: both)")
    return ap


def main(argv=None, prog: str = "python -m benchmarks") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser()
    args = ap.parse_args(argv)
    level = "smoke" if args.smoke else "quick" if args.quick else "full"
    only = _split(args.only) or []
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    out = (args.out or (RESULTS_DIR if level == "full" else RESULTS_DIR / "quick")).resolve()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    json_path = out / f"{level}-{stamp}.json"

    result = {"suite": "pix2pix-edge benchmarks", "level": level,
              "command": command_line(prog, argv), "cwd": str(Path.cwd()),
              "machine": machine_info(), "sections": {}, "seconds": {}, "load": {}}
    log(f"benchmarks ({level}): {', '.join(only)} -> {json_path}")
    for i, name in enumerate(only, 1):
        log(f"[{i}/{len(only)}] {name}: starting (load {load_average()})")
        before = load_average()
        t0 = time.perf_counter()
        threads = torch_threads()
        try:
            with Heartbeat(name):
                section = call_section(name, level, section_options(name, args, out))
        except Exception as e:  # noqa: BLE001 - one failing section must not lose the others
            traceback.print_exc()
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            section = {"error": f"{type(e).__name__}: {first}"[:300]}
        finally:
            torch_threads(threads)   # a section that changed torch's thread count leaves none behind
        result["sections"][name] = section
        result["seconds"][name] = round(time.perf_counter() - t0, 1)
        result["load"][name] = {"before": before, "after": load_average()}
        log(f"[{i}/{len(only)}] {name}: {status(section)} ({result['seconds'][name]} s, load "
            f"{before} -> {result['load'][name]['after']})")
        write_json(json_path, result)
    if out == RESULTS_DIR.resolve() and level == "full" and CHECKOUT:
        files = report.update(out)          # stale files out, RESULTS.md, plots, README, docs/
    else:
        files = report.write_report(report.merge([(json_path, result)]), out)
    for p in [json_path, *files]:
        print(p)
    return 1 if any("error" in s for s in result["sections"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main(prog=f"python -m {__package__}"))
