"""runtime/uri.py: one parse of every source and output name (sources, sinks and the CLI)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pix2pix_edge.runtime.errors import BadInput
from pix2pix_edge.runtime.uri import host_port, parse_uri


@pytest.mark.parametrize("text, scheme, location, options", [
    ("csi://0", "csi", "0", {}),
    ("0", "v4l2", "0", {}),
    ("/dev/video2", "v4l2", "/dev/video2", {}),
    ("v4l2:///dev/video0", "v4l2", "/dev/video0", {}),
    ("RTSP://cam/live?token=a b&x=1", "rtsp", "cam/live", {"token": "a b", "x": "1"}),
    ("http://:8090/", "http", ":8090/", {}),
    ("display://0", "display", "0", {}),
    ("clip.mp4", "file", "clip.mp4", {}),
    ("file://frames/", "file", "frames/", {}),
    ("frames/img?.png", "file", "frames/img?.png", {}),        # a glob is never split at '?'
    ("file://a?b.png", "file", "a?b.png", {}),
    ("videotestsrc ! videoconvert ! appsink", "gst", "videotestsrc ! videoconvert ! appsink", {}),
    ("", "none", "", {}), (None, "none", "", {}), ("headless", "none", "", {}),
    ("none://", "none", "", {}), (" NONE ", "none", "", {}),
])
def test_parse_uri(text, scheme, location, options):
    u = parse_uri(text)
    assert (u.scheme, u.location, u.options) == (scheme, location, options)
    assert u.text == ("" if text is None else str(text).strip())


def test_host_port():
    assert host_port(parse_uri("http://:8090/")) == (None, 8090)
    assert host_port(parse_uri("rtp://[::1]:5000")) == ("::1", 5000)
    assert host_port(parse_uri("http://0.0.0.0/")) == ("0.0.0.0", None)
    assert host_port(parse_uri("rtp://host:port")) == ("host", "port")


def test_sources_and_sinks_use_it(tmp_path):
    from pix2pix_edge.runtime.rtp import parse_rtp_uri
    from pix2pix_edge.runtime.video import NullSink, open_sink, open_source
    from pix2pix_edge.runtime.web import parse_web_uri

    assert parse_web_uri(parse_uri("http://0.0.0.0:9000/")) == ("0.0.0.0", 9000)
    assert parse_rtp_uri("rtp://10.0.0.2:5004/") == ("10.0.0.2", 5004)
    for bad in ("rtp://10.0.0.2", "rtp://:5004", "rtp://h:70000", "rtp://h:5/x"):
        with pytest.raises(BadInput, match="not rtp://HOST:PORT"):
            parse_rtp_uri(bad)
    assert isinstance(open_sink("null://"), NullSink)
    with pytest.raises(BadInput, match="is not a source: ftp://"):
        open_source("ftp://host/clip.mp4")
    with pytest.raises(BadInput, match="cannot tell what output 'ftp://host/x'"):
        open_sink("ftp://host/x")
    assert not (tmp_path / "ftp:").exists()


def test_web_is_web_uri_is_gone_and_the_cli_needs_no_opencv():
    import pix2pix_edge.runtime.web as web

    assert not hasattr(web, "is_web_uri")
    code = ("import sys; import pix2pix_edge.runtime.uri; "
            "assert 'cv2' not in sys.modules and 'numpy' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
