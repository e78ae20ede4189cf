"""``pix2pix train`` and ``pix2pix eval``.

No torch at module level: ``pix2pix train --help`` stays instant. The flags map one to one onto
:class:`train.loop.TrainOptions` (same names, dashes for underscores).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from pix2pix_edge.runtime.errors import BadInput

# (flag name, click type, default, help). The defaults are TrainOptions' defaults, repeated here so
# that --help shows them without importing torch; tests/test_train.py checks they agree.
TRAIN_OPTIONS = [
    # data
    ("direction", click.Choice(["AtoB", "BtoA"]), "AtoB",
     "AtoB: left half is the input. Real facades files are photo|labels: labels->photo is BtoA."),
    ("load-size", int, 286, "Resize both halves to this before the random crop."),
    ("crop-size", int, 256, "Training crop (a multiple of 2^depth)."),
    ("augment/--no-augment", bool, True, "Random crop load-size -> crop-size and horizontal flip."),
    ("holdout-last", int, 0, "Keep the last N training pairs out of training (evaluate on them)."),
    ("on-bad-file", click.Choice(["skip", "error"]), "skip", "What to do with unusable image files."),
    # models
    ("depth", int, 8, "U-Net levels: 8 = unet_256, 7 = unet_128."),
    ("ngf", int, 64, "Generator width."),
    ("ndf", int, 64, "Discriminator width."),
    ("d-layers", int, 3, "PatchGAN layers: 3 = the 70x70 'basic' D, 0 = the 1x1 pixel D."),
    ("norm", click.Choice(["batch", "instance", "none"]), "batch", "Normalisation layers."),
    ("dropout/--no-dropout", bool, True, "Dropout 0.5 in the innermost up blocks (training only)."),
    # objective, optimiser, schedule
    ("gan-mode", click.Choice(["vanilla", "lsgan"]), "vanilla", "GAN loss: BCE with logits or MSE."),
    ("lambda-l1", float, 100.0, "Weight of the L1 loss."),
    ("lr", float, 2e-4, "Adam learning rate."),
    ("beta1", float, 0.5, "Adam beta1."),
    ("beta2", float, 0.999, "Adam beta2."),
    ("batch-size", int, 1, "Pairs per iteration (per process under torchrun)."),
    ("epochs", int, 100, "Epochs at constant learning rate."),
    ("epochs-decay", int, 100, "Then epochs of linear decay to zero."),
    ("max-iters", int, 0, "Stop after this many iterations in total (0: no limit)."),
    ("max-minutes", float, 0.0, "Stop (and save) after this much wall time (0: no limit)."),
    ("seed", int, 0, "Seed for weights, shuffling, augmentation and dropout."),
    # speed
    ("device", str, "auto", "auto | cpu | cuda | cuda:N."),
    ("amp", click.Choice(["auto", "off", "bf16", "fp16"]), "auto",
     "Mixed precision. auto: bf16 on GPUs that have it (else fp16) and on CPUs with native BF16."),
    ("channels-last", click.Choice(["auto", "on", "off"]), "auto",
     "Memory format. auto: on with mixed precision on CUDA, off on CPU (slower there)."),
    ("compile/--no-compile", bool, False, "torch.compile G and D (slow start, faster steps)."),
    ("adam-impl", click.Choice(["fused", "foreach", "for-loop"]), "fused",
     "torch.optim.Adam implementation (fused: one kernel for all tensors, fastest here)."),
    ("sync-bn/--no-sync-bn", bool, False, "SyncBatchNorm across torchrun processes (CUDA only)."),
    ("workers", int, -1, "DataLoader worker processes (-1: auto)."),
    ("threads", int, 0, "torch CPU threads (0: torch's default)."),
    # output
    ("log-every", int, 20, "Iterations per log.csv row (losses averaged over them)."),
    ("save-every", int, 5, "Epochs between checkpoints/epoch_XXX.pt (latest.pt: every epoch)."),
    ("save-every-iters", int, 0, "Also refresh latest.pt every N iterations (0: off)."),
    ("inference-norm", click.Choice(["per-image", "running"]), "per-image",
     "Recorded for eval/export: BatchNorm with per-image statistics (as the reference test.py) "
     "or the running statistics (model.eval())."),
    ("tensorboard/--no-tensorboard", bool, True, "Log to RUN/tensorboard when installed."),
    ("progress/--no-progress", bool, True, "Show the progress bar."),
    ("health-window", int, 200, "Iterations over which 'the discriminator has won' is judged."),
]


def _train_options(f):
    for flag, type_, default, help_ in reversed(TRAIN_OPTIONS):
        if type_ is bool:
            f = click.option(f"--{flag}", default=default, show_default=True, help=help_)(f)
        else:
            f = click.option(f"--{flag}", type=type_, default=default, show_default=True, help=help_)(f)
    return f


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--run", "run", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs/pix2pix"), show_default=True, help="Run directory to write.")
@click.option("--resume", is_flag=True,
              help="Continue RUN from checkpoints/latest.pt exactly where it stopped; options not "
                   "given on the command line are taken from RUN/config.json.")
@_train_options
@click.pass_context
def train(ctx, data: Path, run: Path, resume: bool, **options):
    """Train pix2pix on the paired images in DATA (aligned A|B files or A/ and B/ folders).

    \b
    Writes RUN/config.json, log.csv, samples/epoch_XXX.png, checkpoints/latest.pt (+ epoch_XXX.pt)
    and generator.pt (what `pix2pix export` reads). Several GPUs:
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
@click.option("--norm-mode", type=click.Choice(["per-image", "running", "both"]), default=None,
              help="BatchNorm at inference [default: the mode recorded in RUN].")
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default=None,
              help="[default: the direction recorded in RUN]")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write metrics.json, index.html, grid_*.png [default: RUN/eval].")
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda.")
def evaluate(run: Path, data: Path, split: str, holdout_last: int, norm_mode: str | None,
             direction: str | None, out: Path | None, batch_size: int, device: str):
    """L1, PSNR and SSIM of the generator in RUN on held-out pairs of DATA, and a gallery.

    RUN is a run directory (or a generator.pt). Writes metrics.json, index.html and a PNG grid of
    input | output | target per norm mode. FID/LPIPS are skipped when their weights are missing.
    """
    if holdout_last < 0:
        raise BadInput("--holdout-last must be >= 0")
    from pix2pix_edge.train.evaluate import evaluate as run_eval

    run_eval(run, data, split=split, holdout_last=holdout_last, norm_mode=norm_mode, out=out,
             batch_size=batch_size, device=device, direction=direction, log=click.echo)
