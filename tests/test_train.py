"""pix2pix train: real (tiny) training runs, the files they write, health checks, CLI errors."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import fields

import pytest
import torch
from click.testing import CliRunner

from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import CheckFailed
from pix2pix_edge.train.checkpoint import load_generator, load_training_checkpoint
from pix2pix_edge.train.loop import TrainOptions, busy_cpu_note, lr_factor, resolve_precision, train

TINY = dict(depth=5, ngf=4, ndf=4, load_size=36, crop_size=32, workers=0, progress=False,
            tensorboard=False, amp="off", threads=1)
TINY_FLAGS = ["--depth", "5", "--ngf", "4", "--ndf", "4", "--load-size", "36", "--crop-size", "32",
              "--workers", "0", "--no-progress", "--no-tensorboard", "--amp", "off", "--threads", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from pix2pix_edge.train.synth import make_dataset
    return make_dataset(tmp_path_factory.mktemp("synth") / "d", n=6, size=32, seed=0, val=2)


def test_cli_flags_match_train_options():
    """The flags of `pix2pix train` are TrainOptions' fields: same names, defaults, help,
    choices (click.Choice), --x/--no-x for bools; and the checks use the same metadata."""
    import click

    from pix2pix_edge.runtime.errors import BadUsage
    from pix2pix_edge.train import data as train_data, models
    from pix2pix_edge.train.cli import train as train_command
    from pix2pix_edge.train.options import check_options

    params = {p.name: p for p in train_command.params}
    assert set(params) == {f.name for f in fields(TrainOptions)}
    assert isinstance(params["data"], click.Argument) and str(params["run"].default) == "runs/pix2pix"
    for f in fields(TrainOptions):
        if f.name in ("data", "run", "resume"):
            continue
        p, choices = params[f.name], f.metadata["choices"]
        assert p.default == f.default, f.name
        assert p.opts == ["--" + f.name.replace("_", "-")] and p.help == f.metadata["help"], f.name
        if isinstance(f.default, bool):
            assert p.is_bool_flag and p.secondary_opts == ["--no-" + f.name.replace("_", "-")]
        elif choices:
            assert isinstance(p.type, click.Choice) and tuple(p.type.choices) == choices, f.name
            assert f.default in choices
            with pytest.raises(BadUsage, match=f"--{f.name.replace('_', '-')} must be .*not 'nope'"):
                check_options(TrainOptions(data="", **{f.name: "nope"}))
        elif f.metadata["min"] is not None or f.metadata["max"] is not None:
            assert isinstance(p.type, (click.IntRange, click.FloatRange)), f.name
            assert (p.type.min, p.type.max) == (f.metadata["min"], f.metadata["max"]), f.name
        else:
            assert p.type.name == {int: "integer", float: "float", str: "text"}[type(f.default)], f.name
        if f.metadata["min"] is not None:
            with pytest.raises(BadUsage, match=f"--{f.name.replace('_', '-')} must be at least"):
                check_options(TrainOptions(data="", **{f.name: f.metadata["min"] - 1}))
        if f.metadata["max"] is not None:
            with pytest.raises(BadUsage, match=f"--{f.name.replace('_', '-')} must be at most"):
                check_options(TrainOptions(data="", **{f.name: f.metadata["max"] + 1}))
    # the choices are those the models and the data loader accept
    assert set(params["norm"].type.choices) == set(models.NORMS)
    assert set(params["inference_norm"].type.choices) == set(models.NORM_MODES)
    assert tuple(params["direction"].type.choices) == train_data.DIRECTIONS
    check_options(TrainOptions(data=""))  # the defaults pass


def test_reference_lr_schedule():
    f = lr_factor(100, 100)
    assert f(0) == f(99) == 1.0
    assert f(100) == pytest.approx(1 - 1 / 101)
    assert f(199) == pytest.approx(1 / 101)


def test_tiny_run_writes_every_file(data, tmp_path):
    run = tmp_path / "run"
    r = CliRunner().invoke(cli, ["train", str(data), "--run", str(run), *TINY_FLAGS, "--epochs", "1",
                                 "--epochs-decay", "1", "--batch-size", "2", "--log-every", "2",
                                 "--save-every", "1", "--direction", "AtoB"])
    assert r.exit_code == 0, r.output
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["options"]["ngf"] == 4 and cfg["options"]["batch_size"] == 2
    assert cfg["parameters"]["G"] == sum(p.numel() for p in load_generator(run)[0].parameters())
    assert cfg["parameters"]["D"] > 0 and cfg["versions"]["torch"] == torch.__version__
    assert cfg["data"]["train_pairs"] == 6 and cfg["data"]["iters_per_epoch"] == 3
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [int(r["iteration"]) for r in rows] == [2, 4, 6]
    assert set(rows[0]) == {"iteration", "epoch", "G_GAN", "G_L1", "D_real", "D_fake", "lr", "seconds"}
    assert [float(r["lr"]) for r in rows][-1] == pytest.approx(2e-4 / 2)  # decay epoch: 1 - 1/2
    assert all(math.isfinite(float(r[k])) for r in rows for k in ("G_GAN", "G_L1", "D_real", "D_fake"))
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    from PIL import Image
    assert Image.open(run / "samples" / "epoch_001.png").size == (3 * 32, 4 * 32)  # 4 rows A|G(A)|B
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["epoch_001.pt", "epoch_002.pt", "latest.pt"]
    state = load_training_checkpoint(run / "checkpoints" / "latest.pt")
    assert (state["epoch"], state["iteration"], state["step_in_epoch"]) == (2, 6, 0)
    assert {"G", "D", "opt_G", "opt_D", "sched_G", "sched_D", "scaler", "rng"} <= set(state)
    G, record = load_generator(run)
    assert record["inference"] == {"norm_mode": "per-image", "dropout": False}
    assert record["data"]["direction"] == "AtoB" and record["data"]["crop_size"] == 32
    assert record["config"]["depth"] == 5 and record["config"]["ngf"] == 4


def test_auto_precision_on_cpu_is_contiguous_and_explicit_choices_win():
    """--amp auto on a CPU: bf16 where the CPU has native BF16, else FP32; never channels_last
    (slower on these CPUs in both precisions, benchmarks/train_speed.py). Explicit flags win."""
    cpu = torch.device("cpu")
    dtype, cl = resolve_precision(TrainOptions(data=""), cpu)
    assert dtype in (torch.bfloat16, None) and cl is False
    assert resolve_precision(TrainOptions(data="", amp="off", channels_last="on"), cpu) == (None, True)
    assert resolve_precision(TrainOptions(data="", amp="bf16"), cpu) == (torch.bfloat16, False)


@pytest.mark.parametrize("capability,expected", [((6, 1), torch.float16), ((7, 0), torch.float16),
                                                 ((7, 5), torch.float16), ((8, 0), torch.bfloat16),
                                                 ((8, 9), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_auto_precision_on_cuda_follows_compute_capability(monkeypatch, capability, expected):
    """--amp auto on a GPU (a stand-in: no GPU here): bf16 only where it is native (compute
    capability >= 8.0), fp16 + GradScaler on Pascal / Volta / Turing, although
    torch.cuda.is_bf16_supported() says True there (bf16 emulation counted, its default)."""
    asked = []

    def capability_of(device=None):
        asked.append(device)
        return capability

    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", capability_of)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    gpu1 = torch.device("cuda", 1)
    assert resolve_precision(TrainOptions(data=""), gpu1) == (expected, True)
    assert asked == [gpu1]                       # the GPU trained on, not the current one
    # explicit choices still win
    assert resolve_precision(TrainOptions(data="", amp="bf16"), gpu1)[0] is torch.bfloat16
    assert resolve_precision(TrainOptions(data="", amp="off"), gpu1) == (None, False)


def test_losses_go_down_with_the_default_precision(data, tmp_path):
    """Real steps with --amp auto (bf16 autocast on a CPU with native BF16): the L1 loss
    falls on a fixed, unaugmented pair set."""
    seen = []
    opts = TrainOptions(data=str(data), run=str(tmp_path / "run"), **{**TINY, "amp": "auto", "ngf": 8, "load_size": 32},
                        augment=False, lr=1e-3, epochs=60, epochs_decay=0,
                        batch_size=6, max_iters=40)
    summary = train(opts, callback=lambda s: seen.append(s["losses"]["G_L1"]))
    assert summary["iterations"] == 40
    first, last = sum(seen[:5]) / 5, sum(seen[-5:]) / 5
    assert last < 0.7 * first, (first, last)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    run = tmp_path / "run"

    def poison(s):
        if s["iteration"] == 3:
            with torch.no_grad():
                next(s["G"].parameters()).fill_(float("nan"))

    opts = TrainOptions(data=str(data), run=str(run), **TINY, save_every_iters=2, max_iters=10)
    with pytest.raises(CheckFailed, match=r"diverged at iteration 4 .*non-finite loss.*kept at"):
        train(opts, callback=poison)
    state = load_training_checkpoint(run / "checkpoints" / "latest.pt")
    assert state["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in state["G"].values() if v.is_floating_point())
    assert CheckFailed.exit_code == 6


def test_diverging_run_exits_6_from_the_cli(data, tmp_path):
    r = CliRunner().invoke(cli, ["train", str(data), "--run", str(tmp_path / "run"), *TINY_FLAGS,
                                 "--lr", "1e30", "--max-iters", "20", "--norm", "none"])
    assert r.exit_code == 6, r.output
    assert "diverged at iteration" in r.output and "Traceback" not in r.output


def test_ctrl_c_saves_and_reraises(data, tmp_path):
    run = tmp_path / "run"

    def interrupt(s):
        if s["iteration"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TrainOptions(data=str(data), run=str(run), **TINY, max_iters=10), callback=interrupt)
    assert load_training_checkpoint(run / "checkpoints" / "latest.pt")["iteration"] == 2
    assert (run / "generator.pt").is_file()
    assert [p.name for p in (run / "samples").iterdir()] == ["iter_0000002.png"]  # mid-epoch stop


def test_health_warns_when_one_side_wins():
    from pix2pix_edge.train.loop import Health
    h = Health(window=10)
    balanced = [h.update((0.7, 10.0, 0.69, 0.69)) for _ in range(50)]
    assert not any(balanced)
    h = Health(window=10)
    warnings = [w for _ in range(20) for w in h.update((0.7, 10.0, 0.02, 0.03))]
    assert len(warnings) == 1 and "discriminator has won" in warnings[0]  # once only
    h = Health(window=10)
    warnings = [w for g in range(1, 60) for w in h.update((0.7 * 1.1 ** g, 10.0, 0.3, 0.3))]
    assert len(warnings) == 1 and "keeps growing" in warnings[0]


def test_another_objective_reuses_the_loop_and_its_run_directory(data, tmp_path):
    """The loop takes its update from an Objective: an L1-only step (no D update) trains through
    the same loop, and log.csv, checkpoints and generator.pt follow its loss names."""
    from torch import nn

    from pix2pix_edge.train.loop import Objective, build_models

    def l1_step(m, real_A, real_B, o, autocast):
        m.opt_G.zero_grad(set_to_none=True)
        with autocast:
            loss = nn.functional.l1_loss(m.G_train(real_A).float(), real_B.float())
        loss.backward()
        m.opt_G.step()
        return {"L1": loss}

    run = tmp_path / "run"
    seen = []
    summary = train(TrainOptions(data=str(data), run=str(run), **TINY, log_every=1, max_iters=3),
                    callback=lambda s: seen.append(s["losses"]),
                    objective=Objective(build_models, l1_step, ("L1",)))
    assert summary["iterations"] == 3 and [set(s) for s in seen] == [{"L1"}] * 3
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert list(rows[0]) == ["iteration", "epoch", "L1", "lr", "seconds"]
    assert [float(r["L1"]) for r in rows] == pytest.approx([s["L1"] for s in seen], rel=1e-5)
    assert load_training_checkpoint(run / "checkpoints" / "latest.pt")["iteration"] == 3
    assert load_generator(run)[1]["config"]["ngf"] == 4


def test_max_minutes_stops_and_saves(data, tmp_path):
    run = tmp_path / "run"
    summary = train(TrainOptions(data=str(data), run=str(run), **TINY, max_minutes=1e-6))
    assert summary["stopped"] == "time" and summary["iterations"] == 1
    assert load_training_checkpoint(run / "checkpoints" / "latest.pt")["iteration"] == 1
    assert (run / "generator.pt").is_file()
    # stopped in the middle of epoch 1: still a sample of the model it stopped with
    from PIL import Image
    assert [p.name for p in (run / "samples").iterdir()] == ["iter_0000001.png"]
    assert Image.open(run / "samples" / "iter_0000001.png").size == (3 * 32, 4 * 32)  # 4 rows A|G(A)|B


def test_progress_bar_of_a_time_bounded_run_shows_time(data, tmp_path, capsys):
    """--max-minutes: the bar is time used of the budget (with the iteration count), not an
    iteration total the run will never reach; without it, iterations done of the total."""
    opts = {**TINY, "progress": True, "max_iters": 3}
    train(TrainOptions(data=str(data), run=str(tmp_path / "a"), **opts, max_minutes=10))
    timed = capsys.readouterr().err.split("\r")[-1]
    assert "/ 10:00, it=3, G_GAN=" in timed and "3/3" not in timed and "/12" not in timed, timed
    train(TrainOptions(data=str(data), run=str(tmp_path / "b"), **opts))
    counted = capsys.readouterr().err.split("\r")[-1]
    assert "| 3/3 [" in counted and "10:00" not in counted, counted


def test_bad_files_are_not_counted_as_training_pairs(tmp_path):
    """5 usable pairs and 4 bad files: '5 pairs' is printed and recorded, the 4 are listed."""
    from pix2pix_edge.train.synth import make_dataset
    data = make_dataset(tmp_path / "d", n=5, size=32, seed=0)
    train_dir = data / "train"
    (train_dir / "notes.jpg").write_text("not a picture")
    (train_dir / "empty.png").write_bytes(b"")
    (train_dir / "cut.png").write_bytes((train_dir / next(iter(sorted(
        p.name for p in train_dir.iterdir())))).read_bytes()[:100])
    from PIL import Image
    Image.new("RGB", (63, 32)).save(train_dir / "odd.png")
    run = tmp_path / "run"
    r = CliRunner().invoke(cli, ["train", str(data), "--run", str(run), *TINY_FLAGS, "--max-iters", "1"])
    assert r.exit_code == 0, r.output
    assert "skipping 4 bad file(s)" in r.output
    assert ", 5 pairs, 5 it/epoch" in r.output, r.output
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["train_pairs"] == 5 and len(cfg["data"]["bad_files"]) == 4


def test_train_help_does_not_import_torch():
    import subprocess
    import sys
    code = ("import sys; from click.testing import CliRunner; from pix2pix_edge.runtime.cli import cli; "
            "r = CliRunner().invoke(cli, ['train', '--help']); assert r.exit_code == 0, r.output; "
            "assert '--amp' in r.output; r = CliRunner().invoke(cli, ['eval', '--help']); "
            "assert '--norm-mode' in r.output; assert 'torch' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("args, code, message", [
    (["{missing}"], 3, "dataset folder not found"),
    (["{empty}"], 3, "no usable image pairs"),
    (["{data}", "--depth", "5", "--crop-size", "48", "--load-size", "48"], 2, "not a multiple of 2^depth"),
    (["{data}", "--amp", "fp16", "--device", "cpu"], 5, "--amp fp16 needs a CUDA GPU"),
    (["{data}", "--sync-bn", "--device", "cpu"], 5, "SyncBatchNorm"),
    (["{data}", "--holdout-last", "6"], 3, "cannot hold out 6 of 6"),
    (["{data}", "--resume"], 3, "no checkpoint at"),
])
def test_cli_errors_are_one_line(data, tmp_path, args, code, message):
    (tmp_path / "empty").mkdir()
    subs = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "data": data}
    args = [a.format(**subs) for a in args]
    base = ["--run", str(tmp_path / "run"), "--ngf", "4", "--ndf", "4", "--workers", "0", "--no-progress", "--threads", "1"]
    r = CliRunner().invoke(cli, ["train", *args, *base])
    assert r.exit_code == code, r.output
    assert message in r.output and "Traceback" not in r.output
    assert r.output.strip().count("\n") == 0 or r.output.strip().splitlines()[-1].startswith("Error:")


def test_unpaired_file_is_fatal_with_on_bad_file_error(tmp_path):
    """Paired folders: a file without its partner stops training under --on-bad-file error."""
    import numpy as np
    from PIL import Image

    for side in ("A", "B"):
        (tmp_path / "pairs" / side).mkdir(parents=True)
    for i in range(3):
        for side in ("A", "B"):
            Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(
                tmp_path / "pairs" / side / f"{i}.png")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "pairs" / "A" / "lonely.png")
    r = CliRunner().invoke(cli, ["train", str(tmp_path / "pairs"), "--run", str(tmp_path / "run"),
                                 *TINY_FLAGS, "--max-iters", "1", "--on-bad-file", "error"])
    assert r.exit_code == 3, r.output
    assert "lonely.png" in r.output and "missing half" in r.output


def test_tensorboard_gets_the_same_scalars_as_log_csv(data, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard not installed (it is in the dev extra)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    train(TrainOptions(data=str(data), run=str(run), **{**TINY, "tensorboard": True},
                       log_every=2, max_iters=6))
    rows = list(csv.DictReader((run / "log.csv").open()))
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["train/D_fake", "train/D_real", "train/G_GAN", "train/G_L1", "train/lr"]
    for tag in ("G_GAN", "G_L1", "lr"):
        events = acc.Scalars(f"train/{tag}")
        assert [e.step for e in events] == [int(r["iteration"]) for r in rows] == [2, 4, 6]
        assert [e.value for e in events] == pytest.approx([float(r[tag]) for r in rows], rel=1e-5)


def test_busy_cpu_note_only_when_other_load_would_hurt_several_threads(monkeypatch):
    monkeypatch.setattr("os.getloadavg", lambda: (3.2, 1.0, 0.5))
    note = busy_cpu_note(2, cores=2)
    assert note and "load average 3.2 on 2 cores" in note and "--threads 1" in note
    assert busy_cpu_note(1, cores=2) is None               # one thread: nothing to fight over
    monkeypatch.setattr("os.getloadavg", lambda: (0.4, 0.3, 0.2))
    assert busy_cpu_note(2, cores=2) is None               # idle machine
    assert busy_cpu_note(16, cores=16) is None


def test_a_full_disk_while_saving_is_one_line_and_the_previous_checkpoint_stays(data, tmp_path,
                                                                                small_disk):
    """Issue 21.7: torch reports a failed write as RuntimeError "unexpected pos" (a traceback).
    On a real full tmpfs: one line naming the disk and the file, exit 1, the checkpoint saved
    before intact and no temporary left."""
    from pix2pix_edge.train.checkpoint import atomic_save, safe_load

    disk = small_disk(64)
    atomic_save({"w": torch.ones(100)}, disk / "latest.pt")
    with pytest.raises(OSError) as e:
        atomic_save({"w": torch.ones(100_000)}, disk / "latest.pt")       # 400 KB on 64 KiB
    assert e.value.strerror.startswith("No space left on device") and e.value.errno == 28
    assert torch.equal(safe_load(disk / "latest.pt")["w"], torch.ones(100))
    assert sorted(p.name for p in disk.iterdir()) == ["latest.pt"]

    run = small_disk(64) / "run"
    r = CliRunner().invoke(cli, ["train", str(data), "--run", str(run), *TINY_FLAGS,
                                 "--ngf", "16", "--ndf", "16", "--max-iters", "2"])
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and lines[0].startswith(f"Error: no space left on device: {run}")
    assert "Traceback" not in r.output and "unexpected pos" not in r.output
    assert not [p for p in run.rglob(".*") if ".pid" in p.name]
