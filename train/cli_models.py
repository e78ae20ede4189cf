"""``pix2pix models``: the reference code's pretrained generators, and your own latest_net_G.pth.

No torch at import time (instant ``--help``); ``models list`` never imports it. ``models
download`` and ``models import`` check the weights with ``torch.load(weights_only=True)``
(train/torchfile.py), so they need the ``[train]`` extra, as ``export`` does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import click

from pix2pix_edge.runtime.contract import DIRECTIONS, INFERENCE_NORMS
from pix2pix_edge.runtime.options import check_options, click_options, option
from pix2pix_edge.train.options import NORMS, UPSAMPLES

FOLDER = click.Path(file_okay=False, path_type=Path)


@dataclass
class ListOptions:
    """``pix2pix models list``'s options."""

    to: Path = option(Path("models"), "Folder the models are downloaded into.", type=FOLDER)


@dataclass
class DownloadOptions:
    """``pix2pix models download``'s options = ``train.pretrained.download``'s keywords."""

    to: Path = option(Path("models"), "Folder to download into: the run directory is TO/NAME.",
                      type=FOLDER)
    mirror: str | None = option(None, "A copy of the reference's models-pytorch folder "
                                "(NAME.pth under it): http(s):// or file://.", type=str,
                                metavar="URL")
    direction: str | None = option(None, "Which half of an A|B pair is the input (eval and "
                                   "distill read it) [default: the reference's, where it "
                                   "publishes one].", choices=DIRECTIONS, type=str,
                                   show_default=False)
    timeout: float = option(30.0, "Network timeout in seconds.", min=0.1)


@dataclass
class ImportOptions:
    """``pix2pix models import``'s options = ``train.reference_run.import_checkpoint``'s."""

    run: Path | None = option(None, "Run directory to write [default: runs/NAME, NAME the "
                              "checkpoint's folder].", type=FOLDER, show_default=False)
    direction: str | None = option(None, "Which half of an A|B pair is the input (required: a "
                                   "checkpoint does not record it).", choices=DIRECTIONS,
                                   type=str, show_default=False)
    depth: int | None = option(None, "U-Net levels (8 = unet_256, 7 = unet_128) [default: read "
                               "from the weights].", min=5, max=11, type=int, show_default=False)
    ngf: int | None = option(None, "Generator width [default: read from the weights].", min=1,
                             type=int, show_default=False)
    norm: str | None = option(None, "Normalisation layers [default: read from the weights].",
                              choices=NORMS, type=str, show_default=False)
    upsample: str | None = option(None, "Decoder up-sampling [default: read from the weights].",
                                  choices=UPSAMPLES, type=str, show_default=False)
    dropout: bool | None = option(None, "Trained with dropout? A state dict cannot tell [default: "
                                  "yes, the reference's]; inference runs without it.", type=bool,
                                  show_default=False)
    inference_norm: str = option("per-image", "BatchNorm at inference: per-image statistics "
                                 "(reference test.py without --eval) or running (with --eval).",
                                 choices=INFERENCE_NORMS)


@click.group()
def models():
    """The reference code's pretrained pix2pix generators, or your own latest_net_G.pth, as
    ordinary run directories (eval, export and distill take them as they are).

    \b
    From nothing to live in three commands:
      pix2pix models download facades_label2photo --to models
      pix2pix export onnx models/facades_label2photo -o facades.onnx
      pix2pix run facades.onnx --source 0     (headless: --output http://0.0.0.0:8090/)
    """


@models.command("list")
@click_options(ListOptions)
def list_models(**options):
    """The published generators: task, direction, what is known, what is downloaded here."""
    from pix2pix_edge.train.pretrained import list_lines

    o = ListOptions(**options)
    check_options(o)
    for line in list_lines(o.to):
        click.echo(line)


@models.command()
@click.argument("name", metavar="NAME")
@click_options(DownloadOptions)
def download(name: str, **options):
    """Download NAME (see: pix2pix models list) into the run directory TO/NAME.

    Resumes a cut download; the file must be the published U-Net, whole, before anything is
    installed; its sha256 is recorded in TO/NAME.sha256 at the first download and checked on
    every later one. Exit codes: 2 unknown NAME or no --direction where none is published,
    3 not found or not weights (an HTML page, a truncated file), 4 another architecture,
    5 network unreachable or cut (run again to resume), 6 sha256 differs from the record.
    """
    from pix2pix_edge.train.pretrained import download as fetch_model

    o = DownloadOptions(**options)
    check_options(o)
    run = fetch_model(name, **asdict(o), log=click.echo)
    click.echo(f"{name} is ready in {run}")
    click.echo(f"next: pix2pix export onnx {run} -o {name}.onnx   "
               f"then: pix2pix run {name}.onnx --source 0")


@models.command("import")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click_options(ImportOptions)
def import_(checkpoint: Path, **options):
    """Make a run directory from a reference-code generator CHECKPOINT (latest_net_G.pth).

    \b
    The architecture (depth, ngf, norm, decoder, channels) is read from the weights; an option
    that contradicts them is refused in one line naming the value that fits (exit 2). Loaded
    with torch.load(weights_only=True) only. Exit codes: 2 bad or contradicting options, 3 not
    a checkpoint, 4 not a U-Net generator pix2pix-edge builds.
    """
    from pix2pix_edge.train.reference import describe
    from pix2pix_edge.train.reference_run import import_checkpoint, read_config

    o = ImportOptions(**options)
    check_options(o)
    run = import_checkpoint(checkpoint, **asdict(o), log=click.echo)
    generator = read_config(run)["models"]["generator"]
    click.echo(f"imported {checkpoint} ({describe(generator)}) into {run}")
    click.echo(f"next: pix2pix export onnx {run} -o model.onnx")
