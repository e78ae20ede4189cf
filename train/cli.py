"""``pix2pix train`` and ``pix2pix eval``.

No torch at module level: ``pix2pix train --help`` and ``pix2pix eval --help`` stay instant. The
flags are generated from :class:`train.options.TrainOptions` and
:class:`train.eval_options.EvalOptions` (same names, dashes for underscores).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from pix2pix_edge.runtime.errors import BadInput, BadUsage
from pix2pix_edge.runtime.options import click_options
from pix2pix_edge.train.eval_options import EvalOptions
from pix2pix_edge.train.options import INIT_FROM_INHERITS, TrainOptions, defaults


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
    Fine-tune another run into a new one (its weights, fresh optimisers and schedule; data,
    hold-out and architecture from its config.json unless given):
      pix2pix train DATA --run NEW --init-from RUN --antialias --lambda-stability 100
    Exit codes: 3 bad data, 4 checkpoint of another architecture, 5 missing hardware,
    6 training diverged (NaN/Inf loss; the last good checkpoint is kept), 130 Ctrl-C (saved).
    """
    if not data.is_dir():
        raise BadInput(f"dataset folder not found: {data}")

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT

    if resume and given("init_from"):
        raise BadUsage("--init-from starts a new run from another run's weights; --resume "
                       "continues this one: give one of them")
    if resume:
        saved = _saved_options(run)
        for name in options:
            if not given(name) and name in saved:
                options[name] = saved[name]
    elif options.get("init_from"):
        source = Path(options["init_from"])
        saved = _saved_options(source if source.is_dir() else source.parent)
        if not saved and source.is_file():
            saved = _saved_options(source.parent.parent)      # RUN/checkpoints/latest.pt
        for name in INIT_FROM_INHERITS:
            if not given(name) and name in saved:
                options[name] = saved[name]

    from pix2pix_edge.train.loop import TrainOptions, train as run_training

    run_training(TrainOptions(data=str(data), run=str(run), resume=resume, **options))


def _saved_options(run: Path) -> dict:
    """The options RUN/config.json recorded ({} when there is none)."""
    try:
        return json.loads((run / "config.json").read_text())["options"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click_options(EvalOptions)
def evaluate(run: Path, data: Path, **options):
    """L1, PSNR and SSIM of the generator in RUN on pairs of DATA it never trained on, and a
    gallery.

    \b
    Which pairs: the hold-out RUN recorded (train --holdout-last N / --holdout-every N); for a
    run that held nothing out, DATA's val or test split; else it refuses. A flag that would
    score pairs RUN trained on is refused unless --allow-trained-pairs; the printout and
    metrics.json say which pairs were scored and how many of them RUN trained on.
    RUN is a run directory (or a generator.pt). Writes metrics.json, index.html and a PNG grid
    of input | output | target per norm mode. FID/LPIPS are skipped when their weights are
    missing. Exit codes: 2 bad option or trained pairs refused, 3 bad run or data.
    """
    from pix2pix_edge.train.evaluate import evaluate as run_eval

    run_eval(run, data, log=click.echo, **options)
