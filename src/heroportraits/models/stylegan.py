"""A style-based generator (StyleGAN2's, Karras et al. 2020) on the native grid: `model.arch=style`.

The noise and the attribute embeddings go through a mapping network to a style vector w; the synthesis network
starts from a learned 4x4 constant and doubles it to the network grid in blocks of two 3x3 convolutions whose
weights each portrait's w modulates (per input channel) and demodulates (per output channel, so every feature map
keeps unit scale), with per-pixel noise inputs at every layer and a skip output: each block adds its own RGB to the
upsampled RGB of the blocks before. It trains against the GAN's discriminators and losses like any other G (the
DCGAN D of `model.d_cond`, spectral norm or R1, D's classifier), draws through the same RGB output (so per-portrait
quantisation and D-guided refinement work), and can mix two styles at sampling (`mix_styles`).

Noise inputs: random in train mode (from the global RNG, which checkpoints keep, so resume stays exact); in eval
mode each layer's own fixed noise map (a buffer, saved with G), so a noise z always draws the same portrait and
an exported file draws what `sample` draws.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from heroportraits.data.attributes import Vocabulary
from heroportraits.models.conditioning import AttributeEmbedding
from heroportraits.models.config import ModelConfig
from heroportraits.models.dcgan import num_stages
from heroportraits.models.palette_output import RGBOutput

MAPPING_LAYERS = 4
MAPPING_LR = 0.01  # the mapping network learns 100x slower than the rest (StyleGAN's lr multiplier)
LRELU_GAIN = math.sqrt(2.0)


class EqualLinear(nn.Module):
    """A linear layer with an equalised learning rate (Karras et al. 2018): weights stored as N(0, 1) / lr_mul and
    scaled at run time by lr_mul / sqrt(fan_in), so Adam's steps move it lr_mul times as fast as a plain layer."""

    def __init__(self, cin: int, cout: int, lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(cout))
        self.weight_gain, self.lr_mul = lr_mul / math.sqrt(cin), lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)


class MappingNetwork(nn.Module):
    """(z (N, Z), labels) -> w (N, W): normalised z joined with the attribute embeddings, through an MLP whose
    learning rate is MAPPING_LR times the rest of G's (StyleGAN's choice: a fast mapping collapses the styles)."""

    def __init__(self, cfg: ModelConfig, vocab: Vocabulary, w_dim: int):
        super().__init__()
        self.embed = AttributeEmbedding(vocab, cfg.embed_dim)
        dims = [cfg.z_dim + self.embed.out_dim] + [w_dim] * MAPPING_LAYERS
        self.layers = nn.ModuleList(EqualLinear(a, b, MAPPING_LR) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)  # on the sphere, as StyleGAN normalises z
        h = torch.cat([z, self.embed(labels)], dim=1)
        for layer in self.layers:
            h = F.leaky_relu(layer(h), 0.2) * LRELU_GAIN
        return h


class ModulatedConv(nn.Module):
    """A convolution whose input channels each portrait's style scales, demodulated so each output channel has
    unit expected scale (StyleGAN2's non-fused form: scale the input, convolve with the shared weight, scale the
    output); `demodulate=False` for the RGB outputs."""

    def __init__(self, cin: int, cout: int, kernel: int, w_dim: int, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) / math.sqrt(cin * kernel * kernel))
        self.affine = nn.Linear(w_dim, cin)
        nn.init.ones_(self.affine.bias)  # styles start at 1: the plain convolution
        self.demodulate, self.padding = demodulate, kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.affine(w)  # (N, Cin)
        x = F.conv2d(x * style[:, :, None, None], self.weight, padding=self.padding)
        if self.demodulate:  # 1 / sqrt(sum over Cin, k, k of (weight * style)^2) per portrait and output channel
            power = torch.einsum("oikl,ni->no", self.weight.square(), style.square())
            x = x * torch.rsqrt(power + 1e-8)[:, :, None, None]
        return x


