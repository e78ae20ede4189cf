"""Which U-Net a reference-code generator state dict (``latest_net_G.pth``) holds, read from its
tensor names and shapes alone (torch-free; ``pix2pix models download`` checks a file with it
before installing it; ``models import`` and ``load_generator`` read the architecture with it).

The reference U-Net (models/networks.py: UnetGenerator, UnetSkipConnectionBlock) nests one block
per level and keeps each block's layers in a Sequential called ``model``, as
:class:`train.models.UNetGenerator` does (same names, so the same keys)::

    outermost  model.model.{0 down conv, 1 next level, 2 ReLU, 3 up conv, 4 Tanh}
    middle     ...{0 LeakyReLU, 1 down conv, 2 norm, 3 next level, 4 ReLU, 5 up conv, 6 norm, 7 Dropout}
    innermost  ...{0 LeakyReLU, 1 down conv, 2 ReLU, 3 up conv, 4 norm}

so ngf and the input channels are the first convolution's shape, the depth is how deep the
keys nest, the norm is whether the norm slots hold BatchNorm parameters (InstanceNorm has none;
the reference's old InstanceNorm kept unused running statistics; convolutions have biases unless
BatchNorm follows), the decoder and output channels are the outermost up-sampling's shapes.
Dropout has no parameters: a state dict cannot tell it (the reference trains pix2pix with it
unless ``--no_dropout``).
"""

from __future__ import annotations

import math

from pix2pix_edge.runtime.errors import ModelMismatch
from pix2pix_edge.runtime.model_info import short_repr
from pix2pix_edge.train.options import ANTIALIAS_PADS, NORMS, UPSAMPLES

ARCHITECTURE = ("depth", "ngf", "norm", "upsample", "in_channels", "out_channels")
# The U-Nets pix2pix-edge builds: every architecture read from a file (a generator file, a
# training checkpoint, a run record) is checked against these before anything is built.
DEPTHS = range(5, 12)                       # TrainOptions.depth's bounds
CHANNELS = range(1, 65)                     # image channels in and out
NGFS = range(1, 4097)                       # generator widths
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def config_problem(config) -> str | None:
    """Why ``config`` (UNetGenerator's keywords, read from a file) is not a U-Net pix2pix-edge
    builds, or None. Numbers and names only, so it runs before anything is built; keys not
    checked here are UNetGenerator's to refuse."""
    if not isinstance(config, dict):
        return f"its config is a {type(config).__name__}, not a dictionary"
    for key, allowed in (("in_channels", CHANNELS), ("out_channels", CHANNELS),
                         ("depth", DEPTHS), ("ngf", NGFS)):
        value = config.get(key, allowed.start)
        if not (isinstance(value, int) and not isinstance(value, bool) and value in allowed):
            return (f"{key} {short_repr(value)} is not an integer in "
                    f"{allowed.start}..{allowed.stop - 1}")
    for key, allowed in (("norm", NORMS), ("upsample", UPSAMPLES)):
        value = config.get(key, allowed[0])
        if not (isinstance(value, str) and value in allowed):
            return f"{key} {short_repr(value)} is not one of {', '.join(allowed)}"
    if not isinstance(config.get("dropout", False), bool):
        return f"dropout {short_repr(config['dropout'])} is not true or false"
    if not isinstance(config.get("antialias", False), bool):
        return f"antialias {short_repr(config['antialias'])} is not true or false"
    if config.get("antialias_pad", ANTIALIAS_PADS[0]) not in ANTIALIAS_PADS:
        return (f"antialias_pad {short_repr(config['antialias_pad'])} is not one of "
                f"{', '.join(ANTIALIAS_PADS)}")
    return None


def prefix(level: int) -> str:
    """The key prefix of U-Net level ``level`` (1 = outermost)."""
    return "model.model." + ("1.model." if level > 1 else "") + "3.model." * max(0, level - 2)


def _up(index: int, c_in: int, c_out: int, bias: bool, upsample: str) -> dict:
    """Shapes of one decoder level's up-sampling, its first layer at ``index``."""
    if upsample == "transpose":
        layers = {f"{index}.weight": (c_in, c_out, 4, 4)}
        last = index
    elif upsample == "resize":          # index: nn.Upsample (no parameters)
        layers = {f"{index + 1}.weight": (c_out, c_in, 3, 3)}
        last = index + 1
    else:                               # separable: Upsample, depthwise 3x3, pointwise 1x1
        layers = {f"{index + 1}.weight": (c_in, 1, 3, 3), f"{index + 2}.weight": (c_out, c_in, 1, 1)}
        last = index + 2
    if bias:
        layers[f"{last}.bias"] = (c_out,)
    return layers, last + 1


