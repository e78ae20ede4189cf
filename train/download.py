"""Download the official pix2pix datasets (the archives the reference code uses).

``download("facades", "datasets")`` fetches ``BASE_URL/facades.tar.gz`` into
``datasets/facades.tar.gz`` and extracts ``datasets/facades/{train,val,test}``.

* **Resume**: bytes arrive in ``NAME.tar.gz.part``; an interrupted download continues from
  where it stopped with an HTTP Range request the next time (the server may refuse ranges, then
  it starts over).
* **Integrity**: no checksums are published for these archives and the official address is
  plain HTTP, so the archive must open and list completely as a gzip'd tar, and its sha256 is
  recorded in ``DIR/NAME.sha256`` on the first download (trust on first use, said on screen;
  ``sha256=`` checks it against a digest the user trusts instead); every later run (a re-run, or
  a fresh download after deleting the archive) must match the record.
* **Safe extraction**: only regular files and folders under ``NAME/`` are accepted (no symbolic
  or hard links, devices or FIFOs, no absolute paths or ``..``: a link chain can fool
  ``tarfile``'s own ``filter="data"``, CVE-2025-4517), within bounds on their number and total
  size. The archive is extracted into a temporary folder beside ``DIR/NAME`` that moves into
  place only when complete, with a marker file inside: a refused, interrupted or killed
  extraction leaves no ``DIR/NAME`` behind, and only a marked folder counts as ready.

Only the standard library (urllib, tarfile, hashlib) and tqdm for the progress bar.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Callable

from pix2pix_edge.runtime.errors import (BadInput, BadUsage, CheckFailed, Pix2PixError,
                                         Unavailable)
from pix2pix_edge.runtime.files import format_bytes, remove_stale_temps, temp_prefix

BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
DATASETS = {  # name -> what its aligned [A | B] files hold
    "facades": "building photo | CMP label map (labels -> photo needs --direction BtoA)",
    "maps": "aerial photo | map",
    "edges2shoes": "edge drawing | shoe photo",
    "edges2handbags": "edge drawing | handbag photo",
    "night2day": "night | day webcam image",
}
CITYSCAPES_HELP = (
    "cityscapes cannot be downloaded automatically: register at "
    "https://www.cityscapes-dataset.com, download gtFine_trainvaltest.zip and "
    "leftImg8bit_trainvaltest.zip, then build the aligned "
    "pairs with the reference repo's datasets/prepare_cityscapes_dataset.py "
    "(junyanz/pytorch-CycleGAN-and-pix2pix) and point pix2pix at its output folder")
CHUNK = 1 << 16
MARKER = ".pix2pix-download"       # in DIR/NAME: the folder was extracted whole (holds the sha256)
MAX_MEMBERS = 1_000_000            # the largest official archive (edges2handbags) has ~150k
MAX_BYTES = 64 << 30               # extracted bytes (edges2handbags: ~8.6 GiB)
MAX_NAME = 1024                    # bytes in a member's name


def download(name: str, to="datasets", base_url: str = BASE_URL, *, timeout: float = 30.0,
             progress: bool = True, keep_archive: bool = True, sha256: str | None = None,
             log: Callable[[str], None] | None = None) -> Path:
    """Fetch, verify and extract dataset ``name`` into ``to``; returns ``to/name``.

    ``sha256``: the archive's digest from a source you trust; without it the first download's
    digest is recorded and later runs must match it (``log`` says so)."""
    if name == "cityscapes":
        raise BadInput(CITYSCAPES_HELP)
    if name not in DATASETS:
        raise BadInput(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)} "
                       "(cityscapes needs manual preparation)")
    expected = _parse_sha256(sha256) if sha256 else None
    say = log or (lambda msg: None)
    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(to, name)          # a killed extraction's temporary folder
    archive = to / f"{name}.tar.gz"
    target = to / name
    if target.exists() and not (target / MARKER).is_file():
        _refuse_unmarked(target)
    if not archive.exists() and (target / MARKER).is_file():
        # Extracted earlier and the archive was deleted: nothing to do (but to compare a
        # trusted digest with the one the extraction recorded).
        extracted = (target / MARKER).read_text().split()[:1]
        if expected is not None and extracted != [expected]:
            raise CheckFailed(f"{target} was extracted from an archive with sha256 "
                              f"{(extracted or ['(none)'])[0]}, not {expected}")
        return target
    if not archive.exists():
        part = to / f"{name}.tar.gz.part"
        url = f"{base_url.rstrip('/')}/{name}.tar.gz"
        fetch(url, part, timeout=timeout, progress=progress,
              manual=f"download {name}.tar.gz manually into {to}")
        os.replace(part, archive)
    digest = _verify_checksum(archive, to / f"{name}.sha256", expected, say)
    if not (target / MARKER).is_file():
        _extract(archive, to, name, digest)
    if not keep_archive:
        archive.unlink()
    return target


def _parse_sha256(text: str) -> str:
    digest = text.strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise BadUsage(f"--sha256 must be 64 hexadecimal digits, got {text[:80]!r}")
    return digest


def _refuse_unmarked(target: Path) -> None:
    """``DIR/NAME`` exists without the marker of a whole extraction: an empty folder is taken
    over, anything else (an older version's refused or interrupted extraction, or a folder of
    the user's) is left alone and named."""
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
        return
    raise BadInput(f"{target} exists but is not a complete extraction by pix2pix (no {MARKER} "
                   "in it: an interrupted or refused extraction, or a folder of your own); move "
                   "it away or delete it, then run the command again")


def fetch(url: str, part: Path, *, timeout: float = 30.0, progress: bool = True,
          max_bytes: int | None = None, manual: str = "") -> None:
    """Download ``url`` into ``part``, continuing an earlier partial download if there is one.

    ``max_bytes``: refuse a larger file (its Content-Length, or the bytes as they arrive; the
    part file is then removed). ``manual``: what the user can do instead when the host cannot
    be reached. Used by ``pix2pix data download`` and ``pix2pix models download``."""
    from tqdm import tqdm

    host = urllib.parse.urlsplit(url).netloc
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "pix2pix-edge"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            return  # the part file already holds every byte
        if e.code == 404:
            raise BadInput(f"{url} not found (HTTP 404): is the name right?") from None
        raise Unavailable(f"downloading {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise Unavailable(f"cannot reach {host}: {reason}; check your connection"
                          + (f" or {manual}" if manual else "")) from None
    with resp:
        if have and resp.status == 206:
            start = _range_start(resp.headers.get("Content-Range", ""))
            if start != have:
                raise Unavailable(f"{host} resumed at byte {start}, expected {have}; delete {part} "
                                  "and run again")
            mode = "ab"
        else:
            have, mode = 0, "wb"  # a plain 200: the server ignored the range, start over
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        if max_bytes is not None and total is not None and total > max_bytes:
            raise BadInput(f"{url} is {format_bytes(total)}, more than the "
                           f"{format_bytes(max_bytes)} expected at most: refusing it")
        done = have
        try:
            with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                             unit_divisor=1024, desc=url.rsplit("/", 1)[-1],
                                             disable=not progress, leave=False) as bar:
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
                    if max_bytes is not None and done > max_bytes:
                        break
        except (OSError, http.client.HTTPException) as e:
            if isinstance(e, OSError) and e.filename:
                raise  # a local disk problem, not the network
            why = str(e) or type(e).__name__
            raise Unavailable(f"download of {url} interrupted after {done} bytes ({why}); "
                              f"run the same command again to resume from {part}") from None
    if max_bytes is not None and done > max_bytes:
        part.unlink()
        raise BadInput(f"{url} sent more than the {format_bytes(max_bytes)} expected at most: "
                       "refused it")
    if total is not None and done != total:
        raise Unavailable(f"download of {url} stopped at {done} of {total} bytes; run the same "
                          f"command again to resume from {part}")


