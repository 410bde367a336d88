"""Conditional DCGAN (Radford et al. 2016) with learned attribute embeddings.

G: [z, embeddings] -> 4x4 -> ... -> resolution, transposed convs + batch-norm + ReLU
   (`g_cond="cbn"`: z alone, the labels set every batch-norm's gain and bias instead).
D: strided convs + LeakyReLU; `d_cond="concat"` broadcasts the embeddings as extra
   feature maps after the first layer (the classic cDCGAN way of letting D check
   image/label agreement), `d_cond="projection"` adds a projection term on the last
   features. With spectral norm, D drops its batch-norm (as in Miyato et al. 2018).
Options shared with the residual nets: palette output (models/palette_output.py), skip-layer
excitation in G and the self-supervised D's decoders (models/fastgan.py), D's auxiliary classifier
(models/layers.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from heroportraits.data.attributes import Vocabulary
from heroportraits.models.conditioning import AttributeEmbedding, join_label_maps
from heroportraits.models.config import ModelConfig, image_channels
from heroportraits.models.fastgan import RECON_PART, RECON_WHOLE, maybe_reconstruction, maybe_sle
from heroportraits.models.head_classifier import maybe_head_classifier
from heroportraits.models.layers import ProjectionHead, g_norm, maybe_classifier, minibatch_stddev
from heroportraits.models.palette_output import image_output


def num_stages(resolution: int) -> int:
    """Number of x2 resolution changes between 4x4 and `resolution`."""
    stages = int(math.log2(resolution)) - 2  # 4x4 -> resolution
    if 2 ** (stages + 2) != resolution or stages < 1:
        raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
    return stages


class DCGANGenerator(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab: Vocabulary, resolution: int, palette: torch.Tensor | None = None):
        super().__init__()
        self.z_dim, self.resolution = cfg.z_dim, resolution
        stages = num_stages(resolution)
        widths = [cfg.g_width * 2 ** (stages - 1 - i) for i in range(stages)]  # e.g. 256,128,64 for 32x32
        self.embed = AttributeEmbedding(vocab, cfg.embed_dim) if "concat" in cfg.g_cond.split("+") else None
        in_dim = cfg.z_dim + (self.embed.out_dim if self.embed is not None else 0)
        self.fc = nn.Linear(in_dim, widths[0] * 16, bias=False)
        self.norms = nn.ModuleList(g_norm(w, vocab, cfg.g_cond) for w in widths)
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False) for cin, cout in zip(widths[:-1], widths[1:])
        )
        self.sle = maybe_sle(cfg.g_sle, {4 * 2**i: w for i, w in enumerate(widths)})
        self.out = image_output(cfg, vocab, palette)  # tanh, or a palette choice per pixel
        self.to_rgb = nn.ConvTranspose2d(widths[-1], self.out.channels, 4, 2, 1)  # 3 channels, or K logits

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # z: (N, z_dim), labels: (N, A) -> images (N, 3, resolution, resolution) in [-1, 1]
        h = z if self.embed is None else torch.cat([z, self.embed(labels)], dim=1)
        h = self.fc(h).unflatten(1, (-1, 4, 4))  # (N, C0, 4, 4)
        h = F.relu(self.norms[0](h, labels))
        feats = {4: h}  # G's maps by size, for skip-layer excitation
        for up, norm in zip(self.ups, self.norms[1:]):
            h = F.relu(norm(up(h), labels))  # x2 per stage
            if self.sle is not None:
                h = self.sle.apply(h, feats)
        return self.out(self.to_rgb(h), z, labels)


class Discriminator(nn.Module):
    """What every D shares: its realness logits from pooled features (`out`, plus the projection term), and the
    extra heads a step may ask for. An architecture builds `out`, `proj`, `classifier`, `head_classifier` and
    `recon` and defines `features`; selection.py hooks `out` to read the features a score came from."""

    def features(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """x (N, 3, R, R) -> (phi (N, F) the pooled features, {size: D's map at that size} for the decoders)."""
        raise NotImplementedError

    def forward(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        part: int | None = None,
        classify: bool = False,
        fakes: bool = False,
    ):
        """x: (N, 3, R, R) -> logits (N,). With `part` (0-3, D has decoders) and/or `classify` (D has the
        auxiliary classifier) -> (logits, {"recon": reconstruction L1, "class": classifier cross-entropy}).
        With `fakes` (x are G's, D's head classifier names fakes: model.head_fake) -> (logits,
        {"head_fake": its cross-entropy of naming them fake})."""
        phi, feats = self.features(x, labels)
        out = self.out(phi).squeeze(1)
        out = out if self.proj is None else out + self.proj(phi, labels)
        if fakes and self.head_classifier is not None and self.head_classifier.fake_class:
            return out, {"head_fake": self.head_classifier.fake_loss(x)}
        if part is None and not classify:
            return out
        extras = {}
        if classify and self.classifier is not None:
            extras["class"] = self.classifier.loss(phi, labels)
        if classify and self.head_classifier is not None:
            extras["head"] = self.head_classifier.loss(x, labels)
        if part is not None:
            extras["recon"] = self.recon.loss(x, {s: feats[s] for s in (RECON_WHOLE, RECON_PART)}, part)
        return out, extras


class DCGANDiscriminator(Discriminator):
    def __init__(self, cfg: ModelConfig, vocab: Vocabulary, resolution: int):
        super().__init__()
        stages = num_stages(resolution)
        widths = [cfg.d_width * 2**i for i in range(stages)]  # e.g. 64,128,256 for 32x32
        self.first = nn.Conv2d(image_channels(cfg), widths[0], 4, 2, 1)
        self.embed = AttributeEmbedding(vocab, cfg.embed_dim) if cfg.d_cond == "concat" else None
        layers, cin = [], widths[0] + (self.embed.out_dim if self.embed is not None else 0)
        for cout in widths[1:]:
            norm = nn.Identity() if cfg.d_spectral_norm else nn.BatchNorm2d(cout)
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=cfg.d_spectral_norm), norm, nn.LeakyReLU(0.2)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.mbstd = cfg.d_mbstd
        cin += 1 if self.mbstd else 0
        self.out = nn.Linear(cin * 16, 1)
        self.proj = ProjectionHead(cin * 16, vocab) if cfg.d_cond == "projection" else None
        self.classifier = maybe_classifier(cfg.d_classify, cin * 16, vocab)
        self.head_classifier = maybe_head_classifier(cfg, vocab)
        widths_by_size = {resolution // 2 ** (i + 1): w for i, w in enumerate(widths)}  # R/2 ... 4
        self.recon = maybe_reconstruction(cfg.d_recon, widths_by_size, resolution, cfg.d_width, image_channels(cfg))

    def features(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        h = F.leaky_relu(self.first(x), 0.2)  # (N, w, R/2, R/2)
        feats = {h.shape[-1]: h}  # D's maps by size, for the decoders
        if self.embed is not None:
            h = join_label_maps(h, self.embed(labels))  # (N, w + A * embed_dim, ., .)
        for layer in self.body:  # conv, norm, LeakyReLU per halving -> (N, C, 4, 4)
            h = layer(h)
            if isinstance(layer, nn.LeakyReLU):
                feats[h.shape[-1]] = h
        if self.mbstd:
            h = minibatch_stddev(h, self.mbstd)  # (N, C + 1, 4, 4)
        phi = h.flatten(1)  # (N, C' * 4 * 4)
        return phi, feats
