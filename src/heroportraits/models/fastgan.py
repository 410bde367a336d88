"""The two FastGAN parts (Liu et al., ICLR 2021) for detail from little data, sized for our grids.

Skip-layer excitation (SLE, `model.g_sle`): a low-resolution feature map of G, pooled to 4x4
and squeezed to one gate in (0, 1) per channel, multiplies a map four times larger. The coarse
layout (where the helmet is, which class) thus switches the fine layers' channels on and off
directly, and gradients reach the coarse layers by a short path. FastGAN gates 128-512 px maps
from 8-32 px ones (x16); our grids are 32 px, so every map of >= 16 px is gated from the map
at 1/4 its size (16 <- 4, 32 <- 8 in the residual G).

Self-supervised discriminator (`model.d_recon`): on real images, two small decoders rebuild
  * the whole image, downscaled x2 (area average), from D's 4x4 features, and
  * one quarter of it at full resolution, from the matching quarter of D's 8x8 features
    (the quarter drawn at random per batch),
scored by L1 and added to D's loss on reals. D's features must then hold the eyes, mouths
and helmet edges, not only what separates today's fakes. FastGAN's decoders rebuild at
128 px from 8 and 16 px maps and use a perceptual loss with downloaded weights; ours rebuild
half the network grid (16 px from 4 px maps at 32) with plain L1, offline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from heroportraits.errors import HeroError

SLE_MIN = 16  # smallest feature map that gets a gate
SLE_RATIO = 4  # a map of size r is gated from the map of size r / SLE_RATIO
RECON_WHOLE, RECON_PART = 4, 8  # D feature sizes the whole image and a quarter are rebuilt from


class FastGANError(HeroError):
    """A FastGAN switch on a network too small to use it."""


class SkipExcitation(nn.Module):
    """high (N, Ch, H, W) x gates(low (N, Cl, h, w)) -> (N, Ch, H, W); gates (N, Ch, 1, 1) in (0, 1)."""

    def __init__(self, low_channels: int, high_channels: int):
        super().__init__()
        self.gates = nn.Sequential(
            nn.AdaptiveAvgPool2d(4),  # (N, Cl, 4, 4): the layout, whatever the low map's size
            nn.Conv2d(low_channels, high_channels, 4, 1, 0, bias=False),  # (N, Ch, 1, 1)
            nn.SiLU(),
            nn.Conv2d(high_channels, high_channels, 1, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        return high * self.gates(low)


class SkipExcitations(nn.Module):
    """SLE at every feature map of G with size >= SLE_MIN whose 1/SLE_RATIO-size map exists.

    `widths`: G's channels at each feature size, e.g. {4: 256, 8: 128, 16: 64}. In G's forward,
    `feats` collects the maps by size; `apply(h, feats)` gates h if its size has a gate and
    records the result.
    """

    def __init__(self, widths: dict[int, int]):
        super().__init__()
        pairs = {r: r // SLE_RATIO for r in widths if r >= SLE_MIN and r // SLE_RATIO in widths}
        if not pairs:
            raise FastGANError(
                f"model.g_sle needs G feature maps of >= {SLE_MIN} px (this G has {sorted(widths)}); "
                f"train at a larger network grid or set model.g_sle=false"
            )
        self.gates = nn.ModuleDict({str(r): SkipExcitation(widths[low], widths[r]) for r, low in pairs.items()})
        self.sizes = sorted(pairs)

    def apply(self, h: torch.Tensor, feats: dict[int, torch.Tensor]) -> torch.Tensor:
        size = int(h.shape[-1])  # a plain int also under tracing (export), where shapes are tensors
        if size in self.sizes:
            h = self.gates[str(size)](h, feats[size // SLE_RATIO])
        feats[size] = h
        return h


def maybe_sle(enabled: bool, widths: dict[int, int]) -> SkipExcitations | None:
    return SkipExcitations(widths) if enabled else None


class UpGLU(nn.Sequential):
    """x2 nearest, 3x3 conv, batch-norm, GLU (FastGAN's decoder block): (N, cin, H, W) -> (N, cout, 2H, 2W)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(cin, 2 * cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(2 * cout),
            nn.GLU(dim=1),
        )


def decoder(cin: int, width: int, ups: int, channels: int = 3) -> nn.Sequential:
    """D features (N, cin, s, s) -> an image (N, channels, s * 2^ups, s * 2^ups) in [-1, 1] (RGB, or RGBA)."""
    layers: list[nn.Module] = []
    for i in range(ups):
        layers.append(UpGLU(cin if i == 0 else width, width))
    layers += [nn.Conv2d(width if ups else cin, channels, 3, 1, 1), nn.Tanh()]
    return nn.Sequential(*layers)


def quarter(x: torch.Tensor, part: int) -> torch.Tensor:
    """Quarter `part` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of (N, C, H, W) maps."""
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    r, c = divmod(part, 2)
    return x[..., r * h : (r + 1) * h, c * w : (c + 1) * w]


class Reconstruction(nn.Module):
    """FastGAN's self-supervision for a D working at `resolution`, whose feature maps at 4x4 and
    8x8 have `widths[4]` and `widths[8]` channels. loss(x, feats, part) -> 0-dim L1."""

    def __init__(self, widths: dict[int, int], resolution: int, width: int, channels: int = 3):
        super().__init__()
        if resolution < 2 * RECON_PART or RECON_WHOLE not in widths or RECON_PART not in widths:
            raise FastGANError(
                f"model.d_recon needs D feature maps of {RECON_WHOLE} and {RECON_PART} px, so a network grid of "
                f">= {2 * RECON_PART} px (this one is {resolution}); set model.d_recon=0"
            )
        target = resolution // 2  # both decoders draw half the network grid
        self.whole = decoder(widths[RECON_WHOLE], width, (target // RECON_WHOLE).bit_length() - 1, channels)
        self.part = decoder(widths[RECON_PART], width, (target // (RECON_PART // 2)).bit_length() - 1, channels)

    def loss(self, x: torch.Tensor, feats: dict[int, torch.Tensor], part: int) -> torch.Tensor:
        """x: the image D saw (N, 3, R, R); feats: D's maps by size; part: which quarter (0-3)."""
        whole = self.whole(feats[RECON_WHOLE])  # (N, 3, R/2, R/2)
        detail = self.part(quarter(feats[RECON_PART], part))  # (N, 3, R/2, R/2)
        target_whole = F.avg_pool2d(x, 2)  # the whole image at half size (area average: thin lines stay)
        target_part = quarter(x, part)  # one quarter at full resolution
        return (whole.float() - target_whole.float()).abs().mean() + (detail.float() - target_part.float()).abs().mean()


def maybe_reconstruction(
    weight: float, widths: dict[int, int], resolution: int, width: int, channels: int = 3
) -> Reconstruction | None:
    return Reconstruction(widths, resolution, width, channels) if weight > 0 else None
