"""``pix2pix distill``: train a small student generator against a trained teacher.

The teacher is any generator ``pix2pix train`` wrote (a run directory or generator file), loaded
with ``weights_only=True`` (train/checkpoint.py) and run in its *recorded* inference mode
(train/models.py :func:`inference_copy`: per-image or running BatchNorm statistics), dropout off,
frozen. The student is an ordinary :class:`UNetGenerator` (default ngf 16), so its run directory
is like any other: ``pix2pix eval``, ``export`` and ``run`` take it unchanged.

The student's objective, every term weighted by a flag and logged in log.csv:

* ``T_L1``   ``lambda_teacher`` x L1(student(x), teacher(x)): the teacher's output as target
  (OMGD, GAN Compression);
* ``G_L1``   ``lambda_l1`` x L1(student(x), y): the ground truth, as in ``train``;
* ``G_GAN``  ``lambda_gan`` x the GAN loss against a discriminator trained as in ``train``
  (``--lambda-gan 0`` trains no discriminator at all, as OMGD); ``--d-scales`` / ``--lambda-fm``
  work as in ``train``;
* ``F_MSE``  ``lambda_feat`` x feature distillation: MSE between the teacher's decoder
  activations and the student's, mapped to the teacher's width by learned 1x1 convolutions
  (GAN Compression), at the ``distill_layers`` outermost decoder levels;
* ``G_STAB`` ``lambda_stability`` x transform consistency (train/stability.py), as in ``train``.

``--extra-inputs DIR``: input-only images (frames of the deployment camera, say). Each iteration
also draws a batch of them; their targets are the teacher's outputs (``T_L1`` and ``F_MSE`` only),
so the student learns the deployment domain without labels. Which extra images an iteration
draws is a function of (seed, iteration), so ``--resume`` stays exact.

This module holds the pieces: the teacher, the feature taps and adapters, the extra inputs and
the objective (:func:`distill_step`). The loop itself is train/loop.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pix2pix_edge.runtime.errors import BadInput, ModelMismatch
from pix2pix_edge.train import stability
from pix2pix_edge.train.loop import (Models, Objective, adam, d_update, discriminator, for_device,
                                     g_adversarial, generator, grad_scaler, schedule)
from pix2pix_edge.train.models import (UNetBlock, UNetGenerator, count_parameters, inference_copy,
                                       init_weights)

DISTILL_LOG_FIELDS = ("T_L1", "F_MSE")  # the terms distillation adds to train's log columns


# ----------------------------------------------------------------------------- the teacher

def load_teacher(source: str | Path, *, in_channels: int | None = None,
                 out_channels: int | None = None, crop_size: int | None = None):
    """``(frozen inference model, record)`` of the teacher in ``source`` (a run directory or a
    generator file of ``pix2pix train``), in its recorded inference mode with dropout off.

    One-line errors: not a generator (ModelMismatch), channels that differ from the data's, a
    depth whose 2^depth does not divide the crop size (ModelMismatch)."""
    from pix2pix_edge.train.checkpoint import load_generator

    source = Path(source)
    try:
        G, record = load_generator(source)
    except (BadInput, ModelMismatch) as e:
        raise type(e)(f"teacher: {e}") from None
    c = G.config
    if in_channels is not None and c["in_channels"] != in_channels:
        raise ModelMismatch(f"teacher {source} takes {c['in_channels']}-channel inputs but the "
                            f"data's inputs have {in_channels} channels (another task or "
                            "--direction?)")
    if out_channels is not None and c["out_channels"] != out_channels:
        raise ModelMismatch(f"teacher {source} makes {c['out_channels']}-channel outputs but the "
                            f"data's targets have {out_channels} channels (another task or "
                            "--direction?)")
    if crop_size is not None and crop_size % G.multiple:
        raise ModelMismatch(f"teacher {source} is a depth-{c['depth']} U-Net: its inputs must be "
                            f"multiples of {G.multiple}, but --crop-size is {crop_size}")
    teacher = inference_copy(G, record["inference"]["norm_mode"], dropout=False)
    return teacher, record


# ----------------------------------------------------------------------------- feature taps

def decoder_blocks(G: UNetGenerator) -> list[UNetBlock]:
    """The inner U-Net levels from the outermost inwards: level k up-samples to 1/2^k of the
    input side; the output of its ``model`` (up-convolution -> norm) is its decoder activation."""
    blocks, block = [], G.model
    while True:
        inner = [m for m in block.model if isinstance(m, UNetBlock)]
        if not inner:
            return blocks
        block = inner[0]
        blocks.append(block)


def decoder_channels(G: UNetGenerator, layers: int) -> list[int]:
    """Channels of the ``layers`` outermost decoder activations of ``G``."""
    ngf = G.config["ngf"]
    return [ngf * min(2 ** k, 8) for k in range(layers)]


class FeatureTap:
    """``with FeatureTap(G, layers) as features: out = G(x)``: ``features`` then holds the decoder
    activations of the ``layers`` outermost levels of that forward pass, outermost first. The
    hooks exist only inside the ``with``, so the generator itself (exported, deep-copied for
    inference) never carries any."""

    def __init__(self, G: UNetGenerator, layers: int):
        blocks = decoder_blocks(G)
        if layers > len(blocks):
            raise BadInput(f"--distill-layers {layers}: a depth-{G.config['depth']} U-Net has "
                           f"{len(blocks)} inner decoder levels")
        self.blocks = blocks[:layers]
        self.features: list = []
        self.handles: list = []

    def __enter__(self) -> list:
        self.features = [None] * len(self.blocks)

        def hook(i):
            def keep(module, inputs, output):
                self.features[i] = output
            return keep

        self.handles = [b.model.register_forward_hook(hook(i)) for i, b in enumerate(self.blocks)]
        return self.features

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


class Student(nn.Module):
    """The student generator plus the 1x1 convolutions that map its decoder activations to the
    teacher's width. One module, so that DDP reduces the adapters' gradients with the student's;
    ``forward`` returns ``(output, mapped features)``. Only ``generator`` is exported."""

    def __init__(self, generator: UNetGenerator, teacher_channels: list[int]):
        super().__init__()
        self.generator = generator
        s_channels = decoder_channels(generator, len(teacher_channels))
        self.adapters = nn.ModuleList(nn.Conv2d(s, t, 1) for s, t in zip(s_channels, teacher_channels))

    def forward(self, x):
        if not len(self.adapters):
            return self.generator(x), []
        with FeatureTap(self.generator, len(self.adapters)) as features:
            out = self.generator(x)
        return out, [a(f) for a, f in zip(self.adapters, features)]


class Teacher:
    """The frozen teacher: ``teacher(x) -> (output, decoder activations)``, without grad."""

    def __init__(self, model: UNetGenerator, layers: int):
        self.model, self.layers = model, layers
        self.channels = decoder_channels(model, layers)

    @torch.no_grad()
    def __call__(self, x):
        if not self.layers:
            return self.model(x), []
        with FeatureTap(self.model, self.layers) as features:
            out = self.model(x)
        return out, list(features)

    def to(self, *args, **kwargs) -> "Teacher":
        self.model.to(*args, **kwargs)
        return self


# ----------------------------------------------------------------------------- extra inputs

class ExtraInputs:
    """Input-only images for distillation (``--extra-inputs DIR``), as batches of tensors.

    Every file is decoded once up front; a corrupt or unusable one is an error naming it (the
    folder is the user's own footage: better to say so than to train on less of it). Batches
    get the same resize / random crop / flip as the training pairs; the batch of iteration ``t``
    is a function of ``(seed, t, rank)`` only, so a resumed run draws the same ones."""

    def __init__(self, folder: str | Path, *, load_size: int, crop_size: int, augment: bool,
                 seed: int, batch_size: int, rank: int = 0, world: int = 1):
        from pix2pix_edge.runtime.contract import IMAGE_EXTS, image_files
        from pix2pix_edge.train.data import PairedDataset, Pair, check_pairs

        folder = Path(folder)
        if not folder.is_dir():
            raise BadInput(f"--extra-inputs: folder not found: {folder}")
        files = image_files(folder)
        if not files:
            raise BadInput(f"--extra-inputs: no images in {folder} "
                           f"(looked for {', '.join(sorted(IMAGE_EXTS))})")
        pairs = [Pair(p.stem, p, p) for p in files]  # input only: both "halves" are the image
        good, bad = check_pairs(pairs)
        if bad:
            path, why = bad[0]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise BadInput(f"--extra-inputs: bad image {path}: {why}{more}; remove or replace it")
        self.dataset = PairedDataset(None, load_size=load_size, crop_size=crop_size,
                                     augment=augment, on_bad_file="error", files=good, seed=seed)
        self.seed, self.batch_size, self.rank, self.world = int(seed), batch_size, rank, world

    def __len__(self) -> int:
        return len(self.dataset)

    def batch(self, iteration: int) -> torch.Tensor:
        """The extra inputs of (0-based) ``iteration`` as an NCHW tensor in [-1, 1]."""
        n, bs = len(self.dataset), self.batch_size
        start = (iteration * self.world + self.rank) * bs
        items = []
        for pos in range(start, start + bs):
            cycle, k = divmod(pos, n)
            order = np.random.default_rng([self.seed, 7919, cycle]).permutation(n)
            self.dataset.set_epoch(cycle)
            items.append(self.dataset[int(order[k])]["A"])
        return torch.stack(items)


# ----------------------------------------------------------------------------- the objective

def feature_loss(student_feats: list, teacher_feats: list) -> torch.Tensor:
    """Mean over levels of MSE(adapted student activation, teacher activation)."""
    losses = [nn.functional.mse_loss(s.float(), t.float()) for s, t in zip(student_feats, teacher_feats)]
    return torch.stack(losses).mean()


@dataclass
class DistillWeights:
    """The weights of the student's loss terms (``--lambda-*``)."""

    teacher: float = 100.0
    l1: float = 100.0
    gan: float = 1.0
    feat: float = 10.0
    fm: float = 0.0


# ----------------------------------------------------------------------------- models and step

@dataclass
class DistillModels(Models):
    """:class:`train.loop.Models` for a student: ``G`` is the bare student generator (what
    generator.pt, samples and eval see); ``student`` adds the 1x1 adapters (optimised with G by
    ``opt_G``, saved as ``adapters``); ``D`` is an empty module when no term needs one."""

    student: Student | None = None
    teacher: Teacher | None = None
    extra: ExtraInputs | None = None
    adversarial: bool = True
    steps: int = 0                       # iterations done: which extra inputs come next

    def wrap(self, o, env) -> None:
        self.G_train, self.D_train, self.D_for_G = self.student, self.D, self.D
        if env.ddp:
            ids = [env.device.index] if env.device.type == "cuda" else None
            self.G_train = nn.parallel.DistributedDataParallel(self.student, device_ids=ids)
            if self.adversarial:
                self.D_train = nn.parallel.DistributedDataParallel(self.D, device_ids=ids)
        if o.compile:
            self.G_train = torch.compile(self.G_train)
            if self.adversarial:
                self.D_train = torch.compile(self.D_train)
                self.D_for_G = self.D_train if not env.ddp else torch.compile(self.D)

    def step_schedules(self) -> None:
        self.sched_G.step()
        if self.adversarial:
            self.sched_D.step()

    def state_dict(self) -> dict:
        out = {"G": self.G.state_dict(), "adapters": self.student.adapters.state_dict(),
               "opt_G": self.opt_G.state_dict(), "sched_G": self.sched_G.state_dict(),
               "scaler": self.scaler.state_dict(), "D": self.D.state_dict()}
        if self.adversarial:
            out.update(opt_D=self.opt_D.state_dict(), sched_D=self.sched_D.state_dict())
        return out

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.student.adapters.load_state_dict(state["adapters"])
        self.D.load_state_dict(state["D"])
        names = ("opt_G", "sched_G", "scaler") + (("opt_D", "sched_D") if self.adversarial else ())
        for name in names:
            getattr(self, name).load_state_dict(state[name])
        self.steps = int(state["iteration"])


def build_distill(o, env, data) -> DistillModels:
    """The frozen teacher, the student (train's generator options) with its adapters, the
    discriminator when a term needs one, their optimisers and schedules as in ``train``."""
    in_c, out_c = data.channels
    teacher_model, record = load_teacher(o.teacher, in_channels=in_c, out_channels=out_c,
                                         crop_size=o.crop_size)
    teacher = Teacher(teacher_model.to(env.device), o.distill_layers)
    if o.distill_layers and o.distill_layers > o.depth - 1:
        raise BadInput(f"--distill-layers {o.distill_layers}: a depth-{o.depth} student has "
                       f"{o.depth - 1} inner decoder levels")
    torch.manual_seed(o.seed)
    G = init_weights(generator(o, in_c, out_c)).to(env.device)
    student = Student(G, teacher.channels)
    init_weights(student.adapters)
    student.to(env.device)
    adversarial = o.lambda_gan > 0 or o.lambda_fm > 0
    D = init_weights(discriminator(o, in_c + out_c)).to(env.device) if adversarial else nn.Module()
    if env.rank:
        torch.manual_seed(o.seed + env.rank)
    config = {"generator": dict(G.config), "discriminator": dict(D.config) if adversarial else None,
              "distill": {"teacher": dict(teacher_model.config), "layers": o.distill_layers}}
    student = for_device(o, env, student)
    G = student.generator
    D = for_device(o, env, D) if adversarial else D
    opt_G = adam(o, student.parameters())
    opt_D = adam(o, D.parameters()) if adversarial else None
    extra = None
    if o.extra_inputs:
        extra = ExtraInputs(o.extra_inputs, load_size=o.load_size, crop_size=o.crop_size,
                            augment=o.augment, seed=o.seed, batch_size=o.batch_size,
                            rank=env.rank, world=env.world)
        env.say(f"extra inputs: {len(extra)} image(s) from {o.extra_inputs}, "
                f"{o.batch_size} per iteration, targets from the teacher")
    env.say(f"teacher {o.teacher}: ngf {teacher_model.config['ngf']}, depth "
            f"{teacher_model.config['depth']}, {record['inference']['norm_mode']} norm, "
            f"{count_parameters(teacher_model):,} params")
    return DistillModels(G, D, opt_G, opt_D, schedule(o, opt_G),
                         schedule(o, opt_D) if adversarial else None, grad_scaler(env), config,
                         student=student, teacher=teacher, extra=extra, adversarial=adversarial)


def distill_losses(o) -> tuple:
    """The log.csv columns of a distillation run with options ``o``, in order."""
    names = ("G_GAN", "G_L1", "D_real", "D_fake") if (o.lambda_gan > 0 or o.lambda_fm > 0) else ("G_L1",)
    names += ("T_L1", "F_MSE")
    if o.lambda_fm > 0:
        names += ("G_FM",)
    if o.extra_inputs:
        names += ("X_T_L1",)
    if o.lambda_stability:
        names += (stability.LOSS,)
    return names


def distill_step(m: DistillModels, real_A: torch.Tensor, real_B: torch.Tensor, o, autocast) -> dict:
    """One student iteration: the D update (when there is a D), then the student's update on
    its weighted terms. Extra inputs go through the student in the same batch as the pairs (one
    forward, so DDP sees one), their loss terms against the teacher only."""
    n = real_A.shape[0]
    x = real_A
    if m.extra is not None:
        extra = m.extra.batch(m.steps).to(real_A.device).contiguous(memory_format=_fmt(real_A))
        x = torch.cat([real_A, extra])
    with autocast:
        out, s_feats = m.G_train(x)
        t_out, t_feats = m.teacher(x)
    fake_B = out[:n]
    losses = {}
    if m.adversarial:
        losses["D_real"], losses["D_fake"] = d_update(m, real_A, real_B, fake_B, o, autocast)
    m.opt_G.zero_grad(set_to_none=True)
    total = []
    if m.adversarial:
        G_GAN, G_FM = g_adversarial(m, real_A, real_B, fake_B, o, autocast)
        losses["G_GAN"] = G_GAN * o.lambda_gan
        total.append(losses["G_GAN"])
        if G_FM is not None:
            losses["G_FM"] = G_FM
            total.append(G_FM)
    losses["G_L1"] = nn.functional.l1_loss(fake_B.float(), real_B.float()) * o.lambda_l1
    losses["T_L1"] = nn.functional.l1_loss(fake_B.float(), t_out[:n].float()) * o.lambda_teacher
    zero = losses["G_L1"].new_zeros(())
    losses["F_MSE"] = (feature_loss([f[:n] for f in s_feats], [f[:n] for f in t_feats])
                       * o.lambda_feat if s_feats else zero)
    total += [losses["G_L1"], losses["T_L1"], losses["F_MSE"]]
    if m.extra is not None:
        x_t = nn.functional.l1_loss(out[n:].float(), t_out[n:].float()) * o.lambda_teacher
        x_f = (feature_loss([f[n:] for f in s_feats], [f[n:] for f in t_feats]) * o.lambda_feat
               if s_feats else zero)
        losses["X_T_L1"] = x_t
        total += [x_t, x_f]
    if o.lambda_stability:   # |S(T(x)) - T(S(x))| on the pairs (train/stability.py)
        losses[stability.LOSS] = stability.consistency_loss(
            m.G_train, real_A, fake_B, o, autocast) * o.lambda_stability
        total.append(losses[stability.LOSS])
    m.scaler.scale(torch.stack(total).sum()).backward()
    m.scaler.step(m.opt_G)
    m.scaler.update()
    m.steps += 1
    return losses


def _fmt(t: torch.Tensor):
    return torch.channels_last if t.is_contiguous(memory_format=torch.channels_last) and \
        not t.is_contiguous() else torch.contiguous_format


def objective(o) -> Objective:
    return Objective(build_distill, distill_step, distill_losses(o))


def distill(o, callback=None) -> dict:
    """Train a student as ``o`` (DistillOptions) says, with train/loop.py's loop; its summary.

    Options left at None (direction, sizes, depth, norm, inference norm, hold-out) are the
    teacher's (train/distill_options.py :func:`resolve`), as on the command line."""
    from pix2pix_edge.train.distill_options import resolve
    from pix2pix_edge.train.loop import train

    if not o.teacher:
        raise BadInput("distill needs a teacher: a run directory or generator file of `pix2pix train`")
    o = resolve(o)
    return train(o, callback=callback, objective=objective(o))
