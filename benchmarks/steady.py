"""The ``steady`` section (issue 19): steadier video under a moving camera, measured.

At one training budget, on two real tasks with held-out pairs never trained on (the edge
table's: facades labels -> photo, last 40 of 400 held out; edges2shoes_handbags edges -> photo,
every 10th of 2,000 held out), it trains the generators of ROWS:

* ``baseline``    the reference objective and U-Net;
* ``antialias``   ``--antialias`` (fixed [1,3,3,1]^2 low-pass filters, no new parameters);
* ``stability``   ``--lambda-stability W`` (transform consistency, train/stability.py);
* ``both``        both;
* ``finetune``    the baseline run continued for ``extra`` more iterations with both
                  (``train --init-from``: weights only, fresh optimisers);

and, at level full, the CHOICES that decided the defaults: the zero-padded filters, two other
weights and the baseline with another seed (how far two identical trainings differ).

Columns: held-out L1 / PSNR / SSIM against the ground truth; the warping error (Lai et al.,
runtime/flicker.py; L1 and their squared L2) of a synthetic pan across held-out inputs (exact
motion, 4 px per frame: the input's error is 0) and, for facades, of the real video
(big_buck_bunny from frame 300, DIS flow on the inputs; out of domain for a facades model, as in
the flicker section); ONNX Runtime CPU p50 latency of the architecture at ngf 64 and ngf 16
(unet_256 at 256x256, plain vs anti-aliased, interleaved; weights do not change the time). Also
an animated strip (input | baseline | both) of a pan, a PNG of three of its frames with their
frame-to-frame differences, and the per-frame warping-error curves.

Parts: ``quality`` trains (or reuses the runs in ``runs``) and measures everything but latency;
``latency`` times the architectures. At level full without ``train`` the quality columns come
from the newest committed result that has them (they take an hour or two on a 2-core CPU; the
run they come from is named in the section), and only the latency is measured:

    python -m benchmarks --only steady                       # latency; quality from the record
    python -m benchmarks --only steady --steady-train --steady-runs DIR   # everything, reusing DIR
    python -m benchmarks --only steady --steady-train --steady-parts quality --steady-runs DIR

Variant names: ROWS, CHOICES, ``stability-wN`` / ``both-wN`` (weight N), ``antialias-zero``;
any name + ``-sN``: trained with seed N.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import VIDEO, held_out_dataset, interleaved, log, markdown_table
from .edge import TASKS

ROWS = ("baseline", "antialias", "stability", "both", "finetune")
CHOICES = ("antialias-zero", "stability-w10", "stability-w1000", "baseline-s1")
STRIP = ("baseline", "both")          # the animated strip: input | these
DEFAULT_WEIGHT = 100.0                # --lambda-stability of the rows (docs/steady.md: why)
LEVELS: dict[str, dict[str, Any]] = {
    # synthetic data, tiny models: the plumbing in seconds; numbers mean nothing
    "smoke": dict(synthetic=True, tasks=("facades",), depth=5, side=64, load=72, ngf=4, ndf=4,
                  iters=3, extra=2, pans=1, pan_frames=4, video_frames=4, latency_depth=5,
                  latency_side=64, latency_ngfs=(8, 4), reps=3, budget_s=1.0, max_eval=4,
                  strip_frames=3),
    # real facades when present (else synthetic), small models: well under a minute
    "quick": dict(tasks=("facades",), depth=6, side=64, load=72, ngf=8, ndf=8, iters=20,
                  extra=10, pans=1, pan_frames=8, video_frames=8, latency_depth=6,
                  latency_side=64, latency_ngfs=(16, 8), reps=10, budget_s=3.0, max_eval=8,
                  strip_frames=4),
    # the laptop budget of the edge table's teacher: unet_128 ngf 64 at 128x128, 400 iterations
    "full": dict(tasks=("facades", "edges"), depth=7, side=128, load=143, ngf=64, ndf=64,
                 iters=400, extra=200, pans=5, pan_frames=32, video_frames=96,
                 latency_depth=8, latency_side=256, latency_ngfs=(64, 16), reps=40,
                 budget_s=30.0, strip_frames=12),
}
STEP = 4                              # pan: pixels per frame
VIDEO_START = 300


def label(name: str, weight: float) -> str:
    """A row's name as the tables show it: the options it adds to the baseline."""
    seed = re.fullmatch(r"(.+)-s(\d+)", name)
    if seed:
        return f"{label(seed.group(1), weight)}, seed {seed.group(2)}"
    o = variant_options(name, weight)
    flags = (["--antialias"] if o.get("antialias") else []) + \
        ([f"--antialias-pad {o['antialias_pad']}"] if o.get("antialias_pad") else []) + \
        ([f"--lambda-stability {o['lambda_stability']:g}"] if o.get("lambda_stability") else [])
    text = " ".join(flags) or "baseline"
    return f"baseline + fine-tune with {text}" if name == "finetune" else text


