"""The pix2pix networks: U-Net generator and PatchGAN discriminator.

Plain ``nn.Module`` files that mirror the reference code (junyanz/pytorch-CycleGAN-and-pix2pix,
``models/networks.py``) layer for layer, so that

* parameter counts match exactly (unet_256 + BatchNorm: 54,413,955; basic D: 2,768,705), and
* ``state_dict`` keys match, so a reference ``latest_net_G.pth`` loads into :class:`UNetGenerator`.

One reference behaviour is kept on purpose: the activations are in-place, so the LeakyReLU at the
start of each inner block also rewrites the tensor that its skip connection concatenates. The
skip path therefore carries LeakyReLU(x), exactly as in the reference model.

``antialias=True`` (``train --antialias``) adds Zhang's low-pass filter (ICML 2019, "Making
Convolutional Networks Shift-Invariant Again"): a fixed binomial [1,3,3,1]^2 / 64 depthwise
filter (:class:`LowPass`) before every stride-2 encoder convolution and after every x2 decoder
up-sampling (after its norm; at the outermost level after the final Tanh), except at the
innermost level (2x2 -> 1x1 at the smallest input). The filters hold no parameters and are not in
the state dict, so the keys and parameter counts stay the reference's and a checkpoint trained
without them loads into a model with them (fine-tuning, ``train --init-from``).
"""

from __future__ import annotations

import copy
import functools

import torch
from torch import nn

# how BatchNorm normalises at inference: the contract's names (runtime/contract.py); the norms
# and decoders live with the options (torch-free): ConvTranspose 4x4 = reference | x2 nearest +
# 3x3 conv | x2 nearest + depthwise 3x3 + 1x1
from pix2pix_edge.runtime.contract import INFERENCE_NORMS as NORM_MODES
from pix2pix_edge.train.options import ANTIALIAS_PADS, NORMS, UPSAMPLES

BINOMIAL = (1.0, 3.0, 3.0, 1.0)   # Zhang's filter of size 4; the 2-D kernel is its outer product


def norm_layer(kind: str):
    """The normalisation layer factory for ``kind`` (batch | instance | none)."""
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: expected one of {', '.join(NORMS)}")


def up_layers(in_c: int, out_c: int, bias: bool, upsample: str = "transpose") -> list:
    """The x2 up-sampling of one decoder level. ``transpose``: ConvTranspose 4x4 stride 2 (the
    reference). ``resize``: nearest x2 then a 3x3 convolution (no checkerboard artefacts, only
    ordinary convolutions: what INT8 kernels cover). ``separable``: nearest x2, a depthwise 3x3
    and a pointwise 1x1 convolution (about half the latency of ``resize`` in ONNX Runtime on the
    CPUs here, ngf 16 at 128x128). A flat list, so that a following BatchNorm sits right after
    the last convolution in the Sequential (export folds it there)."""
    if upsample == "transpose":
        return [nn.ConvTranspose2d(in_c, out_c, kernel_size=4, stride=2, padding=1, bias=bias)]
    if upsample == "resize":
        return [nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(in_c, out_c, kernel_size=3, stride=1, padding=1, bias=bias)]
    if upsample == "separable":
        return [nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(in_c, in_c, kernel_size=3, stride=1, padding=1, groups=in_c, bias=False),
                nn.Conv2d(in_c, out_c, kernel_size=1, bias=bias)]
    raise ValueError(f"unknown upsample {upsample!r}: expected one of {', '.join(UPSAMPLES)}")


