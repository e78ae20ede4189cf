"""Every option of ``pix2pix eval``, written once (flags, help and checks from the fields, as
train/options.py). No torch here: ``pix2pix eval --help`` stays instant."""

from __future__ import annotations

from dataclasses import dataclass

from pix2pix_edge.runtime.contract import DIRECTIONS, EVAL_NORM_MODES, SPLITS
from pix2pix_edge.runtime.errors import BadUsage
from pix2pix_edge.runtime.options import check_options as check_fields
from pix2pix_edge.runtime.options import option


@dataclass
class EvalOptions:
    """What ``pix2pix eval RUN DATA`` scores and how (the CLI flags are these fields)."""

    run: str
    data: str
    split: str | None = option(None, "Score DATA's SPLIT instead of the run's hold-out: val or "
                               "test (training never reads them); train only with "
                               "--allow-trained-pairs.", choices=SPLITS, type=str,
                               show_default=False)
    holdout_last: int = option(0, "Score the last N pairs of DATA's train split (the run's own "
                               "hold-out is the default; a wider one would score trained pairs).",
                               min=0, metavar="N", show_default=False)
    holdout_every: int = option(0, "Or every N-th pair of DATA's train split (N >= 2).", min=0,
                                metavar="N", show_default=False)
    allow_trained_pairs: bool = option(False, "Score pairs the run trained on anyway (the output "
                                       "and metrics.json say how many).", switch=True)
    norm_mode: str | None = option(None, "BatchNorm at inference; both: compare the two "
                                   "[default: the mode recorded in RUN].",
                                   choices=EVAL_NORM_MODES, type=str, show_default=False)
    direction: str | None = option(None, "[default: the direction recorded in RUN]",
                                   choices=DIRECTIONS, type=str, show_default=False)
    out: str | None = option(None, "Where to write metrics.json, index.html, grid_*.png "
                             "[default: RUN/eval].", type=str, metavar="DIR", show_default=False)
    batch_size: int = option(4, "Pairs per forward pass.", min=1)
    device: str = option("auto", "auto | cpu | cuda | cuda:N.")
    threads: int | None = option(None, "torch CPU threads [default: the physical cores]; on "
                                 "cores other processes use, 1 is often several times faster.",
                                 min=1, type=int, show_default=False)


def check_options(o: EvalOptions) -> None:
    """BadUsage (exit 2, one line) for impossible values, before anything is loaded."""
    check_fields(o)
    if o.holdout_last and o.holdout_every:
        raise BadUsage("--holdout-last and --holdout-every: score one hold-out, not both")
    if o.holdout_every == 1:
        raise BadUsage("--holdout-every 1 would be every pair; use 2 or more")
    if (o.holdout_last or o.holdout_every) and o.split not in (None, "train"):
        raise BadUsage(f"--holdout-last / --holdout-every pick pairs of the train split, not of "
                       f"--split {o.split}: give one or the other")
