"""GAN losses as small free functions of discriminator logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()


D_LOSSES = {"hinge": d_hinge_loss}
G_LOSSES = {"hinge": g_hinge_loss}


def get_losses(name: str):
    if name not in D_LOSSES:
        raise ValueError(f"unknown train.loss {name!r}; choose one of {sorted(D_LOSSES)}")
    return D_LOSSES[name], G_LOSSES[name]