def _range_start(content_range: str) -> int | None:
    # "bytes 100-999/1000"
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _verify_checksum(archive: Path, record: Path, trusted: str | None = None,
                     say: Callable[[str], None] = lambda msg: None) -> str:
    """Record the archive's sha256 the first time; afterwards it must match the record.
    ``trusted``: a digest given by the user, which the archive must match in any case.
    Returns the digest."""
    digest = sha256_of(archive)
    if trusted is not None and digest != trusted:
        archive.unlink()
        raise CheckFailed(f"sha256 of {archive.name} is {digest} but --sha256 says {trusted}: "
                          "not the archive you expected (removed it)")
    if not record.exists():
        _check_archive(archive)  # only a whole, readable archive earns a record
        record.write_text(f"{digest}  {archive.name}\n")
        if trusted is None:
            say(f"note: no checksum is published for {archive.name} and it came over plain "
                f"HTTP: recorded its sha256 {digest} in {record} (later runs must match it); "
                f"compare it with a copy you trust, or pass --sha256 next time")
        return digest
    expected = record.read_text().split()[0] if record.read_text().split() else ""
    if digest != expected:
        raise CheckFailed(f"sha256 of {archive} is {digest[:16]}... but {record} recorded "
                          f"{expected[:16]}... on the first download: the file changed or is "
                          f"corrupt; delete both files to download it afresh")
    return digest


