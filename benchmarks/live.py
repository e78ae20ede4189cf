"""Live latency and frame-to-frame flicker (issue 13): ``python -m benchmarks.live``.

* ``latency``: ``bench --live`` on the real 24 fps video replayed in real time (newest frame
  wins) for unet_256 ngf 64 (slower than the source on this CPU) and ngf 16, ``repeats`` times
  each, alternating, with the load average before and after every run. Weights do not change
  the time, so the models are exported from fresh weights.
* ``flicker``: the warping error (runtime/flicker.py) of a trained generator in each inference
  mode the toolkit offers: BatchNorm with per-image or running statistics, dropout on (the
  reference ``test.py``) or off (the export's and the runtime's choice), on the real video
  (DIS flow on the input frames) and on a synthetic pan of the inputs of pairs the run held out
  (exact flow). Needs a run directory (``--run``; e.g. ``pix2pix train .../facades --direction
  BtoA --holdout-last 40``); skipped without one, or when it held nothing out.

``run(level, **opts) -> dict`` is the entry point; ``main`` prints and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
VIDEO = SHARED / "videos" / "big_buck_bunny.mp4"
MODES = (("per-image", True), ("per-image", False), ("running", True), ("running", False))
LEVELS = {"smoke": dict(frames=12, repeats=1, ngfs=(8, 4), depth=5, flicker_frames=6, pans=1,
                        pan_frames=6),
          "quick": dict(frames=60, repeats=1, ngfs=(64, 16), depth=8, flicker_frames=48, pans=2,
                        pan_frames=24),
          "full": dict(frames=120, repeats=3, ngfs=(64, 16), depth=8, flicker_frames=96, pans=5,
                       pan_frames=32)}


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


# ---------------------------------------------------------------------------- latency
def latency(frames: int, repeats: int, ngfs=(64, 16), threads: int = 1, depth: int = 8) -> list:
    from benchmarks.end_to_end import export_model
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
                    r = run_live(be, str(VIDEO), frames=frames)
                finally:
                    be.close()
                rows.append({"ngf": n, "repeat": rep, "loadavg_before": before,
                             "loadavg_after": loadavg(), **{k: v for k, v in r.items()
                                                            if k != "definitions"}})
                print(f"ngf {n} #{rep}: p50 {r['latency']['p50_ms']} ms (target "
                      f"{r['target_p50_ms']}, in-run {r['target_in_run_p50_ms']}), model "
                      f"{r['model_p50_ms']:.1f}, infer in run {r['infer_p50_in_run_ms']:.1f}, "
                      f"{r['fps_delivered']} FPS, dropped {r['dropped']}, load {before}", flush=True)
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
               "pan": round(float(np.mean([p["flicker"] for p in pan])), 5),
               "pan_input": round(float(np.mean([p["flicker_input"] for p in pan])), 5),
               "pan_pairs": sum(p["pairs"] for p in pan), "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(f"{norm:9s} dropout {'on ' if dropout else 'off'}: video {row['video']:.4f} "
              f"(input {row['video_input']:.4f}, x{row['video_ratio']})  pan {row['pan']:.4f} "
              f"(input {row['pan_input']:.4f})", flush=True)
    return rows


def run(level: str = "quick", run_dir=None, sections=("latency", "flicker"), **opts) -> dict:
    p = dict(LEVELS[level])
    p.update({k: v for k, v in opts.items() if v is not None})
    result = {"level": level, "params": p, "loadavg_start": loadavg(),
              "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    if not VIDEO.is_file():
        result["skipped"] = f"real video not found at {VIDEO}"
        return result
    if "latency" in sections:
        result["latency"] = latency(p["frames"], p["repeats"], ngfs=p["ngfs"], depth=p["depth"])
    if "flicker" in sections:
        if run_dir is None or not Path(run_dir).exists():
            result["flicker"] = {"skipped": "no trained run directory given (--run)"}
        elif not _held_out_on_disk(run_dir):
            result["flicker"] = {"skipped": f"{run_dir} held no pairs out of training, or its "
                                 "dataset is not on disk (the pan uses held-out inputs)"}
        else:
            result["flicker"] = flicker(run_dir, p["flicker_frames"], p["pans"], p["pan_frames"],
                                        start=p.get("start") or 300)
    result["loadavg_end"] = loadavg()
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--level", choices=tuple(LEVELS), default="quick")
    ap.add_argument("--run", dest="run_dir", default=None, help="trained run directory (flicker)")
    ap.add_argument("--only", default="latency,flicker")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--start", type=int, default=None, help="first video frame (flicker; 300)")
    ap.add_argument("--out", default=None, help="write the JSON here")
    a = ap.parse_args(argv)
    r = run(a.level, a.run_dir, tuple(a.only.split(",")), frames=a.frames, repeats=a.repeats,
          start=a.start)
    text = json.dumps(r, indent=2)
    if a.out:
        Path(a.out).write_text(text + "\n")
        print(f"wrote {a.out}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