class LowPass(nn.Module):
    """The fixed [1,3,3,1]^2 / 64 low-pass filter, per channel (a depthwise convolution), stride 1,
    size kept. The kernel is a non-persistent buffer: no parameter, no state-dict key.

    An even filter sits half a pixel off centre: the encoder's (``side="down"``, padding 1 before
    and 2 after) looks half a pixel ahead and the decoder's (``"up"``, 2 before, 1 after) half a
    pixel back, at the same resolution, so every path through the U-Net stays aligned with its
    skip connection. ``pad``: ``reflect`` (mirror the border) or ``zero``."""

    def __init__(self, channels: int, pad: str = "reflect", side: str = "down"):
        super().__init__()
        if pad not in ANTIALIAS_PADS:
            raise ValueError(f"unknown antialias padding {pad!r}: expected one of "
                             f"{', '.join(ANTIALIAS_PADS)}")
        taps = torch.tensor(BINOMIAL)
        kernel = torch.outer(taps, taps) / taps.sum() ** 2
        self.register_buffer("kernel", kernel.expand(channels, 1, 4, 4).clone(), persistent=False)
        self.channels, self.pad = channels, pad
        self.padding = (1, 2, 1, 2) if side == "down" else (2, 1, 2, 1)   # left, right, top, bottom

    def forward(self, x):
        mode = "reflect" if self.pad == "reflect" else "constant"
        x = nn.functional.pad(x, self.padding, mode=mode)
        return nn.functional.conv2d(x, self.kernel.to(x.dtype), groups=self.channels)


class AntiAliasedConv2d(nn.Conv2d):
    """A stride-2 ``nn.Conv2d`` that low-passes its input first (:class:`LowPass`). Same
    parameters and state-dict keys as the plain convolution; export folds a following BatchNorm
    into it as into any Conv2d."""

    def __init__(self, *args, pad: str = "reflect", **kwargs):
        super().__init__(*args, **kwargs)
        self.blur = LowPass(self.in_channels, pad, "down")

    def forward(self, x):
        return super().forward(self.blur(x))


