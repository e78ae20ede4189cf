"""The names, shapes and dtypes of the tensors in a PyTorch state-dict file, read without PyTorch.

``pix2pix models download`` checks a generator before it installs it, and must not import torch
(a runtime-only install has none). ``torch.save`` writes one of two formats:

* a zip archive (PyTorch >= 1.6): ``NAME/data.pkl`` (the pickled dict) and one stored entry
  ``NAME/data/KEY`` per storage;
* the legacy stream (PyTorch 0.4 - 1.5, as generators of 2017-2018 may be): five pickles (magic
  number, protocol 1001, system facts, the object, the sorted storage keys), then every storage
  as an int64 element count followed by its bytes.

Nothing in the file is executed: the unpickler resolves only ``OrderedDict``, the two
tensor-rebuild functions and the storage types, each to a stand-in that records a shape (the
idea of ``torch.load(weights_only=True)``, without torch). Every storage a tensor uses must be
in the file and whole, so a truncated download is caught; every size read is bounded.

Standard library only.
"""

from __future__ import annotations

import io
import math
import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from pix2pix_edge.runtime.errors import BadInput

ZIP_MAGIC = b"PK\x03\x04"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C     # torch.serialization.MAGIC_NUMBER
LEGACY_HEAD = b"\x80\x02\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")   # its protocol-2 pickle
LEGACY_PROTOCOL = 1001
MAX_PICKLE = 32 << 20        # the pickled dict: names and shapes (about 20 KiB for unet_256)
MAX_TENSORS = 4096
MAX_DIMS = 8
MAX_ELEMENTS = 1 << 34
# torch.<Name>Storage -> (dtype, bytes per element)
STORAGES = {
    "FloatStorage": ("float32", 4), "DoubleStorage": ("float64", 8), "HalfStorage": ("float16", 2),
    "BFloat16Storage": ("bfloat16", 2), "LongStorage": ("int64", 8), "IntStorage": ("int32", 4),
    "ShortStorage": ("int16", 2), "CharStorage": ("int8", 1), "ByteStorage": ("uint8", 1),
    "BoolStorage": ("bool", 1),
}


@dataclass(frozen=True)
class Tensor:
    """What the file says about one tensor."""

    shape: tuple
    dtype: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class _StorageType:
    name: str


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: str
    itemsize: int
    numel: int


def _int(v, low: int = 0, high: int = MAX_ELEMENTS) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


class _Unpickler(pickle.Unpickler):
    """Resolves only what a state dict of tensors needs, to harmless stand-ins."""

    def __init__(self, file, label: str, storages: dict):
        super().__init__(file)
        self.label, self.storages = label, storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return self._rebuild
        if module == "torch" and name in STORAGES:
            return _StorageType(name)
        raise BadInput(f"{self.label} holds {module}.{name}, not only tensors: refusing to read it")

    def persistent_load(self, pid):
        # zip: ('storage', type, key, location, numel); legacy: the same + view metadata
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                and len(pid[2]) <= 64 and _int(pid[4])):
            raise BadInput(f"{self.label} is corrupt (an unreadable storage reference)")
        if len(pid) == 6 and pid[5] is not None:
            raise BadInput(f"{self.label} uses storage views (a PyTorch < 0.4 file): load it "
                           "with PyTorch and save it again")
        dtype, itemsize = STORAGES[pid[1].name]
        storage = _Storage(pid[2], dtype, itemsize, pid[4])
        if self.storages.setdefault(storage.key, storage) != storage:
            raise BadInput(f"{self.label} is corrupt (storage {storage.key} described twice)")
        return storage

    def _rebuild(self, storage, offset, size, stride, *rest):
        if not (isinstance(storage, _Storage) and _int(offset) and isinstance(size, tuple)
                and isinstance(stride, tuple) and len(size) == len(stride) <= MAX_DIMS
                and all(_int(s) for s in size) and all(_int(s) for s in stride)):
            raise BadInput(f"{self.label} is corrupt (an unreadable tensor description)")
        if math.prod(size) and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage.numel:
            raise BadInput(f"{self.label} is corrupt (a tensor reaches past its storage)")
        return Tensor(tuple(size), storage.dtype)


def _unpickle(data: io.BytesIO, label: str, storages: dict):
    try:
        return _Unpickler(data, label, storages).load()
    except BadInput:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, OverflowError, RecursionError) as e:
        raise BadInput(f"{label} is truncated or corrupt ({type(e).__name__}: "
                       f"{str(e)[:80]})") from None