# --------------------------------------------------------------------------- variants
def variant_options(name: str, weight: float) -> dict:
    """The train options of a variant (``finetune``: those of its fine-tuning run). A ``-sN``
    suffix trains the same variant with seed N (the seed-to-seed spread of the figures)."""
    seed = re.fullmatch(r"(.+)-s(\d+)", name)
    if seed:
        return dict(variant_options(seed.group(1), weight), seed=int(seed.group(2)))
    m = re.fullmatch(r"(stability|both)-w([0-9.]+)", name)
    if m:
        name, weight = m.group(1), float(m.group(2))
    table = {"baseline": {}, "antialias": {"antialias": True},
             "antialias-zero": {"antialias": True, "antialias_pad": "zero"},
             "stability": {"lambda_stability": weight},
             "both": {"antialias": True, "lambda_stability": weight},
             "finetune": {"antialias": True, "lambda_stability": weight}}
    if name not in table:
        raise ValueError(f"unknown steady variant {name!r}: {', '.join(table)}, stability-wN, "
                         "both-wN")
    return table[name]


def _done(run: Path, iters: int) -> bool:
    latest = run / "checkpoints" / "latest.pt"
    if not (run / "generator.pt").is_file() or not latest.is_file():
        return False
    from pix2pix_edge.train.checkpoint import load_training_checkpoint

    return load_training_checkpoint(latest)["iteration"] >= iters


def train_variant(name: str, runs: Path, cfg: dict, task: dict, data: Path, weight: float) -> dict:
    """Train ``name`` into ``runs/name`` unless a finished run is there; its facts."""
    from pix2pix_edge.train.loop import TrainOptions, train

    run = runs / name
    common = dict(data=str(data), direction=task["direction"], holdout_last=task["holdout_last"],
                  holdout_every=task["holdout_every"], depth=cfg["depth"], load_size=cfg["load"],
                  crop_size=cfg["side"], ngf=cfg["ngf"], ndf=cfg["ndf"], workers=0, threads=1,
                  progress=False, tensorboard=False, seed=0, log_every=20, save_every=1000)
    extra = variant_options(name, weight)
    common["seed"] = extra.pop("seed", 0)
    if name == "finetune":
        base = train_variant("baseline", runs, cfg, task, data, weight)
        iters, extra = cfg["extra"], dict(extra, init_from=str(runs / "baseline"))
    else:
        base, iters = None, cfg["iters"]
    summary = {}
    if not _done(run, iters):
        log(f"steady: training {name} -> {run} ({iters} iterations)")
        summary = train(TrainOptions(**common, **extra, run=str(run), max_iters=iters,
                                     resume=(run / "checkpoints" / "latest.pt").is_file()))
    total = iters + (base["iterations"] if base else 0)
    return {"iterations": total, "options": extra,
            "train_s_per_iter": summary.get("seconds_per_iter")}