def _check_archive(archive: Path) -> None:
    """The archive must decompress and list to the end; a bad one is removed."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as e:
        archive.unlink()
        raise BadInput(f"{archive.name} is not a valid tar.gz archive ({e}); removed it, run the "
                       "command again to download it afresh") from None


def _safe_members(tar: tarfile.TarFile, name: str, dest: Path) -> list[tarfile.TarInfo]:
    """Every member, or BadInput naming the first that is not a regular file or folder under
    ``name/`` with a plain relative path, or the bound the archive exceeds."""
    members, total = [], 0
    for m in tar.getmembers():
        parts = PurePosixPath(m.name).parts
        if not (m.isfile() or m.isdir()):
            kind = ("symbolic link" if m.issym() else "hard link" if m.islnk() else
                    "device file" if m.isdev() else "FIFO" if m.isfifo() else "special file")
            raise BadInput(f"refusing to extract {_shown(m.name)}: a {kind} (only regular "
                           "files and folders are extracted)")
        if (m.name.startswith(("/", "\\")) or os.path.isabs(m.name) or ".." in parts
                or len(m.name.encode("utf-8", "surrogateescape")) > MAX_NAME):
            raise BadInput(f"refusing to extract {_shown(m.name)}: it would write outside {dest}")
        if [p for p in parts if p != "."][:1] != [name]:
            raise BadInput(f"refusing to extract {_shown(m.name)}: not under {name}/ (not a "
                           f"pix2pix {name} archive)")
        members.append(m)
        total += max(0, m.size)
        if len(members) > MAX_MEMBERS or total > MAX_BYTES:
            raise BadInput(f"refusing to extract the archive: more than {MAX_MEMBERS:,} members or "
                           f"{format_bytes(MAX_BYTES)}, far beyond any pix2pix dataset")
    free = shutil.disk_usage(dest).free
    if total > free:
        raise Pix2PixError(f"no space left on device: extracting {name} needs "
                           f"{format_bytes(total)}, {dest} has {format_bytes(free)} free")
    return members


def _shown(member: str, most: int = 100) -> str:
    """A member name for a message: quoted, long ones cut in the middle."""
    if len(member) > most:
        member = f"{member[:most // 2]}...{member[-most // 2:]}"
    return repr(member)


def _extract(archive: Path, dest: Path, name: str, digest: str) -> None:
    """Extract ``name/`` into a temporary folder in ``dest``, mark it whole, then move it to
    ``dest/name`` in one rename; nothing is left behind on any failure."""
    work = Path(tempfile.mkdtemp(prefix=temp_prefix(name), dir=dest))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = _safe_members(tar, name, dest)
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            try:
                tar.extractall(work, members=members, **kwargs)
            except tarfile.TarError as e:  # FilterError and friends
                raise BadInput(f"refusing to extract {archive.name}: {e}") from None
        tree = work / name
        if not (tree / "train").is_dir():
            raise BadInput(f"{archive} has no {name}/train folder: not a pix2pix archive")
        (tree / MARKER).write_text(f"{digest}  {archive.name}\n")
        os.rename(tree, dest / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
