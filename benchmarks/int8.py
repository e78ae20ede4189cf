"""INT8 vs FP32 in ONNX Runtime (CPU): throughput, accuracy, held-out quality, machine peaks.

Side by side in one run, interleaved per repetition (benchmarks.common.interleaved), medians:

* **speed** per generator (unet_256 = depth 8 at 256x256, ngf 64 = the paper's and ngf 16 =
  the smallest edge width; BatchNorm with running statistics folded, like the inference
  section; random weights with real running statistics): ``ort-fp32`` (the plain export),
  ``ort-fp32-subpixel`` (stride-2 ConvTransposes as 4 Conv + DepthToSpace, export/subpixel.py),
  ``ort-int8`` (what ``pix2pix export onnx --int8`` writes: sub-pixel form, INT8 Q/DQ, the
  output layer in float) and ``ort-int8-no-subpixel`` (ConvTransposes left in float, to show
  what the rewrite buys). Calibration: real facades inputs (the held-out last 40 excluded).
  INT8 vs FP32 PSNR on held-out inputs, plus the SNR (random weights give small outputs, so
  PSNR over the [-1, 1] range alone would flatter them).
* **held-out quality** of a model trained on the real facades (``run``: a ``pix2pix train`` run
  directory trained with ``--holdout-last 40``; without one, a small model is trained here):
  PSNR / SSIM against the ground truth of the 40 held-out pairs, FP32 vs INT8, both
  normalisation modes, and their latency at the trained size.
* **peaks**: one large convolution (256 -> 256 channels, 3x3, 64x64) through ONNX Runtime in
  FP32 and as a fused QLinearConv (INT8), a 1024^3 MatMul in FP32 and QLinearMatMul (INT8), and
  PyTorch matmuls in FP32 (2048^2) and BF16 (1024^2): the distance of the generators to this CPU's limit.

Entry point ``run(level, **opts) -> dict`` (``python -m benchmarks --only int8``); as a script:
``python -m benchmarks.int8 [--quick] [--run RUN] [--out FILE]`` prints the tables (and writes
the JSON to FILE).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import (FACADES, FACADES_DIRECTION, FACADES_HELD_OUT, facades_pairs, held_out_dataset,
                     interleaved, log, machine_info, markdown_table, model_inputs, spread,
                     write_json)
from pix2pix_edge.runtime.machine import load_average as loadavg
from pix2pix_edge.runtime.machine import usable_cpus
from pix2pix_edge.runtime.stats import latency_stats as summarize

HOLDOUT = FACADES_HELD_OUT.last
TARGETS = {"speedup": 1.8, "psnr_vs_fp32_db": 30.0, "heldout_psnr_drop_db": 0.3,
           "heldout_ssim_drop": 0.01}
LEVEL_CONFIG: dict[str, dict[str, Any]] = {
    # smoke: proves the plumbing, numbers mean nothing
    "smoke": dict(models=[(5, 4, 64)], reps=3, budget_s=2.0, calib=4, quality_n=2, peaks=False,
                  train_iters=2, heldout_n=4),
    "quick": dict(models=[(8, 16, 256)], reps=8, budget_s=8.0, calib=8, quality_n=4,
                  peaks=True, train_iters=20, heldout_n=10),
    "full": dict(models=[(8, 64, 256), (8, 16, 256)], reps=30, budget_s=120.0, calib=32,
                 quality_n=8, peaks=True, train_iters=1500, heldout_n=HOLDOUT),
}


# --------------------------------------------------------------------------- inputs
def facades_inputs(side: int, n: int, held_out: bool) -> np.ndarray | None:
    """Label maps (the BtoA input half) of the facades train split, ``n`` spread evenly over the
    pairs a run trains on (calibration: held-out pairs excluded) or over the held-out ones;
    None if the dataset is absent."""
    pairs = facades_pairs(held_out)
    return model_inputs(spread(pairs, n), side, FACADES_DIRECTION) if pairs else None


def _inputs(side: int, n: int, held_out: bool, seed: int) -> tuple[np.ndarray, str]:
    x = facades_inputs(side, n, held_out)
    if x is not None:
        return x, f"facades label maps ({'held-out' if held_out else 'training'} pairs)"
    from pix2pix_edge.export.to_onnx import synthetic_images

    return synthetic_images(n, side, side, seed=seed), "synthetic images (facades absent)"


def snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(ref, np.float64) - out) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(np.var(ref) / mse))


# --------------------------------------------------------------------------- speed
def _variants(depth: int, ngf: int, side: int, calib: np.ndarray, workdir: Path) -> dict:
    """The four ONNX files of one random-weight generator."""
    import onnx
    import torch

    from pix2pix_edge.export import int8, subpixel
    from pix2pix_edge.export.to_onnx import export_model
    from pix2pix_edge.train.models import UNetGenerator, inference_copy, init_weights

    torch.manual_seed(0)
    g = init_weights(UNetGenerator(depth=depth, ngf=ngf, norm="batch")).train()
    with torch.no_grad():  # real running statistics
        for _ in range(2):
            g(torch.randn(2, 3, side, side))
    base = workdir / f"d{depth}_g{ngf}_{side}"
    paths = {"ort-fp32": export_model(inference_copy(g, "running"), f"{base}_fp32.onnx",
                                      height=side, width=side)}
    sub, _ = subpixel.rewrite(onnx.load(str(paths["ort-fp32"])))
    paths["ort-fp32-subpixel"] = Path(f"{base}_fp32_sub.onnx")
    onnx.save(sub, str(paths["ort-fp32-subpixel"]))
    quiet = lambda s: None  # noqa: E731
    t0 = time.perf_counter()
    facts = int8.quantize(paths["ort-fp32"], f"{base}_int8.onnx", calib, subpixel=True, log=quiet)
    quant_s = time.perf_counter() - t0
    paths["ort-int8"] = Path(f"{base}_int8.onnx")
    int8.quantize(paths["ort-fp32"], f"{base}_int8_nosub.onnx", calib, subpixel=False, log=quiet)
    paths["ort-int8-no-subpixel"] = Path(f"{base}_int8_nosub.onnx")
    return {"paths": paths, "facts": facts, "quantize_s": round(quant_s, 1),
            "params": sum(p.numel() for p in g.parameters())}


def bench_speed(depth: int, ngf: int, side: int, cfg: dict, workdir: Path) -> dict:
    from pix2pix_edge.export.parity import ort_session
    from pix2pix_edge.export.to_onnx import count_macs
    from pix2pix_edge.train.models import UNetGenerator

    calib, calib_src = _inputs(side, cfg["calib"], held_out=False, seed=1)
    log(f"int8: unet depth {depth} ngf {ngf} at {side}: exporting, rewriting, quantizing "
        f"({len(calib)} calibration images)")
    v = _variants(depth, ngf, side, calib, workdir)
    sessions = {name: ort_session(str(p)) for name, p in v["paths"].items()}
    x = calib[:1]
    fns = {name: (lambda s=s: s.run(None, {"input": x})[0]) for name, s in sessions.items()}
    load_before = loadavg()
    samples = interleaved(fns, reps=cfg["reps"], warmup=2, budget_s=cfg["budget_s"])
    stats = {name: summarize(s) for name, s in samples.items()}
    # accuracy on held-out inputs
    xs, q_src = _inputs(side, cfg["quality_n"], held_out=True, seed=2)
    ref = [sessions["ort-fp32"].run(None, {"input": xi[None]})[0] for xi in xs]
    acc = {}
    for name in sessions:
        outs = [sessions[name].run(None, {"input": xi[None]})[0] for xi in xs]
        psnrs = [10 * np.log10(4.0 / max(np.mean((r - o) ** 2), 1e-30)) for r, o in zip(ref, outs)]
        acc[name] = {"psnr_vs_fp32_db_min": round(float(min(psnrs)), 2),
                     "psnr_vs_fp32_db_mean": round(float(np.mean(psnrs)), 2),
                     "snr_vs_fp32_db": round(float(np.mean([snr_db(r, o) for r, o in
                                                             zip(ref, outs)])), 2),
                     "max_abs_vs_fp32": float(max(np.abs(r - o).max() for r, o in zip(ref, outs)))}
    macs = count_macs(UNetGenerator(depth=depth, ngf=ngf, norm="batch").eval(), side, side)
    fp32_ms = stats["ort-fp32"]["p50_ms"]
    rows = []
    for name in sessions:
        s = stats[name]
        rows.append({"model": f"unet depth {depth} ngf {ngf}", "size": side, "variant": name,
                     "p50_ms": s["p50_ms"], "p90_ms": s["p90_ms"], "fps": s["fps"], "n": s["n"],
                     "speedup_vs_fp32": round(fp32_ms / s["p50_ms"], 3),
                     "gmac_per_s": round(macs / (s["p50_ms"] * 1e6), 1), **acc[name]})
    int8_row = next(r for r in rows if r["variant"] == "ort-int8")
    return {"model": f"unet depth {depth} ngf {ngf}", "size": side, "params": v["params"],
            "gmacs": round(macs / 1e9, 3), "calibration": f"{len(calib)} {calib_src}",
            "quality_inputs": f"{len(xs)} {q_src}", "quantize_s": v["quantize_s"],
            "int8_float_layers": v["facts"]["float_layers"],
            "int8_quantized_layers": v["facts"]["quantized_layers"],
            "load_before": load_before, "load_after": loadavg(), "rows": rows,
            "int8_speedup": int8_row["speedup_vs_fp32"],
            "subpixel_fp32_speedup": next(r["speedup_vs_fp32"] for r in rows
                                          if r["variant"] == "ort-fp32-subpixel"),
            "meets_speedup_target": int8_row["speedup_vs_fp32"] >= TARGETS["speedup"],
            "meets_psnr_target": int8_row["psnr_vs_fp32_db_min"] >= TARGETS["psnr_vs_fp32_db"]}


# --------------------------------------------------------------------------- held-out quality
def _train_small(workdir: Path, iters: int) -> Path:
    """A facades labels -> photo model like the quality section's (unet_128 ngf 16)."""
    import torch

    from pix2pix_edge.train.loop import TrainOptions, train

    torch.set_num_threads(1)
    run = workdir / "facades_ngf16"
    train(TrainOptions(data=str(FACADES), run=str(run), direction="BtoA", depth=7,
                       load_size=143, crop_size=128, ngf=16, ndf=32, holdout_last=HOLDOUT,
                       max_iters=iters, log_every=50, save_every=1000, progress=False,
                       tensorboard=False, seed=0, threads=1))
    return run


