"""One parser for the URIs that name sources and outputs, as jetson-utils' ``URI`` splits them.

::

    parse_uri("csi://0")                  URI(scheme="csi", location="0")
    parse_uri("/dev/video0"), ("0")       URI(scheme="v4l2", location="/dev/video0" / "0")
    parse_uri("rtsp://cam/live?x=1")      URI(scheme="rtsp", location="cam/live", options={"x": "1"})
    parse_uri("http://:8090/")            URI(scheme="http", location=":8090/")
    parse_uri("display://0")              URI(scheme="display", location="0")
    parse_uri("clip.mp4"), ("file://a/")  URI(scheme="file", location="clip.mp4" / "a/")
    parse_uri("v4l2src ! ... ! appsink")  URI(scheme="gst", location=the pipeline)
    parse_uri(""), ("none"), ("headless") URI(scheme="none")

The parse is syntax only: whether a scheme makes sense as a source or as an output, and what a
file path is (video, image, directory, glob), is decided by ``video.open_source`` /
``video.open_sink``. ``options`` holds a network URI's query (``?k=v&...``); ``text`` keeps the
URI as given (network streams are opened with it, query included). Paths are never split at
``?`` (a glob may hold one). Standard library only and Python 3.8, so the command line can use it
without loading OpenCV.
"""

from __future__ import annotations

import re
from typing import Dict, NamedTuple
from urllib.parse import parse_qsl

NONE_WORDS = ("", "none", "null", "headless")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)", re.DOTALL)
_V4L2_DEVICE = re.compile(r"/dev/video\d+")
# Schemes whose location is a path (never split at '?').
PATH_SCHEMES = ("file", "v4l2")


class URI(NamedTuple):
    """A parsed source or output name: ``scheme``, ``location``, ``options``, ``text``."""

    scheme: str
    location: str
    options: Dict[str, str]
    text: str

    @property
    def is_file(self) -> bool:
        return self.scheme == "file"


def parse_uri(text) -> URI:
    """Split ``text`` into scheme, location and options (see the module docstring)."""
    s = "" if text is None else str(text).strip()
    if " ! " in s:
        return URI("gst", s, {}, s)
    m = _SCHEME.fullmatch(s)
    if m:
        scheme, rest = m.group(1).lower(), m.group(2)
        if scheme in ("none", "null"):
            return URI("none", "", {}, s)
        if scheme in PATH_SCHEMES or "?" not in rest:
            return URI(scheme, rest, {}, s)
        location, query = rest.split("?", 1)
        return URI(scheme, location, dict(parse_qsl(query, keep_blank_values=True)), s)
    if s.lower() in NONE_WORDS:
        return URI("none", "", {}, s)
    if s.isdigit() or _V4L2_DEVICE.fullmatch(s):
        return URI("v4l2", s, {}, s)
    return URI("file", s, {}, s)


def host_port(uri: URI):
    """``(host, port)`` of a network URI's location (``host:port/...``); either may be None.
    A port that is not a number is returned as the text it is (the caller says what is wrong)."""
    netloc = uri.location.split("/", 1)[0]
    m = re.fullmatch(r"(\[[^\]]*\]|[^:\[\]]*)(?::(.*))?", netloc)
    if not m:
        return None, None
    host = m.group(1).strip("[]") or None
    port = m.group(2)
    if port is None or port == "":
        return host, None
    return host, int(port) if port.isdigit() else port