# --------------------------------------------------------------------------- inputs
def pan_clips(run: Path, direction: str, side: int, count: int, frames: int) -> list:
    """Pans (``STEP`` px per frame) across pairs of held-out model inputs put side by side, as
    BGR uint8 frames of ``side x side``: the inputs of pairs ``run`` never trained on."""
    import cv2

    from pix2pix_edge.runtime import contract
    from pix2pix_edge.runtime.flicker import pan_frames

    pairs = contract.held_out(run).pairs()[1][:2 * count]
    clips = []
    for k in range(0, len(pairs) - 1, 2):
        halves = [np.asarray(contract.resize(contract.read_input(p, direction, aligned=True),
                                             side, side)) for p in pairs[k:k + 2]]
        canvas = cv2.cvtColor(np.hstack(halves), cv2.COLOR_RGB2BGR)
        clips.append(pan_frames(canvas, side, STEP, frames))
    return clips


def video_clip(n: int, side: int, start: int = VIDEO_START) -> list:
    """``n`` consecutive frames of the real video, centre-cropped and resized to ``side``."""
    import cv2

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
        out.append(cv2.resize(crop, (side, side), interpolation=cv2.INTER_LINEAR))
    cap.release()
    return out


def translator(model):
    """BGR uint8 frames -> BGR uint8 outputs of ``model`` (an inference copy), one by one."""
    import cv2
    import torch

    def run(frames: list) -> list:
        out = []
        with torch.inference_mode():
            for f in frames:
                x = cv2.cvtColor(f, cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0
                y = model(torch.from_numpy(x.transpose(2, 0, 1)[None].copy()))[0]
                rgb = ((y.clamp(-1, 1).numpy().transpose(1, 2, 0) + 1.0) * 127.5).round()
                out.append(cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2BGR))
        return out
    return run


# --------------------------------------------------------------------------- measurements
def held_out_quality(model, dataset) -> dict:
    import torch

    from pix2pix_edge.train.evaluate import l1_per_image, psnr_per_image, ssim_per_image, to_unit

    per: dict[str, list] = {"l1": [], "psnr": [], "ssim": []}
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=False)
    with torch.inference_mode():
        for batch in loader:
            out, target = to_unit(model(batch["A"]).float()), to_unit(batch["B"])
            per["l1"] += l1_per_image(out, target).tolist()
            per["psnr"] += psnr_per_image(out, target).tolist()
            per["ssim"] += ssim_per_image(out, target).tolist()
    return {**{k: float(np.mean(v)) for k, v in per.items()}, "n": len(per["l1"])}


def warping_errors(translate, pans: list, video: list | None) -> tuple[dict, dict]:
    """Pan and video warping errors (L1, L2) of one model, and its per-pair curves."""
    from pix2pix_edge.runtime.flicker import pan_flicker, video_flicker

    pan = [pan_flicker(c, translate(c), STEP) for c in pans]
    out = {"pan_l1": float(np.mean([p["flicker"] for p in pan])),
           "pan_l2": float(np.mean([p["flicker_l2"] for p in pan])),
           "pan_pairs": sum(p["pairs"] for p in pan)}
    curves = {"pan_l1": pan[0]["per_pair"]["l1"] if pan else []}
    if video:
        v = video_flicker(video, translate(video))
        out.update(video_l1=v["flicker"], video_l2=v["flicker_l2"], video_pairs=v["pairs"],
                   video_input_l1=v["flicker_input"], video_input_l2=v["flicker_l2_input"])
        curves["video_l1"] = v["per_pair"]["l1"]
        curves["video_input_l1"] = v["per_pair"]["input_l1"]
    return out, curves


