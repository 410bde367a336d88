"""Conditional DCGAN (Radford et al. 2016) with learned attribute embeddings.

G: [z, embeddings] -> 4x4 -> ... -> resolution, transposed convs + batch-norm + ReLU.
D: strided convs + LeakyReLU; embeddings are broadcast as extra feature maps after
the first layer (the classic cDCGAN way of letting D check image/label agreement).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from heroportraits.attributes import Vocabulary
from heroportraits.config import ModelConfig
from heroportraits.models.conditioning import AttributeEmbedding


def _num_stages(resolution: int) -> int:
    stages = int(math.log2(resolution)) - 2  # 4x4 -> resolution
    if 2 ** (stages + 2) != resolution or stages < 1:
        raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
    return stages


class DCGANGenerator(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab: Vocabulary, resolution: int):
        super().__init__()
        self.z_dim, self.resolution = cfg.z_dim, resolution
        stages = _num_stages(resolution)
        widths = [cfg.g_width * 2 ** (stages - 1 - i) for i in range(stages)]  # e.g. 256,128,64 for 32x32
        self.embed = AttributeEmbedding(vocab, cfg.embed_dim)
        self.fc = nn.Sequential(
            nn.Linear(cfg.z_dim + self.embed.out_dim, widths[0] * 16, bias=False),
            nn.Unflatten(1, (widths[0], 4, 4)),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        blocks = []
        for cin, cout in zip(widths[:-1], widths[1:]):
            blocks += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        blocks += [nn.ConvTranspose2d(widths[-1], 3, 4, 2, 1), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # z: (N, z_dim), labels: (N, A) -> images (N, 3, resolution, resolution) in [-1, 1]
        return self.blocks(self.fc(torch.cat([z, self.embed(labels)], dim=1)))


class DCGANDiscriminator(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab: Vocabulary, resolution: int):
        super().__init__()
        stages = _num_stages(resolution)
        widths = [cfg.d_width * 2**i for i in range(stages)]  # e.g. 64,128,256 for 32x32
        self.embed = AttributeEmbedding(vocab, cfg.embed_dim)
        self.first = nn.Sequential(nn.Conv2d(3, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True))
        layers, cin = [], widths[0] + self.embed.out_dim
        for cout in widths[1:]:
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(cin * 16, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # x: (N, 3, R, R) -> logits (N,)
        h = self.first(x)                                   # (N, w, R/2, R/2)
        e = self.embed(labels)[:, :, None, None].expand(-1, -1, *h.shape[2:])
        h = self.body(torch.cat([h, e], dim=1))             # (N, C, 4, 4)
        return self.out(h.flatten(1)).squeeze(1)
