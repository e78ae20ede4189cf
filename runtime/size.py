"""Image sizes: one type and one parser for every command (run, bench, export).

The convention is WxH, width first, as OpenCV, FFmpeg, V4L2 and jetson-utils write it:
``640x480`` is 640 wide and 480 high; a single number ``256`` means 256x256. Tensor shapes
(N x C x H x W) are a different thing and keep their own order. Standard library only, so the
command-line modules can import it without loading OpenCV.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from pix2pix_edge.runtime.errors import BadInput

SIZE_HELP = "WxH (width x height), or N for NxN"
MAX_SIDE = 16384
_SIZE = re.compile(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*")


class Size(NamedTuple):
    """A width and a height in pixels; ``str()`` gives ``WxH``."""

    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def parse_size(text, what: str = "--size") -> Size | None:
    """``"640x480"`` -> Size(640, 480); ``"256"`` -> Size(256, 256); None or "" -> None.

    A bad value is a one-line :class:`BadInput` naming ``what`` (the option)."""
    if text is None or str(text).strip() == "":
        return None
    m = _SIZE.fullmatch(str(text))
    if not m:
        raise BadInput(f"bad size {what} {str(text)!r}: expected WIDTHxHEIGHT (width x height) "
                       f"or N for NxN, e.g. 640x480 or 256")
    w = int(m.group(1))
    h = int(m.group(2) or m.group(1))
    if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
        raise BadInput(f"bad size {what} {str(text)!r}: each side must be 1..{MAX_SIDE}")
    return Size(w, h)


def parse_sizes(text, what: str = "--sizes") -> list[Size]:
    """A comma-separated list: ``"256,512x256"`` -> [Size(256, 256), Size(512, 256)]."""
    if text is None:
        return []
    return [parse_size(item, what) for item in str(text).split(",") if item.strip()]