def quality_task(task_name: str, cfg: dict, runs: Path, variants: list, weight: float,
                 png_dir: Path | None) -> dict:
    """Train (or reuse) every variant of one task and measure it."""
    import torch

    from pix2pix_edge.runtime.contract import held_out as recorded
    from pix2pix_edge.train.checkpoint import load_generator
    from pix2pix_edge.train.models import inference_copy

    task = dict(TASKS[task_name])
    data = Path(task["data"])
    if cfg.get("synthetic"):
        from pix2pix_edge.train.synth import make_dataset
        data = runs / "synthetic-data"
        if not data.is_dir():
            data = make_dataset(data, n=8, size=cfg["side"], seed=1)
        task.update(direction="AtoB", holdout_last=4, holdout_every=0, what="synthetic pairs")
    torch.set_num_threads(1)
    root = runs / task_name
    facts = {v: train_variant(v, root, cfg, task, data, weight) for v in variants}
    held = recorded(root / variants[0])
    dataset = held_out_dataset(held, task["direction"], cfg["side"], cfg.get("max_eval"), data)
    pans = pan_clips(root / variants[0], task["direction"], cfg["side"], cfg["pans"],
                     cfg["pan_frames"])
    video = None
    if task_name == "facades" and VIDEO.is_file():
        video = video_clip(cfg["video_frames"], cfg["side"])
    rows, curves, outputs = [], {}, {}
    for v in variants:
        G, record = load_generator(root / v)
        model = inference_copy(G, record["inference"]["norm_mode"])
        translate = translator(model)
        q = held_out_quality(model, dataset)
        w, curves[v] = warping_errors(translate, pans, video)
        if v in STRIP or v == variants[0]:
            outputs[v] = translate(pans[0][:cfg["strip_frames"]]) if pans else []
        rows.append({"task": task_name, "model": v, "label": label(v, weight),
                     "iterations": facts[v]["iterations"], "options": facts[v]["options"],
                     "train_s_per_iter": facts[v]["train_s_per_iter"], **q, **w})
        log(f"steady: {task_name} {v}: L1 {q['l1']:.4f} PSNR {q['psnr']:.2f} SSIM {q['ssim']:.4f} "
            f"pan {w['pan_l1']:.4f}" + (f" video {w['video_l1']:.4f}" if video else ""))
    base = next((r for r in rows if r["model"] == "baseline"), None)
    if base:
        for r in rows:
            r["pan_vs_baseline"] = (round(r["pan_l1"] / base["pan_l1"], 3) if base["pan_l1"]
                                    else None)
            r["psnr_minus_baseline"] = round(r["psnr"] - base["psnr"], 3)
            r["ssim_minus_baseline"] = round(r["ssim"] - base["ssim"], 4)
    files = []
    if png_dir is not None and pans:
        files += pictures(task_name, pans[0][:cfg["strip_frames"]], outputs, curves, png_dir)
    return {"rows": rows, "held_out": len(dataset), "what": task["what"],
            "pan": f"{len(pans)} pans x {cfg['pan_frames']} frames, {STEP} px per frame, "
                   f"across held-out inputs at {cfg['side']}x{cfg['side']}",
            "video": (f"{VIDEO.name}, {cfg['video_frames']} frames from {VIDEO_START}, centre "
                      f"crop at {cfg['side']}x{cfg['side']}") if video else None,
            "curves": curves, "files": [str(f) for f in files]}


# --------------------------------------------------------------------------- pictures
def pictures(task: str, inputs: list, outputs: dict, curves: dict, png_dir: Path) -> list:
    """``steady_<task>_pan.gif`` (input | baseline | both, animated), ``steady_<task>_pan.png``
    (three consecutive frames and, under each output, |O(t+1) - O(t) moved by the pan| x4) and
    ``steady_<task>_curves.png`` (warping error per frame pair)."""
    import cv2
    from PIL import Image

    png_dir.mkdir(parents=True, exist_ok=True)
    columns = [c for c in STRIP if outputs.get(c)]
    frames = [np.hstack([inputs[t]] + [outputs[c][t] for c in columns]) for t in range(len(inputs))]
    rgb = [Image.fromarray(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)) for f in frames]
    # one palette for every frame, no dithering: the GIF adds no flicker of its own
    palette = Image.fromarray(np.vstack([np.asarray(im) for im in rgb])).quantize(colors=96)
    gif = png_dir / f"steady_{task}_pan.gif"
    frames_p = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in rgb]
    frames_p[0].save(gif, save_all=True, append_images=frames_p[1:], duration=150, loop=0)
    rows = []
    for t in range(min(3, len(inputs) - 1)):
        diff = [np.zeros_like(inputs[t])]
        for c in columns:
            moved = outputs[c][t][:, STEP:]                        # what frame t+1 should show
            d = np.abs(outputs[c][t + 1][:, :-STEP].astype(np.int16) - moved) * 4
            diff.append(np.pad(np.clip(d, 0, 255).astype(np.uint8), ((0, 0), (0, STEP), (0, 0))))
        rows += [frames[t], np.hstack(diff)]
    png = png_dir / f"steady_{task}_pan.png"
    grid = Image.fromarray(cv2.cvtColor(np.vstack(rows), cv2.COLOR_BGR2RGB))
    grid.quantize(colors=256, dither=Image.Dither.NONE).save(png, optimize=True)
    curve = plot_curves(task, curves, png_dir / f"steady_{task}_curves.png")
    return [gif, png] + ([curve] if curve else [])


