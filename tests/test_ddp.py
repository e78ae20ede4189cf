"""DDP on CPU: two Gloo processes train a few real iterations; both end with identical weights
and only rank 0 writes the run directory."""

from __future__ import annotations

import os

import pytest
import torch
import torch.multiprocessing as mp

ITERS = 4


def _worker(rank: int, world: int, data: str, tmp: str) -> None:
    import torch.distributed as dist

    from pix2pix_edge.train.loop import TrainOptions, train

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank,
                            world_size=world)
    try:
        def keep(s):
            if s["iteration"] == ITERS:
                torch.save({"G": {n: p.detach().clone() for n, p in s["G"].named_parameters()},
                            "D": {n: p.detach().clone() for n, p in s["D"].named_parameters()}},
                           f"{tmp}/weights_{rank}.pt")

        opts = TrainOptions(data=data, run=f"{tmp}/run_rank{rank}", depth=6, ngf=4, ndf=4,
                            load_size=72, crop_size=64, workers=0, progress=False,
                            tensorboard=False, threads=1, max_iters=ITERS, amp="off")
        train(opts, callback=keep)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from pix2pix_edge.train.synth import make_dataset
    return make_dataset(tmp_path_factory.mktemp("synth") / "d", n=6, size=32, seed=2)


def test_two_gloo_ranks_end_identical_and_only_rank0_writes(data, tmp_path):
    # fork: the children inherit the imported modules (spawn would re-import torch, and DDP's
    # first use imports torch.distributed._functional_collectives (sympy...): load it once here)
    import torch.distributed._functional_collectives  # noqa: F401
    mp.start_processes(_worker, args=(2, str(data), str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")
    w0 = torch.load(tmp_path / "weights_0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "weights_1.pt", weights_only=True)
    init = {}
    torch.manual_seed(0)
    from pix2pix_edge.train.models import UNetGenerator, init_weights
    init = dict(init_weights(UNetGenerator(depth=6, ngf=4)).named_parameters())
    for part in ("G", "D"):
        for name in w0[part]:
            assert torch.equal(w0[part][name], w1[part][name]), f"{part}.{name} differs between ranks"
    assert any(not torch.equal(w0["G"][n], init[n]) for n in init), "no training happened"
    assert (tmp_path / "run_rank0" / "generator.pt").is_file()
    assert (tmp_path / "run_rank0" / "log.csv").is_file()
    assert not (tmp_path / "run_rank1").exists(), "rank 1 wrote files"
    import json
    cfg = json.loads((tmp_path / "run_rank0" / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["data"]["iters_per_epoch"] == 3  # 6 pairs / 2 ranks


def _agree_worker(rank: int, world: int, tmp: str) -> None:
    import torch.distributed as dist

    from pix2pix_edge.train.loop import Env

    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous_agree", rank=rank,
                            world_size=world)
    try:
        env = Env(world=world, rank=rank, device=torch.device("cpu"), amp_dtype=None,
                  channels_last=False)
        # only rank 1's clock says "time is up": both ranks must stop at the same iteration
        got = env.agree_max(int(rank == 1), 0)
        torch.save(torch.tensor(got), f"{tmp}/agree_{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_a_stop_seen_by_one_rank_stops_every_rank(tmp_path):
    """--max-minutes is read from each rank's own clock: the decision is all-reduced, so ranks
    never leave the loop one iteration apart (which would hang the next DDP all-reduce)."""
    mp.start_processes(_agree_worker, args=(2, str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")
    for rank in (0, 1):
        assert torch.load(tmp_path / f"agree_{rank}.pt").tolist() == [True, False]


def _rank_pid(parent: int, rank: int) -> int | None:
    """The pid of torchrun's worker of ``rank`` (from the workers' environments)."""
    from pathlib import Path
    for task in Path(f"/proc/{parent}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                env = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"RANK={rank}".encode() in env:
                return int(child)
    return None


@pytest.mark.parametrize("target", ["torchrun", "rank 1 alone"])
def test_sigterm_under_torchrun_stops_every_rank_at_one_iteration_and_saves(data, tmp_path, target):
    """`docker stop` / a preempted node: SIGTERM to torchrun, which forwards it to every rank;
    or a signal only one rank gets (the extreme of each rank seeing it at its own moment). The
    ranks agree on one stopping iteration (a rank that left alone would leave the others in the
    next gradient all-reduce: an error or a hang until torchrun's 30 s grace ends in SIGKILL,
    and rank 0 might never save), rank 0 saves once, each rank exits 143."""
    import shutil
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from pix2pix_edge.train.checkpoint import load_training_checkpoint

    if not Path("/proc/self/task").is_dir():
        pytest.skip("needs Linux /proc to find torchrun's workers")
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not found beside this Python")
    run = tmp_path / "run"
    cmd = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "pix2pix_edge.runtime.cli", "--",
           "train", str(data), "--run", str(run), "--depth", "6", "--ngf", "4", "--ndf", "4",
           "--load-size", "72", "--crop-size", "64", "--workers", "0", "--threads", "1",
           "--max-iters", "1000000", "--amp", "off", "--no-progress", "--no-tensorboard"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 120
        while not ((run / "log.csv").is_file() and len((run / "log.csv").read_text().splitlines()) > 3):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
            time.sleep(0.2)
        pid = proc.pid if target == "torchrun" else _rank_pid(proc.pid, 1)
        assert pid is not None, "rank 1's worker not found"
        signalled = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
    saved = [ln for ln in out.splitlines() if ln.startswith("interrupted at iteration")]
    assert len(saved) == 1, out                       # rank 0 alone says it, once
    iteration = int(saved[0].split()[3].rstrip(":"))
    assert load_training_checkpoint(run / "checkpoints" / "latest.pt")["iteration"] == iteration
    assert out.count("Interrupted (SIGTERM).") == 1, out
    # every rank left by itself, with 143: nothing ran into torchrun's grace or a broken collective
    assert "SIGKILL" not in out and took < 25, (took, out)
    assert "exitcode  : 143" in out or target == "torchrun", out
    assert proc.returncode != 0
