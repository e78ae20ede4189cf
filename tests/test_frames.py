"""Frame geometry and pre/post-processing against straightforward numpy references."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pix2pix_edge.runtime.errors import BadInput
from pix2pix_edge.runtime.frames import (Geometry, Postprocessor, Preprocessor, choose_model_size,
                                         draw_overlay, model_size_for, plan, profile_sizes,
                                         side_by_side)
from pix2pix_edge.runtime.model_info import ModelInfo


def frame(w=640, h=360, seed=0):
    rng = np.random.default_rng(seed)
    # Smooth content (a gradient plus mild noise) so resampling differences stay small.
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // max(1, w - 1), y * 255 // max(1, h - 1),
                    (x + y) * 255 // max(1, w + h - 2)], -1).astype(np.int32)
    img += rng.integers(-3, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def reference_pre(img, geom: Geometry, rgb=True, lo=-1.0, hi=1.0):
    """The obvious, slow way: crop, resize, pad, swap, scale, transpose."""
    x, y, w, h = geom.region
    img = img[y:y + h, x:x + w]
    ix, iy, iw, ih = geom.inner
    mw, mh = geom.model_size
    img = cv2.resize(img, (iw, ih), interpolation=cv2.INTER_LINEAR) if (w, h) != (iw, ih) else img
    canvas = np.full((mh, mw, 3), 127.5, np.float64)
    canvas[iy:iy + ih, ix:ix + iw] = img
    if rgb:
        canvas = canvas[:, :, ::-1]
    t = canvas / 255.0 * (hi - lo) + lo
    return t.transpose(2, 0, 1)[None].astype(np.float32)


def test_plan_crop_takes_the_centre_square():
    g = plan((640, 360), (256, 256), "crop")
    assert g.region == (140, 0, 360, 360)
    assert g.inner == (0, 0, 256, 256)
    assert g.out_size == (360, 360)
    g = plan((360, 640), (256, 128), "crop")          # tall frame, wide model: cut top/bottom
    assert g.region == (0, 230, 360, 180) and g.out_size == (360, 180)


def test_plan_letterbox_and_stretch_keep_the_frame_size():
    g = plan((640, 360), (256, 256), "letterbox")
    assert g.region == (0, 0, 640, 360)
    assert g.inner == (0, 56, 256, 144)
    assert g.out_size == (640, 360)
    g = plan((640, 360), (256, 256), "stretch")
    assert g.inner == (0, 0, 256, 256) and g.out_size == (640, 360)


def test_plan_rejects_unknown_fit_and_empty_sizes():
    with pytest.raises(BadInput, match="unknown fit 'zoom'"):
        plan((640, 360), (256, 256), "zoom")
    with pytest.raises(BadInput, match="no pixels"):
        plan((0, 360), (256, 256), "crop")


@pytest.mark.parametrize("fit", ["crop", "letterbox", "stretch"])
def test_pre_matches_the_reference(fit):
    img = frame()
    g = plan((640, 360), (64, 64), fit)
    got = Preprocessor(g, "RGB", (-1, 1))(img)
    want = reference_pre(img, g)
    assert got.shape == (1, 3, 64, 64) and got.dtype == np.float32
    assert got.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(got, want, atol=1e-5)
    if fit == "letterbox":   # the padding is the model's zero, not black (-1)
        x, y, w, h = g.inner
        assert np.all(got[0, :, :y] == 0) and np.all(got[0, :, y + h:] == 0)


def test_pre_colour_order_and_value_range_follow_the_metadata():
    img = frame(96, 64)
    g = plan((96, 64), (64, 64), "crop")
    bgr = Preprocessor(g, "BGR", (0.0, 1.0))(img)
    np.testing.assert_allclose(bgr, reference_pre(img, g, rgb=False, lo=0.0, hi=1.0), atol=1e-6)
    rgb = Preprocessor(g, "RGB", (0.0, 1.0))(img)
    np.testing.assert_array_equal(rgb[0, 0], bgr[0, 2])       # R plane = BGR's third plane


def test_pre_handles_grey_bgra_and_resized_frames():
    g = plan((96, 64), (64, 64), "stretch")
    pre = Preprocessor(g)
    grey = frame(96, 64)[:, :, 0]
    out = pre(grey)
    np.testing.assert_array_equal(out[0, 0], out[0, 1])
    bgra = cv2.cvtColor(frame(96, 64), cv2.COLOR_BGR2BGRA)
    np.testing.assert_allclose(pre(bgra), pre(frame(96, 64)))
    assert pre(frame(192, 128)).shape == (1, 3, 64, 64)        # another size: scaled first


@pytest.mark.parametrize("fit", ["crop", "stretch", "letterbox"])
def test_post_inverts_pre(fit):
    """An identity 'model' must give the (cropped) frame back, at display size."""
    img = frame(128, 64)
    g = plan((128, 64), (128, 64) if fit != "crop" else (64, 64), fit)
    pre, post = Preprocessor(g), Postprocessor(g)
    out = post(pre(img))
    assert out.dtype == np.uint8 and out.shape == (g.out_size[1], g.out_size[0], 3)
    x, y, w, h = g.region
    diff = np.abs(out.astype(int) - img[y:y + h, x:x + w].astype(int))
    assert diff.max() <= 1


def test_post_saturates_out_of_range_values_and_cuts_the_letterbox():
    g = plan((100, 50), (64, 64), "letterbox")     # picture 64x32 in rows 16..48
    y = np.zeros((1, 3, 64, 64), np.float32)
    y[:, :, :16] = 5.0                               # padding: must be cut away
    y[:, :, 48:] = -5.0
    y[:, 0, 16:48] = 1.5                             # R above range -> 255, not wrapped
    y[:, 2, 16:48] = -1.5                            # B below range -> 0
    out = Postprocessor(g, "RGB")(y)
    assert out.shape == (50, 100, 3)
    assert np.all(out[:, :, 2] == 255) and np.all(out[:, :, 0] == 0)
    assert np.all(np.abs(out[:, :, 1].astype(int) - 128) <= 1)   # 0.0 -> mid grey


def test_model_size_for_fixed_and_dynamic_models():
    fixed = ModelInfo(height=256, width=256, multiple=256)
    assert model_size_for(fixed, (640, 360)) == (256, 256)
    with pytest.raises(BadInput, match="--size 512x256 differs from the model's fixed input "
                                       "size 256x256"):
        model_size_for(fixed, (640, 360), size=(512, 256))
    dyn = ModelInfo(height=256, width=256, multiple=32, dynamic=True)
    # a dynamic ONNX runs at the size it was exported (trained) at, not at the source's size
    assert choose_model_size(dyn) == ((256, 256), "the size the model was exported at (its "
                                      "training size; dynamic model: --size WxH, multiples of "
                                      "32, to change)")
    assert model_size_for(dyn, (1280, 720)) == (256, 256)
    assert model_size_for(dyn, (640, 360), size=(256, 128)) == (256, 128)
    with pytest.raises(BadInput, match="--size 250x128 is not a multiple of 32"):
        model_size_for(dyn, (640, 360), size=(250, 128))


def _engine_record(lo=(64, 64), opt=(256, 256), hi=(512, 512)):
    """A dynamic engine's record as `pix2pix export trt` writes it (profile in NCHW)."""
    nchw = {k: [1, 3, s[1], s[0]] for k, s in (("min", lo), ("opt", opt), ("max", hi))}
    return ModelInfo(height=opt[1], width=opt[0], multiple=32, dynamic=True,
                     tensorrt_version="10.3.0.30", extra={"profile": nchw})


