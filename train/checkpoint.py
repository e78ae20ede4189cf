"""Files written by training and read by evaluation and export.

* :func:`atomic_save`: temp file in the same directory, fsync, rename. A crash or a full disk
  never leaves a half-written checkpoint in place of a good one.
* :func:`safe_load`: ``torch.load(weights_only=True)`` with one-line errors.
* The **generator file** (``RUN/generator.pt``): what export consumes. A plain dict of the model
  config, the recorded inference choice, data facts and the weights. :func:`load_generator` also
  accepts a run directory, a training checkpoint, or a reference-code ``latest_net_G.pth``.
"""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch

from pix2pix_edge.runtime.contract import default_inference_norm
from pix2pix_edge.runtime.errors import BadInput, ModelMismatch
from pix2pix_edge.runtime.files import atomic_write
from pix2pix_edge.runtime.model_info import MAX_TEXT, short_repr
from pix2pix_edge.train.models import NORM_MODES, UNetGenerator
from pix2pix_edge.train.reference import config_problem, infer_unet
from pix2pix_edge.train.reference_run import reference_record

GENERATOR_FORMAT = "pix2pix-edge-generator"
GENERATOR_VERSION = 1
GENERATOR_FILE = "generator.pt"


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically: the old file stays intact until the new one is whole.

    torch's zip writer reports a failed write (a full disk) as a RuntimeError ("unexpected
    pos"); it becomes the OSError it is (ENOSPC when the disk is full), which the command prints
    as one line naming the file."""
    try:
        return atomic_write(path, lambda f: torch.save(obj, f))
    except RuntimeError as e:
        first = (str(e).strip().splitlines() or [""])[0]
        if "unexpected pos" not in first and "failed writing" not in first:
            raise
        folder = Path(path).parent
        code = errno.ENOSPC if shutil.disk_usage(folder).free < (1 << 20) else errno.EIO
        raise OSError(code, f"{os.strerror(code)} (torch.save: {first})", str(path)) from None


def safe_load(path: str | Path, what: str = "checkpoint") -> Any:
    """Load a torch file without unpickling arbitrary objects; one-line errors for bad files."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{what} not found: {path}")
    if path.is_dir():
        raise BadInput(f"{what} {path} is a directory, expected a file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not zipfile.is_zipfile(path):
            raise BadInput(f"{path} is corrupt or not a {what} (not a torch zip archive)") from None
        raise BadInput(f"{path} holds objects other than tensors and plain data; refusing to "
                       f"unpickle it (weights_only=True). Is it a pix2pix-edge {what}?") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadInput(f"{path} is corrupt or not a {what} ({first})") from None


def save_generator(path: str | Path, generator: UNetGenerator, *, norm_mode: str,
                   dropout: bool = False, data: dict | None = None, run: str = "",
                   training: dict | None = None) -> Path:
    """Write the generator file that ``pix2pix export`` reads. ``training``: facts of how it was
    trained that export records in the model's metadata (e.g. ``lambda_stability``)."""
    if norm_mode not in NORM_MODES:
        raise ValueError(f"norm_mode must be one of {NORM_MODES}")
    state = {k: v.detach().cpu() for k, v in generator.state_dict().items()}
    record = {
        "format": GENERATOR_FORMAT,
        "version": GENERATOR_VERSION,
        "config": dict(generator.config),
        "inference": {"norm_mode": norm_mode, "dropout": bool(dropout)},
        "data": dict(data or {}),
        "run": str(run),
        "training": dict(training or {}),
        "state_dict": state,
    }
    return atomic_save(record, path)


def _reference_config(state: dict, source: Path) -> dict:
    """The architecture of a bare state dict (a reference-code ``latest_net_G.pth``), read from
    its names and shapes (train/reference.py); dropout, which it cannot tell, on as the
    reference's default."""
    try:
        config, _, rename = infer_unet({k: tuple(v.shape) for k, v in state.items()})
    except ModelMismatch as e:
        raise ModelMismatch(f"{source}: {e}") from None
    if rename:
        raise ModelMismatch(f"{source}: its keys need renaming (a DataParallel 'module.' prefix, "
                            "old InstanceNorm statistics): pix2pix models import it first")
    return {**config, "dropout": True}


def load_generator(source: str | Path) -> tuple[UNetGenerator, dict]:
    """Load a generator and its record from a run directory, generator file, training checkpoint
    or reference-code state dict. Returns ``(model, record)``; ``record`` has the keys of
    :func:`save_generator` (``config``, ``inference``, ``data``, ``run``), with defaults filled in
    for foreign files. Raises :class:`BadInput` / :class:`ModelMismatch` with one-line messages.

    Every part of the file is checked before it is used (:func:`checked_record`), and the weights
    are compared with the architecture before the model is built (:func:`build_generator`): a
    crafted file is refused without allocating the model it describes."""
    source = Path(source)
    if source.is_dir():
        candidate = source / GENERATOR_FILE
        if not candidate.is_file():
            raise BadInput(f"{source} has no {GENERATOR_FILE}: is it a pix2pix-edge run directory? "
                           "(train writes it after the first epoch or checkpoint)")
        source = candidate
    obj = safe_load(source, "generator file")
    if not isinstance(obj, dict):
        raise ModelMismatch(f"{source} does not hold a generator (found {type(obj).__name__})")

    if obj.get("format") == GENERATOR_FORMAT:
        version = obj.get("version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ModelMismatch(f"{source}: generator format version {short_repr(version)} is "
                                "not an integer: not a pix2pix-edge generator file")
        if version > GENERATOR_VERSION:
            raise ModelMismatch(f"{source} was written by a newer pix2pix-edge "
                                f"(generator format {version}); upgrade to read it")
        record = obj
    elif "G" in obj and isinstance(obj["G"], dict) and "config" in obj:
        # A training checkpoint: {"G": state_dict, "config": {...}, ...}
        config = obj["config"]
        if isinstance(config, dict) and "generator" in config:
            config = config["generator"]
        record = {"config": config, "inference": obj.get("inference", {}),
                  "data": obj.get("data", {}), "run": obj.get("run", ""), "state_dict": obj["G"]}
    elif all(isinstance(v, torch.Tensor) for v in obj.values()):
        # a bare state dict: a run of `pix2pix models download / import` records the rest
        record = reference_record(source) or {
            "config": _reference_config(obj, source), "inference": {}, "data": {},
            "run": f"reference checkpoint {source.name}"}
        record = {**record, "state_dict": obj}
    else:
        raise ModelMismatch(f"{source} is not a pix2pix-edge generator file "
                            "(no 'format' key, not a training checkpoint, not a state dict)")

    record = checked_record(record, source)
    model = build_generator(record["config"], record.pop("state_dict"), source)
    return model, record


def checked_record(record: dict, source: Path) -> dict:
    """``record`` with every part of its type and within bounds (ModelMismatch naming ``source``
    otherwise): the architecture (train.reference.config_problem), the weights a dict of
    tensors, the inference choice, the data facts and the run name; defaults filled in."""
    def refuse(why: str):
        raise ModelMismatch(f"{source}: {why}: not a usable pix2pix-edge generator file")

    if "config" not in record:
        refuse("no 'config' (the generator's architecture)")
    problem = config_problem(record["config"])
    if problem:
        refuse(problem)
    config = record["config"]
    state = record.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        refuse(f"its weights are a {type(state).__name__}, not a state dict of tensors"
               if not isinstance(state, dict) else "its state dict holds more than named tensors")
    inference = record.get("inference") or {}
    if not isinstance(inference, dict):
        refuse(f"its inference record is a {type(inference).__name__}, not a dictionary")
    inference = {"norm_mode": default_inference_norm(config.get("norm")), "dropout": False,
                 **inference}
    if inference["norm_mode"] not in NORM_MODES:
        refuse(f"inference norm_mode {short_repr(inference['norm_mode'])} is not one of "
               f"{', '.join(NORM_MODES)}")
    if not isinstance(inference["dropout"], bool):
        refuse(f"inference dropout {short_repr(inference['dropout'])} is not true or false")
    data = record.get("data") or {}
    if not isinstance(data, dict):
        refuse(f"its data record is a {type(data).__name__}, not a dictionary")
    for key, value in data.items():
        if not (isinstance(key, str) and len(key) <= 64 and (
                value is None or isinstance(value, (bool, int, float))
                or isinstance(value, str) and len(value) <= MAX_TEXT)):
            refuse(f"its data record holds {short_repr(key)}: {short_repr(value)}, not a short "
                   "plain value")
    run = record.get("run", "")
    if not isinstance(run, str) or len(run) > MAX_TEXT:
        refuse(f"its run name {short_repr(run)} is not a string of at most {MAX_TEXT} characters")
    training = record.get("training") or {}      # export copies it into the model's metadata
    if not isinstance(training, dict):
        refuse(f"its training record is a {type(training).__name__}, not a dictionary")
    for key, value in training.items():
        if not (isinstance(key, str) and len(key) <= 64 and (
                value is None or isinstance(value, (bool, int, float))
                or isinstance(value, str) and len(value) <= MAX_TEXT)):
            refuse(f"its training record holds {short_repr(key)}: {short_repr(value)}, not a "
                   "short plain value")
    return {**record, "inference": inference, "data": data, "run": run, "training": training}


def build_generator(config: dict, state: dict, source: Path) -> UNetGenerator:
    """The U-Net ``config`` describes, with the weights ``state``. The architecture is first built
    on PyTorch's meta device (shapes, no memory) and its shapes compared with the weights, so a
    config that contradicts them is refused before anything is allocated."""
    try:
        with torch.device("meta"):
            skeleton = UNetGenerator(**config)
    except (TypeError, ValueError) as e:
        raise ModelMismatch(f"{source}: unusable generator config {config!r} ({e})") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    # (PyTorch < 0.4.1 files lack BatchNorm's counters; load_state_dict fills them in)
    missing = [k for k in expected if k not in found and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in found if k not in expected]
    wrong = [k for k in expected if k in found and found[k] != expected[k]]
    if missing or unexpected or wrong:
        detail = (f"{wrong[0]} is {found[wrong[0]]}, expected {expected[wrong[0]]}" if wrong else
                  f"missing {missing[0]}" if missing else f"unexpected {unexpected[0][:80]}")
        raise ModelMismatch(f"{source}: weights do not fit a U-Net with {config} (checkpoint "
                            f"from another architecture? {detail}; "
                            f"{len(missing) + len(unexpected) + len(wrong)} difference(s))")
    model = UNetGenerator(**config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        raise ModelMismatch(f"{source}: weights do not fit a U-Net with {config} "
                            f"(checkpoint from another architecture? {detail[:200]})") from None
    return model


# --------------------------------------------------------------------------- training checkpoints
# A training checkpoint (RUN/checkpoints/latest.pt, epoch_XXX.pt) is a plain dict written by
# train/loop.py: G, D, both optimisers and schedulers, the AMP scaler, where the loop stood
# (epoch, iteration, step in epoch), the options, and the RNG states below. Everything in it is
# tensors and plain Python data, so it loads with ``weights_only=True``.

CHECKPOINT_FORMAT = "pix2pix-edge-checkpoint"
CHECKPOINT_VERSION = 1


def capture_rng_state() -> dict:
    """Every RNG a training step can draw from (torch CPU/CUDA, numpy, Python), as plain data.

    numpy's state is stored as a tensor and Python's as lists, because ``weights_only`` loading
    accepts neither numpy arrays nor arbitrary tuples of objects."""
    import random

    import numpy as np

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": int(version), "internal": list(internal), "gauss": gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Undo :func:`capture_rng_state` (CUDA states only where the same GPUs are present)."""
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def load_training_checkpoint(path: str | Path) -> dict:
    """Read a training checkpoint written by train/loop.py; one-line errors for foreign files."""
    obj = safe_load(path, "training checkpoint")
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise ModelMismatch(f"{path} is not a pix2pix-edge training checkpoint "
                            "(no 'format' key; a generator file cannot be resumed from)")
    version = obj.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelMismatch(f"{path}: checkpoint format version {short_repr(version)} is not an "
                            "integer: not a pix2pix-edge training checkpoint")
    if version > CHECKPOINT_VERSION:
        raise ModelMismatch(f"{path} was written by a newer pix2pix-edge (checkpoint format "
                            f"{version}); upgrade to resume it")
    # what the resume reads before the weights, each of its type (the weights: load_state_dict)
    wrong = [(k, obj.get(k)) for k in ("config", "G", "D", "rng")
             if not isinstance(obj.get(k), dict)]
    wrong += [(k, obj.get(k)) for k in ("epoch", "iteration", "step_in_epoch")
              if not (isinstance(obj.get(k), int) and not isinstance(obj[k], bool) and obj[k] >= 0)]
    if not wrong:
        wrong = [(f"config.{k}", v) for k, v in obj["config"].items()
                 if not isinstance(v, (dict, type(None)))]
    if wrong:
        raise ModelMismatch(f"{path}: {wrong[0][0]} is {short_repr(wrong[0][1])}: a damaged or "
                            "crafted training checkpoint, not one pix2pix-edge wrote")
    return obj
