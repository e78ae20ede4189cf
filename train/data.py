"""Paired image datasets for pix2pix: discovery, a bad-file scan, and the paper's augmentation.

Two on-disk layouts are understood (``DIR`` is ``root/split`` when that folder exists, else
``root`` itself when it holds no split folders at all):

* **aligned** (the pix2pix archives): ``DIR/*.jpg|png`` with A and B side by side, ``[A | B]``.
* **paired folders**: ``DIR/A/x.png`` and ``DIR/B/x.jpg``, matched by file stem.

Before training, every file is decoded once (:func:`scan`), so a corrupt, truncated or unusable
file is reported by name instead of crashing an epoch hours later. Grayscale, RGBA and palette
images are *converted* to RGB and only noted; files that cannot be used are *bad*:
not an image, corrupt, truncated, an aligned image of odd width, a pair with a missing half,
too small, or A and B of different sizes.

Discovery, the A|B split, the one image reader (PIL, RGB), the bicubic resize, the [-1, 1] scaling
and the hold-out split are runtime/contract.py's, shared with export and the benchmarks.
Decoding stays in PIL / numpy; torch is used only to hand tensors to the training loop.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

# Discovery, the A|B split, the image reader and the hold-out split are the contract's (shared
# with export and the benchmarks); they are re-exported here for the Python API.
from pix2pix_edge.runtime.contract import (IMAGE_EXTS, SPLITS, WIDE_MODES, Pair,  # noqa: F401
                                           UnreadableFile,
                                           by_direction, list_pairs, natural_sorted,
                                           natural_sorted_pairs, read_halves, read_rgb, resize,
                                           split_dir, split_holdout, to_array,
                                           bomb_reason, too_many_pixels)
from pix2pix_edge.runtime.errors import BadInput
from pix2pix_edge.train.options import DIRECTIONS, ON_BAD_FILE

MIN_SIDE = 16          # smaller halves are rejected as "too small"
load_rgb, load_halves = read_rgb, read_halves   # the names this module has always had


class ImageFacts(NamedTuple):
    width: int
    height: int
    mode: str


# ----------------------------------------------------------------------------- checking

def _describe_mode(mode: str) -> str | None:
    """A note for images that are converted to RGB, None for plain RGB."""
    if mode == "RGB":
        return None
    if mode in WIDE_MODES:
        return f"16-bit grayscale ({mode}) scaled to 8-bit RGB"
    if mode in ("L", "1", "F", "LA"):
        return f"grayscale ({mode}) converted to RGB"
    if mode in ("RGBA", "RGBa"):
        return "RGBA converted to RGB (alpha channel dropped)"
    if mode in ("P", "PA"):
        return "palette image converted to RGB"
    return f"{mode} converted to RGB"


def inspect_image(path: Path) -> ImageFacts:
    """Decode ``path`` completely; raise ValueError with a short reason if it is unusable."""
    try:
        empty = path.stat().st_size == 0
    except OSError as e:
        raise ValueError(f"unreadable ({e.strerror or e})") from None
    if empty:
        raise ValueError("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS is ours
            with Image.open(path) as im:
                facts = ImageFacts(im.width, im.height, im.mode)
                why = too_many_pixels(im.size)
                if not why:
                    im.load()  # full decode: truncation shows up here, not at Image.open
    except UnidentifiedImageError:
        raise ValueError("not an image (PIL cannot identify the format)") from None
    except OSError as e:
        msg = str(e)
        if "truncated" in msg:
            raise ValueError("truncated (the file ends before the image data does)") from None
        raise ValueError(f"corrupt or unreadable ({msg})") from None
    except Image.DecompressionBombError as e:
        raise ValueError(bomb_reason(e)) from None
    except (SyntaxError, ValueError) as e:
        raise ValueError(f"corrupt ({e})") from None
    if why:
        raise ValueError(why)
    return facts


def _check_pair(pair: Pair, min_side: int):
    """``(bad, notes, size)`` for one pair: lists of (path, reason); size of each half (w, h)."""
    bad, notes = [], []
    facts = {}
    for path in (pair.a_path, pair.b_path):
        if path is None:
            continue
        try:
            facts[path] = f = inspect_image(path)
        except ValueError as e:
            bad.append((str(path), str(e)))
            continue
        note = _describe_mode(f.mode)
        if note:
            notes.append((str(path), note))
    if bad:
        return bad, notes, None
    if pair.aligned:
        f = facts[pair.a_path]
        size = (f.width // 2, f.height)
        if f.width % 2:
            return [(str(pair.a_path), f"odd width {f.width}: an aligned A|B image must split "
                     "into two equal halves")], notes, None
    else:
        fa, fb = facts[pair.a_path], facts[pair.b_path]
        size = (fa.width, fa.height)
        if (fa.width, fa.height) != (fb.width, fb.height):
            return [(str(pair.a_path), f"A is {fa.width}x{fa.height} but B ({pair.b_path}) is "
                     f"{fb.width}x{fb.height}")], notes, None
    if min(size) < min_side:
        half = "each half is " if pair.aligned else ""
        return [(str(pair.a_path), f"too small: {half}{size[0]}x{size[1]}, need at least "
                 f"{min_side}x{min_side}")], notes, None
    return [], notes, size


@dataclass
class ScanReport:
    """Everything :func:`scan_report` found: what ``pix2pix data check`` prints."""

    folder: Path
    layout: str                                    # "aligned" or "paired folders"
    good: list[Pair]
    bad: list[tuple[str, str]]                     # (path, reason)
    notes: list[tuple[str, str]]                   # (path, what was converted)
    sizes: dict[tuple[int, int], int]              # (width, height) of one half -> count


def check_pairs(pairs: list[Pair], min_side: int = MIN_SIDE,
                notes: list[tuple[str, str]] | None = None,
                sizes: dict | None = None):
    """Decode every file of ``pairs`` (in threads; PIL releases the GIL while decoding).

    Returns ``(good, bad)``; conversion notes are appended to ``notes`` and the size of each
    good pair's halves counted in ``sizes`` when they are given."""
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda p: _check_pair(p, min_side), pairs))
    good, bad = [], []
    for pair, (pair_bad, pair_notes, size) in zip(pairs, results):
        if pair_bad:
            bad.extend(pair_bad)
        else:
            good.append(pair)
            if sizes is not None:
                sizes[size] = sizes.get(size, 0) + 1
        if notes is not None:
            notes.extend(pair_notes)
    return good, bad


