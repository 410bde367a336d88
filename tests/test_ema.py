"""EMA of generator weights: the update formula, batch-norm buffers, eval mode, ramp-up."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from toys import toy_trainer

from heroportraits.data.attributes import Vocabulary
from heroportraits.models.layers import apply_spectral_norm
from heroportraits.training.ema import ema_beta, make_ema, update_ema

VOCAB = Vocabulary({"gender": ["m", "f"], "hero_class": ["a", "b", "c", "d"]})


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


def small_bn_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 1))


def train_a_little(net: nn.Module, steps: int = 3, seed: int = 1) -> None:
    """A few SGD steps in train mode: weights move and BN running stats change."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net.train()
    for _ in range(steps):
        x = torch.randn(8, 3, 6, 6, generator=g) * 3 + 1
        loss = net(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_update_matches_formula_for_parameters_and_copies_buffers():
    net = small_bn_net()
    ema = make_ema(net)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    train_a_little(net)
    decay = 0.9
    update_ema(ema, net, decay)
    params = dict(net.named_parameters())
    for name, p in ema.named_parameters():
        expected = decay * before[name] + (1 - decay) * params[name].detach()
        assert torch.allclose(p, expected, atol=1e-6), name
        if not torch.equal(before[name], params[name]):  # (a bias before BN gets no gradient)
            assert not torch.allclose(p, params[name]), f"{name}: the EMA should lag the trained weights"
    # Batch-norm statistics are copied, not averaged (they describe the current weights).
    bn, bn_ema = net[1], ema[1]
    assert not torch.allclose(before["1.running_mean"], bn.running_mean)  # the stats did move
    assert torch.equal(bn_ema.running_mean, bn.running_mean)
    assert torch.equal(bn_ema.running_var, bn.running_var)
    assert bn_ema.num_batches_tracked.item() == bn.num_batches_tracked.item() == 3


def test_decay_zero_copies_and_decay_one_freezes():
    net = small_bn_net()
    ema = make_ema(net)
    start = [p.clone() for p in ema.parameters()]
    train_a_little(net)
    update_ema(ema, net, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(ema.parameters(), start))
    update_ema(ema, net, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(ema.parameters(), net.parameters()))


def test_ema_copy_is_a_frozen_eval_mode_copy():
    net = small_bn_net()
    ema = make_ema(net)
    assert all(not m.training for m in ema.modules())
    assert all(not p.requires_grad for p in ema.parameters())
    assert all(p.requires_grad for p in net.parameters())  # the original is untouched
    assert net.training
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    assert not torch.equal(next(net.parameters()), next(ema.parameters()))  # a copy, not shared storage


def test_ema_forward_uses_running_stats_and_never_updates_them():
    net = small_bn_net()
    train_a_little(net)
    ema = make_ema(net)
    update_ema(ema, net, 0.5)
    stats = (ema[1].running_mean.clone(), ema[1].running_var.clone(), ema[1].num_batches_tracked.clone())
    x = torch.randn(6, 3, 6, 6)
    with torch.no_grad():
        full = ema(x)
        one = ema(x[:1])
    # Eval mode: one image's output does not depend on the rest of its batch.
    assert torch.allclose(full[:1], one, atol=1e-6)
    assert torch.equal(ema[1].running_mean, stats[0]) and torch.equal(ema[1].running_var, stats[1])
    assert torch.equal(ema[1].num_batches_tracked, stats[2])


def test_spectral_norm_vectors_are_copied():
    torch.manual_seed(0)
    net = apply_spectral_norm(nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2)))
    ema = make_ema(net)
    for _ in range(3):
        net(torch.randn(4, 5))  # power iterations update u, v in train mode
    update_ema(ema, net, 0.99)
    for (name, b_ema), (_, b) in zip(ema.named_buffers(), net.named_buffers()):
        assert torch.equal(b_ema, b), name


def test_mismatched_models_are_refused():
    with pytest.raises(ValueError, match="make_ema"):
        update_ema(small_bn_net(), nn.Linear(2, 2), 0.9)


# ------------------------------------------------------------------ ramp-up
def test_beta_without_rampup_is_the_decay_for_any_batch_size():
    for batch in (1, 16, 128):
        assert ema_beta(0.999, batch, images_seen=10_000) == pytest.approx(0.999, rel=1e-12)
    assert ema_beta(0.0, 32, 0) == 0.0 and ema_beta(-1.0, 32, 5) == 0.0
    assert ema_beta(1.0, 32, 10**6) == 1.0
    with pytest.raises(ValueError, match="ema_decay"):
        ema_beta(1.5, 32, 0)


def test_rampup_caps_the_half_life_at_rampup_times_images_seen():
    decay, batch, rampup = 0.999, 32, 0.05
    full_half_life = batch * math.log(0.5) / math.log(decay)  # ~22170 images
    for seen in (0, 32, 3_200, 100_000, 1_000_000):
        half_life = min(full_half_life, rampup * seen)
        expected = 0.5 ** (batch / max(half_life, 1e-8))
        assert ema_beta(decay, batch, seen, rampup) == pytest.approx(expected, rel=1e-12)
    assert ema_beta(decay, batch, 0, rampup) == 0.0  # first step: plain copy
    assert ema_beta(decay, batch, 3_200, rampup) == pytest.approx(0.5 ** (32 / 160))
    betas = [ema_beta(decay, batch, s, rampup) for s in range(0, 1_000_000, 20_000)]
    assert betas == sorted(betas) and betas[-1] == pytest.approx(decay)  # rises to the plain decay


# ------------------------------------------------------------------ in the training loop


def test_trainer_ema_lags_g_and_shares_its_batchnorm_stats():
    trainer, next_batch = toy_trainer(**{"train.ema_decay": 0.9, "train.ema_rampup": 0.0})
    for _ in range(4):
        trainer.step(next_batch)
    G, ema = trainer.G, trainer.G_ema
    assert all(not m.training for m in ema.modules()) and G.training
    diffs = [(a - b).abs().max().item() for a, b in zip(ema.parameters(), G.parameters())]
    assert max(diffs) > 1e-4  # the average differs from the raw G
    bn = [name for name, _ in G.named_buffers() if "running_mean" in name]
    assert bn, "the test generator should have batch-norm"
    g_buffers, e_buffers = dict(G.named_buffers()), dict(ema.named_buffers())
    for name in g_buffers:
        assert torch.equal(g_buffers[name], e_buffers[name]), name


def test_trainer_copies_before_ema_start_and_on_the_first_ramped_step():
    trainer, next_batch = toy_trainer(**{"train.ema_decay": 0.999, "train.ema_start": 2})
    for _ in range(2):  # iterations 0, 1 < ema_start: copies
        trainer.step(next_batch)
        assert all(torch.equal(a, b) for a, b in zip(trainer.G_ema.parameters(), trainer.G.parameters()))
    trainer.step(next_batch)  # iteration 2: averages from here
    assert not all(torch.equal(a, b) for a, b in zip(trainer.G_ema.parameters(), trainer.G.parameters()))

    ramped, next_batch = toy_trainer(**{"train.ema_decay": 0.999, "train.ema_rampup": 0.05})
    ramped.step(next_batch)  # 0 images seen: half-life 0 -> copy
    assert all(torch.equal(a, b) for a, b in zip(ramped.G_ema.parameters(), ramped.G.parameters()))