class UNetBlock(nn.Module):
    """One level of the U-Net: down-sample, the inner levels, up-sample, skip by concatenation."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None,
                 outermost=False, innermost=False, norm="batch", use_dropout=False,
                 upsample="transpose", antialias=False, antialias_pad="reflect"):
        super().__init__()
        self.outermost = outermost
        make_norm = norm_layer(norm)
        use_bias = norm != "batch"  # a bias before BatchNorm is redundant
        input_nc = outer_nc if input_nc is None else input_nc
        # --antialias: not at the innermost level, whose input is 2x2 at the smallest size a
        # U-Net takes (one output pixel: nothing to alias; a reflect pad needs 3 pixels)
        antialias = antialias and not innermost
        conv = functools.partial(AntiAliasedConv2d, pad=antialias_pad) if antialias else nn.Conv2d
        downconv = conv(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        # after the up-sampling and its norm (as good as before it: a per-channel affine map
        # commutes with a filter whose taps sum to 1, exactly so with a reflect border), so export
        # still folds BatchNorm into the convolution; outside self.model, so the reference's
        # state-dict keys stay as they are
        self.up_blur = LowPass(outer_nc, antialias_pad, "up") if antialias else nn.Identity()
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)

        if outermost:
            upconv = up_layers(inner_nc * 2, outer_nc, True, upsample)
            layers = [downconv, submodule, uprelu, *upconv, nn.Tanh()]
        elif innermost:
            upconv = up_layers(inner_nc, outer_nc, use_bias, upsample)
            layers = [downrelu, downconv, uprelu, *upconv, make_norm(outer_nc)]
        else:
            upconv = up_layers(inner_nc * 2, outer_nc, use_bias, upsample)
            layers = [downrelu, downconv, make_norm(inner_nc), submodule,
                      uprelu, *upconv, make_norm(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.up_blur(self.model(x))
        return torch.cat([x, self.up_blur(self.model(x))], 1)


class UNetGenerator(nn.Module):
    """U-Net generator with ``depth`` stride-2 levels (7 = unet_128, 8 = unet_256).

    Input sides must be multiples of ``2 ** depth``. Dropout (p=0.5) sits in the ``depth - 5``
    innermost ngf*8 up blocks, as in the reference code.
    """

    def __init__(self, in_channels=3, out_channels=3, depth=8, ngf=64, norm="batch",
                 dropout=True, upsample="transpose", antialias=False, antialias_pad="reflect"):
        super().__init__()
        if depth < 5:
            raise ValueError(f"U-Net depth must be at least 5, got {depth}")
        if upsample not in UPSAMPLES:
            raise ValueError(f"unknown upsample {upsample!r}: expected one of {', '.join(UPSAMPLES)}")
        if antialias_pad not in ANTIALIAS_PADS:
            raise ValueError(f"unknown antialias padding {antialias_pad!r}: expected one of "
                             f"{', '.join(ANTIALIAS_PADS)}")
        self.config = dict(in_channels=in_channels, out_channels=out_channels, depth=depth,
                           ngf=ngf, norm=norm, dropout=dropout, upsample=upsample)
        if antialias:   # only then: a plain model's config stays the reference's, old files too
            self.config.update(antialias=True, antialias_pad=antialias_pad)
        up = dict(norm=norm, upsample=upsample, antialias=bool(antialias),
                  antialias_pad=antialias_pad)
        block = UNetBlock(ngf * 8, ngf * 8, innermost=True, **up)
        for _ in range(depth - 5):
            block = UNetBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=dropout, **up)
        block = UNetBlock(ngf * 4, ngf * 8, submodule=block, **up)
        block = UNetBlock(ngf * 2, ngf * 4, submodule=block, **up)
        block = UNetBlock(ngf, ngf * 2, submodule=block, **up)
        self.model = UNetBlock(out_channels, ngf, input_nc=in_channels, submodule=block,
                               outermost=True, **up)

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2 ** self.config["depth"]

    def forward(self, x):
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator. ``n_layers=3`` is the 70x70 "basic" D (30x30 logits at 256x256);
    ``n_layers=0`` is the 1x1 "pixel" D. Conditional: it sees input and output concatenated, so
    ``in_channels`` is their channel sum (6 for RGB -> RGB)."""

    def __init__(self, in_channels=6, ndf=64, n_layers=3, norm="batch"):
        super().__init__()
        make_norm = norm_layer(norm)
        use_bias = norm != "batch"
        self.config = dict(in_channels=in_channels, ndf=ndf, n_layers=n_layers, norm=norm)
        if n_layers == 0:  # PixelGAN: 1x1 convolutions
            layers = [
                nn.Conv2d(in_channels, ndf, 1, 1, 0), nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf, ndf * 2, 1, 1, 0, bias=use_bias), make_norm(ndf * 2),
                nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf * 2, 1, 1, 1, 0, bias=use_bias),
            ]
            self.net = nn.Sequential(*layers)
            return
        layers = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=use_bias),
                       make_norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=use_bias),
                   make_norm(ndf * mult), nn.LeakyReLU(0.2, True),
                   nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x, features: bool = False):
        """The logits; with ``features=True`` the list of every block's output (after each
        LeakyReLU), the logits last: what pix2pixHD's feature-matching loss compares."""
        net = self.net if self.config["n_layers"] == 0 else self.model
        if not features:
            return net(x)
        out = []
        for layer in net:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                out.append(x)
        return out + [x]


class MultiScaleDiscriminator(nn.Module):
    """pix2pixHD's multi-scale PatchGAN: ``scales`` discriminators of the same architecture, the
    k-th one seeing the pair down-sampled k times by a 3x3 average pool of stride 2 (padding 1,
    padding not counted), as ``MultiscaleDiscriminator`` in NVIDIA/pix2pixHD.

    ``forward`` returns one entry per scale, finest first: the logits, or with ``features=True``
    the per-block feature list of :meth:`PatchDiscriminator.forward`."""

    def __init__(self, in_channels=6, ndf=64, n_layers=3, norm="batch", scales=2):
        super().__init__()
        if scales < 2:
            raise ValueError("a multi-scale discriminator has at least 2 scales (1 is PatchDiscriminator)")
        self.config = dict(in_channels=in_channels, ndf=ndf, n_layers=n_layers, norm=norm,
                           scales=scales)
        self.scales = nn.ModuleList(PatchDiscriminator(in_channels, ndf, n_layers, norm)
                                    for _ in range(scales))
        self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x, features: bool = False):
        out = []
        for i, d in enumerate(self.scales):
            if i:
                x = self.down(x)
            out.append(d(x, features=features))
        return out


