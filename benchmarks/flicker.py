"""The ``flicker`` section: frame-to-frame stability of a trained generator per inference mode.

The measurement itself is :func:`benchmarks.live.flicker` (the warping error of Lai et al. 2018
from runtime/flicker.py, on the real video and on a synthetic pan of held-out inputs, for
BatchNorm per-image / running statistics x dropout on / off). This section gives it a model:
``--flicker-run RUN`` (a ``pix2pix train`` run directory that held pairs out, e.g. ``pix2pix
train facades --direction BtoA --holdout-last 40``), or, without one, a generator it trains
here first: unet_256 ngf 16 on the facades, labels -> photo, the last 40 pairs held out
(``train_iters`` iterations; synthetic pairs where the facades are absent). A weak model: the
comparison between modes is the point, not its quality.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .common import FACADES, FACADES_DIRECTION, FACADES_HELD_OUT, VIDEO, log

LEVELS = {"smoke": dict(flicker_frames=6, pans=1, pan_frames=6, train_iters=2),
          "quick": dict(flicker_frames=24, pans=1, pan_frames=12, train_iters=20),
          "full": dict(flicker_frames=96, pans=5, pan_frames=32, train_iters=1000)}


def train_model(workdir: Path, iters: int, level: str) -> Path:
    """The generator this section measures when none is given (see the module docstring)."""
    from pix2pix_edge.train.loop import TrainOptions, train

    small = level == "smoke" or not (FACADES / "train").is_dir()
    if small:   # synthetic pairs: proves the plumbing, the figures mean nothing
        from pix2pix_edge.train.synth import make_dataset
        data, direction, size = make_dataset(workdir / "synth", n=8, size=64, seed=0), "AtoB", 64
    else:
        data, direction, size = FACADES, FACADES_DIRECTION, 256
    run = workdir / "flicker_run"
    log(f"flicker: training the generator to measure ({iters} iterations, "
        f"{'synthetic pairs' if small else 'facades labels -> photo'})")
    train(TrainOptions(data=str(data), run=str(run), direction=direction,
                       depth=5 if level == "smoke" else 8, ngf=4 if level == "smoke" else 16,
                       ndf=4 if level == "smoke" else 16, load_size=size if small else 286,
                       crop_size=size, holdout_last=2 if small else FACADES_HELD_OUT.last,
                       max_iters=iters, log_every=max(1, iters), progress=False, tensorboard=False,
                       seed=0, threads=1, workers=0))
    return run


def iterations(run: Path) -> int | None:
    """The iterations a run trained (its checkpoint's count)."""
    from pix2pix_edge.train.checkpoint import load_training_checkpoint

    latest = run / "checkpoints" / "latest.pt"
    return load_training_checkpoint(latest)["iteration"] if latest.is_file() else None


def run(level: str = "full", run_dir: str | Path | None = None, start: int | None = None) -> dict[str, Any]:
    from .live import _held_out_on_disk, flicker

    p = dict(LEVELS[level])
    if not VIDEO.is_file():
        return {"skipped": f"real video not found at {VIDEO}"}
    with tempfile.TemporaryDirectory(prefix="bench-flicker-") as tmp:
        trained_here = run_dir is None
        run = Path(run_dir) if run_dir else train_model(Path(tmp), p["train_iters"], level)
        if not run.exists() or not _held_out_on_disk(run):
            return {"skipped": f"{run} held no pairs out of training, or its dataset is not on "
                               "disk (the pan uses held-out inputs)"}
        from pix2pix_edge.runtime.contract import run_config

        options = run_config(run)["options"]
        model = (f"unet depth {options.get('depth')} ngf {options.get('ngf')}, {iterations(run)} "
                 f"iterations on {Path(options.get('data', '?')).name} "
                 f"({'trained by this section' if trained_here else run})")
        rows = flicker(run, p["flicker_frames"], p["pans"], p["pan_frames"], start=start or 300)
    return {"params": p, "model": model, "trained_here": trained_here, "video": VIDEO.name,
            "start_frame": start or 300, "rows": rows,
            "definition": "warping error (Lai et al. 2018): mean |O(t+1) - warp(O(t))| on [0, 1] "
                          "over non-occluded pixels (L1), DIS optical flow on the input frames; "
                          "pan: held-out inputs shifted 4 px per frame (exact flow, input 0)"}
