"""INT8 export (export/int8.py, export/subpixel.py): real tiny models exported, quantized with
ONNX Runtime's quantizer on real image files, checked with real ORT sessions; the runtime, bench
and info on the INT8 file; the TensorRT INT8 plan on CPU (the engine build is gpu-marked)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from pix2pix_edge.export import int8 as int8_mod
from pix2pix_edge.export import subpixel
from pix2pix_edge.export.parity import psnr
from pix2pix_edge.export.to_onnx import export_run, synthetic_images
from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import BadInput, Unavailable
from pix2pix_edge.runtime.model_info import ModelInfo
from pix2pix_edge.train.checkpoint import save_generator
from tests.tiny_model import trained_tiny_generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sess(model_or_path):
    import onnxruntime as ort

    src = model_or_path.SerializeToString() if isinstance(model_or_path, onnx.ModelProto) \
        else str(model_or_path)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def _one_line(res, code, needle):
    """Exit ``code`` and one ``Error:`` line holding ``needle``, last, no traceback (progress
    lines on stderr may come before it)."""
    assert res.exit_code == code, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    assert len(errors) == 1 and lines[-1] == errors[0] and needle in errors[0], res.output
    assert "Traceback" not in res.output


def _save_images(folder, n, size=64, seed=0, pair=True):
    """Real image files: smooth colour fields, as aligned A|B pairs (B = a colour swap of A)."""
    folder.mkdir(parents=True, exist_ok=True)
    imgs = synthetic_images(n, size, size, seed=seed)
    for i, x in enumerate(imgs):
        a = ((x.transpose(1, 2, 0) + 1) * 127.5).clip(0, 255).astype(np.uint8)
        im = np.concatenate([a, a[:, :, ::-1]], axis=1) if pair else a
        Image.fromarray(im).save(folder / f"{i + 1}.png")
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return _save_images(tmp_path_factory.mktemp("calib") / "train", 24).parent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir):
    """A tiny BatchNorm U-Net after real Adam steps, saved as a run directory whose
    config.json holds out the last 6 pairs of ``data_dir`` (like `pix2pix train
    --holdout-last 6`). Gain 0.1 so the outputs span a good part of [-1, 1]."""
    g = trained_tiny_generator()
    run = tmp_path_factory.mktemp("run8")
    save_generator(run / "generator.pt", g, norm_mode="running",
                   data={"direction": "AtoB", "crop_size": 64}, run="int8-test")
    (run / "config.json").write_text(json.dumps(
        {"options": {"data": str(data_dir), "holdout_last": 6}}))
    return run


@pytest.fixture(scope="module")
def int8_export(run_dir, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "m_int8.onnx"
    report = export_run(run_dir, out, int8=True, calib=data_dir, calib_images=8,
                        check_images=data_dir / "train", log=lambda s: None)
    return out, report


# --------------------------------------------------------------------------- sub-pixel form
def _convtranspose_model(cin=6, cout=5, kernel=4, stride=2, pad=1, side=7, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(cin, cout, kernel, kernel)).astype(np.float32)
    b = rng.normal(size=(cout,)).astype(np.float32)
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], name="up",
                            kernel_shape=[kernel, kernel], strides=[stride, stride],
                            pads=[pad] * 4)
    out_side = (side - 1) * stride - 2 * pad + kernel
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, side, side])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, out_side, out_side])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_subpixel_equals_convtranspose():
    """Four 2x2 convolutions + DepthToSpace give the ConvTranspose's output (FP32 rounding)."""
    model = _convtranspose_model()
    rewritten, names = subpixel.rewrite(model)
    assert names == ["up"]
    ops = [n.op_type for n in rewritten.graph.node]
    assert ops == ["Conv"] * 4 + ["Concat", "DepthToSpace"]
    assert [i.name for i in rewritten.graph.initializer if i.name == "w"] == []  # old weight gone
    x = np.random.default_rng(1).normal(size=(1, 6, 7, 7)).astype(np.float32)
    ref = _sess(model).run(None, {"x": x})[0]
    got = _sess(rewritten).run(None, {"x": x})[0]
    assert got.shape == ref.shape == (1, 5, 14, 14)
    assert np.abs(got - ref).max() < 1e-5


@pytest.mark.parametrize("kwargs", [{"kernel": 3, "pad": 1}, {"stride": 1, "pad": 1},
                                    {"pad": 0}])
