"""``--output rtp://HOST:PORT``: H.264 over RTP/UDP, as jetson-utils sends it.

Needs OpenCV built with GStreamer (JetPack's OpenCV); the pip wheels have none and the sink says
so in one line. The hardware encoder (``nvv4l2h264enc``, Jetson) is tried first, then x264::

    appsrc ! videoconvert ! x264enc | nvv4l2h264enc ! rtph264pay ! udpsink host=HOST port=PORT

Watch it on the receiving machine with, for example::

    gst-launch-1.0 udpsrc port=PORT caps="application/x-rtp, encoding-name=H264, payload=96" \\
        ! rtph264depay ! avdec_h264 ! autovideosink
"""

from __future__ import annotations

import cv2

from pix2pix_edge.runtime.errors import BadInput, Unavailable
from pix2pix_edge.runtime.uri import URI, host_port, parse_uri
from pix2pix_edge.runtime.video import NO_GSTREAMER, WriterSink, has_gstreamer

_SINK = "rtph264pay config-interval=1 pt=96 ! udpsink host={host} port={port} sync=false async=false"
ENCODERS = {
    "nvv4l2h264enc": ("appsrc ! video/x-raw, format=BGR ! videoconvert ! video/x-raw, format=BGRx ! "
                      "nvvidconv ! video/x-raw(memory:NVMM), format=NV12 ! "
                      "nvv4l2h264enc insert-sps-pps=true idrinterval=30 bitrate={bitrate} ! "
                      "h264parse ! " + _SINK),
    "x264enc": ("appsrc ! videoconvert ! video/x-raw, format=I420 ! "
                "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 "
                "bitrate={kbps} ! video/x-h264, profile=baseline ! " + _SINK),
}


def parse_rtp_uri(uri) -> tuple[str, int]:
    """``rtp://HOST:PORT`` (a string or a parsed :class:`~pix2pix_edge.runtime.uri.URI`) ->
    (host, port)."""
    u = uri if isinstance(uri, URI) else parse_uri(uri)
    host, port = host_port(u) if u.scheme == "rtp" else (None, None)
    if (not host or not isinstance(port, int) or not 1 <= port <= 65535
            or u.location.partition("/")[2] or u.options):
        raise BadInput(f"RTP output {u.text!r} is not rtp://HOST:PORT "
                       f"(e.g. rtp://192.168.1.10:5000)")
    return host, port


def rtp_pipelines(host: str, port: int, bitrate: int = 4_000_000) -> dict[str, str]:
    return {name: p.format(host=host, port=port, bitrate=bitrate, kbps=bitrate // 1000)
            for name, p in ENCODERS.items()}


class RtpSink(WriterSink):
    """Frames -> H.264 -> RTP over UDP (one cv2.VideoWriter on a GStreamer pipeline)."""

    def __init__(self, uri: str, *, size: tuple[int, int] | None, fps: float | None = None,
                 bitrate: int = 4_000_000):
        host, port = parse_rtp_uri(uri)
        if not has_gstreamer():
            raise Unavailable(f"rtp:// output {NO_GSTREAMER}; use --output http://:8090/ "
                              f"(a browser view) instead")
        if size is None:
            raise BadInput(f"RTP output {uri} needs the frame size")
        self.uri, self.frames = str(uri), 0
        self.size = (int(size[0]), int(size[1]))
        self.writer, self.encoder = None, None
        for name, pipeline in rtp_pipelines(host, port, bitrate).items():
            w = cv2.VideoWriter(pipeline, cv2.CAP_GSTREAMER, 0, float(fps or 30.0), self.size)
            if w.isOpened():
                self.writer, self.encoder = w, name
                break
            w.release()
        if self.writer is None:
            raise Unavailable(f"cannot send {uri}: GStreamer has neither nvv4l2h264enc nor "
                              f"x264enc (install gstreamer1.0-plugins-ugly)")
