"""pix2pix distill, the decoder options and the pix2pixHD objectives: real tiny runs, real exports.

A student's loss falls in a real short run; --resume is exact (extra inputs included); export
parity passes for every decoder option; --d-scales / --lambda-fm train and log; bad input gives
one line and an exit code; the edge benchmark runs end to end at its smoke level.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.train.checkpoint import load_generator, load_training_checkpoint, save_generator
from pix2pix_edge.train.distill import FeatureTap, Student, Teacher, decoder_blocks, distill
from pix2pix_edge.train.distill_options import DistillOptions
from pix2pix_edge.train.loop import train
from pix2pix_edge.train.models import (UPSAMPLES, MultiScaleDiscriminator, PatchDiscriminator,
                                       UNetGenerator, count_parameters, inference_copy,
                                       init_weights, make_discriminator)
from pix2pix_edge.train.options import TrainOptions

# 6 pairs, batch 2: 3 iterations per epoch
TINY = dict(depth=6, load_size=72, crop_size=64, workers=0, progress=False, tensorboard=False,
            threads=1, batch_size=2, epochs=1, epochs_decay=2, log_every=1, ndf=4)


def rows(run: Path) -> list[dict]:
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from pix2pix_edge.train.synth import make_dataset
    return make_dataset(tmp_path_factory.mktemp("synth") / "d", n=6, size=32, seed=1)


@pytest.fixture(scope="module")
def teacher(data, tmp_path_factory) -> Path:
    """A tiny trained teacher run (ngf 8, 6 iterations)."""
    run = tmp_path_factory.mktemp("teacher") / "run"
    train(TrainOptions(data=str(data), run=str(run), ngf=8, max_iters=6, **TINY))
    return run


@pytest.fixture(scope="module")
def extra_dir(data, tmp_path_factory) -> Path:
    """Input-only images: the input halves of the synthetic pairs, as single files."""
    from PIL import Image

    out = tmp_path_factory.mktemp("extra")
    files = sorted(p for p in Path(data).rglob("*.png") if p.is_file())[:4] or \
        sorted(p for p in Path(data).rglob("*.jpg"))[:4]
    for i, p in enumerate(files):
        with Image.open(p) as im:
            im.convert("RGB").crop((0, 0, im.width // 2, im.height)).save(out / f"frame_{i}.png")
    return out


# ----------------------------------------------------------------------------- models

def test_reference_parameter_counts_stay_exact_and_decoders_differ():
    assert count_parameters(UNetGenerator(depth=8, ngf=64, norm="batch")) == 54_413_955
    assert count_parameters(UNetGenerator(depth=8, ngf=64, norm="instance")) == 54_409_603
    assert count_parameters(make_discriminator(6, 64, 3, "batch", scales=1)) == 2_768_705
    assert isinstance(make_discriminator(6, 8, 3, scales=1), PatchDiscriminator)
    counts = {u: count_parameters(UNetGenerator(depth=6, ngf=8, upsample=u)) for u in UPSAMPLES}
    assert len(set(counts.values())) == len(UPSAMPLES)
    assert counts["separable"] < counts["resize"] < counts["transpose"]
    for u in UPSAMPLES:
        g = UNetGenerator(depth=6, ngf=4, upsample=u)
        assert g(torch.randn(1, 3, 64, 128)).shape == (1, 3, 64, 128)
        assert g.config["upsample"] == u
    resize = UNetGenerator(depth=6, ngf=4, upsample="resize")
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in resize.modules())
    with pytest.raises(ValueError, match="upsample"):
        UNetGenerator(upsample="pixelshuffle")


def test_multiscale_discriminator_sees_the_pair_at_halved_resolutions():
    torch.manual_seed(0)
    d = init_weights(MultiScaleDiscriminator(6, 8, n_layers=3, scales=3))
    assert count_parameters(d) == 3 * count_parameters(PatchDiscriminator(6, 8, 3))
    x = torch.randn(1, 6, 128, 128)
    logits = d(x)
    assert [tuple(t.shape) for t in logits] == [(1, 1, 14, 14), (1, 1, 6, 6), (1, 1, 2, 2)]
    # scale 1 is D_1 on the pix2pixHD down-sampling (3x3 average pool, stride 2, pad not counted)
    half = torch.nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    assert torch.allclose(logits[1], d.scales[1](half))
    feats = d(x, features=True)
    assert len(feats) == 3 and all(len(f) == 5 for f in feats)  # 4 blocks + logits per scale
    assert torch.allclose(feats[0][-1], logits[0])


def test_feature_taps_leave_no_hooks_and_adapters_map_to_teacher_width():
    torch.manual_seed(0)
    t = Teacher(inference_copy(init_weights(UNetGenerator(depth=6, ngf=8)), "per-image"), 3)
    s = Student(init_weights(UNetGenerator(depth=6, ngf=4, upsample="resize")), t.channels)
    x = torch.randn(2, 3, 64, 64)
    t_out, t_feats = t(x)
    out, s_feats = s(x)
    assert [f.shape[1:] for f in t_feats] == [f.shape[1:] for f in s_feats] == \
        [(8, 32, 32), (16, 16, 16), (32, 8, 8)]
    assert not t_out.requires_grad and out.requires_grad
    assert sum(len(m._forward_hooks) for m in list(s.modules()) + list(t.model.modules())) == 0
    assert len(decoder_blocks(s.generator)) == 5
    with pytest.raises(Exception, match="distill-layers"):
        FeatureTap(s.generator, 6)


def test_holdout_every_covers_data_sorted_by_kind(data, tmp_path):
    from pix2pix_edge.runtime.errors import BadInput
    from pix2pix_edge.train.data import split_holdout

    pairs = [f"{i}_AB" for i in range(1, 21)]   # e.g. shoes 1..10, then handbags 11..20
    train_, held = split_holdout(pairs, every=10)
    assert held == ["10_AB", "20_AB"] and len(train_) == 18 and not set(held) & set(train_)
    with pytest.raises(BadInput, match="not both"):
        split_holdout(pairs, 2, every=10)
    r = CliRunner().invoke(cli, ["eval", str(tmp_path / "nothing"), str(data), "--holdout-every", "-1"])
    assert r.exit_code == 2 and "--holdout-every" in r.output


# ----------------------------------------------------------------------------- training

def test_students_loss_falls_in_a_real_short_run(data, teacher, tmp_path):
    run = tmp_path / "student"
    opts = dict(TINY, epochs=8, epochs_decay=0, log_every=1)
    distill(DistillOptions(data=str(data), run=str(run), teacher=str(teacher), ngf=4, lr=2e-3,
                           max_iters=24, **opts))
    log = rows(run)
    assert list(log[0])[2:9] == ["G_GAN", "G_L1", "D_real", "D_fake", "T_L1", "F_MSE", "lr"]
    t_l1 = [float(r["T_L1"]) for r in log]
    assert sum(t_l1[-6:]) / 6 < sum(t_l1[:3]) / 3, t_l1
    assert float(log[-1]["F_MSE"]) < 0.9 * float(log[0]["F_MSE"])
    # the trained student is closer to the teacher than the same student untrained
    from pix2pix_edge.train.data import PairedDataset

    batch = torch.stack([PairedDataset(data, load_size=64, crop_size=64, augment=False)[i]["A"]
                         for i in range(6)])
    T, _ = load_generator(teacher)
    G, _ = load_generator(run)
    torch.manual_seed(0)
    G0 = init_weights(UNetGenerator(**G.config))
    with torch.no_grad():
        t = inference_copy(T, "per-image")(batch)
        after = (inference_copy(G, "per-image")(batch) - t).abs().mean()
        before = (inference_copy(G0, "per-image")(batch) - t).abs().mean()
    assert after < 0.8 * before, (float(before), float(after))
    # an ordinary run directory: the student generator, no adapters in it, eval takes it
    G, record = load_generator(run)
    assert G.config["ngf"] == 4 and record["inference"]["norm_mode"] == "per-image"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["options"]["teacher"] == str(teacher) and cfg["models"]["distill"]["layers"] == 3
    assert cfg["models"]["distill"]["teacher"]["ngf"] == 8
    assert (run / "samples" / "epoch_001.png").is_file()
    r = CliRunner().invoke(cli, ["eval", str(run), str(data), "--split", "train", "--out",
                                 str(tmp_path / "eval"), "--allow-trained-pairs"])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert m["n"] == 6 and m["trained_pairs"] == 6


def test_no_discriminator_when_no_term_needs_one(data, teacher, tmp_path):
    run = tmp_path / "omgd"
    distill(DistillOptions(data=str(data), run=str(run), teacher=str(teacher), ngf=4,
                           lambda_gan=0, max_iters=3, **TINY))
    assert list(rows(run)[0])[2:5] == ["G_L1", "T_L1", "F_MSE"]
    state = load_training_checkpoint(run / "checkpoints" / "latest.pt")
    assert state["D"] == {} and "opt_D" not in state and state["config"]["discriminator"] is None


def _assert_same(a: dict, b: dict) -> None:
    from tests.test_resume import assert_same_state   # the same checks, plus the 1x1 adapters
    assert_same_state(a, b, parts=("G", "adapters", "D"))


def test_resume_is_exact_with_extra_inputs_and_pix2pixhd_objective(data, teacher, extra_dir, tmp_path):
    """Stopped mid-epoch and resumed == never stopped, bit for bit (the extra inputs an iteration
    draws depend on the iteration only; multi-scale D and feature matching included)."""
    opts = dict(TINY, teacher=str(teacher), ngf=4, extra_inputs=str(extra_dir), d_scales=2,
                lambda_fm=10.0, upsample="resize")
    straight = tmp_path / "straight"
    distill(DistillOptions(data=str(data), run=str(straight), max_iters=6, **opts))
    stopped = tmp_path / "stopped"
    distill(DistillOptions(data=str(data), run=str(stopped), max_iters=4, **opts))
    distill(DistillOptions(data=str(data), run=str(stopped), max_iters=6, resume=True, **opts))
    a = load_training_checkpoint(straight / "checkpoints" / "latest.pt")
    b = load_training_checkpoint(stopped / "checkpoints" / "latest.pt")
    _assert_same(a, b)
    assert [r["X_T_L1"] for r in rows(straight)] == [r["X_T_L1"] for r in rows(stopped)]
    assert "G_FM" in rows(straight)[0] and float(rows(straight)[0]["G_FM"]) > 0


def test_train_with_d_scales_and_feature_matching(data, tmp_path):
    run = tmp_path / "hd"
    train(TrainOptions(data=str(data), run=str(run), ngf=4, d_scales=2, lambda_fm=10.0,
                       max_iters=3, **TINY))
    log = rows(run)
    assert list(log[0])[2:8] == ["G_GAN", "G_L1", "D_real", "D_fake", "G_FM", "lr"]
    assert all(float(r["G_FM"]) > 0 for r in log)
    state = load_training_checkpoint(run / "checkpoints" / "latest.pt")
    assert state["config"]["discriminator"]["scales"] == 2
    assert any(k.startswith("scales.1.") for k in state["D"])
    # the reference objective's log has no G_FM column and its D is the plain PatchGAN
    ref = tmp_path / "ref"
    train(TrainOptions(data=str(data), run=str(ref), ngf=4, max_iters=1, **TINY))
    assert "G_FM" not in rows(ref)[0]
    assert "scales" not in load_training_checkpoint(ref / "checkpoints" / "latest.pt")["config"]["discriminator"]


def test_resume_refuses_another_decoder(data, tmp_path):
    from pix2pix_edge.runtime.errors import ModelMismatch

    run = tmp_path / "run"
    train(TrainOptions(data=str(data), run=str(run), ngf=4, max_iters=1, **TINY))
    with pytest.raises(ModelMismatch, match="upsample transpose -> resize"):
        train(TrainOptions(data=str(data), run=str(run), ngf=4, max_iters=2, resume=True,
                           upsample="resize", **TINY))


# ----------------------------------------------------------------------------- export

@pytest.mark.parametrize("upsample", UPSAMPLES)
@pytest.mark.parametrize("norm_mode", ["per-image", "running"])
def test_export_parity_for_every_decoder(upsample, norm_mode, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx

    from pix2pix_edge.export.to_onnx import export_run, op_counts

    torch.manual_seed(0)
    g = init_weights(UNetGenerator(depth=5, ngf=4, upsample=upsample))
    g.train()
    with torch.no_grad():  # running statistics that are not the identity
        for _ in range(3):
            g(torch.randn(2, 3, 64, 64))
    src = save_generator(tmp_path / "generator.pt", g, norm_mode=norm_mode,
                         data={"crop_size": 64, "direction": "AtoB"})
    out = tmp_path / "model.onnx"
    report = export_run(src, out, log=lambda *_: None)  # raises CheckFailed if parity fails
    assert report["parity"]["max_abs"] < 1e-4 if "parity" in report else out.is_file()
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    info = json.loads(next(v for v in meta.values() if '"upsample"' in v))
    assert info["upsample"] == upsample
    ops = op_counts(out)
    assert ("ConvTranspose" in ops) == (upsample == "transpose")
    assert ("Resize" in ops) == (upsample != "transpose")
    assert "BatchNormalization" not in ops


def test_a_distilled_student_exports_like_any_run(data, teacher, tmp_path):
    pytest.importorskip("onnxruntime")
    run = tmp_path / "student"
    distill(DistillOptions(data=str(data), run=str(run), teacher=str(teacher), ngf=4,
                           upsample="separable", max_iters=2, **TINY))
    r = CliRunner().invoke(cli, ["export", "onnx", str(run), "-o", str(tmp_path / "s.onnx")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "s.onnx").is_file()


# ----------------------------------------------------------------------------- CLI, bad input

def one_line_error(r, code: int, *needles: str) -> None:
    assert r.exit_code == code, (r.exit_code, r.output)
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert "Traceback" not in r.output and len(lines) == 1, r.output
    for n in needles:
        assert n in r.output, r.output


def _distill_cli(teacher, data, run, *extra):
    args = ["distill", str(teacher), str(data), "--run", str(run), "--max-iters", "1",
            "--threads", "1", "--workers", "0", "--no-progress", "--no-tensorboard",
            "--ngf", "4", "--ndf", "4", *extra]
    return CliRunner().invoke(cli, args)


def test_cli_student_inherits_the_teachers_data_options(data, teacher, tmp_path):
    r = _distill_cli(teacher, data, tmp_path / "s")
    assert r.exit_code == 0, r.output
    o = json.loads((tmp_path / "s" / "config.json").read_text())["options"]
    t = json.loads((teacher / "config.json").read_text())["options"]
    for k in ("direction", "load_size", "crop_size", "depth", "norm", "inference_norm"):
        assert o[k] == t[k], k
    assert o["ngf"] == 4 and o["dropout"] is False


def test_bad_teachers(data, teacher, tmp_path):
    # another channel count than the data
    g1 = UNetGenerator(1, 3, depth=6, ngf=4)
    save_generator(tmp_path / "gray.pt", g1, norm_mode="per-image", data={"crop_size": 64})
    one_line_error(_distill_cli(tmp_path / "gray.pt", data, tmp_path / "a"), 4,
                   "1-channel inputs", "3 channels")
    # a depth whose 2^depth does not divide the data's crop
    g7 = UNetGenerator(3, 3, depth=7, ngf=4)
    save_generator(tmp_path / "deep.pt", g7, norm_mode="per-image")
    one_line_error(_distill_cli(tmp_path / "deep.pt", data, tmp_path / "b", "--depth", "6",
                                "--crop-size", "64", "--load-size", "72"), 4,
                   "depth-7", "multiples of 128")
    # not a generator: plain data in a torch file, and a text file
    torch.save({"hello": 1}, tmp_path / "notgen.pt")
    one_line_error(_distill_cli(tmp_path / "notgen.pt", data, tmp_path / "c", "--crop-size", "64",
                                "--load-size", "72", "--depth", "6"), 4, "teacher", "not a")
    (tmp_path / "notes.pt").write_text("not a model")
    one_line_error(_distill_cli(tmp_path / "notes.pt", data, tmp_path / "d", "--crop-size", "64",
                                "--load-size", "72", "--depth", "6"), 3, "teacher")
    one_line_error(_distill_cli(tmp_path / "missing", data, tmp_path / "e"), 3, "teacher not found")


def test_bad_extra_inputs_and_a_student_that_does_not_fit(data, teacher, extra_dir, tmp_path):
    import shutil

    bad = tmp_path / "frames"
    shutil.copytree(extra_dir, bad)
    (bad / "frame_9.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    one_line_error(_distill_cli(teacher, data, tmp_path / "a", "--extra-inputs", str(bad)), 3,
                   "--extra-inputs", "frame_9.jpg")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(_distill_cli(teacher, data, tmp_path / "b", "--extra-inputs", str(empty)), 3,
                   "no images")
    # a student deeper than the crop allows
    one_line_error(_distill_cli(teacher, data, tmp_path / "c", "--depth", "7"), 2,
                   "--crop-size 64", "2^depth = 128")
    # a multi-scale D whose coarsest scale is too small for the crop
    one_line_error(_distill_cli(teacher, data, tmp_path / "d", "--d-scales", "3"), 2,
                   "--d-scales 3", "16x16")


# ----------------------------------------------------------------------------- benchmark

def test_edge_benchmark_smoke(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("matplotlib")
    from benchmarks.edge import run

    r = run("smoke", runs=tmp_path / "runs", variants=["scratch", "distilled", "scratch-hd"],
            png_dir=tmp_path / "png")
    models = [row["model"] for row in r["rows"]]
    assert models == ["teacher", "scratch", "distilled", "scratch-hd"]  # the order asked for
    for row in r["rows"]:
        for k in ("params", "gflop", "l1", "psnr", "ssim", "p50_ms", "speedup"):
            assert row[k] is not None and row[k] > 0, (row["model"], k)
        assert row["psnr_vs_teacher"] is None if row["model"] == "teacher" else row["psnr_vs_teacher"] > 0
    task = next(iter(r["tasks"].values()))
    assert set(task["targets"]["distilled"]) >= {"speedup", "ssim", "l1", "gap_ok"}
    assert set(task["targets"]["distilled"]["l1"]) >= {"teacher", "scratch", "student", "recovered"}
    assert set(task["hd_minus_reference"]) == {"l1", "psnr", "ssim"}
    assert (tmp_path / "png" / "edge_quality_latency.png").is_file()
    assert len(list((tmp_path / "png").glob("edge_grid_*.png"))) == 1
    from benchmarks import report

    md = report.to_markdown(report.merge([(tmp_path / "full-x.json", {"sections": {"edge": r}})]), [])
    assert "## Edge-sized generators" in md and "| PSNR vs teacher |" in md
    assert "the quality target" in md and "--d-scales 2 --lambda-fm 10" in md
    # finished runs are reused, not retrained
    again = run("smoke", runs=tmp_path / "runs", variants=["scratch"], png_dir=None)
    assert [row["iterations"] for row in again["rows"]] == [3, 3]


# ----------------------------------------------------------------------------- DDP

def _ddp_worker(rank: int, world: int, data: str, teacher: str, extra: str, tmp: str) -> None:
    import os

    import torch.distributed as dist

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank,
                            world_size=world)
    try:
        def keep(s):
            if s["iteration"] == 3:
                torch.save({n: p.detach().clone() for n, p in s["G"].named_parameters()},
                           f"{tmp}/student_{rank}.pt")

        distill(DistillOptions(data=data, run=f"{tmp}/run_rank{rank}", teacher=teacher, ngf=4,
                               extra_inputs=extra, max_iters=3, amp="off", **TINY), callback=keep)
    finally:
        dist.destroy_process_group()


def test_ddp_two_gloo_ranks_end_identical(data, teacher, extra_dir, tmp_path):
    import torch.distributed._functional_collectives  # noqa: F401  (see tests/test_ddp.py)
    import torch.multiprocessing as mp

    mp.start_processes(_ddp_worker, args=(2, str(data), str(teacher), str(extra_dir), str(tmp_path)),
                       nprocs=2, join=True, start_method="fork")
    w0 = torch.load(tmp_path / "student_0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "student_1.pt", weights_only=True)
    for name in w0:
        assert torch.equal(w0[name], w1[name]), f"{name} differs between ranks"
    assert (tmp_path / "run_rank0" / "generator.pt").is_file()
    assert not (tmp_path / "run_rank1").exists(), "rank 1 wrote files"
    state = load_training_checkpoint(tmp_path / "run_rank0" / "checkpoints" / "latest.pt")
    assert state["adapters"] and json.loads((tmp_path / "run_rank0" / "config.json").read_text())["world_size"] == 2