def _norm(index: int, channels: int, norm: str) -> dict:
    if norm != "batch":
        return {}
    return {f"{index}.weight": (channels,), f"{index}.bias": (channels,),
            f"{index}.running_mean": (channels,), f"{index}.running_var": (channels,),
            f"{index}.num_batches_tracked": ()}


def unet_shapes(depth: int = 8, ngf: int = 64, norm: str = "batch", upsample: str = "transpose",
                in_channels: int = 3, out_channels: int = 3, **_) -> dict:
    """``{key: shape}`` of :class:`train.models.UNetGenerator`'s state dict (tested equal)."""
    bias = norm != "batch"
    widths = [(out_channels, ngf), (ngf, 2 * ngf), (2 * ngf, 4 * ngf), (4 * ngf, 8 * ngf)]
    widths += [(8 * ngf, 8 * ngf)] * (depth - 4)
    shapes = {}
    for level, (outer, inner) in enumerate(widths, start=1):
        p = prefix(level)
        if level == 1:
            layers = {"0.weight": (inner, in_channels, 4, 4), **({"0.bias": (inner,)} if bias else {})}
            layers.update(_up(3, 2 * inner, outer, True, upsample)[0])
        else:
            layers = {"1.weight": (inner, outer, 4, 4), **({"1.bias": (inner,)} if bias else {})}
            if level == depth:
                up, after = _up(3, inner, outer, bias, upsample)
            else:
                layers.update(_norm(2, inner, norm))
                up, after = _up(5, 2 * inner, outer, bias, upsample)
            layers.update(up)
            layers.update(_norm(after, outer, norm))
        shapes.update({p + k: v for k, v in layers.items()})
    return shapes


def parameter_count(config: dict) -> int:
    """Trainable parameters of the U-Net ``config`` (buffers not counted)."""
    return sum(math.prod(s) for k, s in unet_shapes(**config).items()
               if not k.endswith(BUFFERS))


def infer_unet(shapes: dict) -> tuple[dict, list[str], dict]:
    """``(config, notes, rename)`` of the U-Net whose state dict has these ``{key: shape}``.

    ``config``: in/out channels, depth, ngf, norm, upsample (no dropout: a state dict cannot tell);
    ``notes``: what was tolerated, for people; ``rename``: ``{key in the file: key to load it
    as, or None to drop it}`` for the keys that differ from UNetGenerator's. ModelMismatch (one
    line) for anything that is not such a U-Net."""
    shapes = {k: tuple(v) for k, v in shapes.items()}
    notes, original = [], {k: k for k in shapes}      # our key -> the file's key
    if shapes and all(k.startswith("module.") for k in shapes):
        original = {k[len("module."):]: k for k in shapes}
        shapes = {k[len("module."):]: v for k, v in shapes.items()}
        notes.append("keys had DataParallel's 'module.' prefix: removed")
    first = shapes.get("model.model.0.weight")
    if first is None:
        stem = shapes.get("model.1.weight") or ()
        if len(stem) == 4 and stem[2:] == (7, 7):
            raise ModelMismatch("a ResNet generator (the reference's resnet_9blocks / "
                                "resnet_6blocks, CycleGAN's default), not a U-Net: pix2pix-edge "
                                "builds U-Net generators only")
        raise ModelMismatch("not a pix2pix U-Net generator: no 'model.model.0.weight' (first keys: "
                            f"{', '.join(list(shapes)[:3]) or 'none'})")
    if len(first) != 4 or first[2:] != (4, 4):
        raise ModelMismatch(f"not a pix2pix U-Net generator: its first convolution is {first}, "
                            "not 4x4")
    ngf, in_channels = first[0], first[1]
    depth = 1
    while depth < DEPTHS.stop and any(k.startswith(prefix(depth + 1)) for k in shapes):
        depth += 1
    if depth not in DEPTHS:
        raise ModelMismatch(f"a U-Net of depth {depth if depth < DEPTHS.stop else 'over 11'}: "
                            f"pix2pix-edge builds depths {DEPTHS.start}..{DEPTHS.stop - 1}")
    norm, drop = _infer_norm(shapes, notes)
    shapes = {k: v for k, v in shapes.items() if k not in drop}
    upsample, out_channels = _infer_decoder(shapes)
    config = dict(in_channels=in_channels, out_channels=out_channels, depth=depth, ngf=ngf,
                  norm=norm, upsample=upsample)
    _compare(shapes, unet_shapes(**config), config, notes)
    rename = {was: (None if k in drop else k) for k, was in original.items()
              if was != k or k in drop}
    return config, notes, rename


