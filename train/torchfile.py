"""The names, shapes and dtypes of the tensors in a PyTorch state-dict file, read safely.

``pix2pix models download`` and ``models import`` check a generator file before they install it.
The file comes from the network, so it is hostile until shown otherwise: it is read with
``torch.load(weights_only=True)`` (PyTorch's restricted unpickler: tensors, dicts and plain
values only, nothing executed), memory-mapped where the format allows, and it must be a dict of
named tensors within the bounds below. Before that, a quick look at the first bytes tells an
HTML error page or an empty file from weights, so such a download is one plain line.

Both formats ``torch.save`` has written are read: the zip archive (PyTorch >= 1.6) and the legacy
stream of the 2017-2018 reference generators.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path

from pix2pix_edge.runtime.errors import BadInput

ZIP_MAGIC = b"PK\x03\x04"
LEGACY_HEAD = b"\x80\x02\x8a\x0a"        # the legacy stream starts with a pickled magic number
MAX_TENSORS = 4096
MAX_DIMS = 8


@dataclass(frozen=True)
class Tensor:
    """What the file says about one tensor."""

    shape: tuple
    dtype: str


def _html_title(head: bytes) -> str:
    m = re.search(rb"<title[^>]*>([^<]{1,200})", head, re.IGNORECASE)
    text = m.group(1).decode("utf-8", "replace") if m else ""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:80]


def sniff(head: bytes) -> str:
    """``zip``, ``legacy``, or why it is not a torch file, in words (an HTML page, empty, ...)."""
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
    import torch

    path = Path(path)
    label = label or str(path)
    with open(path, "rb") as f:
        kind = sniff(f.read(4096))
    if kind not in ("zip", "legacy"):
        raise BadInput(f"{label} is {kind}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=kind == "zip")
    except pickle.UnpicklingError as e:   # weights_only refused a class: never ran it
        what = re.search(r"GLOBAL (\S+)", str(e))
        raise BadInput(f"{label} holds {what.group(1) if what else 'objects'}, not only tensors: "
                       "refusing to read it") from None
    except (RuntimeError, EOFError, ValueError, OSError, IndexError, KeyError) as e:
        if isinstance(e, OSError) and e.filename:
            raise
        first = str(e).strip().splitlines()[0][:80] if str(e).strip() else type(e).__name__
        raise BadInput(f"{label} is truncated or corrupt ({first})") from None
    if not (isinstance(obj, dict) and 0 < len(obj) <= MAX_TENSORS
            and all(isinstance(k, str) and len(k) <= 512 for k in obj)
            and all(isinstance(v, torch.Tensor) and v.dim() <= MAX_DIMS for v in obj.values())):
        raise BadInput(f"{label} is not a state dict (a dict of up to {MAX_TENSORS} named tensors)")
    return {k: Tensor(tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in obj.items()}