def plot_curves(task: str, curves: dict, path: Path) -> Path | None:
    """The warping error per frame pair of the ROWS models: the pan (exact motion) and the real
    video (log scale: its scene cut would flatten the rest), the input's beside the video's."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    keys = [k for k in ("pan_l1", "video_l1") if any(c.get(k) for c in curves.values())]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name in ROWS:
            c = curves.get(name) or {}
            if c.get(key):
                ax.plot(range(1, len(c[key]) + 1), c[key], label=name, lw=1.2)
        first = next(iter(curves.values()))
        if key == "video_l1":
            if first.get("video_input_l1"):
                ax.plot(range(1, len(first["video_input_l1"]) + 1), first["video_input_l1"], "k:",
                        label="input", lw=1)
            ax.set_yscale("log")
        ax.set_xlabel("frame pair")
        ax.set_ylabel("warping error (L1, [0, 1])")
        what = "synthetic pan (exact motion)" if key == "pan_l1" else "real video (DIS flow)"
        ax.set_title(f"{task}: {what}")
        ax.grid(True, alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- latency
def latency(cfg: dict, pad: str) -> dict:
    """ORT CPU p50 of the plain and the anti-aliased U-Net at each width, interleaved: anti-aliased
    with ``pad`` (``ngfN-antialias``) and, where ``pad`` is not zero, with the zero border too
    (``ngfN-antialias-zero``, the cheaper border: no Pad node). Ratios to the plain model:
    ``ngfN_ratio`` (``pad``), ``ngfN_zero_ratio``."""
    import os

    import torch

    from .inference import ort_session
    from pix2pix_edge.export.to_onnx import count_macs, export_model
    from pix2pix_edge.runtime.machine import usable_cpus
    from pix2pix_edge.runtime.stats import latency_stats
    from pix2pix_edge.train.models import UNetGenerator, inference_copy, init_weights

    side, depth = cfg["latency_side"], cfg["latency_depth"]
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, side, side)).astype(np.float32)
    out: dict[str, Any] = {"side": side, "depth": depth, "pad": pad, "models": {}}
    with tempfile.TemporaryDirectory(prefix="bench-steady-") as tmp:
        fns, keep = {}, []
        for ngf in cfg["latency_ngfs"]:
            kinds = [("plain", False, pad), ("antialias", True, pad)] + \
                ([("antialias-zero", True, "zero")] if pad != "zero" else [])
            for kind, aa, border in kinds:
                torch.manual_seed(0)
                g = inference_copy(init_weights(UNetGenerator(depth=depth, ngf=ngf, antialias=aa,
                                                              antialias_pad=border)), "running")
                name = f"ngf{ngf}-{kind}"
                path = export_model(g, Path(tmp) / f"{name}.onnx", height=side, width=side)
                sess = ort_session(path, usable_cpus())
                keep.append(sess)
                fns[name] = lambda s=sess: s.infer(x)
                out["models"][name] = {"gflop": round(2 * count_macs(g, side, side) / 1e9, 3)}
        load_before = os.getloadavg()
        samples = interleaved(fns, reps=cfg["reps"], warmup=2, budget_s=cfg["budget_s"])
    for name, s in samples.items():
        out["models"][name].update(latency_stats(s))
    out["load_before"] = [round(v, 2) for v in load_before]
    out["load_after"] = [round(v, 2) for v in os.getloadavg()]
    for ngf in cfg["latency_ngfs"]:
        models = out["models"]
        plain = models[f"ngf{ngf}-plain"]["p50_ms"]
        out[f"ngf{ngf}_ratio"] = round(models[f"ngf{ngf}-antialias"]["p50_ms"] / plain, 3)
        if f"ngf{ngf}-antialias-zero" in models:
            out[f"ngf{ngf}_zero_ratio"] = round(models[f"ngf{ngf}-antialias-zero"]["p50_ms"] / plain, 3)
    return out


def _latency_kind(options: dict, lat: dict) -> str:
    """Which timed model a row's architecture is: plain, antialias (the timed border) or
    antialias-zero."""
    if not options.get("antialias"):
        return "plain"
    zero = options.get("antialias_pad") == "zero" and lat.get("pad") != "zero"
    return "antialias-zero" if zero else "antialias"


def _ratios(lat: dict, kind: str) -> dict:
    """``{ngf: ratio}`` of the anti-aliased ``kind`` to the plain model, for each width timed."""
    suffix = "_zero_ratio" if kind == "antialias-zero" else "_ratio"
    widths = [k[3:-len("-plain")] for k in lat["models"] if k.endswith("-plain")]
    return {n: lat[f"ngf{n}{suffix}"] for n in widths if f"ngf{n}{suffix}" in lat}


def fill_latency(rows: list, lat: dict) -> None:
    """Put the architecture's latency into each row (anti-aliased rows: the model of their border;
    a record without the zero border's timing gives those rows none)."""
    for r in rows:
        kind = _latency_kind(r.get("options", {}), lat)
        for key, m in lat["models"].items():
            ngf, timed = key[3:].split("-", 1)
            if timed == kind:
                r[f"ms_ngf{ngf}"] = m["p50_ms"]


