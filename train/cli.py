"""``pix2pix train`` and ``pix2pix eval``.

No torch at module level: ``pix2pix train --help`` stays instant. The flags are generated from
:class:`train.options.TrainOptions` (same names, dashes for underscores).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from pix2pix_edge.runtime.errors import BadInput
from pix2pix_edge.runtime.options import click_options
from pix2pix_edge.train.options import DIRECTIONS, TrainOptions, defaults


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--run", "run", type=click.Path(file_okay=False, path_type=Path),
              default=Path(defaults()["run"]), show_default=True, help="Run directory to write.")
@click.option("--resume", is_flag=True,
              help="Continue RUN from checkpoints/latest.pt exactly where it stopped; options not "
                   "given on the command line are taken from RUN/config.json.")
@click_options(TrainOptions)
@click.pass_context
def train(ctx, data: Path, run: Path, resume: bool, **options):
    """Train pix2pix on the paired images in DATA (aligned A|B files or A/ and B/ folders).

    \b
    Writes RUN/config.json, log.csv, samples/epoch_XXX.png (and iter_XXXXXXX.png when a run
    stops mid-epoch), checkpoints/latest.pt (+ epoch_XXX.pt) and generator.pt (what
    `pix2pix export` reads). Several GPUs:
      torchrun --nproc_per_node 2 -m pix2pix_edge.runtime.cli -- train DATA --run RUN
    (the `--` keeps torchrun from reading --run as its own --run-path)
    Exit codes: 3 bad data, 4 checkpoint of another architecture, 5 missing hardware,
    6 training diverged (NaN/Inf loss; the last good checkpoint is kept), 130 Ctrl-C (saved).
    """
    if not data.is_dir():
        raise BadInput(f"data directory not found: {data}")
    if resume:
        config = run / "config.json"
        try:
            saved = json.loads(config.read_text())["options"]
        except (OSError, ValueError, KeyError, TypeError):
            saved = {}
        for name in options:
            if ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT and name in saved:
                options[name] = saved[name]

    from pix2pix_edge.train.loop import TrainOptions, train as run_training

    run_training(TrainOptions(data=str(data), run=str(run), resume=resume, **options))


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--split", default="val", show_default=True,
              help="Which split of DATA to evaluate on (train | val | test).")
@click.option("--holdout-last", type=int, default=0,
              help="Evaluate on the last N pairs of DATA's train split instead (as held out "
                   "with `train --holdout-last N`).")
@click.option("--holdout-every", type=int, default=0,
              help="Or on every N-th pair of DATA's train split (as held out with "
                   "`train --holdout-every N`).")
@click.option("--norm-mode", type=click.Choice(["per-image", "running", "both"]), default=None,
              help="BatchNorm at inference [default: the mode recorded in RUN].")
@click.option("--direction", type=click.Choice(DIRECTIONS), default=None,
              help="[default: the direction recorded in RUN]")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write metrics.json, index.html, grid_*.png [default: RUN/eval].")
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda.")
def evaluate(run: Path, data: Path, split: str, holdout_last: int, holdout_every: int,
             norm_mode: str | None,
             direction: str | None, out: Path | None, batch_size: int, device: str):
    """L1, PSNR and SSIM of the generator in RUN on held-out pairs of DATA, and a gallery.

    RUN is a run directory (or a generator.pt). Writes metrics.json, index.html and a PNG grid of
    input | output | target per norm mode. FID/LPIPS are skipped when their weights are missing.
    """
    if holdout_last < 0:
        raise BadInput("--holdout-last must be >= 0")
    from pix2pix_edge.train.evaluate import evaluate as run_eval

    if holdout_every < 0:
        raise BadInput("--holdout-every must be >= 0")
    run_eval(run, data, split=split, holdout_last=holdout_last, holdout_every=holdout_every,
             norm_mode=norm_mode, out=out,
             batch_size=batch_size, device=device, direction=direction, log=click.echo)