def bench_heldout(run: Path | None, cfg: dict, workdir: Path) -> dict:
    if not (FACADES / "train").is_dir():
        return {"skipped": f"shared facades dataset not found at {FACADES}"}
    import torch

    from pix2pix_edge.export.parity import ort_session
    from pix2pix_edge.export.to_onnx import export_run
    from pix2pix_edge.runtime.contract import INFERENCE_NORMS, held_out
    from pix2pix_edge.train.evaluate import psnr_per_image, ssim_per_image, to_unit

    trained_here = run is None
    if run is None:
        log(f"int8: training a small facades model ({cfg['train_iters']} iterations)")
        run = _train_small(workdir, cfg["train_iters"])
    run = Path(run)
    import json
    options = json.loads((run / "config.json").read_text()).get("options", {})
    held = held_out(run)
    if not held.any:
        return {"skipped": f"{run} held nothing out (train it with --holdout-last {HOLDOUT})"}
    side = int(options.get("crop_size", 128))
    ds = held_out_dataset(held, options.get("direction", FACADES_DIRECTION), side,
                          cfg["heldout_n"], FACADES)
    A = torch.stack([ds[i]["A"] for i in range(len(ds))]).numpy()
    B = torch.stack([ds[i]["B"] for i in range(len(ds))])
    quiet = lambda s: None  # noqa: E731
    out: dict[str, Any] = {"run": str(run), "trained_here": trained_here,
                           "iterations": _iterations(run), "model": _model(options),
                           "held_out": f"{held.describe()} of facades/train (natural order), "
                                       "as the run recorded",
                           "n": len(ds), "size": side, "modes": {}}
    fns = {}
    for mode in INFERENCE_NORMS:
        f32 = export_run(run, workdir / f"trained_{mode}_fp32.onnx", norm_mode=mode, log=quiet)
        f8 = export_run(run, workdir / f"trained_{mode}_int8.onnx", norm_mode=mode, int8=True,
                        calib=FACADES, calib_images=cfg["calib"], log=quiet)
        res = {"calibration": f8["int8"]["calibration"],
               "export_psnr_int8_vs_fp32_db": round(f8["parity_int8"]["psnr_db"], 2),
               "float_layers": len(f8["int8"]["float_layers"])}
        outs = {}
        for prec, report in (("fp32", f32), ("int8", f8)):
            sess = ort_session(report["output"])
            y = np.concatenate([sess.run(None, {"input": a[None]})[0] for a in A])
            outs[prec] = y
            u, t = to_unit(torch.from_numpy(y)), to_unit(B)
            res[f"{prec}_psnr"] = round(float(psnr_per_image(u, t).mean()), 3)
            res[f"{prec}_ssim"] = round(float(ssim_per_image(u, t).mean()), 4)
            fns[f"{mode} {prec}"] = (lambda s=sess, a=A[:1]: s.run(None, {"input": a})[0])
        d = outs["int8"].astype(np.float64) - outs["fp32"]
        res["psnr_int8_vs_fp32_db"] = round(float(np.mean(
            [10 * np.log10(4 / max(np.mean(e ** 2), 1e-30)) for e in d])), 2)
        res["psnr_drop_db"] = round(res["fp32_psnr"] - res["int8_psnr"], 3)
        res["ssim_drop"] = round(res["fp32_ssim"] - res["int8_ssim"], 4)
        res["within_target"] = (res["psnr_drop_db"] <= TARGETS["heldout_psnr_drop_db"]
                                and res["ssim_drop"] <= TARGETS["heldout_ssim_drop"])
        out["modes"][mode] = res
    samples = interleaved(fns, reps=cfg["reps"], warmup=2, budget_s=cfg["budget_s"] / 3)
    for mode, res in out["modes"].items():
        a, b = summarize(samples[f"{mode} fp32"]), summarize(samples[f"{mode} int8"])
        res.update(fp32_ms=a["p50_ms"], int8_ms=b["p50_ms"],
                   speedup=round(a["p50_ms"] / b["p50_ms"], 3))
    out["load_after"] = loadavg()
    return out


