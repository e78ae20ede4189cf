"""``pix2pix data``: make, download and check paired datasets.

No torch at import time (``pix2pix data --help`` stays instant), and ``data synth`` and
``data download`` never import it at all.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from pix2pix_edge.runtime.options import check_options, click_options, option
from pix2pix_edge.train.download import DATASETS
from pix2pix_edge.train.options import DIRECTIONS, ON_BAD_FILE

DATASET_NAMES = (*DATASETS, "cityscapes")   # cityscapes: the command explains how to prepare it


@dataclass
class SynthOptions:
    """``pix2pix data synth``'s options = ``train.synth.make_dataset``'s keywords."""

    n: int = option(200, "Training pairs (OUT/train).", min=1)
    size: int = option(256, "Side of each square half, in pixels.", min=16)
    seed: int = option(0, "Same seed, same bytes: the dataset is reproducible.")
    val: int = option(0, "Extra held-out pairs (OUT/val).", min=0)


@dataclass
class DownloadOptions:
    """``pix2pix data download``'s options = ``train.download.download``'s keywords."""

    to: Path = option(Path("datasets"), "Folder to download into.",
                      type=click.Path(file_okay=False, path_type=Path))
    base_url: str | None = option(None, "A mirror of the pix2pix datasets folder.", type=str)
    timeout: float = option(30.0, "Network timeout in seconds.", min=0.1)
    sha256: str | None = option(None, "The archive's sha256 from a source you trust; without "
                                "it the first download's digest is recorded and later runs "
                                "must match it.", type=str, metavar="HEX")
    keep_archive: bool = option(True, "Keep NAME.tar.gz (its sha256 is re-checked on later "
                                "runs).", flag="--keep-archive/--delete-archive")


@dataclass
class CheckOptions:
    """``pix2pix data check``'s options."""

    split: str = option("train", "Split folder to check.")
    direction: str = option("AtoB", "Which half is the model input.", choices=DIRECTIONS)
    on_bad_file: str = option("skip", "What to do with unusable files: skip them (listed by "
                              "name) or stop with exit code 3.", choices=ON_BAD_FILE)
    show: int = option(50, "List at most this many bad files and notes.", min=1)


@click.group()
def data():
    """Make, download and check paired datasets.

    \b
    Layouts understood everywhere (DIR/SPLIT, or DIR itself without split folders):
      aligned         DIR/train/*.jpg|png, A and B side by side  [A | B]
      paired folders  DIR/train/A/x.png + DIR/train/B/x.png, matched by name
    """


@data.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click_options(SynthOptions)
def synth(out: Path, **options):
    """Write a procedural facades dataset: [labels | photo] PNGs in OUT/train (and OUT/val).

    A = CMP-style label map, B = photo, so the default --direction AtoB learns labels -> photo.
    """
    from pix2pix_edge.train.synth import make_dataset

    o = SynthOptions(**options)
    check_options(o)
    started = time.perf_counter()
    make_dataset(out, **asdict(o))
    took = time.perf_counter() - started
    extra = f" and {o.val} to {out / 'val'}" if o.val else ""
    click.echo(f"wrote {o.n} pairs of [labels | photo] at {o.size}x{o.size} to {out / 'train'}"
               f"{extra} in {took:.1f} s")
    click.echo(f"train with: pix2pix train {out}")


@data.command()
@click.argument("name", type=click.Choice(DATASET_NAMES), metavar="NAME")
@click_options(DownloadOptions)
def download(name: str, **options):
    """Download an official pix2pix dataset (resumable, verified, safely extracted).

    \b
    facades         building photo | CMP labels (labels -> photo: --direction BtoA)
    maps            aerial photo | map
    edges2shoes     edge drawing | shoe photo
    edges2handbags  edge drawing | handbag photo
    night2day       night | day webcam image
    cityscapes      must be prepared by hand (the command explains how)
    """
    from pix2pix_edge.train.download import BASE_URL, download as fetch

    o = DownloadOptions(**options)
    check_options(o)
    folder = fetch(name, o.to, o.base_url or BASE_URL, timeout=o.timeout,
                   keep_archive=o.keep_archive, sha256=o.sha256,
                   log=lambda msg: click.echo(msg, err=True))
    splits = [p.name for p in sorted(folder.iterdir()) if p.is_dir()]
    click.echo(f"{name} is ready in {folder} (splits: {', '.join(splits) or 'none'})")
    hint = " --direction BtoA" if name == "facades" else ""
    click.echo(f"check it with: pix2pix data check {folder}{hint}")


@data.command()
@click.argument("root", type=click.Path(path_type=Path))   # missing: BadInput (3), as train says
@click_options(CheckOptions)
def check(root: Path, **options):
    """Decode every image of ROOT/SPLIT and report counts, sizes and bad files by name."""
    from pix2pix_edge.runtime.errors import BadInput
    from pix2pix_edge.train.data import label_side, scan_report

    o = CheckOptions(**options)
    check_options(o)
    split, direction, show = o.split, o.direction, o.show
    started = time.perf_counter()
    r = scan_report(root, split)
    took = time.perf_counter() - started
    total = len(r.good) + len(r.bad)
    click.echo(f"{r.folder}: {r.layout} layout, {len(r.good)} usable pairs, {len(r.bad)} bad "
               f"file(s), {len(r.notes)} converted (checked in {took:.1f} s)")
    if r.sizes:
        sizes = ", ".join(f"{w}x{h} ({n})" for (w, h), n in
                          sorted(r.sizes.items(), key=lambda kv: -kv[1])[:5])
        more = f" and {len(r.sizes) - 5} more sizes" if len(r.sizes) > 5 else ""
        click.echo(f"size of each half (width x height): {sizes}{more}")
    for title, items in (("bad files", r.bad), ("converted to RGB", r.notes)):
        if items:
            click.echo(f"{title}:")
            for path, reason in items[:show]:
                click.echo(f"  {path}: {reason}")
            if len(items) > show:
                click.echo(f"  ... and {len(items) - show} more")
    if r.good:
        inp, tgt = ("A", "B") if direction == "AtoB" else ("B", "A")
        halves = "left", "right"
        where = {k: halves[i] if r.layout == "aligned" else f"{k}/" for i, k in enumerate("AB")}
        click.echo(f"direction {direction}: input = {inp} ({where[inp]}), "
                   f"target = {tgt} ({where[tgt]})")
        labels = label_side(r.good[:8])
        if labels and labels != inp:
            other = "BtoA" if direction == "AtoB" else "AtoB"
            click.echo(f"note: the {labels} side holds CMP facade label maps; "
                       f"for labels -> photo use --direction {other}")
    if not r.good:
        raise BadInput(f"no usable image pairs in {r.folder} ({total} candidate(s) found)")
    if r.bad and o.on_bad_file == "error":
        path, reason = r.bad[0]
        raise BadInput(f"{len(r.bad)} bad file(s) in {r.folder}, first: {path}: {reason}")
