"""The facts that cross train -> export -> runtime, written once.

Training, evaluation, export (check images, INT8 calibration), distillation and the benchmarks
all read images and datasets; each of them takes these facts from here and defines none of its
own (tests/test_contract.py greps for copies):

* which files are images (:data:`IMAGE_EXTS`) and how a dataset is laid out: aligned ``A|B``
  files or ``A/`` and ``B/`` folders, the splits, natural order (:func:`list_pairs`);
* which half is the model's input (:func:`split_ab`, :func:`by_direction`);
* how an image becomes a model input: decoded with PIL as RGB (:func:`read_rgb`, the one reader,
  for training and the runtime alike: at most :data:`MAX_PIXELS`, 16-bit images scaled to 8),
  resized with :data:`RESIZE_FILTER` (bicubic, as training), scaled to :data:`VALUE_RANGE`;
* the inference-norm names and their default (:data:`INFERENCE_NORMS`);
* the pairs a run held out of training (:func:`held_out`), so that nothing scores, calibrates or
  trains on the wrong pairs.

Torch-free and Python 3.8-compatible (the runtime ships alone, JetPack 5 has Python 3.8); PIL
and numpy are imported where they are used, so ``--help`` stays instant.
"""

from __future__ import annotations

import json
import re
import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from pix2pix_edge.runtime.errors import BadInput

# ----------------------------------------------------------------------------- names and values

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
DIRECTIONS = ("AtoB", "BtoA")            # AtoB: the left half (or A/) is the model's input
SPLITS = ("train", "val", "test")        # training reads train only
VALUE_RANGE = (-1.0, 1.0)                # model inputs and outputs (the generator's Tanh)
RESIZE_FILTER = "bicubic"                # PIL.Image.BICUBIC, for every dataset image
AB_ASPECT = (1.9, 2.1)                   # a lone image this much wider than tall is an A|B pair
# No image any command reads may have more pixels (8192 x 8192): a 100 KB PNG can declare
# 30000 x 30000 and take 5 GB to decode, an out-of-memory kill on a Jetson.
MAX_PIXELS = 1 << 26

# How BatchNorm normalises at inference, recorded by training; the default first.
INFERENCE_NORMS = ("per-image", "running")
DEFAULT_INFERENCE_NORM = INFERENCE_NORMS[0]
# The metadata's norm_mode: one of the above for a BatchNorm model, else its norm layer.
NORM_MODES = INFERENCE_NORMS + ("instance", "none")
# What `pix2pix eval --norm-mode` accepts: a mode, or both to compare them.
EVAL_NORM_MODES = INFERENCE_NORMS + ("both",)


def default_inference_norm(norm: str = "batch") -> str:
    """The inference norm of a generator whose record names none: per-image statistics for
    BatchNorm (the reference test.py); "running" (the model as it is) for other norm layers."""
    return DEFAULT_INFERENCE_NORM if norm == "batch" else "running"


# ----------------------------------------------------------------------------- datasets

@dataclass(frozen=True)
class Pair:
    """One example. ``b_path`` is None for an aligned ``[A | B]`` file."""

    name: str
    a_path: Path
    b_path: Path | None = None

    @property
    def aligned(self) -> bool:
        return self.b_path is None

    def key(self) -> tuple:
        """The pair's identity on disk (resolved paths): the same files however they are named."""
        return (str(Path(self.a_path).resolve()),
                str(Path(self.b_path).resolve()) if self.b_path is not None else None)


def _natural_key(text: str) -> list:
    # re.split with a capture group alternates text / digits, so positions keep one type.
    parts = re.split(r"(\d+)", text)
    return [int(p) if i % 2 else p.lower() for i, p in enumerate(parts)]


def natural_sorted(paths: Iterable) -> list:
    """Sort names the way people count: ``2.jpg`` before ``10.jpg``."""
    return sorted(paths, key=lambda p: _natural_key(str(p)))


def natural_sorted_pairs(pairs: Iterable[Pair]) -> list:
    return sorted(pairs, key=lambda p: _natural_key(p.name))


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS and not path.name.startswith(".") and path.is_file()


def image_files(folder: str | Path) -> list:
    """The image files directly in ``folder``, in natural order."""
    return natural_sorted(p for p in Path(folder).iterdir() if is_image(p))


def split_dir(root: str | Path, split: str = "train") -> Path:
    """The folder that holds ``split``: ``root/split``, or ``root`` for a split-less folder."""
    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"dataset folder not found: {root}")
    if (root / split).is_dir():
        return root / split
    present = [s for s in SPLITS if (root / s).is_dir()]
    if present:
        raise BadInput(f"no '{split}' split in {root} (found: {', '.join(present)})")
    return root


