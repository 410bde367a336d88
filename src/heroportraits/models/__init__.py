"""Generators and discriminators, built from a ModelConfig and the dataset's vocabulary.

Two families: GANs (`dcgan`, `resnet`, and `style`: StyleGAN2's generator against the DCGAN D) and the flow
family (`unet`, models/flow.py: a velocity network wrapped with its sampler as G, and no D).

`resolution` is the size the networks work at: 64, or the native grid (64 / k) when
`native_grid` is on, in which case `upscale_to_output` brings samples back to 64x64.
Every architecture takes (z, labels) / (x, labels) with labels (N, A) indices into the
conditioning vocabulary, and honours `g_cond`, `d_cond`, the spectral-norm switches, the
palette output (palette_output.py) and the FastGAN switches (fastgan.py).
Labels may also be (N, A, K) float weights over each attribute's rows (conditioning.soft_labels):
mixed conditions, which latent walks between attribute values use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from heroportraits.data.attributes import Vocabulary
from heroportraits.models.config import ModelConfig, check_model_choices
from heroportraits.models.dcgan import DCGANDiscriminator, DCGANGenerator
from heroportraits.models.flow import FlowGenerator
from heroportraits.models.layers import apply_spectral_norm
from heroportraits.models.resnet import ResNetDiscriminator, ResNetGenerator
from heroportraits.models.stylegan import StyleGenerator

ARCHITECTURES = {  # keyed by config.CHOICES["model.arch"]
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "resnet": (ResNetGenerator, ResNetDiscriminator),
    "style": (StyleGenerator, DCGANDiscriminator),  # StyleGAN2's G against the DCGAN D
    "unet": (FlowGenerator, None),  # the flow family: no discriminator
}


def conditioning_vocab(cfg: ModelConfig, vocab: Vocabulary) -> Vocabulary:
    """The attributes the networks see: palette removed when palette conditioning is OFF."""
    return vocab if cfg.use_palette or "palette" not in vocab.attributes else vocab.without("palette")


def network_resolution(cfg: ModelConfig, output_resolution: int, native_scale: int) -> int:
    return output_resolution // native_scale if cfg.native_grid and native_scale > 1 else output_resolution


def build_generator(cfg: ModelConfig, vocab: Vocabulary, resolution: int, palette=None):
    """G alone, for `vocab`'s attributes (palette dropped when use_palette is off): what sampling needs.
    `palette`: the dataset's colours (K', 3) uint8, needed by `model.palette_source=dataset` only."""
    check_model_choices(cfg)
    uses_palette = cfg.output == "palette" and cfg.palette_source == "dataset"
    G = ARCHITECTURES[cfg.arch][0](cfg, conditioning_vocab(cfg, vocab), resolution, palette if uses_palette else None)
    if cfg.g_spectral_norm:
        apply_spectral_norm(G)
    return G


def build_models(cfg: ModelConfig, vocab: Vocabulary, resolution: int, palette=None):
    """(G, D) for `vocab`'s attributes (palette dropped when use_palette is off); `palette` as for G.
    D is None for the flow family."""
    G = build_generator(cfg, vocab, resolution, palette)
    make_d = ARCHITECTURES[cfg.arch][1]
    if make_d is None:
        return G, None
    D = make_d(cfg, conditioning_vocab(cfg, vocab), resolution)
    if cfg.d_spectral_norm:
        apply_spectral_norm(D, embeddings=True)
    return G, D


def to_native(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Real 64x64 images -> the network grid, by taking one pixel per native block."""
    k = x.shape[-1] // resolution
    return x if k == 1 else x[..., ::k, ::k]


def upscale_to_output(x: torch.Tensor, output_resolution: int) -> torch.Tensor:
    """Generated native-grid images -> output size by nearest neighbour (crisp by construction)."""
    if x.shape[-1] == output_resolution:
        return x
    return F.interpolate(x, size=output_resolution, mode="nearest")


def to_pixels(x: torch.Tensor, output_resolution: int) -> torch.Tensor:
    """G's output (N, 3, r, r) in [-1, 1] -> portraits (N, R, R, 3) uint8 at the output size, upscaled by
    nearest neighbour: the one conversion that sampling, the grids written while training and exported files
    share (traceable, so an exported graph holds it)."""
    x = upscale_to_output(x, output_resolution).float()
    return x.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
