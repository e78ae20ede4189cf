"""Live latency (the suite's ``live`` section) and the flicker measurement (issue 13).

* ``latency`` (this module's :func:`run`): ``bench --live`` on the real 24 fps video replayed in
  real time (newest frame wins) for unet_256 ngf 64 (slower than the source on a 2-core CPU) and
  ngf 16, ``repeats`` times each, alternating, with the load average before and after every run.
  Weights do not change the time, so the models are exported from fresh weights.
* ``flicker`` (:func:`flicker`, run by the suite's ``flicker`` section, benchmarks/flicker.py):
  the warping error (runtime/flicker.py) of a trained generator in each inference mode the
  toolkit offers: BatchNorm with per-image or running statistics, dropout on (the reference
  ``test.py``) or off (the export's and the runtime's choice), on the real video (DIS flow on
  the input frames) and on a synthetic pan of the inputs of pairs the run held out (exact flow).

``python -m benchmarks --only live`` / ``--only flicker`` run them.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from .common import VIDEO, log

MODES = (("per-image", True), ("per-image", False), ("running", True), ("running", False))
LEVELS = {"smoke": dict(frames=12, repeats=1, ngfs=(8, 4), depth=5, model_runs=5),
          "quick": dict(frames=48, repeats=1, ngfs=(16,), depth=8, model_runs=10),
          "full": dict(frames=120, repeats=3, ngfs=(64, 16), depth=8, model_runs=30)}


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


# ---------------------------------------------------------------------------- latency
def latency(frames: int, repeats: int, ngfs=(64, 16), threads: int = 1, depth: int = 8,
            model_runs: int = 30) -> list:
    from .end_to_end import export_model
    from pix2pix_edge.runtime.backends import open_backend
    from pix2pix_edge.runtime.live import run_live

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = {n: export_model(Path(tmp) / f"unet_ngf{n}.onnx", n, depth=depth) for n in ngfs}
        for rep in range(repeats):
            for n in ngfs:
                be = open_backend(str(models[n]), "onnxruntime", threads=threads)
                try:
                    before = loadavg()
                    r = run_live(be, str(VIDEO), frames=frames, model_runs=model_runs)
                finally:
                    be.close()
                rows.append({"ngf": n, "repeat": rep, "loadavg_before": before,
                             "loadavg_after": loadavg(), **{k: v for k, v in r.items()
                                                            if k != "definitions"}})
                log(f"live: ngf {n} #{rep}: p50 {r['latency']['p50_ms']} ms (target "
                    f"{r['target_p50_ms']}, in-run {r['target_in_run_p50_ms']}), model "
                    f"{r['model_p50_ms']:.1f}, infer in run {r['infer_p50_in_run_ms']:.1f}, "
                    f"{r['fps_delivered']} FPS, dropped {r['dropped']}, load {before}")
    return rows


# ---------------------------------------------------------------------------- flicker
def _to_tensor(img_bgr, torch):
    rgb = cv2.cvtColor(img_bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(rgb.transpose(2, 0, 1)[None].copy())


def _to_bgr(t) -> np.ndarray:
    a = ((t[0].clamp(-1, 1).numpy().transpose(1, 2, 0) + 1.0) * 127.5).round().astype(np.uint8)
    return cv2.cvtColor(a, cv2.COLOR_RGB2BGR)


def video_frames(n: int, start: int = 300, size: int = 256) -> list:
    """``n`` consecutive frames of the real video, centre-cropped and resized as the runtime's
    default ``--fit crop`` does."""
    cap = cv2.VideoCapture(str(VIDEO))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    out = []
    while len(out) < n:
        ok, img = cap.read()
        if not ok:
            break
        h, w = img.shape[:2]
        s = min(h, w)
        crop = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        out.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR))  # as frames.py
    cap.release()
    return out


def pan_canvases(count: int, run_dir, side: int = 256) -> list:
    """Model inputs of pairs ``run_dir`` held out (its recorded hold-out and direction, read as
    the product reads them), two side by side per canvas, as BGR frames."""
    from pix2pix_edge.runtime import contract

    held = contract.held_out(run_dir)
    direction = contract.run_config(run_dir)["options"].get("direction", "AtoB")
    pairs = held.pairs()[1][:2 * count]
    out = []
    for k in range(0, len(pairs) - 1, 2):
        halves = [np.asarray(contract.resize(contract.read_input(p, direction, aligned=True),
                                             side, side)) for p in pairs[k:k + 2]]
        out.append(cv2.cvtColor(np.hstack(halves), cv2.COLOR_RGB2BGR))
    return out


def _held_out_on_disk(run_dir) -> bool:
    from pix2pix_edge.runtime.contract import held_out

    held = held_out(run_dir)
    return held.any and Path(held.dataset).is_dir()


def flicker(run_dir, flicker_frames: int, pans: int, pan_frames: int, step: int = 4,
            seed: int = 0, start: int = 300) -> list:
    import torch

    from pix2pix_edge.runtime.flicker import pan_flicker, pan_frames as make_pan, video_flicker
    from pix2pix_edge.train.checkpoint import load_generator
    from pix2pix_edge.train.models import inference_copy

    torch.set_num_threads(1)
    G, record = load_generator(run_dir)
    clip = video_frames(flicker_frames, start=start)
    pan_clips = [make_pan(c, 256, step, pan_frames) for c in pan_canvases(pans, run_dir)]
    rows = []
    for norm, dropout in MODES:
        g = inference_copy(G, norm, dropout=dropout)
        torch.manual_seed(seed)

        def translate(frames):
            with torch.no_grad():
                return [_to_bgr(g(_to_tensor(f, torch))) for f in frames]

        t0 = time.perf_counter()
        v = video_flicker(clip, translate(clip))
        pan = [pan_flicker(c, translate(c), step) for c in pan_clips]
        row = {"norm": norm, "dropout": dropout,
               "video": v["flicker"], "video_input": v["flicker_input"], "video_ratio": v["ratio"],
               "video_pairs": v["pairs"], "video_valid": v["valid_fraction"],
               "video_l2": v["flicker_l2"], "video_input_l2": v["flicker_l2_input"],
               "pan": round(float(np.mean([p["flicker"] for p in pan])), 5),
               "pan_input": round(float(np.mean([p["flicker_input"] for p in pan])), 5),
               "pan_l2": round(float(np.mean([p["flicker_l2"] for p in pan])), 7),
               "pan_pairs": sum(p["pairs"] for p in pan), "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        log(f"flicker: {norm:9s} dropout {'on ' if dropout else 'off'}: video {row['video']:.4f} "
            f"(input {row['video_input']:.4f}, x{row['video_ratio']})  pan {row['pan']:.4f} "
            f"(input {row['pan_input']:.4f})")
    return rows


def run(level: str = "full", frames: int | None = None, repeats: int | None = None) -> dict:
    """The ``live`` section: capture-to-output latency per model, ``repeats`` alternating runs."""
    p = dict(LEVELS[level])
    p.update({k: v for k, v in dict(frames=frames, repeats=repeats).items() if v is not None})
    if not VIDEO.is_file():
        return {"skipped": f"real video not found at {VIDEO}"}
    result = {"params": p, "video": VIDEO.name, "threads": 1, "loadavg_start": loadavg()}
    result["rows"] = latency(p["frames"], p["repeats"], ngfs=p["ngfs"], depth=p["depth"],
                             model_runs=p["model_runs"])
    result["loadavg_end"] = loadavg()
    return result
