"""What every benchmark shares: machine facts, timing, statistics, JSON and Markdown writers,
and the data loaders.

Data rules: every image a benchmark feeds a model is read as the product reads it
(runtime/contract.py: PIL, RGB, bicubic, [-1, 1]); training, calibration and warm-up inputs come
only from pairs a run trains on, quality figures only from the pairs it held out
(:data:`FACADES_HELD_OUT`, or the hold-out a run recorded: ``contract.held_out(run)``).

Timing rules (so numbers can be trusted and rerun):

* warm-up runs first, then repeated runs; we report the **median** (p50) and p90 / p99, and
  fps = batch * 1000 / p50_ms (:func:`runtime.stats.latency_stats`, the definition
  ``pix2pix bench`` uses too);
* alternatives are timed **side by side in one run**, interleaved per repetition
  (:func:`interleaved`), so a noisy neighbour or a clock change hits every backend alike;
* every result carries the machine it was measured on (:func:`machine_info`).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pix2pix_edge.runtime import contract, machine
from pix2pix_edge.runtime.files import atomic_write

LEVELS = ("smoke", "quick", "full")
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
# A source checkout (also an editable install): results, RESULTS.md and the docs the report step
# regenerates live in it. Installed from a wheel there is none: results go to the working folder.
CHECKOUT = (REPO / "pyproject.toml").is_file() and (REPO / "docs").is_dir()
RESULTS_DIR = BENCH_DIR / "results" if CHECKOUT else Path.cwd() / "pix2pix-benchmarks"
# The real data (facades, edges2shoes_handbags, a video) live outside the repository, in
# ../shared by default; PIX2PIX_BENCH_DATA=DIR points elsewhere. Sections that need them skip
# with the reason where they are absent.
SHARED = Path(os.environ.get("PIX2PIX_BENCH_DATA") or REPO.parent / "shared")
FACADES = SHARED / "datasets" / "facades"
VIDEO = SHARED / "videos" / "big_buck_bunny.mp4"
# The split of every facades benchmark: the last 40 of train held out (as `pix2pix train
# datasets/facades --direction BtoA --holdout-last 40`), labels -> photo.
FACADES_HELD_OUT = contract.HeldOut(last=40, dataset=str(FACADES))
FACADES_DIRECTION = "BtoA"


# --------------------------------------------------------------------------- machine facts
# CPU, cores, GPU and versions come from the runtime's one home for them (runtime.machine).
def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def torch_cpu() -> dict[str, Any]:
    """What PyTorch itself uses on this CPU: its kernel level (``AVX512``, ``AVX2``, ...) and
    whether bfloat16 runs natively (AVX-512 BF16 or AMX; elsewhere it is emulated, slowly)."""
    try:
        import torch
    except ImportError:
        return {}
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return {"capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "native_bf16": bool((probe and probe()) or (amx and amx()))}


def machine_info() -> dict[str, Any]:
    """Everything a reader needs to judge a number: CPU (model, the features that decide speed:
    AVX2, AVX-512, BF16, VNNI, AMX), cores, GPU, versions, date, load.

    ``cores`` is what the benchmarks use as their thread count: the logical CPUs this process
    may use (``physical_cores`` is what ``pix2pix run`` uses by default)."""
    return {
        "cpu": machine.cpu_model(),
        "cores": machine.usable_cpus(),
        "physical_cores": machine.physical_cores(),
        "cpu_flags": machine.cpu_flags(),
        "torch_cpu": torch_cpu(),
        "gpu": machine.gpu_info(),
        "os": f"{platform.system()} {platform.release()}",
        "versions": machine.versions("torch", "onnx"),
        "git_commit": git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "load_average_1_5_15": machine.load_average(),
    }


def command_line(prog: str, argv: list[str]) -> str:
    """The exact command, as a user would type it again."""
    return " ".join([prog, *(shlex.quote(a) for a in argv)])


# --------------------------------------------------------------------------- data
def spread(items: list, n: int) -> list:
    """``n`` items spread evenly over ``items`` (first and last included)."""
    if not items:
        return []
    picks = np.unique(np.linspace(0, len(items) - 1, min(n, len(items))).round().astype(int))
    return [items[i] for i in picks]


def model_inputs(pairs: list, side: int, direction: str) -> np.ndarray:
    """The model inputs of dataset ``pairs`` as float32 NCHW ``side x side``, read as the
    product reads them (runtime/contract.py)."""
    return contract.load_inputs(pairs, side, side, direction, aligned=True)


def facades_pairs(held_out: bool, held: contract.HeldOut | None = None) -> list:
    """The facades train pairs a run with ``held`` (default :data:`FACADES_HELD_OUT`) trains
    on, or those it holds out ([] when the dataset is absent)."""
    held = held or FACADES_HELD_OUT
    if not (Path(held.dataset) / "train").is_dir():
        return []
    return held.pairs()[1 if held_out else 0]


def held_out_dataset(held: contract.HeldOut, direction: str, side: int, n: int | None = None,
                     data: str | Path | None = None):
    """The pairs ``held`` keeps out of training (``n``: every k-th of them, at most ``n``) as a
    ``train.data.PairedDataset`` at ``side x side``, no augmentation: what quality is scored on."""
    from pix2pix_edge.train.data import PairedDataset

    root = data if data is not None else held.dataset
    pairs = held.pairs(root)[1]
    if n:
        pairs = pairs[::max(1, len(pairs) // n)][:n]
    return PairedDataset(root, "train", direction=direction, load_size=side, crop_size=side,
                         augment=False, files=pairs)


# --------------------------------------------------------------------------- timing
def interleaved(fns: dict[str, Callable[[], Any]], reps: int, warmup: int = 2,
                budget_s: float | None = None, settle: int = 1) -> dict[str, list[float]]:
    """Time each callable ``reps`` times, one of each per repetition, in rotating order.

    Interleaving (instead of all runs of A, then all of B) makes a side-by-side comparison fair
    on a shared, noisy machine. With ``budget_s`` the repetitions stop early once that many
    seconds have passed (at least 3 repetitions are always made). Returns seconds per call.

    ``settle`` untimed calls precede each timed one: switching between runtimes (PyTorch's
    OpenMP pool, ONNX Runtime's own pool) costs the first call after the switch thread wake-ups
    and cache refills that a steady stream of frames never pays.
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    start = time.perf_counter()
    for rep in range(reps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:  # rotate so no backend always runs right after another
            for _ in range(settle):
                fns[name]()
            t0 = time.perf_counter()
            fns[name]()
            samples[name].append(time.perf_counter() - t0)
        if budget_s is not None and rep >= 2 and time.perf_counter() - start > budget_s:
            break
    return samples


# --------------------------------------------------------------------------- optional pieces
def optional(module: str) -> tuple[Any | None, str | None]:
    """Import a sibling module if it exists: ``(module, None)`` or ``(None, why it is missing)``."""
    try:
        return importlib.import_module(module), None
    except ModuleNotFoundError as e:
        target = f"benchmarks/{module.rsplit('.', 1)[-1]}.py" if module.startswith(__package__) \
            else module
        if e.name and (e.name == module or module.startswith(e.name + ".")):
            return None, f"{target} not present"
        return None, f"{target} needs the missing package {e.name!r}"
    except ImportError as e:
        return None, f"{module} failed to import ({e})"


def skipped(reason: str) -> dict[str, str]:
    return {"skipped": reason}


# --------------------------------------------------------------------------- writers
def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)  # JSON has no inf / nan
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (runtime.files.atomic_write: temp file + rename)."""
    text = json.dumps(_jsonable(obj), indent=1, sort_keys=False) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def markdown_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A GitHub Markdown table; ``columns`` are ``(key, header, format spec)``."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    sep = "|" + "|".join("---:" if spec else "---" for _, _, spec in columns) + "|"
    def cell(r, k, spec):
        return fmt(r.get(k), spec).replace("|", "\\|")  # a pipe would split the cell

    body = ["| " + " | ".join(cell(r, k, spec) for k, _, spec in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def log(msg: str) -> None:
    """Progress lines on stderr, flushed (the full run goes to a log file under nohup)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
