"""The reference implementation's training speed, measured side by side with ours (optional).

The reference is junyanz/pytorch-CycleGAN-and-pix2pix, the paper authors' PyTorch code. This
suite never downloads or vendors it: give it a checkout (``--reference-dir DIR``) and a Python
that can import what the reference's ``train.py`` imports, kept out of this project's venv:

    git clone https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix DIR
    python3 -m venv DIR/.venv
    DIR/.venv/bin/pip install torch==VERSION torchvision --index-url https://download.pytorch.org/whl/cpu
    DIR/.venv/bin/pip install dominate visdom

(VERSION: the torch of the venv that runs the suite, so both sides run the same kernels; the
section records both.) ``DIR/.venv/bin/python`` is used unless ``--reference-python PY`` names
another. Without a checkout, or without one of torch / torchvision / dominate / visdom in that
Python, the section is skipped and says which.

Method: the same job on both sides, each in a fresh process, in interleaved rounds (reference,
ours with its defaults, ours in FP32, then again, rotating) so that a busy neighbour hits all
alike: unet_256 + basic PatchGAN (the reference's pix2pix defaults: BatchNorm, vanilla GAN + 100
L1, Adam 2e-4), batch 1, resize 286 -> random crop 256 + flip, the facades labels -> photo
(``--direction BtoA``), ``iterations`` iterations. The reference stops after one epoch of
``--max_dataset_size iterations`` pairs and prints every iteration (``--print_freq 1``: "time" =
compute, "data" = waiting for the batch); ours stops at ``--max-iters`` and logs every iteration.
Reported per variant: the process's wall time (start to exit, what a user waits for) and the
median seconds per iteration after the first ``warmup``. Ratios only within one round set.
"""

from __future__ import annotations

import csv
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import FACADES, log
from pix2pix_edge.runtime.machine import load_average

NEEDS = ("torch", "torchvision", "dominate", "visdom")
INSTALL = ("python3 -m venv DIR/.venv && DIR/.venv/bin/pip install torch==VERSION torchvision "
           "--index-url https://download.pytorch.org/whl/cpu && DIR/.venv/bin/pip install "
           "dominate visdom (VERSION: this venv's torch)")
# smoke (tests only): our side trains a tiny U-Net (TINY), the figures mean nothing
LEVELS = {"smoke": dict(iterations=3, rounds=1, warmup=1),
          "quick": dict(iterations=8, rounds=1, warmup=2),
          "full": dict(iterations=100, rounds=3, warmup=5)}
# The reference's per-iteration line (util/visualizer.py print_current_losses).
ITER_LINE = re.compile(r"\(epoch: \d+, iters: \d+, time: ([\d.]+), data: ([\d.]+)\)")
OURS = {"ours, default (--amp auto)": "auto", "ours, FP32 (--amp off)": "off"}
REFERENCE = "reference (FP32)"


def reference_python(ref_dir: Path, python: str | Path | None) -> Path:
    return Path(python) if python else ref_dir / ".venv" / "bin" / "python"


def why_not(ref_dir: Path | None, python: Path | None) -> str | None:
    """None when the reference can run here, else why not (and what to install)."""
    if ref_dir is None:
        return ("no checkout of the reference code given (--reference-dir DIR: a clone of "
                "junyanz/pytorch-CycleGAN-and-pix2pix; the suite never downloads it)")
    if not (ref_dir / "train.py").is_file() or not (ref_dir / "options").is_dir():
        return f"{ref_dir} is not a checkout of junyanz/pytorch-CycleGAN-and-pix2pix (no train.py / options/)"
    if not python.is_file():
        return (f"no Python for the reference at {python}: create it with {INSTALL}, or pass "
                "--reference-python PY")
    probe = subprocess.run([str(python), "-c", "import importlib.util as u; print(' '.join(m for m in "
                            f"{NEEDS!r} if not u.find_spec(m)))"], capture_output=True, text=True,
                           timeout=120)
    missing = probe.stdout.strip()
    if probe.returncode or missing:
        return (f"{python} lacks {missing or 'a working interpreter'} (the reference's train.py "
                f"imports torch, torchvision, dominate and visdom): {INSTALL}")
    if not (FACADES / "train").is_dir():
        return f"the facades dataset is not at {FACADES}"
    return None


def reference_command(python: Path, ref_dir: Path, work: Path, iterations: int) -> list[str]:
    """The reference's train.py for ``iterations`` iterations of pix2pix on the facades, CPU,
    no display, every iteration printed; option names as its own ``--help`` lists them (older
    checkouts call the epoch options --niter / --niter_decay)."""
    help_text = subprocess.run([str(python), "train.py", "--help"], cwd=ref_dir, capture_output=True,
                               text=True, timeout=300).stdout
    epochs = (["--n_epochs", "1", "--n_epochs_decay", "0"] if "--n_epochs_decay" in help_text
              else ["--niter", "1", "--niter_decay", "0"])
    optional = [flag for flag in (["--display_id", "0"], ["--no_html"], ["--gpu_ids", "-1"])
                if flag[0] in help_text]
    return [str(python), "train.py", "--dataroot", str(FACADES), "--name", "speed",
            "--checkpoints_dir", str(work / "reference"), "--model", "pix2pix", "--direction", "BtoA",
            "--max_dataset_size", str(iterations), "--print_freq", "1", *epochs,
            *[x for flag in optional for x in flag]]


