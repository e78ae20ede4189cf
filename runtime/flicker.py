"""Frame-to-frame stability: the warping error of Lai et al. (ECCV 2018).

For consecutive frames t, t+1 the output of frame t is warped onto frame t+1 with optical flow
computed on the **input** frames, and the error is the mean absolute difference over the pixels
that are visible in both frames::

    E(t) = sum_x M(x) * |O_{t+1}(x) - O_t(x + F(x))|  /  (3 * sum_x M(x))     (values in [0, 1])

``F`` is the backward flow (frame t+1 -> frame t) from OpenCV's DIS optical flow; ``M`` drops
pixels whose flow leaves the image and occluded pixels, found by forward-backward consistency
(Sundaram et al. 2010, the test Lai et al. use): ``|F + G(x + F)|^2 < 0.01 (|F|^2 + |G(x + F)|^2)
+ 0.5`` with ``G`` the forward flow. The figure of a clip is the mean of E(t) over its pairs.
The same figure computed on the input frames shows how much of it the flow itself explains:
a perfectly stable translation has an output figure close to the input's.

Two figures of each pair: ``flicker`` uses the absolute difference (L1), which reads directly as
"mean grey levels of flicker" (x 255); ``flicker_l2`` is Lai et al.'s own, the *squared*
difference with the same mask and normalisation (their evaluate_WarpError.py: the sum of squares
over the non-occluded pixels and the 3 channels, divided by their count), comparable with their
tables. ``per_pair`` keeps both for every frame pair (the per-frame curves). :func:`pan_flicker`
does the same for a synthetic pan whose motion is known exactly (no flow estimate).
"""

from __future__ import annotations

import cv2
import numpy as np


def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img


def _as_float(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)


def make_dis():
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def _grid(h: int, w: int):
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return gx, gy


def warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``img`` sampled at x + flow(x) (bilinear)."""
    h, w = flow.shape[:2]
    gx, gy = _grid(h, w)
    return cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def valid_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Pixels of frame t+1 that are visible in frame t: inside the image and consistent."""
    h, w = backward.shape[:2]
    gx, gy = _grid(h, w)
    x, y = gx + backward[..., 0], gy + backward[..., 1]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    fw = warp(forward, backward)              # forward flow at the matched point of frame t
    diff = ((backward + fw) ** 2).sum(-1)
    bound = 0.01 * ((backward ** 2).sum(-1) + (fw ** 2).sum(-1)) + 0.5
    return inside & (diff < bound)


def pair_errors(out_t: np.ndarray, out_t1: np.ndarray, backward: np.ndarray,
                mask: np.ndarray) -> tuple:
    """``(L1, L2)``: the mean of |O_{t+1} - warp(O_t)| and of its square (Lai et al.) over
    ``mask`` and the channels (values in [0, 1]); nan when nothing is valid."""
    a, b = _as_float(out_t), _as_float(out_t1)
    d = b - warp(a, backward)
    m = mask.astype(np.float32)
    if b.ndim == 3:
        m = m[..., None]
    denom = float(m.sum()) * (b.shape[2] if b.ndim == 3 else 1)
    if denom <= 0:
        return float("nan"), float("nan")
    return float((np.abs(d) * m).sum() / denom), float((d * d * m).sum() / denom)


def pair_error(out_t: np.ndarray, out_t1: np.ndarray, backward: np.ndarray,
               mask: np.ndarray) -> float:
    """Mean |O_{t+1} - warp(O_t)| over ``mask`` (values in [0, 1]); nan when nothing is valid."""
    return pair_errors(out_t, out_t1, backward, mask)[0]


class FlickerMeter:
    """Feed ``add(input_frame, output_frame)`` per frame (BGR uint8, same size); ``result()``
    gives the output's and the input's warping error over all consecutive pairs."""

    def __init__(self):
        self.dis = make_dis()
        self.prev = None
        self.out_err: list = []        # (L1, L2) per pair
        self.in_err: list = []
        self.valid: list[float] = []

    def add(self, frame_in: np.ndarray, frame_out: np.ndarray) -> None:
        if frame_out.shape[:2] != frame_in.shape[:2]:
            frame_out = cv2.resize(frame_out, (frame_in.shape[1], frame_in.shape[0]),
                                   interpolation=cv2.INTER_AREA)
        g = _gray(frame_in)
        if self.prev is not None:
            p_in, p_out, p_g = self.prev
            backward = self.dis.calc(g, p_g, None)       # t+1 -> t
            forward = self.dis.calc(p_g, g, None)        # t -> t+1
            mask = valid_mask(backward, forward)
            e_out = pair_errors(p_out, frame_out, backward, mask)
            if not np.isnan(e_out[0]):
                self.out_err.append(e_out)
                self.in_err.append(pair_errors(p_in, frame_in, backward, mask))
                self.valid.append(float(mask.mean()))
        self.prev = (frame_in, frame_out, g)

    def result(self) -> dict:
        return summary(self.out_err, self.in_err, self.valid, flow="DIS (OpenCV), on the inputs")


