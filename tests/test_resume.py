"""--resume continues exactly: a run stopped (or killed mid-epoch) and resumed ends with the same
weights, bit for bit, as a run that never stopped (CPU, workers=0)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import ModelMismatch
from pix2pix_edge.train.checkpoint import load_training_checkpoint
from pix2pix_edge.train.loop import TrainOptions, train

REPO = Path(__file__).resolve().parents[1]
# 6 pairs, batch 2: 3 iterations per epoch; 1 constant + 2 decay epochs = 9 iterations in all.
TINY = dict(depth=6, ngf=4, ndf=4, load_size=72, crop_size=64, workers=0, progress=False,
            tensorboard=False, amp="auto", threads=1, batch_size=2, epochs=1, epochs_decay=2,
            log_every=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from pix2pix_edge.train.synth import make_dataset
    return make_dataset(tmp_path_factory.mktemp("synth") / "d", n=6, size=32, seed=1)


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory):
    """The reference: 9 iterations without a stop."""
    run = tmp_path_factory.mktemp("straight") / "run"
    train(TrainOptions(data=str(data), run=str(run), **TINY))
    return load_training_checkpoint(run / "checkpoints" / "latest.pt")


def assert_same_state(a: dict, b: dict, parts=("G", "D")) -> None:
    assert (a["epoch"], a["iteration"], a["step_in_epoch"]) == (b["epoch"], b["iteration"], b["step_in_epoch"])
    for part in parts:
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), f"{part}.{k} differs"
    for part in ("opt_G", "opt_D"):
        for i, s in a[part]["state"].items():
            for k, v in s.items():
                assert torch.equal(v, b[part]["state"][i][k]), f"{part} state {i}.{k} differs"


def test_stop_mid_epoch_and_resume_is_bitwise_identical(data, straight, tmp_path):
    run = tmp_path / "run"
    train(TrainOptions(data=str(data), run=str(run), **TINY, max_iters=4))  # stops in epoch 2
    stopped = load_training_checkpoint(run / "checkpoints" / "latest.pt")
    assert (stopped["epoch"], stopped["step_in_epoch"]) == (1, 1)
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "iter_0000004.png"]
    summary = train(TrainOptions(data=str(data), run=str(run), **TINY, resume=True))
    assert summary["iterations"] == 9
    assert_same_state(load_training_checkpoint(run / "checkpoints" / "latest.pt"), straight)
    rows = [int(r["iteration"]) for r in csv.DictReader(open(run / "log.csv"))]
    assert rows == list(range(1, 10))  # no duplicated or missing log rows


def test_crash_after_a_periodic_save_resumes_exactly(data, straight, tmp_path):
    """The process dies at iteration 5 (an exception, no save); latest.pt is from iteration 4
    (--save-every-iters 2): resuming redoes iteration 5 and ends where the straight run ends."""
    run = tmp_path / "run"

    def crash(s):
        if s["iteration"] == 5:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(TrainOptions(data=str(data), run=str(run), **TINY, save_every_iters=2), callback=crash)
    assert load_training_checkpoint(run / "checkpoints" / "latest.pt")["iteration"] == 4
    train(TrainOptions(data=str(data), run=str(run), **TINY, save_every_iters=2, resume=True))
    assert_same_state(load_training_checkpoint(run / "checkpoints" / "latest.pt"), straight)


def test_sigkill_mid_epoch_then_cli_resume(data, straight, tmp_path):
    """A real `pix2pix train` process killed with SIGKILL mid-run; `--resume` from the CLI takes
    the other options from RUN/config.json and still matches the run that never stopped."""
    run = tmp_path / "run"
    flags = ["--depth", "6", "--ngf", "4", "--ndf", "4", "--load-size", "72", "--crop-size", "64",
             "--workers", "0", "--no-progress", "--no-tensorboard", "--amp", "auto", "--threads", "1",
             "--batch-size", "2", "--epochs", "1", "--epochs-decay", "2", "--log-every", "1",
             "--save-every-iters", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "pix2pix_edge.runtime.cli", "train", str(data), "--run", str(run),
                             *flags], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = run / "checkpoints" / "latest.pt"
    try:
        deadline = time.time() + 60
        while not latest.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    killed_at = load_training_checkpoint(latest)["iteration"]
    assert 1 <= killed_at < 9, "the process was not killed mid-run"
    # What a kill in the middle of a save leaves: the killed process's temporaries (issue 21.10).
    stale = [run / "checkpoints" / f".latest.pt.pid{proc.pid}.x1y2z3w4.tmp",
             run / f".generator.pt.pid{proc.pid}.a1b2c3d4.tmp"]
    for path in stale:
        path.write_bytes(b"\0" * 4096)
    r = CliRunner().invoke(cli, ["train", str(data), "--run", str(run), "--resume"])
    assert r.exit_code == 0, r.output
    assert_same_state(load_training_checkpoint(latest), straight)
    assert not [p for p in stale if p.exists()]


def test_resume_with_another_architecture_is_a_model_mismatch(data, tmp_path):
    run = tmp_path / "run"
    train(TrainOptions(data=str(data), run=str(run), **TINY, max_iters=1))
    with pytest.raises(ModelMismatch, match=r"another architecture \(.*ngf 4 -> 8"):
        train(TrainOptions(data=str(data), run=str(run), **{**TINY, "ngf": 8}, resume=True))
    r = CliRunner().invoke(cli, ["train", str(data), "--run", str(run), "--resume", "--depth", "7",
                                 "--crop-size", "128", "--load-size", "128"])
    assert r.exit_code == 4, r.output
    assert "cannot resume" in r.output and "depth 6 -> 7" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("change, needle", [
    (lambda r: r.update(version="1"), "checkpoint format version '1' is not an integer"),
    (lambda r: r.update(config="abc"), "config is 'abc': a damaged or crafted training checkpoint"),
    (lambda r: r["config"].update(generator=[1]), r"config.generator is \[1\]"),
    (lambda r: r.update(epoch=-1), "epoch is -1"),
    (lambda r: r.pop("rng"), "rng is None"),
], ids=["string version", "string config", "config part a list", "negative epoch", "no rng"])
def test_a_crafted_training_checkpoint_is_one_line(straight, tmp_path, change, needle):
    """Issue 21, item 11: what --resume reads before the weights is checked, each of its type."""
    record = {**straight, "config": dict(straight["config"])}
    change(record)
    torch.save(record, tmp_path / "latest.pt")
    with pytest.raises(ModelMismatch, match=needle):
        load_training_checkpoint(tmp_path / "latest.pt")


def test_resume_from_a_crafted_checkpoint_is_exit_4(data, tmp_path):
    run = tmp_path / "run"
    train(TrainOptions(data=str(data), run=str(run), **TINY, max_iters=1))
    latest = run / "checkpoints" / "latest.pt"
    torch.save({**load_training_checkpoint(latest), "config": "abc"}, latest)
    r = CliRunner().invoke(cli, ["train", str(data), "--run", str(run), "--resume", "--depth", "6",
                                 "--ngf", "4", "--ndf", "4", "--crop-size", "64", "--load-size",
                                 "72", "--no-progress", "--no-tensorboard", "--workers", "0"])
    assert r.exit_code == 4 and "config is 'abc'" in r.output, r.output
    assert "Traceback" not in r.output


def test_resume_with_fp16_after_a_run_without_it_starts_the_scaler_clean(capsys, tmp_path):
    """A CPU / bf16 / fp32 run saves a disabled GradScaler (empty state); resuming it with
    --amp fp16 used to fail on "The source state dict is empty". The scaler starts fresh, with a
    note. (fp16 training needs CUDA; torch's CPU GradScaler stands in for the enabled one.)"""
    from pix2pix_edge.train.loop import Env, Models, Position, restore

    def models(fp16: bool) -> Models:
        torch.manual_seed(0)
        G, D = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
        opt_G, opt_D = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
        return Models(G, D, opt_G, opt_D, torch.optim.lr_scheduler.LambdaLR(opt_G, lambda e: 1.0),
                      torch.optim.lr_scheduler.LambdaLR(opt_D, lambda e: 1.0),
                      torch.amp.GradScaler("cpu", enabled=fp16), {"generator": {}})

    saved = models(fp16=False).state_dict()
    assert saved["scaler"] == {}
    state = {**saved, "config": {"generator": {}}, "rng": None, "epoch": 1, "iteration": 5,
             "step_in_epoch": 2}
    m = models(fp16=True)
    env = Env(1, 1, torch.device("cpu"), torch.float16, False)   # rank 1: no RNG restore
    assert restore(m, state, env, tmp_path / "latest.pt") == Position(1, 5, 2)
    assert m.scaler.get_scale() == torch.amp.GradScaler("cpu").get_scale()
    # and an fp16 checkpoint resumed with fp16 keeps its scale
    m.scaler.scale(torch.ones(()))      # the scale exists once something was scaled
    m.scaler.update(1024.0)
    again = models(fp16=True)
    restore(again, {**state, **m.state_dict()}, env, tmp_path / "latest.pt")
    assert again.scaler.get_scale() == 1024.0


@pytest.mark.parametrize("signame,code", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_save_a_checkpoint_and_exit_128_plus_the_signal(data, tmp_path,
                                                                             signame, code):
    """`systemctl stop`, `docker stop`, a preempted cloud GPU (SIGTERM) or a closed SSH session
    (SIGHUP) to a real `pix2pix train` process: it finishes the iteration, saves, says so and
    exits 143 / 129; nothing trained is lost (issue 21.6: they used to kill it on the spot)."""
    run = tmp_path / "run"
    flags = ["--depth", "6", "--ngf", "4", "--ndf", "4", "--load-size", "72", "--crop-size", "64",
             "--workers", "0", "--no-progress", "--no-tensorboard", "--threads", "1",
             "--batch-size", "1", "--epochs", "3", "--epochs-decay", "0", "--log-every", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", "from pix2pix_edge.runtime.cli import main; main()",
                             "train", str(data), "--run", str(run), *flags], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = run / "log.csv"
    try:
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            if log.is_file() and len(log.read_text().splitlines()) >= 3:    # 2 iterations done
                break
            time.sleep(0.02)
        proc.send_signal(getattr(signal, signame))
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    assert f"Interrupted ({signame})." in stderr and "Traceback" not in stderr
    saved = load_training_checkpoint(run / "checkpoints" / "latest.pt")["iteration"]
    assert f"interrupted at iteration {saved}: checkpoint saved" in stderr
    assert 2 <= saved < 18
