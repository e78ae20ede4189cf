"""Writing files safely: one mechanism for checkpoints, engines, timing caches and records; and
one way to print a file's size (binary units: 2.5 MiB).

Lives in the runtime (stdlib only) because train/, export/ and runtime/ all write files and the
runtime is the package every part may import.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from pix2pix_edge.runtime.errors import BadInput


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(f)`` on a temp file beside ``path``, fsync, then rename over ``path``.

    A crash or a full disk never leaves a half-written file in place of a good one; the temp
    file is removed on any failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def check_writable(path: Path, example: str) -> None:
    """Fail early, in one line, when ``path`` cannot be written (before minutes of work)."""
    if path.is_dir():
        raise BadInput(f"output {path} is a directory; give a file name like {example}")
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise BadInput(f"cannot write to {path}: not writable ({e.strerror or e})") from None


def format_bytes(n: int) -> str:
    """A file size as every command prints it, in binary units: ``812 B``, ``263.9 KiB``,
    ``2.5 MiB``, ``1.2 GiB``."""
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
