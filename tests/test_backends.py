"""Backends: real ONNX Runtime sessions on a tiny generator; the TensorRT engine against ONNX
Runtime on a GPU (marked ``gpu``). TensorRT's pure checks and plumbing on stand-ins:
tests/test_tensorrt_backend.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from pix2pix_edge.runtime.backends import backend_for, open_backend
from pix2pix_edge.runtime.backends import nvidia
from pix2pix_edge.runtime.backends import onnxruntime as ortb
from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import BadInput, ModelMismatch, Unavailable
from pix2pix_edge.runtime.model_info import ModelInfo, write_engine_record
from tests.test_tensorrt_backend import CONTRACT, RECORD

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _x(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32)


def _save_without_metadata(src, dst, dynamic=False):
    """A plain ONNX file (no pix2pix-edge metadata); optionally with symbolic N, H, W axes."""
    model = onnx.load(str(src))
    del model.metadata_props[:]
    if dynamic:
        del model.graph.value_info[:]   # intermediate shapes were recorded for 64x64
        for t in list(model.graph.input) + list(model.graph.output):
            dims = t.type.tensor_type.shape.dim
            for i, sym in ((0, "N"), (2, "H"), (3, "W")):
                dims[i].ClearField("dim_value")
                dims[i].dim_param = sym
    onnx.save(model, str(dst))
    return dst


@pytest.fixture(scope="module")
def plain_onnx(tiny_onnx, tmp_path_factory):
    return _save_without_metadata(tiny_onnx, tmp_path_factory.mktemp("plain") / "plain.onnx")


@pytest.fixture(scope="module")
def dynamic_onnx(tiny_onnx, tmp_path_factory):
    return _save_without_metadata(tiny_onnx, tmp_path_factory.mktemp("dyn") / "dyn.onnx",
                                  dynamic=True)


# --------------------------------------------------------------------------- ONNX Runtime
def test_usable_providers_is_cpu_here_and_silent(capfd):
    ortb._probe.cache_clear()
    providers = ortb.usable_providers()
    out, err = capfd.readouterr()
    if "CUDAExecutionProvider" in providers:
        pytest.skip("this machine has a working CUDA provider")
    assert providers == ["CPUExecutionProvider"]
    assert out == "" and err == "", (out, err)
    if ort.get_device() == "GPU":
        # onnxruntime-gpu lists the GPU providers although they cannot load here: the probe is
        # what tells them apart, and asking for one is a clear error, not a noisy fallback.
        assert "CUDAExecutionProvider" in ort.get_available_providers()
        reason = "no NVIDIA driver here" if not ortb.nvidia_driver_loads() else "missing"
    else:   # the CPU build (the Python 3.8 runtime tests install it)
        reason = "is a CPU-only build: replace it (pip uninstall onnxruntime) by onnxruntime-gpu"
    with pytest.raises(Unavailable, match="CUDAExecutionProvider cannot load") as e:
        ortb.resolve_providers(["cuda"])
    assert reason in str(e.value), e.value          # why, in the same line
    assert "\n" not in str(e.value)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_gpu_libraries_are_preloaded_before_probing(monkeypatch):
    """onnxruntime-gpu >= 1.21 finds the CUDA / cuDNN of its [cuda,cudnn] extra only through
    onnxruntime.preload_dlls(): the probe calls it (once) before asking for a GPU provider."""
    if ort.get_device() != "GPU":
        pytest.skip("onnxruntime here is the CPU build: there is nothing to preload")
    calls = []
    monkeypatch.setattr(ort, "preload_dlls", lambda *a, **k: calls.append((a, k)), raising=False)
    ortb._probe.cache_clear()
    try:
        ortb.usable_providers()
        ortb.usable_providers()
        assert calls == [((), {})]
    finally:
        ortb._probe.cache_clear()


@pytest.mark.parametrize("available,imported", [
    (["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"], True),
    (["CUDAExecutionProvider", "CPUExecutionProvider"], False),
    (["CPUExecutionProvider"], False),
])
def test_tensorrt_is_imported_before_its_provider_is_probed(monkeypatch, tmp_path, available,
                                                            imported):
    """A pip TensorRT's libnvinfer is off the loader's path and preload_dlls() loads only CUDA
    and cuDNN (onnxruntime #18597, #13501): `import tensorrt` (a stand-in here) must come before
    the TensorRT provider's library is loaded, and only where onnxruntime has that provider."""
    import sys

    stand_in = tmp_path / "site" / "tensorrt"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("__version__ = 'stand-in'\nprint('loud import')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    saved = sys.modules.pop("tensorrt", None)
    seen = []

    def libs_error(provider):
        seen.append((provider, getattr(sys.modules.get("tensorrt"), "__version__", None)))
        return "not on this machine"

    monkeypatch.setattr(ort, "get_available_providers", lambda: list(available))
    monkeypatch.setattr(ortb, "preload_gpu_libraries", lambda o: True)
    monkeypatch.setattr(ortb, "_libs_error", libs_error)
    ortb._probe.cache_clear()
    try:
        assert ortb.usable_providers() == ["CPUExecutionProvider"]
        if imported:
            assert seen[0] == ("TensorrtExecutionProvider", "stand-in"), seen
        else:
            assert "tensorrt" not in sys.modules, seen
    finally:
        ortb._probe.cache_clear()
        sys.modules.pop("tensorrt", None)
        if saved is not None:
            sys.modules["tensorrt"] = saved


@pytest.mark.parametrize("norm_mode,fp16", [("running", True), ("none", True),
                                           ("per-image", False), ("instance", False),
                                           (None, False)])
def test_tensorrt_provider_fp16_only_without_instance_norm(norm_mode, fp16):
    """ORT's TensorRT provider builds weakly typed engines and cannot keep a layer in FP32:
    with trt_fp16_enable InstanceNormalization would run in FP16 (what our own engine build
    avoids). FP16 by default only for graphs without it; unknown models run FP32."""
    assert ortb.trt_fp16_default(norm_mode) is fp16


class _RecordingSession:
    """Stands in for onnxruntime.InferenceSession where the TensorRT provider is asked for (no
    GPU here): records the provider options; an onnxruntime too old for the timing-cache
    options refuses them as ORT does, naming the key; otherwise a real CPU session."""

    calls: list = []
    knows_timing_cache = True
    real = ort.InferenceSession

    def __new__(cls, path, opts=None, providers=None, provider_options=None):
        if providers and "TensorrtExecutionProvider" in providers:
            trt = dict(provider_options[providers.index("TensorrtExecutionProvider")])
            cls.calls.append(trt)
            if not cls.knows_timing_cache and "trt_timing_cache_path" in trt:
                raise RuntimeError('[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Unknown '
                                   'provider option: "trt_timing_cache_path".')
            providers, provider_options = ["CPUExecutionProvider"], None
        return cls.real(path, opts, providers=providers)


@pytest.mark.parametrize("knows_timing_cache", [True, False])
def test_tensorrt_provider_options_and_an_older_onnxruntime(tiny_onnx, plain_onnx, tmp_path,
                                                            monkeypatch, capsys,
                                                            knows_timing_cache):
    """The options the TensorRT provider gets: FP16 by the model's norm mode (tiny_onnx:
    running statistics, folded; a file without metadata: FP32), caches in --cache-dir. An
    onnxruntime that does not know trt_timing_cache_path (older builds, e.g. JetPack 5's)
    gets the session again without it, with one note, instead of "not a loadable ONNX model"."""
    monkeypatch.setattr(ortb, "usable_providers",
                        lambda: ["TensorrtExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(_RecordingSession, "calls", [])
    monkeypatch.setattr(_RecordingSession, "knows_timing_cache", knows_timing_cache)
    monkeypatch.setattr(ort, "InferenceSession", _RecordingSession)
    ortb._note_once.cache_clear()
    be = ortb.OnnxRuntimeBackend(tiny_onnx, cache_dir=tmp_path / "cache")
    first = _RecordingSession.calls[0]
    assert first["trt_fp16_enable"] is True and first["trt_engine_cache_path"] == str(
        tmp_path / "cache") and first["trt_timing_cache_path"] == str(tmp_path / "cache")
    err = capsys.readouterr().err
    if knows_timing_cache:
        assert len(_RecordingSession.calls) == 1 and "timing" not in err
    else:
        retry = _RecordingSession.calls[1]
        assert not set(retry) & set(ortb.TRT_OPTIONAL)
        assert {k: v for k, v in first.items() if k not in ortb.TRT_OPTIONAL} == retry
        assert err.count("does not know trt_timing_cache_path: the TensorRT provider runs "
                         "without its timing cache") == 1, err
    np.testing.assert_allclose(be.infer(_x((1, 3, 64, 64))).shape, (1, 3, 64, 64))
    info = ModelInfo(height=64, width=64, multiple=32)
    ortb.OnnxRuntimeBackend(plain_onnx, info=info, cache_dir=tmp_path / "cache")
    assert _RecordingSession.calls[-1]["trt_fp16_enable"] is False       # no metadata: FP32
    ortb.OnnxRuntimeBackend(plain_onnx, info=info, fp16=True, cache_dir=tmp_path / "cache")
    assert _RecordingSession.calls[-1]["trt_fp16_enable"] is True        # asked for


FALLBACK = r"""
import sys
from pix2pix_edge.runtime.backends import onnxruntime as ortb
from pix2pix_edge.runtime.cli import main
print("why:", ortb.why_not("CUDAExecutionProvider"), file=sys.stderr)
main(["bench", sys.argv[1], "--warmup", "1", "--runs", "2", "--sizes", "64x64"])
"""


def test_gpu_host_without_cuda_libraries_is_told_why_it_runs_on_the_cpu(tiny_onnx, tmp_path):
    """A pip-only desktop: a driver is there but onnxruntime-gpu's CUDA / cuDNN are not. The
    run still works on the CPU, and says so in one line with the fix; never silently. (A
    stand-in libcuda.so.1 plays the driver: tests/fake_driver.py.)"""
    import subprocess
    import sys

    from tests import fake_driver

    if ort.get_device() != "GPU":
        pytest.skip("onnxruntime here is the CPU build")
    env = fake_driver.env_with(fake_driver.build(tmp_path / "driver"))
    res = subprocess.run([sys.executable, "-c", FALLBACK, str(tiny_onnx)], env=env,
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    why = [ln for ln in res.stderr.splitlines() if ln.startswith("why: ")]
    assert why and "a CUDA library is missing (lib" in why[0], res.stderr
    assert f"pip install 'onnxruntime-gpu[cuda,cudnn]=={ort.__version__}'" in why[0]
    notes = [ln for ln in res.stderr.splitlines() if ln.startswith("note: ")]
    assert notes == [f"note: ONNX Runtime runs on the CPU: CUDAExecutionProvider cannot load "
                     f"here: {why[0][5:]}"], res.stderr
    assert "CPUExecutionProvider" in res.stdout
    # asking for the CPU is not a fallback: nothing to say
    res = subprocess.run([sys.executable, "-m", "pix2pix_edge.runtime.cli", "bench",
                          str(tiny_onnx), "--provider", "cpu", "--warmup", "1", "--runs", "2",
                          "--sizes", "64x64"], env=env, capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert res.returncode == 0 and "note:" not in res.stderr, res.stderr


def test_session_probe_is_quiet(capfd):
    """The fallback probe (a real session asking for each GPU provider) prints nothing either,
    although onnxruntime itself logs errors and prints an "EP Error" banner for these."""
    if "CUDAExecutionProvider" in ortb.usable_providers():
        pytest.skip("this machine has a working CUDA provider")
    assert not ortb._session_gets("CUDAExecutionProvider")
    assert not ortb._session_gets("TensorrtExecutionProvider")
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out, err)


def test_infer_matches_onnxruntime_and_reads_metadata(tiny_onnx, capfd):
    be = open_backend(tiny_onnx, threads=1)
    assert (be.name, be.provider) == ("onnxruntime", "CPUExecutionProvider")
    assert be.metadata_source == "file"
    assert (be.info.height, be.info.width, be.info.depth, be.info.ngf) == (64, 64, 5, 4)
    assert be.info.source_run == "tests" and not be.info.dynamic
    x = _x((1, 3, 64, 64))
    y = be.infer(x)
    ref = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    assert y.shape == (1, 3, 64, 64) and y.dtype == np.float32
    np.testing.assert_allclose(y, ref, atol=1e-5)
    assert np.abs(y).max() <= 1.0 + 1e-6 and y.std() > 0   # tanh output, not constant
    # float64 input is cast, not rejected
    np.testing.assert_allclose(be.infer(x.astype(np.float64)), ref, atol=1e-5)
    be.close()
    out, err = capfd.readouterr()
    assert err == ""


@pytest.mark.parametrize("bad, got", [
    (np.zeros((1, 3, 32, 32), np.float32), "1x3x32x32"),
    (np.zeros((1, 1, 64, 64), np.float32), "1x1x64x64"),
    (np.zeros((2, 3, 64, 64), np.float32), "2x3x64x64"),
    (np.zeros((3, 64, 64), np.float32), "3x64x64"),
])
def test_bad_input_shapes_are_one_line_errors(tiny_onnx, bad, got):
    be = open_backend(tiny_onnx)
    with pytest.raises(BadInput) as e:
        be.infer(bad)
    assert str(e.value) == f"model expects 1x3x64x64, got {got}"
    with pytest.raises(BadInput, match="numpy array"):
        be.infer([[1.0]])


def test_plain_onnx_with_static_shape_runs_from_the_graph(plain_onnx, tiny_onnx):
    be = open_backend(plain_onnx)
    assert be.metadata_source == "graph"
    assert (be.info.height, be.info.width, be.info.multiple) == (64, 64, 64)
    x = _x((1, 3, 64, 64), 1)
    np.testing.assert_allclose(be.infer(x), open_backend(tiny_onnx).infer(x), atol=1e-6)
    # flags that contradict a fixed graph are refused
    with pytest.raises(BadInput, match="fixed at 1x3x64x64"):
        open_backend(plain_onnx, info=ModelInfo(height=128, width=128, multiple=32))


def test_plain_dynamic_onnx_needs_flags(dynamic_onnx, tiny_onnx):
    with pytest.raises(BadInput, match="no pix2pix-edge metadata.*--size"):
        open_backend(dynamic_onnx)
    flags = ModelInfo(height=64, width=64, multiple=32, color_order="BGR")
    be = open_backend(dynamic_onnx, info=flags)
    assert be.info.dynamic and be.info.color_order == "BGR" and be.metadata_source == "flags"
    x = _x((1, 3, 64, 64), 2)
    np.testing.assert_allclose(be.infer(x), open_backend(tiny_onnx).infer(x), atol=1e-5)
    assert be.infer(_x((2, 3, 96, 128))).shape == (2, 3, 96, 128)
    with pytest.raises(BadInput, match="multiples of 32, got 1x3x80x64"):
        be.infer(_x((1, 3, 80, 64)))


def test_metadata_that_contradicts_the_graph_is_a_model_mismatch(tiny_onnx, tmp_path):
    model = onnx.load(str(tiny_onnx))
    del model.metadata_props[:]
    info = ModelInfo(input_name="x", height=64, width=64, multiple=32)
    model.metadata_props.add(key="pix2pix_edge", value=info.to_json())
    path = tmp_path / "wrong.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelMismatch, match="'x'.*'input'"):
        open_backend(path)
    r = CliRunner().invoke(cli, ["bench", str(path), "--runs", "1"])
    assert r.exit_code == 4, r.output
    assert r.output.strip().count("\n") == 0 and r.output.startswith("Error: wrong.onnx")


@pytest.mark.parametrize("content", [b"not an onnx model at all", b"", b"\x08\x07" * 50])
def test_corrupt_file_is_one_line_bad_input(tmp_path, content):
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(BadInput, match="broken.onnx: not a loadable ONNX model"):
        open_backend(path)
    for cmd in (["info", str(path)], ["bench", str(path), "--runs", "1"]):
        r = CliRunner().invoke(cli, cmd)
        assert r.exit_code == 3, r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: broken.onnx"), r.output


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        open_backend(tmp_path / "nope.onnx")
    r = CliRunner().invoke(cli, ["info", str(tmp_path / "nope.onnx")])
    assert r.exit_code == 3 and "not found" in r.output
    weird = tmp_path / "model.bin"
    weird.write_bytes(b"x")
    with pytest.raises(BadInput, match="pass --backend"):
        open_backend(weird)



@pytest.mark.parametrize("name", ["generator.pt", "latest_net_G.pth", "last.ckpt"])
def test_a_pytorch_file_is_exported_first(tmp_path, name):
    """Issue 21, item 12: a .pt given to run / bench / info was told to "pass --backend"."""
    torch_file = tmp_path / name
    torch_file.write_bytes(b"PK")
    for backend in ("auto", "onnxruntime", "tensorrt"):
        with pytest.raises(ModelMismatch, match=f"{name} is a PyTorch file.*export it first: "
                                                f"pix2pix export onnx .*{name} -o model.onnx"):
            open_backend(torch_file, backend)
    for command in (["run", str(torch_file), "--source", str(tmp_path)], ["bench", str(torch_file)],
                    ["info", str(torch_file)]):
        r = CliRunner().invoke(cli, command)
        assert r.exit_code == 4 and r.output.count("\n") == 1, r.output
        assert "export it first: pix2pix export onnx" in r.output


def test_backend_choice_from_file_name():
    assert backend_for("m.onnx") == "onnxruntime"
    assert backend_for("m.engine") == backend_for("M.PLAN") == "tensorrt"
    assert backend_for("m.bin", "onnxruntime") == "onnxruntime"
    with pytest.raises(BadInput, match="export trt"):
        backend_for("m.onnx", "tensorrt")
    with pytest.raises(BadInput, match="unknown backend"):
        backend_for("m.onnx", "openvino")


def test_provider_names():
    assert ortb.resolve_providers("cpu") == ["CPUExecutionProvider"]
    assert ortb.resolve_providers(None)[-1] == "CPUExecutionProvider"
    with pytest.raises(BadInput, match="unknown ONNX Runtime provider"):
        ortb.resolve_providers(["rocm"])


def test_physical_cores_is_sane():
    import os

    from pix2pix_edge.runtime import machine
    assert 1 <= machine.physical_cores() <= (os.cpu_count() or 1)


def test_info_command(tiny_onnx):
    r = CliRunner().invoke(cli, ["info", str(tiny_onnx)])
    assert r.exit_code == 0, r.output
    for text in ("64x64 RGB [-1, 1] NCHW", "input        input  float32  1x3x64x64",
                 "output       output  float32  1x3x64x64", "unet depth 5 ngf 4",
                 "runs on      CPUExecutionProvider"):
        assert text in r.output, r.output
    r = CliRunner().invoke(cli, ["info", str(tiny_onnx), "--json"])
    d = json.loads(r.output)
    assert d["metadata"]["ngf"] == 4 and d["inputs"][0]["shape"] == [1, 3, 64, 64]


def test_info_checks_what_run_checks(tiny_onnx, tmp_path):
    """Issue 21, item 12: metadata that contradicts the graph was shown with exit 0 while `run`
    refused the file. `info` shows it, then says why in one line, exit 4, as `run` does."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(tiny_onnx))
    for prop in model.metadata_props:
        if prop.key == "pix2pix_edge":
            prop.value = ModelInfo(height=128, width=128, multiple=32, depth=5, ngf=4).to_json()
    path = tmp_path / "contradicts.onnx"
    onnx.save(model, str(path))
    run = CliRunner().invoke(cli, ["run", str(path), "--source", str(tmp_path), "--headless"])
    info = CliRunner().invoke(cli, ["info", str(path)])
    assert run.exit_code == info.exit_code == 4, (run.output, info.output)
    assert "metadata     128x128 RGB" in info.output and "1x3x64x64" in info.output
    error = info.output.splitlines()[-1]
    assert error == [ln for ln in run.output.splitlines() if ln.startswith("Error:")][0]
    assert "fixed at 1x3x64x64 but its metadata says 128x128" in error
    as_json = CliRunner().invoke(cli, ["info", str(path), "--json"])
    assert as_json.exit_code == 4 and '"problem": "contradicts.onnx: the model' in as_json.output


def test_info_on_plain_dynamic_model_still_describes_it(dynamic_onnx):
    r = CliRunner().invoke(cli, ["info", str(dynamic_onnx)])
    assert r.exit_code == 0, r.output
    assert "metadata     none" in r.output and "Nx3xHxW" in r.output


# --------------------------------------------------------------------------- contract
def test_onnxruntime_backend_implements_the_contract(tiny_onnx):
    assert {"name", "provider", "providers", "info", "precision", "input_shape", "infer",
            "close", "threads", "path", "metadata_source"} <= set(CONTRACT)
    with open_backend(tiny_onnx, providers=["cpu"], threads=1) as be:
        missing = [n for n in CONTRACT if not hasattr(be, n)]
        assert not missing, missing
        assert be.providers == ["CPUExecutionProvider"] == [be.provider]
        assert be.threads == 1 and be.precision == "fp32" and be.path == tiny_onnx
        assert be.metadata_source == "file" and be.input_shape == [1, 3, 64, 64]


# --------------------------------------------------------------------------- TensorRT (GPU)
def _build_engine(onnx_path, engine_path, fp16=False):
    """Build an engine with TensorRT directly (runtime tests do not depend on export/)."""
    trt = pytest.importorskip("tensorrt")
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_path.read_bytes()), parser.get_error(0)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 28)
    if fp16 and major < 11:
        config.set_flag(trt.BuilderFlag.FP16)
    blob = builder.build_serialized_network(network, config)
    assert blob is not None
    engine_path.write_bytes(bytes(blob))
    return trt


@pytest.mark.gpu
def test_tensorrt_engine_matches_onnxruntime(tiny_onnx, tmp_path):
    engine = tmp_path / "tiny.engine"
    trt = _build_engine(tiny_onnx, engine)
    cudart = nvidia.import_cudart()
    name, cc = nvidia.gpu_properties(cudart, 0)
    info = open_backend(tiny_onnx).info
    write_engine_record(engine, ModelInfo(**{**info.to_dict(), "tensorrt_version": trt.__version__,
                                             "gpu_name": name, "compute_capability": cc}))
    x = _x((1, 3, 64, 64), 3)
    with open_backend(engine) as be:
        assert be.name == "tensorrt" and be.provider == f"TensorRT {trt.__version__}"
        y = be.infer(x)
        y2 = be.infer(x)
    ref = open_backend(tiny_onnx, providers=["cpu"]).infer(x)
    assert y.shape == (1, 3, 64, 64) and y.dtype == np.float32
    np.testing.assert_allclose(y, ref, atol=1e-3)
    np.testing.assert_array_equal(y, y2)


@pytest.mark.gpu
def test_tensorrt_record_for_another_gpu_is_refused(tiny_onnx, tmp_path):
    engine = tmp_path / "tiny.engine"
    _build_engine(tiny_onnx, engine)
    write_engine_record(engine, RECORD)   # "built on an Orin with TensorRT 10.3.0.30"
    with pytest.raises(ModelMismatch, match="rebuild it on this device"):
        open_backend(engine)
    r = CliRunner().invoke(cli, ["bench", str(engine)])
    assert r.exit_code == 4, r.output


@pytest.mark.gpu
def test_tensorrt_garbage_engine_is_a_clear_error(tmp_path):
    pytest.importorskip("tensorrt")
    engine = tmp_path / "junk.engine"
    engine.write_bytes(b"\0" * 1024)
    with pytest.raises(ModelMismatch, match="cannot load this engine"):
        open_backend(engine)
