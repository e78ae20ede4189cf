"""train.download against a real HTTP server on 127.0.0.1 (never the internet).

The server is a few lines of http.server that understands Range requests (the standard
SimpleHTTPRequestHandler does not) and can be told to cut a response short, so resuming an
interrupted download is exercised for real."""

from __future__ import annotations

import io
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import BadInput, CheckFailed, Unavailable
from pix2pix_edge.train.download import download, sha256_of


def _tar_gz(members: dict[str, bytes], links: dict[str, tuple[str, bytes]] | None = None) -> bytes:
    """A gzip'd tar in memory. ``links``: name -> (linkname, tarfile type)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, (target, kind) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tar.addfile(info)
    return buf.getvalue()


def _png(w=64, h=32, colour=(200, 100, 50)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, format="PNG")
    return buf.getvalue()


def _facades_archive() -> bytes:
    files = {f"facades/{split}/{i}.png": _png(colour=(i * 40, 100, 50))
             for split in ("train", "val") for i in range(1, 4)}
    # padding so the archive is large enough to be cut in the middle meaningfully
    files["facades/README.txt"] = bytes(range(256)) * 400
    return _tar_gz(files)


class _Server:
    """Serves ``files`` (path -> bytes) with Range support; ``cut`` truncates the next reply."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.cut: int | None = None
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                srv.requests.append((self.path, rng))
                data = srv.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if srv.cut is not None:
                    body, srv.cut = body[:srv.cut], None  # promise everything, send part, hang up
                    self.close_connection = True
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def test_download_verifies_records_checksum_and_extracts(server, tmp_path):
    archive = _facades_archive()
    server.files["/facades.tar.gz"] = archive
    out = download("facades", tmp_path, server.url, progress=False)
    assert out == tmp_path / "facades"
    assert sorted(p.name for p in (out / "train").iterdir()) == ["1.png", "2.png", "3.png"]
    record = (tmp_path / "facades.sha256").read_text().split()
    assert record == [sha256_of(tmp_path / "facades.tar.gz"), "facades.tar.gz"]
    assert not (tmp_path / "facades.tar.gz.part").exists()
    # A second run verifies the kept archive against the record and asks the network nothing.
    n = len(server.requests)
    assert download("facades", tmp_path, server.url, progress=False) == out
    assert len(server.requests) == n


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    archive = _facades_archive()
    server.files["/facades.tar.gz"] = archive
    server.cut = len(archive) // 3
    with pytest.raises(Unavailable, match="run the same command again to resume"):
        download("facades", tmp_path, server.url, progress=False)
    part = tmp_path / "facades.tar.gz.part"
    assert part.stat().st_size == len(archive) // 3
    assert not (tmp_path / "facades").exists()

    download("facades", tmp_path, server.url, progress=False)
    assert server.requests[-1] == ("/facades.tar.gz", f"bytes={len(archive) // 3}-")
    assert (tmp_path / "facades.tar.gz").read_bytes() == archive
    assert len(list((tmp_path / "facades" / "val").iterdir())) == 3


def test_checksum_mismatch_with_the_first_download_is_a_failed_check(server, tmp_path):
    server.files["/facades.tar.gz"] = _facades_archive()
    download("facades", tmp_path, server.url, progress=False)
    # The archive is replaced by different bytes (a changed file on the server, a bad disk...).
    (tmp_path / "facades.tar.gz").unlink()
    import shutil
    shutil.rmtree(tmp_path / "facades")
    server.files["/facades.tar.gz"] = _tar_gz({"facades/train/1.png": _png(colour=(1, 2, 3))})
    with pytest.raises(CheckFailed, match=r"sha256 of .*facades\.tar\.gz .* recorded"):
        download("facades", tmp_path, server.url, progress=False)
    assert not (tmp_path / "facades").exists()


def test_unreachable_host_is_one_clear_line(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Unavailable) as e:
        download("maps", tmp_path, f"http://127.0.0.1:{port}/datasets", progress=False, timeout=5)
    msg = str(e.value)
    assert msg.startswith(f"cannot reach 127.0.0.1:{port}: ")
    assert "download maps.tar.gz manually into" in msg and str(tmp_path) in msg
    assert "\n" not in msg


def test_missing_archive_and_names(server, tmp_path):
    with pytest.raises(BadInput, match="not found .HTTP 404"):
        download("night2day", tmp_path, server.url, progress=False)
    with pytest.raises(BadInput, match="prepare_cityscapes_dataset.py"):
        download("cityscapes", tmp_path, server.url, progress=False)
    with pytest.raises(BadInput, match="unknown dataset 'shoes'"):
        download("shoes", tmp_path, server.url, progress=False)
    assert len(server.requests) == 1


