"""Held-out PSNR / SSIM on the real facades before and after a fixed CPU training budget.

Trains labels -> photo (``--direction BtoA``: the facades files are photo | labels) on
../shared/datasets/facades with the last 40 images (natural order) held out, at 128x128
(unet_128 = depth 7, load 143 -> crop 128, ngf 64, basic D, batch 1, the reference losses and
optimiser), for a fixed number of iterations with the default ``--amp auto``. Reports L1 / PSNR /
SSIM of the held-out images before training (the initial generator: same seed, same weights)
and after, with the recorded per-image BatchNorm mode (and running statistics for comparison),
plus the trivial baseline "output = input label map".

    python -m benchmarks.facades_quality               # 500 iterations (~10 min on 2 quiet cores)
    python -m benchmarks.facades_quality --iters 200   # shorter

The suite's quality section (benchmarks/quality_vs_speed.py) runs this per width; standalone it
prints its figures (``--json FILE`` also writes them). Skips with a message when the dataset is
absent.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from .common import FACADES, FACADES_DIRECTION, FACADES_HELD_OUT


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=500)
    ap.add_argument("--heldout-n", type=int, default=None, metavar="N",
                    help="score at most N of the 40 held-out pairs, spread over them (default: all)")
    ap.add_argument("--quick", action="store_true", help="200 iterations")
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (0: default; 1 is faster when other processes load the CPU)")
    ap.add_argument("--data", type=Path, default=FACADES)
    ap.add_argument("--run", type=Path, default=None, help="keep the run here (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = ap.parse_args(argv)
    if not (args.data / "train").is_dir():
        print(f"facades_quality: skipped, dataset not found at {args.data} (it lives outside the "
              "repository; `pix2pix data download facades --to ../shared/datasets` fetches it)")
        return 0
    iters = 200 if args.quick else args.iters

    import torch

    from .common import held_out_dataset
    from pix2pix_edge.train.evaluate import evaluate_generator, l1_per_image, psnr_per_image, ssim_per_image, to_unit
    from pix2pix_edge.train.loop import TrainOptions, train
    from pix2pix_edge.train.models import UNetGenerator, inference_copy, init_weights

    held = FACADES_HELD_OUT
    opts = dict(direction=FACADES_DIRECTION, depth=7, load_size=143, crop_size=128, ngf=args.ngf,
                ndf=64, holdout_last=held.last, holdout_every=held.every, max_iters=iters,
                log_every=50, save_every=1000, progress=False, tensorboard=False, seed=0,
                threads=args.threads)
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = held_out_dataset(held, FACADES_DIRECTION, 128, args.heldout_n, data=args.data)

    def metrics(G, mode):
        m, _, _ = evaluate_generator(inference_copy(G, mode, dropout=False), ds, batch_size=8)
        return {k: round(v, 4) for k, v in m.items()}

    # the untrained generator: train() seeds with opts["seed"] and builds G first, so this is it
    torch.manual_seed(0)
    G0 = init_weights(UNetGenerator(3, 3, depth=7, ngf=args.ngf))
    before = {"per-image": metrics(G0, "per-image"), "running": metrics(G0, "running")}
    A = torch.stack([ds[i]["A"] for i in range(len(ds))])
    B = torch.stack([ds[i]["B"] for i in range(len(ds))])
    ua, ub = to_unit(A), to_unit(B)
    baseline = {"l1": float(l1_per_image(ua, ub).mean()), "psnr": float(psnr_per_image(ua, ub).mean()),
                "ssim": float(ssim_per_image(ua, ub).mean())}
    print(f"before: {before}\nbaseline output = input: {baseline}", flush=True)

    with tempfile.TemporaryDirectory(prefix="facades_quality_") as tmp:
        run = args.run or Path(tmp) / "run"
        started = time.perf_counter()
        summary = train(TrainOptions(data=str(args.data), run=str(run), **opts))
        wall = time.perf_counter() - started
        from pix2pix_edge.train.checkpoint import load_generator
        G, record = load_generator(run)
        after = {"per-image": metrics(G, "per-image"), "running": metrics(G, "running")}
        import csv
        rows = list(csv.DictReader(open(run / "log.csv")))
    print(f"after {summary['iterations']} iterations ({wall:.0f} s): {after}")
    result = {
        "benchmark": "facades_quality", "data": str(args.data), "direction": "BtoA (labels -> photo)",
        "held_out": f"{held.describe()} of train (natural order)", "held_out_n": len(ds),
        "model": f"unet_128 (depth 7) ngf {args.ngf}, basic D, batch 1, load 143 -> crop 128",
        "iterations": summary["iterations"], "epochs_done": summary["epoch"],
        "precision": summary["precision"], "channels_last": summary["channels_last"],
        "train_wall_s": round(wall, 1), "seconds_per_iter_median": round(summary["seconds_per_iter"], 4),
        "before": before, "after": after, "recorded_norm_mode": record["inference"]["norm_mode"],
        "baseline_output_equals_input": {k: round(v, 4) for k, v in baseline.items()},
        "log_first": rows[0] if rows else None, "log_last": rows[-1] if rows else None,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    from .common import write_json

    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
