"""Download the official pix2pix datasets (the archives the reference code uses).

``download("facades", "datasets")`` fetches ``BASE_URL/facades.tar.gz`` into
``datasets/facades.tar.gz`` and extracts ``datasets/facades/{train,val,test}``.

* **Resume**: bytes arrive in ``NAME.tar.gz.part``; an interrupted download continues from
  where it stopped with an HTTP Range request the next time (the server may refuse ranges, then
  it starts over).
* **Integrity**: no checksums are published for these archives, so the archive must open and
  list completely as a gzip'd tar, and its sha256 is recorded in ``DIR/NAME.sha256`` on the first
  download; every later run (a re-run, or a fresh download after deleting the archive) must
  match it.
* **Safe extraction**: members with absolute paths, ``..`` or links that leave ``DIR`` and
  device files are refused (plus tarfile's ``filter="data"`` where Python has it).

Only the standard library (urllib, tarfile, hashlib) and tqdm for the progress bar.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from pix2pix_edge.runtime.errors import BadInput, CheckFailed, Unavailable
from pix2pix_edge.runtime.files import format_bytes

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


def download(name: str, to="datasets", base_url: str = BASE_URL, *, timeout: float = 30.0,
             progress: bool = True, keep_archive: bool = True) -> Path:
    """Fetch, verify and extract dataset ``name`` into ``to``; returns ``to/name``."""
    if name == "cityscapes":
        raise BadInput(CITYSCAPES_HELP)
    if name not in DATASETS:
        raise BadInput(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)} "
                       "(cityscapes needs manual preparation)")
    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    archive = to / f"{name}.tar.gz"
    target = to / name
    if not archive.exists():
        if (target / "train").is_dir():
            return target  # extracted earlier and the archive was deleted: nothing to do
        part = to / f"{name}.tar.gz.part"
        url = f"{base_url.rstrip('/')}/{name}.tar.gz"
        fetch(url, part, timeout=timeout, progress=progress,
              manual=f"download {name}.tar.gz manually into {to}")
        os.replace(part, archive)
    _verify_checksum(archive, to / f"{name}.sha256")
    if not (target / "train").is_dir():
        _extract(archive, to, name)
        if not target.is_dir():
            raise BadInput(f"{archive} did not contain a {name}/ folder: not a pix2pix archive")
    if not keep_archive:
        archive.unlink()
    return target


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


def _verify_checksum(archive: Path, record: Path) -> None:
    """Record the archive's sha256 the first time; afterwards it must match the record."""
    digest = sha256_of(archive)
    if not record.exists():
        _check_archive(archive)  # only a whole, readable archive earns a record
        record.write_text(f"{digest}  {archive.name}\n")
        return
    expected = record.read_text().split()[0] if record.read_text().split() else ""
    if digest != expected:
        raise CheckFailed(f"sha256 of {archive} is {digest[:16]}... but {record} recorded "
                          f"{expected[:16]}... on the first download: the file changed or is "
                          f"corrupt; delete both files to download it afresh")


def _check_archive(archive: Path) -> None:
    """The archive must decompress and list to the end; a bad one is removed."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as e:
        archive.unlink()
        raise BadInput(f"{archive.name} is not a valid tar.gz archive ({e}); removed it, run the "
                       "command again to download it afresh") from None


def _safe_members(tar: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """Every member, or BadInput naming the first that would write outside ``dest``."""
    root = os.path.realpath(dest)

    def inside(path: str) -> bool:
        return os.path.commonpath([root, os.path.realpath(path)]) == root

    members = tar.getmembers()
    for m in members:
        escapes = not inside(os.path.join(root, m.name))
        if os.path.isabs(m.name) or ".." in Path(m.name).parts or escapes:
            raise BadInput(f"refusing to extract {m.name!r}: it would write outside {dest}")
        if m.issym() and not inside(os.path.join(root, os.path.dirname(m.name), m.linkname)):
            raise BadInput(f"refusing to extract link {m.name!r} -> {m.linkname!r}: it points "
                           f"outside {dest}")
        if m.islnk() and not inside(os.path.join(root, m.linkname)):
            raise BadInput(f"refusing to extract hard link {m.name!r} -> {m.linkname!r}")
        if m.isdev():
            raise BadInput(f"refusing to extract device file {m.name!r}")
    return members


def _extract(archive: Path, dest: Path, name: str) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        members = _safe_members(tar, dest)
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        try:
            tar.extractall(dest, members=members, **kwargs)
        except tarfile.TarError as e:  # FilterError and friends
            raise BadInput(f"refusing to extract {archive.name}: {e}") from None