def _iterations(run: Path) -> int | None:
    import csv

    try:
        rows = list(csv.DictReader(open(run / "log.csv")))
        return int(rows[-1]["iteration"]) if rows else None
    except (OSError, KeyError, ValueError):
        return None


def _model(o: dict) -> str:
    return (f"unet depth {o.get('depth')} ngf {o.get('ngf')}, D ndf {o.get('ndf')}, "
            f"crop {o.get('crop_size')} (load {o.get('load_size')}), batch {o.get('batch_size')}")


# --------------------------------------------------------------------------- peaks
def _save_graph(graph, path: Path) -> Path:
    """A one-graph model at opset 17 / IR 8, saved to ``path``."""
    import onnx
    from onnx import helper

    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              str(path))
    return path


def _conv_models(workdir: Path, c: int = 256, hw: int = 64) -> tuple[Path, Path, int]:
    """One big 3x3 convolution as FP32 and as INT8 Q/DQ (fused to QLinearConv by ORT)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = (rng.normal(size=(c, c, 3, 3)) * 0.02).astype(np.float32)
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, c, hw, hw])  # noqa: E731
    conv = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    g32 = helper.make_graph([conv], "conv", [vi("x")], [vi("y")], [numpy_helper.from_array(w, "w")])
    p32 = _save_graph(g32, workdir / "peak_conv_fp32.onnx")
    ws = np.abs(w).reshape(c, -1).max(1) / 127
    wq = np.round(w / ws[:, None, None, None]).astype(np.int8)
    inits = [numpy_helper.from_array(wq, "wq"), numpy_helper.from_array(ws.astype(np.float32), "ws"),
             numpy_helper.from_array(np.zeros(c, np.int8), "wz"),
             numpy_helper.from_array(np.array(0.02, np.float32), "s"),
             numpy_helper.from_array(np.array(128, np.uint8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
             helper.make_node("Conv", ["xd", "wd"], ["yc"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             helper.make_node("QuantizeLinear", ["yc", "s", "z"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"])]
    g8 = helper.make_graph(nodes, "conv8", [vi("x")], [vi("y")], inits)
    p8 = _save_graph(g8, workdir / "peak_conv_int8.onnx")
    return p32, p8, c * c * 9 * hw * hw


def _matmul_models(workdir: Path, n: int = 1024) -> tuple[Path, Path, int]:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    b = rng.normal(size=(n, n)).astype(np.float32)
    vi = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n])  # noqa: E731
    g32 = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "mm", [vi("a")],
                            [vi("y")], [numpy_helper.from_array(b, "b")])
    p32 = _save_graph(g32, workdir / "peak_mm_fp32.onnx")
    bs = float(np.abs(b).max() / 127)
    inits = [numpy_helper.from_array(np.round(b / bs).astype(np.int8), "bq"),
             numpy_helper.from_array(np.array(bs, np.float32), "bs"),
             numpy_helper.from_array(np.array(0, np.int8), "bz"),
             numpy_helper.from_array(np.array(0.03, np.float32), "s"),
             numpy_helper.from_array(np.array(128, np.uint8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["a", "s", "z"], ["aq"]),
             helper.make_node("DequantizeLinear", ["aq", "s", "z"], ["ad"]),
             helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"]),
             helper.make_node("MatMul", ["ad", "bd"], ["ym"]),
             helper.make_node("QuantizeLinear", ["ym", "s", "z"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"])]
    g8 = helper.make_graph(nodes, "mm8", [vi("a")], [vi("y")], inits)
    p8 = _save_graph(g8, workdir / "peak_mm_int8.onnx")
    return p32, p8, n * n * n


def bench_peaks(cfg: dict, workdir: Path) -> dict:
    import torch

    from pix2pix_edge.export.parity import ort_session

    c32, c8, conv_macs = _conv_models(workdir)
    m32, m8, mm_macs = _matmul_models(workdir)
    xc = (np.random.default_rng(2).random((1, 256, 64, 64), np.float32) * 2 - 1)
    xm = (np.random.default_rng(3).random((1024, 1024), np.float32) * 2 - 1)
    s = {k: ort_session(str(p)) for k, p in (("c32", c32), ("c8", c8), ("m32", m32), ("m8", m8))}
    ta = torch.randn(2048, 2048)
    tb = torch.randn(2048, 2048)
    # BF16 at 1024^2: without native BF16 (AVX2-only CPUs) torch emulates it, ~100x slower
    ha, hb = torch.randn(1024, 1024).bfloat16(), torch.randn(1024, 1024).bfloat16()
    fns = {"ort conv fp32": lambda: s["c32"].run(None, {"x": xc}),
           "ort conv int8 (QLinearConv)": lambda: s["c8"].run(None, {"x": xc}),
           "ort matmul fp32": lambda: s["m32"].run(None, {"a": xm}),
           "ort matmul int8 (QLinearMatMul)": lambda: s["m8"].run(None, {"a": xm}),
           "torch matmul fp32": lambda: torch.mm(ta, tb),
           "torch matmul bf16": lambda: torch.mm(ha, hb)}
    macs = {"ort conv fp32": conv_macs, "ort conv int8 (QLinearConv)": conv_macs,
            "ort matmul fp32": mm_macs, "ort matmul int8 (QLinearMatMul)": mm_macs,
            "torch matmul fp32": 2048 ** 3, "torch matmul bf16": 1024 ** 3}
    with torch.inference_mode():
        samples = interleaved(fns, reps=max(3, cfg["reps"] // 4), warmup=1,
                              budget_s=cfg["budget_s"] / 4)
    rows = []
    for name, t in samples.items():
        st = summarize(t)
        rows.append({"kernel": name, "p50_ms": st["p50_ms"], "n": st["n"],
                     "gop_per_s": round(2 * macs[name] / (st["p50_ms"] * 1e6), 1)})
    return {"rows": rows, "torch_threads": torch.get_num_threads(), "load_after": loadavg(),
            "note": "GOP/s = 2 x multiply-adds / median time; ORT sessions as in the speed rows "
                    "(all cores, no spinning)"}


# --------------------------------------------------------------------------- entry
def run(level: str = "full", trained_run: str | Path | None = None,
        out: str | Path | None = None) -> dict[str, Any]:
    """The INT8 section: speed per generator, held-out quality of a trained model, peaks."""
    for module in ("onnxruntime", "onnx", "torch"):
        try:
            __import__(module)
        except ImportError:
            return {"skipped": f"needs the Python package {module!r}"}
    cfg = LEVEL_CONFIG[level]
    result: dict[str, Any] = {"benchmark": "int8", "level": level, "cores": usable_cpus(),
                              "targets": TARGETS, "load_start": loadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as tmp:
        workdir = Path(tmp)
        def save():  # after every part, so an interrupted run keeps what was measured
            result["rows"] = [r for s in result.get("speed", []) for r in s["rows"]]
            if out:
                write_json(out, {"machine": machine_info(), **result})

        result["speed"] = []
        for d, g, side in cfg["models"]:
            result["speed"].append(bench_speed(d, g, side, cfg, workdir))
            save()
        if level == "smoke":
            result["heldout"] = {"skipped": "not run at smoke level (needs a trained model)"}
        else:
            log("int8: held-out quality of the trained model, FP32 vs INT8")
            result["heldout"] = bench_heldout(Path(trained_run) if trained_run else None, cfg,
                                              workdir)
            save()
        if cfg["peaks"]:
            log("int8: machine peaks (big Conv / MatMul, FP32 vs INT8; torch FP32 vs BF16)")
            result["peaks"] = bench_peaks(cfg, workdir)
    result["load_end"] = loadavg()
    save()
    return result


SPEED_COLUMNS = [("model", "model", ""), ("variant", "variant", ""), ("p50_ms", "p50 ms", ".2f"),
                 ("speedup_vs_fp32", "vs FP32", ".2f"), ("gmac_per_s", "GMAC/s", ".1f"),
                 ("psnr_vs_fp32_db_min", "PSNR vs FP32 dB (min)", ".1f"),
                 ("snr_vs_fp32_db", "SNR vs FP32 dB", ".1f"), ("n", "runs", "d")]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="ngf 16 only, fewer repetitions")
    ap.add_argument("--run", type=Path, default=None,
                    help="a facades run trained with --holdout-last 40 (default: train one here)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    result = run("quick" if args.quick else "full", trained_run=args.run, out=args.out)
    print(markdown_table(result["rows"], SPEED_COLUMNS))
    if isinstance(result.get("heldout"), dict) and "modes" in result["heldout"]:
        print(result["heldout"])
    if "peaks" in result:
        print(markdown_table(result["peaks"]["rows"], [("kernel", "kernel", ""),
                                                       ("p50_ms", "p50 ms", ".2f"),
                                                       ("gop_per_s", "GOP/s", ".1f")]))
    if args.out:
        log(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
