"""`pix2pix export trt`: the GPU-free logic on CPU (version branching, profiles, ONNX checks,
the engine record, one-line errors); the real engine build and engine-vs-ONNX parity are marked
``gpu`` and skip where there is no CUDA GPU (TensorRT is not installed on the CPU machines)."""

from __future__ import annotations

import types

import onnx
import pytest
from click.testing import CliRunner

from pix2pix_edge.export.to_tensorrt import (BuildPlan, OnnxFacts, build_plan, compute_profile, engine_info,
                                inspect_onnx, network_flag_bits, parse_batch, parse_version)
from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import BadInput, ModelMismatch, Unavailable
from pix2pix_edge.runtime.model_info import ModelInfo, engine_record_path, read_engine_record, write_engine_record


# --------------------------------------------------------------------------- versions
@pytest.mark.parametrize("text,expected", [
    ("8.6.1.6", (8, 6, 1)), ("10.3.0.30", (10, 3, 0)), ("11.1.0", (11, 1, 0)), ("10", (10, 0, 0)),
    ("8.5.2.2+cuda11.4", (8, 5, 2))])
def test_parse_version(text, expected):
    assert parse_version(text) == expected


def test_parse_version_garbage():
    with pytest.raises(ValueError):
        parse_version("latest")


def test_plan_tensorrt_8_weak_typing_fp16_flag_on_fp32_onnx():
    plan = build_plan((8, 6, 1), "fp32")
    assert plan == BuildPlan(network_flags=("EXPLICIT_BATCH",),
                             builder_flags=("FP16", "PREFER_PRECISION_CONSTRAINTS"),
                             strongly_typed=False, convert_to_fp16=False, precision="fp16",
                             pin_norms_fp32=True, parser_flags=("NATIVE_INSTANCENORM",))
    fp32 = build_plan((8, 6, 1), "fp32", fp32=True)
    assert fp32.builder_flags == () and fp32.precision == "fp32" and not fp32.pin_norms_fp32
    # JetPack 5.1 ships 8.5: same path, but 8.5 has no OnnxParserFlag (the InstanceNorm plugin,
    # registered by init_plugins, does the work)
    assert build_plan((8, 5, 2), "fp32").network_flags == ("EXPLICIT_BATCH",)
    assert build_plan((8, 5, 2), "fp32").parser_flags == ()
    # an FP16 ONNX still builds on 8.x, with a note
    assert "FP32 ONNX" in build_plan((8, 6, 1), "fp16").note


@pytest.mark.parametrize("version", [(10, 3, 0), (10, 13, 2), (11, 0, 0), (11, 4, 1)])
def test_plan_tensorrt_10_and_11_strongly_typed_never_fp16_flag(version):
    from_fp32 = build_plan(version, "fp32")
    assert from_fp32.network_flags == ("STRONGLY_TYPED",) and from_fp32.strongly_typed
    assert from_fp32.builder_flags == ()            # BuilderFlag.FP16 is never touched
    assert from_fp32.convert_to_fp16 and from_fp32.precision == "fp16"
    from_fp16 = build_plan(version, "fp16")
    assert not from_fp16.convert_to_fp16 and from_fp16.builder_flags == ()
    full = build_plan(version, "fp32", fp32=True)
    assert not full.convert_to_fp16 and full.precision == "fp32" and full.builder_flags == ()
    # strongly typed: layer precisions may not be set; the FP16 ONNX carries the FP32 islands
    assert not (from_fp32.pin_norms_fp32 or from_fp16.pin_norms_fp32)


def test_plan_rejects_old_tensorrt_and_fp32_from_fp16_onnx():
    with pytest.raises(Unavailable, match="too old"):
        build_plan((8, 4, 3), "fp32")
    for version in [(8, 6, 1), (10, 3, 0)]:
        with pytest.raises(BadInput, match="--fp32 needs the FP32 ONNX"):
            build_plan(version, "fp16", fp32=True)


def test_network_flag_bits_per_version():
    """Stand-in enums (TensorRT is not installed here): 8.6 / 10 have both flags,
    an 11.x that dropped STRONGLY_TYPED gets 0 (strong typing is always on there)."""
    trt10 = types.SimpleNamespace(NetworkDefinitionCreationFlag=types.SimpleNamespace(
        EXPLICIT_BATCH=0, STRONGLY_TYPED=1))
    assert network_flag_bits(trt10, ("EXPLICIT_BATCH",)) == 1
    assert network_flag_bits(trt10, ("STRONGLY_TYPED",)) == 2
    trt11 = types.SimpleNamespace(NetworkDefinitionCreationFlag=types.SimpleNamespace())
    assert network_flag_bits(trt11, ("STRONGLY_TYPED",)) == 0


