"""On a GPU, the user's paths themselves (marked ``gpu``; skipped where the driver sees no GPU).

* An FP16 engine built by ``pix2pix export trt`` in one process (strongly typed on TensorRT 10+)
  and loaded in another (a fresh process: the plugin registry starts empty), inferred from a
  worker thread as the pipeline does, on the device the user names; its precision read back
  from the engine (an FP16 engine holds half the weight bytes of the FP32 one) and its record.
* ONNX Runtime's CUDA provider actually in use when asked for.
* CUDA training for a few iterations with bf16, and fp16 with the GradScaler, each resumed; and
  a bf16 run resumed with --amp fp16 (the scaler starts clean).

Missing pieces on a GPU host (a CPU build of torch, no TensorRT, the CPU build of onnxruntime)
are failures or skips that name what to install; ``make test-gpu`` (scripts/gpu_check.py) fails
when every gpu test was skipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import gpu_count

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.gpu


def _device() -> int:
    """The GPU the tests name: the last one (so --device 1 is tested where there are two)."""
    return max(0, gpu_count() - 1)


def _pix2pix(*args, timeout=600):
    res = subprocess.run([sys.executable, "-m", "pix2pix_edge.runtime.cli", *map(str, args)],
                         capture_output=True, text=True, cwd=REPO, timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def export_test_model(path: Path) -> Path:
    """A per-image generator big enough that its weights dominate the engine (depth 6, ngf 32),
    exported by the product's exporter (FP32, static 64x64, metadata). Without onnxslim
    (simplify=False): a bare GPU box often lacks it, and the engine build does not need it."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from pix2pix_edge.export.to_onnx import export_model, make_info
    from pix2pix_edge.train.models import UNetGenerator, inference_copy, init_weights

    torch.manual_seed(0)
    g = inference_copy(init_weights(UNetGenerator(depth=6, ngf=32)), "per-image")
    info = make_info(g.config, {}, height=64, width=64, dynamic=False, norm_mode="per-image",
                     source="gpu-test")
    with torch.no_grad():
        return export_model(g, path, height=64, width=64, info=info, simplify=False)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    return export_test_model(tmp_path_factory.mktemp("gpu") / "model.onnx")


@pytest.fixture(scope="module")
def ort_gpu_build():
    """onnxruntime-gpu, or a skip naming what to install. Listed before ``onnx_model`` in a
    test's arguments, so the skip comes before any export work."""
    ort = pytest.importorskip("onnxruntime")
    if ort.get_device() != "GPU":
        pytest.skip(f"onnxruntime {ort.__version__} is the CPU build: install "
                    f"'pix2pix-edge[ort-cu12]' or '[ort-cu13]' for its CUDA provider")
    return ort


FRESH_PROCESS = textwrap.dedent(r"""
    import json, sys, threading
    import numpy as np
    from pix2pix_edge.runtime.backends import open_backend
    from pix2pix_edge.runtime.backends.nvidia import cuda_call, import_cudart
    from pix2pix_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend

    engine, onnx_path, device = sys.argv[1], sys.argv[2], int(sys.argv[3])
    be = open_backend(engine, device=device)            # opened on the main thread
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
    out = {}

    def worker():                                        # inferred on another, as the pipeline
        out["y"] = be.infer(x)
        out["device"] = cuda_call(be._cudart, be._cudart.cudaGetDevice(), "cudaGetDevice")

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    ref = OnnxRuntimeBackend(onnx_path, providers=["cpu"]).infer(x)
    err = float(np.abs(out["y"] - ref).max())
    mse = float(np.mean((out["y"] - ref) ** 2))
    print(json.dumps({"precision": be.precision, "provider": be.provider,
                      "device": out["device"], "max_abs": err,
                      "psnr": 10 * np.log10(4.0 / max(mse, 1e-12))}))
""")


def test_gpu_engine_from_the_cli_runs_in_a_fresh_process_on_a_worker_thread(tensorrt_module,
                                                                            onnx_model, tmp_path):
    device = _device()
    fp16, fp32 = tmp_path / "m16.engine", tmp_path / "m32.engine"
    _pix2pix("export", "trt", onnx_model, "-o", fp16)
    _pix2pix("export", "trt", onnx_model, "-o", fp32, "--fp32")
    from pix2pix_edge.runtime.model_info import read_engine_record

    assert read_engine_record(fp16).precision == "fp16"
    assert read_engine_record(fp32).precision == "fp32"
    # read back from the engines themselves: FP16 weights are half the bytes
    assert fp16.stat().st_size < 0.75 * fp32.stat().st_size, (fp16.stat().st_size,
                                                               fp32.stat().st_size)
    for engine, min_psnr in ((fp16, 35.0), (fp32, 45.0)):
        res = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(engine), str(onnx_model),
                              str(device)], capture_output=True, text=True, cwd=REPO, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        d = json.loads(res.stdout.strip().splitlines()[-1])
        assert d["device"] == device, d            # the worker thread ran on the named GPU
        assert d["provider"].startswith("TensorRT ") and d["psnr"] >= min_psnr, d
    # the pipeline's own inference thread, through `pix2pix run --device`
    video = tmp_path / "in.mp4"
    _write_video(video)
    _pix2pix("run", fp16, "--source", video, "--output", tmp_path / "out.mp4", "--headless",
             "--device", device)
    assert (tmp_path / "out.mp4").stat().st_size > 0


