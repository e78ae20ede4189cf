"""``pix2pix eval``: L1, PSNR and SSIM of a trained generator on held-out pairs, and a gallery.

The generator runs exactly as export and the runtime will run it: through
:func:`train.models.inference_copy` with the normalisation mode recorded in the run
(``per-image`` by default for BatchNorm models, as the reference ``test.py``; ``running`` for
``model.eval()`` statistics; ``both`` to compare) and dropout off unless recorded on.

Which pairs (:func:`select_pairs`): by default the hold-out the run recorded (``train
--holdout-last N`` / ``--holdout-every N``, runtime/contract.py :func:`held_out`); for a run that
held nothing out, DATA's val or test split; otherwise it refuses. A flag that would score pairs
the run trained on is refused unless ``allow_trained_pairs``; the printout and metrics.json say
which pairs were scored and how many of them the run trained on.

Metrics are computed on images mapped to [0, 1]:

* L1: mean absolute error.
* PSNR: ``10 log10(1 / MSE)`` per image, then averaged (capped at 100 dB for identical images).
* SSIM: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, data range
  1, over the valid region (no padding), averaged over channels and pixels, per image; the same
  definition as ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)``.

FID and LPIPS need pretrained Inception / AlexNet weights that must be downloaded; where they
cannot be had they are skipped with a printed note, never faked.
"""

from __future__ import annotations

import html
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pix2pix_edge.runtime.contract import (INFERENCE_NORMS, HeldOut, held_out, list_pairs,
                                           split_dir)
from pix2pix_edge.runtime.errors import BadInput, BadUsage
from pix2pix_edge.runtime.machine import physical_cores
from pix2pix_edge.train.eval_options import EvalOptions, check_options
from pix2pix_edge.train.reference_run import read_config


# ----------------------------------------------------------------------------- metrics

def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped (what the image on disk would hold)."""
    return ((x.float() + 1) / 2).clamp(0, 1)


def l1_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).abs().flatten(1).mean(1)


def psnr_per_image(x: torch.Tensor, y: torch.Tensor, max_db: float = 100.0) -> torch.Tensor:
    """PSNR in dB of [0, 1] images, one value per image in the batch."""
    mse = (x - y).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse.clamp_min(10 ** (-max_db / 10)))).clamp_max(max_db)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim_per_image(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5,
                   k1: float = 0.01, k2: float = 0.03, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM per image of two [N, C, H, W] batches (vectorised: one depthwise conv)."""
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"SSIM needs two equal [N, C, H, W] batches, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < window:
        raise ValueError(f"images of {tuple(x.shape[-2:])} are smaller than the {window}x{window} SSIM window")
    x, y = x.double(), y.double()
    c = x.shape[1]
    w = _gaussian_window(window, sigma).to(x.device).expand(c, 1, window, window)
    blur = lambda t: torch.nn.functional.conv2d(t, w, groups=c)  # noqa: E731  (valid region)
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1).float()


def perceptual_metrics_note() -> str:
    """Why FID / LPIPS are not in the report (they need weights from the internet)."""
    have = [m for m in ("lpips", "pytorch_fid", "torchmetrics") if importlib.util.find_spec(m)]
    if not have:
        return ("FID and LPIPS skipped: they need pretrained Inception / AlexNet weights "
                "(packages lpips / pytorch-fid and a download); none are installed here")
    return (f"FID and LPIPS skipped: {', '.join(have)} installed, but pix2pix eval does not "
            "compute them (their pretrained weights are downloaded on first use)")


# ----------------------------------------------------------------------------- running a model