def latency_line(lat: dict) -> str:
    """The latency line under the steady table: how it was timed, and the ratios to the plain U-Net."""
    ratios = ", ".join(f"ngf {n}: {v:.3f}x" for n, v in _ratios(lat, "antialias").items())
    zero = _ratios(lat, "antialias-zero")
    return (f"- latency: unet depth {lat['depth']} at {lat['side']}x{lat['side']}, ONNX Runtime FP32 "
            f"CPU p50, plain vs anti-aliased ({lat['pad']} border" + (", and zero border" if zero else "")
            + f"), interleaved, load {lat['load_before'][0]} -> {lat['load_after'][0]}; "
            f"anti-aliased / plain {ratios}"
            + ("; zero border / plain " + ", ".join(f"ngf {n}: {v:.3f}x" for n, v in zero.items())
               if zero else ""))


# --------------------------------------------------------------------------- the section
QUALITY_KEYS = ("task", "model", "label", "iterations", "options", "train_s_per_iter", "l1",
                "psnr", "ssim", "n", "pan_l1", "pan_l2", "pan_pairs", "video_l1", "video_l2",
                "video_pairs", "video_input_l1", "video_input_l2", "pan_vs_baseline",
                "psnr_minus_baseline", "ssim_minus_baseline")


def recorded_quality() -> tuple[dict | None, dict | None]:
    """The quality part of the newest committed steady result, and the run it comes from."""
    from . import report

    merged = report.merge(report.result_files())
    sec = merged["sections"].get("steady")
    if not report.measured(sec) or not any("l1" in r for r in sec.get("rows", [])):
        return None, None
    rows = [{k: r[k] for k in QUALITY_KEYS if k in r} for r in sec["rows"]]
    source = sec.get("quality_source") or merged["source"]["steady"]
    return {"rows": rows, "tasks": sec.get("tasks", {}), "setup": sec.get("setup"),
            "weight": sec.get("weight")}, source