def _infer_norm(shapes: dict, notes: list) -> tuple[str, set]:
    """The norm layers, and the keys to drop."""
    second = prefix(2)
    if second + "2.weight" in shapes and second + "2.running_mean" in shapes:
        return "batch", set()
    if second + "2.running_mean" in shapes:
        # the reference's InstanceNorm of 2018 (track_running_stats=True) kept statistics it
        # never uses (it normalises each image): dropped, as the reference's loader does
        drop = {k for k in shapes if k.endswith(BUFFERS)}
        notes.append(f"InstanceNorm with running statistics (the reference's 2018 InstanceNorm): "
                     f"{len(drop)} unused buffers dropped")
        return "instance", drop
    if second + "1.bias" in shapes:
        return "instance", set()
    raise ModelMismatch("no normalisation layers and no convolution biases: a reference --norm "
                        "none generator, which pix2pix-edge does not build (its --norm none keeps "
                        "the biases)")


def _infer_decoder(shapes: dict) -> tuple[str, int]:
    p = prefix(1)
    if p + "3.weight" in shapes:                 # ConvTranspose weight: (in, out, 4, 4)
        return "transpose", shapes[p + "3.weight"][1]
    if p + "5.weight" in shapes:                 # separable: pointwise (out, in, 1, 1)
        return "separable", shapes[p + "5.weight"][0]
    if p + "4.weight" in shapes:                 # resize: conv (out, in, 3, 3)
        return "resize", shapes[p + "4.weight"][0]
    raise ModelMismatch("not a pix2pix U-Net generator: no outermost up-sampling layer "
                        f"('{p}3.weight')")


def _compare(shapes: dict, expected: dict, config: dict, notes: list) -> None:
    counters = [k for k in expected if k.endswith("num_batches_tracked") and k not in shapes]
    missing = [k for k in expected if k not in shapes and k not in counters]
    extra = [k for k in shapes if k not in expected]
    wrong = [k for k in expected if k in shapes and shapes[k] != expected[k]]
    if missing or extra or wrong:
        what = (f"{wrong[0]} is {shapes[wrong[0]]}, expected {expected[wrong[0]]}" if wrong else
                f"missing {missing[0]}" if missing else f"unexpected {extra[0]}")
        n = len(missing) + len(extra) + len(wrong)
        raise ModelMismatch(f"does not fit a U-Net with {describe(config)}: {what} ({n} "
                            f"difference{'s' * (n != 1)})")
    if counters:
        notes.append("no BatchNorm num_batches_tracked counters (PyTorch < 0.4.1 files; unused "
                     "at inference)")


def describe(config: dict) -> str:
    """``depth 8 (unet_256), ngf 64, batch norm, transpose decoder, 3 -> 3 channels``."""
    name = {7: " (unet_128)", 8: " (unet_256)"}.get(config["depth"], "")
    return (f"depth {config['depth']}{name}, ngf {config['ngf']}, {config['norm']} norm, "
            f"{config['upsample']} decoder, {config['in_channels']} -> "
            f"{config['out_channels']} channels")


def misfit(given: dict, inferred: dict) -> str | None:
    """One line naming the given options (``--ngf 32``) that contradict the weights and the
    values that would fit; None when every given option fits."""
    bad = [k for k in ARCHITECTURE if given.get(k) is not None and given[k] != inferred[k]]
    if not bad:
        return None
    flag = lambda k, v: f"--{k.replace('_', '-')} {v}"   # noqa: E731
    said = ", ".join(flag(k, given[k]) for k in bad)
    would = " ".join(flag(k, inferred[k]) for k in bad)
    verb = "does" if len(bad) == 1 else "do"
    return f"{said} {verb} not fit these weights; {would} would ({describe(inferred)})"