@torch.no_grad()
def evaluate_generator(G: torch.nn.Module, dataset, batch_size: int = 4, device="cpu",
                       keep: int = 8) -> tuple[dict, list[dict], list[np.ndarray]]:
    """Run an inference-ready ``G`` (see ``inference_copy``) over ``dataset``.

    Returns (means {l1, psnr, ssim, n}, per-image rows, first ``keep`` input|output|target rows
    as uint8 HxWx3 arrays)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    rows, strips = [], []
    for batch in loader:
        A = batch["A"].to(device)
        out = to_unit(G(A).float().cpu())
        tgt, inp = to_unit(batch["B"]), to_unit(batch["A"])
        if out.shape != tgt.shape:
            raise BadInput(f"generator output {tuple(out.shape[1:])} does not match the target "
                           f"{tuple(tgt.shape[1:])}: wrong --direction or channels?")
        l1, ps, ss = l1_per_image(out, tgt), psnr_per_image(out, tgt), ssim_per_image(out, tgt)
        for i, path in enumerate(batch["path"]):
            rows.append({"image": Path(path).name, "l1": float(l1[i]), "psnr": float(ps[i]),
                         "ssim": float(ss[i])})
            if len(strips) < keep:
                a = inp[i].expand(3, -1, -1) if inp.shape[1] == 1 else inp[i, :3]
                strip = torch.cat([a, out[i, :3], tgt[i, :3]], dim=2)
                strips.append((strip * 255).round().byte().permute(1, 2, 0).numpy())
    if not rows:
        raise BadInput("no images to evaluate")
    means = {k: float(np.mean([r[k] for r in rows])) for k in ("l1", "psnr", "ssim")}
    means["n"] = len(rows)
    return means, rows, strips


def _write_grid(strips: list[np.ndarray], path: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.concatenate(strips, axis=0)).save(path)
    return path


def _write_html(path: Path, result: dict, grids: dict[str, str], per_image: dict[str, list]) -> None:
    esc = html.escape
    trained = "unknown how many" if result["trained_pairs"] is None else result["trained_pairs"]
    parts = [f"<!doctype html><meta charset='utf-8'><title>pix2pix eval: {esc(result['run'])}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}</style>",
             f"<h1>Evaluation of {esc(result['run'])}</h1>",
             f"<p>{result['n']} pairs, {esc(result['scored'])} ({trained} of them trained on), "
             f"direction {esc(result['direction'])}, {result['size']}x{result['size']}. "
             "Metrics on [0, 1] images.</p><table><tr><th>norm mode</th><th>L1</th><th>PSNR dB</th>"
             "<th>SSIM</th></tr>"]
    for mode, m in result["metrics"].items():
        parts.append(f"<tr><td>{esc(mode)}</td><td>{m['l1']:.4f}</td><td>{m['psnr']:.2f}</td>"
                     f"<td>{m['ssim']:.4f}</td></tr>")
    parts.append(f"</table><p><i>{esc(result['notes'][0])}</i></p>")
    for mode, grid in grids.items():
        parts.append(f"<h2>{esc(mode)}: input | output | target</h2><img src='{esc(grid)}'>")
        parts.append("<details><summary>per image</summary><table><tr><th>image</th><th>L1</th>"
                     "<th>PSNR</th><th>SSIM</th></tr>")
        for r in per_image[mode]:
            parts.append(f"<tr><td>{esc(r['image'])}</td><td>{r['l1']:.4f}</td>"
                         f"<td>{r['psnr']:.2f}</td><td>{r['ssim']:.4f}</td></tr>")
        parts.append("</table></details>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------- which pairs

@dataclass
class Selection:
    """The pairs eval scores: where they come from, and how many of them the run trained on."""

    pairs: list
    split: str                    # DATA's split they belong to
    what: str                     # for people: which pairs, and why these
    trained: int | None = None    # how many the run trained on (None: unknown, no run record)


def _unseen_split(data: Path) -> str | None:
    """DATA's val or test split, when it has one (training reads train only)."""
    return next((s for s in ("val", "test") if (data / s).is_dir()), None)


def select_pairs(o: EvalOptions, held: HeldOut) -> Selection:
    """The pairs of ``o.data`` to score: those asked for by a flag, else the run's recorded
    hold-out, else DATA's val / test split. Refuses (one line) when that would score pairs the
    run trained on, unless ``o.allow_trained_pairs``."""
    data = Path(o.data)
    if o.holdout_last or o.holdout_every:
        asked = HeldOut(o.holdout_last, o.holdout_every)
        sel = Selection(asked.split(list_pairs(data, "train"))[1], "train",
                        f"{asked.describe()} of {data}/train ({asked.flags()})")
    elif o.split:
        try:
            pairs = list_pairs(data, o.split)
        except BadInput as e:
            raise BadInput(f"{e}; without --split eval scores the hold-out the run recorded "
                           "(train --holdout-last N / --holdout-every N)") from None
        sel = Selection(pairs, o.split, f"{data} --split {o.split}")
    elif held.any:
        sel = Selection(held.split(list_pairs(data, "train"))[1], "train",
                        f"the run's hold-out: {held.describe()} of {split_dir(data, 'train')} "
                        f"(trained with {held.flags()})")
    elif _unseen_split(data):
        split = _unseen_split(data)
        sel = Selection(list_pairs(data, split), split,
                        f"{data}/{split} (the run held nothing out; training never reads {split})")
    elif Path(o.run).is_dir() and read_config(Path(o.run)) is not None:
        # a reference-code generator (models download / import): its authors trained it on the
        # dataset's train split, so only a split they never trained on says anything
        raise BadInput(f"{o.run} is a reference-code generator, trained on its dataset's train "
                       f"split, and {data} has no val or test split to score it on: give the "
                       "dataset with its test/ folder (pix2pix data download NAME), or add a "
                       "val/ folder of pairs it never saw to DATA")
    else:
        why = "held nothing out of training" if held.recorded else \
            "has no run record (config.json), so no hold-out"
        raise BadInput(f"{o.run} {why} and {data} has no val or test split: every pair there "
                       "may be one it trained on; retrain with --holdout-last N or "
                       "--holdout-every N (eval then scores those), or add a val/ split to DATA")
    keys = held.trained_keys(data)
    sel.trained = None if keys is None else sum(p.key() in keys for p in sel.pairs)
    if sel.trained and not o.allow_trained_pairs:
        instead = "score the run's hold-out (no flag)" if held.any else \
            "score a val or test split (the run held nothing out)"
        raise BadUsage(f"{sel.what}: {sel.trained} of these {len(sel.pairs)} pairs were trained "
                       f"on (the run held out {held.describe()}); {instead}, or add "
                       "--allow-trained-pairs")
    if held.dataset and not held.same_dataset(data) and Path(held.dataset).is_dir():
        sel.what += f"; the run trained on {held.dataset}"
    return sel


