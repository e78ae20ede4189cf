"""Generator inference: latency, FPS, GFLOP/s and accuracy per backend, model width and size.

For each U-Net (unet_256, BatchNorm, ``ngf`` in 16 / 32 / 64) and input size, every available
backend runs the same input, interleaved per repetition (benchmarks.common.interleaved):

* ``torch-fp32``   PyTorch eager, FP32, contiguous NCHW (what training code would call);
* ``torch-bf16``   PyTorch eager under CPU autocast to bfloat16 with channels_last (fast only
                   where the CPU has AVX-512 BF16 or AMX; emulated, slowly, elsewhere);
* ``ort-fp32``     ONNX Runtime through the runtime's own backend (runtime.backends, what
                   ``pix2pix run`` uses): CPU provider, all graph optimisations, a thread per core;
* ``ort-fp16``     ONNX Runtime on an FP16 graph (norms kept in FP32). On a CPU this runs through
                   inserted casts (no FP16 convolution on x86): the row is there for its accuracy
                   (PSNR against FP32), not its speed;
* ``ort-int8``     ONNX Runtime on the INT8 Q/DQ graph ``pix2pix export onnx --int8`` writes
                   (export/int8.py: sub-pixel ConvTransposes, output layer and Tanh in float),
                   calibrated on 4 of the benchmark's inputs (benchmarks/int8.py measures it on
                   real calibration data and a trained model);
* ``tensorrt-fp16`` only with an NVIDIA GPU and TensorRT; otherwise listed as skipped, with why.

Inference normalisation: ``running`` (BatchNorm with running statistics; the exporter folds it
into the convolutions) and, in the full run, ``per-image`` (InstanceNorm with BatchNorm's affine
parameters, the reference test.py behaviour) for the FP32 backends.

GFLOP per frame: 2 x multiply-adds of every Conv2d / ConvTranspose2d, counted by forward hooks on
the model itself; a transposed convolution is counted at its *input* resolution (the work it
really does): unet_256 ngf 64 at 256x256 = 6.05 G MACs = 12.1 GFLOP.
Tools that count transposed convolutions at output resolution report 18.1 G MACs instead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .common import FACADES_DIRECTION, facades_pairs, interleaved, log, model_inputs, optional
from pix2pix_edge.export.parity import psnr
from pix2pix_edge.runtime.machine import usable_cpus
from pix2pix_edge.runtime.stats import latency_stats

# ngf x input side per level; reps is an upper bound, budget_s the seconds per (ngf, size) group.
LEVEL_CONFIG: dict[str, dict[str, Any]] = {
    # smoke (tests only): a depth-5 U-Net at 64x64, numbers mean nothing
    "smoke": dict(models=[(4, 64)], depth=5, per_image=False, reps=3, warmup=1, budget_s=1.0),
    "quick": dict(models=[(16, 256)], per_image=False, reps=15, warmup=3, budget_s=6.0),
    "full": dict(models=[(16, 256), (32, 256), (64, 256), (16, 512), (32, 512)],
                 per_image=True, reps=60, warmup=3, budget_s=25.0),
}
DEPTH = 8  # unet_256 (the levels' default)


# --------------------------------------------------------------------------- model facts
def count_macs(model, shape: tuple[int, ...]) -> int:
    """Multiply-adds of all Conv2d / ConvTranspose2d for one forward pass of ``shape`` (NCHW),
    transposed convolutions at input resolution: export/to_onnx.py's counter, the one the
    exporter reports, so every GFLOP figure of the project uses one convention."""
    from pix2pix_edge.export.to_onnx import count_macs as macs

    return macs(model, shape[2], shape[3])


def make_generator(ngf: int, depth: int = DEPTH, seed: int = 0):
    """A BatchNorm U-Net with the paper's init and *calibrated* running statistics.

    Random weights with the default running statistics (mean 0, var 1) would push activations
    out of any sensible range, which makes FP16 accuracy numbers meaningless. A few training-mode
    passes over real (or smooth random) images give the running statistics a trained model has.
    """
    import torch
    from pix2pix_edge.train.models import UNetGenerator, init_weights

    torch.manual_seed(seed)
    g = init_weights(UNetGenerator(depth=depth, ngf=ngf, norm="batch"))
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration passes
    side = 2 ** depth
    g.train()
    with torch.no_grad():
        for i in range(4):
            g(sample_input(side, batch=2, seed=100 + i))
    return g


def sample_input(side: int, batch: int = 1, seed: int = 0):
    """Real facades label maps when the shared data is there (what the model will see; only
    pairs a run trains on, read as the product reads them), else smooth random colours. NCHW
    float32 in [-1, 1]."""
    import torch

    rng = np.random.default_rng(seed)
    pairs = facades_pairs(held_out=False)
    if pairs:
        picks = [pairs[int(rng.integers(len(pairs)))] for _ in range(batch)]
        return torch.from_numpy(model_inputs(picks, side, FACADES_DIRECTION))
    import cv2

    imgs = [cv2.resize(rng.uniform(-1, 1, size=(8, 8, 3)).astype(np.float32), (side, side),
                       interpolation=cv2.INTER_CUBIC).clip(-1, 1) for _ in range(batch)]
    return torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2).copy())


# --------------------------------------------------------------------------- ONNX
def export_onnx(model, path: Path, side: int) -> Path:
    """Export the way ``pix2pix export onnx`` does (export/to_onnx.py: BatchNorm folded into the
    convolutions for ``running``, onnxslim, metadata), static 1x3xSxS input."""
    import torch
    from pix2pix_edge.export.to_onnx import export_model
    from pix2pix_edge.runtime.model_info import ModelInfo

    c = model.config
    norm = "per-image" if any(isinstance(m, torch.nn.InstanceNorm2d) for m in model.modules()) \
        else "running"
    # The metadata lets TensorRT and the runtime open the file like a user's export.
    info = ModelInfo(height=side, width=side, multiple=2 ** c["depth"], depth=c["depth"],
                     ngf=c["ngf"], norm_mode=norm, source_run="benchmarks")
    return Path(export_model(model, path, height=side, width=side, info=info))


def fp16_onnx(src: Path, dst: Path) -> Path:
    """The FP16 graph ``pix2pix export onnx --fp16`` writes (export/fp16.py): FP32 I/O,
    normalisations and reductions kept in FP32 (InstanceNorm in FP16 loses accuracy)."""
    from pix2pix_edge.export.fp16 import convert_file

    return Path(convert_file(src, dst))


def ort_session(path: Path, threads: int):
    """The ONNX Runtime CPU backend exactly as ``pix2pix run`` opens it (runtime.backends):
    all graph optimisations, one intra-op thread per core. Call ``.infer(batch)``.

    (Its idle pool threads may spin after a run; in the interleaved timing the untimed
    ``settle`` call that precedes every timed call absorbs that, see common.interleaved.)"""
    from pix2pix_edge.runtime.backends import open_backend

    return open_backend(path, "onnxruntime", providers=["cpu"], threads=threads)


def tensorrt_status() -> str | None:
    """None when TensorRT FP16 could run here, else why it cannot."""
    try:
        import torch
        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if not has_gpu:
        return "no NVIDIA GPU on this machine (TensorRT FP16 needs one; run on a Jetson / GPU host)"
    _, why = optional("tensorrt")
    if why:
        return "TensorRT is not installed (pip install 'pix2pix-edge[trt-cu12]' or [trt-cu13])"
    return None


# --------------------------------------------------------------------------- one group
def _backends(model_running, model_per_image, side: int, workdir: Path, threads: int,
              per_image: bool) -> tuple[dict[str, dict], list[dict]]:
    """name -> {"run": callable, "out": callable -> np.ndarray, meta...}; plus skipped rows."""
    import torch

    x = sample_input(side, seed=7)
    x_np = x.numpy()
    x_cl = x.contiguous(memory_format=torch.channels_last)
    out: dict[str, dict] = {}
    skipped: list[dict] = []

    def torch_fp32(model):
        def run():
            with torch.inference_mode():
                return model(x)
        return run

    m_cl = None
    try:
        import copy
        m_cl = copy.deepcopy(model_running).to(memory_format=torch.channels_last)

        def bf16():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return m_cl(x_cl)
        bf16()  # fails here if this CPU / build has no bf16 kernels
    except Exception as e:  # noqa: BLE001 - any failure means "not available here"
        skipped.append({"backend": "torch-bf16", "reason": f"bf16 autocast failed: {e}"[:200]})
        bf16 = None

    out["torch-fp32"] = dict(run=torch_fp32(model_running), backend="torch-fp32", precision="fp32",
                             norm_mode="running")
    if bf16 is not None:
        out["torch-bf16"] = dict(run=bf16, backend="torch-bf16", precision="bf16",
                                 norm_mode="running", note="autocast + channels_last")

    ort, why = optional("onnxruntime")
    if ort is None:
        skipped.append({"backend": "ort-*", "reason": why})
    else:
        log(f"  exporting ONNX FP32 / FP16 / INT8 at {side}x{side}")
        p32 = export_onnx(model_running, workdir / f"g{side}.onnx", side)
        s32 = ort_session(p32, threads)
        out["ort-fp32"] = dict(run=lambda: s32.infer(x_np), backend="ort-fp32",
                               precision="fp32", norm_mode="running")
        try:
            p16 = fp16_onnx(p32, workdir / f"g{side}_fp16.onnx")
            s16 = ort_session(p16, threads)
            out["ort-fp16"] = dict(run=lambda: s16.infer(x_np), backend="ort-fp16",
                                   precision="fp16", norm_mode="running",
                                   note="CPU runs FP16 through casts: accuracy check, not speed")
        except Exception as e:  # noqa: BLE001
            skipped.append({"backend": "ort-fp16", "reason": f"FP16 conversion failed: {e}"[:200]})
        try:
            from pix2pix_edge.export import int8 as q8

            p8 = workdir / f"g{side}_int8.onnx"
            log("  quantizing to INT8 (calibration on 4 inputs)")
            calib = np.concatenate([sample_input(side, seed=s).numpy() for s in range(4)])
            facts = q8.quantize(p32, p8, calib, subpixel=True, log=lambda *a: None)
            q8.set_metadata(p8, facts, "4 benchmark inputs")
            s8 = ort_session(p8, threads)
            out["ort-int8"] = dict(run=lambda: s8.infer(x_np), backend="ort-int8",
                                   precision="int8", norm_mode="running",
                                   note="Q/DQ, sub-pixel ConvTransposes, output layer in float")
        except Exception as e:  # noqa: BLE001 - report, do not hide
            skipped.append({"backend": "ort-int8", "reason": f"INT8 quantization failed: {e}"[:200]})
        if per_image:
            pp = export_onnx(model_per_image, workdir / f"g{side}_pi.onnx", side)
            sp = ort_session(pp, threads)
            out["ort-fp32 per-image"] = dict(run=lambda: sp.infer(x_np),
                                             backend="ort-fp32", precision="fp32",
                                             norm_mode="per-image")
    if per_image:
        out["torch-fp32 per-image"] = dict(run=torch_fp32(model_per_image), backend="torch-fp32",
                                           precision="fp32", norm_mode="per-image")
    why_trt = tensorrt_status()
    if why_trt:
        skipped.append({"backend": "tensorrt-fp16", "reason": why_trt})
    elif "ort-fp16" in out:
        # Untested on this project's CPU machines: built the way `pix2pix export trt` builds it
        # and run through the runtime's own TensorRT backend.
        try:
            from pix2pix_edge.export.to_tensorrt import build_engine
            from pix2pix_edge.runtime.backends import open_backend

            engine = workdir / f"g{side}_fp16.engine"
            build_engine(p16, engine, log=lambda *a, **k: None)
            trt = open_backend(engine, "tensorrt")
            out["tensorrt-fp16"] = dict(run=lambda: trt.infer(x_np), backend="tensorrt-fp16",
                                        precision="fp16", norm_mode="running",
                                        note=f"GPU: {trt.provider}")
        except Exception as e:  # noqa: BLE001 - report, do not hide
            skipped.append({"backend": "tensorrt-fp16", "reason": f"failed: {e}"[:300]})
    return out, skipped


def _sig(x: float, digits: int = 4) -> float:
    """Round to significant digits (tiny test models have GFLOP counts like 0.0021)."""
    return float(f"{x:.{digits}g}")


def _as_numpy(y) -> np.ndarray:
    if hasattr(y, "detach"):
        return y.detach().float().numpy()
    return np.asarray(y, dtype=np.float32)


def measure_group(ngf: int, side: int, cfg: dict, threads: int) -> tuple[list[dict], list[dict]]:
    """All backends for one (ngf, side), timed side by side. Returns (rows, skipped)."""
    import torch
    from pix2pix_edge.train.models import count_parameters, inference_copy

    depth = cfg.get("depth", DEPTH)
    g = make_generator(ngf, depth)
    running = inference_copy(g, "running")
    per_image = inference_copy(g, "per-image") if cfg["per_image"] else None
    params = count_parameters(running)
    macs = count_macs(running, (1, 3, side, side))
    with tempfile.TemporaryDirectory(prefix="bench-inf-") as tmp:
        backends, skipped = _backends(running, per_image, side, Path(tmp), threads,
                                      cfg["per_image"])
        # Accuracy: each backend's output against the FP32 PyTorch output of the same norm mode.
        refs = {"running": _as_numpy(backends["torch-fp32"]["run"]())}
        if "torch-fp32 per-image" in backends:
            refs["per-image"] = _as_numpy(backends["torch-fp32 per-image"]["run"]())
        log(f"  timing {len(backends)} backends interleaved (at most {cfg['reps']} rounds, "
            f"{cfg['budget_s']:.0f} s)")
        samples = interleaved({k: b["run"] for k, b in backends.items()}, reps=cfg["reps"],
                              warmup=cfg["warmup"], budget_s=cfg["budget_s"])
        rows = []
        for key, b in backends.items():
            y = _as_numpy(b["run"]())
            ref = refs.get(b["norm_mode"])
            stats = latency_stats(samples[key])
            gflop = 2 * macs / 1e9
            rows.append({
                "model": f"unet_{2 ** depth} ngf{ngf}", "ngf": ngf, "depth": depth, "size": side,
                "backend": b["backend"], "precision": b["precision"], "norm_mode": b["norm_mode"],
                "params": params, "gmacs": _sig(macs / 1e9), "gflop": _sig(gflop),
                **stats,
                "gflop_per_s": _sig(gflop / (stats["p50_ms"] / 1e3)),
                # The PyTorch FP32 rows are the references themselves: no self-comparison.
                "psnr_vs_fp32_db": None if ref is None or key.startswith("torch-fp32")
                else round(min(psnr(y, ref), 999.0), 1),
                "max_abs_err": None if ref is None or key.startswith("torch-fp32")
                else float(np.abs(y - ref).max()),
                "note": b.get("note", ""),
            })
        del backends
    del g, running, per_image
    torch.set_num_threads(threads)
    return rows, skipped


def matmul_peak(n: int = 2048, seconds: float = 1.0) -> dict[str, float]:
    """This machine's practical compute limit: GFLOP/s of an n x n matmul in FP32 and BF16, to put
    the model numbers in perspective."""
    import time

    import torch

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        try:
            a = torch.randn(n, n).to(dtype)
            b = torch.randn(n, n).to(dtype)
            a @ b
            times = []
            t_end = time.perf_counter() + seconds
            while time.perf_counter() < t_end or len(times) < 3:
                t0 = time.perf_counter()
                a @ b
                times.append(time.perf_counter() - t0)
            out[f"{name}_gflop_per_s"] = round(2 * n**3 / float(np.median(times)) / 1e9, 1)
        except Exception:  # noqa: BLE001 - a CPU without bf16 matmul: leave it out
            out[f"{name}_gflop_per_s"] = None
    return out


def run(level: str = "full") -> dict[str, Any]:
    """The inference section of the suite (see the module docstring)."""
    import torch

    cfg = LEVEL_CONFIG[level]
    threads = usable_cpus()
    torch.set_num_threads(threads)
    peak = matmul_peak(512 if level == "smoke" else 2048, 0.2 if level == "smoke" else 1.5)
    log(f"inference: matmul peak {peak}")
    rows: list[dict] = []
    skipped: dict[str, str] = {}
    for ngf, side in cfg["models"]:
        log(f"inference: unet_{2 ** cfg.get('depth', DEPTH)} ngf {ngf} at {side}x{side}")
        r, s = measure_group(ngf, side, cfg, threads)
        rows += r
        for item in s:
            skipped.setdefault(item["backend"], item["reason"])
        for row in r:
            log(f"  {row['backend']:<11} {row['norm_mode']:<9} p50 {row['p50_ms']:8.2f} ms "
                f"({row['gflop_per_s']:6.1f} GFLOP/s, n={row['n']}, "
                f"PSNR vs fp32 {row['psnr_vs_fp32_db']})")
    return {
        "config": {"level": level, "threads": threads, "depth": cfg.get("depth", DEPTH), "batch": 1,
                   "models": cfg["models"], "flop_convention":
                   "GFLOP = 2 x multiply-adds of Conv2d/ConvTranspose2d; transposed convs counted "
                   "at input resolution (unet_256 ngf64 256x256 = 6.05 G MACs = 12.1 GFLOP)"},
        "machine_peak": peak,
        "rows": rows,
        "skipped": [{"backend": k, "reason": v} for k, v in skipped.items()],
    }


if __name__ == "__main__":  # python -m benchmarks.inference [level]
    import json
    import sys

    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "quick"), indent=1))