def _write_video(path, n=8):
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64))
    for i in range(n):
        w.write(np.full((64, 64, 3), i * 20, np.uint8))
    w.release()


def test_gpu_onnxruntime_cuda_provider_is_in_use(ort_gpu_build, onnx_model):
    from pix2pix_edge.runtime.backends.onnxruntime import (CUDA_EP, OnnxRuntimeBackend,
                                                          fallback_note, why_not)

    assert fallback_note() is None, fallback_note()
    be = OnnxRuntimeBackend(onnx_model, providers=["cuda"], device=_device())
    assert be.provider == CUDA_EP and be._sess.get_providers()[0] == CUDA_EP, why_not(CUDA_EP)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    ref = OnnxRuntimeBackend(onnx_model, providers=["cpu"]).infer(x)
    np.testing.assert_allclose(be.infer(x), ref, atol=2e-3)


def test_gpu_onnxruntime_tensorrt_provider_keeps_instance_norm_fp32(ort_gpu_build, onnx_model,
                                                                    tmp_path):
    """ORT's TensorRT provider cannot keep InstanceNormalization in FP32 when FP16 is on, so a
    per-image model runs FP32 there by default, as accurate as the CPU; FP16 only on request."""
    from pix2pix_edge.runtime.backends.onnxruntime import (TRT_EP, OnnxRuntimeBackend,
                                                          usable_providers, why_not)

    if TRT_EP not in usable_providers():
        pytest.skip(f"ONNX Runtime's TensorRT provider cannot load here: {why_not(TRT_EP)}")
    x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
    ref = OnnxRuntimeBackend(onnx_model, providers=["cpu"]).infer(x)
    be = OnnxRuntimeBackend(onnx_model, providers=["tensorrt"], device=_device(),
                            cache_dir=tmp_path / "cache")
    assert be.provider == TRT_EP and be.precision == "fp32", (be.provider, be.precision)
    mse = float(np.mean((be.infer(x) - ref) ** 2))
    assert 10 * np.log10(4.0 / max(mse, 1e-12)) >= 45.0, mse
    forced = OnnxRuntimeBackend(onnx_model, providers=["tensorrt"], device=_device(), fp16=True,
                                cache_dir=tmp_path / "cache")
    assert forced.precision == "fp16 (TensorRT EP builder)"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from pix2pix_edge.train.synth import make_dataset

    return make_dataset(tmp_path_factory.mktemp("synth") / "d", n=8, size=64, seed=1, workers=1)


TINY = dict(depth=6, ngf=8, ndf=8, load_size=72, crop_size=64, workers=0, progress=False,
            tensorboard=False, batch_size=2, epochs=2, epochs_decay=0, log_every=1)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_gpu_training_mixed_precision_and_resume(cuda_torch, synth, tmp_path, amp):
    torch = cuda_torch
    from pix2pix_edge.train.checkpoint import load_training_checkpoint
    from pix2pix_edge.train.loop import TrainOptions, cuda_native_bf16, train

    if amp == "bf16" and not cuda_native_bf16(torch.device("cuda")):
        pytest.skip(f"bf16 is only emulated on this GPU (compute capability "
                    f"{torch.cuda.get_device_capability()}, native from 8.0)")
    run = tmp_path / "run"
    first = train(TrainOptions(data=str(synth), run=str(run), device="cuda", amp=amp,
                               max_iters=3, **TINY))
    assert first["iterations"] == 3
    assert first["precision"] == ("bfloat16" if amp == "bf16" else "float16")
    state = load_training_checkpoint(run / "checkpoints" / "latest.pt")
    if amp == "fp16":   # the GradScaler ran and its state was saved
        assert state["scaler"] and state["scaler"]["scale"] > 0
    else:
        assert not state["scaler"]
    train(TrainOptions(data=str(synth), run=str(run), device="cuda", amp=amp, resume=True, **TINY))
    done = load_training_checkpoint(run / "checkpoints" / "latest.pt")
    assert done["iteration"] == 8 and all(torch.isfinite(v).all() for v in done["G"].values()
                                          if v.is_floating_point())


def test_gpu_bf16_run_resumed_with_fp16_starts_the_scaler_clean(cuda_torch, synth, tmp_path):
    from pix2pix_edge.train.checkpoint import load_training_checkpoint
    from pix2pix_edge.train.loop import TrainOptions, train

    run = tmp_path / "run"
    train(TrainOptions(data=str(synth), run=str(run), device="cuda", amp="bf16", max_iters=2,
                       **TINY))
    train(TrainOptions(data=str(synth), run=str(run), device="cuda", amp="fp16", resume=True,
                       **TINY))
    done = load_training_checkpoint(run / "checkpoints" / "latest.pt")
    assert done["iteration"] == 8 and done["scaler"]["scale"] > 0