def list_pairs(root: str | Path, split: str = "train", bad: list | None = None) -> list:
    """The pairs of ``root``/``split`` in natural order: ``A/`` and ``B/`` folders matched by
    file stem, else every image as an aligned ``A|B`` file.

    A file whose other half is missing is not returned; it is appended to ``bad`` as
    ``(path, reason)`` when a list is given, so nothing is dropped silently."""
    base = split_dir(root, split)
    a_dir, b_dir = base / "A", base / "B"
    if a_dir.is_dir() and b_dir.is_dir():
        a_files = {p.stem: p for p in image_files(a_dir)}
        b_files = {p.stem: p for p in image_files(b_dir)}
        pairs = [Pair(stem, a_files[stem], b_files[stem]) for stem in a_files if stem in b_files]
        if bad is not None:
            for stem in natural_sorted(set(a_files) ^ set(b_files)):
                have, other = (a_files[stem], "B") if stem in a_files else (b_files[stem], "A")
                bad.append((str(have), f"missing half: no {other}/{stem}.* to pair it with"))
    else:
        pairs = [Pair(p.stem, p) for p in image_files(base)]
    return natural_sorted_pairs(pairs)


# ----------------------------------------------------------------------------- reading images

class UnreadableFile(BadInput):
    """A file that cannot be decoded.

    Raised inside a DataLoader worker, torch re-raises it in the main process as
    ``UnreadableFile("Caught UnreadableFile in DataLoader worker process 0. Original
    Traceback ...")``; the constructor keeps only the original one-line message, so the
    ``pix2pix`` command still prints one clean line."""

    def __init__(self, message: str, path: str | None = None):
        if message.startswith("Caught ") and "Original Traceback" in message:
            last = message.rstrip().splitlines()[-1]
            message = last.split(f"{type(self).__name__}: ", 1)[-1]
        super().__init__(message)
        self.path = path


def too_many_pixels(size) -> str | None:
    """Why an image of ``size`` (w, h) is refused (more than :data:`MAX_PIXELS`), else None."""
    w, h = size
    if w * h <= MAX_PIXELS:
        return None
    return (f"{w}x{h} is {w * h:,} pixels, more than the {MAX_PIXELS:,} (8192x8192) any image "
            f"may have (a decompression bomb?)")


