"""The pix2pix training loop, meant to be read top to bottom (in the spirit of nanoGPT's train.py).

``train(TrainOptions(...))`` does everything ``pix2pix train`` does. :func:`_train` is the loop;
each step it takes is one small function or plain object below it, in the order it uses them:

1. :func:`setup`: distributed (torchrun env vars), device, precision, threads -> :class:`Env`;
2. :func:`load_data`: :class:`train.data.PairedDataset` with the paper's augmentation and a
   DistributedSampler (also for one process) whose order is a function of (seed, epoch), so a
   resumed run can skip the batches it already did -> :class:`Data`;
3. :func:`build_models`: G, D and their optimisers exactly as the reference code (Adam 2e-4,
   betas (0.5, 0.999), init N(0, 0.02), constant lr for ``epochs`` then linear decay over
   ``epochs_decay``) -> :class:`Models`;
4. :func:`restore`: from ``RUN/checkpoints/latest.pt`` (weights, optimisers, schedulers, AMP
   scaler, RNG states, position in the epoch) so that a resumed run is bitwise the run that never
   stopped (on CPU with ``workers=0``); or :func:`start_from` (``--init-from``): another run's
   weights only, fresh optimisers and schedule (fine-tuning);
5. :func:`gan_step`: one iteration, the D update then the G update (GAN + lambda * L1, and the
   transform-consistency term of train/stability.py with ``--lambda-stability``);
6. :class:`Progress` (the bar), :class:`Health` (warnings), and from train/rundir.py what the
   run directory gets: :class:`RunLog` (config.json, log.csv, TensorBoard),
   :func:`save_checkpoint` and :func:`write_sample`.

What a run optimises is an :class:`Objective` (build + step + loss names): another one (e.g. a
student trained against a frozen teacher) reuses this loop and its run-directory contract.

Only rank 0 writes files. A checkpoint is written atomically, and never after a non-finite loss,
so the last one on disk is always a good one.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from pix2pix_edge.runtime.errors import BadInput, CheckFailed, ModelMismatch, Unavailable
from pix2pix_edge.runtime.files import remove_stale_temps
from pix2pix_edge.runtime.interrupt import Interrupted, StopOnSignal
from pix2pix_edge.train import checkpoint as ckpt
from pix2pix_edge.train import stability
from pix2pix_edge.train.models import (UNetGenerator, count_parameters, init_weights,
                                       make_discriminator, per_scale)
from pix2pix_edge.train.options import TrainOptions, check_options, options_from_dict  # noqa: F401
from pix2pix_edge.train.rundir import RunLog, run_config, save_checkpoint, write_sample

LOSSES = ("G_GAN", "G_L1", "D_real", "D_fake")          # what gan_step returns, log.csv order
FM_LOSS = "G_FM"                                        # ... and this with --lambda-fm
STAB_LOSS = stability.LOSS                              # ... and G_STAB with --lambda-stability
LOG_FIELDS = ("iteration", "epoch", *LOSSES, "lr", "seconds")


# ----------------------------------------------------------------------------- the loop

def train(o: TrainOptions, callback=None, objective: Objective | None = None) -> dict:
    """See :func:`_train`; this wrapper only restores torch's thread count afterwards."""
    threads = torch.get_num_threads()
    try:
        return _train(o, callback, objective or pix2pix_objective(o))
    finally:
        torch.set_num_threads(threads)


