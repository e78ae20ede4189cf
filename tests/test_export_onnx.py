"""`pix2pix export onnx`: real exports from a (tiny) trained generator, checked against PyTorch
with real ONNX Runtime sessions; bad input gives one line and the documented exit code."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from pix2pix_edge.export import to_onnx
from pix2pix_edge.export.to_onnx import count_macs, export_run, parse_size
from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import BadInput, CheckFailed, ModelMismatch
from pix2pix_edge.runtime.model_info import ModelInfo
from pix2pix_edge.train.checkpoint import save_generator
from pix2pix_edge.train.models import UNetGenerator, init_weights, inference_copy


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _ort(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _info(path) -> ModelInfo:
    model = onnx.load(str(path))
    return ModelInfo.from_props({p.key: p.value for p in model.metadata_props})


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A run directory with a tiny U-Net (depth 5, ngf 8, BatchNorm) after real Adam steps:
    weights and BatchNorm running statistics both moved away from their initial values."""
    torch.manual_seed(0)
    g = init_weights(UNetGenerator(depth=5, ngf=8)).train()
    opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    target = torch.nn.Conv2d(3, 3, 3, padding=1)  # a fixed "translation" to learn
    for _ in range(4):
        x = torch.rand(2, 3, 64, 64) * 2 - 1
        with torch.no_grad():
            y = torch.tanh(target(x))
        loss = (g(x) - y).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    run = tmp_path_factory.mktemp("run")
    save_generator(run / "generator.pt", g, norm_mode="per-image",
                   data={"direction": "AtoB", "crop_size": 64, "dataset": "synthetic-test"},
                   run="tiny-test-run")
    return run, g


