"""``pix2pix distill TEACHER DATA --run RUN``: train an edge-sized student against a teacher.

No torch at module level (instant --help). The flags are train's plus distillation's, generated
from :class:`train.distill_options.DistillOptions`. Options the user does not give are taken
from RUN/config.json with ``--resume``; the rest (direction, sizes, depth, norm, inference norm,
hold-out: the student sees the split the teacher saw) are the teacher's, filled in by the library
(train/distill_options.py :func:`resolve`), as from Python.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from pix2pix_edge.runtime.errors import BadInput
from pix2pix_edge.runtime.options import click_options
from pix2pix_edge.train.distill_options import DistillOptions


@click.command()
@click.argument("teacher", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--run", "run", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs/student"), show_default=True, help="Run directory to write.")
@click.option("--resume", is_flag=True,
              help="Continue RUN from checkpoints/latest.pt exactly where it stopped; options not "
                   "given on the command line are taken from RUN/config.json.")
@click_options(DistillOptions)
@click.pass_context
def distill(ctx, teacher: Path, data: Path, run: Path, resume: bool, **options):
    """Train a small student generator on DATA against TEACHER (a run directory or generator
    file of `pix2pix train`, frozen, in its recorded inference mode, dropout off).

    \b
    Loss: lambda-teacher x L1(student, teacher) + lambda-l1 x L1(student, target)
          + lambda-gan x GAN (+ lambda-fm x feature matching) + lambda-feat x feature distillation.
    --extra-inputs DIR adds input-only images whose targets are the teacher's outputs.
    Direction, sizes, depth, norm, inference norm and hold-out default to the teacher's.
    RUN is an ordinary run directory: `pix2pix eval`, `export` and `run` take it as they are.
    Exit codes: 2 bad options (or a hold-out that would train on the teacher's held-out pairs),
    3 bad data, 4 a teacher that is not a generator or does not fit the data, 5 missing
    hardware, 6 diverged, 130 Ctrl-C (saved).
    """
    if not data.is_dir():
        raise BadInput(f"dataset folder not found: {data}")
    if not teacher.exists():
        raise BadInput(f"teacher not found: {teacher} (a run directory or generator file of "
                       "`pix2pix train`)")
    if resume:
        try:
            saved = json.loads((run / "config.json").read_text())["options"]
        except (OSError, ValueError, KeyError, TypeError):
            saved = {}
        for name in options:
            if ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT and name in saved:
                options[name] = saved[name]

    from pix2pix_edge.train.distill import distill as run_distill

    run_distill(DistillOptions(data=str(data), run=str(run), resume=resume, teacher=str(teacher),
                               **options))
