"""The pix2pix training loop, meant to be read top to bottom (in the spirit of nanoGPT's train.py).

``train(TrainOptions(...))`` does everything ``pix2pix train`` does:

1. set up: distributed (torchrun env vars), device, precision, threads, seeds;
2. data: :class:`train.data.PairedDataset` with the paper's augmentation, a DistributedSampler
   (also for one process) whose order is a function of (seed, epoch), so a resumed run can skip
   the batches it already did;
3. models and optimisers exactly as the reference code (Adam 2e-4, betas (0.5, 0.999), init
   N(0, 0.02), constant lr for ``epochs`` then linear decay over ``epochs_decay``);
4. resume from ``RUN/checkpoints/latest.pt`` (weights, optimisers, schedulers, AMP scaler, RNG
   states, position in the epoch) so that a resumed run is bitwise the run that never stopped
   (on CPU with ``workers=0``);
5. the loop: D step, G step, health checks, logging (tqdm, log.csv, TensorBoard), samples and
   checkpoints.

Only rank 0 writes files. A checkpoint is written atomically, and never after a non-finite loss,
so the last one on disk is always a good one.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pix2pix_edge.runtime.errors import BadInput, CheckFailed, ModelMismatch, Unavailable
from pix2pix_edge.runtime.interrupt import StopOnCtrlC
from pix2pix_edge.train import checkpoint as ckpt
from pix2pix_edge.train.models import (NORM_MODES, NORMS, PatchDiscriminator, UNetGenerator, count_parameters,
                          inference_copy, init_weights)

AMP_CHOICES = ("auto", "off", "bf16", "fp16")
GAN_MODES = ("vanilla", "lsgan")
ADAM_IMPLS = ("fused", "foreach", "for-loop")
LOG_FIELDS = ("iteration", "epoch", "G_GAN", "G_L1", "D_real", "D_fake", "lr", "seconds")


@dataclass
class TrainOptions:
    """Every option of ``pix2pix train`` (the CLI maps its flags one to one onto these)."""

    data: str
    run: str = "runs/pix2pix"
    resume: bool = False
    # data
    direction: str = "AtoB"
    load_size: int = 286
    crop_size: int = 256
    augment: bool = True               # random crop of load_size -> crop_size and flip
    holdout_last: int = 0              # keep the last N training pairs out (evaluate on them)
    on_bad_file: str = "skip"
    # models (reference defaults: unet_256, ngf 64, basic 70x70 PatchGAN, BatchNorm, dropout)
    depth: int = 8
    ngf: int = 64
    ndf: int = 64
    d_layers: int = 3
    norm: str = "batch"
    dropout: bool = True
    # objective and optimiser
    gan_mode: str = "vanilla"
    lambda_l1: float = 100.0
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 1
    epochs: int = 100                  # at constant lr
    epochs_decay: int = 100            # then linear decay to zero
    max_iters: int = 0                 # stop after this many iterations in total (0: no limit)
    max_minutes: float = 0.0           # stop after this much wall time (0: no limit)
    seed: int = 0
    # speed
    device: str = "auto"               # auto | cpu | cuda | cuda:N
    amp: str = "auto"                  # auto | off | bf16 | fp16
    channels_last: str = "auto"        # auto | on | off
    compile: bool = False
    adam_impl: str = "fused"           # fused | foreach | for-loop (torch.optim.Adam variants)
    sync_bn: bool = False
    workers: int = -1                  # DataLoader workers (-1: auto)
    threads: int = 0                   # torch intra-op threads (0: torch's default)
    # output
    log_every: int = 20                # iterations per log.csv row (losses averaged over them)
    save_every: int = 5                # epochs between epoch_XXX.pt checkpoints
    save_every_iters: int = 0          # also refresh latest.pt every N iterations (0: off)
    inference_norm: str = "per-image"  # recorded for eval/export: per-image | running
    tensorboard: bool = True
    progress: bool = True
    health_window: int = 200           # iterations over which "D has won" is judged


# ----------------------------------------------------------------------------- small helpers

def check_options(o: TrainOptions) -> None:
    """Reject impossible option values with one line (before any heavy work)."""
    def bad(cond, msg):
        if cond:
            raise BadInput(msg)

    bad(o.direction not in ("AtoB", "BtoA"), f"--direction must be AtoB or BtoA, not {o.direction!r}")
    bad(o.norm not in NORMS, f"--norm must be one of {', '.join(NORMS)}, not {o.norm!r}")
    bad(o.gan_mode not in GAN_MODES, f"--gan-mode must be one of {', '.join(GAN_MODES)}")
    bad(o.amp not in AMP_CHOICES, f"--amp must be one of {', '.join(AMP_CHOICES)}")
    bad(o.channels_last not in ("auto", "on", "off"), "--channels-last must be auto, on or off")
    bad(o.inference_norm not in NORM_MODES,
        f"--inference-norm must be one of {', '.join(NORM_MODES)}")
    bad(not 5 <= o.depth <= 11, f"--depth must be 5..11 (7 = unet_128, 8 = unet_256), got {o.depth}")
    bad(o.crop_size % (2 ** o.depth) != 0,
        f"--crop-size {o.crop_size} is not a multiple of 2^depth = {2 ** o.depth} "
        f"(depth {o.depth}); use e.g. --crop-size {2 ** o.depth * max(1, o.crop_size // 2 ** o.depth)}")
    bad(o.load_size < o.crop_size, f"--load-size {o.load_size} is smaller than --crop-size {o.crop_size}")
    for name in ("ngf", "ndf", "batch_size", "log_every", "save_every"):
        bad(getattr(o, name) < 1, f"--{name.replace('_', '-')} must be at least 1")
    bad(o.epochs < 0 or o.epochs_decay < 0 or o.epochs + o.epochs_decay < 1,
        "--epochs + --epochs-decay must be at least 1")
    bad(o.lr <= 0, "--lr must be positive")
    bad(o.adam_impl not in ADAM_IMPLS, f"--adam-impl must be one of {', '.join(ADAM_IMPLS)}")


def resolve_precision(o: TrainOptions, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, channels_last) for this device.

    ``auto`` follows benchmarks/train_speed.py: on CUDA bf16 where supported (else fp16 with a
    GradScaler) plus channels_last (tensor cores want NHWC); on a CPU with native BF16 (AVX-512
    BF16 / AMX) bf16 autocast, contiguous; elsewhere FP32 contiguous. On the 2-core AVX-512 CPUs
    here channels_last made training slower both in FP32 and in BF16 (README, Performance)."""
    if device.type == "cuda":
        auto = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        auto = torch.bfloat16 if _cpu_has_native_bf16() else None
    dtype = {"auto": auto, "off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[o.amp]
    if dtype is torch.float16 and device.type != "cuda":
        raise Unavailable("--amp fp16 needs a CUDA GPU; on a CPU use --amp bf16 or --amp off")
    channels_last = {"on": True, "off": False, "auto": dtype is not None and device.type == "cuda"}[o.channels_last]
    return dtype, channels_last


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


def _cpu_has_native_bf16() -> bool:
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((probe and probe()) or (amx and amx()))


def lr_factor(epochs: int, epochs_decay: int):
    """The reference schedule: 1 for ``epochs`` epochs, then linearly down over ``epochs_decay``."""
    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)
    return factor


