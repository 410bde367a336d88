"""GAN losses and regularisers as small free functions of discriminator outputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from heroportraits.training.config import check_choice


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss (Lim & Ye 2017; Miyato 2018): D only pushes logits past the +-1 margin."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge_loss(fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
    return -fake_logits.mean()


def d_ns_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Logistic loss: -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z))))  (Goodfellow 2014)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_ns_loss(fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Non-saturating generator loss: -log sigmoid(D(G(z))), strong gradients early on."""
    return F.softplus(-fake_logits).mean()


def d_rpgan_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Relativistic pairing (RpGAN; Jolicoeur-Martineau 2019, R3GAN, Huang et al. 2024):
    -log sigmoid(D(x_i) - D(G(z_i))), each real paired with one fake. D has to rank every fake
    below its own real rather than below a fixed margin, which R3GAN shows removes mode dropping."""
    return F.softplus(fake_logits - real_logits).mean()


def g_rpgan_loss(fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
    """G's side of the pairing: -log sigmoid(D(G(z_i)) - D(x_i)); `real_logits` carry no gradient."""
    if real_logits is None:
        raise ValueError("the relativistic G loss needs D's logits on the paired real images")
    return F.softplus(real_logits - fake_logits).mean()


# keyed by CHOICES["train.loss"]; every G loss takes (fake_logits, real_logits), only rpgan reads the reals
LOSSES = {"hinge": (d_hinge_loss, g_hinge_loss), "ns": (d_ns_loss, g_ns_loss), "rpgan": (d_rpgan_loss, g_rpgan_loss)}


def get_losses(name: str):
    """(D loss, G loss) for a train.loss name."""
    check_choice("train.loss", name)
    return LOSSES[name]


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """E ||d D(x) / d x||^2 on real images (Mescheder et al. 2018); weight it by gamma / 2.
    On fake images it is R2 (R3GAN pairs the two with the relativistic loss).

    `real_images` must have requires_grad set before D saw them; the graph is kept
    (create_graph) so the penalty itself can be minimised.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def lecam_penalty(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, anchor_real: torch.Tensor, anchor_fake: torch.Tensor
) -> torch.Tensor:
    """LeCam regulariser (Tseng et al. 2021): keeps D's outputs on reals near the moving
    average of its outputs on fakes and vice versa, which bounds how far D can separate
    them on a small dataset. Anchors are EMAs of D's mean real/fake outputs (no gradient).
    """
    return F.relu(real_logits - anchor_fake).pow(2).mean() + F.relu(anchor_real - fake_logits).pow(2).mean()


def mode_seeking_penalty(fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mode seeking (MSGAN, Mao et al. 2019): the two halves of the batch share their labels, and
    G is penalised by 1 / (|G(z1) - G(z2)| / |z1 - z2|), so two noises under one condition must
    give two different portraits.   fake: (2H, 3, R, R), z: (2H, Z) -> 0-dim."""
    x1, x2 = fake.chunk(2)
    z1, z2 = z.chunk(2)
    ratio = (x1 - x2).abs().mean(dim=(1, 2, 3)) / (z1 - z2).abs().mean(dim=1)  # (H,)
    return 1.0 / (ratio.mean() + 1e-5)