def describe(sel: Selection) -> str:
    trained = "unknown how many of them trained on (no run record)" if sel.trained is None \
        else f"{sel.trained} of them trained on"
    return f"scored: {sel.what}: {len(sel.pairs)} pairs, {trained}"


# ----------------------------------------------------------------------------- the command

def evaluate(run: str | Path, data: str | Path, *, keep: int = 8, log=print, **options) -> dict:
    """Evaluate ``run`` (a run directory or generator file) on ``data`` with the options of
    :class:`EvalOptions` (the CLI's; by default the run's recorded hold-out); write metrics.json,
    grid PNG(s) and index.html to ``out`` (default RUN/eval). Returns the metrics record."""
    o = EvalOptions(run=str(run), data=str(data), **options)
    check_options(o)
    threads = torch.get_num_threads()
    torch.set_num_threads(o.threads or physical_cores())
    try:
        return _evaluate(o, keep, log)
    finally:
        torch.set_num_threads(threads)


def _evaluate(o: EvalOptions, keep: int, log) -> dict:
    from pix2pix_edge.train.checkpoint import load_generator
    from pix2pix_edge.train.data import PairedDataset
    from pix2pix_edge.train.models import inference_copy

    run, data = Path(o.run), Path(o.data)
    G, record = load_generator(run)
    recorded = record["inference"]["norm_mode"]
    modes = {None: [recorded], "both": list(INFERENCE_NORMS)}.get(o.norm_mode, [o.norm_mode])
    facts = record.get("data") or {}
    direction = o.direction or facts.get("direction", "AtoB")
    size = int(facts.get("crop_size") or 256)
    if not data.is_dir():
        raise BadInput(f"dataset folder not found: {data}")
    if size % G.multiple:
        raise BadInput(f"recorded crop size {size} is not a multiple of {G.multiple}")
    held = held_out(run)
    sel = select_pairs(o, held)
    log(describe(sel))
    ds = PairedDataset(data, sel.split, direction=direction, load_size=size, crop_size=size,
                       augment=False, files=sel.pairs)
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if o.device == "auto"
                       else o.device)
    G = G.to(dev)
    out = Path(o.out) if o.out is not None else (run if run.is_dir() else run.parent) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    note = perceptual_metrics_note()
    metrics, grids, per_image = {}, {}, {}
    for mode in modes:
        model = inference_copy(G, mode, dropout=bool(record["inference"].get("dropout", False)))
        means, rows, strips = evaluate_generator(model, ds, o.batch_size, dev, keep)
        metrics[mode] = means
        per_image[mode] = rows
        grids[mode] = _write_grid(strips, out / f"grid_{mode}.png").name
        log(f"{mode:9s}  L1 {means['l1']:.4f}  PSNR {means['psnr']:.2f} dB  SSIM {means['ssim']:.4f}"
            f"  ({means['n']} pairs)")
    log(note)
    result = {"run": str(run), "data": str(data), "split": sel.split, "scored": sel.what,
              "trained_pairs": sel.trained,
              "run_held_out": {"last": held.last, "every": held.every},
              "direction": direction, "size": size, "n": len(ds), "recorded_norm_mode": recorded,
              "metrics": metrics, "per_image": per_image, "grids": grids, "fid": None,
              "lpips": None, "notes": [note],
              "bad_files": [list(map(str, b)) for b in ds.bad_files]}
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    _write_html(out / "index.html", result, grids, per_image)
    log(f"wrote {out / 'metrics.json'}, {out / 'index.html'}")
    return result