def test_pin_norms_fp32_on_a_stand_in_network():
    """Stand-in network (TensorRT absent here): normalisation, reduction and an
    InstanceNormalization plugin get FP32 precision and outputs; convolutions do not."""
    from pix2pix_edge.export.to_tensorrt import pin_norms_fp32

    class Layer:
        def __init__(self, name, type_):
            self.name, self.type, self.num_outputs = name, type_, 1
            self.precision, self.out = None, {}

        def set_output_type(self, k, t):
            self.out[k] = t

    trt = types.SimpleNamespace(float32="f32", LayerType=types.SimpleNamespace(
        NORMALIZATION="NORMALIZATION", REDUCE="REDUCE", CONVOLUTION="CONVOLUTION",
        PLUGIN_V2="PLUGIN_V2"))
    layers = [Layer("conv", "CONVOLUTION"), Layer("in", "NORMALIZATION"),
              Layer("mean", "REDUCE"), Layer("InstanceNormalization_TRT_3", "PLUGIN_V2")]
    network = types.SimpleNamespace(num_layers=len(layers), get_layer=lambda i: layers[i])
    assert pin_norms_fp32(trt, network) == 3
    assert layers[0].precision is None and not layers[0].out
    assert all(l.precision == "f32" and l.out == {0: "f32"} for l in layers[1:])


# --------------------------------------------------------------------------- profiles
INFO = ModelInfo(height=256, width=256, multiple=256, depth=8, ngf=64, dynamic=True)


def test_profile_static_model_has_none_and_rejects_shapes():
    assert compute_profile(INFO, dynamic=False) is None
    with pytest.raises(BadInput, match="static"):
        compute_profile(INFO, dynamic=False, opt_size="512x512")


def test_profile_defaults():
    p = compute_profile(INFO, dynamic=True)
    assert p == {"min": (1, 3, 256, 256), "opt": (1, 3, 256, 256), "max": (1, 3, 512, 512)}


def test_profile_user_shapes_and_default_fill():
    # sizes are WxH (width x height) as everywhere; the profile itself is NCHW
    p = compute_profile(INFO, True, min_size="256x256", opt_size="512x256",
                        max_size="1024x768", batch="1,2,4")
    assert p == {"min": (1, 3, 256, 256), "opt": (2, 3, 256, 512), "max": (4, 3, 768, 1024)}
    # only opt given: min stays one multiple, max grows to cover opt
    p = compute_profile(INFO, True, opt_size="768x512", batch="4")
    assert p["min"] == (1, 3, 256, 256) and p["max"] == (4, 3, 1024, 1536)


@pytest.mark.parametrize("kwargs,needle", [
    ({"opt_size": "256x300"}, "--opt 256x300 is not a multiple of 256"),
    ({"min_size": "512x512", "opt_size": "256x256"}, "min <= opt <= max"),
    ({"max_size": "256x256", "opt_size": "512x512"}, "min <= opt <= max"),
    ({"batch": "4,2,1"}, "min <= opt <= max"),
    ({"batch": "0"}, "expected B or MIN,OPT,MAX"),
    ({"batch": "2x2"}, "expected B or MIN,OPT,MAX"),
    ({"opt_size": "big"}, "expected WIDTHxHEIGHT"),
    ({"max_size": "256x8448"}, "8192"),
])
def test_profile_errors(kwargs, needle):
    with pytest.raises(BadInput, match=needle):
        compute_profile(INFO, True, **kwargs)


def test_parse_batch_forms():
    assert parse_batch(None) == (1, 1, 1)
    assert parse_batch("4") == (1, 4, 4)
    assert parse_batch("1,2,4") == (1, 2, 4)


# --------------------------------------------------------------------------- ONNX input
def test_inspect_exported_onnx(tiny_onnx):
    facts = inspect_onnx(tiny_onnx)
    assert (facts.precision, facts.io_dtype, facts.dynamic) == ("fp32", "float32", False)
    assert (facts.info.height, facts.info.multiple, facts.info.depth) == (64, 32, 5)


