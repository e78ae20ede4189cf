"""Helpers that write hostile or unusual image files for tests (no torch: Python 3.8 too)."""

from __future__ import annotations

import struct
import zlib

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path, width: int, height: int) -> int:
    """A valid 1-bit black PNG of ``width`` x ``height`` written without ever holding the
    pixels: a few hundred KB on disk that decode to width * height * 3 bytes (the
    decompression bomb of issue 21: 30000 x 30000 in 109 KB). Returns the file size."""
    row = b"\0" * (1 + (width + 7) // 8)           # filter byte + packed bits
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    data = (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def png16(path, values: np.ndarray) -> None:
    """A 16-bit greyscale PNG holding ``values`` (uint16, H x W)."""
    import cv2

    assert values.dtype == np.uint16 and values.ndim == 2
    assert cv2.imwrite(str(path), values)
