"""The warping-error flicker figure: exact on a known pan, DIS flow on real motion, the CLI."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.flicker import (model_flicker, pair_error, pan_flicker, pan_frames,
                                          valid_mask, video_flicker, warp)


@pytest.fixture(scope="module")
def canvas(facades_dir):
    """Two held-out facade label maps side by side (512x256): texture for a pan."""
    imgs = [cv2.imread(str(facades_dir / "train" / f"{i}.jpg")) for i in (399, 400)]
    return np.hstack([im[:, 256:] for im in imgs])


def noisy(frames, sigma, seed=0):
    """Per-frame Gaussian noise on a range-compressed copy (no clipping at 0 / 255)."""
    rng = np.random.default_rng(seed)
    return [np.clip(f * 0.6 + 50 + rng.normal(0, sigma, f.shape), 0, 255).astype(np.uint8)
            for f in frames]


def test_warp_moves_by_the_flow():
    img = np.arange(100, dtype=np.float32).reshape(10, 10)
    flow = np.zeros((10, 10, 2), np.float32)
    flow[..., 0] = 2
    assert np.array_equal(warp(img, flow)[:, :8], img[:, 2:])


def test_occlusion_mask_drops_inconsistent_and_outside_pixels():
    h, w = 20, 30
    bw = np.zeros((h, w, 2), np.float32)
    bw[..., 0] = 3
    fw = -bw.copy()
    m = valid_mask(bw, fw)
    assert m[:, : w - 4].all() and not m[:, w - 2:].any()       # x + 3 leaves the image
    fw[5:10, 5:10] = (10, 0)                                       # a disagreeing patch
    m2 = valid_mask(bw, fw)
    assert not m2[5:10, 2:7].any() and m2[15:, :10].all()


def test_pan_exact_flow(canvas):
    frames = pan_frames(canvas, 256, step=4, count=20)
    assert len(frames) == 20 and frames[0].shape == (256, 256, 3)
    assert np.array_equal(frames[1][:, :-4], frames[0][:, 4:])
    r = pan_flicker(frames, frames, step=4)                    # a perfectly stable "model"
    assert r["flicker"] == 0.0 and r["flicker_input"] == 0.0 and r["pairs"] == 19
    r = pan_flicker(frames, noisy(frames, 10), step=4)        # per-frame noise: flicker
    expected = 2 * 10 / np.sqrt(np.pi) / 255                  # E|n1 - n2|, n ~ N(0, 10)
    assert r["flicker"] == pytest.approx(expected, rel=0.05)
    assert r["valid_fraction"] == pytest.approx(252 / 256, abs=1e-4)


def test_dis_flow_on_a_pan_nearly_matches_the_exact_figure(canvas):
    frames = pan_frames(canvas, 256, step=3, count=12)
    r = video_flicker(frames, frames)
    assert r["flicker"] == r["flicker_input"] < 0.02           # DIS finds the motion
    assert 0.8 < r["valid_fraction"] <= 1.0
    out = noisy(frames, 10)
    r_noise = video_flicker(frames, out)
    exact = pan_flicker(frames, out, step=3)["flicker"]
    assert r_noise["flicker"] > 4 * r_noise["flicker_input"]
    assert r_noise["flicker"] == pytest.approx(exact, rel=0.35)


def test_pair_error_ignores_masked_pixels():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[:, 6:] = 255
    mask = np.ones((8, 8), bool)
    mask[:, 6:] = False
    assert pair_error(a, b, np.zeros((8, 8, 2), np.float32), mask) == 0.0
    assert pair_error(a, b, np.zeros((8, 8, 2), np.float32), ~mask) == 1.0


def test_model_flicker_on_real_video(tiny_onnx, real_video):
    from pix2pix_edge.runtime.backends import open_backend
    be = open_backend(str(tiny_onnx), "onnxruntime", threads=1)
    try:
        r = model_flicker(be, str(real_video), frames=8, start_frame=200)
    finally:
        be.close()
    assert r["frames"] == 8 and r["pairs"] == 7
    assert np.isfinite(r["flicker"]) and 0 < r["flicker_input"] < 0.2


def test_bench_flicker_cli(tiny_onnx, real_video, tmp_path):
    js = tmp_path / "f.json"
    r = CliRunner().invoke(cli, ["bench", str(tiny_onnx), "--flicker", str(real_video),
                                 "--frames", "6", "--threads", "1", "--json", str(js)])
    assert r.exit_code == 0, r.output
    assert "flicker (warping error, 5 frame pairs" in r.output
    d = json.loads(js.read_text())["flicker"]
    assert d["pairs"] == 5 and "Lai" in d["definition"]
