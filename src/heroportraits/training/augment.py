"""What D sees instead of raw images: DiffAugment and instance noise.

DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
Training"): the same family of random, differentiable transforms is applied to real
and fake images, in D's step *and* G's step, so D cannot memorise a small training set
and G still gets gradients through the transform. A policy string picks the ops:

    color        brightness +-0.5, saturation x[0, 2], contrast x[0.5, 1.5]
    translation  shift by up to 1/8 of the image, zero fill
    cutout       zero a square of half the image size at a random place

Pixel art: with `pixel=k`, translation and cutout move whole native pixels (multiples
of k), so an image made of k x k blocks stays made of k x k blocks.

Each op is applied to each image with probability `p` (1 for plain DiffAugment; ADA,
Karras et al. 2020, tunes p during training). `p` may be a tensor on the device, so
tuning it needs no host sync. Randomness comes from an explicit torch.Generator for
exact resume; `sample_params` + `apply_params` apply one random draw to several batches.

Instance noise (Sonderby et al. 2016; Arjovsky & Bottou 2017): Gaussian noise added to
D's inputs, its std annealed linearly to zero, so early on the real and fake
distributions overlap and D's gradients stay informative.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from heroportraits.errors import HeroError

OPS = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125  # max shift, as a fraction of the image (DiffAugment's default)
CUTOUT_RATIO = 0.5  # cutout side, as a fraction of the image


class AugmentError(HeroError):
    """A DiffAugment policy with an unknown op."""


def parse_policy(policy: str) -> list[str]:
    """ "color,translation,cutout" -> ["color", "translation", "cutout"]; "" -> []."""
    ops = [op.strip() for op in policy.split(",") if op.strip()]
    bad = [op for op in ops if op not in OPS]
    if bad:
        raise AugmentError(f"unknown DiffAugment op(s) {bad} in policy {policy!r}; use a comma list of {list(OPS)}")
    return ops


@dataclass
class AugmentParams:
    """One random draw of every op in a policy, for a batch of n images (None = op not in policy)."""

    pixel: int  # native pixel size, in image pixels
    pad: int  # largest possible shift, in image pixels
    brightness: torch.Tensor | None = None  # (N,) added
    saturation: torch.Tensor | None = None  # (N,) factor around each pixel's grey value
    contrast: torch.Tensor | None = None  # (N,) factor around the image mean
    shift: torch.Tensor | None = None  # (N, 2) int64 (dy, dx) in image pixels
    cut_start: torch.Tensor | None = None  # (N, 2) int64 top-left corner, in native pixels
    cut_size: torch.Tensor | None = None  # (N,) int64 side in native pixels (0 = no cutout)


def sample_params(
    policy: str,
    n: int,
    size: int,
    *,
    p: float | torch.Tensor = 1.0,
    pixel: int = 1,
    generator: torch.Generator | None = None,
    device=None,
) -> AugmentParams:
    """Draw the random transform for n images of size x size (pixel = native pixel size)."""
    ops = parse_policy(policy)
    if size % pixel:
        raise AugmentError(f"image size {size} is not a multiple of the native pixel size {pixel}")
    device = torch.device(device) if device is not None else (generator.device if generator is not None else None)
    cells = size // pixel  # native pixels per side
    max_shift = int(cells * TRANSLATION_RATIO + 0.5)
    prm = AugmentParams(pixel=pixel, pad=max_shift * pixel)

    def rand(*shape):
        return torch.rand(*shape, generator=generator, device=device)

    def gate():  # (N,) True where the op applies
        return rand(n) < p

    if "color" in ops:
        prm.brightness = (rand(n) - 0.5) * gate()
        prm.saturation = torch.where(gate(), rand(n) * 2.0, 1.0)
        prm.contrast = torch.where(gate(), rand(n) + 0.5, 1.0)
    if "translation" in ops:
        shift = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator, device=device)
        prm.shift = shift * gate()[:, None] * pixel
    if "cutout" in ops:
        side = int(cells * CUTOUT_RATIO + 0.5)
        centre = torch.randint(0, cells + (1 - side % 2), (n, 2), generator=generator, device=device)
        prm.cut_start = centre - side // 2
        prm.cut_size = gate().long() * side
    return prm


def apply_params(x: torch.Tensor, prm: AugmentParams) -> torch.Tensor:
    """Apply a drawn transform to x: (N, C, H, W) in [-1, 1]; differentiable in x. The colour ops change the
    RGB channels only: an RGBA model's mask (channel 4) is no colour; it moves and is cut out with them."""
    if prm.brightness is not None:
        rgb, mask = x[:, :3], x[:, 3:]
        rgb = rgb + prm.brightness.to(x.dtype)[:, None, None, None]
        grey = rgb.mean(dim=1, keepdim=True)
        rgb = (rgb - grey) * prm.saturation.to(x.dtype)[:, None, None, None] + grey
        mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
        rgb = (rgb - mean) * prm.contrast.to(x.dtype)[:, None, None, None] + mean
        x = torch.cat([rgb, mask], dim=1) if mask.shape[1] else rgb
    if prm.shift is not None:
        x = _translate(x, prm.shift, prm.pad)
    if prm.cut_size is not None:
        x = _cutout(x, prm.cut_start, prm.cut_size, prm.pixel)
    return x


def _translate(x: torch.Tensor, shift: torch.Tensor, pad: int) -> torch.Tensor:
    # out[n, :, y, x] = in[n, :, y - dy, x - dx], zero outside. shift: (N, 2)
    if pad == 0:
        return x
    n, _, h, w = x.shape
    xp = F.pad(x, [pad, pad, pad, pad])  # (N, C, H+2p, W+2p)
    iy = torch.arange(h, device=x.device)[None, :] - shift[:, :1] + pad  # (N, H)
    ix = torch.arange(w, device=x.device)[None, :] - shift[:, 1:] + pad  # (N, W)
    rows = torch.arange(n, device=x.device)[:, None, None]
    out = xp[rows, :, iy[:, :, None], ix[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, start: torch.Tensor, side: torch.Tensor, pixel: int) -> torch.Tensor:
    # Zero the native-pixel square [start, start + side) of each image.
    h, w = x.shape[-2:]
    cy = torch.arange(h, device=x.device)[None, :] // pixel  # (1, H) native row of each pixel
    cx = torch.arange(w, device=x.device)[None, :] // pixel
    in_y = (cy >= start[:, :1]) & (cy < start[:, :1] + side[:, None])  # (N, H)
    in_x = (cx >= start[:, 1:]) & (cx < start[:, 1:] + side[:, None])  # (N, W)
    keep = ~(in_y[:, :, None] & in_x[:, None, :])  # (N, H, W)
    return x * keep[:, None].to(x.dtype)


def diff_augment(
    x: torch.Tensor,
    policy: str,
    *,
    p: float | torch.Tensor = 1.0,
    pixel: int = 1,
    generator: torch.Generator | None = None,
    params: AugmentParams | None = None,
) -> torch.Tensor:
    """DiffAugment x with a fresh random draw (or the given `params`)."""
    if not policy and params is None:
        return x
    if params is None:
        params = sample_params(policy, x.shape[0], x.shape[-1], p=p, pixel=pixel, generator=generator, device=x.device)
    return apply_params(x, params)


def instance_noise_std(std: float, anneal_steps: int, step: int, total_steps: int) -> float:
    """Instance-noise std at `step`: linear from `std` to 0 over anneal_steps (0 = the whole run)."""
    if std <= 0:
        return 0.0
    span = anneal_steps if anneal_steps > 0 else total_steps
    return std * max(0.0, 1.0 - step / max(span, 1))
