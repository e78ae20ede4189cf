"""Steady video under camera motion (issue 19): the anti-aliased U-Net (--antialias), the
transform-consistency loss (--lambda-stability), fine-tuning (--init-from), their records, exact
resume, export parity of anti-aliased models and Lai et al.'s squared-L2 warping error."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import BadUsage, ModelMismatch
from pix2pix_edge.runtime.flicker import pan_flicker, pan_frames
from pix2pix_edge.train import loop
from pix2pix_edge.train.checkpoint import load_generator, load_training_checkpoint
from pix2pix_edge.train.loop import TrainOptions, train
from pix2pix_edge.train.models import (AntiAliasedConv2d, LowPass, UNetGenerator, count_parameters,
                                       init_weights)
from pix2pix_edge.train.stability import consistency_loss, valid_region, warp
from tests.test_resume import assert_same_state

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# 6 pairs, batch 2: 3 iterations per epoch; 1 constant + 2 decay epochs = 9 iterations in all
TINY = dict(depth=6, ngf=4, ndf=4, load_size=72, crop_size=64, workers=0, progress=False,
            tensorboard=False, amp="auto", threads=1, batch_size=2, epochs=1, epochs_decay=2,
            log_every=1)
STEADY = dict(antialias=True, lambda_stability=10.0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from pix2pix_edge.train.synth import make_dataset
    return make_dataset(tmp_path_factory.mktemp("synth") / "d", n=6, size=32, seed=1)


@pytest.fixture(scope="module")
def source(data, tmp_path_factory):
    """A plain run (no anti-aliasing, no stability loss) of 3 iterations, last pair held out."""
    run = tmp_path_factory.mktemp("source") / "run"
    train(TrainOptions(data=str(data), run=str(run), **TINY, max_iters=3, holdout_last=1))
    return run


# --------------------------------------------------------------------------- the model
def test_antialias_adds_no_parameter_and_a_plain_checkpoint_loads_into_it():
    torch.manual_seed(0)
    plain = init_weights(UNetGenerator(depth=6, ngf=8))
    for pad in ("reflect", "zero"):
        steady = UNetGenerator(depth=6, ngf=8, antialias=True, antialias_pad=pad)
        assert count_parameters(steady) == count_parameters(plain)
        assert [n for n, _ in steady.named_parameters()] == [n for n, _ in plain.named_parameters()]
        assert steady.state_dict().keys() == plain.state_dict().keys()   # filters: not saved
        steady.load_state_dict(plain.state_dict(), strict=True)
        filters = [m for m in steady.modules() if isinstance(m, LowPass)]
        # before each stride-2 encoder conv and after each x2 up-sampling, the innermost aside
        assert len(filters) == 2 * (6 - 1)
        assert sum(isinstance(m, AntiAliasedConv2d) for m in steady.modules()) == 6 - 1
        assert steady.config["antialias"] is True and steady.config["antialias_pad"] == pad
    assert "antialias" not in plain.config      # a plain model's config is the reference's


def test_the_filters_stay_frozen_in_training():
    torch.manual_seed(0)
    g = init_weights(UNetGenerator(depth=5, ngf=4, antialias=True))
    kernels = [m.kernel.clone() for m in g.modules() if isinstance(m, LowPass)]
    opt = torch.optim.Adam(g.parameters(), lr=1e-2)
    loss = g(torch.rand(1, 3, 32, 32)).square().mean()
    loss.backward()
    opt.step()
    assert all(torch.equal(k, m.kernel) for k, m in
               zip(kernels, [m for m in g.modules() if isinstance(m, LowPass)]))
    assert not any(m.kernel.requires_grad for m in g.modules() if isinstance(m, LowPass))


def test_down_then_up_filter_is_the_centred_7_tap_binomial():
    """The encoder's filter looks half a pixel ahead, the decoder's half a pixel back: together a
    centred [1, 6, 15, 20, 15, 6, 1]^2 / 4096, so no path through the U-Net is shifted."""
    x = torch.zeros(1, 1, 21, 21)
    x[0, 0, 10, 10] = 1.0
    y = LowPass(1, "zero", "up")(LowPass(1, "zero", "down")(x))[0, 0]
    b = torch.tensor([1.0, 6, 15, 20, 15, 6, 1])
    expected = torch.zeros(21, 21)
    expected[7:14, 7:14] = torch.outer(b, b) / 4096
    assert torch.allclose(y, expected, atol=1e-7)
    flat = torch.full((1, 2, 9, 9), 0.3)      # reflect keeps a constant constant, border too
    assert torch.allclose(LowPass(2, "reflect")(flat), flat)


# --------------------------------------------------------------------------- the loss
def test_warp_of_a_known_translation_and_its_valid_region():
    img = torch.arange(8 * 12, dtype=torch.float32).reshape(1, 1, 8, 12)
    theta = torch.tensor([[[1.0, 0.0, 3 * 2 / 12], [0.0, 1.0, 0.0]]])   # sample 3 px to the right
    grid = torch.nn.functional.affine_grid(theta, [1, 1, 8, 12], align_corners=False)
    out = warp(img, grid)
    assert torch.allclose(out[..., :9], img[..., 3:], atol=1e-4)
    mask = valid_region(grid, 8, 12)[0, 0]
    assert mask[:, :9].all() and not mask[:, 9:].any()


def test_a_translation_equivariant_generator_costs_nothing():
    """For a G that commutes with every transform (here: the identity), G(T(x)) = T(G(x)) on the
    valid region: only the noise is left. Noise off -> zero loss."""
    class Opts:
        stability_shift, stability_rotate, stability_zoom, stability_noise = 4.0, 1.0, 0.03, 0.0
    x = torch.rand(2, 3, 32, 32)
    torch.manual_seed(0)
    loss = consistency_loss(lambda t: t, x, x, Opts, torch.autocast("cpu", enabled=False))
    assert float(loss) < 1e-6
    Opts.stability_noise = 0.1
    off = torch.autocast("cpu", enabled=False)
    assert float(consistency_loss(lambda t: t, x, x, Opts, off)) > 0.005


def test_the_stability_loss_falls_when_fine_tuning_a_plain_run(tmp_path):
    """A real short run: a plain model fine-tuned with --lambda-stability 100; the logged G_STAB
    (weighted) falls over 40 iterations."""
    from pix2pix_edge.train.synth import make_dataset

    d = make_dataset(tmp_path / "d", n=8, size=64, seed=1)
    opts = dict(depth=5, ngf=8, ndf=8, load_size=72, crop_size=64, workers=0, progress=False,
                tensorboard=False, amp="off", threads=1, epochs=5, epochs_decay=0, log_every=5)
    train(TrainOptions(data=str(d), run=str(tmp_path / "plain"), **opts))
    train(TrainOptions(data=str(d), run=str(tmp_path / "ft"), lambda_stability=100.0,
                       init_from=str(tmp_path / "plain"), **opts))
    stab = [float(r["G_STAB"]) for r in csv.DictReader(open(tmp_path / "ft" / "log.csv"))]
    assert len(stab) == 8
    assert np.mean(stab[-2:]) < 0.75 * np.mean(stab[:2]), stab


# --------------------------------------------------------------------------- resume and records
def test_stop_and_resume_with_both_options_is_bitwise_identical(data, tmp_path):
    straight = tmp_path / "straight"
    train(TrainOptions(data=str(data), run=str(straight), **TINY, **STEADY))
    run = tmp_path / "run"
    train(TrainOptions(data=str(data), run=str(run), **TINY, **STEADY, max_iters=4))
    train(TrainOptions(data=str(data), run=str(run), **TINY, **STEADY, resume=True))
    a = load_training_checkpoint(run / "checkpoints" / "latest.pt")
    assert_same_state(a, load_training_checkpoint(straight / "checkpoints" / "latest.pt"))
    header = next(csv.reader(open(run / "log.csv")))
    assert header[-3] == "G_STAB"
    options = json.loads((run / "config.json").read_text())["options"]
    assert options["antialias"] is True and options["lambda_stability"] == 10.0
    assert options["stability_shift"] == 4.0 and options["antialias_pad"] == "reflect"
    G, record = load_generator(run)
    assert G.config["antialias"] is True
    assert record["training"]["lambda_stability"] == 10.0


def test_distill_takes_both_options(data, source, tmp_path):
    from pix2pix_edge.train.distill import distill
    from pix2pix_edge.train.distill_options import DistillOptions

    run = tmp_path / "student"
    opts = {k: v for k, v in TINY.items() if k not in ("depth", "load_size", "crop_size")}
    distill(DistillOptions(data=str(data), run=str(run), teacher=str(source), max_iters=3,
                           **{**opts, "ngf": 2}, **STEADY))
    header = next(csv.reader(open(run / "log.csv")))
    assert "G_STAB" in header
    G, record = load_generator(run)
    assert G.config["antialias"] is True and record["training"]["lambda_stability"] == 10.0


# --------------------------------------------------------------------------- --init-from
def test_init_from_loads_the_weights_with_fresh_optimisers(data, source, tmp_path):
    o = TrainOptions(data=str(data), run=str(tmp_path / "new"), **TINY, **STEADY,
                     init_from=str(source), holdout_last=1, max_iters=2)
    env = loop.setup(o)
    m = loop.build_models(o, env, loop.load_data(o, env))
    said = loop.start_from(m, o)
    saved = load_training_checkpoint(source / "checkpoints" / "latest.pt")
    for part, net in (("G", m.G), ("D", m.D)):
        for k, v in net.state_dict().items():
            assert torch.equal(v, saved[part][k]), f"{part}.{k}"
    assert not m.opt_G.state and not m.opt_D.state and m.sched_G.last_epoch == 0
    assert "G and D" in said and "fresh" in said

    summary = train(o)
    assert summary["iterations"] == 2
    new = load_training_checkpoint(tmp_path / "new" / "checkpoints" / "latest.pt")
    assert all(float(s["step"]) == 2 for s in new["opt_G"]["state"].values())   # source: 3
    assert json.loads((tmp_path / "new" / "config.json").read_text())["options"]["init_from"] \
        == str(source)
    assert load_generator(tmp_path / "new")[1]["training"]["init_from"] == str(source)


def test_init_from_refusals(data, source, tmp_path):
    with pytest.raises(ModelMismatch, match=r"another architecture \(ngf 4 -> 8\)"):
        train(TrainOptions(data=str(data), run=str(tmp_path / "a"), **{**TINY, "ngf": 8},
                           init_from=str(source), holdout_last=1, max_iters=1))
    # holding out pairs the source trained on would score the new run on them
    with pytest.raises(BadUsage, match="were trained on by that run"):
        train(TrainOptions(data=str(data), run=str(tmp_path / "b"), **TINY,
                           init_from=str(source), holdout_last=2, max_iters=1))


def test_cli_init_from_inherits_the_architecture_and_hold_out(data, source, tmp_path):
    new = tmp_path / "cli"
    r = CliRunner().invoke(cli, ["train", str(data), "--run", str(new), "--init-from", str(source),
                                 "--antialias", "--lambda-stability", "5", "--max-iters", "1",
                                 "--workers", "0", "--no-progress", "--no-tensorboard",
                                 "--threads", "1"])
    assert r.exit_code == 0, r.output
    options = json.loads((new / "config.json").read_text())["options"]
    assert (options["depth"], options["ngf"], options["crop_size"], options["holdout_last"]) \
        == (6, 4, 64, 1)
    assert options["antialias"] and options["lambda_stability"] == 5.0
    r = CliRunner().invoke(cli, ["train", str(data), "--run", str(new), "--resume",
                                 "--init-from", str(source)])
    assert r.exit_code == 2 and "give one of them" in r.output, r.output
    r = CliRunner().invoke(cli, ["train", str(data), "--run", str(tmp_path / "x"), "--init-from",
                                 str(source), "--ngf", "8", "--max-iters", "1", "--workers", "0",
                                 "--no-progress"])
    assert r.exit_code == 4 and "another architecture" in r.output, r.output


# --------------------------------------------------------------------------- export parity
@pytest.fixture(scope="module")
def steady_run(tmp_path_factory):
    """The tiny trained generator of the export tests (tests/tiny_model.py), its weights loaded
    into an anti-aliased U-Net, saved as a run directory with a calibration dataset."""
    from pix2pix_edge.train.checkpoint import save_generator
    from tests.test_int8 import _save_images
    from tests.tiny_model import trained_tiny_generator

    data_dir = _save_images(tmp_path_factory.mktemp("calib") / "train", 16).parent
    g = UNetGenerator(depth=5, ngf=8, antialias=True)
    g.load_state_dict(trained_tiny_generator().state_dict())
    run = tmp_path_factory.mktemp("steady")
    save_generator(run / "generator.pt", g, norm_mode="running", run="steady-test",
                   data={"direction": "AtoB", "crop_size": 64}, training={"lambda_stability": 10.0})
    (run / "config.json").write_text(json.dumps({"options": {"data": str(data_dir),
                                                             "holdout_last": 4}}))
    return run, data_dir


def _grouped_convs(model) -> int:
    return sum(1 for n in model.graph.node if n.op_type == "Conv"
               and any(a.name == "group" and a.i > 1 for a in n.attribute))


@pytest.mark.parametrize("kw", [{}, {"norm_mode": "per-image"}, {"fp16": True}, {"int8": True}],
                         ids=["fp32-running", "fp32-per-image", "fp16", "int8"])
def test_export_parity_of_an_antialiased_model(steady_run, kw, tmp_path):
    from pix2pix_edge.export.to_onnx import export_run
    from pix2pix_edge.runtime.model_info import ModelInfo

    run, data_dir = steady_run
    extra = dict(calib=data_dir, calib_images=8) if kw.get("int8") else {}
    out = tmp_path / "m.onnx"
    report = export_run(run, out, check_images=data_dir / "train", log=lambda s: None, **kw,
                        **extra)
    assert report["parity_fp32"]["max_abs"] <= 1e-4
    if kw.get("fp16"):
        assert report["parity_fp16"]["psnr_db"] >= 40
    if kw.get("int8"):
        assert report["parity_int8"]["psnr_db"] >= 30
    model = onnx.load(str(out))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Pad") == 2 * (5 - 1)                      # reflect: one Pad per filter
    assert _grouped_convs(model) == 2 * (5 - 1)                 # the depthwise low-pass filters
    info = ModelInfo.from_props({p.key: p.value for p in model.metadata_props})
    assert info.extra["antialias"] is True and info.extra["antialias_pad"] == "reflect"
    assert info.extra["lambda_stability"] == 10.0


# --------------------------------------------------------------------------- warping error, L2
def test_lai_squared_l2_warping_error_on_a_known_case():
    """A pan whose output alternates between grey 51 and 153 (0.2 / 0.6) on the left half of
    each frame and stays fixed on the right: per pair L1 = 0.4 x share, L2 = 0.16 x share."""
    canvas = np.tile(np.arange(200, dtype=np.uint8)[None, :, None], (16, 1, 3))
    inputs = pan_frames(canvas, 40, step=4, count=5)
    outputs = []
    for t in range(5):
        o = np.full((16, 40, 3), 100, np.uint8)
        o[:, :18] = 51 if t % 2 == 0 else 153
        outputs.append(o)
    r = pan_flicker(inputs, outputs, step=4)
    # valid columns: 0..35 (the 4 entering at the right are masked); flicker in 18 of them:
    # columns 0..17 of frame t+1 against columns 4..21 of frame t, 14 of which are grey too
    # and differ by 0.4; columns 14..17 of frame t+1 meet the fixed 100 of columns 18..21
    share_grey, share_edge = 14 / 36, 4 / 36
    d_edge = abs(100 - 51) / 255, abs(100 - 153) / 255      # the two alternations
    for k, pair in enumerate(zip(r["per_pair"]["l1"], r["per_pair"]["l2"])):
        edge = d_edge[(k + 1) % 2]
        assert pair[0] == pytest.approx(0.4 * share_grey + edge * share_edge, abs=1e-6)
        assert pair[1] == pytest.approx(0.16 * share_grey + edge ** 2 * share_edge, abs=1e-7)
    assert r["flicker_input"] == 0.0 and r["flicker_l2_input"] == 0.0
    assert r["flicker_l2"] == pytest.approx(np.mean(r["per_pair"]["l2"]), abs=1e-7)
    assert r["pairs"] == 4 and len(r["per_pair"]["input_l1"]) == 4


def test_lai_l2_of_per_frame_noise_is_twice_the_variance():
    rng = np.random.default_rng(0)
    canvas = np.full((64, 400, 3), 128, np.uint8)
    frames = pan_frames(canvas, 64, step=4, count=10)
    noisy = [np.clip(f + rng.normal(0, 10, f.shape), 0, 255).astype(np.float32) / 255
             for f in frames]
    r = pan_flicker(frames, noisy, step=4)
    assert r["flicker_l2"] == pytest.approx(2 * (10 / 255) ** 2, rel=0.05)


# --------------------------------------------------------------------------- DDP
def _ddp_worker(rank: int, world: int, data: str, tmp: str) -> None:
    import torch.distributed as dist

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank,
                            world_size=world)
    try:
        def keep(s):
            if s["iteration"] == 3:
                torch.save({n: p.detach().clone() for n, p in s["G"].named_parameters()},
                           f"{tmp}/G_{rank}.pt")
        train(TrainOptions(data=data, run=f"{tmp}/run{rank}", **{**TINY, "batch_size": 1},
                           **STEADY, max_iters=3), callback=keep)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_with_the_stability_loss_end_identical(data, tmp_path):
    """Two generator passes per iteration under DDP (x and T(x)) before one backward."""
    import torch.distributed._functional_collectives  # noqa: F401
    import torch.multiprocessing as mp

    mp.start_processes(_ddp_worker, args=(2, str(data), str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")
    a, b = (torch.load(tmp_path / f"G_{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------- TensorRT
@pytest.fixture(scope="module")
def steady_onnx(steady_run, tmp_path_factory):
    """The anti-aliased tiny model exported to FP32 ONNX (reflect pads, depthwise filters)."""
    from pix2pix_edge.export.to_onnx import export_run

    run, data_dir = steady_run
    out = tmp_path_factory.mktemp("steady-onnx") / "m.onnx"
    export_run(run, out, check_images=data_dir / "train", log=lambda s: None)
    return out


def test_tensorrt_inspection_sees_the_pads_and_every_version_parses_them(steady_onnx):
    """onnx-tensorrt imports Pad as an ISliceLayer: constant / reflect / edge since 8.2, wrap
    since 10.0; every TensorRT pix2pix-edge supports (8.5+) takes the reflect pads."""
    from pix2pix_edge.export.to_tensorrt import check_pad_modes, inspect_onnx

    facts = inspect_onnx(steady_onnx)
    assert facts.pad_modes == ("reflect",) and facts.info.extra["antialias"] is True
    for version in ((8, 5, 2), (8, 6, 1), (10, 3, 0), (11, 4, 0)):
        check_pad_modes(facts, version)
    import dataclasses
    wrap = dataclasses.replace(facts, pad_modes=("wrap",))
    with pytest.raises(ModelMismatch, match="mode 'wrap', which TensorRT 10.0\\+ parses"):
        check_pad_modes(wrap, (8, 6, 1))
    check_pad_modes(wrap, (10, 3, 0))


@pytest.mark.gpu
@pytest.mark.parametrize("fp32", [True, False], ids=["fp32", "fp16"])
def test_gpu_engine_of_an_antialiased_model_matches_onnx(steady_onnx, fp32, tmp_path):
    pytest.importorskip("tensorrt")
    from pix2pix_edge.export.parity import compare, onnx_runner
    from pix2pix_edge.export.to_onnx import synthetic_images
    from pix2pix_edge.export.to_tensorrt import build_engine
    from pix2pix_edge.runtime.backends.tensorrt import TensorRTBackend

    lines = []
    engine = tmp_path / "m.engine"
    build_engine(steady_onnx, engine, fp32=fp32, log=lines.append)
    assert "anti-aliasing: 8 low-pass filters (depthwise 4x4 convolutions), 8 reflect pads" \
        in "\n".join(lines), lines
    onnx_infer, _ = onnx_runner(str(steady_onnx))
    x = synthetic_images(2, 64, 64, seed=3)[:1]
    result = compare([onnx_infer(x)], [TensorRTBackend(engine).infer(x)])
    assert result["psnr_db"] >= (60.0 if fp32 else 40.0), result


# --------------------------------------------------------------------------- the benchmark
def test_steady_benchmark_section_smoke(tmp_path):
    """benchmarks/steady.py at smoke level: five trained rows measured, latency filled in, the
    pictures written, the Markdown printable; registered in the suite."""
    from benchmarks.__main__ import SECTIONS
    from benchmarks.steady import ROWS, markdown, run

    assert SECTIONS["steady"] == "steady"
    r = run("smoke", png_dir=tmp_path)
    assert [row["model"] for row in r["rows"]] == list(ROWS)
    for row in r["rows"]:
        for key in ("l1", "psnr", "ssim", "pan_l1", "pan_l2", "ms_ngf8", "ms_ngf4"):
            assert isinstance(row[key], float), (row["model"], key)
    finetune = r["rows"][-1]
    assert finetune["iterations"] == 3 + 2 and finetune["options"]["init_from"].endswith("baseline")
    assert finetune["label"] == "baseline + fine-tune with --antialias --lambda-stability 100"
    assert r["latency"]["ngf8_ratio"] > 0 and "facades/both" in r["targets"]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "steady_facades_pan.gif" in names and "steady_facades_pan.png" in names
    assert "| facades | baseline |" in "\n".join(markdown(r))


def test_steady_full_level_takes_the_quality_from_the_newest_result(monkeypatch, tmp_path):
    """The suite's full run re-measures only the latency: the quality columns (hours of training)
    come from the newest committed result, named in the section."""
    from benchmarks import report, steady

    old = steady.run("smoke", parts=("quality",))
    record = {"level": "full", "command": "python -m benchmarks --only steady --steady-train",
              "machine": {"date": "2026-12-06 04:00:00 UTC", "cpu": "test CPU", "cores": 2},
              "sections": {"steady": old}}
    monkeypatch.setattr(report, "result_files",
                        lambda folder=None: [(tmp_path / "full-x.json", record)])
    fake = {"models": {}, "ngf8_ratio": 1.1, "depth": 5, "side": 64, "pad": "reflect",
            "load_before": [1.0], "load_after": [1.0]}
    monkeypatch.setattr(steady, "latency", lambda cfg, pad: fake)
    r = steady.run("full")
    assert [row["l1"] for row in r["rows"]] == [row["l1"] for row in old["rows"]]
    assert r["quality_source"]["file"] == "full-x.json"
    assert "--steady-train" in r["quality_source"]["command"]
    assert "Quality columns from run `full-x.json`" in "\n".join(steady.markdown(r))


def test_each_row_gets_the_latency_of_its_own_border():
    """The zero-border row is timed and judged on the zero-border model, not the reflect one; a
    record without the zero border's timing (older results) gives that row no latency figure."""
    from benchmarks.steady import fill_latency, latency_line, targets

    def m(ms):
        return {"p50_ms": ms}
    lat = {"pad": "reflect", "depth": 8, "side": 256, "load_before": [1.0], "load_after": [1.0],
           "models": {"ngf16-plain": m(10.0), "ngf16-antialias": m(13.0), "ngf16-antialias-zero": m(11.0)},
           "ngf16_ratio": 1.3, "ngf16_zero_ratio": 1.1}
    base = {"task": "t", "model": "baseline", "options": {}, "pan_l1": 1.0, "psnr": 20.0, "ssim": 0.5}
    rows = [base,
            {**base, "model": "antialias", "options": {"antialias": True}},
            {**base, "model": "antialias-zero", "options": {"antialias": True, "antialias_pad": "zero"}}]
    fill_latency(rows, lat)
    assert [r["ms_ngf16"] for r in rows] == [10.0, 13.0, 11.0]
    t = targets(rows, lat)
    assert t["t/antialias"]["latency"] is False and t["t/antialias-zero"]["latency"] is True
    line = latency_line(lat)
    assert "anti-aliased / plain ngf 16: 1.300x" in line and "zero border / plain ngf 16: 1.100x" in line

    old = {k: v for k, v in lat.items() if "zero" not in k}
    old["models"] = {k: v for k, v in lat["models"].items() if "zero" not in k}
    rows = [dict(r) for r in rows]
    for r in rows:
        r.pop("ms_ngf16")
    fill_latency(rows, old)
    assert "ms_ngf16" not in rows[2] and "latency" not in targets(rows, old)["t/antialias-zero"]