def run(level: str = "full", parts=None, runs: str | Path | None = None, train: bool = False,
        variants=None, tasks=None, weight: float = DEFAULT_WEIGHT, pad: str | None = None,
        png_dir: str | Path | None = None) -> dict[str, Any]:
    """The steady section. ``parts``: "quality", "latency" (default both); ``runs``: keep and
    reuse the trained runs there; ``train``: at level full, train (or reuse ``runs``) instead of
    taking the quality columns from the newest committed result; ``pad``: the anti-aliased
    latency model's border (default: train's --antialias-pad default); ``png_dir``: where the
    pictures go (none at level smoke unless given)."""
    from pix2pix_edge.train.options import TrainOptions

    cfg = dict(LEVELS[level])
    parts = tuple(parts or ("quality", "latency"))
    variants = list(variants or (ROWS + CHOICES if level == "full" else ROWS))
    tasks = list(tasks or cfg["tasks"])
    pad = pad or TrainOptions.antialias_pad
    png_dir = Path(png_dir) if png_dir else None
    out: dict[str, Any] = {"level": level, "config": cfg, "weight": weight, "rows": [],
                           "tasks": {}, "setup": setup_line(cfg, weight)}
    if "quality" in parts:
        record, source = (None, None)
        if level == "full" and not train and runs is None:
            record, source = recorded_quality()
        if record is not None:
            out.update(rows=record["rows"], tasks=record["tasks"], setup=record["setup"],
                       weight=record["weight"], quality_source=source)
            log("steady: quality columns from " + source["file"])
        else:
            missing = [t for t in tasks if not (Path(TASKS[t]["data"]) / "train").is_dir()]
            if missing and level == "full":
                return {"skipped": "dataset(s) not found: " + ", ".join(
                    str(TASKS[t]["data"]) for t in missing)}
            if missing:
                cfg["synthetic"] = True
            if cfg.get("synthetic"):
                tasks = tasks[:1]
            started = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="bench-steady-runs-") as tmp:
                root = Path(runs) if runs else Path(tmp)
                for name in tasks:
                    res = quality_task(name, cfg, root, variants, weight, png_dir)
                    out["rows"] += res.pop("rows")
                    out["tasks"][name] = res
                    log(f"steady: {name} done ({time.perf_counter() - started:.0f} s)")
    if "latency" in parts:
        out["latency"] = latency(cfg, pad)
        fill_latency(out["rows"], out["latency"])
    out["targets"] = targets(out["rows"], out.get("latency"))
    return out


def setup_line(cfg: dict, weight: float) -> str:
    return (f"unet depth {cfg['depth']} ngf {cfg['ngf']} at {cfg['side']}x{cfg['side']} (resize "
            f"{cfg['load']} -> random crop + flip), basic PatchGAN ndf {cfg['ndf']}, batch 1, "
            f"seed 0, one torch thread, bf16 autocast where the CPU has it; {cfg['iters']} "
            f"iterations per row (fine-tune: the baseline's + {cfg['extra']}); "
            f"--lambda-stability {weight:g} with the default transform magnitudes in the rows")


def targets(rows: list, lat: dict | None) -> dict:
    """The issue's targets per task and row: pan error at least 2x lower (stretch 3x), PSNR
    within 0.3 dB and SSIM within 0.01, real-video error not worse, latency at most 1.15x."""
    out: dict[str, dict] = {}
    for r in rows:
        base = next((b for b in rows if b["task"] == r["task"] and b["model"] == "baseline"), None)
        if r["model"] == "baseline" or base is None or "pan_l1" not in r:
            continue
        t = {"pan_2x": r["pan_l1"] * 2 <= base["pan_l1"],
             "pan_3x": r["pan_l1"] * 3 <= base["pan_l1"],
             "psnr": r["psnr"] >= base["psnr"] - 0.3, "ssim": r["ssim"] >= base["ssim"] - 0.01}
        if r.get("video_l1") is not None and base.get("video_l1") is not None:
            t["video_not_worse"] = r["video_l1"] <= base["video_l1"]
        if lat and r.get("options", {}).get("antialias"):
            ratios = _ratios(lat, _latency_kind(r["options"], lat))
            if ratios:
                t["latency"] = all(v <= 1.15 for v in ratios.values())
        out[f"{r['task']}/{r['model']}"] = t
    return out


# --------------------------------------------------------------------------- report
COLUMNS = [("task", "task", ""), ("label", "model", ""), ("iterations", "iterations", "d"),
           ("l1", "L1 ↓", ".4f"), ("psnr", "PSNR dB", ".2f"), ("ssim", "SSIM", ".4f"),
           ("pan_l1", "pan L1 ↓", ".4f"), ("pan_l2", "pan L2 ↓", ".5f"),
           ("pan_vs_baseline", "pan / baseline", ".2f"),
           ("video_l1", "video L1 ↓", ".4f"), ("video_l2", "video L2 ↓", ".5f"),
           ("ms_ngf64", "ORT ms ngf 64", ".2f"), ("ms_ngf16", "ORT ms ngf 16", ".2f")]
