"""GAN losses and regularisers against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from heroportraits.training.losses import (
    d_hinge_loss,
    d_ns_loss,
    d_rpgan_loss,
    g_hinge_loss,
    g_ns_loss,
    g_rpgan_loss,
    get_losses,
    lecam_penalty,
    r1_penalty,
)


def test_hinge_loss_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.0])
    # relu(1 - real) = [0, 0.5] -> 0.25; relu(1 + fake) = [0, 1] -> 0.5
    assert d_hinge_loss(real, fake).item() == pytest.approx(0.75)
    assert g_hinge_loss(fake).item() == pytest.approx(1.5)


def test_non_saturating_loss_values():
    real, fake = torch.tensor([0.0, 1.0]), torch.tensor([0.0, -1.0])

    def sig(v):
        return 1 / (1 + math.exp(-v))

    d = -(math.log(sig(0)) + math.log(sig(1))) / 2 - (math.log(1 - sig(0)) + math.log(1 - sig(-1))) / 2
    g = -(math.log(sig(0)) + math.log(sig(-1))) / 2
    assert d_ns_loss(real, fake).item() == pytest.approx(d, rel=1e-5)
    assert g_ns_loss(fake).item() == pytest.approx(g, rel=1e-5)
    assert get_losses("ns") == (d_ns_loss, g_ns_loss)
    with pytest.raises(ValueError, match="train.loss"):
        get_losses("wasserstein")


def test_relativistic_pairing_loss_values():
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.5])

    # D: softplus(fake - real) = [softplus(-2), softplus(0.5)]; G: softplus(real - fake) = [softplus(2), softplus(-0.5)]
    def softplus(v):
        return math.log1p(math.exp(v))

    assert d_rpgan_loss(real, fake).item() == pytest.approx((softplus(-2) + softplus(0.5)) / 2, rel=1e-5)
    assert g_rpgan_loss(fake, real).item() == pytest.approx((softplus(2) + softplus(-0.5)) / 2, rel=1e-5)
    # Pairs, not means: the same logits in another pairing give another loss.
    assert d_rpgan_loss(real, fake.flip(0)).item() != pytest.approx(d_rpgan_loss(real, fake).item())
    assert get_losses("rpgan") == (d_rpgan_loss, g_rpgan_loss)
    with pytest.raises(ValueError, match="paired real"):
        g_rpgan_loss(fake)


def test_r1_matches_analytic_gradient_norm():
    # D(x) = sum(w * x^2) per image  ->  dD/dx = 2 w x  ->  ||.||^2 = sum(4 w^2 x^2)
    torch.manual_seed(0)
    w = torch.randn(3, 4, 4, requires_grad=True)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (w * x.pow(2)).flatten(1).sum(1)
    r1 = r1_penalty(logits, x)
    expected = (4 * w.detach() ** 2 * x.detach() ** 2).flatten(1).sum(1).mean()
    assert r1.item() == pytest.approx(expected.item(), rel=1e-5)
    # The penalty is differentiable in D's parameters: d r1 / d w = mean_n 8 w x_n^2.
    r1.backward()
    assert torch.allclose(w.grad, (8 * w.detach() * x.detach() ** 2).mean(0), rtol=1e-4)


def test_lecam_penalty_values():
    real, fake = torch.tensor([1.0, -1.0]), torch.tensor([0.0, -2.0])
    anchor_real, anchor_fake = torch.tensor(0.5), torch.tensor(-0.5)
    # relu(real - a_fake) = [1.5, 0] -> mean sq 1.125; relu(a_real - fake) = [0.5, 2.5] -> (0.25 + 6.25) / 2
    assert lecam_penalty(real, fake, anchor_real, anchor_fake).item() == pytest.approx(1.125 + 3.25)
    # Nothing to penalise when reals sit below the fake anchor and fakes above the real anchor.
    assert lecam_penalty(torch.tensor([-1.0]), torch.tensor([1.0]), anchor_real, anchor_fake).item() == 0


def test_lecam_is_zero_when_outputs_equal_the_anchors():
    anchor_real, anchor_fake = torch.tensor(0.8), torch.tensor(-0.3)
    # Each output on the anchor it is compared with: D(real) = mean D(fake), D(fake) = mean D(real).
    real = torch.full((5,), -0.3, requires_grad=True)
    fake = torch.full((5,), 0.8, requires_grad=True)
    penalty = lecam_penalty(real, fake, anchor_real, anchor_fake)
    penalty.backward()
    assert penalty.item() == 0 and real.grad.abs().max() == 0 and fake.grad.abs().max() == 0
    # A D that cannot tell reals from fakes: one output c everywhere, and both anchors at c.
    c = torch.tensor(0.37)
    assert lecam_penalty(c.expand(4), c.expand(4), c, c).item() == 0
    # Moving D(real) 0.5 above the fake anchor costs 0.5^2, and its gradient pulls it back.
    real = torch.full((5,), 0.2, requires_grad=True)
    penalty = lecam_penalty(real, fake.detach(), anchor_real, anchor_fake)
    penalty.backward()
    assert penalty.item() == pytest.approx(0.25)
    assert torch.allclose(real.grad, torch.full((5,), 2 * 0.5 / 5))


def test_mode_seeking_penalty_is_inverse_image_over_noise_distance():
    from heroportraits.training.losses import mode_seeking_penalty

    z = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [1.0, 3.0]])  # pairs (row 0, row 2), (row 1, row 3)
    fake = torch.zeros(4, 3, 2, 2)
    fake[2] += 1.0  # pair 1 differs by 1 per pixel
    fake[3] += 0.5  # pair 2 by 0.5
    # |z1 - z2| per pair: mean(|0-2|, |0-0|) = 1, mean(|1-1|, |1-3|) = 1 -> ratios 1 and 0.5
    assert torch.isclose(mode_seeking_penalty(fake, z), torch.tensor(1 / 0.75), atol=1e-4)
    collapsed = torch.zeros(4, 3, 2, 2)  # same image whatever the noise
    assert mode_seeking_penalty(collapsed, z) > 1e4


def test_mode_seeking_pairs_share_labels_in_the_g_step(toy_dataset):
    from heroportraits.data.dataset import load_dataset
    from heroportraits.training.presets import resolve_config
    from heroportraits.training.setup import setup_training

    cfg = resolve_config("smoke", {"train.mode_seeking": 1.0, "train.device": "cpu"})
    s = setup_training(cfg, load_dataset(toy_dataset, "train"), torch.device("cpu"))
    seen = []
    G = s.trainer.G
    hook = G.register_forward_hook(lambda m, args, out: seen.append(args[1].clone()))
    s.trainer.step(s.next_batch)
    hook.remove()
    y = seen[-1]  # the G phase's labels
    half = y.shape[0] // 2
    assert torch.equal(y[:half], y[half:])
