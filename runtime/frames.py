"""Frame pre- and post-processing: camera frame <-> model tensor, vectorised.

A camera gives uint8 BGR frames of any size; the generator wants a float NCHW tensor of its own
size, colour order and value range, and gives one back. :func:`plan` works out the geometry once
per source (which part of the frame the model sees, where the picture sits inside the model
input, how large the result is shown), and :class:`Preprocessor` / :class:`Postprocessor` apply it
per frame with a handful of OpenCV calls and no Python loops over pixels.

Fits (``--fit``):

* ``crop`` (default): the largest centred region of the frame with the model's aspect ratio; the
  result has that region's size (e.g. 360x360 for a 640x360 frame and a square model).
* ``letterbox``: the whole frame scaled to fit, padded with mid-grey (zero in model range); the
  padding is cut off again and the result has the frame's size.
* ``stretch``: the whole frame scaled to the model size ignoring aspect; the result is scaled
  back to the frame's size.

Speed (benchmarks/frames_speed.py): the float conversion writes each colour plane straight into
its slot of the NCHW tensor with ``cv2.addWeighted(..., dtype=CV_32F)`` (one pass, channel swap
for free, no transposed copy), and the way back converts each plane to uint8 with saturation the
same way before one ``cv2.merge``. Measured on a 640x480 frame and a 256x256 model (2-core Xeon,
OpenCV 5.0, one OpenCV thread): pre + post about 1.8 ms of CPU time for every fit. A
``cv2.dnn.blobFromImage`` pre-step costs about the same (from 10 % slower for crop to 10 %
faster for stretch); numpy's transpose-and-scale post-step costs twice as much.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pix2pix_edge.runtime.errors import BadInput
from pix2pix_edge.runtime.run_options import FITS  # noqa: F401 - the --fit choices, defined once


@dataclass(frozen=True)
class Geometry:
    """How one source frame size maps to the model input and back.

    ``region``: (x, y, w, h) of the source frame the model sees.
    ``inner``: (x, y, w, h) of the model input that holds the picture (letterbox pads around it).
    ``out_size``: (w, h) of the result frame handed to outputs.
    """

    src_size: tuple[int, int]       # (w, h)
    model_size: tuple[int, int]     # (w, h)
    fit: str
    region: tuple[int, int, int, int]
    inner: tuple[int, int, int, int]
    out_size: tuple[int, int]


def plan(src_size: tuple[int, int], model_size: tuple[int, int], fit: str = "crop") -> Geometry:
    """The geometry for frames of ``src_size`` (w, h) fed to a model of ``model_size`` (w, h)."""
    if fit not in FITS:
        raise BadInput(f"unknown fit {fit!r}: expected one of {', '.join(FITS)}")
    sw, sh = (int(v) for v in src_size)
    mw, mh = (int(v) for v in model_size)
    if sw < 1 or sh < 1:
        raise BadInput(f"source frames have no pixels ({sw}x{sh})")
    if mw < 1 or mh < 1:
        raise BadInput(f"model size {mw}x{mh} is empty")
    if fit == "crop":
        # Largest centred region with the model's aspect ratio.
        if sw * mh >= sh * mw:          # frame is wider than the model: cut the sides
            h, w = sh, max(1, round(sh * mw / mh))
        else:                           # frame is taller: cut top and bottom
            w, h = sw, max(1, round(sw * mh / mw))
        region = ((sw - w) // 2, (sh - h) // 2, w, h)
        return Geometry((sw, sh), (mw, mh), fit, region, (0, 0, mw, mh), (w, h))
    region = (0, 0, sw, sh)
    if fit == "stretch":
        return Geometry((sw, sh), (mw, mh), fit, region, (0, 0, mw, mh), (sw, sh))
    scale = min(mw / sw, mh / sh)
    iw, ih = max(1, min(mw, round(sw * scale))), max(1, min(mh, round(sh * scale)))
    inner = ((mw - iw) // 2, (mh - ih) // 2, iw, ih)
    return Geometry((sw, sh), (mw, mh), fit, region, inner, (sw, sh))


def model_size_for(info, src_size: tuple[int, int], size: tuple[int, int] | None = None,
                   fit: str = "crop") -> tuple[int, int]:
    """The (w, h) the model runs at; ``size`` is (w, h) too (a runtime.size.Size). See
    :func:`choose_model_size`, which also says why; the source size and the fit no longer
    change the choice (kept for the callers)."""
    return choose_model_size(info, size)[0]


def profile_sizes(info) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None:
    """The (w, h) of a dynamic TensorRT engine's optimisation profile: (min, opt, max), from the
    ``profile`` of its record (NCHW shapes, written by ``pix2pix export trt``); None without."""
    profile = (info.extra or {}).get("profile")
    if not profile:
        return None
    try:
        return tuple((int(profile[k][3]), int(profile[k][2]))  # type: ignore[return-value]
                     for k in ("min", "opt", "max"))
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def choose_model_size(info, size: tuple[int, int] | None = None) -> tuple[tuple[int, int], str]:
    """((w, h) the model runs at, why) -- ``why`` is for ``pix2pix run``'s first lines.

    Fixed-size models: their own size (``size`` must agree if given). Dynamic models: ``size``
    when given (a multiple of the model's multiple, and inside a TensorRT engine's optimisation
    profile), else the engine profile's opt size, else (ONNX) the size the model was exported
    at, which is its training size. Never the source size: 1280x720 video would run at
    1280x736, outside an engine's default profile and far from what the model was trained at.
    """
    m = int(info.multiple)
    sizes = profile_sizes(info) if info.dynamic else None
    if size is not None:
        w, h = (int(v) for v in size)
        if w % m or h % m or w < 1 or h < 1:
            raise BadInput(f"--size {w}x{h} is not a multiple of {m} on both sides "
                           f"(this model needs multiples of {m})")
        if not info.dynamic and (w, h) != (info.width, info.height):
            raise BadInput(f"--size {w}x{h} differs from the model's fixed input size "
                           f"{info.width}x{info.height}")
        if sizes is not None:
            (lo_w, lo_h), _, (hi_w, hi_h) = sizes
            if not (lo_w <= w <= hi_w and lo_h <= h <= hi_h):
                raise BadInput(f"--size {w}x{h} is outside the engine's optimisation profile "
                               f"({lo_w}x{lo_h} to {hi_w}x{hi_h}): choose a size in it, or "
                               f"rebuild the engine with `pix2pix export trt ... --max {w}x{h}`")
        return (w, h), "--size"
    if not info.dynamic:
        return (int(info.width), int(info.height)), "the model's fixed input size"
    if sizes is not None:
        (lo_w, lo_h), opt, (hi_w, hi_h) = sizes
        return opt, (f"the opt size of the engine's optimisation profile ({lo_w}x{lo_h} to "
                     f"{hi_w}x{hi_h}; --size WxH within it to change)")
    return (int(info.width), int(info.height)), (
        f"the size the model was exported at (its training size; dynamic model: --size WxH, "
        f"multiples of {m}, to change)")


class Preprocessor:
    """uint8 BGR frame -> float32 NCHW batch of one, in the model's colour order and range.

    A fresh output array per call (cheap next to the work), so tensors queued between threads
    never share memory.
    """

    def __init__(self, geom: Geometry, color_order: str = "RGB",
                 value_range: tuple[float, float] = (-1.0, 1.0)):
        self.geom = geom
        lo, hi = (float(v) for v in value_range)
        self.alpha = (hi - lo) / 255.0          # uint8 -> [lo, hi]
        self.beta = lo
        # Output plane c takes input (BGR) plane order[c].
        self.order = (2, 1, 0) if color_order == "RGB" else (0, 1, 2)
        x, y, w, h = geom.region
        self._rows, self._cols = slice(y, y + h), slice(x, x + w)
        mw, mh = geom.model_size
        ix, iy, iw, ih = geom.inner
        self._pad = (iy, mh - ih - iy, ix, mw - iw - ix)   # top, bottom, left, right
        self._inner_size = (iw, ih)
        self._interp = cv2.INTER_LINEAR

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        g = self.geom
        if frame.shape[1] != g.src_size[0] or frame.shape[0] != g.src_size[1]:
            frame = cv2.resize(frame, g.src_size, interpolation=self._interp)
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        elif frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        img = frame[self._rows, self._cols]
        if (img.shape[1], img.shape[0]) != self._inner_size:
            img = cv2.resize(img, self._inner_size, interpolation=self._interp)
        mw, mh = g.model_size
        out = np.empty((1, 3, mh, mw), np.float32)
        top, bottom, left, right = self._pad
        if top or bottom or left or right:
            # Letterbox padding: the model's mid value (0 in [-1, 1]), not black.
            out.fill(self.beta + self.alpha * 127.5)
            ix, iy, iw, ih = g.inner
            planes = cv2.split(img)
            for c, src in enumerate(self.order):
                dst = out[0, c, iy:iy + ih, ix:ix + iw]
                dst[...] = cv2.addWeighted(planes[src], self.alpha, planes[src], 0.0, self.beta,
                                           dtype=cv2.CV_32F)
            return out
        planes = cv2.split(img)
        for c, src in enumerate(self.order):
            cv2.addWeighted(planes[src], self.alpha, planes[src], 0.0, self.beta,
                            dst=out[0, c], dtype=cv2.CV_32F)
        return out


class Postprocessor:
    """float32 NCHW model output -> uint8 BGR HWC frame of ``geom.out_size``.

    Values outside the model range saturate (they are not wrapped); letterbox padding is cut off.
    """

    def __init__(self, geom: Geometry, color_order: str = "RGB",
                 value_range: tuple[float, float] = (-1.0, 1.0)):
        self.geom = geom
        lo, hi = (float(v) for v in value_range)
        self.alpha = 255.0 / (hi - lo)          # [lo, hi] -> uint8
        self.beta = -lo * self.alpha
        # BGR plane k takes model plane order[k].
        self.order = (2, 1, 0) if color_order == "RGB" else (0, 1, 2)
        self._interp = cv2.INTER_LINEAR

    def __call__(self, batch: np.ndarray, index: int = 0) -> np.ndarray:
        g = self.geom
        out = batch[index]
        if out.ndim != 3 or out.shape[0] < 3:
            raise BadInput(f"model output has shape {tuple(batch.shape)}; expected N x 3 x H x W")
        ix, iy, iw, ih = g.inner
        mw, mh = g.model_size
        if out.shape[1:] != (mh, mw):
            # A model that returns another size (unusual): treat its output as the model frame.
            iy, ih = iy * out.shape[1] // mh, ih * out.shape[1] // mh
            ix, iw = ix * out.shape[2] // mw, iw * out.shape[2] // mw
        planes = []
        for src in self.order:
            p = out[src, iy:iy + ih, ix:ix + iw]
            planes.append(cv2.addWeighted(p, self.alpha, p, 0.0, self.beta, dtype=cv2.CV_8U))
        img = cv2.merge(planes)
        if (img.shape[1], img.shape[0]) != g.out_size:
            img = cv2.resize(img, g.out_size, interpolation=self._interp)
        return img


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two frames next to each other at the left one's height (for the display window)."""
    h = left.shape[0]
    if right.shape[0] != h:
        w = max(1, round(right.shape[1] * h / right.shape[0]))
        right = cv2.resize(right, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.hconcat([left, right])


def draw_overlay(img: np.ndarray, lines: list[str]) -> np.ndarray:
    """Write ``lines`` in the top-left corner, white on a dark shadow (in place; returns img)."""
    y = 22
    for text in lines:
        cv2.putText(img, text, (9, y + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1,
                    cv2.LINE_AA)
        y += 22
    return img