def _html_title(head: bytes) -> str:
    m = re.search(rb"<title[^>]*>([^<]{1,200})", head, re.IGNORECASE)
    text = m.group(1).decode("utf-8", "replace") if m else ""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:80]


def sniff(head: bytes) -> str:
    """``zip``, ``legacy``, or BadInput's reason in words (an HTML page, not a torch file)."""
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(LEGACY_HEAD):
        return "legacy"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<") or b"<html" in text[:1024]:
        title = _html_title(head)
        return "an HTML page" + (f" ({title!r})" if title else "") + ", not weights"
    if not head:
        return "empty"
    return f"not a PyTorch file (it starts with {head[:8].hex()})"


def read_state_dict(path: str | Path, label: str | None = None) -> dict[str, Tensor]:
    """``{name: Tensor(shape, dtype)}`` of the state dict (a dict of tensors) in ``path``.

    BadInput (one line, starting with ``label``, default the path) for anything else: an HTML
    page, a truncated or corrupt file, objects other than tensors, sizes past the bounds."""
    path = Path(path)
    label = label or str(path)
    with open(path, "rb") as f:
        kind = sniff(f.read(4096))
    if kind == "zip":
        obj, storages = _read_zip(path, label)
    elif kind == "legacy":
        obj, storages = _read_legacy(path, label)
    else:
        raise BadInput(f"{label} is {kind}")
    if not (isinstance(obj, dict) and 0 < len(obj) <= MAX_TENSORS
            and all(isinstance(k, str) and len(k) <= 512 for k in obj)
            and all(isinstance(v, Tensor) for v in obj.values())):
        raise BadInput(f"{label} is not a state dict (a dict of up to {MAX_TENSORS} named tensors)")
    return dict(obj)


def _read_zip(path: Path, label: str) -> tuple:
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if len(infos) > 2 * MAX_TENSORS + 64:
                raise BadInput(f"{label} has {len(infos)} entries: not a state dict")
            pickles = [i for i in infos if re.fullmatch(r"[^/]+/data\.pkl", i.filename)]
            if len(pickles) != 1 or pickles[0].file_size > MAX_PICKLE:
                raise BadInput(f"{label} is a zip file but not one torch.save wrote (no "
                               "NAME/data.pkl, or one too large)")
            prefix = pickles[0].filename[:-len("data.pkl")]
            storages: dict = {}
            obj = _unpickle(io.BytesIO(z.read(pickles[0])), label, storages)
            sizes = {i.filename: i.file_size for i in infos}
            for s in storages.values():
                have = sizes.get(f"{prefix}data/{s.key}")
                if have is None or have < s.numel * s.itemsize:
                    raise BadInput(f"{label} is truncated or corrupt (storage {s.key}: "
                                   f"{have or 0} of {s.numel * s.itemsize} bytes)")
            return obj, storages
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as e:
        if isinstance(e, OSError) and e.filename:
            raise
        raise BadInput(f"{label} is truncated or corrupt ({str(e)[:80] or type(e).__name__}: "
                       "no zip directory at its end)") from None


def _read_legacy(path: Path, label: str) -> tuple:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = io.BytesIO(f.read(min(size, MAX_PICKLE)))
        storages: dict = {}
        magic, protocol, facts = (_unpickle(head, label, storages) for _ in range(3))
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL or not isinstance(facts, dict):
            raise BadInput(f"{label} is a PyTorch file of an unknown kind (protocol {protocol!r})")
        if facts.get("little_endian") is not True:
            raise BadInput(f"{label} was saved on a big-endian machine: not supported")
        obj = _unpickle(head, label, storages)
        keys = _unpickle(head, label, {})
        if not (isinstance(keys, list) and sorted(keys) == sorted(storages)):
            raise BadInput(f"{label} is corrupt (its storage list does not match its tensors)")
        pos = head.tell()
        for key in keys:   # each: int64 element count, then the elements
            f.seek(pos)
            count = f.read(8)
            s = storages[key]
            if len(count) < 8:
                raise BadInput(f"{label} is truncated: it ends at byte {size} inside its data")
            if int.from_bytes(count, "little", signed=True) != s.numel:
                raise BadInput(f"{label} is corrupt (storage {key} has the wrong length)")
            pos += 8 + s.numel * s.itemsize
            if pos > size:
                raise BadInput(f"{label} is truncated: its data needs {pos} bytes or more, the "
                               f"file has {size}")
    if pos != size:
        raise BadInput(f"{label} has {size - pos} bytes after its data: corrupt or not a plain "
                       "torch.save file")
    return obj, storages
