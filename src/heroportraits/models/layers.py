"""Building blocks shared by both architectures: conditional batch-norm, the projection
head, the auxiliary classifier, and spectral normalisation applied to a whole network.

Every conditioning module keeps one table per attribute, each with an extra
"unspecified" row (index = number of values), and sums the attributes' contributions,
so a model conditions on any attribute set read from the dataset's vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from heroportraits.data.attributes import Vocabulary
from heroportraits.models.conditioning import lookup


class ConditionalBatchNorm2d(nn.Module):
    """Batch-norm whose gain and bias come from the labels (de Vries 2017; Miyato & Koyama 2018).

    gain = 1 + sum_a G_a[y_a], bias = sum_a B_a[y_a]; tables start at zero, so at
    initialisation this is plain batch-norm.   x: (N, C, H, W), labels: (N, A) (or weights, see `lookup`)
    """

    def __init__(self, channels: int, vocab: Vocabulary):
        super().__init__()
        self.names = vocab.names
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.ModuleList(nn.Embedding(n + 1, channels) for n in vocab.sizes)
        self.bias = nn.ModuleList(nn.Embedding(n + 1, channels) for n in vocab.sizes)
        for table in (*self.gain, *self.bias):
            nn.init.zeros_(table.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.bn(x)
        if not self.names:
            return h
        gain = 1.0 + sum(lookup(t, labels, i) for i, t in enumerate(self.gain))  # (N, C)
        bias = sum(lookup(t, labels, i) for i, t in enumerate(self.bias))  # (N, C)
        return h * gain[:, :, None, None] + bias[:, :, None, None]


class BatchNorm2d(nn.BatchNorm2d):
    """Plain batch-norm with the conditional one's signature, so blocks need not care which."""

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x)


def g_norm(channels: int, vocab: Vocabulary, g_cond: str) -> nn.Module:
    """The generator's normalisation layer: conditional when `g_cond` includes "cbn"."""
    return ConditionalBatchNorm2d(channels, vocab) if "cbn" in g_cond.split("+") else BatchNorm2d(channels)


class ProjectionHead(nn.Module):
    """Projection discriminator term (Miyato & Koyama 2018): sum_a <E_a[y_a], phi(x)>.

    One embedding table per attribute, each of D's feature width; the terms are summed
    and added to D's unconditional output.   phi: (N, F), labels: (N, A) -> (N,)
    """

    def __init__(self, features: int, vocab: Vocabulary):
        super().__init__()
        self.names = vocab.names
        self.tables = nn.ModuleList(nn.Embedding(n + 1, features) for n in vocab.sizes)
        for t in self.tables:
            nn.init.xavier_uniform_(t.weight)

    def forward(self, phi: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = phi.new_zeros(phi.shape[0])
        for i, t in enumerate(self.tables):
            out = out + (lookup(t, labels, i) * phi).sum(dim=1)
        return out


class ClassifierHead(nn.Module):
    """Auxiliary classifier (AC-GAN, Odena et al. 2017): one linear head per attribute on D's features.

    `loss` is the mean cross-entropy of naming each sample's attributes; "unspecified" labels (index =
    number of values, attribute dropout) are left out, so a batch with none named costs 0.
    phi: (N, F), labels: (N, A) -> scalar
    """

    def __init__(self, features: int, vocab: Vocabulary):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(features, n) for n in vocab.sizes)

    def logits(self, phi: torch.Tensor) -> list[torch.Tensor]:
        return [head(phi).float() for head in self.heads]  # [(N, values of attribute a)]

    def loss(self, phi: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        total, named = phi.new_zeros((), dtype=torch.float32), phi.new_zeros((), dtype=torch.float32)
        for ce, keep in self._cross_entropies(phi, labels):
            total, named = total + (ce * keep).sum(), named + keep.sum()
        return total / named.clamp(min=1)

    def log_likelihood(self, phi: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(N,) per sample: the log-probability the heads give its named attributes together (best-of
        sampling ranks candidates by it, selection.py)."""
        total = phi.new_zeros(phi.shape[0], dtype=torch.float32)
        for ce, keep in self._cross_entropies(phi, labels):
            total = total - ce * keep
        return total

    def _cross_entropies(self, phi: torch.Tensor, labels: torch.Tensor):
        """Per attribute: each sample's cross-entropy (N,) and whether its label is named, not "unspecified"."""
        for i, logits in enumerate(self.logits(phi)):
            target = labels[:, i]
            keep = target < logits.shape[1]
            yield F.cross_entropy(logits, target.clamp(max=logits.shape[1] - 1), reduction="none"), keep


def maybe_classifier(weight: float, features: int, vocab: Vocabulary) -> ClassifierHead | None:
    """D's auxiliary classifier when `model.d_classify` > 0; none (no parameters) when off."""
    return ClassifierHead(features, vocab) if weight > 0 else None


def apply_spectral_norm(module: nn.Module, embeddings: bool = False) -> nn.Module:
    """Spectrally normalise every conv/linear weight in `module` (and embeddings if asked).

    Each weight W is used as W / sigma(W), sigma estimated by one power iteration per
    training forward (Miyato et al. 2018). Embedding tables of a projection head are
    normalised too in SNGAN; the conditional-BN tables never are (they are gains).
    """
    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    for child in list(module.modules()):
        if isinstance(child, kinds):
            spectral_norm(child)
        elif embeddings and isinstance(child, ProjectionHead):
            for table in child.tables:
                spectral_norm(table)
    return module


def minibatch_stddev(x: torch.Tensor, group: int) -> torch.Tensor:
    """Append one feature map holding the std of the features across a group of samples
    (ProGAN, Karras et al. 2018): a generator that draws one portrait per condition gets a
    group std near zero, which real batches never have, so D can punish the collapse.

    x: (N, C, H, W) -> (N, C + 1, H, W). Samples i, i + N/g, ... form a group; a batch whose
    size the group does not divide falls back to one group of all N.
    """
    n, c, h, w = x.shape
    g = group if n % group == 0 else n
    y = x.float().reshape(g, n // g, c, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # (N/g, C, H, W)
    y = y.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)  # (N, 1, H, W)
    return torch.cat([x, y.to(x.dtype)], dim=1)