def gan_loss(logits: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """BCE-with-logits (vanilla) or MSE (lsgan) against an all-real / all-fake target map."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if mode == "lsgan":
        return nn.functional.mse_loss(logits, target)
    return nn.functional.binary_cross_entropy_with_logits(logits, target)


class Health:
    """Warnings (once each) that one side of the GAN has won, judged per window of iterations:
    the D loss averaging < 0.05 (the reference value is log 2 = 0.69), or the generator's GAN
    loss growing over 4 windows in a row to more than 3x its start."""

    def __init__(self, window: int = 200):
        self.window, self.d, self.g, self.g_means, self.warned = window, [], [], [], set()

    def update(self, values) -> list[str]:
        """``values`` = (G_GAN, G_L1, D_real, D_fake) of one iteration; returns new warnings."""
        self.d.append(0.5 * (values[2] + values[3]))
        self.g.append(values[0])
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


class SkipSampler(torch.utils.data.Sampler):
    """A sampler that drops the first ``skip`` indices of another: how a resumed run skips the
    batches of the interrupted epoch it already trained on (the order itself is seeded)."""

    def __init__(self, sampler, skip: int = 0):
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.skip, None)

    def __len__(self):
        return max(0, len(self.sampler) - self.skip)


def sample_grid(G: nn.Module, batch: dict, norm_mode: str, device, channels_last: bool) -> np.ndarray:
    """input | output | target rows as one uint8 HxWx3 image (uses no RNG: dropout off)."""
    model = inference_copy(G, norm_mode, dropout=False)
    A = batch["A"].to(device)
    if channels_last:
        A = A.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        out = model(A).float().cpu()
    rows = [torch.cat([a, o, b], dim=2) for a, o, b in zip(batch["A"], out, batch["B"])]
    img = torch.cat(rows, dim=1)
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    return ((img[:3].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "torch": torch.__version__,
           "numpy": np.__version__, "platform": platform.platform()}
    for pkg in ("pix2pix-edge", "pillow", "tqdm"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ----------------------------------------------------------------------------- the loop

def train(o: TrainOptions, callback=None) -> dict:
    """See :func:`_train`; this wrapper only restores torch's thread count afterwards."""
    threads = torch.get_num_threads()
    try:
        return _train(o, callback)
    finally:
        torch.set_num_threads(threads)


def _train(o: TrainOptions, callback=None) -> dict:
    """Train pix2pix as ``o`` says. Returns a summary (iterations, seconds per iteration, files).

    ``callback(state)``, if given, is called after every iteration with a dict holding
    ``iteration``, ``epoch``, ``G``, ``D`` and the losses; tests use it to interrupt a run or to
    poison weights. Raises BadInput / ModelMismatch / Unavailable / CheckFailed (one line each);
    KeyboardInterrupt after saving a checkpoint when interrupted with Ctrl-C.
    """
    check_options(o)
    from pix2pix_edge.train.data import PairedDataset, list_pairs, split_holdout

    # ---- distributed set-up: torchrun sets RANK / WORLD_SIZE / LOCAL_RANK
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    ddp = world > 1
    if o.device == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(o.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise Unavailable("--device cuda was asked for but PyTorch sees no CUDA GPU")
    if device.type == "cuda":
        if device.index is None:  # under torchrun: one GPU per local rank
            device = torch.device(f"cuda:{local_rank}")
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if ddp and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if o.sync_bn and device.type != "cuda":
        raise Unavailable("--sync-bn needs CUDA GPUs (PyTorch's SyncBatchNorm has no CPU kernel)")
    master = rank == 0
    if o.threads > 0:
        torch.set_num_threads(o.threads)  # train() puts the old value back when it returns
    amp_dtype, channels_last = resolve_precision(o, device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    run = Path(o.run)
    ckpt_dir = run / "checkpoints"
    latest = ckpt_dir / "latest.pt"

    def say(msg: str) -> None:
        if master:
            from tqdm import tqdm
            tqdm.write(msg, file=sys.stderr)

    # ---- resume: read the checkpoint first, so that the architecture check comes before data
    state = None
    if o.resume:
        if not latest.is_file():
            raise BadInput(f"--resume: no checkpoint at {latest} (start without --resume)")
        state = ckpt.load_training_checkpoint(latest)

    # ---- data
    root = Path(o.data)
    if not root.is_dir():
        raise BadInput(f"data directory not found: {root}")
    missing: list = []
    pairs = list_pairs(root, "train", bad=missing)
    if missing and o.on_bad_file == "error":
        path, why = missing[0]
        raise BadInput(f"{path}: {why} (--on-bad-file error; {len(missing)} unpaired file(s))")
    held_out: list = []
    if o.holdout_last:
        pairs, held_out = split_holdout(pairs, o.holdout_last)
    if not pairs:
        raise BadInput(f"no usable image pairs in {root} (expected aligned A|B images or A/ and "
                       "B/ folders, in DATA or DATA/train)")
    dataset = PairedDataset(root, "train", direction=o.direction, load_size=o.load_size,
                            crop_size=o.crop_size, augment=o.augment, on_bad_file=o.on_bad_file,
                            files=pairs, seed=o.seed)
    dataset.bad_files[:0] = missing
    if dataset.bad_files:
        say(f"skipping {len(dataset.bad_files)} bad file(s): " + "; ".join(
            f"{p}: {why}" for p, why in dataset.bad_files[:3]) + (" ..." if len(dataset.bad_files) > 3 else ""))
    sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world, rank=rank,
                                                  shuffle=True, seed=o.seed)
    iters_per_epoch = math.ceil(len(sampler) / o.batch_size)
    total_epochs = o.epochs + o.epochs_decay
    total_iters = total_epochs * iters_per_epoch
    if o.max_iters:
        total_iters = min(total_iters, o.max_iters)
    workers = o.workers if o.workers >= 0 else min(4, max(0, (os.cpu_count() or 1) // max(1, world) - 1))
    # a fixed picture set for samples/: no augmentation, the held-out pairs when there are some
    sample_set = PairedDataset(root, "train", direction=o.direction, load_size=o.crop_size,
                               crop_size=o.crop_size, augment=False, on_bad_file="skip",
                               files=(held_out or pairs)[:4], seed=o.seed)
    sample_batch = torch.utils.data.default_collate([sample_set[i] for i in range(len(sample_set))])

    # ---- models, optimisers, schedules (the reference set-up)
    torch.manual_seed(o.seed)
    in_c, out_c = sample_batch["A"].shape[1], sample_batch["B"].shape[1]
    G = init_weights(UNetGenerator(in_c, out_c, depth=o.depth, ngf=o.ngf, norm=o.norm,
                                   dropout=o.dropout)).to(device)
    D = init_weights(PatchDiscriminator(in_c + out_c, ndf=o.ndf, n_layers=o.d_layers,
                                        norm=o.norm)).to(device)
    if rank:
        torch.manual_seed(o.seed + rank)  # a different dropout stream per rank
    config = {"generator": dict(G.config), "discriminator": dict(D.config)}
    if state is not None and state["config"] != config:
        saved = {k: v for part in state["config"].values() for k, v in part.items()}
        asked = {k: v for part in config.values() for k, v in part.items()}
        diff = ", ".join(f"{k} {saved.get(k)} -> {asked.get(k)}" for k in sorted(asked)
                         if saved.get(k) != asked.get(k))
        raise ModelMismatch(f"cannot resume {latest}: it was trained with another architecture "
                            f"({diff}); drop those options or train into a new --run")
    if o.sync_bn:
        G, D = nn.SyncBatchNorm.convert_sync_batchnorm(G), nn.SyncBatchNorm.convert_sync_batchnorm(D)
    G, D = G.to(memory_format=fmt), D.to(memory_format=fmt)
    # fused: one kernel over all tensors per step; ~4x faster than the for-loop on this CPU
    # (57 M parameters: 0.3 s vs 1.2 s per step measured under load), same update rule
    adam = dict(lr=o.lr, betas=(o.beta1, o.beta2), fused=o.adam_impl == "fused",
                foreach=o.adam_impl == "foreach")
    opt_G = torch.optim.Adam(G.parameters(), **adam)
    opt_D = torch.optim.Adam(D.parameters(), **adam)
    sched_G = torch.optim.lr_scheduler.LambdaLR(opt_G, lr_factor(o.epochs, o.epochs_decay))
    sched_D = torch.optim.lr_scheduler.LambdaLR(opt_D, lr_factor(o.epochs, o.epochs_decay))
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype is torch.float16)

    epoch, iteration, step_in_epoch = 0, 0, 0
    if state is not None:
        try:
            G.load_state_dict(state["G"])
            D.load_state_dict(state["D"])
        except RuntimeError as e:
            raise ModelMismatch(f"cannot resume {latest}: weights do not fit "
                                f"({str(e).strip().splitlines()[-1][:200]})") from None
        opt_G.load_state_dict(state["opt_G"])
        opt_D.load_state_dict(state["opt_D"])
        sched_G.load_state_dict(state["sched_G"])
        sched_D.load_state_dict(state["sched_D"])
        scaler.load_state_dict(state["scaler"])
        epoch, iteration, step_in_epoch = state["epoch"], state["iteration"], state["step_in_epoch"]
        if rank == 0:
            ckpt.restore_rng_state(state["rng"])
        say(f"resumed {latest}: epoch {epoch + 1}, iteration {iteration} "
            f"({step_in_epoch}/{iters_per_epoch} batches of this epoch done)")
        del state

    G_train, D_train, D_for_G = G, D, D
    if ddp:
        ids = [device.index] if device.type == "cuda" else None
        G_train = nn.parallel.DistributedDataParallel(G, device_ids=ids)
        D_train = nn.parallel.DistributedDataParallel(D, device_ids=ids)
        # G's step sees D frozen; calling the bare module keeps D's reducer out of G's backward
        D_for_G = D
    if o.compile:
        G_train, D_train = torch.compile(G_train), torch.compile(D_train)
        D_for_G = D_train if not ddp else torch.compile(D)

    # ---- run directory: config.json, log.csv, TensorBoard (rank 0 only)
    log_file = tb = None
    if master:
        (run / "samples").mkdir(parents=True, exist_ok=True)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        cfg = {"options": asdict(o), "models": config,
               "parameters": {"G": count_parameters(G), "D": count_parameters(D)},
               "device": str(device), "device_name": _device_name(device),
               "precision": {"autocast": str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32",
                             "channels_last": channels_last, "grad_scaler": scaler.is_enabled()},
               "world_size": world, "torch_threads": torch.get_num_threads(), "workers": workers,
               "data": {"path": str(root.resolve()), "train_pairs": len(pairs),
                        "held_out_pairs": len(held_out), "iters_per_epoch": iters_per_epoch,
                        "bad_files": [list(map(str, b)) for b in getattr(dataset, "bad_files", [])]},
               "versions": _versions(), "resumed_at_iteration": iteration if o.resume else None}
        (run / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        log_path = run / "log.csv"
        rows = []
        if o.resume and log_path.is_file():  # drop rows logged after the checkpoint we resume
            with open(log_path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["iteration"]) <= iteration]
        log_file = open(log_path, "w", newline="")
        log = csv.DictWriter(log_file, fieldnames=LOG_FIELDS)
        log.writeheader()
        log.writerows(rows)
        log_file.flush()
        if o.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                tb = SummaryWriter(str(run / "tensorboard"), purge_step=iteration or None)
            except ImportError:
                say("(TensorBoard not installed: logging to log.csv only)")
        if device.type == "cpu" and o.threads == 0:
            note = busy_cpu_note(torch.get_num_threads())
            if note:
                say(note)
        say(f"G {count_parameters(G):,} params, D {count_parameters(D):,} params on {device}, "
            f"{cfg['precision']['autocast']}{' channels_last' if channels_last else ''}, "
            f"{len(pairs)} pairs, {iters_per_epoch} it/epoch")

    data_facts = {"direction": o.direction, "crop_size": o.crop_size, "load_size": o.load_size,
                  "dataset": str(root.resolve()), "in_channels": in_c, "out_channels": out_c}

    def save(kind: str) -> None:
        """latest.pt (+ epoch_XXX.pt when kind == 'epoch') and generator.pt, atomically."""
        if not master:
            return
        record = {
            "format": ckpt.CHECKPOINT_FORMAT, "version": ckpt.CHECKPOINT_VERSION,
            "config": config, "options": asdict(o),
            "inference": {"norm_mode": o.inference_norm, "dropout": False}, "data": data_facts,
            "run": str(run), "G": G.state_dict(), "D": D.state_dict(),
            "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(),
            "sched_G": sched_G.state_dict(), "sched_D": sched_D.state_dict(),
            "scaler": scaler.state_dict(), "epoch": epoch, "iteration": iteration,
            "step_in_epoch": step_in_epoch, "rng": ckpt.capture_rng_state(),
        }
        ckpt.atomic_save(record, latest)
        if kind == "epoch" and (epoch % o.save_every == 0 or epoch >= total_epochs):
            ckpt.atomic_save(record, ckpt_dir / f"epoch_{epoch:03d}.pt")
        ckpt.save_generator(run / ckpt.GENERATOR_FILE, G, norm_mode=o.inference_norm,
                            dropout=False, data=data_facts, run=str(run))

    # ---- the loop
    from tqdm import tqdm

    bar = tqdm(total=total_iters, initial=iteration, unit="it", dynamic_ncols=True,
               disable=not (master and o.progress), file=sys.stderr)
    seconds: list[float] = []           # per-iteration wall time, data included (benchmarks)
    window = np.zeros(4)                # loss sums since the last log row
    in_window = 0
    health = Health(o.health_window)
    started = time.perf_counter()
    stop_reason = "done"
    autocast = torch.autocast(device.type, dtype=amp_dtype or torch.float32,
                              enabled=amp_dtype is not None)
    loader_rng = torch.Generator()      # keeps the DataLoader from drawing on the global RNG

    with StopOnCtrlC() as interrupted:
        try:
            while epoch < total_epochs and iteration < total_iters and stop_reason == "done":
                sampler.set_epoch(epoch)
                dataset.set_epoch(epoch)
                loader = torch.utils.data.DataLoader(
                    dataset, batch_size=o.batch_size, sampler=SkipSampler(sampler, step_in_epoch * o.batch_size),
                    num_workers=workers, pin_memory=device.type == "cuda", generator=loader_rng,
                    persistent_workers=False)
                lr = opt_G.param_groups[0]["lr"]
                t0 = time.perf_counter()
                for batch in loader:
                    real_A = batch["A"].to(device, non_blocking=True).contiguous(memory_format=fmt)
                    real_B = batch["B"].to(device, non_blocking=True).contiguous(memory_format=fmt)

                    # D step: real pairs -> 1, generated pairs -> 0
                    with autocast:
                        fake_B = G_train(real_A)
                    D.requires_grad_(True)
                    opt_D.zero_grad(set_to_none=True)
                    with autocast:
                        pred_fake = D_train(torch.cat([real_A, fake_B.detach()], 1))
                        pred_real = D_train(torch.cat([real_A, real_B], 1))
                    loss_D_fake = gan_loss(pred_fake.float(), False, o.gan_mode)
                    loss_D_real = gan_loss(pred_real.float(), True, o.gan_mode)
                    loss_D = 0.5 * (loss_D_fake + loss_D_real)
                    scaler.scale(loss_D).backward()
                    scaler.step(opt_D)

                    # G step: fool D, and stay close to the target (L1 x lambda)
                    D.requires_grad_(False)
                    opt_G.zero_grad(set_to_none=True)
                    with autocast:
                        pred = D_for_G(torch.cat([real_A, fake_B], 1))
                    loss_G_GAN = gan_loss(pred.float(), True, o.gan_mode)
                    loss_G_L1 = nn.functional.l1_loss(fake_B.float(), real_B.float()) * o.lambda_l1
                    scaler.scale(loss_G_GAN + loss_G_L1).backward()
                    scaler.step(opt_G)
                    scaler.update()

                    losses = torch.stack([loss_G_GAN, loss_G_L1, loss_D_real, loss_D_fake]).detach()
                    values = losses.tolist()  # one device sync per iteration
                    iteration += 1
                    step_in_epoch += 1
                    seconds.append(time.perf_counter() - t0)  # includes loading the batch
                    t0 = time.perf_counter()

                    # health: a non-finite loss stops the run before anything is saved
                    if not all(math.isfinite(v) for v in values):
                        named = ", ".join(f"{k}={v:.4g}" for k, v in zip(LOG_FIELDS[2:6], values))
                        kept = (f"the last good checkpoint is kept at {latest}" if latest.is_file()
                                else "no checkpoint was written yet")
                        raise CheckFailed(f"training diverged at iteration {iteration} (epoch "
                                          f"{epoch + 1}): non-finite loss ({named}); stopped, {kept}. "
                                          "Try a lower --lr or --amp off")
                    for warning in health.update(values):
                        say(warning)
                    window += np.array(values)
                    in_window += 1

                    if master:
                        bar.update(1)
                        bar.set_postfix(G_GAN=f"{values[0]:.3f}", G_L1=f"{values[1]:.3f}",
                                        D_real=f"{values[2]:.3f}", D_fake=f"{values[3]:.3f}",
                                        refresh=False)
                        if iteration % o.log_every == 0 or iteration == total_iters:
                            mean = window / max(1, in_window)
                            row = dict(zip(LOG_FIELDS, [iteration, epoch + 1, *(round(float(m), 6) for m in mean),
                                                        lr, round(time.perf_counter() - started, 3)]))
                            log.writerow(row)
                            log_file.flush()
                            if tb is not None:
                                for k in LOG_FIELDS[2:7]:
                                    tb.add_scalar(f"train/{k}", row[k], iteration)
                            window[:], in_window = 0, 0
                    if callback is not None:
                        callback({"iteration": iteration, "epoch": epoch, "G": G, "D": D,
                                  "losses": dict(zip(LOG_FIELDS[2:6], values))})
                    if o.save_every_iters and iteration % o.save_every_iters == 0 \
                            and step_in_epoch < iters_per_epoch:
                        save("iters")
                    if interrupted.requested:
                        raise KeyboardInterrupt
                    if iteration >= total_iters:
                        break
                    if o.max_minutes and time.perf_counter() - started > o.max_minutes * 60:
                        stop_reason = "time"
                        break

                if step_in_epoch >= iters_per_epoch:  # the epoch is complete
                    if master:
                        from PIL import Image
                        Image.fromarray(sample_grid(G, sample_batch, o.inference_norm, device,
                                                    channels_last)).save(
                            run / "samples" / f"epoch_{epoch + 1:03d}.png")
                    epoch += 1
                    step_in_epoch = 0
                    sched_G.step()
                    sched_D.step()
                    save("epoch")
            save("end")  # also after --max-iters / --max-minutes, mid-epoch
        except KeyboardInterrupt:
            bar.close()
            save("interrupt")
            say(f"interrupted at iteration {iteration}: checkpoint saved to {latest}; "
                f"continue with --resume")
            raise
        finally:
            bar.close()
            if log_file is not None:
                log_file.close()
            if tb is not None:
                tb.close()

    timed = seconds[min(len(seconds) - 1, 3):] if seconds else []
    summary = {"iterations": iteration, "epoch": epoch, "stopped": stop_reason,
               "seconds_per_iter": float(np.median(timed)) if timed else None,
               "seconds": seconds, "run": str(run), "generator": str(run / ckpt.GENERATOR_FILE),
               "precision": str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32",
               "channels_last": channels_last, "device": str(device)}
    if master:
        say(f"trained {iteration} iterations ({epoch} epochs) in "
            f"{time.perf_counter() - started:.0f} s; generator: {run / ckpt.GENERATOR_FILE}")
    return summary


def options_from_dict(d: dict) -> TrainOptions:
    """TrainOptions from a dict (e.g. config.json's 'options'), ignoring unknown keys."""
    names = {f.name for f in fields(TrainOptions)}
    return TrainOptions(**{k: v for k, v in d.items() if k in names})