class StyleLayer(nn.Module):
    """Modulated 3x3 conv, per-pixel noise (learned strength per layer), bias, leaky ReLU."""

    def __init__(self, cin: int, cout: int, w_dim: int, size: int):
        super().__init__()
        self.conv = ModulatedConv(cin, cout, 3, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("noise_const", torch.randn(1, 1, size, size))  # eval mode's fixed noise

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.conv(x, w)
        if self.training:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        else:
            noise = self.noise_const.to(x.dtype)
        x = x + self.noise_strength * noise + self.bias[None, :, None, None]
        return F.leaky_relu(x, 0.2) * LRELU_GAIN


class StyleGenerator(nn.Module):
    """G: (z (N, z_dim), labels (N, A) or (N, A, K) weights) -> images (N, 3, R, R) in [-1, 1].

    Channels g_width x (8, 8, 4, 2, 1, ...) from 4x4 up to the grid (capped at 8 x g_width); w has 4 x g_width
    dimensions (at least 64). `forward(z, labels, w=...)` draws from given styles: one per layer, (N, L, W), which
    `mix_styles` makes."""

    def __init__(self, cfg: ModelConfig, vocab: Vocabulary, resolution: int, palette: torch.Tensor | None = None):
        super().__init__()
        self.z_dim, self.resolution = cfg.z_dim, resolution
        stages = num_stages(resolution)
        self.w_dim = max(64, 4 * cfg.g_width)
        widths = [cfg.g_width * min(8, 2 ** (stages - i)) for i in range(stages + 1)]  # 4x4 ... R
        self.mapping = MappingNetwork(cfg, vocab, self.w_dim)
        self.const = nn.Parameter(torch.randn(1, widths[0], 4, 4))
        self.out = RGBOutput(alpha=cfg.alpha)  # tanh; per-portrait quantisation when drawing asks
        channels = self.out.channels
        self.layers, self.to_rgb = nn.ModuleList(), nn.ModuleList()
        self.layers.append(StyleLayer(widths[0], widths[0], self.w_dim, 4))
        self.to_rgb.append(ModulatedConv(widths[0], channels, 1, self.w_dim, demodulate=False))
        for i in range(1, stages + 1):
            size = 4 * 2**i
            self.layers.append(StyleLayer(widths[i - 1], widths[i], self.w_dim, size))
            self.layers.append(StyleLayer(widths[i], widths[i], self.w_dim, size))
            self.to_rgb.append(ModulatedConv(widths[i], channels, 1, self.w_dim, demodulate=False))
        self.num_styles = len(self.layers) + 1  # one per layer, and the last RGB output's

    def styles(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The same w for every layer: (N, L, W)."""
        return self.mapping(z, labels)[:, None].expand(-1, self.num_styles, -1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        w = self.styles(z, labels) if w is None else w
        x = self.layers[0](self.const.expand(z.shape[0], -1, -1, -1), w[:, 0])
        rgb = self.to_rgb[0](x, w[:, 1])
        for i in range(1, len(self.to_rgb)):  # a block: up x2, two style layers, its RGB added to the skip
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = self.layers[2 * i - 1](x, w[:, 2 * i - 1])
            x = self.layers[2 * i](x, w[:, 2 * i])
            rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False)
            rgb = rgb + self.to_rgb[i](x, w[:, 2 * i + 1])
        return self.out(rgb, z, labels)

    @torch.no_grad()
    def mix_styles(
        self, z_coarse: torch.Tensor, z_fine: torch.Tensor, labels: torch.Tensor, crossover: int
    ) -> torch.Tensor:
        """Style mixing: layers below `crossover` take z_coarse's style (pose, head, gear), the rest z_fine's
        (colour, texture). Returns the (N, L, W) styles for forward(..., w=)."""
        coarse, fine = self.styles(z_coarse, labels), self.styles(z_fine, labels)
        keep = (torch.arange(self.num_styles, device=coarse.device) < crossover)[None, :, None]
        return torch.where(keep, coarse, fine)
