"""Transform-consistency training (``--lambda-stability``): steadier video from still pairs.

Eilertsen, Mantiuk and Unger, "Single-frame Regularization for Temporally Stable CNNs" (CVPR
2019): a camera that moves a little should move the output the same little, so for a random
small transform T of each input x (a sub-pixel translation, a slight rotation and zoom, plus a
little noise) the loss penalises

    | G(T(x) + noise) - T(G(x)) |     (L1, mean over the pixels T keeps inside the frame)

``G(x)`` is the output the GAN and L1 terms already computed: one extra generator pass per
iteration. Both passes carry gradients (shared weights), as in the paper. The motion is
synthesised, so still image pairs are all it needs, and inference is unchanged.

T is drawn per sample from torch's global RNG (saved in every checkpoint), so ``--resume`` stays
exact. Magnitudes (options ``--stability-shift/-rotate/-zoom/-noise``): translation uniform in
+-shift pixels per axis, rotation uniform in +-rotate degrees, zoom uniform in 1 +- zoom, noise
standard deviation uniform in [0, noise] (values in [-1, 1]).
"""

from __future__ import annotations

import math

import torch
from torch import nn

LOSS = "G_STAB"   # its log.csv column


def random_affine(n: int, height: int, width: int, *, shift: float, rotate: float, zoom: float,
                  ) -> torch.Tensor:
    """``n`` random transforms as ``affine_grid`` matrices (n, 2, 3): for each output pixel, where
    in the input it samples, in normalised coordinates ([-1, 1] across each side). Built in
    pixels (rotation about the centre, then zoom and shift) and converted, so a rotation is a
    rotation on non-square frames too."""
    u = torch.rand(n, 4) * 2 - 1                          # four numbers in [-1, 1] per sample
    angle = u[:, 0] * math.radians(rotate)
    scale = 1.0 + u[:, 1] * zoom
    tx, ty = u[:, 2] * shift, u[:, 3] * shift
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    sx, sy = 2.0 / width, 2.0 / height                    # pixels -> normalised units
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * sx / sy
    theta[:, 1, 0], theta[:, 1, 1] = sin * sy / sx, cos
    theta[:, 0, 2], theta[:, 1, 2] = tx * sx, ty * sy
    return theta


def warp(images: torch.Tensor, grid: torch.Tensor, padding: str = "reflection") -> torch.Tensor:
    """``images`` resampled on ``grid`` (bilinear; FP32, whatever the autocast)."""
    return nn.functional.grid_sample(images.float(), grid, mode="bilinear",
                                     padding_mode=padding, align_corners=False)


def valid_region(grid: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(n, 1, H, W) mask of the output pixels whose sample point lies inside the input frame
    (between the outermost pixel centres): the region where T(G(x)) is defined."""
    limit = torch.tensor([1 - 1 / width, 1 - 1 / height], device=grid.device)
    return (grid.abs() <= limit).all(-1, keepdim=False).unsqueeze(1).float()


def consistency_loss(generator, x: torch.Tensor, output: torch.Tensor, o, autocast) -> torch.Tensor:
    """Mean |G(T(x) + noise) - T(G(x))| over the valid region, for one T per sample (unweighted).

    ``generator``: called on the transformed batch (the training wrapper of G); ``output``:
    G(x), already computed; ``o``: the options with the stability magnitudes."""
    n, _, h, w = x.shape
    theta = random_affine(n, h, w, shift=o.stability_shift, rotate=o.stability_rotate,
                          zoom=o.stability_zoom).to(x.device)
    sigma = (torch.rand(n, 1, 1, 1) * o.stability_noise).to(x.device)
    grid = nn.functional.affine_grid(theta, [n, 1, h, w], align_corners=False)
    moved = warp(x, grid) + sigma * torch.randn(x.shape, device=x.device)
    moved = moved.to(x.dtype).contiguous(memory_format=_format(x))
    with autocast:
        out_moved = generator(moved)
    out_moved = out_moved[0] if isinstance(out_moved, tuple) else out_moved   # a distill student
    target = warp(output, grid)
    mask = valid_region(grid, h, w)
    diff = (out_moved.float() - target).abs() * mask
    return diff.sum() / (mask.sum() * output.shape[1]).clamp(min=1.0)


def _format(t: torch.Tensor):
    return torch.channels_last if t.dim() == 4 and not t.is_contiguous() and \
        t.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
