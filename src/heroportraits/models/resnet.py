"""Residual generator and discriminator (SNGAN, Miyato et al. 2018; BigGAN, Brock et al. 2019).

G: z (+ embeddings) -> linear -> 4x4 -> up-blocks (BN/CBN, ReLU, nearest x2, 3x3 conv, twice,
   with a 1x1 shortcut) -> BN, ReLU, 3x3 conv, tanh.
D: down-blocks (ReLU, 3x3 conv, twice, average-pool x2, 1x1 shortcut) to 4x4, one more
   block at 4x4, ReLU, global sum pooling -> linear output (+ projection term).
Resampling happens inside the blocks, so the shortcut carries the resampled input.
Palette output, skip-layer excitation and D's decoders as in the DCGAN nets (see dcgan.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from heroportraits.data.attributes import Vocabulary
from heroportraits.models.conditioning import AttributeEmbedding, join_label_maps
from heroportraits.models.config import ModelConfig, image_channels
from heroportraits.models.dcgan import Discriminator, num_stages
from heroportraits.models.fastgan import maybe_reconstruction, maybe_sle
from heroportraits.models.head_classifier import maybe_head_classifier
from heroportraits.models.layers import BatchNorm2d, ProjectionHead, g_norm, maybe_classifier, minibatch_stddev
from heroportraits.models.palette_output import image_output

MAX_MULT = 8  # widths grow x2 per halving of resolution, up to 8 x base width


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class GBlock(nn.Module):
    """(N, cin, H, W) -> (N, cout, 2H, 2W)."""

    def __init__(self, cin: int, cout: int, vocab: Vocabulary, g_cond: str):
        super().__init__()
        self.norm1, self.norm2 = g_norm(cin, vocab, g_cond), g_norm(cout, vocab, g_cond)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x, labels)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h), labels)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """(N, cin, H, W) -> (N, cout, H/2, W/2) if `down`. The first block skips the leading
    ReLU (its input is the image) and pools before its shortcut conv (SNGAN's optimised block)."""

    def __init__(self, cin: int, cout: int, down: bool, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if (cin != cout or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:
            s = self.skip(F.avg_pool2d(s, 2) if self.down else s)
        elif self.skip is not None:
            s = self.skip(s)
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


class ResNetGenerator(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab: Vocabulary, resolution: int, palette: torch.Tensor | None = None):
        super().__init__()
        self.z_dim, self.resolution = cfg.z_dim, resolution
        stages = num_stages(resolution)
        widths = [cfg.g_width * min(2 ** (stages - i), MAX_MULT) for i in range(stages + 1)]  # 4x4 ... R
        self.embed = AttributeEmbedding(vocab, cfg.embed_dim) if "concat" in cfg.g_cond.split("+") else None
        in_dim = cfg.z_dim + (self.embed.out_dim if self.embed is not None else 0)
        self.fc = nn.Linear(in_dim, widths[0] * 16)
        self.blocks = nn.ModuleList(GBlock(a, b, vocab, cfg.g_cond) for a, b in zip(widths[:-1], widths[1:]))
        self.out_norm = BatchNorm2d(widths[-1])
        self.sle = maybe_sle(cfg.g_sle, {4 * 2**i: w for i, w in enumerate(widths)})
        self.out = image_output(cfg, vocab, palette)  # tanh, or a palette choice per pixel
        self.to_rgb = nn.Conv2d(widths[-1], self.out.channels, 3, 1, 1)  # 3 channels, or K logits
        _init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # z: (N, z_dim), labels: (N, A) -> images (N, 3, R, R) in [-1, 1]
        h = z if self.embed is None else torch.cat([z, self.embed(labels)], dim=1)
        h = self.fc(h).unflatten(1, (-1, 4, 4))  # (N, C0, 4, 4)
        feats = {4: h}  # G's maps by size, for skip-layer excitation
        for block in self.blocks:
            h = block(h, labels)  # x2 per block
            if self.sle is not None:
                h = self.sle.apply(h, feats)
        return self.out(self.to_rgb(F.relu(self.out_norm(h))), z, labels)


class ResNetDiscriminator(Discriminator):
    def __init__(self, cfg: ModelConfig, vocab: Vocabulary, resolution: int):
        super().__init__()
        stages = num_stages(resolution)
        widths = [cfg.d_width * min(2**i, MAX_MULT) for i in range(stages + 1)]  # R/2 ... 4x4, then 4x4
        self.first = DBlock(image_channels(cfg), widths[0], down=True, first=True)
        self.embed = AttributeEmbedding(vocab, cfg.embed_dim) if cfg.d_cond == "concat" else None
        cin = widths[0] + (self.embed.out_dim if self.embed is not None else 0)
        blocks = []
        for i in range(1, stages + 1):
            blocks.append(DBlock(cin, widths[i], down=i < stages))
            cin = widths[i]
        self.blocks = nn.Sequential(*blocks)
        self.mbstd = cfg.d_mbstd
        cin += 1 if self.mbstd else 0
        self.out = nn.Linear(cin, 1)
        self.proj = ProjectionHead(cin, vocab) if cfg.d_cond == "projection" else None
        self.classifier = maybe_classifier(cfg.d_classify, cin, vocab)
        self.head_classifier = maybe_head_classifier(cfg, vocab)
        widths_by_size = {resolution // 2 ** (i + 1): widths[i] for i in range(stages)} | {4: widths[stages]}
        self.recon = maybe_reconstruction(cfg.d_recon, widths_by_size, resolution, cfg.d_width, image_channels(cfg))
        _init(self)

    def features(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        h = self.first(x)  # (N, w, R/2, R/2)
        feats = {h.shape[-1]: h}  # D's maps by size (the last one at 4x4 wins), for the decoders
        if self.embed is not None:
            h = join_label_maps(h, self.embed(labels))  # (N, w + A * embed_dim, ., .)
        for block in self.blocks:
            h = block(h)
            feats[h.shape[-1]] = h
        h = F.relu(h)  # (N, C, 4, 4)
        if self.mbstd:
            h = minibatch_stddev(h, self.mbstd)  # (N, C + 1, 4, 4)
        phi = h.sum(dim=(2, 3))  # (N, C'): global sum pooling
        return phi, feats