def _pairs_folder(folder):
    """Two aligned A|B images (twice as wide as tall), as a dataset split holds them."""
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 80, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_export_both_norm_modes_pass_parity(trained_run, tmp_path):
    run, g = trained_run
    x = to_onnx.synthetic_images(1, 64, 64, seed=3)
    folder = _pairs_folder(tmp_path / "imgs")
    outs = {}
    for mode in ("per-image", "running"):
        out = tmp_path / f"{mode}.onnx"
        # per-image: checked on real image files; running: on synthetic images
        report = export_run(run, out, norm_mode=mode, log=lambda s: None,
                            check_images=folder if mode == "per-image" else None)
        assert report["parity_fp32"]["max_abs"] <= 1e-4
        if mode == "per-image":
            assert report["parity_fp32"]["n"] == 2 and str(folder) in report["check_images"]
        else:
            assert report["parity_fp32"]["n"] == 4 and report["check_images"] == "synthetic images"
        info = _info(out)
        assert (info.norm_mode, info.height, info.width, info.multiple) == (mode, 64, 64, 32)
        assert (info.depth, info.ngf, info.direction, info.dynamic) == (5, 8, "AtoB", False)
        assert info.source_run == "tiny-test-run" and info.dataset == "synthetic-test"
        assert info.precision == "fp32" and info.io_dtype == "float32"
        ops = report["ops"]
        assert "BatchNormalization" not in ops and "Dropout" not in ops
        # per-image: one InstanceNormalization per BatchNorm of the model; running: all folded
        n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules())
        assert ops.get("InstanceNormalization", 0) == (n_bn if mode == "per-image" else 0)
        y = _ort(out).run(None, {"input": x})[0]
        with torch.no_grad():
            ref = inference_copy(g, mode)(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(y, ref, atol=1e-4)
        outs[mode] = y
    # the two modes are really different functions after training
    assert np.abs(outs["per-image"] - outs["running"]).max() > 1e-3


def test_cli_report_and_dynamic_export_two_sizes(trained_run, tmp_path):
    run, g = trained_run
    out = tmp_path / "dyn.onnx"
    res = CliRunner().invoke(cli, ["export", "onnx", str(run), "-o", str(out), "--dynamic",
                                   "--norm-mode", "running"])
    assert res.exit_code == 0, res.output
    for needle in ("parity FP32 vs PyTorch", "multiply-adds", "ONNX Runtime CPU latency",
                   "parameters 261,715", "dynamic", "batch 2 at 64x32"):  # WxH: 32 high
        assert needle in res.output
    assert _info(out).dynamic
    sess = _ort(out)
    ref_model = inference_copy(g, "running")
    for shape in [(1, 3, 64, 64), (2, 3, 96, 128)]:
        x = to_onnx.synthetic_images(shape[0], shape[2], shape[3], seed=5)
        y = sess.run(None, {"input": x})[0]
        assert y.shape == shape
        with torch.no_grad():
            np.testing.assert_allclose(y, ref_model(torch.from_numpy(x)).numpy(), atol=1e-4)


def test_reference_state_dict_exports(tmp_path):
    torch.manual_seed(1)
    g = init_weights(UNetGenerator(depth=5, ngf=4))
    path = tmp_path / "latest_net_G.pth"
    torch.save(g.state_dict(), path)
    out = tmp_path / "ref.onnx"
    report = export_run(path, out, size=(64, 64), log=lambda s: None)
    assert report["parity_fp32"]["max_abs"] <= 1e-4
    info = _info(out)
    assert "reference checkpoint" in info.source_run and info.norm_mode == "per-image"
    assert report["parameters"] == sum(p.numel() for p in g.parameters())


def test_failed_parity_leaves_no_model(trained_run, tmp_path, monkeypatch):
    run, _ = trained_run
    monkeypatch.setattr(to_onnx, "FP32_MAX_ABS", -1.0)  # nothing can pass: exercise the failure path
    out = tmp_path / "m.onnx"
    with pytest.raises(CheckFailed, match=r"max \|diff\|.*PSNR"):
        export_run(run, out, log=lambda s: None)
    assert not out.exists()
    assert (tmp_path / "m.onnx.failed").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.onnx")]  # temp dir gone


def test_macs_match_reference_unet256():
    g = UNetGenerator(depth=8, ngf=64, norm="batch")
    assert round(count_macs(g.eval(), 256, 256) / 1e9, 2) == 6.05


@pytest.mark.parametrize("text,expected", [("256", (256, 256)), ("512x256", (512, 256)),
                                           (None, None)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected         # the runtime's parser: WxH, width first


def test_parse_size_rejects_garbage():
    for bad in ("big", "128,64"):
        with pytest.raises(BadInput):
            parse_size(bad)


# --------------------------------------------------------------------------- bad input (CLI)
def _invoke(*args):
    return CliRunner().invoke(cli, ["export", "onnx", *map(str, args)])


def _one_line_error(res, code, needle):
    assert res.exit_code == code, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), res.output
    assert needle in lines[0], lines[0]
    assert "Traceback" not in res.output


def test_missing_run(tmp_path):
    _one_line_error(_invoke(tmp_path / "nope", "-o", tmp_path / "m.onnx"), 3, "not found")


def test_run_dir_without_generator(tmp_path):
    _one_line_error(_invoke(tmp_path, "-o", tmp_path / "m.onnx"), 3, "no generator.pt")


def test_corrupt_checkpoint(tmp_path):
    bad = tmp_path / "generator.pt"
    bad.write_bytes(b"\x00not a torch file" * 10)
    _one_line_error(_invoke(bad, "-o", tmp_path / "m.onnx"), 3, "corrupt")


def test_checkpoint_from_other_architecture(tmp_path):
    g = UNetGenerator(depth=5, ngf=4)
    path = tmp_path / "generator.pt"
    save_generator(path, g, norm_mode="running")
    record = torch.load(path, weights_only=True)
    record["config"]["depth"] = 6  # weights of depth 5 under a depth-6 config
    torch.save(record, path)
    _one_line_error(_invoke(path, "-o", tmp_path / "m.onnx"), 4, "weights do not fit")


def test_size_not_multiple(trained_run, tmp_path):
    run, _ = trained_run
    _one_line_error(_invoke(run, "-o", tmp_path / "m.onnx", "--size", "100"), 3,
                    "not a multiple of 32")
    _one_line_error(_invoke(run, "-o", tmp_path / "m.onnx", "--size", "64x48"), 3,
                    "--size 64x48 is not a multiple of 32 (2**depth of this U-Net); try 64x64")
    _one_line_error(_invoke(run, "-o", tmp_path / "m.onnx", "--size", "64,32"), 2,
                    "bad size --size '64,32': expected WIDTHxHEIGHT")   # a bad command line: 2


def test_non_square_size_is_width_by_height(tmp_path):
    torch.manual_seed(1)
    g = init_weights(UNetGenerator(depth=5, ngf=4))
    path = tmp_path / "latest_net_G.pth"
    torch.save(g.state_dict(), path)
    out = tmp_path / "wide.onnx"
    res = _invoke(path, "-o", out, "--size", "64x32", "--no-simplify")
    assert res.exit_code == 0, res.output
    info = _info(out)
    assert (info.width, info.height) == (64, 32)
    assert [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim] \
        == [1, 3, 32, 64]
    assert "static 64x32" in res.output


def test_unwritable_output(trained_run, tmp_path):
    run, _ = trained_run
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    _one_line_error(_invoke(run, "-o", blocker / "m.onnx"), 3, "cannot write")
    _one_line_error(_invoke(run, "-o", tmp_path), 3, "is a directory")


def test_fp16_io_needs_fp16(trained_run, tmp_path):
    run, _ = trained_run
    _one_line_error(_invoke(run, "-o", tmp_path / "m.onnx", "--fp16-io"), 2, "--fp16-io needs --fp16")


def test_onnx_file_as_source(tiny_onnx, tmp_path):
    _one_line_error(_invoke(tiny_onnx, "-o", tmp_path / "m.onnx"), 3, "already an ONNX file")


def test_library_errors_are_typed(tmp_path):
    with pytest.raises(ModelMismatch):
        path = tmp_path / "x.pt"
        torch.save({"foo": 1}, path)
        export_run(path, tmp_path / "m.onnx", log=lambda s: None)


def test_export_from_pix2pix_train_run(tmp_path):
    """End to end with the real training loop (train/loop.py): a 4-iteration run on synthetic
    data, exported through the CLI; the parity check uses the run's own dataset images."""
    loop = pytest.importorskip("pix2pix_edge.train.loop")
    synth = pytest.importorskip("pix2pix_edge.train.synth")
    data = synth.make_dataset(tmp_path / "d", n=4, size=32, seed=3, val=2)
    run = tmp_path / "run"
    loop.train(loop.TrainOptions(data=str(data), run=str(run), depth=5, ngf=4, ndf=4,
                                 load_size=36, crop_size=32, workers=0, progress=False,
                                 tensorboard=False, threads=1, amp="off", max_iters=4))
    out = tmp_path / "m.onnx"
    res = CliRunner().invoke(cli, ["export", "onnx", str(run), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert f"images from {data}" in res.output  # found through the run's record
    info = _info(out)
    assert (info.height, info.depth, info.ngf, info.norm_mode) == (32, 5, 4, "per-image")


# --------------------------------------------------------------------------- the parity check
def _progress_then_one_error(res, code, needle):
    """Exit ``code``; progress lines (stderr) may come first, then one ``Error:`` line, last."""
    assert res.exit_code == code, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    assert len(errors) == 1 and lines[-1] == errors[0] and needle in errors[0], res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("precision,flags,only_dynamic,needle", [
    ("fp32", [], False, "parity check failed: ONNX Runtime vs PyTorch max |diff| 5.00e-01 > 1e-04"),
    ("fp16", ["--fp16"], False, "FP16 check failed: PSNR 12.0 dB vs the FP32 model < 40 dB"),
    ("int8", ["--int8"], False, "INT8 check failed: PSNR 12.0 dB vs the FP32 model < --min-psnr 30"),
    ("fp16", ["--fp16", "--dynamic"], True, "FP16 check failed: PSNR 12.0 dB"),
])
def test_a_bad_output_fails_its_precisions_check(trained_run, tmp_path, monkeypatch, precision,
                                                 flags, only_dynamic, needle):
    """A model of ``precision`` whose outputs come back off by 0.5 (in the runtime's backend, as
    a broken graph would give them; with ``only_dynamic`` only on the --dynamic batch of 2):
    the one parity check rejects it at its precision's limit, exit 6, no OUTPUT, the rejected
    file kept as OUTPUT.failed, the temporary folder removed."""
    from pix2pix_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend

    run, _ = trained_run
    infer = OnnxRuntimeBackend.infer

    def broken(self, batch):
        y = infer(self, batch)
        hit = self.info.precision == precision and (batch.shape[0] == 2 or not only_dynamic)
        return y + 0.5 if hit else y

    monkeypatch.setattr(OnnxRuntimeBackend, "infer", broken)
    if "--int8" in flags:
        flags = flags + ["--calib", str(_pairs_folder(tmp_path / "calib"))]
    out = tmp_path / "m.onnx"
    res = _invoke(run, "-o", out, *flags)
    _progress_then_one_error(res, 6, needle)
    assert "the rejected file is kept as" in res.output
    assert not out.exists()
    assert _info(tmp_path / "m.onnx.failed").precision == precision  # the file that failed
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.onnx")]


def test_threads_reach_every_parity_session_and_the_report(trained_run, tmp_path, monkeypatch):
    from pix2pix_edge.export.to_onnx import format_report
    from pix2pix_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend
    from pix2pix_edge.runtime.machine import physical_cores

    run, _ = trained_run
    seen = []
    init = OnnxRuntimeBackend.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        seen.append((self.info.precision, self.threads))  # what the session really got

    monkeypatch.setattr(OnnxRuntimeBackend, "__init__", spy)
    report = export_run(run, tmp_path / "a.onnx", fp16=True, threads=1, log=lambda s: None)
    assert seen == [("fp32", 1), ("fp16", 1)] and report["threads"] == 1
    assert "(batch 1, 1 thread)" in "\n".join(format_report(report))
    seen.clear()
    report = export_run(run, tmp_path / "b.onnx", log=lambda s: None)   # default: as the runtime
    assert seen == [("fp32", physical_cores())] and report["threads"] == physical_cores()


@pytest.mark.parametrize("module", ["pix2pix_edge.runtime.backends.onnxruntime", "onnxruntime"])
def test_no_runtime_backend_no_export(trained_run, tmp_path, monkeypatch, module):
    """Parity runs through the runtime's backend or not at all: without it (or without
    onnxruntime) the export stops before any work, one line, exit 5, and writes nothing."""
    import sys

    from pix2pix_edge.runtime.errors import Unavailable

    run, _ = trained_run
    monkeypatch.setitem(sys.modules, module, None)   # the import fails as if not installed
    out = tmp_path / "m.onnx"
    with pytest.raises(Unavailable) as e:
        export_run(run, out, log=lambda s: None)
    assert e.value.exit_code == 5 and "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_a_backend_that_does_not_fit_is_not_replaced(trained_run, tmp_path, monkeypatch):
    """A runtime backend with another signature is a bug to see, not a reason to check the
    export with some other ONNX Runtime session."""
    from pix2pix_edge.runtime.backends import onnxruntime as ort_backend

    class OtherSignature:
        def __init__(self, path):
            pass

    run, _ = trained_run
    monkeypatch.setattr(ort_backend, "OnnxRuntimeBackend", OtherSignature)
    with pytest.raises(TypeError):
        export_run(run, tmp_path / "m.onnx", log=lambda s: None)
    assert not (tmp_path / "m.onnx").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.onnx")]


def test_dynamic_non_square_export_prints_wxh(trained_run, tmp_path):
    """--size 64x32 --dynamic: 64 wide, 32 high; the second parity size is 32 wide, 64 high
    (batch 2), printed WxH like every size."""
    run, g = trained_run
    out = tmp_path / "wide.onnx"
    res = _invoke(run, "-o", out, "--size", "64x32", "--dynamic")
    assert res.exit_code == 0, res.output
    assert "dynamic batch/H/W 64x32" in res.output and "per 64x32 frame" in res.output
    assert "+ batch 2 at 32x64" in res.output, res.output
    info = _info(out)
    assert (info.width, info.height, info.dynamic) == (64, 32, True)
    x = to_onnx.synthetic_images(2, 64, 32, seed=4)      # NCHW: 64 high, 32 wide
    with torch.no_grad():
        ref = inference_copy(g, "per-image")(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_ort(out).run(None, {"input": x})[0], ref, atol=1e-4)


def test_a_killed_exports_work_folder_is_removed_by_the_next_export(trained_run, tmp_path):
    """kill -9 during an export leaves a hidden work folder named after the output and the
    killed process (issue 21.10); the next export of that output removes it."""
    import subprocess
    import sys
    run, _ = trained_run
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    stale = tmp_path / f".m.onnx.pid{proc.pid}.a1b2c3d4"
    stale.mkdir()
    (stale / "fp32.onnx").write_bytes(b"\0" * 1000)
    _invoke(run, "-o", tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_an_output_that_is_the_generator_is_refused(trained_run, tmp_path):
    """Issue 21.5: `export onnx RUN -o RUN/generator.pt` replaced the trained generator."""
    import shutil
    run = tmp_path / "run"
    shutil.copytree(trained_run[0], run)
    before = (run / "generator.pt").read_bytes()
    (tmp_path / "alias.pt").symlink_to(run / "generator.pt")
    for source, output in [(run, run / "generator.pt"), (run / "generator.pt", tmp_path / "alias.pt"),
                           (run, run / "sub" / ".." / "generator.pt")]:
        (run / "sub").mkdir(exist_ok=True)
        _one_line_error(_invoke(source, "-o", output), 3, "writing it would destroy it")
    assert (run / "generator.pt").read_bytes() == before


def test_export_trt_refuses_to_write_the_engine_over_its_onnx(tiny_onnx, tmp_path):
    """Refused before TensorRT is even looked for (so this runs on any machine)."""
    import shutil
    model = tmp_path / "m.onnx"
    shutil.copy(tiny_onnx, model)
    before = model.read_bytes()
    res = CliRunner().invoke(cli, ["export", "trt", str(model), "-o", str(model)])
    _one_line_error(res, 3, "is the ONNX model")
    res = CliRunner().invoke(cli, ["export", "trt", str(model), "-o", str(tmp_path / "m"),
                                   "--timing-cache", str(model)])
    _one_line_error(res, 3, "--timing-cache")
    assert model.read_bytes() == before
