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