def test_corrupt_archive_is_rejected_and_removed(server, tmp_path):
    server.files["/facades.tar.gz"] = _facades_archive()[:-300]  # whole download, bad archive
    with pytest.raises(BadInput, match="not a valid tar.gz archive"):
        download("facades", tmp_path, server.url, progress=False)
    assert not (tmp_path / "facades.tar.gz").exists()
    assert not (tmp_path / "facades.sha256").exists()


@pytest.mark.parametrize("members,links", [
    ({"../evil.txt": b"x"}, None),
    ({"/tmp/evil_abs.txt": b"x"}, None),
    ({"facades/train/1.png": _png()}, {"facades/escape": ("../../outside", tarfile.SYMTYPE)}),
])
def test_unsafe_archives_are_refused(server, tmp_path, members, links):
    dest = tmp_path / "d"
    server.files["/facades.tar.gz"] = _tar_gz(members, links)
    with pytest.raises(BadInput, match="refusing to extract"):
        download("facades", dest, server.url, progress=False)
    assert not (tmp_path / "evil.txt").exists() and not (dest / "facades" / "escape").exists()
    assert not Path("/tmp/evil_abs.txt").exists()


def test_cli_download(server, tmp_path):
    server.files["/edges2shoes.tar.gz"] = _tar_gz({"edges2shoes/train/1.png": _png()})
    r = CliRunner().invoke(cli, ["data", "download", "edges2shoes", "--to", str(tmp_path),
                                 "--base-url", server.url])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "edges2shoes" / "train" / "1.png").is_file()
    assert "edges2shoes" in r.output

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = CliRunner().invoke(cli, ["data", "download", "maps", "--to", str(tmp_path),
                                 "--base-url", f"http://127.0.0.1:{port}"])
    assert r.exit_code == 5
    assert "cannot reach 127.0.0.1" in r.output
    r = CliRunner().invoke(cli, ["data", "download", "cityscapes", "--to", str(tmp_path)])
    assert r.exit_code == 3 and "cityscapes-dataset.com" in r.output


def _link_chain_archive(up: int = 1) -> bytes:
    """CVE-2025-4517: 16 folders of 247 characters reached through one-letter symlinks, a link
    past PATH_MAX that points back up ``../`` x 16, and ``facades/e`` -> that link + ``/..`` x
    ``up``. Every name looks inside the folder and ``os.path.realpath`` (as tarfile's
    ``filter="data"`` uses it on Python <= 3.11.7) stops resolving past PATH_MAX, but the kernel
    follows the links: ``facades/e/evil.txt`` lands ``up`` levels above ``facades/``."""
    buf = io.BytesIO()
    comp, steps = "d" * 247, "abcdefghijklmnop"
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name, kind, linkname="", data=None):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, linkname
            info.size = len(data) if data is not None else 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        add("facades/train/1.png", tarfile.REGTYPE, data=_png())
        path = "facades"
        for s in steps:
            add(f"{path}/{comp}", tarfile.DIRTYPE)
            add(f"{path}/{s}", tarfile.SYMTYPE, comp)
            path = f"{path}/{comp}"
        link = "/".join(["facades", *steps, "l" * 254])
        add(link, tarfile.SYMTYPE, "../" * len(steps))
        add("facades/e", tarfile.SYMTYPE, link[len("facades/"):] + "/.." * (up + 1))
        add("facades/e/evil.txt", tarfile.REGTYPE, data=b"owned\n")
    return buf.getvalue()


def test_a_symlink_chain_past_path_max_cannot_write_outside(server, tmp_path):
    """Issue 21.1: served from 127.0.0.1 through the command, the crafted archive is refused
    (exit 3, one line) and nothing is written outside --to, nor left inside it."""
    dest = tmp_path / "d"
    server.files["/facades.tar.gz"] = _link_chain_archive(up=1)
    r = CliRunner().invoke(cli, ["data", "download", "facades", "--to", str(dest),
                                 "--base-url", server.url])
    assert r.exit_code == 3, r.output
    assert "refusing to extract" in r.output and "symbolic link" in r.output
    assert "is ready" not in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]          # no evil.txt beside it
    assert sorted(p.name for p in dest.iterdir()) == ["facades.sha256", "facades.tar.gz"]


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                                  tarfile.FIFOTYPE])
def test_only_regular_files_and_folders_are_extracted(server, tmp_path, kind):
    """Even a link that stays inside the folder is refused: links are what fool the checks."""
    server.files["/facades.tar.gz"] = _tar_gz({"facades/train/1.png": _png()},
                                              {"facades/train/2.png": ("1.png", kind)})
    with pytest.raises(BadInput, match=r"refusing to extract 'facades/train/2.png': a "):
        download("facades", tmp_path, server.url, progress=False)
    assert not (tmp_path / "facades").exists()


