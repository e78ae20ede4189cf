"""The reference code's pretrained pix2pix generators: what is known about each, and downloading
one into an ordinary run directory. No torch here, imported or used.

Every fact below names where it was checked in the reference repository
(junyanz/pytorch-CycleGAN-and-pix2pix); a fact it does not publish is ``None`` and shown as "not
published", never guessed:

* names and URL: ``scripts/download_pix2pix_model.sh`` (``URL=http://efrosgans.eecs.berkeley.edu
  /pix2pix/models-pytorch/$FILE.pth``, saved as ``checkpoints/${FILE}_pretrained/latest_net_G.pth``;
  older copies name four models, without map2sat; ``pix2pix.ipynb`` names all five);
* architecture: ``--model pix2pix`` sets ``netG unet_256, norm batch`` (models/pix2pix_model.py),
  ``ngf 64`` and dropout on (no ``--no_dropout``) are base_options.py's defaults, and the README
  tests facades_label2photo with none of them changed. The four others have no published test
  command: their architecture is checked in the file itself at download;
* inference: test.py runs the network in train mode unless ``--eval`` (test_options.py: "use eval
  mode during test time", off by default): BatchNorm with each image's own statistics; images
  resized to 256x256 bicubic (data/base_dataset.py, test load_size = crop_size), scaled to
  [-1, 1]. Dropout also stays on there; pix2pix-edge runs without it (random, and it flickers);
* direction and dataset: facades_label2photo is tested with ``--dataroot ./datasets/facades/
  --direction BtoA`` (README, "Apply a pre-trained model (pix2pix)"); docs/datasets.md: "To train
  a day2night pix2pix model, you need to add --direction BtoA" (on night2day). Nothing is
  published for edges2shoes, sat2map and map2sat: ``download`` then asks for ``--direction``;
* no checksum, size or licence is published for the weights: the sha256 of the first download
  is recorded (``DIR/NAME.sha256``) and every later download must match it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from pix2pix_edge.runtime.errors import BadInput, BadUsage, CheckFailed, ModelMismatch, require
from pix2pix_edge.runtime.files import atomic_write, format_bytes
from pix2pix_edge.train.download import fetch, sha256_of
from pix2pix_edge.train.reference import describe, infer_unet, unet_shapes
from pix2pix_edge.train.reference_run import (GENERATOR_FILE, read_config, run_config,
                                              write_run)
from pix2pix_edge.train.torchfile import read_state_dict

REPOSITORY = "junyanz/pytorch-CycleGAN-and-pix2pix"
BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch"
UNET_256 = dict(in_channels=3, out_channels=3, depth=8, ngf=64, norm="batch", upsample="transpose")
MAX_BYTES = 512 << 20        # unet_256 ngf 64 is about 208 MiB
LICENCE = "none published with the weights (neither the script nor the README names one)"
NOT_PUBLISHED = "not published"


@dataclass(frozen=True)
class Pretrained:
    """One published generator. ``direction`` / ``trained_on`` are None where the reference
    does not publish them; ``evidence`` says where the published ones are written."""

    name: str
    task: str
    direction: str | None = None
    trained_on: str | None = None
    evidence: str = ""
    architecture: tuple = tuple(UNET_256.items())

    @property
    def config(self) -> dict:
        return dict(self.architecture)


CATALOG = {m.name: m for m in (
    Pretrained("facades_label2photo", "facade label map -> building photo", "BtoA", "facades",
               "README 'Apply a pre-trained model (pix2pix)': test.py --dataroot "
               "./datasets/facades/ --direction BtoA --name facades_label2photo_pretrained"),
    Pretrained("edges2shoes", "edges -> shoe photo (as its name says)"),
    Pretrained("sat2map", "aerial photo -> map (as its name says)"),
    Pretrained("map2sat", "map -> aerial photo (as its name says)"),
    Pretrained("day2night", "day -> night, outdoor scenes (as its name says)", "BtoA", "night2day",
               "docs/datasets.md: 'To train a day2night pix2pix model, you need to add "
               "--direction BtoA' (night2day)"),
)}


def lookup(name: str) -> Pretrained:
    if name not in CATALOG:
        raise BadUsage(f"unknown model {name!r}: choose one of {', '.join(CATALOG)} (pix2pix "
                       "models list), or import your own with pix2pix models import FILE")
    return CATALOG[name]


def expected_bytes(config: dict = UNET_256) -> int:
    """The float32 weights and BatchNorm statistics of ``config`` (a file is a little more)."""
    return sum(math.prod(s) * (8 if k.endswith("num_batches_tracked") else 4)
               for k, s in unet_shapes(**config).items())


# --------------------------------------------------------------------------- what is here

def installed(name: str, to: str | Path) -> dict | None:
    """``{run, bytes, sha256}`` of model ``name`` downloaded into ``to``; None when absent."""
    run = Path(to) / name
    config = read_config(run) if (run / GENERATOR_FILE).is_file() else None
    if config is None:
        return None
    record = Path(to) / f"{name}.sha256"
    recorded = record.read_text().split()[:1] if record.is_file() and \
        record.stat().st_size < 4096 else []
    sha = recorded[0] if recorded else str(config["source"].get("sha256", ""))
    return {"run": run, "bytes": (run / GENERATOR_FILE).stat().st_size, "sha256": sha}


def list_lines(to: str | Path) -> list[str]:
    """What ``pix2pix models list`` prints."""
    rows = [("name", "task", "direction", "trained on", f"in {to}/")]
    for m in CATALOG.values():
        here = installed(m.name, to)
        rows.append((m.name, m.task, m.direction or NOT_PUBLISHED, m.trained_on or NOT_PUBLISHED,
                     f"yes, {format_bytes(here['bytes'])}, sha256 {here['sha256'][:12]}"
                     if here else "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    return lines + [
        "",
        f"source     {BASE_URL}/NAME.pth (plain HTTP), as {REPOSITORY}'s "
        "scripts/download_pix2pix_model.sh",
        f"all        {describe(UNET_256)}; dropout in training (not in the file); "
        "checked in each file at download",
        f"size       {NOT_PUBLISHED}: about {format_bytes(expected_bytes())} each "
        "(54,413,955 float32 parameters + BatchNorm statistics)",
        f"checksum   {NOT_PUBLISHED}: the sha256 of the first download is recorded in "
        f"{to}/NAME.sha256; later downloads must match",
        "inference  per-image BatchNorm statistics, as the reference test.py without --eval; "
        "bicubic to 256x256, [-1, 1]; dropout off",
        f"licence    {LICENCE}",
        "direction  which half of a dataset's A|B pairs is the input: facades from the README, "
        "day2night from docs/datasets.md; the others: give --direction to download",
    ]


# --------------------------------------------------------------------------- download

def download(name: str, to: str | Path = "models", mirror: str | None = None, *,
             direction: str | None = None, timeout: float = 30.0, progress: bool = True,
             log=print) -> Path:
    """Download model ``name`` into the run directory ``to/name`` (resumable; checked before it
    is installed; sha256 recorded at the first download, checked on every later one)."""
    model = lookup(name)
    require("torch", "train", f"pix2pix models download (checking {name}'s weights)")  # before 200 MB
    to = Path(to)
    run, record = to / name, to / f"{name}.sha256"
    if installed(name, to):
        return _verify_installed(model, run, record, direction, log)
    if run.exists():
        raise BadUsage(f"{run} exists but is not a downloaded model: delete it or give another --to")
    direction, direction_from = _direction(model, direction)
    url = f"{(mirror or BASE_URL).rstrip('/')}/{name}.pth"
    part = to / f"{name}.pth.part"
    to.mkdir(parents=True, exist_ok=True)
    fetch(url, part, timeout=timeout, progress=progress, max_bytes=MAX_BYTES,
          manual=f"fetch {url} another way and run: pix2pix models import {name}.pth "
                 f"--direction {direction}")
    try:
        notes, fmt = _check_weights(model, part, url)
        digest = sha256_of(part)
        _check_record(record, digest, url)
    except (BadInput, ModelMismatch, CheckFailed):
        part.unlink()
        raise
    if not record.exists():
        line = f"{digest}  {name}.pth\n"
        atomic_write(record, lambda f: f.write(line.encode()))
    source = {"name": name, "url": url, "sha256": digest, "bytes": part.stat().st_size,
              "file_format": fmt, "repository": REPOSITORY, "task": model.task,
              "trained_on": model.trained_on, "direction_from": direction_from,
              "evidence": model.evidence or NOT_PUBLISHED, "licence": LICENCE, "notes": notes,
              "dropout": "not in the file: the reference trains pix2pix with it",
              "options_from": "the reference's pix2pix defaults (options/base_options.py); how "
                              "the published model was trained is not published"}
    write_run(run, part, run_config(model.config, direction=direction, source=source), move=True)
    for note in notes:
        log(f"note: {note}")
    return run


def _direction(model: Pretrained, given: str | None) -> tuple[str, str]:
    if given is not None:
        return given, "--direction"
    if model.direction is not None:
        return model.direction, model.evidence
    raise BadUsage(f"{model.name}: the reference does not publish which half of an A|B pair "
                   "it reads; give --direction AtoB (the input is the left half) or BtoA (the "
                   "right half). It matters only to eval and distill on paired data")


def _check_weights(model: Pretrained, path: Path, url: str) -> tuple[list, str]:
    """The downloaded file must be the published U-Net, whole (train/torchfile.py)."""
    tensors = read_state_dict(path, label=url)
    if any(t.dtype not in ("float32", "int64") for t in tensors.values()):
        raise ModelMismatch(f"{url} holds {sorted({t.dtype for t in tensors.values()})} "
                            "tensors, not the published float32 weights")
    try:
        config, notes, rename = infer_unet({k: t.shape for k, t in tensors.items()})
    except ModelMismatch as e:
        raise ModelMismatch(f"{url}: {e}") from None
    if config != model.config or rename:
        raise ModelMismatch(f"{url} holds a U-Net with {describe(config)}, not {model.name}'s "
                            f"{describe(model.config)}: a wrong file on the mirror?")
    with open(path, "rb") as f:
        fmt = "zip" if f.read(4) == b"PK\x03\x04" else "legacy"
    return notes, fmt


def _check_record(record: Path, digest: str, url: str) -> None:
    if not record.is_file():
        return
    text = record.read_text().split() if record.stat().st_size < 4096 else []
    expected = text[0] if text else ""
    if digest != expected:
        raise CheckFailed(f"sha256 of {url} is {digest[:16]}... but {record} recorded "
                          f"{expected[:16]}... at the first download: the file changed on the "
                          f"server or in transit; nothing was installed (delete {record} to "
                          "accept the new file)")


def _verify_installed(model: Pretrained, run: Path, record: Path, direction: str | None,
                      log) -> Path:
    """An earlier download: its weights must still match the recorded sha256."""
    config = read_config(run)
    recorded = config["options"].get("direction")
    if direction is not None and direction != recorded:
        raise BadUsage(f"{run} records --direction {recorded}; delete it to download it again "
                       f"with --direction {direction}")
    expected = installed(model.name, run.parent)["sha256"]
    digest = sha256_of(run / GENERATOR_FILE)
    if digest != expected:
        where = record if record.is_file() else run / "config.json"
        raise CheckFailed(f"sha256 of {run / GENERATOR_FILE} is {digest[:16]}... but {where} "
                          f"recorded {expected[:16]}...: the file changed since it was "
                          f"downloaded; delete {run} and {record} to download it afresh")
    log(f"{model.name} is already in {run} (sha256 {digest[:12]} matches the record)")
    return run