def test_subpixel_leaves_other_convtransposes(kwargs):
    model = _convtranspose_model(**kwargs)
    rewritten, names = subpixel.rewrite(model)
    assert names == [] and [n.op_type for n in rewritten.graph.node] == ["ConvTranspose"]


def test_subpixel_fp32_export_passes_parity(run_dir, tmp_path):
    """--subpixel on an FP32 export: checked against PyTorch by the FP32 parity check."""
    out = tmp_path / "sub.onnx"
    report = export_run(run_dir, out, subpixel=True, log=lambda s: None)
    assert report["subpixel"] == 5 and report["parity_fp32"]["max_abs"] <= 1e-4
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert "ConvTranspose" not in ops and ops.count("DepthToSpace") == 5


# --------------------------------------------------------------------------- the INT8 export
def test_int8_export_report_graph_and_metadata(int8_export):
    out, report = int8_export
    p8 = report["parity_int8"]
    assert p8["psnr_db"] >= 30.0 and p8["min_psnr"] == 30.0 and p8["n"] == 4
    assert report["precision"] == "int8"
    facts = report["int8"]
    # the up-sampling layers but the last are in sub-pixel form; the output layer stays float
    assert facts["subpixel_layers"] == 4
    kept = facts["float_layers"]
    assert [k.split()[0] for k in kept] == ["ConvTranspose", "Tanh"]
    assert facts["quantized_layers"] > 10
    model = onnx.load(str(out))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("ConvTranspose") == 1 and "QuantizeLinear" in ops
    weights = [i for i in model.graph.initializer if i.data_type == TensorProto.INT8]
    assert any(numpy_helper.to_array(w).ndim == 4 for w in weights)  # INT8 conv weights
    # weights per output channel: one scale per channel
    dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear"
          and n.input[0] in {w.name for w in weights}]
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert dq and all(inits[n.input[1]].size == inits[n.input[0]].shape[0] for n in dq)
    info = ModelInfo.from_props({p.key: p.value for p in model.metadata_props})
    assert info.precision == "int8" and info.float_layers == kept
    assert info.extra["int8"]["calibration_images"] == 8
    assert model.producer_name == "pix2pix-edge"
    # the held-out pairs of the run (last 6 of 24) and the 4 check images were not calibrated on
    text = facts["calibration"]
    assert "8 of 14 images" in text and "6 held-out pairs excluded" in text, text
    assert "4 parity check images excluded" in text


def test_calibration_never_uses_held_out_pairs(run_dir, data_dir):
    pairs, note = int8_mod.calibration_pairs(data_dir, run_dir)
    names = [p.name for p in pairs]
    assert names == [str(i) for i in range(1, 19)] and "6 held-out" in note
    # another folder than the run's dataset: nothing to hold out
    pairs, note = int8_mod.calibration_pairs(data_dir, None)
    assert len(pairs) == 24 and note == ""
    x, text = int8_mod.load_calibration(data_dir, 32, 48, direction="BtoA", n=5, source=run_dir)
    assert x.shape == (5, 3, 32, 48) and x.dtype == np.float32
    assert -1.0 <= x.min() and x.max() <= 1.0 and "5 of 18" in text


def test_int8_model_runs_in_runtime_backend_and_matches_fp32(int8_export, run_dir, tmp_path):
    from pix2pix_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend

    out, _ = int8_export
    fp32 = tmp_path / "m32.onnx"
    export_run(run_dir, fp32, log=lambda s: None)
    be8 = OnnxRuntimeBackend(out, providers=["cpu"], threads=1)
    be32 = OnnxRuntimeBackend(fp32, providers=["cpu"], threads=1)
    assert be8.info.precision == "int8" and be32.info.precision == "fp32"
    x = synthetic_images(2, 64, 64, seed=7)
    for xi in x:
        y8, y32 = be8.infer(xi[None]), be32.infer(xi[None])
        assert y8.dtype == np.float32 and y8.shape == (1, 3, 64, 64)
        assert psnr(y8, y32) >= 30.0
        assert np.abs(y8 - y32).max() > 1e-4   # really quantized, not the FP32 graph


