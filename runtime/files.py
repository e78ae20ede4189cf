"""Writing files safely: one mechanism for checkpoints, engines, timing caches and records; the
one naming of our temporary files and folders (so that those a killed process left behind are
recognised and removed at the next start); and one way to print a file's size (2.5 MiB).

Lives in the runtime (stdlib only) because train/, export/ and runtime/ all write files and the
runtime is the package every part may import.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from pix2pix_edge.runtime.errors import BadInput


# .NAME.pidPID.RANDOM[.tmp[.EXT]]: a temporary of ours for NAME, made by process PID.
_TEMP = re.compile(r"^\.(?P<name>.+)\.pid(?P<pid>\d+)\.[^.]+(\.tmp(\.\w+)?)?$")


def temp_prefix(name: str) -> str:
    """The prefix of every temporary file or folder made beside the file ``name``:
    ``.NAME.pidPID.`` (hidden, and naming the process that owns it)."""
    return f".{name}.pid{os.getpid()}."


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:          # EPERM: it runs, as another user
        return True
    return True


def remove_stale_temps(folder: str | Path, name: str | None = None) -> list:
    """Remove the temporaries of ours (:func:`temp_prefix`) in ``folder`` (for the file ``name``
    only, or for any) whose process no longer runs: what kill -9, an OOM kill or a power cut
    left behind. Those of running processes are kept. Returns the paths removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.match(entry.name)
        if not m or (name is not None and m.group("name") != name) or _running(int(m.group("pid"))):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object], *,
                 durable: bool = True) -> Path:
    """Call ``write(f)`` on a temp file beside ``path``, fsync, then rename over ``path``.

    A crash or a full disk never leaves a half-written file in place of a good one; the temp
    file is removed on any failure, and one a killed process left is removed by the next write
    of the same file. ``durable=False`` (many small files, e.g. a folder of translated images):
    no fsync and no search for stale temporaries (the caller does that once)."""
    path = Path(path)
    if durable:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            if durable:
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


def replace_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` under a temporary name beside ``path``, then rename it over ``path``: an
    existing file is only ever replaced by a whole one (:func:`atomic_write` without fsync)."""
    atomic_write(path, lambda f: f.write(data), durable=False)


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name the same existing file or folder (through symbolic links,
    hard links, ``..`` or another spelling)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def refuse_same_files(outputs, inputs) -> None:
    """BadInput (exit 3) when an output is one of the inputs: ``outputs`` and ``inputs`` are
    ``(what, path)`` pairs, e.g. ``("--output", "v.mp4")`` and ``("the source video", ...)``.
    Nothing is ever written over a file the command reads."""
    for out_what, out in outputs:
        for in_what, inp in inputs:
            if same_file(out, inp):
                raise BadInput(f"{out_what} {out} is {in_what}: writing it would destroy it; "
                               f"choose another output")


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