def test_dynamic_engine_runs_inside_its_recorded_profile():
    """Issue 18: HD video ran a dynamic engine at 1280x736, outside its 64-512 profile, and
    failed at the first inference. The size is now the profile's opt size, --size is checked
    against the profile, and the reason is one line for `pix2pix run`."""
    rec = _engine_record()
    assert profile_sizes(rec) == ((64, 64), (256, 256), (512, 512))
    for src in [(1280, 720), (1920, 1080), (320, 240), (10, 10)]:
        assert model_size_for(rec, src) == (256, 256)
    assert choose_model_size(rec) == ((256, 256), "the opt size of the engine's optimisation "
                                      "profile (64x64 to 512x512; --size WxH within it to change)")
    wide = _engine_record(lo=(64, 64), opt=(384, 224), hi=(768, 448))
    assert model_size_for(wide, (1280, 720)) == (384, 224)          # opt, width first
    assert choose_model_size(rec, (512, 288)) == ((512, 288), "--size")
    assert choose_model_size(rec, (64, 512)) == ((64, 512), "--size")
    for outside in [(1280, 736), (544, 256), (32, 256), (256, 32)]:
        with pytest.raises(BadInput, match=f"--size {outside[0]}x{outside[1]} is outside the "
                                           f"engine's optimisation profile \\(64x64 to "
                                           f"512x512\\).*--max {outside[0]}x{outside[1]}"):
            model_size_for(rec, (1280, 720), size=outside)
    # a record without a profile (or a broken one): the recorded size, no range check
    bare = ModelInfo(height=128, width=128, multiple=32, dynamic=True, extra={"profile": "?"})
    assert profile_sizes(bare) is None and model_size_for(bare, (1280, 720)) == (128, 128)
    assert model_size_for(bare, (1280, 720), size=(1024, 1024)) == (1024, 1024)


def test_side_by_side_and_overlay():
    a, b = frame(64, 32), frame(32, 16)
    both = side_by_side(a, b)
    assert both.shape == (32, 128, 3)
    before = both.copy()
    draw_overlay(both, ["12.0 FPS"])
    assert np.any(both != before)