def scan_report(root: str | Path, split: str = "train", min_side: int = MIN_SIDE) -> ScanReport:
    """Discover and decode every pair of ``root``/``split``; nothing is raised for bad files."""
    folder = split_dir(root, split)
    layout = "paired folders" if (folder / "A").is_dir() and (folder / "B").is_dir() else "aligned"
    missing: list[tuple[str, str]] = []
    notes: list[tuple[str, str]] = []
    sizes: dict[tuple[int, int], int] = {}
    pairs = list_pairs(root, split, bad=missing)
    good, bad = check_pairs(pairs, min_side, notes, sizes)
    return ScanReport(folder, layout, good, missing + bad, notes, sizes)


def scan(root: str | Path, split: str = "train", min_side: int = MIN_SIDE,
         notes: list[tuple[str, str]] | None = None):
    """``(good pairs, [(path, reason), ...])`` for ``root``/``split``, every file decoded once.

    Conversion notes (grayscale / RGBA / palette -> RGB) are appended to ``notes`` if given."""
    report = scan_report(root, split, min_side)
    if notes is not None:
        notes.extend(report.notes)
    return report.good, report.bad


def palette_share(img: Image.Image, tolerance: int = 40) -> float:
    """Share of pixels within ``tolerance`` of a CMP facades label colour (photos: ~0)."""
    from pix2pix_edge.train.synth import PALETTE

    a = np.asarray(img.convert("RGB").resize((64, 64), Image.NEAREST), np.int32).reshape(-1, 3)
    d = np.abs(a[:, None, :] - PALETTE.astype(np.int32)[None]).max(-1).min(1)
    return float((d <= tolerance).mean())


def label_side(pairs: list[Pair]) -> str | None:
    """"A" or "B" if that half of ``pairs`` holds CMP facade label maps and the other does not.

    A hint for ``data check``: the real facades files are photo | labels, so labels -> photo
    needs --direction BtoA, a classic pix2pix mistake. (JPEG blurs the label colours, so the
    real label maps score about 0.5-0.8, photos about 0.)"""
    share = {"A": [], "B": []}
    for pair in pairs:
        try:
            a, b = load_halves(pair)
        except BadInput:
            continue
        share["A"].append(palette_share(a))
        share["B"].append(palette_share(b))
    if not share["A"]:
        return None
    a, b = float(np.median(share["A"])), float(np.median(share["B"]))
    if a > 0.4 and b < 0.1:
        return "A"
    if b > 0.4 and a < 0.1:
        return "B"
    return None


# ----------------------------------------------------------------------------- the dataset

def _hw(size) -> tuple[int, int]:
    """An int (square) or (height, width) -> (height, width)."""
    if isinstance(size, (tuple, list)):
        h, w = (int(s) for s in size)
    else:
        h = w = int(size)
    if h <= 0 or w <= 0:
        raise BadInput(f"image size must be positive, got {size}")
    return h, w


def to_tensor(img: Image.Image) -> torch.Tensor:
    """uint8 HxWx3 -> float CxHxW in [-1, 1] (the Tanh range of the generator).

    The arithmetic stays in numpy (contract.to_array): in a DataLoader worker, small torch ops
    pay for waking the intra-op thread pool (measured 10x slower than numpy on a busy 2-core
    machine)."""
    return torch.from_numpy(to_array(img))