TARGET_WORDS = {"pan_2x": "pan error at least 2x lower", "pan_3x": "3x (stretch)",
                "psnr": "PSNR within 0.3 dB", "ssim": "SSIM within 0.01",
                "video_not_worse": "real-video error not worse", "latency": "latency at most 1.15x"}


def decision_lines(rows: list) -> list[str]:
    """The comparisons behind the defaults, per task: the filters' border, the loss weight, and
    the spread between two seeds of the same baseline (what a difference must exceed)."""
    def diff(a: dict, b: dict) -> str:
        return (f"pan L1 x{a['pan_l1'] / b['pan_l1']:.2f}, pan L2 x{a['pan_l2'] / b['pan_l2']:.2f}"
                + (f", video L1 x{a['video_l1'] / b['video_l1']:.2f}" if a.get("video_l1") else "")
                + f", L1 {a['l1'] - b['l1']:+.4f}, PSNR {a['psnr'] - b['psnr']:+.2f} dB, "
                  f"SSIM {a['ssim'] - b['ssim']:+.4f}")
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        by = {r["model"]: r for r in rows if r["task"] == task}
        pairs = [("baseline-s1", "baseline", "seed spread: baseline seed 1 vs seed 0"),
                 ("antialias-zero", "antialias", "border: zero vs reflect padding")]
        pairs += [(w, "baseline", f"weight: {by[w]['label']} vs baseline")
                  for w in ("stability-w10", "stability", "stability-w1000") if w in by]
        for a, b, what in pairs:
            if a in by and b in by:
                out.append(f"- {task}, {what}: {diff(by[a], by[b])}")
    return out


def markdown(sec: dict, images: bool = False) -> list[str]:
    """The steady section (benchmarks/report.py: RESULTS.md and docs/steady.md); ``images``: link
    the pictures (relative to the results folder)."""
    rows = sec.get("rows", [])
    main = [r for r in rows if r["model"] in ROWS]
    other = [r for r in rows if r["model"] not in ROWS]
    lines = [f"Setup: {sec.get('setup', '')}.", ""]
    src = sec.get("quality_source")
    if src:
        lines += [f"Quality columns from run `{src.get('file')}`: {src.get('date')}, "
                  f"{src.get('machine')}; `{src.get('command')}`.", ""]
    lines += [markdown_table(main, COLUMNS), ""]
    if other:
        lines += ["The choices (same budget and splits; the baseline of another seed shows how "
                  "far two identical trainings land apart):", "",
                  markdown_table(other, [c for c in COLUMNS if not c[0].startswith("ms_")]), ""]
    lines += decision_lines(rows)
    lat = sec.get("latency")
    if lat:
        lines.append(latency_line(lat))
    else:
        lines.append("- latency columns: not measured in this run")
    for key, t in sec.get("targets", {}).items():
        task, model = key.split("/")
        if model not in ROWS:
            continue
        met = [w for k, w in TARGET_WORDS.items() if t.get(k)]
        missed = [w for k, w in TARGET_WORDS.items() if k in t and not t[k]]
        lines.append(f"- {task}, {model}: meets " + (", ".join(met) or "none")
                     + (f"; misses {', '.join(missed)}" if missed else ""))
    for task, t in sec.get("tasks", {}).items():
        lines.append(f"- **{task}** ({t.get('what')}; {t.get('held_out')} held-out pairs): pan "
                     f"{t.get('pan')}" + (f"; video {t['video']}" if t.get("video") else ""))
        for f in t.get("files", []) if images else ():
            lines.append(f"  - ![{task}]({Path(f).name})")
    return lines


if __name__ == "__main__":   # python -m benchmarks.steady [level]: one section, printed as JSON
    import json
    import sys

    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "quick"), indent=1, default=str))