def test_inspect_fp16_and_dynamic(tmp_path, tiny_onnx):
    import torch

    from pix2pix_edge.export.fp16 import convert_file
    from pix2pix_edge.export.to_onnx import export_model, make_info
    from pix2pix_edge.train.models import UNetGenerator, inference_copy

    f16 = convert_file(tiny_onnx, tmp_path / "f16.onnx")
    facts = inspect_onnx(f16)
    assert (facts.precision, facts.io_dtype, facts.info.precision) == ("fp16", "float32", "fp16")

    g = inference_copy(UNetGenerator(depth=5, ngf=4), "running")
    info = make_info(g.config, {}, height=64, width=64, dynamic=True, norm_mode="running",
                     source="test")
    with torch.no_grad():
        dyn = export_model(g, tmp_path / "dyn.onnx", height=64, width=64, dynamic=True, info=info)
    assert inspect_onnx(dyn).dynamic


def test_inspect_rejects_foreign_and_broken_files(tmp_path, tiny_onnx):
    with pytest.raises(BadInput, match="not found"):
        inspect_onnx(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage" * 50)
    with pytest.raises(BadInput, match="not a readable ONNX"):
        inspect_onnx(junk)
    bare = onnx.load(str(tiny_onnx))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(ModelMismatch, match="not a pix2pix-edge generator"):
        inspect_onnx(tmp_path / "bare.onnx")


# --------------------------------------------------------------------------- engine record
def test_engine_record_contents_roundtrip(tmp_path):
    facts = OnnxFacts(info=ModelInfo(height=256, width=256, multiple=256, dynamic=True,
                                     norm_mode="per-image", source_run="runs/x", dataset="facades",
                                     direction="BtoA", extra={"opset": 17}),
                      precision="fp32", io_dtype="float32", dynamic=True)
    plan = build_plan((10, 3, 0), "fp32")
    profile = compute_profile(facts.info, True, opt_size="512x256")
    info = engine_info(facts, plan, tensorrt_version="10.3.0", gpu_name="Orin",
                       compute_capability="8.7", profile=profile, source_onnx="model.onnx")
    engine = tmp_path / "model.engine"
    write_engine_record(engine, info)
    back = read_engine_record(engine)
    assert engine_record_path(engine).name == "model.engine.json"
    assert (back.tensorrt_version, back.gpu_name, back.compute_capability) == ("10.3.0", "Orin", "8.7")
    assert (back.precision, back.io_dtype, back.dynamic) == ("fp16", "float32", True)
    assert (back.height, back.width) == (256, 512)           # the opt shape
    assert (back.norm_mode, back.direction, back.dataset) == ("per-image", "BtoA", "facades")
    assert back.extra["profile"] == {"min": [1, 3, 256, 256], "opt": [1, 3, 256, 512],
                                     "max": [1, 3, 512, 1024]}
    assert back.extra["source_onnx"] == "model.onnx" and back.extra["strongly_typed"] is True
    assert back.extra["opset"] == 17


# --------------------------------------------------------------------------- CLI (no GPU here)
def _one_line(res, code, needle):
    assert res.exit_code == code, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and needle in lines[0], res.output


def _has_tensorrt() -> bool:
    try:
        import tensorrt  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.mark.skipif(_has_tensorrt(), reason="TensorRT is installed: the build would run")
def test_cli_without_tensorrt_is_unavailable(tiny_onnx, tmp_path):
    engine = tmp_path / "m.engine"
    res = CliRunner().invoke(cli, ["export", "trt", str(tiny_onnx), "-o", str(engine)])
    _one_line(res, 5, "TensorRT is not installed")
    assert not engine.exists() and not engine_record_path(engine).exists()


def test_cli_bad_inputs_before_hardware(tiny_onnx, tmp_path):
    run = CliRunner().invoke
    _one_line(run(cli, ["export", "trt", str(tmp_path / "none.onnx")]), 3, "not found")
    bare = onnx.load(str(tiny_onnx))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    _one_line(run(cli, ["export", "trt", str(tmp_path / "bare.onnx")]), 4, "not a pix2pix-edge")
    _one_line(run(cli, ["export", "trt", str(tiny_onnx), "--opt", "512x512"]), 3, "static")
    _one_line(run(cli, ["export", "trt", str(tiny_onnx), "--workspace", "0"]), 2, "--workspace")
    blocker = tmp_path / "f"
    blocker.write_text("x")
    _one_line(run(cli, ["export", "trt", str(tiny_onnx), "-o", str(blocker / "m.engine")]), 3,
              "cannot write")


def test_cli_fp32_from_fp16_onnx(tiny_onnx, tmp_path):
    from pix2pix_edge.export.fp16 import convert_file

    f16 = convert_file(tiny_onnx, tmp_path / "f16.onnx")
    res = CliRunner().invoke(cli, ["export", "trt", str(f16), "--fp32"])
    _one_line(res, 3, "--fp32 needs the FP32 ONNX")


# --------------------------------------------------------------------------- on a GPU
@pytest.fixture
def dynamic_onnx(tmp_path):
    """Exported without onnxslim: the engine build does not need it (a bare GPU box lacks it)."""
    torch = pytest.importorskip("torch")
    from pix2pix_edge.export.to_onnx import export_model, make_info
    from pix2pix_edge.train.models import UNetGenerator, init_weights, inference_copy

    torch.manual_seed(0)
    g = inference_copy(init_weights(UNetGenerator(depth=5, ngf=8)), "per-image")
    info = make_info(g.config, {}, height=64, width=64, dynamic=True, norm_mode="per-image",
                     source="gpu-test")
    return export_model(g, tmp_path / "dyn.onnx", height=64, width=64, dynamic=True, info=info,
                        simplify=False)


@pytest.mark.gpu
def test_gpu_build_fp16_engine_and_parity_with_onnx(tensorrt_module, dynamic_onnx, tmp_path):
    from pix2pix_edge.export.parity import compare, onnx_runner
    from pix2pix_edge.export.to_onnx import synthetic_images
    from pix2pix_edge.export.to_tensorrt import build_engine
    from pix2pix_edge.runtime.backends.tensorrt import TensorRTBackend

    engine = tmp_path / "m.engine"
    cache = tmp_path / "timing.cache"
    report = build_engine(dynamic_onnx, engine, min_size="64x64", opt_size="64x64",
                          max_size="128x128", batch="1,1,2", timing_cache=cache,
                          log=lambda s: None)
    assert engine.is_file() and cache.is_file() and report["precision"] == "fp16"
    record = read_engine_record(engine)
    assert record.tensorrt_version and record.gpu_name and record.compute_capability
    assert record.precision == "fp16" and record.extra["profile"]["max"] == [2, 3, 128, 128]

    onnx_infer, _ = onnx_runner(str(dynamic_onnx))
    backend = TensorRTBackend(engine)
    for shape in [(1, 3, 64, 64), (2, 3, 96, 128)]:
        x = synthetic_images(shape[0], shape[2], shape[3], seed=2)
        result = compare([onnx_infer(x)], [backend.infer(x)])
        assert result["psnr_db"] >= 40.0, result

    # a rebuild reuses the timing cache
    again = build_engine(dynamic_onnx, tmp_path / "m2.engine", timing_cache=cache,
                         log=lambda s: None)
    assert "reused timing cache" in again["timing_cache"]


@pytest.mark.gpu
def test_gpu_build_fp32_engine_static(tensorrt_module, tiny_onnx, tmp_path):
    from pix2pix_edge.export.parity import compare, onnx_runner
    from pix2pix_edge.export.to_onnx import synthetic_images
    from pix2pix_edge.runtime.backends.tensorrt import TensorRTBackend

    engine = tmp_path / "m32.engine"
    res = CliRunner().invoke(cli, ["export", "trt", str(tiny_onnx), "-o", str(engine), "--fp32"])
    assert res.exit_code == 0, res.output
    assert "in " in res.output and read_engine_record(engine).precision == "fp32"
    x = synthetic_images(1, 64, 64)
    onnx_infer, _ = onnx_runner(str(tiny_onnx))
    result = compare([onnx_infer(x)], [TensorRTBackend(engine).infer(x)])
    assert result["max_abs"] <= 1e-2, result  # TF32 convolutions may be allowed by default


def test_export_help_imports_no_torch_onnx_or_tensorrt(tiny_onnx):
    """`pix2pix export --help` / `export trt --help` stay instant: heavy imports are lazy; and
    `export trt` itself never imports torch (a Jetson builds engines without PyTorch)."""
    import subprocess
    import sys

    code = ("import sys\nfrom click.testing import CliRunner\nfrom runtime.cli import cli\n"
            "for args in (['export', '--help'], ['export', 'trt', '--help'], "
            "['export', 'onnx', '--help']):\n"
            "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
            "heavy = [m for m in ('torch', 'onnx', 'tensorrt', 'onnxruntime') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            f"r = CliRunner().invoke(cli, ['export', 'trt', {str(tiny_onnx)!r}, '--opt', '1x1'])\n"
            "assert r.exit_code == 3, r.output\n"
            "assert 'torch' not in sys.modules and 'onnx' in sys.modules\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert res.returncode == 0, res.stderr[-2000:]


def _recording_tensorrt(version: str, calls: list):
    """A stand-in ``tensorrt`` (none on this machine) that records the build's calls in order."""
    import enum

    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.NetworkDefinitionCreationFlag = enum.IntEnum("N", {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1})
    trt.BuilderFlag = enum.IntEnum("B", {"FP16": 0, "PREFER_PRECISION_CONSTRAINTS": 1})
    trt.OnnxParserFlag = enum.IntEnum("P", {"NATIVE_INSTANCENORM": 0})
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")
    trt.LayerType = types.SimpleNamespace(NORMALIZATION="NORMALIZATION", REDUCE="REDUCE")
    trt.float32 = "f32"

    class Logger:
        VERBOSE, WARNING, ERROR = 0, 1, 2

        def __init__(self, level):
            pass

    class Network:
        num_layers = 0

    class Parser:
        num_errors = 0

        def __init__(self, network, logger):
            calls.append("OnnxParser")

        def set_flag(self, flag):
            calls.append(f"parser.set_flag({flag.name})")

        def parse_from_file(self, path):
            calls.append("parse_from_file")
            return True

    class Config:
        def __getattr__(self, name):
            return lambda *a, **k: calls.append(f"config.{name}")

    class Builder:
        def __init__(self, logger):
            calls.append("Builder")

        def create_network(self, bits):
            calls.append(f"create_network({bits})")
            return Network()

        def create_builder_config(self):
            return Config()

        def build_serialized_network(self, network, config):
            calls.append("build_serialized_network")
            return b"ENGINE"

    def init_libnvinfer_plugins(logger, namespace):
        assert namespace == ""
        calls.append("init_libnvinfer_plugins")
        return True

    trt.Logger, trt.Builder, trt.OnnxParser = Logger, Builder, Parser
    trt.init_libnvinfer_plugins = init_libnvinfer_plugins
    return trt


@pytest.mark.parametrize("version,native", [("8.5.2.2", False), ("8.6.1", True),
                                            ("10.3.0", False)])
def test_build_registers_plugins_before_parsing(version, native, tiny_onnx, tmp_path,
                                                monkeypatch):
    """Before TensorRT 10 the parser maps InstanceNormalization to the InstanceNormalization_TRT
    plugin: init_libnvinfer_plugins must come before parsing; 8.6 parses it natively
    (OnnxParserFlag.NATIVE_INSTANCENORM, set before parse). Stand-ins: no TensorRT/GPU here."""
    from pix2pix_edge.export import to_tensorrt

    calls = []
    monkeypatch.setattr(to_tensorrt, "import_tensorrt",
                        lambda purpose: _recording_tensorrt(version, calls))
    cudart = types.SimpleNamespace(cudaError_t=types.SimpleNamespace(cudaSuccess=0),
                                   cudaSetDevice=lambda d: (calls.append(f"cudaSetDevice({d})"),
                                                            0)[1:])
    monkeypatch.setattr(to_tensorrt, "import_cudart", lambda purpose: cudart)
    monkeypatch.setattr(to_tensorrt, "gpu_properties", lambda cudart, device, purpose:
                        ("Orin", "8.7"))
    report = to_tensorrt.build_engine(tiny_onnx, tmp_path / "m.engine", fp32=True, device=1,
                                      log=lambda s: None)
    assert calls.index("cudaSetDevice(1)") < calls.index("build_serialized_network")
    assert report["tensorrt_version"] == version
    assert calls.index("init_libnvinfer_plugins") < calls.index("OnnxParser") \
        < calls.index("parse_from_file") < calls.index("build_serialized_network")
    flag = "parser.set_flag(NATIVE_INSTANCENORM)"
    assert (flag in calls) == native
    if native:
        assert calls.index(flag) < calls.index("parse_from_file")
