"""Seconds per training iteration of the default facades config, per speed option, side by side.

The default config is the reference one: unet_256 (depth 8, ngf 64), basic PatchGAN, BatchNorm,
batch 1, load 286 -> crop 256. Every variant runs the real training loop (``train.loop.train``
with ``--max-iters``), in rounds (fp32, bf16, ... then again), so that load from other processes
on this shared machine hits every variant alike. Per-iteration times include loading the batch;
the first iterations of each run (warm-up) are dropped, and the median is reported.

Which speed-up needs what: bf16 autocast is fast only where the CPU computes bfloat16 natively
(AVX-512 BF16 or AMX; ``--amp auto`` picks it only there, elsewhere FP32); fused Adam and the
FP32 path need nothing special. "reference-like" (FP32, contiguous, Adam's per-tensor loop) is
the reference implementation's set-up rebuilt in our loop; the reference code itself is timed
side by side by the optional reference section (benchmarks/reference.py).

    python -m benchmarks --only train            # the suite's section (3 rounds x 8 iterations)
    python -m benchmarks.train_speed --quick     # standalone: 1 round, reference-like vs default
    python -m benchmarks.train_speed --compile   # also torch.compile (minutes of compiling)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from .common import FACADES, log, write_json
from pix2pix_edge.runtime.machine import cpu_model

# name -> (amp, channels_last, compile, adam_impl). "reference-like" approximates the reference
# implementation's set-up (FP32, contiguous, Adam's per-tensor loop) and is measured side by side,
# so the speed-up holds even when other processes load the machine.
VARIANTS = {
    "reference-like: fp32, for-loop Adam": ("off", "off", False, "for-loop"),
    "fp32": ("off", "off", False, "fused"),
    "fp32 + channels_last": ("off", "on", False, "fused"),
    "bf16 autocast": ("bf16", "off", False, "fused"),
    "bf16 + channels_last": ("bf16", "on", False, "fused"),
    "bf16 autocast + compile": ("bf16", "off", True, "fused"),
}
REFERENCE_LIKE = "reference-like: fp32, for-loop Adam"
TARGET_RATIO = 0.8   # the default must take at most 0.8x the reference-like time


def dataset(tmp: Path, tiny: bool = False) -> Path:
    """The facades pairs when present (and not ``tiny``), else a few random 256x256 pairs."""
    if (FACADES / "train").is_dir() and not tiny:
        return FACADES
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = tmp / "data" / "train"
    out.mkdir(parents=True)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (256, 512, 3), dtype=np.uint8)).save(out / f"{i}.png")
    return tmp / "data"


# --smoke: a tiny U-Net at 64x64 (tests: the plumbing in seconds, the figures mean nothing)
TINY = dict(depth=5, ngf=8, ndf=8, load_size=64, crop_size=64)


def measure(data: Path, tmp: Path, name: str, iters: int, warmup: int, threads: int,
            tiny: bool = False) -> list[float]:
    from pix2pix_edge.train.loop import TrainOptions, train

    amp, cl, comp, adam = VARIANTS[name]
    opts = TrainOptions(data=str(data), run=str(tmp / "run"), amp=amp, channels_last=cl,
                        compile=comp, adam_impl=adam, max_iters=iters + warmup, workers=0 if threads else -1,
                        threads=threads, progress=False, tensorboard=False,
                        log_every=1000, direction="BtoA", **(TINY if tiny else {}))
    summary = train(opts)
    return summary["seconds"][warmup:]


def _loadavg():
    try:
        import os
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="one short round: reference-like, FP32 and the default")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=8, help="timed iterations per run")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)  # train() restores the count it found: keep it here
    from pix2pix_edge.train.loop import TrainOptions, resolve_precision

    # The variant that `--amp auto` / `--channels-last auto` pick on this CPU.
    dtype, cl = resolve_precision(TrainOptions(data=""), torch.device("cpu"))
    default = {(torch.bfloat16, True): "bf16 + channels_last", (torch.bfloat16, False): "bf16 autocast",
               (None, False): "fp32", (None, True): "fp32 + channels_last"}[(dtype, cl)]
    names = [n for n in VARIANTS if args.compile or not VARIANTS[n][2]]
    rounds, iters, warmup = args.rounds, args.iters, 3
    if args.quick or args.smoke:
        names, rounds, iters, warmup = list(dict.fromkeys([REFERENCE_LIKE, "fp32", default])), 1, 1, 1
    times: dict[str, list[float]] = {n: [] for n in names}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="train_speed_") as tmp_s:
        tmp = Path(tmp_s)
        data = dataset(tmp, tiny=args.smoke)
        for r in range(rounds):
            for name in names:
                t = measure(data, tmp, name, iters, warmup, args.threads, tiny=args.smoke)
                times[name] += t
                log(f"train: round {r + 1}/{rounds}  {name:32s} median {statistics.median(t):.3f} s/it")

    ref = statistics.median(times[REFERENCE_LIKE]) if REFERENCE_LIKE in times else None
    rows = []
    print(f"\nunet_256 ngf 64 + basic D, batch 1, 256x256, CPU, {torch.get_num_threads()} threads "
          f"(target: the default <= {TARGET_RATIO}x the reference-like variant measured here)")
    print(f"{'variant':40s} {'median s/it':>11s} {'min':>7s} {'n':>4s} {'vs ref-like':>11s}")
    for name in names:
        t = times[name]
        med = statistics.median(t)
        rows.append({"variant": name, "amp": VARIANTS[name][0], "channels_last": VARIANTS[name][1],
                     "compile": VARIANTS[name][2], "adam_impl": VARIANTS[name][3],
                     "default": name == default, "median_s": round(med, 4), "min_s": round(min(t), 4),
                     "n": len(t), "all_s": [round(x, 4) for x in t],
                     "ratio_to_reference_like": round(med / ref, 3) if ref else None})
        mark = "  <- --amp auto" if name == default else ""
        print(f"{name:40s} {med:11.3f} {min(t):7.3f} {len(t):4d} "
              f"{(med / ref if ref else float('nan')):10.2f}x{mark}")
    auto = statistics.median(times[default]) if default in times else None
    verdict = None
    if auto is not None and ref:
        verdict = auto <= TARGET_RATIO * ref
        print(f"--amp auto on this CPU = {default}: {auto:.3f} s/it; <= {TARGET_RATIO}x "
              f"reference-like {'met' if verdict else 'NOT met'}")
    config = ("unet depth 5 ngf 8, basic D ndf 8, batch 1, 64x64 (smoke)" if args.smoke
              else "unet_256 ngf 64, basic D, batch 1, 286->256")
    result = {"benchmark": "train_speed", "config": config,
              "device": "cpu", "cpu": cpu_model(),
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "data": "facades" if data == FACADES else "random pairs",
              "target_ratio_to_reference_like": TARGET_RATIO, "rounds": rounds,
              "iters_per_run": iters, "warmup_dropped": warmup,
              "auto_resolves_to": {"autocast": str(dtype).replace("torch.", "") if dtype else "fp32",
                                   "channels_last": cl},
              "native_bf16": _native_bf16(),
              "default_variant": default, "variants": rows, "meets_target": verdict,
              "load_average_1min": _loadavg(),
              "wall_s": round(time.perf_counter() - started, 1),
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def _native_bf16() -> bool:
    from pix2pix_edge.train.loop import _cpu_has_native_bf16

    return _cpu_has_native_bf16()


def run(level: str = "full") -> dict:
    """The suite's training section: :func:`main` with the level's flags, into a temporary
    JSON that is read back (the per-iteration lists dropped)."""
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        path = Path(tmp) / "train_speed.json"
        # Full level: every speed option, torch.compile included (it compiles for about a
        # minute per run on 2 cores), in 3 interleaved rounds x 8 timed iterations.
        # Quick and smoke: one torch thread, which shares a busy CPU far better than two.
        args = {"smoke": ["--smoke", "--threads", "1"], "quick": ["--quick", "--threads", "1"]}.get(
            level, ["--rounds", "3", "--iters", "8", "--compile"])
        rc = main(["--json", str(path), *args])
        if rc or not path.is_file():
            return {"error": f"benchmarks/train_speed.py exited with {rc} and wrote no result"}
        data = json.loads(path.read_text(encoding="utf-8"))
    rows = [{k: v for k, v in r.items() if k != "all_s"} for r in data.pop("variants", [])]
    return {"rows": rows, **{k: v for k, v in data.items() if not isinstance(v, (dict, list))},
            "auto_resolves_to": data.get("auto_resolves_to")}


if __name__ == "__main__":
    sys.exit(main())