class PairedDataset(torch.utils.data.Dataset):
    """Pairs as tensors ``{"A": input, "B": target, "path": str}`` in [-1, 1].

    ``direction="BtoA"`` swaps the halves (the real facades files are photo | labels).
    ``augment=True`` is the paper's jitter: resize both halves to ``load_size`` (bicubic), the
    same random ``crop_size`` crop and the same random horizontal flip. ``augment=False`` resizes
    straight to ``crop_size`` (evaluation). Sizes are an int or ``(height, width)``.

    Randomness is a function of ``(seed, epoch, index)`` only, so batches are identical with any
    number of DataLoader workers and after a resume. Call :meth:`set_epoch` before iterating a
    DataLoader (with ``persistent_workers=False``, the default, workers copy the dataset at each
    ``iter(loader)`` and so see the new epoch).

    A file that fails to decode during training (changed after the scan): with
    ``on_bad_file="error"`` __getitem__ raises BadInput naming it; with ``"skip"`` it warns,
    records it in ``bad_files`` (in this process) and returns the next good pair instead.
    """

    def __init__(self, root=None, split: str = "train", direction: str = "AtoB",
                 load_size=286, crop_size=256, augment: bool = True, on_bad_file: str = "skip",
                 files: list[Pair] | None = None, seed: int = 0, min_side: int = MIN_SIDE):
        if direction not in DIRECTIONS:
            raise BadInput(f"direction must be AtoB or BtoA, got {direction!r}")
        if on_bad_file not in ON_BAD_FILE:
            raise BadInput(f"on_bad_file must be skip or error, got {on_bad_file!r}")
        self.load_hw, self.crop_hw = _hw(load_size), _hw(crop_size)
        if augment and (self.crop_hw[0] > self.load_hw[0] or self.crop_hw[1] > self.load_hw[1]):
            raise BadInput(f"crop size {crop_size} is larger than load size {load_size}")
        self.root, self.split, self.direction = root, split, direction
        self.augment, self.on_bad_file, self.seed = augment, on_bad_file, int(seed)
        self.epoch = 0
        self._unreadable: set[int] = set()  # indices that failed to decode after the scan
        self.notes: list[tuple[str, str]] = []
        if files is None:
            if root is None:
                raise BadInput("PairedDataset needs a root folder or a list of files")
            self.pairs, self.bad_files = scan(root, split, min_side, self.notes)
        else:
            self.pairs, self.bad_files = check_pairs(list(files), min_side, self.notes)
        if self.bad_files and on_bad_file == "error":
            path, reason = self.bad_files[0]
            more = len(self.bad_files) - 1
            tail = f" (and {more} more bad file{'s' * (more > 1)})" if more else ""
            raise BadInput(f"bad input file {path}: {reason}{tail}; "
                           "use --on-bad-file skip to train without them")
        if not self.pairs:
            # the folder read: ROOT/SPLIT, or ROOT itself when it has no split folders
            where = split_dir(root, split) if files is None else "the given file list"
            detail = (f"; {len(self.bad_files)} bad file(s), first: {self.bad_files[0][0]}: "
                      f"{self.bad_files[0][1]}") if self.bad_files else ""
            raise BadInput(f"no usable image pairs in {where} (expected aligned A|B images or "
                           f"A/ and B/ folders){detail}")

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _transform(self, a: Image.Image, b: Image.Image, index: int):
        if not self.augment:
            h, w = self.crop_hw
            return resize(a, w, h), resize(b, w, h)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        (lh, lw), (ch, cw) = self.load_hw, self.crop_hw
        y = int(rng.integers(0, lh - ch + 1))
        x = int(rng.integers(0, lw - cw + 1))
        flip = bool(rng.random() < 0.5)
        out = []
        for im in (a, b):
            im = resize(im, lw, lh).crop((x, y, x + cw, y + ch))
            out.append(im.transpose(Image.FLIP_LEFT_RIGHT) if flip else im)
        return out

    def __getitem__(self, index: int) -> dict:
        n = len(self.pairs)
        for k in range(n):
            j = (index + k) % n
            if j in self._unreadable:
                continue
            pair = self.pairs[j]
            try:
                a, b = load_halves(pair)
            except UnreadableFile as e:
                if self.on_bad_file == "error":
                    raise
                warnings.warn(f"skipping {e}", RuntimeWarning, stacklevel=2)
                self._unreadable.add(j)
                self.bad_files.append((e.path or str(pair.a_path), str(e)))
                continue
            a, b = by_direction(a, b, self.direction)
            a, b = self._transform(a, b, index)
            return {"A": to_tensor(a), "B": to_tensor(b), "path": str(pair.a_path)}
        raise BadInput(f"no readable image pairs left in {self.root}/{self.split}")