def _train(o: TrainOptions, callback, objective: Objective) -> dict:
    """Train as ``o`` says. Returns a summary (iterations, seconds per iteration, files).

    ``callback(state)``, if given, is called after every iteration (on every rank) with a dict
    holding ``iteration``, ``epoch``, ``G``, ``D`` and the losses; tests use it to interrupt a
    run or to poison weights. Raises BadInput / ModelMismatch / Unavailable / CheckFailed (one
    line each); after saving a checkpoint, KeyboardInterrupt when interrupted with Ctrl-C,
    SIGTERM or SIGHUP (runtime.interrupt.Interrupted, whose exit_code names the signal).
    """
    check_options(o)
    env = setup(o)
    run = Path(o.run)
    latest = run / "checkpoints" / "latest.pt"
    if env.master:   # checkpoint temporaries a killed run left (kill -9 mid-save, OOM kill)
        for folder in (run, run / "checkpoints"):
            remove_stale_temps(folder)
    state = read_checkpoint(latest) if o.resume else None   # before the data: fail fast
    if o.init_from and not o.resume and not Path(o.init_from).exists():
        raise BadInput(f"--init-from: {o.init_from} not found (a run directory or generator file)")
    data = load_data(o, env)
    m = objective.build(o, env, data)
    pos = Position()
    if state is not None:
        pos = restore(m, state, env, latest)
        env.say(f"resumed {latest}: epoch {pos.epoch + 1}, iteration {pos.iteration} "
                f"({pos.step_in_epoch}/{data.iters_per_epoch} batches of this epoch done)")
        del state
    elif o.init_from:
        env.say(start_from(m, o))
    m.wrap(o, env)
    total_epochs = o.epochs + o.epochs_decay
    total_iters = total_epochs * data.iters_per_epoch
    if o.max_iters:
        total_iters = min(total_iters, o.max_iters)

    log = RunLog(run, objective.losses, config=run_config(o, env, data, m, pos), every=o.log_every,
                 resumed_at=pos.iteration if o.resume else None, tensorboard=o.tensorboard,
                 write=env.master, say=env.say)
    note = busy_cpu_note(torch.get_num_threads()) if env.device.type == "cpu" and not o.threads else None
    if note:
        env.say(note)
    env.say(f"G {count_parameters(m.G):,} params, D {count_parameters(m.D):,} params on "
            f"{env.device}, {env.precision}{' channels_last' if env.channels_last else ''}, "
            f"{len(data.dataset)} pairs, {data.iters_per_epoch} it/epoch")

    def save(kind: str) -> None:
        """latest.pt and generator.pt; epoch_XXX.pt too every --save-every epochs and at the end."""
        if env.master:
            epoch_file = kind == "epoch" and (pos.epoch % o.save_every == 0 or pos.epoch >= total_epochs)
            save_checkpoint(o, m, pos, data, epoch_file=epoch_file)

    bar = Progress(o, env, objective.losses, pos.iteration, total_iters)
    health = Health(o.health_window)
    seconds: list[float] = []           # per-iteration wall time, data included (benchmarks)
    stopped = "done"
    started = time.perf_counter()
    with StopOnSignal() as interrupted:
        try:
            while pos.epoch < total_epochs and pos.iteration < total_iters and stopped == "done":
                lr = m.opt_G.param_groups[0]["lr"]
                t0 = time.perf_counter()
                for real_A, real_B in data.batches(pos.epoch, pos.step_in_epoch, env):
                    losses = objective.step(m, real_A, real_B, o, env.autocast())
                    values = torch.stack([losses[k] for k in objective.losses]).detach().tolist()
                    pos.iteration += 1
                    pos.step_in_epoch += 1
                    seconds.append(time.perf_counter() - t0)  # includes loading the batch
                    t0 = time.perf_counter()

                    check_finite(values, objective.losses, pos, latest)  # before anything is saved
                    named = dict(zip(objective.losses, values))
                    for warning in health.update(named):
                        env.say(warning)
                    elapsed = time.perf_counter() - started
                    log.add(pos, values, lr, elapsed, last=pos.iteration == total_iters)
                    bar.update(pos.iteration, elapsed, values)
                    if callback is not None:
                        callback({"iteration": pos.iteration, "epoch": pos.epoch, "G": m.G, "D": m.D,
                                  "losses": named})
                    if (o.save_every_iters and pos.iteration % o.save_every_iters == 0
                            and pos.step_in_epoch < data.iters_per_epoch):
                        save("iters")
                    # a signal or the --max-minutes clock, as every rank sees it: under torchrun
                    # each rank gets the signal at its own moment, and one that stopped alone
                    # would leave the others waiting in the next gradient all-reduce
                    over_time = bool(o.max_minutes) and \
                        time.perf_counter() - started > o.max_minutes * 60
                    signum, over_time = env.agree_max(interrupted.signum or 0, int(over_time))
                    if signum:
                        raise Interrupted(signum)
                    if pos.iteration >= total_iters:
                        break
                    if over_time:
                        stopped = "time"
                        break

                if pos.step_in_epoch >= data.iters_per_epoch:  # the epoch is complete
                    write_sample(o, env, m, data, f"epoch_{pos.epoch + 1:03d}.png")
                    pos.epoch += 1
                    pos.step_in_epoch = 0
                    m.step_schedules()
                    save("epoch")
            save("end")  # also after --max-iters / --max-minutes, mid-epoch
            if pos.step_in_epoch:  # stopped mid-epoch: a sample of where it stopped
                write_sample(o, env, m, data, f"iter_{pos.iteration:07d}.png")
        except KeyboardInterrupt:
            bar.close()
            save("interrupt")
            if pos.step_in_epoch:
                write_sample(o, env, m, data, f"iter_{pos.iteration:07d}.png")
            env.say(f"interrupted at iteration {pos.iteration}: checkpoint saved to {latest}; "
                    f"continue with --resume")
            raise
        finally:
            bar.close()
            log.close()

    timed = seconds[min(len(seconds) - 1, 3):] if seconds else []
    env.say(f"trained {pos.iteration} iterations ({pos.epoch} epochs) in "
            f"{time.perf_counter() - started:.0f} s; generator: {run / ckpt.GENERATOR_FILE}")
    return {"iterations": pos.iteration, "epoch": pos.epoch, "stopped": stopped,
            "seconds_per_iter": float(np.median(timed)) if timed else None,
            "seconds": seconds, "run": str(run), "generator": str(run / ckpt.GENERATOR_FILE),
            "precision": env.precision, "channels_last": env.channels_last,
            "device": str(env.device)}