def test_info_and_bench_report_int8(int8_export):
    out, _ = int8_export
    res = CliRunner().invoke(cli, ["info", str(out)])
    assert res.exit_code == 0, res.output
    assert "precision int8" in res.output and "2 layers kept in float" in res.output
    res = CliRunner().invoke(cli, ["info", str(out), "--json"])
    meta = json.loads(res.output)["metadata"]
    assert meta["precision"] == "int8" and len(meta["float_layers"]) == 2
    res = CliRunner().invoke(cli, ["bench", str(out), "--provider", "cpu", "--warmup", "1",
                                   "--runs", "3", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "int8" in res.output


def test_cli_int8_export_prints_the_int8_line(run_dir, data_dir, tmp_path):
    out = tmp_path / "cli_int8.onnx"
    res = CliRunner().invoke(cli, ["export", "onnx", str(run_dir), "-o", str(out), "--int8",
                                   "--calib", str(data_dir), "--calib-images", "4"])
    assert res.exit_code == 0, res.output
    assert "parity INT8 vs FP32: PSNR" in res.output and "(limit 30)" in res.output
    assert "calibration: 4 of" in res.output and out.is_file()


# --------------------------------------------------------------------------- bad input
def test_cli_int8_flag_errors(run_dir, data_dir, tmp_path):
    run = CliRunner().invoke
    out = tmp_path / "bad.onnx"
    base = ["export", "onnx", str(run_dir), "-o", str(out)]
    # flag combinations that cannot work: a bad command line (exit 2)
    _one_line(run(cli, base + ["--int8"]), 2, "--int8 needs --calib DATA")
    _one_line(run(cli, base + ["--calib", str(data_dir)]), 2, "need --int8")
    _one_line(run(cli, base + ["--int8", "--fp16", "--calib", str(data_dir)]), 2, "choose one")
    _one_line(run(cli, base + ["--int8", "--calib", str(tmp_path / "nope")]), 3,
              "not a directory")
    _one_line(run(cli, base + ["--int8", "--calib", str(data_dir), "--calib-images", "0"]), 2,
              "--calib-images")          # out of range: a bad command line (exit 2)
    assert not out.exists()


def test_cli_calibration_folder_without_images_or_with_corrupt_ones(run_dir, tmp_path):
    run = CliRunner().invoke
    out = tmp_path / "bad.onnx"
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    (empty / "train" / "notes.txt").write_text("no images here")
    _one_line(run(cli, ["export", "onnx", str(run_dir), "-o", str(out), "--int8", "--calib",
                        str(empty)]), 3, "no usable images")
    corrupt = _save_images(tmp_path / "corrupt" / "train", 3)
    (corrupt / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    _one_line(run(cli, ["export", "onnx", str(run_dir), "-o", str(out), "--int8", "--calib",
                        str(corrupt.parent)]), 3, "calibration image unreadable")
    assert not out.exists()


def test_cli_int8_parity_failure_exits_6_and_leaves_no_model(run_dir, data_dir, tmp_path):
    out = tmp_path / "strict.onnx"
    res = CliRunner().invoke(cli, ["export", "onnx", str(run_dir), "-o", str(out), "--int8",
                                   "--calib", str(data_dir), "--min-psnr", "99"])
    _one_line(res, 6, "INT8 check failed: PSNR")
    assert "< --min-psnr 99 dB" in res.output
    assert not out.exists() and out.with_name(out.name + ".failed").is_file()


# --------------------------------------------------------------------------- TensorRT
def test_symmetric_form_for_tensorrt_keeps_accuracy(int8_export, run_dir, tmp_path):
    out, _ = int8_export
    model = onnx.load(str(out))
    assert int8_mod.asymmetric_quantizers(model)           # UINT8 activations for ORT CPU
    sym = int8_mod.to_symmetric(model)
    onnx.checker.check_model(sym)
    assert int8_mod.asymmetric_quantizers(sym) == []
    assert not [i for i in sym.graph.initializer if i.data_type == TensorProto.INT32]
    assert [n.op_type for n in sym.graph.node].count("Relu") == \
        [n.op_type for n in model.graph.node].count("Relu") > 0   # ReLUs survive
    fp32 = tmp_path / "m32.onnx"
    export_run(run_dir, fp32, log=lambda s: None)
    x = synthetic_images(1, 64, 64, seed=3)
    ref = _sess(fp32).run(None, {"input": x})[0]
    assert psnr(_sess(sym).run(None, {"input": x})[0], ref) >= 30.0


def test_tensorrt_plan_for_int8_onnx():
    from pix2pix_edge.export.to_tensorrt import build_plan

    p8 = build_plan((8, 6, 1), "int8")
    assert p8.builder_flags == ("INT8", "FP16", "PREFER_PRECISION_CONSTRAINTS")
    assert p8.network_flags == ("EXPLICIT_BATCH",) and not p8.strongly_typed
    assert p8.precision == "int8" and p8.symmetric_int8 and not p8.convert_to_fp16
    assert p8.pin_norms_fp32
    for version in [(10, 3, 0), (11, 0, 0)]:
        p = build_plan(version, "int8", capability="8.7")
        assert p.strongly_typed and p.builder_flags == () and p.network_flags == ("STRONGLY_TYPED",)
        assert p.precision == "int8" and p.symmetric_int8 and not p.convert_to_fp16
    with pytest.raises(BadInput, match="this one is INT8"):
        build_plan((10, 3, 0), "int8", fp32=True)
    with pytest.raises(Unavailable, match="sm 5.3.*no INT8"):
        build_plan((8, 6, 1), "int8", capability="5.3")
    assert not build_plan((10, 3, 0), "fp32").symmetric_int8


def test_tensorrt_inspect_and_record_say_int8(int8_export):
    from pix2pix_edge.export.to_tensorrt import build_plan, engine_info, inspect_onnx

    out, report = int8_export
    facts = inspect_onnx(out)
    assert facts.precision == "int8" and facts.io_dtype == "float32"
    info = engine_info(facts, build_plan((10, 3, 0), facts.precision), tensorrt_version="10.3.0",
                       gpu_name="Orin", compute_capability="8.7", profile=None,
                       source_onnx=out.name)
    assert info.precision == "int8" and info.float_layers == report["int8"]["float_layers"]
    back = ModelInfo.from_json(info.to_json())
    assert back.precision == "int8" and back.tensorrt_version == "10.3.0"


def test_cli_trt_fp32_from_int8_onnx(int8_export):
    out, _ = int8_export
    _one_line(CliRunner().invoke(cli, ["export", "trt", str(out), "--fp32"]), 3,
              "--fp32 needs the FP32 ONNX (this one is INT8)")


def test_model_info_float_layers_validation():
    ok = ModelInfo(precision="int8", float_layers=["Tanh /t"])
    ok.validate()
    assert ModelInfo.from_json(ok.to_json()).float_layers == ["Tanh /t"]
    with pytest.raises(Exception, match="float_layers"):
        ModelInfo.from_dict({"precision": "fp32", "float_layers": ["Tanh /t"]})
    with pytest.raises(Exception, match="float_layers"):
        ModelInfo.from_dict({"precision": "int8", "float_layers": "Tanh"})
    assert "float_layers" not in ModelInfo().to_dict()


@pytest.mark.gpu
def test_gpu_build_int8_engine_and_parity_with_onnx(tensorrt_module, int8_export, tmp_path):
    from pix2pix_edge.export.parity import compare, onnx_runner
    from pix2pix_edge.export.to_tensorrt import build_engine
    from pix2pix_edge.runtime.backends.tensorrt import TensorRTBackend
    from pix2pix_edge.runtime.model_info import read_engine_record

    out, _ = int8_export
    engine = tmp_path / "m8.engine"
    report = build_engine(out, engine, log=lambda s: None)
    assert report["precision"] == "int8" and read_engine_record(engine).precision == "int8"
    onnx_infer, _ = onnx_runner(str(out))
    backend = TensorRTBackend(engine)
    x = synthetic_images(1, 64, 64, seed=2)
    result = compare([onnx_infer(x)], [backend.infer(x)])
    assert result["psnr_db"] >= 30.0, result


def test_benchmark_section_smoke():
    """benchmarks/int8.py at smoke level: every variant timed side by side, with accuracy."""
    from benchmarks.int8 import run

    result = run("smoke")
    speed = result["speed"][0]
    variants = {r["variant"] for r in speed["rows"]}
    assert variants == {"ort-fp32", "ort-fp32-subpixel", "ort-int8", "ort-int8-no-subpixel"}
    fp32 = next(r for r in speed["rows"] if r["variant"] == "ort-fp32")
    sub = next(r for r in speed["rows"] if r["variant"] == "ort-fp32-subpixel")
    assert fp32["speedup_vs_fp32"] == 1.0 and sub["max_abs_vs_fp32"] < 1e-4
    for r in speed["rows"]:
        assert r["p50_ms"] > 0 and r["n"] >= 3
    assert speed["int8_float_layers"] and "skipped" in result["heldout"]
    assert result["load_start"] is None or len(result["load_start"]) == 3