def summary(out_err, in_err, valid, flow: str) -> dict:
    """The clip's figures from per-pair ``(L1, L2)`` errors of the output and of the input."""
    def mean(errs, k):
        return float(np.mean([e[k] for e in errs])) if errs else float("nan")

    o, i, o2, i2 = mean(out_err, 0), mean(in_err, 0), mean(out_err, 1), mean(in_err, 1)
    return {"flicker": round(o, 5), "flicker_input": round(i, 5),
            "ratio": round(o / i, 3) if i > 0 else None,
            "flicker_l2": round(o2, 7), "flicker_l2_input": round(i2, 7),
            "pairs": len(out_err),
            "valid_fraction": round(float(np.mean(valid)), 4) if valid else 0.0, "flow": flow,
            "per_pair": {"l1": [round(e[0], 6) for e in out_err],
                         "l2": [round(e[1], 8) for e in out_err],
                         "input_l1": [round(e[0], 6) for e in in_err],
                         "input_l2": [round(e[1], 8) for e in in_err]},
            "definition": "Lai et al. 2018 warping error over non-occluded pixels, values in "
                          "[0, 1]: flicker = mean |difference| (L1), flicker_l2 = mean squared "
                          "difference (Lai et al.'s figure)"}


def video_flicker(inputs, outputs) -> dict:
    """Warping error of ``outputs`` (and of ``inputs``) with DIS flow on ``inputs``."""
    meter = FlickerMeter()
    for a, b in zip(inputs, outputs):
        meter.add(a, b)
    return meter.result()


# ---------------------------------------------------------------------------- the synthetic pan
def pan_frames(canvas: np.ndarray, width: int, step: int, count: int | None = None) -> list:
    """Windows of ``width`` columns sliding right by ``step`` pixels across ``canvas``: frame
    t+1 at x shows what frame t showed at x + step (an exact, known motion)."""
    n = (canvas.shape[1] - width) // step + 1
    n = n if count is None else min(n, count)
    return [np.ascontiguousarray(canvas[:, t * step:t * step + width]) for t in range(n)]


def pan_flicker(inputs, outputs, step: int) -> dict:
    """Warping error on a pan made by :func:`pan_frames` with the exact flow (``step`` pixels;
    the ``step`` columns that enter at the right edge are the occluded ones)."""
    out_err, in_err, valid = [], [], []
    for t in range(len(outputs) - 1):
        h, w = outputs[t].shape[:2]
        backward = np.zeros((h, w, 2), np.float32)
        backward[..., 0] = step
        mask = np.zeros((h, w), bool)
        mask[:, :w - step] = True
        out_err.append(pair_errors(outputs[t], outputs[t + 1], backward, mask))
        in_err.append(pair_errors(inputs[t], inputs[t + 1], backward, mask))
        valid.append(float(mask.mean()))
    return summary(out_err, in_err, valid, flow=f"exact (pan of {step} px per frame)")


# ---------------------------------------------------------------------------- a model on a video
def model_flicker(backend, video, *, frames: int | None = 120, fit: str = "crop",
                  start_frame: int = 0) -> dict:
    """Translate the first ``frames`` frames of ``video`` one by one (every frame, in order) with
    the runtime's own pre/post-processing and measure the warping error of the result, next to
    the input's (the part of each frame the model sees, at the output's size)."""
    from pix2pix_edge.runtime.frames import Postprocessor, Preprocessor, model_size_for, plan
    from pix2pix_edge.runtime.video import open_source

    info = backend.info
    meter = FlickerMeter()
    with open_source(video, start_frame=start_frame) as src:
        geom = plan(src.size, model_size_for(info, src.size, None, fit), fit)
        pre = Preprocessor(geom, info.color_order, info.value_range)
        post = Postprocessor(geom, info.color_order, info.value_range)
        x, y, w, h = geom.region
        n = 0
        while frames is None or n < frames:
            f = src.read()
            if f is None:
                break
            out = post(backend.infer(pre(f.image)))
            meter.add(np.ascontiguousarray(f.image[y:y + h, x:x + w]), out)
            n += 1
    r = meter.result()
    r.update(video=str(video), frames=n, fit=fit)
    return r
