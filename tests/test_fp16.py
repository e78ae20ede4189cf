"""FP16 ONNX (export/fp16.py): FP16 weights and compute, FP32 islands for normalisations and
reductions, FP32 or FP16 I/O; accuracy vs the FP32 model >= 40 dB with real ORT sessions."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pix2pix_edge.export.fp16 import FP32_OPS, convert_model, is_fp16
from pix2pix_edge.export.to_onnx import export_run, synthetic_images
from pix2pix_edge.runtime.model_info import ModelInfo
from pix2pix_edge.train.checkpoint import save_generator
from tests.tiny_model import trained_tiny_generator


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sess(model_or_path):
    import onnxruntime as ort

    src = model_or_path.SerializeToString() if isinstance(model_or_path, onnx.ModelProto) \
        else str(model_or_path)
    return ort.InferenceSession(src, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny BatchNorm U-Net after real Adam steps (running statistics moved). Initialised
    with gain 0.1 so its outputs span most of [-1, 1]: a 40 dB bound on near-zero outputs
    would be too easy to meet."""
    g = trained_tiny_generator()
    run = tmp_path_factory.mktemp("run16")
    save_generator(run / "generator.pt", g, norm_mode="per-image",
                   data={"direction": "AtoB", "crop_size": 64}, run="fp16-test")
    return run


def _input_types(model):
    return [i.type.tensor_type.elem_type for i in model.graph.input]


def test_fp16_export_per_image(run_dir, tmp_path):
    """per-image = InstanceNormalization: it must run in FP32 inside the FP16 graph."""
    out = tmp_path / "m16.onnx"
    report = export_run(run_dir, out, fp16=True, log=lambda s: None)
    assert report["parity_fp16"]["psnr_db"] >= 40.0
    assert report["parity_fp32"]["max_abs"] <= 1e-4
    model = onnx.load(str(out))
    assert is_fp16(model)
    assert _input_types(model) == [TensorProto.FLOAT]
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    info = ModelInfo.from_props({p.key: p.value for p in model.metadata_props})
    assert (info.precision, info.io_dtype, info.norm_mode) == ("fp16", "float32", "per-image")

    producers = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: i for i in model.graph.initializer}
    norms = [n for n in model.graph.node if n.op_type == "InstanceNormalization"]
    assert norms
    for n in norms:  # FP32 in (a Cast to FP32), FP32 scale and bias, FP32 out (cast back)
        cast_in = producers[n.input[0]]
        assert cast_in.op_type == "Cast" and cast_in.attribute[0].i == TensorProto.FLOAT
        assert inits[n.input[1]].data_type == TensorProto.FLOAT
        assert inits[n.input[2]].data_type == TensorProto.FLOAT
    conv_weights = [inits[n.input[1]] for n in model.graph.node if n.op_type == "Conv"]
    assert conv_weights and all(w.data_type == TensorProto.FLOAT16 for w in conv_weights)

    # and independently of the exporter's own check: ORT FP16 vs FP32 on fresh images
    x = synthetic_images(2, 64, 64, seed=9)
    fp32 = tmp_path / "m32.onnx"
    export_run(run_dir, fp32, log=lambda s: None)
    y32 = np.concatenate([_sess(fp32).run(None, {"input": xi[None]})[0] for xi in x])
    y16 = np.concatenate([_sess(out).run(None, {"input": xi[None]})[0] for xi in x])
    assert y32.std() > 0.2  # outputs are not near-constant
    mse = float(np.mean((y32.astype(np.float64) - y16) ** 2))
    assert 10 * np.log10(4 / mse) >= 40.0


def test_fp16_io_running_mode(run_dir, tmp_path):
    out = tmp_path / "m16io.onnx"
    report = export_run(run_dir, out, fp16=True, fp16_io=True, norm_mode="running",
                        log=lambda s: None)
    assert report["parity_fp16"]["psnr_db"] >= 40.0
    model = onnx.load(str(out))
    assert _input_types(model) == [TensorProto.FLOAT16]
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    assert not [n for n in model.graph.node if n.op_type in FP32_OPS]  # BN folded away
    y = _sess(out).run(None, {"input": synthetic_images(1, 64, 64).astype(np.float16)})[0]
    assert y.dtype == np.float16 and y.shape == (1, 3, 64, 64)


def test_convert_keeps_reductions_fp32_and_integer_inputs_untouched():
    """A graph with a Conv, a ReduceMean whose axes are an int64 input (opset 18) and a Mul:
    the reduction runs in FP32, the int64 axes stay int64, shape/type inference passes."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    axes = numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes")
    scale = numpy_helper.from_array(np.array(0.5, dtype=np.float32), "scale")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("ReduceMean", ["c", "axes"], ["m"], keepdims=1),
             helper.make_node("Mul", ["m", "scale"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 1, 1])],
        initializer=[w, axes, scale])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    fp16 = convert_model(model)
    inits = {i.name: i for i in fp16.graph.initializer}
    assert inits["axes"].data_type == TensorProto.INT64
    assert inits["w"].data_type == TensorProto.FLOAT16
    reduce = next(n for n in fp16.graph.node if n.op_type == "ReduceMean")
    assert reduce.input[1] == "axes"
    x = rng.uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32)
    y32 = _sess(model).run(None, {"x": x})[0]
    y16 = _sess(fp16).run(None, {"x": x})[0]
    assert y16.dtype == np.float32
    np.testing.assert_allclose(y16, y32, atol=5e-3)
