"""Learned attribute embeddings shared by every architecture."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from heroportraits.data.attributes import Vocabulary


def lookup(table: nn.Embedding, labels: torch.Tensor, i: int) -> torch.Tensor:
    """Attribute i's table rows for each sample -> (N, dim).

    labels: (N, A) int64 indices, or (N, A, K) float weights over each table's rows (K >= rows,
    see `soft_labels`): then the weighted sum of rows, so a mix of two one-hots is the straight
    line between two values' embeddings (a latent walk from warm to cool). A one-hot weight row
    gives exactly the indexed row.
    """
    if labels.is_floating_point():
        return labels[:, i, : table.num_embeddings] @ table.weight
    return table(labels[:, i])


def soft_labels(labels: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """(N, A) indices -> (N, A, K) one-hot float weights, K = the largest table (values + unspecified)."""
    return F.one_hot(labels, max(sizes, default=0) + 1).float()


class AttributeEmbedding(nn.Module):
    """One embedding table per attribute; output is their concatenation.

    Each table has one extra row for "unspecified" (index = number of values), so a
    model can be asked for e.g. a mage of any gender.
    labels: (N, A) int64 (or (N, A, K) weights, see `lookup`)  ->  (N, A * dim)
    """

    def __init__(self, vocab: Vocabulary, dim: int):
        super().__init__()
        self.names = vocab.names
        self.tables = nn.ModuleList(nn.Embedding(n + 1, dim) for n in vocab.sizes)
        self.out_dim = dim * len(self.tables)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        if labels.shape[1] != len(self.tables):
            raise ValueError(
                f"labels have {labels.shape[1]} attributes, model expects {len(self.tables)} ({self.names})"
            )
        if not self.tables:  # nothing to condition on (palette-only data, palette OFF)
            return labels.new_zeros(labels.shape[0], 0, dtype=torch.float)
        return torch.cat([lookup(t, labels, i) for i, t in enumerate(self.tables)], dim=1)


def join_label_maps(h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Feature maps h (N, C, H, W) joined with per-sample embeddings e (N, E) as constant maps
    -> (N, C + E, H, W), in h's memory format. (torch.cat of a channels-last h with broadcast
    maps comes out NCHW, which the next convolution copies back, forward and backward.)"""
    maps = e[:, :, None, None].expand(-1, -1, *h.shape[2:])  # (N, E, H, W), no copy
    if h.is_contiguous(memory_format=torch.channels_last):
        maps = maps.contiguous(memory_format=torch.channels_last)
    return torch.cat([h, maps], dim=1)