def test_members_outside_the_dataset_folder_are_refused(server, tmp_path):
    server.files["/facades.tar.gz"] = _tar_gz({"facades/train/1.png": _png(),
                                               "other/x.txt": b"x"})
    with pytest.raises(BadInput, match="not under facades/"):
        download("facades", tmp_path, server.url, progress=False)


def test_a_refused_archive_is_never_reported_ready_later(server, tmp_path):
    """Issue 21.2: a refusal mid-extraction (after train/ was written) leaves no folder behind,
    so the same command run again refuses again instead of printing 'ready'."""
    server.files["/facades.tar.gz"] = _tar_gz(
        {f"facades/train/{i}.png": _png() for i in range(1, 4)},
        {"facades/train/zz": ("../../..", tarfile.SYMTYPE)})
    for _ in range(2):
        r = CliRunner().invoke(cli, ["data", "download", "facades", "--to", str(tmp_path),
                                     "--base-url", server.url])
        assert r.exit_code == 3 and "refusing to extract 'facades/train/zz'" in r.output
        assert not (tmp_path / "facades").exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_partial_folder_from_elsewhere_is_not_taken_for_a_dataset(server, tmp_path):
    """A DIR/NAME that pix2pix did not mark as whole (an older version's refused extraction,
    or the user's own folder) is named and left alone; an empty one is taken over."""
    server.files["/facades.tar.gz"] = _facades_archive()
    (tmp_path / "facades" / "train").mkdir(parents=True)
    (tmp_path / "facades" / "train" / "mine.png").write_bytes(_png())
    with pytest.raises(BadInput, match="not a complete extraction by pix2pix"):
        download("facades", tmp_path, server.url, progress=False)
    assert (tmp_path / "facades" / "train" / "mine.png").is_file()
    import shutil
    shutil.rmtree(tmp_path / "facades" / "train")
    assert download("facades", tmp_path, server.url, progress=False) == tmp_path / "facades"
    assert len(list((tmp_path / "facades" / "train").iterdir())) == 3


def test_a_killed_extraction_leaves_a_temporary_that_the_next_run_removes(server, tmp_path):
    """kill -9 mid-extraction leaves only a hidden temporary folder of a dead process; the next
    run removes it and extracts afresh."""
    import subprocess
    import sys
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".facades.pid{dead}.k2j4h1x9"
    (stale / "facades" / "train").mkdir(parents=True)
    server.files["/facades.tar.gz"] = _facades_archive()
    download("facades", tmp_path, server.url, progress=False)
    assert not stale.exists() and (tmp_path / "facades" / "train").is_dir()


def test_trusted_sha256_and_the_trust_on_first_use_note(server, tmp_path):
    archive = _facades_archive()
    server.files["/facades.tar.gz"] = archive
    r = CliRunner().invoke(cli, ["data", "download", "facades", "--to", str(tmp_path / "a"),
                                 "--base-url", server.url, "--sha256", "0" * 64])
    assert r.exit_code == 6 and "--sha256 says 0000" in r.output
    assert not (tmp_path / "a" / "facades").exists() and not (tmp_path / "a" / "facades.tar.gz").exists()
    r = CliRunner().invoke(cli, ["data", "download", "facades", "--to", str(tmp_path / "b"),
                                 "--base-url", server.url])
    assert r.exit_code == 0 and "plain HTTP" in r.output and "--sha256" in r.output
    digest = sha256_of(tmp_path / "b" / "facades.tar.gz")
    r = CliRunner().invoke(cli, ["data", "download", "facades", "--to", str(tmp_path / "c"),
                                 "--base-url", server.url, "--sha256", digest.upper()])
    assert r.exit_code == 0 and "plain HTTP" not in r.output, r.output
    r = CliRunner().invoke(cli, ["data", "download", "facades", "--to", str(tmp_path / "c"),
                                 "--sha256", "xyz"])
    assert r.exit_code == 2 and "64 hexadecimal digits" in r.output
