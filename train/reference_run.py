"""A run directory made from a reference-code generator (``latest_net_G.pth``), and reading it back.

``pix2pix models download`` and ``pix2pix models import`` both write an ordinary run directory::

    RUN/generator.pt   the state dict, in the reference's format (download: the bytes as
                       downloaded; import: re-saved with UNetGenerator's key names)
    RUN/config.json    options (the direction, the reference's sizes, the architecture read from
                       the weights), models, parameters, the inference mode, and ``source``:
                       where the weights came from (URL or file, sha256) and which facts are
                       the reference's own

which ``eval``, ``export`` and ``distill`` take as they are: ``load_generator`` gets the record a
bare state dict lacks (direction, inference mode, sizes) from :func:`reference_record`.
Writing needs no torch; :func:`import_checkpoint` loads the weights with ``weights_only=True``
to check them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from pix2pix_edge.runtime.contract import DIRECTIONS, INFERENCE_NORMS
from pix2pix_edge.runtime.errors import BadInput, BadUsage, ModelMismatch
from pix2pix_edge.runtime.files import atomic_write, remove_stale_temps, temp_prefix
from pix2pix_edge.train.reference import (config_problem, describe, infer_unet, misfit,
                                          parameter_count)
from pix2pix_edge.train.torchfile import read_state_dict

GENERATOR_FILE = "generator.pt"            # = train.checkpoint.GENERATOR_FILE (tested equal)
SOURCE_FORMAT = "pix2pix reference state dict"
TEST_SIZE = 256        # reference test.py: load_size = crop_size (256), no crop (test_options.py)
TRAIN_LOAD_SIZE = 286  # the reference's defaults (options/base_options.py): load 286, crop 256
MAX_IMPORT_BYTES = 2 << 30


def sizes(depth: int) -> tuple[int, int]:
    """``(load_size, crop_size)`` recorded for a depth: the reference's 286 / 256 where 256 is a
    multiple of 2**depth, else 2**depth for both."""
    side = max(TEST_SIZE, 2 ** depth)
    return (TRAIN_LOAD_SIZE if side == TEST_SIZE else side), side


def run_config(config: dict, *, direction: str, source: dict, inference_norm: str = "per-image",
               dropout: bool = True) -> dict:
    """RUN/config.json of a reference generator (``config``: its architecture)."""
    load, crop = sizes(config["depth"])
    generator = {**config, "dropout": bool(dropout)}
    options = {"direction": direction, "load_size": load, "crop_size": crop,
               **{k: generator[k] for k in ("depth", "ngf", "norm", "dropout", "upsample")},
               "inference_norm": inference_norm, "holdout_last": 0, "holdout_every": 0}
    return {"options": options, "models": {"generator": generator},
            "parameters": {"G": parameter_count(config)},
            "inference": {"norm_mode": inference_norm, "dropout": False},
            "data": {"path": "", "held_out_pairs": 0},
            "source": {"format": SOURCE_FORMAT, **source}}


def write_run(run: Path, weights: Path, config: dict, *, move: bool) -> Path:
    """Make ``run`` from ``weights`` and ``config`` (run_config's) all at once: built in a temp
    folder beside it and renamed into place, so a run directory is whole or absent. ``move``:
    move ``weights`` in (it is put back on failure), else copy it."""
    run = Path(run)
    if run.exists():
        raise BadUsage(f"{run} already exists: delete it or choose another folder")
    run.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(run.parent, run.name)          # what a killed import left
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(run.name), suffix=".tmp", dir=run.parent))
    target = tmp / GENERATOR_FILE
    try:
        if move:
            os.replace(weights, target)
        else:
            shutil.copyfile(weights, target)
        text = json.dumps(config, indent=2) + "\n"
        atomic_write(tmp / "config.json", lambda f: f.write(text.encode("utf-8")))
        os.rename(tmp, run)
    except BaseException:
        if move and target.exists():
            os.replace(target, weights)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return run


def read_config(run: Path) -> dict | None:
    """RUN/config.json when RUN was written here (``source.format``), else None."""
    path = Path(run) / "config.json"
    if not path.is_file() or path.stat().st_size > 1 << 20:
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadInput(f"{path}: unreadable run record ({e})") from None
    source = config.get("source") if isinstance(config, dict) else None
    return config if isinstance(source, dict) and source.get("format") == SOURCE_FORMAT else None


def _valid(config: dict, path: Path) -> tuple[dict, str, str]:
    """``(generator config, direction, inference norm)`` of a run record, every value bounded."""
    try:
        g = config["models"]["generator"]
        g = {k: g[k] for k in ("in_channels", "out_channels", "depth", "ngf", "norm", "dropout",
                               "upsample")}
        direction = config["options"]["direction"]
        norm_mode = config["inference"]["norm_mode"]
    except (KeyError, TypeError):
        raise BadInput(f"{path}: incomplete run record (models.generator, options.direction, "
                       "inference.norm_mode)") from None
    if config_problem(g) or direction not in DIRECTIONS or norm_mode not in INFERENCE_NORMS:
        raise BadInput(f"{path}: run record with impossible values ({g}, direction "
                       f"{direction!r}, inference norm {norm_mode!r})")
    return g, direction, norm_mode


def reference_record(source: str | Path) -> dict | None:
    """What ``load_generator`` records for a generator file that is a bare state dict: from the
    config.json of the run directory :func:`write_run` made (``source`` is RUN or
    RUN/generator.pt); None for any other file (then the architecture is read from the weights
    and nothing else is known)."""
    path = Path(source)
    run = path if path.is_dir() else path.parent
    if path.is_file() and path.name != GENERATOR_FILE:
        return None
    config = read_config(run)
    if config is None:
        return None
    g, direction, norm_mode = _valid(config, run / "config.json")
    crop = sizes(g["depth"])[1]
    trained_on = config["source"].get("trained_on")
    # a name, never a folder: export looks for check images in a recorded dataset folder
    dataset = f"{trained_on[:64]} (reference)" if isinstance(trained_on, str) and trained_on else ""
    return {"config": g, "inference": {"norm_mode": norm_mode, "dropout": False},
            "data": {"direction": direction, "crop_size": crop, "load_size": crop,
                     "dataset": dataset,
                     "in_channels": g["in_channels"], "out_channels": g["out_channels"]},
            "run": str(run)}


# --------------------------------------------------------------------------- import

def default_run(checkpoint: Path) -> Path:
    """``runs/NAME``: NAME the checkpoint's folder (the reference's experiment name), else its
    file name without the suffix."""
    folder = checkpoint.resolve().parent.name
    return Path("runs") / (folder if checkpoint.stem.startswith("latest_net_") and folder
                           else checkpoint.stem)


def import_checkpoint(checkpoint: str | Path, run: str | Path | None = None, *,
                      direction: str | None = None, depth: int | None = None,
                      ngf: int | None = None, norm: str | None = None,
                      upsample: str | None = None, dropout: bool | None = None,
                      inference_norm: str = "per-image", log=print) -> Path:
    """Make a run directory from a reference-code generator state dict (``latest_net_G.pth``).

    The architecture is read from the weights; a given ``depth`` / ``ngf`` / ``norm`` /
    ``upsample`` that contradicts them is a BadUsage naming the values that would fit. The file
    is loaded with ``torch.load(weights_only=True)`` into a UNetGenerator (strict) to check it;
    nothing is written until it loads."""
    import torch

    from pix2pix_edge.train.checkpoint import atomic_save, safe_load
    from pix2pix_edge.train.download import sha256_of
    from pix2pix_edge.train.models import UNetGenerator

    checkpoint = Path(checkpoint)
    if direction not in DIRECTIONS:
        raise BadUsage("--direction is required (AtoB: the input is the left half of an A|B "
                       "pair; BtoA: the right half): a state dict does not record it, and eval "
                       "and distill need it")
    if inference_norm not in INFERENCE_NORMS:
        raise BadUsage(f"--inference-norm must be one of {', '.join(INFERENCE_NORMS)}")
    if not checkpoint.is_file():
        raise BadInput(f"checkpoint not found: {checkpoint}")
    if checkpoint.stat().st_size > MAX_IMPORT_BYTES:
        raise BadInput(f"{checkpoint} is larger than a pix2pix generator can be "
                       f"({checkpoint.stat().st_size} bytes)")
    run = Path(run) if run is not None else default_run(checkpoint)
    if run.exists():
        raise BadUsage(f"{run} already exists: give another --run or delete it")
    try:
        tensors = read_state_dict(checkpoint)
    except BadInput as e:
        hint = " (pix2pix-edge runs and generator files need no import)" \
            if "not a state dict" in str(e) else ""
        raise BadInput(f"{e}{hint}") from None
    try:
        config, notes, rename = infer_unet({k: t.shape for k, t in tensors.items()})
    except ModelMismatch as e:
        raise ModelMismatch(f"{checkpoint}: {e}") from None
    given = dict(depth=depth, ngf=ngf, norm=norm, upsample=upsample)
    wrong = misfit(given, config)
    if wrong:
        raise BadUsage(f"{checkpoint.name}: {wrong}")
    state = safe_load(checkpoint, "reference checkpoint")
    state = {rename.get(k, k): v for k, v in state.items() if rename.get(k, k) is not None}
    model = UNetGenerator(**config, dropout=True if dropout is None else dropout)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1].strip()[:160]
        raise ModelMismatch(f"{checkpoint}: weights do not load into a U-Net with "
                            f"{describe(config)} ({first})") from None
    bad = [k for k, v in model.state_dict().items() if v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    if bad:
        raise BadInput(f"{checkpoint}: {len(bad)} tensors hold NaN or Inf (first: {bad[0]}): "
                       "a diverged or corrupt checkpoint")
    source = {"file": str(checkpoint.resolve()), "sha256": sha256_of(checkpoint),
              "bytes": checkpoint.stat().st_size, "notes": notes,
              "dropout": "given" if dropout is not None else
                         "not in a state dict: the reference's default (trained with dropout)",
              "options_from": "the reference's pix2pix defaults for sizes; the architecture "
                              "read from the weights"}
    record = run_config(config, direction=direction, source=source,
                        inference_norm=inference_norm, dropout=model.config["dropout"])
    run.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{run.name}.", dir=run.parent) as tmp:
        weights = atomic_save(model.state_dict(), Path(tmp) / GENERATOR_FILE)
        write_run(run, weights, record, move=True)
    for note in notes:
        log(f"note: {note}")
    return run