def bomb_reason(error) -> str:
    """The refusal of an image PIL itself refused as a decompression bomb (over twice its own
    limit, so over :data:`MAX_PIXELS` too), in :func:`too_many_pixels`' words."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    n = f"{int(found.group(1)):,} pixels" if found else "more pixels than PIL allows"
    return f"{n}, more than the {MAX_PIXELS:,} (8192x8192) any image may have (a decompression bomb?)"


# PIL modes of 16-bit (and 32-bit integer) greyscale: their values span 0..65535, not 0..255.
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def to_rgb(image):
    """A decoded PIL image as 8-bit RGB: 16-bit greyscale scaled (65535 -> 255; PIL's own
    convert clips it, turning most of an image white), everything else by PIL's convert."""
    if image.mode == "RGB":
        return image
    if image.mode in WIDE_MODES:
        import numpy as np
        from PIL import Image

        wide = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
        return Image.fromarray(((wide + 128) // 257).astype(np.uint8), "L").convert("RGB")
    return image.convert("RGB")


def read_rgb(path: str | Path, orient: bool = False):
    """THE image reader for model inputs and targets, in training and the runtime: ``path``
    decoded by PIL, as 8-bit RGB (:func:`to_rgb`). ``orient``: turn it as its EXIF orientation
    says (photos given to ``pix2pix run``; datasets are read as stored, as the reference code
    reads them).

    Raises :class:`UnreadableFile` naming the file, also for an image of more than
    :data:`MAX_PIXELS` (checked from the header, before anything is decoded)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # ours is the limit
            with Image.open(path) as im:
                why = too_many_pixels(im.size)
                if why:
                    raise UnreadableFile(f"cannot read image {path}: {why}", str(path))
                im.load()
                return to_rgb(ImageOps.exif_transpose(im) if orient else im)
    except UnidentifiedImageError:
        raise UnreadableFile(f"cannot read image {path}: not an image, or a format PIL cannot "
                             "decode", str(path)) from None
    except Image.DecompressionBombError as e:
        raise UnreadableFile(f"cannot read image {path}: {bomb_reason(e)}", str(path)) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise UnreadableFile(f"cannot read image {path}: {e}", str(path)) from None


def looks_like_ab(image) -> bool:
    """A lone image about twice as wide as tall is taken for an aligned ``A|B`` pair."""
    w, h = image.size
    return AB_ASPECT[0] <= w / h <= AB_ASPECT[1]


def split_ab(image) -> tuple:
    """The two halves ``(A, B)`` of an aligned ``A|B`` image (equal widths)."""
    w2 = image.width // 2
    return image.crop((0, 0, w2, image.height)), image.crop((w2, 0, 2 * w2, image.height))


def by_direction(a, b, direction: str) -> tuple:
    """``(input, target)`` of the halves ``a``, ``b`` in file order."""
    if direction not in DIRECTIONS:
        raise BadInput(f"direction must be AtoB or BtoA, got {direction!r}")
    return (a, b) if direction == "AtoB" else (b, a)


def read_halves(pair: Pair) -> tuple:
    """The A and B images of ``pair`` (in file order, before any direction swap)."""
    if not pair.aligned:
        return read_rgb(pair.a_path), read_rgb(pair.b_path)
    return split_ab(read_rgb(pair.a_path))


def read_input(item, direction: str = "AtoB", aligned: bool | None = None):
    """The model-input image of ``item``: a :class:`Pair`, or one image file.

    An image file is split when it is an aligned pair: ``aligned=True`` (a dataset), or, when
    ``aligned`` is None (a folder of anything), when it :func:`looks_like_ab`; otherwise it is the
    input itself (a camera frame, say)."""
    if isinstance(item, Pair) and not item.aligned:
        return by_direction(read_rgb(item.a_path), read_rgb(item.b_path), direction)[0]
    image = read_rgb(item.a_path if isinstance(item, Pair) else item)
    if aligned or (aligned is None and looks_like_ab(image)):
        return by_direction(*split_ab(image), direction)[0]
    return image


def resize(image, width: int, height: int):
    """``image`` at ``width x height`` with :data:`RESIZE_FILTER` (bicubic, as training)."""
    from PIL import Image

    if image.size == (width, height):
        return image
    return image.resize((width, height), getattr(Image, RESIZE_FILTER.upper()))


def to_array(image):
    """An RGB image as float32 CHW in :data:`VALUE_RANGE` ([-1, 1])."""
    import numpy as np

    lo, hi = VALUE_RANGE
    a = np.asarray(image, dtype=np.float32).transpose(2, 0, 1)
    return np.ascontiguousarray(a * np.float32((hi - lo) / 255.0) + np.float32(lo),
                                dtype=np.float32)


def load_inputs(items, width: int, height: int, direction: str = "AtoB",
                aligned: bool | None = None):
    """Model inputs of ``items`` (pairs or image files) as float32 NCHW in [-1, 1]."""
    import numpy as np

    arrays = [to_array(resize(read_input(i, direction, aligned), width, height)) for i in items]
    return np.stack(arrays).astype(np.float32)


# ----------------------------------------------------------------------------- held-out pairs

def split_holdout(pairs: list, holdout_last: int = 0, every: int = 0) -> tuple:
    """``(train, held_out)``: the last ``holdout_last`` pairs in natural order are held out, or,
    with ``every=N``, every N-th pair (the N-th, 2N-th, ...: a share that covers a dataset whose
    kinds come one after another, as shoes then handbags)."""
    n, every = int(holdout_last), int(every)
    if n and every:
        raise BadInput("hold out either the last N pairs or every N-th pair, not both")
    if every:
        if every < 2:
            raise BadInput(f"--holdout-every must be at least 2 (got {every}): every pair "
                           "would be held out")
        held = list(pairs[every - 1::every])
        if not held:
            raise BadInput(f"cannot hold out every {every}th of {len(pairs)} pairs: there are "
                           "fewer than that")
        train = [p for i, p in enumerate(pairs) if (i + 1) % every]
        return train, held
    if n <= 0:
        return list(pairs), []
    if n >= len(pairs):
        raise BadInput(f"cannot hold out {n} of {len(pairs)} pairs: nothing would be left "
                       "to train on")
    return list(pairs[:-n]), list(pairs[-n:])


@dataclass(frozen=True)
class HeldOut:
    """Which pairs of a dataset's train split a run kept out of training.

    ``last``: the last N in natural order; ``every``: every N-th; neither: none. ``dataset``: the
    folder the run trained on ("" when not known). ``recorded``: False when there is no run
    record at all (a bare generator file): what the model saw is then unknown."""

    last: int = 0
    every: int = 0
    dataset: str = ""
    recorded: bool = True
    names: tuple = ()      # the held-out pairs' names as training listed them (newer runs)

    @classmethod
    def from_options(cls, options: dict, dataset: str = "") -> "HeldOut":
        """From training options (TrainOptions fields, or config.json's "options")."""
        return cls(int(options.get("holdout_last") or 0), int(options.get("holdout_every") or 0),
                   str(dataset or options.get("data") or ""))

    @property
    def any(self) -> bool:
        return bool(self.last or self.every)

    def describe(self) -> str:
        if self.last:
            return f"the last {self.last} pairs"
        if self.every:
            return f"every {self.every}th pair"
        return "no pairs"

    def flags(self) -> str:
        """The training flags that hold these pairs out (for messages)."""
        if self.last:
            return f"--holdout-last {self.last}"
        return f"--holdout-every {self.every}" if self.every else "no --holdout-* flag"

    def split(self, pairs: list) -> tuple:
        """``(train, held_out)`` of ``pairs`` (a train split in natural order). A run that
        recorded its held-out names refuses a dataset where the same rule now picks other pairs
        (files added or removed since training): scores would silently include trained pairs."""
        train, held = split_holdout(pairs, self.last, every=self.every)
        if self.names and tuple(p.name for p in held) != self.names:
            now = {p.name for p in held}
            changed = sorted(set(self.names) ^ now, key=_natural_key)[:3]
            raise BadInput(f"the dataset changed since training: {self.describe()} are no longer "
                           f"the pairs the run held out (e.g. {', '.join(changed)}); evaluate on "
                           "the dataset as it was, or retrain")
        return train, held

    def pairs(self, data: str | Path | None = None) -> tuple:
        """``(trained, held_out)`` pairs of the train split of ``data`` (default: the run's
        dataset), split as the run split it."""
        root = data if data is not None else self.dataset
        if not root:
            raise BadInput("the run records no dataset: give the data folder")
        return self.split(list_pairs(root, "train"))

    def _split_of(self, data: str | Path | None) -> tuple | None:
        """``(trained, held_out)`` as the run split them: from the run's own dataset when it is
        on disk, else from ``data`` (taken to be the same dataset, moved); None when unknown."""
        if not self.recorded:
            return None
        root = self.dataset if self.dataset and Path(self.dataset).is_dir() else data
        return None if root is None else self.pairs(root)

    def trained_keys(self, data: str | Path | None = None) -> set | None:
        """:meth:`Pair.key` of every pair the run trained on (None when unknown)."""
        split = self._split_of(data)
        return None if split is None else {p.key() for p in split[0]}

    def held_keys(self, data: str | Path | None = None) -> set:
        """:meth:`Pair.key` of every pair the run held out (empty when unknown)."""
        split = self._split_of(data) if self.any else None
        return set() if split is None else {p.key() for p in split[1]}

    def same_dataset(self, data: str | Path) -> bool:
        """Whether ``data`` is the folder the run trained on, or its train split."""
        if not self.dataset:
            return False
        root = Path(self.dataset).resolve()
        return Path(data).resolve() in (root, root / "train")


def run_config(run: str | Path) -> dict | None:
    """RUN/config.json of a run directory, or of the run that holds a file (``RUN/generator.pt``,
    ``RUN/checkpoints/latest.pt``); None when there is none. A corrupt one is an error."""
    p = Path(run)
    folders = (p,) if p.is_dir() else (p.parent, p.parent.parent)
    for folder in folders:
        path = folder / "config.json"
        if path.is_file():
            try:
                config = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise BadInput(f"{path}: unreadable run record ({e})") from None
            if not isinstance(config, dict) or not isinstance(config.get("options"), dict):
                raise BadInput(f"{path}: not a pix2pix-edge run record (no 'options')")
            return config
    return None


def held_out(run: str | Path) -> HeldOut:
    """The hold-out ``run`` recorded (``--holdout-last`` / ``--holdout-every`` and the dataset it
    trained on, from RUN/config.json); ``recorded=False`` when there is no run record."""
    config = run_config(run)
    if config is None:
        return HeldOut(recorded=False)
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    held = HeldOut.from_options(config["options"], data.get("path") or "")
    names = data.get("held_out_names")
    if isinstance(names, list) and held.any and all(isinstance(n, str) for n in names):
        held = dataclasses.replace(held, names=tuple(names))
    return held
