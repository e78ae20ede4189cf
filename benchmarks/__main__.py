"""Run the benchmark suite: ``python -m benchmarks [--quick] [--only SECTIONS]``.

Sections (each can be chosen with ``--only``):

* ``inference``  generator latency / FPS / GFLOP/s per backend and width (benchmarks/inference.py)
* ``e2e``        ``pix2pix run`` on the real video vs model-only FPS (benchmarks/end_to_end.py)
* ``frames``     pre/post-processing cost per frame, runtime.frames vs alternatives
                 (benchmarks/frames_speed.py)
* ``train``      seconds per training iteration and speed options (benchmarks/train_speed.py)
* ``quality``    held-out PSNR/SSIM vs latency for ngf 16/32/64 (benchmarks/quality_vs_speed.py)

Writes ``<out>/<level>-<UTC time>.json`` (rewritten after every section, so a crash keeps what
was measured), ``<out>/RESULTS.md`` and PNG plots. The full run writes to benchmarks/results/
(committed, embedded in the README); ``--quick`` to benchmarks/results/quick/ (not committed).
A section that cannot run here (no GPU, no dataset, a missing script) is reported as skipped
with the reason; a section that fails is reported with its error and the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import time
import traceback
from pathlib import Path

from benchmarks.common import RESULTS_DIR, log, machine_info, optional, write_json

SECTIONS = ("inference", "e2e", "frames", "train", "quality")
# section -> (module, names of its entry function to try, in order)
MODULES = {
    "inference": ("benchmarks.inference", ("run",)),
    "e2e": ("benchmarks.end_to_end", ("run", "bench", "benchmark")),
    "frames": ("benchmarks.frames_speed", ("run",)),
    "train": ("benchmarks.train_speed", ()),  # see train_section
    "quality": ("benchmarks.quality_vs_speed", ("run",)),
}


def train_section(level: str) -> dict:
    """benchmarks/train_speed.py (owned by the training loop) is a script with ``main(argv)``
    that writes its own JSON: run it with the level's flags into a temporary file and read it."""
    import json
    import tempfile

    module, why = optional("benchmarks.train_speed")
    if module is None:
        return {"skipped": why}
    if level == "smoke":
        return {"skipped": "not run at smoke level (unet_256 training takes seconds per iteration)"}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        path = Path(tmp) / "train_speed.json"
        # Full level: every speed option, torch.compile included (it compiles for about a
        # minute per run on 2 cores), in 3 interleaved rounds x 8 timed iterations (~5 min).
        args = ["--quick"] if level == "quick" else ["--rounds", "3", "--iters", "8", "--compile"]
        rc = module.main(["--json", str(path), *args])
        if rc or not path.is_file():
            return {"error": f"benchmarks/train_speed.py exited with {rc} and wrote no result"}
        data = json.loads(path.read_text(encoding="utf-8"))
    rows = [{k: v for k, v in r.items() if k != "all_s"} for r in data.pop("variants", [])]
    ref = data.get("reference_s")  # the reference PyTorch code on these machines (REFERENCE.md)
    for r in rows:
        r["speedup_vs_reference_code"] = round(ref / r["median_s"], 2) if ref and r.get("median_s") else None
    return {"rows": rows, **{k: v for k, v in data.items() if not isinstance(v, (dict, list))}}


def call_section(name: str, level: str, extra: dict | None = None) -> dict:
    """Import a section's module and call its entry with the level it understands.

    Sections written by other parts of the project may take ``level`` ("smoke" | "quick" |
    "full") or ``quick`` (bool); both are supported. A missing module is a skip, not an error."""
    if name == "train":
        return train_section(level)
    module_name, entries = MODULES[name]
    module, why = optional(module_name)
    if module is None:
        return {"skipped": why}
    fn = next((getattr(module, e) for e in entries if callable(getattr(module, e, None))), None)
    if fn is None:
        return {"skipped": f"{module_name} has no entry function ({' / '.join(entries)})"}
    params = inspect.signature(fn).parameters
    kwargs = {}
    if "level" in params:
        kwargs["level"] = level
    elif "quick" in params:
        kwargs["quick"] = level != "full"
    if "smoke" in params:
        kwargs["smoke"] = level == "smoke"
    if "out" in params:
        kwargs["out"] = None  # the suite writes one JSON for everything, no side files
    kwargs.update({k: v for k, v in (extra or {}).items() if k in params and v is not None})
    out = fn(**kwargs)
    if isinstance(out, list):
        out = {"rows": out}
    if not isinstance(out, dict):
        return {"error": f"{module_name}.{fn.__name__} returned {type(out).__name__}, not a dict"}
    return out


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
            extra = {"iters": args.quality_iters, "widths": widths} if name == "quality" else None
            section = call_section(name, level, extra)
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