# ----------------------------------------------------------------------------- 1. set-up

@dataclass
class Env:
    """Where this process trains: rank ``rank`` of ``world`` processes, its device and precision."""

    world: int
    rank: int
    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool

    @property
    def master(self) -> bool:
        """Rank 0: the only process that writes files and prints."""
        return self.rank == 0

    @property
    def ddp(self) -> bool:
        return self.world > 1

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def precision(self) -> str:
        return str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "fp32"

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def agree_max(self, *values: int) -> list[int]:
        """Each value's maximum over all ranks, the same on every rank (one all-reduce): stop
        decisions (a signal's number, the --max-minutes clock, which each rank reads for itself)
        that all ranks take together, so no rank waits forever in a collective the others have
        left."""
        if not self.ddp:
            return [int(v) for v in values]
        t = torch.tensor([int(v) for v in values], dtype=torch.int64, device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return [int(v) for v in t.tolist()]

    def say(self, msg: str) -> None:
        if self.master:
            from tqdm import tqdm
            tqdm.write(msg, file=sys.stderr)


def setup(o: TrainOptions) -> Env:
    """Distributed set-up (torchrun sets RANK / WORLD_SIZE / LOCAL_RANK), device, threads and
    precision. ``train()`` puts torch's thread count back when it returns."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = pick_device(o.device, int(os.environ.get("LOCAL_RANK", "0")))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if o.sync_bn and device.type != "cuda":
        raise Unavailable("--sync-bn needs CUDA GPUs (PyTorch's SyncBatchNorm has no CPU kernel)")
    if o.threads > 0:
        torch.set_num_threads(o.threads)
    amp_dtype, channels_last = resolve_precision(o, device)
    return Env(world, rank, device, amp_dtype, channels_last)


def pick_device(name: str, local_rank: int) -> torch.device:
    """``auto``: this local rank's GPU, else the CPU. On CUDA also cuDNN autotuning and TF32."""
    if name == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise Unavailable("--device cuda was asked for but PyTorch sees no CUDA GPU")
    if device.type == "cuda":
        if device.index is None:  # under torchrun: one GPU per local rank
            device = torch.device(f"cuda:{local_rank}")
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def resolve_precision(o: TrainOptions, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, channels_last) for this device.

    ``auto`` follows benchmarks/train_speed.py: on CUDA bf16 where the GPU has it natively
    (:func:`cuda_native_bf16`; else fp16 with a GradScaler) plus channels_last (tensor cores want
    NHWC); on a CPU with native BF16 (AVX-512 BF16 / AMX) bf16 autocast, contiguous; elsewhere
    FP32 contiguous. On the 2-core AVX-512 CPUs here channels_last made training slower both in
    FP32 and in BF16 (README, Performance)."""
    if device.type == "cuda":
        auto = torch.bfloat16 if cuda_native_bf16(device) else torch.float16
    else:
        auto = torch.bfloat16 if _cpu_has_native_bf16() else None
    dtype = {"auto": auto, "off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[o.amp]
    if dtype is torch.float16 and device.type != "cuda":
        raise Unavailable("--amp fp16 needs a CUDA GPU; on a CPU use --amp bf16 or --amp off")
    channels_last = {"on": True, "off": False, "auto": dtype is not None and device.type == "cuda"}[o.channels_last]
    return dtype, channels_last


def cuda_native_bf16(device: torch.device | int | None = None) -> bool:
    """Does this CUDA GPU compute in bf16 natively? Compute capability >= 8.0 (Ampere on).

    Not ``torch.cuda.is_bf16_supported()``: by default (``including_emulation=True``) it is True
    on Volta / Turing too, where bf16 is emulated and slower than fp16 + GradScaler, and it asks
    about the current device rather than ``device``. ROCm builds: every supported GPU has it."""
    if torch.version.hip:
        return True
    return torch.cuda.get_device_capability(device)[0] >= 8


def _cpu_has_native_bf16() -> bool:
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((probe and probe()) or (amx and amx()))


def busy_cpu_note(threads: int, cores: int | None = None) -> str | None:
    """A hint when other processes already keep the CPU busy: torch's OpenMP threads spin-wait
    for each other, and on shared cores a step can take several times longer (up to 8x was
    measured on the 2-core machines here), where one thread would not suffer."""
    cores = cores or os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):    # not on every platform
        return None
    if threads <= 1 or load < max(1.0, 0.75 * cores):
        return None
    return (f"note: the CPU is already busy (load average {load:.1f} on {cores} cores); torch's "
            f"{threads} threads slow down sharply on shared cores: if iterations are slow, "
            f"try --threads 1")


# ----------------------------------------------------------------------------- 2. data

@dataclass
class Data:
    """This process's share of the training pairs, in the seeded order of ``sampler``, and a
    fixed batch (no augmentation; the held-out pairs when there are some) for RUN/samples."""

    root: Path
    dataset: torch.utils.data.Dataset   # train.data.PairedDataset: the usable pairs only
    held_out: list
    sampler: torch.utils.data.DistributedSampler
    batch_size: int
    workers: int
    sample_batch: dict
    loader_rng: torch.Generator         # keeps the DataLoader from drawing on the global RNG

    @property
    def iters_per_epoch(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    @property
    def channels(self) -> tuple[int, int]:
        return self.sample_batch["A"].shape[1], self.sample_batch["B"].shape[1]

    def facts(self, o: TrainOptions) -> dict:
        """What the generator file records about the data (export and eval read it)."""
        in_c, out_c = self.channels
        return {"direction": o.direction, "crop_size": o.crop_size, "load_size": o.load_size,
                "dataset": str(self.root.resolve()), "in_channels": in_c, "out_channels": out_c}

    def batches(self, epoch: int, done: int, env: Env):
        """``(A, B)`` batches of ``epoch`` on the device, after the first ``done`` (a resume)."""
        self.sampler.set_epoch(epoch)
        self.dataset.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size,
            sampler=SkipSampler(self.sampler, done * self.batch_size), num_workers=self.workers,
            pin_memory=env.device.type == "cuda", generator=self.loader_rng,
            persistent_workers=False)
        fmt = env.memory_format
        for batch in loader:
            yield (batch["A"].to(env.device, non_blocking=True).contiguous(memory_format=fmt),
                   batch["B"].to(env.device, non_blocking=True).contiguous(memory_format=fmt))


def load_data(o: TrainOptions, env: Env) -> Data:
    """Find, scan (every file decoded once) and hold out the pairs; the sampler for this rank."""
    from pix2pix_edge.train.data import PairedDataset, list_pairs, split_holdout

    root = Path(o.data)
    if not root.is_dir():
        raise BadInput(f"dataset folder not found: {root}")
    missing: list = []
    pairs = list_pairs(root, "train", bad=missing)
    if missing and o.on_bad_file == "error":
        path, why = missing[0]
        raise BadInput(f"{path}: {why} (--on-bad-file error; {len(missing)} unpaired file(s))")
    held_out: list = []
    if o.holdout_last or o.holdout_every:
        pairs, held_out = split_holdout(pairs, o.holdout_last, every=o.holdout_every)
    if not pairs:
        raise BadInput(f"no usable image pairs in {root} (expected aligned A|B images or A/ and "
                       "B/ folders, in DATA or DATA/train)")
    dataset = PairedDataset(root, "train", direction=o.direction, load_size=o.load_size,
                            crop_size=o.crop_size, augment=o.augment, on_bad_file=o.on_bad_file,
                            files=pairs, seed=o.seed)
    dataset.bad_files[:0] = missing
    if dataset.bad_files:
        env.say(f"skipping {len(dataset.bad_files)} bad file(s): " + "; ".join(
            f"{p}: {why}" for p, why in dataset.bad_files[:3]) + (" ..." if len(dataset.bad_files) > 3 else ""))
    sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=env.world, rank=env.rank,
                                                  shuffle=True, seed=o.seed)
    workers = o.workers if o.workers >= 0 else min(4, max(0, (os.cpu_count() or 1) // env.world - 1))
    sample_set = PairedDataset(root, "train", direction=o.direction, load_size=o.crop_size,
                               crop_size=o.crop_size, augment=False, on_bad_file="skip",
                               files=(held_out or dataset.pairs)[:4], seed=o.seed)
    sample_batch = torch.utils.data.default_collate([sample_set[i] for i in range(len(sample_set))])
    return Data(root, dataset, held_out, sampler, o.batch_size, workers, sample_batch,
                torch.Generator())


class SkipSampler(torch.utils.data.Sampler):
    """A sampler that drops the first ``skip`` indices of another: how a resumed run skips the
    batches of the interrupted epoch it already trained on (the order itself is seeded)."""

    def __init__(self, sampler, skip: int = 0):
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.skip, None)

    def __len__(self):
        return max(0, len(self.sampler) - self.skip)


# ----------------------------------------------------------------------------- 3. models

@dataclass
class Models:
    """The networks and everything that optimises them. ``G_train`` / ``D_train`` / ``D_for_G``
    are what the step calls: the bare modules, or their DDP / torch.compile wrappers."""

    G: nn.Module
    D: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    sched_G: torch.optim.lr_scheduler.LRScheduler
    sched_D: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    config: dict                        # the architecture: a resume must match it
    G_train: Callable | None = None
    D_train: Callable | None = None
    D_for_G: Callable | None = None

    def wrap(self, o: TrainOptions, env: Env) -> None:
        """DDP (one replica per rank) and/or torch.compile, after the weights are in place."""
        self.G_train, self.D_train, self.D_for_G = self.G, self.D, self.D
        if env.ddp:
            ids = [env.device.index] if env.device.type == "cuda" else None
            self.G_train = nn.parallel.DistributedDataParallel(self.G, device_ids=ids)
            self.D_train = nn.parallel.DistributedDataParallel(self.D, device_ids=ids)
            # G's step sees D frozen; calling the bare module keeps D's reducer out of G's backward
        if o.compile:
            self.G_train, self.D_train = torch.compile(self.G_train), torch.compile(self.D_train)
            self.D_for_G = self.D_train if not env.ddp else torch.compile(self.D)

    def step_schedules(self) -> None:
        self.sched_G.step()
        self.sched_D.step()

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(),
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
                "sched_G": self.sched_G.state_dict(), "sched_D": self.sched_D.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        for name in ("opt_G", "opt_D", "sched_G", "sched_D"):
            getattr(self, name).load_state_dict(state[name])
        if not self.scaler_starts_fresh(state):
            self.scaler.load_state_dict(state["scaler"])

    def scaler_starts_fresh(self, state: dict) -> bool:
        """A run trained without fp16 (CPU, bf16, fp32) saved a disabled GradScaler's empty state:
        resumed with --amp fp16, the scaler starts from its initial scale, as a new fp16 run."""
        return self.scaler.is_enabled() and not state.get("scaler")


def build_models(o: TrainOptions, env: Env, data: Data) -> Models:
    """G and D (seeded, reference init) on the device, Adam for each, the reference lr schedule
    and the AMP GradScaler (on for fp16 only)."""
    torch.manual_seed(o.seed)
    in_c, out_c = data.channels
    G = init_weights(generator(o, in_c, out_c)).to(env.device)
    D = init_weights(discriminator(o, in_c + out_c)).to(env.device)
    if env.rank:
        torch.manual_seed(o.seed + env.rank)  # a different dropout stream per rank
    config = {"generator": dict(G.config), "discriminator": dict(D.config)}
    G, D = for_device(o, env, G), for_device(o, env, D)
    opt_G, opt_D = adam(o, G.parameters()), adam(o, D.parameters())
    return Models(G, D, opt_G, opt_D, schedule(o, opt_G), schedule(o, opt_D), grad_scaler(env),
                  config)


def generator(o: TrainOptions, in_channels: int, out_channels: int) -> UNetGenerator:
    """The U-Net the options describe (train and distill's student)."""
    return UNetGenerator(in_channels, out_channels, depth=o.depth, ngf=o.ngf, norm=o.norm,
                         dropout=o.dropout, upsample=o.upsample, antialias=o.antialias,
                         antialias_pad=o.antialias_pad)


def discriminator(o: TrainOptions, in_channels: int) -> nn.Module:
    """The conditional PatchGAN (``--d-scales 1``, the reference) or pix2pixHD's multi-scale one."""
    return make_discriminator(in_channels, ndf=o.ndf, n_layers=o.d_layers, norm=o.norm,
                              scales=o.d_scales)


def for_device(o: TrainOptions, env: Env, net: nn.Module) -> nn.Module:
    """``net`` with SyncBatchNorm (--sync-bn) and in the run's memory format."""
    if o.sync_bn:
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    return net.to(memory_format=env.memory_format)


def adam(o: TrainOptions, params) -> torch.optim.Adam:
    # fused: one kernel over all tensors per step; ~4x faster than the for-loop on this CPU
    # (57 M parameters: 0.3 s vs 1.2 s per step measured under load), same update rule
    return torch.optim.Adam(params, lr=o.lr, betas=(o.beta1, o.beta2),
                            fused=o.adam_impl == "fused", foreach=o.adam_impl == "foreach")


def schedule(o: TrainOptions, opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(o.epochs, o.epochs_decay))


def grad_scaler(env: Env) -> torch.amp.GradScaler:
    return torch.amp.GradScaler(env.device.type, enabled=env.amp_dtype is torch.float16)


def lr_factor(epochs: int, epochs_decay: int):
    """The reference schedule: 1 for ``epochs`` epochs, then linearly down over ``epochs_decay``."""
    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)
    return factor


# ----------------------------------------------------------------------------- 4. restore

@dataclass
class Position:
    """Where the loop stands: epochs done, iterations done, batches done in this epoch."""

    epoch: int = 0
    iteration: int = 0
    step_in_epoch: int = 0


def read_checkpoint(latest: Path) -> dict:
    if not latest.is_file():
        raise BadInput(f"--resume: no checkpoint at {latest} (start without --resume)")
    return ckpt.load_training_checkpoint(latest)


def restore(m: Models, state: dict, env: Env, latest: Path) -> Position:
    """Put ``m`` and the RNGs (rank 0) back exactly as ``state`` left them; its position."""
    saved_config = dict(state["config"])
    if "upsample" not in (saved_config.get("generator") or {"upsample": None}):  # older files
        saved_config["generator"] = {**saved_config["generator"], "upsample": "transpose"}
    if saved_config != m.config:
        saved = {k: v for part in saved_config.values() if part for k, v in part.items()}
        asked = {k: v for part in m.config.values() if part for k, v in part.items()}
        diff = ", ".join(f"{k} {saved.get(k)} -> {asked.get(k)}" for k in sorted(asked)
                         if saved.get(k) != asked.get(k))
        raise ModelMismatch(f"cannot resume {latest}: it was trained with another architecture "
                            f"({diff}); drop those options or train into a new --run")
    try:
        m.load_state_dict(state)
    except RuntimeError as e:
        raise ModelMismatch(f"cannot resume {latest}: weights do not fit "
                            f"({str(e).strip().splitlines()[-1][:200]})") from None
    if m.scaler_starts_fresh(state):
        env.say("note: resuming a run trained without fp16 with --amp fp16: the GradScaler "
                "starts from its initial scale")
    if env.rank == 0:
        ckpt.restore_rng_state(state["rng"])
    return Position(state["epoch"], state["iteration"], state["step_in_epoch"])


# the generator settings that change no weight: a run trained without them loads into a model
# with them (fine-tuning), so --init-from ignores them when comparing architectures
WEIGHTLESS = ("dropout", "antialias", "antialias_pad")


def start_from(m: Models, o: TrainOptions) -> str:
    """``--init-from``: G's weights (and D's, when the source is a training checkpoint with a
    discriminator of the same architecture) from another run; the optimisers, schedules and the
    loop position stay fresh. Refuses another architecture (ModelMismatch) and a hold-out that
    would score this run on pairs the source trained on (BadUsage). Returns what it loaded."""
    from pix2pix_edge.runtime.contract import HeldOut, held_out
    from pix2pix_edge.runtime.errors import BadUsage

    source = Path(o.init_from)
    latest = source / "checkpoints" / "latest.pt"
    state = None
    if latest.is_file():
        state = ckpt.load_training_checkpoint(latest)
    elif source.is_file() and _is_training_checkpoint(source):
        state = ckpt.load_training_checkpoint(source)
    if state is not None:
        g_config, g_weights = state["config"]["generator"], state["G"]
        d_config, d_weights = state["config"].get("discriminator"), state.get("D")
        where = f"{latest if latest.is_file() else source} (iteration {state['iteration']})"
    else:
        try:
            G, record = ckpt.load_generator(source)
        except (BadInput, ModelMismatch) as e:
            raise type(e)(f"--init-from: {e}") from None
        g_config, g_weights, d_config, d_weights = G.config, G.state_dict(), None, None
        where = f"{source if source.is_file() else source / ckpt.GENERATOR_FILE}"
    _same_weights_layout("generator", g_config, m.config["generator"], source)
    try:
        m.G.load_state_dict(g_weights)
    except RuntimeError as e:
        raise ModelMismatch(f"--init-from {source}: generator weights do not fit "
                            f"({str(e).strip().splitlines()[-1][:200]})") from None
    loaded = "G"
    if d_weights and m.config.get("discriminator"):
        _same_weights_layout("discriminator", d_config, m.config["discriminator"], source)
        try:
            m.D.load_state_dict(d_weights)
        except RuntimeError as e:
            raise ModelMismatch(f"--init-from {source}: discriminator weights do not fit "
                                f"({str(e).strip().splitlines()[-1][:200]})") from None
        loaded = "G and D"
    mine = HeldOut(o.holdout_last, o.holdout_every, o.data)
    theirs = held_out(source)
    trained = theirs.trained_keys(o.data) if mine.any else None
    leaked = mine.held_keys(o.data) & trained if trained else set()
    if leaked:
        raise BadUsage(f"--init-from {source}: {len(leaked)} of the pairs this run holds out "
                       f"({mine.flags()}) were trained on by that run ({theirs.flags()}): "
                       "leave --holdout-last / --holdout-every out to keep its hold-out")
    return (f"initialised {loaded} from {where}; optimisers and schedule start fresh"
            + ("" if loaded == "G and D" or not m.config.get("discriminator")
               else " (D starts from scratch: the source holds no discriminator)"))


def _is_training_checkpoint(path: Path) -> bool:
    obj = ckpt.safe_load(path, "checkpoint")
    return isinstance(obj, dict) and obj.get("format") == ckpt.CHECKPOINT_FORMAT


def _same_weights_layout(what: str, saved: dict | None, asked: dict, source: Path) -> None:
    """ModelMismatch unless the two configs have the same weights (settings in WEIGHTLESS and
    keys older files lack aside)."""
    saved = {k: v for k, v in (saved or {}).items() if k not in WEIGHTLESS}
    asked = {k: v for k, v in asked.items() if k not in WEIGHTLESS}
    if what == "generator":
        saved.setdefault("upsample", "transpose")     # files older than --upsample
    diff = [f"{k} {saved.get(k)} -> {asked.get(k)}" for k in sorted(set(saved) | set(asked))
            if saved.get(k) != asked.get(k)]
    if diff:
        raise ModelMismatch(f"--init-from {source}: its {what} has another architecture "
                            f"({', '.join(diff)}); give the same options or leave them out")


# ----------------------------------------------------------------------------- 5. the update

def gan_step(m: Models, real_A: torch.Tensor, real_B: torch.Tensor, o: TrainOptions,
             autocast) -> dict:
    """One pix2pix iteration: the D update, then the G update (GAN + lambda * L1, plus
    pix2pixHD's feature matching with --lambda-fm and the transform-consistency term with
    --lambda-stability). Returns the losses (tensors)."""
    with autocast:
        fake_B = m.G_train(real_A)
    D_real, D_fake = d_update(m, real_A, real_B, fake_B, o, autocast)

    # G: fool D, and stay close to the target (L1 x lambda)
    m.opt_G.zero_grad(set_to_none=True)
    G_GAN, G_FM = g_adversarial(m, real_A, real_B, fake_B, o, autocast)
    G_L1 = nn.functional.l1_loss(fake_B.float(), real_B.float()) * o.lambda_l1
    loss = G_GAN + G_L1 if G_FM is None else G_GAN + G_L1 + G_FM
    losses = {"G_GAN": G_GAN, "G_L1": G_L1, "D_real": D_real, "D_fake": D_fake}
    if G_FM is not None:
        losses[FM_LOSS] = G_FM
    if o.lambda_stability:  # and move with the picture: |G(T(x)) - T(G(x))|
        losses[STAB_LOSS] = stability.consistency_loss(m.G_train, real_A, fake_B, o,
                                                        autocast) * o.lambda_stability
        loss = loss + losses[STAB_LOSS]
    m.scaler.scale(loss).backward()
    m.scaler.step(m.opt_G)
    m.scaler.update()
    return losses


def d_update(m: Models, real_A, real_B, fake_B, o: TrainOptions, autocast):
    """The D update: real pairs -> 1, generated pairs -> 0 (each loss summed over the scales of
    a multi-scale D, as pix2pixHD). Returns ``(D_real, D_fake)``."""
    m.D.requires_grad_(True)
    m.opt_D.zero_grad(set_to_none=True)
    with autocast:
        pred_fake = per_scale(m.D_train(torch.cat([real_A, fake_B.detach()], 1)))
        pred_real = per_scale(m.D_train(torch.cat([real_A, real_B], 1)))
    D_fake = _total([gan_loss(p.float(), False, o.gan_mode) for p in pred_fake])
    D_real = _total([gan_loss(p.float(), True, o.gan_mode) for p in pred_real])
    m.scaler.scale(0.5 * (D_fake + D_real)).backward()
    m.scaler.step(m.opt_D)
    return D_real, D_fake


def g_adversarial(m: Models, real_A, real_B, fake_B, o: TrainOptions, autocast):
    """``(G_GAN, G_FM)`` for the G update, D frozen. G_GAN: fool every scale of D (summed).
    G_FM (None unless --lambda-fm): pix2pixHD's feature matching, L1 between D's block outputs
    on the generated and the real pair, weighted 4 / (d_layers + 1) / scales x lambda_fm."""
    m.D.requires_grad_(False)
    fm = o.lambda_fm > 0
    with autocast:
        if not fm:
            pred = per_scale(m.D_for_G(torch.cat([real_A, fake_B], 1)))
        else:
            pred = per_scale(m.D_for_G(torch.cat([real_A, fake_B], 1), features=True), True)
    G_GAN = _total([gan_loss((p[-1] if fm else p).float(), True, o.gan_mode) for p in pred])
    if not fm:
        return G_GAN, None
    with torch.no_grad(), autocast:
        real = per_scale(m.D_for_G(torch.cat([real_A, real_B], 1), features=True), True)
    weight = o.lambda_fm * 4.0 / (o.d_layers + 1) / len(pred)
    G_FM = _total([nn.functional.l1_loss(f.float(), r.float()) for p, q in zip(pred, real)
                   for f, r in zip(p[:-1], q[:-1])]) * weight
    return G_GAN, G_FM


def _total(losses: list) -> torch.Tensor:
    """Sum of a list of loss tensors (one: itself, bit for bit)."""
    return losses[0] if len(losses) == 1 else torch.stack(losses).sum()


def gan_loss(logits: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """BCE-with-logits (vanilla) or MSE (lsgan) against an all-real / all-fake target map."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if mode == "lsgan":
        return nn.functional.mse_loss(logits, target)
    return nn.functional.binary_cross_entropy_with_logits(logits, target)


@dataclass(frozen=True)
class Objective:
    """What a run optimises, swappable without a second loop: ``build(o, env, data) -> Models``,
    ``step(models, real_A, real_B, o, autocast) -> {name: loss tensor}`` (one iteration's
    update) and the names of the step's losses (log.csv columns, in order)."""

    build: Callable
    step: Callable
    losses: tuple


PIX2PIX = Objective(build_models, gan_step, LOSSES)


def pix2pix_objective(o: TrainOptions) -> Objective:
    """The pix2pix objective; with --lambda-fm / --lambda-stability its log also has the
    feature-matching / stability column."""
    extra = ((FM_LOSS,) if o.lambda_fm else ()) + ((STAB_LOSS,) if o.lambda_stability else ())
    return Objective(build_models, gan_step, LOSSES + extra) if extra else PIX2PIX


# ----------------------------------------------------------------------------- 6. health and the bar

def check_finite(values: list, names: tuple, pos: Position, latest: Path) -> None:
    """A non-finite loss stops the run (CheckFailed, exit 6) before anything is saved."""
    if all(math.isfinite(v) for v in values):
        return
    named = ", ".join(f"{k}={v:.4g}" for k, v in zip(names, values))
    kept = (f"the last good checkpoint is kept at {latest}" if latest.is_file()
            else "no checkpoint was written yet")
    raise CheckFailed(f"training diverged at iteration {pos.iteration} (epoch {pos.epoch + 1}): "
                      f"non-finite loss ({named}); stopped, {kept}. Try a lower --lr or --amp off")


class Health:
    """Warnings (once each) that one side of the GAN has won, judged per window of iterations:
    the D loss averaging < 0.05 (the reference value is log 2 = 0.69), or the generator's GAN
    loss growing over 4 windows in a row to more than 3x its start."""

    def __init__(self, window: int = 200):
        self.window, self.d, self.g, self.g_means, self.warned = window, [], [], [], set()

    def update(self, values) -> list[str]:
        """``values``: one iteration's losses by name, or (G_GAN, G_L1, D_real, D_fake); returns
        new warnings. An objective without these losses gets none."""
        v = values if isinstance(values, dict) else dict(zip(LOSSES, values))
        if not {"G_GAN", "D_real", "D_fake"} <= set(v):
            return []
        self.d.append(0.5 * (v["D_real"] + v["D_fake"]))
        self.g.append(v["G_GAN"])
        if len(self.d) < self.window:
            return []
        out = []
        if np.mean(self.d) < 0.05 and "D" not in self.warned:
            self.warned.add("D")
            out.append(f"warning: the discriminator has won: D loss < 0.05 on average over the "
                       f"last {self.window} iterations (reference ~0.69); the generator gets no "
                       "useful GAN signal. Consider --gan-mode lsgan or a smaller --lr")
        self.g_means.append(float(np.mean(self.g)))
        m = self.g_means
        if (len(m) >= 4 and all(a < b for a, b in zip(m[-4:], m[-3:]))
                and m[-1] > 3 * max(m[0], 0.69) and "G" not in self.warned):
            self.warned.add("G")
            out.append(f"warning: the generator's GAN loss keeps growing (mean {m[-1]:.2f} over "
                       f"the last {self.window} iterations): the discriminator is winning")
        self.d, self.g = [], []
        return out


class Progress:
    """The tqdm bar (rank 0, --progress): iterations done of the total; for a run bounded by
    --max-minutes, the time used of the budget instead (the iteration count beside it), as such
    a run stops long before any iteration total."""

    def __init__(self, o: TrainOptions, env: Env, losses: tuple, iteration: int, total_iters: int):
        from tqdm import tqdm

        self.losses, self.budget = losses, o.max_minutes * 60
        show = dict(dynamic_ncols=True, disable=not (env.master and o.progress), file=sys.stderr)
        if self.budget:
            self.bar = tqdm(total=self.budget, bar_format="{l_bar}{bar}| {elapsed} / "
                            f"{tqdm.format_interval(self.budget)}{{postfix}}", **show)
        else:
            self.bar = tqdm(total=total_iters, initial=iteration, unit="it", **show)

    def update(self, iteration: int, elapsed: float, values: list) -> None:
        post = {k: f"{v:.3f}" for k, v in zip(self.losses, values)}
        if self.budget:
            self.bar.set_postfix({"it": iteration, **post}, refresh=False)
            self.bar.update(min(elapsed, self.budget) - self.bar.n)
        else:
            self.bar.update(1)
            self.bar.set_postfix(**post, refresh=False)

    def close(self) -> None:
        self.bar.close()
