"""Every option of ``pix2pix train``, written once.

:class:`TrainOptions` is what the training loop reads. Each field's metadata (help text, the
allowed choices, a lower bound) is also where ``pix2pix train``'s flags come from
(runtime.options.click_options, used by train/cli.py) and what :func:`check_options` checks, so a new option
is one field here. The flag of a field is its name with dashes (``crop_size`` -> ``--crop-size``;
a bool gets ``--x/--no-x``). The machinery is runtime/options.py's, shared by every command.

No torch here: ``pix2pix train --help`` stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass

from pix2pix_edge.runtime.contract import DEFAULT_INFERENCE_NORM, DIRECTIONS, INFERENCE_NORMS
from pix2pix_edge.runtime.options import check_options as check_fields
from pix2pix_edge.runtime.options import defaults as _defaults
from pix2pix_edge.runtime.options import flag, from_dict, option  # noqa: F401 - re-exported

ON_BAD_FILE = ("skip", "error")
NORMS = ("batch", "instance", "none")          # the generator/discriminator norm layers
GAN_MODES = ("vanilla", "lsgan")
AMP_CHOICES = ("auto", "off", "bf16", "fp16")
CHANNELS_LAST = ("auto", "on", "off")
ADAM_IMPLS = ("fused", "foreach", "for-loop")
UPSAMPLES = ("transpose", "resize", "separable")  # train.models.UPSAMPLES
ANTIALIAS_PADS = ("reflect", "zero")             # the low-pass filters' border (models.LowPass)


@dataclass
class TrainOptions:
    """Every option of ``pix2pix train`` (the CLI flags are generated from these fields)."""

    data: str
    run: str = "runs/pix2pix"
    resume: bool = False
    # data
    direction: str = option("AtoB", "AtoB: left half is the input. Real facades files are "
                            "photo|labels: labels->photo is BtoA.", choices=DIRECTIONS)
    load_size: int = option(286, "Resize both halves to this before the random crop.", min=1)
    crop_size: int = option(256, "Training crop (a multiple of 2^depth).", min=1)
    augment: bool = option(True, "Random crop load-size -> crop-size and horizontal flip.")
    holdout_last: int = option(0, "Keep the last N training pairs out of training (evaluate on "
                               "them).", min=0)
    holdout_every: int = option(0, "Or keep every N-th training pair out (the N-th, 2N-th, ...: a "
                                "share that covers data sorted by kind, as shoes then handbags).",
                                min=0)
    on_bad_file: str = option("skip", "What to do with unusable image files.", choices=ON_BAD_FILE)
    # models (reference defaults: unet_256, ngf 64, basic 70x70 PatchGAN, BatchNorm, dropout)
    depth: int = option(8, "U-Net levels: 8 = unet_256, 7 = unet_128.", min=5, max=11)
    ngf: int = option(64, "Generator width.", min=1)
    ndf: int = option(64, "Discriminator width.", min=1)
    d_layers: int = option(3, "PatchGAN layers: 3 = the 70x70 'basic' D, 0 = the 1x1 pixel D.",
                           min=0)
    norm: str = option("batch", "Normalisation layers.", choices=NORMS)
    dropout: bool = option(True, "Dropout 0.5 in the innermost up blocks (training only).")
    upsample: str = option("transpose", "Decoder up-sampling: transpose = ConvTranspose 4x4 (the "
                           "reference); resize = x2 nearest + 3x3 conv (no checkerboard, plain "
                           "convolutions only); separable = x2 nearest + depthwise 3x3 + 1x1 "
                           "(fastest on CPU).", choices=UPSAMPLES)
    d_scales: int = option(1, "PatchGAN scales (pix2pixHD): 1 = the reference D; N: N "
                           "discriminators on the pair at 1, 1/2, 1/4 ... resolution.", min=1)
    antialias: bool = option(False, "Anti-aliased U-Net (Zhang 2019): a fixed [1,3,3,1]^2 low-pass "
                             "filter before each stride-2 encoder conv and after each x2 up-"
                             "sampling; no new parameters (a plain run can be fine-tuned into "
                             "one). Steadier output under camera motion.")
    antialias_pad: str = option("reflect", "Border of the low-pass filters (--antialias).",
                                choices=ANTIALIAS_PADS)
    # objective, optimiser, schedule
    gan_mode: str = option("vanilla", "GAN loss: BCE with logits or MSE.", choices=GAN_MODES)
    lambda_l1: float = option(100.0, "Weight of the L1 loss.", min=0)
    lambda_fm: float = option(0.0, "Weight of pix2pixHD's discriminator feature-matching loss "
                              "(L1 between D's features on real and generated pairs; pix2pixHD: "
                              "10). 0: off.", min=0)
    lambda_stability: float = option(0.0, "Weight of the transform-consistency loss (Eilertsen et "
                                     "al. 2019): L1 between G(T(x)) and T(G(x)) for a random small "
                                     "shift / rotation / zoom T plus noise, on the valid region. "
                                     "0: off; 100 (the scale of --lambda-l1) is the measured "
                                     "starting point (docs/steady.md).", min=0)
    stability_shift: float = option(4.0, "--lambda-stability: largest translation T draws, in "
                                    "pixels (sub-pixel, uniform in +-this).", min=0)
    stability_rotate: float = option(1.0, "--lambda-stability: largest rotation, degrees.", min=0)
    stability_zoom: float = option(0.03, "--lambda-stability: largest zoom change (0.03: 0.97 to "
                                   "1.03).", min=0, max=0.5)
    stability_noise: float = option(0.02, "--lambda-stability: largest standard deviation of the "
                                    "noise added to T(x) (values in [-1, 1]).", min=0)
    init_from: str = option("", "Start from the weights of this run (its checkpoints/latest.pt: G "
                            "and D; or a generator file: G) with fresh optimisers and schedule: "
                            "fine-tuning, e.g. into --antialias --lambda-stability.",
                            metavar="RUN", show_default=False)
    lr: float = option(2e-4, "Adam learning rate.")
    beta1: float = option(0.5, "Adam beta1.")
    beta2: float = option(0.999, "Adam beta2.")
    batch_size: int = option(1, "Pairs per iteration (per process under torchrun).", min=1)
    epochs: int = option(100, "Epochs at constant learning rate.", min=0)
    epochs_decay: int = option(100, "Then epochs of linear decay to zero.", min=0)
    max_iters: int = option(0, "Stop after this many iterations in total (0: no limit).", min=0)
    max_minutes: float = option(0.0, "Stop (and save) after this much wall time (0: no limit); "
                                "the progress bar then shows time.", min=0)
    seed: int = option(0, "Seed for weights, shuffling, augmentation and dropout.")
    # speed
    device: str = option("auto", "auto | cpu | cuda | cuda:N.")
    amp: str = option("auto", "Mixed precision. auto: bf16 on GPUs that have it (else fp16) and "
                      "on CPUs with native BF16.", choices=AMP_CHOICES)
    channels_last: str = option("auto", "Memory format. auto: on with mixed precision on CUDA, "
                                "off on CPU (slower there).", choices=CHANNELS_LAST)
    compile: bool = option(False, "torch.compile G and D (slow start, faster steps).")
    adam_impl: str = option("fused", "torch.optim.Adam implementation (fused: one kernel for all "
                            "tensors, fastest here).", choices=ADAM_IMPLS)
    sync_bn: bool = option(False, "SyncBatchNorm across torchrun processes (CUDA only).")
    workers: int = option(-1, "DataLoader worker processes (-1: auto).", min=-1)
    threads: int = option(0, "torch CPU threads (0: torch's default).", min=0)
    # output
    log_every: int = option(20, "Iterations per log.csv row (losses averaged over them).", min=1)
    save_every: int = option(5, "Epochs between checkpoints/epoch_XXX.pt (latest.pt: every "
                             "epoch).", min=1)
    save_every_iters: int = option(0, "Also refresh latest.pt every N iterations (0: off).", min=0)
    inference_norm: str = option(DEFAULT_INFERENCE_NORM, "Recorded for eval/export: BatchNorm with "
                                 "per-image statistics (as the reference test.py) or the running "
                                 "statistics (model.eval()).", choices=INFERENCE_NORMS)
    tensorboard: bool = option(True, "Log to RUN/tensorboard when installed.")
    progress: bool = option(True, "Show the progress bar.")
    health_window: int = option(200, "Iterations over which 'the discriminator has won' is "
                                "judged.", min=1)


# what `train --init-from RUN` takes from RUN/config.json unless given: the data, the hold-out and
# the architecture (weights must fit); the new run's own choices (--antialias, the losses,
# lengths) are its own
INIT_FROM_INHERITS = ("direction", "load_size", "crop_size", "holdout_last", "holdout_every",
                      "depth", "ngf", "ndf", "d_layers", "norm", "dropout", "upsample",
                      "d_scales", "inference_norm")


def defaults(cls=None) -> dict:
    return _defaults(cls or TrainOptions)


def check_options(o: TrainOptions) -> None:
    """Reject impossible option values with one line, exit 2 (before any heavy work): the
    choices and bounds of the fields' metadata, then the rules that involve several options."""
    from pix2pix_edge.runtime.errors import BadUsage

    check_fields(o)
    if o.crop_size % (2 ** o.depth) != 0:
        raise BadUsage(f"--crop-size {o.crop_size} is not a multiple of 2^depth = {2 ** o.depth} "
                       f"(depth {o.depth}); use e.g. --crop-size "
                       f"{2 ** o.depth * max(1, o.crop_size // 2 ** o.depth)}")
    if o.holdout_last and o.holdout_every:
        raise BadUsage("--holdout-last and --holdout-every: hold out one way, not both")
    if o.holdout_every == 1:
        raise BadUsage("--holdout-every 1 would hold out every pair; use 2 or more")
    coarsest = o.crop_size // 2 ** (o.d_scales - 1)
    need = 3 * 2 ** o.d_layers if o.d_layers else 1   # BatchNorm needs >1 value before the last conv
    if o.d_scales > 1 and coarsest < need:
        raise BadUsage(f"--d-scales {o.d_scales}: the coarsest discriminator would see "
                       f"{coarsest}x{coarsest} (--crop-size {o.crop_size} / 2^{o.d_scales - 1}), "
                       f"but a {o.d_layers}-layer PatchGAN needs at least {need}x{need}; use "
                       "fewer scales or a larger crop")
    if o.load_size < o.crop_size:
        raise BadUsage(f"--load-size {o.load_size} is smaller than --crop-size {o.crop_size}")
    if o.epochs + o.epochs_decay < 1:
        raise BadUsage("--epochs + --epochs-decay must be at least 1")
    if o.lr <= 0:
        raise BadUsage("--lr must be positive")


def options_from_dict(d: dict) -> TrainOptions:
    """TrainOptions from a dict (e.g. config.json's 'options'), ignoring unknown keys."""
    return from_dict(TrainOptions, d)
