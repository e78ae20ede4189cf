"""``pix2pix data``: make, download and check paired datasets.

No torch at import time (``pix2pix data --help`` stays instant), and ``data synth`` and
``data download`` never import it at all.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from pix2pix_edge.train.download import DATASETS
from pix2pix_edge.train.options import DIRECTIONS, ON_BAD_FILE

ON_BAD_FILE_HELP = ("What to do with unusable files: skip them (listed by name) or stop "
                    "with exit code 3.")


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
@click.option("--n", "n", type=click.IntRange(min=1), default=200, show_default=True,
              help="Training pairs (OUT/train).")
@click.option("--size", type=click.IntRange(min=16), default=256, show_default=True,
              help="Side of each square half, in pixels.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Same seed, same bytes: the dataset is reproducible.")
@click.option("--val", type=click.IntRange(min=0), default=0, show_default=True,
              help="Extra held-out pairs (OUT/val).")
def synth(out: Path, n: int, size: int, seed: int, val: int):
    """Write a procedural facades dataset: [labels | photo] PNGs in OUT/train (and OUT/val).

    A = CMP-style label map, B = photo, so the default --direction AtoB learns labels -> photo.
    """
    from pix2pix_edge.train.synth import make_dataset

    started = time.perf_counter()
    make_dataset(out, n=n, size=size, seed=seed, val=val)
    took = time.perf_counter() - started
    extra = f" and {val} to {out / 'val'}" if val else ""
    click.echo(f"wrote {n} pairs of [labels | photo] at {size}x{size} to {out / 'train'}{extra} "
               f"in {took:.1f} s")
    click.echo(f"train with: pix2pix train {out}")


@data.command()
@click.argument("name", type=click.Choice([*DATASETS, "cityscapes"]), metavar="NAME")
@click.option("--to", "to", type=click.Path(file_okay=False, path_type=Path),
              default=Path("datasets"), show_default=True, help="Folder to download into.")
@click.option("--base-url", default=None, help="A mirror of the pix2pix datasets folder.")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Network timeout in seconds.")
@click.option("--keep-archive/--delete-archive", default=True, show_default=True,
              help="Keep NAME.tar.gz (its sha256 is re-checked on later runs).")
def download(name: str, to: Path, base_url: str | None, timeout: float, keep_archive: bool):
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

    folder = fetch(name, to, base_url or BASE_URL, timeout=timeout, keep_archive=keep_archive)
    splits = [p.name for p in sorted(folder.iterdir()) if p.is_dir()]
    click.echo(f"{name} is ready in {folder} (splits: {', '.join(splits) or 'none'})")
    hint = " --direction BtoA" if name == "facades" else ""
    click.echo(f"check it with: pix2pix data check {folder}{hint}")


@data.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", default="train", show_default=True, help="Split folder to check.")
@click.option("--direction", type=click.Choice(DIRECTIONS), default="AtoB",
              show_default=True, help="Which half is the model input.")
@click.option("--on-bad-file", type=click.Choice(ON_BAD_FILE), default="skip",
              show_default=True, help=ON_BAD_FILE_HELP)
@click.option("--show", type=click.IntRange(min=1), default=50, show_default=True,
              help="List at most this many bad files and notes.")
def check(root: Path, split: str, direction: str, on_bad_file: str, show: int):
    """Decode every image of ROOT/SPLIT and report counts, sizes and bad files by name."""
    from pix2pix_edge.runtime.errors import BadInput
    from pix2pix_edge.train.data import label_side, scan_report

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
    if r.bad and on_bad_file == "error":
        path, reason = r.bad[0]
        raise BadInput(f"{len(r.bad)} bad file(s) in {r.folder}, first: {path}: {reason}")