TINY = ["--depth", "5", "--ngf", "8", "--ndf", "8", "--load-size", "64", "--crop-size", "64"]


def our_command(work: Path, iterations: int, amp: str, tiny: bool = False) -> list[str]:
    return [sys.executable, "-m", "pix2pix_edge.runtime.cli", "train", str(FACADES),
            "--run", str(work / f"ours_{amp}"), "--direction", "BtoA", "--max-iters", str(iterations),
            "--amp", amp, "--log-every", "1", "--no-progress", "--no-tensorboard",
            *(TINY if tiny else [])]


def timed_run(cmd: list[str], cwd: Path) -> tuple[float, str]:
    """Run ``cmd``; its wall time and its output. Fails loudly with the tail of the output."""
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode:
        tail = (out.stdout + out.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(cmd[:3])} ... exited with {out.returncode}: {' | '.join(tail)}")
    return wall, out.stdout + out.stderr


def reference_seconds(output: str) -> list[float]:
    """Per-iteration seconds (compute + waiting for data) from the reference's printed lines."""
    return [float(t) + float(d) for t, d in ITER_LINE.findall(output)]


def our_seconds(run: Path) -> list[float]:
    """Per-iteration seconds from our log.csv (elapsed seconds, a row every iteration)."""
    with open(run / "log.csv", newline="") as f:
        elapsed = [float(r["seconds"]) for r in csv.DictReader(f)]
    return [b - a for a, b in zip([0.0] + elapsed, elapsed)]


def run(level: str = "full", reference_dir: str | Path | None = None,
        reference_python_path: str | Path | None = None, iterations: int | None = None) -> dict[str, Any]:
    """The reference section; skipped with its reason unless ``reference_dir`` is a usable checkout."""
    cfg = dict(LEVELS[level])
    if iterations:
        cfg["iterations"] = int(iterations)
    ref_dir = Path(reference_dir).resolve() if reference_dir else None
    python = reference_python(ref_dir, reference_python_path) if ref_dir else None
    why = why_not(ref_dir, python)
    if why:
        return {"skipped": why}
    n, warmup = cfg["iterations"], cfg["warmup"]
    versions = subprocess.run([str(python), "-c", "import torch, torchvision; print(torch.__version__, "
                               "torchvision.__version__)"], capture_output=True, text=True).stdout.split()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ref_dir, capture_output=True,
                            text=True).stdout.strip() or None
    # a copy that is not a git checkout says where it came from in PROVENANCE.md (first lines kept)
    provenance = ref_dir / "PROVENANCE.md"
    source = (" ".join(provenance.read_text(errors="replace").split())[:600]
              if commit is None and provenance.is_file() else None)
    names = [REFERENCE, *OURS]
    walls: dict[str, list[float]] = {name: [] for name in names}
    per_iter: dict[str, list[float]] = {name: [] for name in names}
    commands: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-reference-") as tmp:
        work = Path(tmp)
        ref_cmd = reference_command(python, ref_dir, work, n)
        for r in range(cfg["rounds"]):
            for name in names[r % len(names):] + names[:r % len(names)]:
                cmd = ref_cmd if name == REFERENCE else our_command(work, n, OURS[name], level == "smoke")
                commands[name] = " ".join(cmd)
                log(f"reference: round {r + 1}/{cfg['rounds']}, {name}: {n} iterations "
                    f"(load {load_average()})")
                wall, output = timed_run(cmd, ref_dir if name == REFERENCE else work)
                secs = (reference_seconds(output) if name == REFERENCE
                        else our_seconds(work / f"ours_{OURS[name]}"))
                if len(secs) < n:
                    raise RuntimeError(f"{name}: {len(secs)} timed iterations found, {n} expected")
                walls[name].append(round(wall, 2))
                per_iter[name] += secs[warmup:n]
                log(f"  {wall:.1f} s wall, median {statistics.median(secs[warmup:n]):.3f} s/it")
                if name != REFERENCE:
                    shutil.rmtree(work / f"ours_{OURS[name]}")
    ref_wall = statistics.median(walls[REFERENCE])
    ref_it = statistics.median(per_iter[REFERENCE])
    rows = []
    for name in names:
        wall, it = statistics.median(walls[name]), statistics.median(per_iter[name])
        rows.append({"variant": name, "iterations": n, "processes": len(walls[name]),
                     "wall_s_median": round(wall, 2), "wall_s": walls[name],
                     "s_per_iter_median": round(it, 4),
                     "wall_vs_reference": round(wall / ref_wall, 3),
                     "s_per_iter_vs_reference": round(it / ref_it, 3)})
    return {"rows": rows, "iterations": n, "rounds": cfg["rounds"], "warmup_dropped": warmup,
            "reference_commit": commit, "reference_source": source,
            "reference_torch": versions[0] if versions else None,
            "reference_torchvision": versions[1] if len(versions) > 1 else None,
            "commands": commands, "reference_dir": str(ref_dir),
            "job": "unet_256 + basic PatchGAN, batch 1, 286 -> 256 crop + flip, facades BtoA, CPU"}