def make_discriminator(in_channels=6, ndf=64, n_layers=3, norm="batch", scales=1) -> nn.Module:
    """The reference PatchGAN for ``scales == 1`` (same parameters and keys), else pix2pixHD's."""
    if scales == 1:
        return PatchDiscriminator(in_channels, ndf, n_layers, norm)
    return MultiScaleDiscriminator(in_channels, ndf, n_layers, norm, scales)


def per_scale(out, features: bool = False) -> list:
    """A discriminator's output as a list over scales (one entry for the plain PatchGAN)."""
    if isinstance(out, torch.Tensor) or (features and out and isinstance(out[0], torch.Tensor)):
        return [out]
    return list(out)


# BatchNorm as the generator may hold it: --sync-bn turns BatchNorm2d into SyncBatchNorm, which
# is not a BatchNorm2d subclass.
BATCH_NORMS = (nn.BatchNorm2d, nn.SyncBatchNorm)


def init_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """The paper's initialisation: conv weights N(0, gain), BatchNorm weights N(1, gain), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, BATCH_NORMS):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def inference_copy(generator: UNetGenerator, norm_mode: str = "running",
                   dropout: bool = False) -> UNetGenerator:
    """A copy of ``generator`` set up for inference; the original is left untouched.

    ``norm_mode`` decides what BatchNorm does at inference (REFERENCE.md, "the trap"):

    * ``running``: normalise with the running statistics gathered in training (``model.eval()``).
    * ``per-image``: normalise each image with its own statistics, as the reference ``test.py``
      does (BatchNorm in training mode at batch size 1). Implemented exactly as InstanceNorm with
      BatchNorm's affine parameters, which is also what the ONNX export writes, so evaluation,
      export and runtime compute the same function at any batch size.

    ``dropout=False`` removes dropout (the default for video: dropout at inference flickers).
    Models trained with InstanceNorm or no norm are per-image by construction; ``norm_mode`` is
    then irrelevant.
    """
    if norm_mode not in NORM_MODES:
        raise ValueError(f"unknown norm mode {norm_mode!r}: expected one of {', '.join(NORM_MODES)}")
    model = copy.deepcopy(generator).eval()

    def convert(parent: nn.Module):
        for name, child in parent.named_children():
            if isinstance(child, nn.SyncBatchNorm) and norm_mode != "per-image":
                # running statistics: the same layer as a plain BatchNorm2d (SyncBatchNorm needs a
                # process group to train and is not what export or the CPU should see)
                plain = nn.BatchNorm2d(child.num_features, eps=child.eps, momentum=child.momentum,
                                       affine=child.affine,
                                       track_running_stats=child.track_running_stats)
                plain.load_state_dict(child.state_dict())
                setattr(parent, name, plain.to(child.weight.device).eval())
            elif isinstance(child, BATCH_NORMS) and norm_mode == "per-image":
                inorm = nn.InstanceNorm2d(child.num_features, eps=child.eps, affine=True,
                                          track_running_stats=False)
                with torch.no_grad():
                    inorm.weight.copy_(child.weight)
                    inorm.bias.copy_(child.bias)
                setattr(parent, name, inorm.to(child.weight.device))
            elif isinstance(child, nn.Dropout):
                if dropout:
                    child.train()  # stays stochastic
                else:
                    setattr(parent, name, nn.Identity())
            else:
                convert(child)

    convert(model)
    for p in model.parameters():
        p.requires_grad_(False)
    return model
