"""DiffAugment (paired draws, differentiability, native-pixel moves) and instance noise."""

from __future__ import annotations

import pytest
import torch

from heroportraits.training.augment import (
    AugmentError,
    apply_params,
    diff_augment,
    instance_noise_std,
    parse_policy,
    sample_params,
)

POLICY = "color,translation,cutout"


def blocky(n: int, cells: int, k: int, seed: int = 0) -> torch.Tensor:
    """n random images of cells x cells native pixels, each k x k image pixels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, cells, cells, generator=g) * 2 - 1
    return x.repeat_interleave(k, dim=2).repeat_interleave(k, dim=3)


def is_blocky(x: torch.Tensor, k: int) -> bool:
    small = x[..., ::k, ::k]
    return torch.equal(small.repeat_interleave(k, dim=2).repeat_interleave(k, dim=3), x)


def test_policy_parsing():
    assert parse_policy("color, translation,cutout") == ["color", "translation", "cutout"]
    assert parse_policy("") == []
    with pytest.raises(AugmentError, match="rotate"):
        parse_policy("color,rotate")


def test_pair_gets_the_same_transform():
    a = blocky(6, 16, 1, seed=1)
    b = blocky(6, 16, 1, seed=2)
    g = torch.Generator().manual_seed(0)
    prm = sample_params(POLICY, 6, 16, generator=g)  # one draw applied to both batches
    a1, a2 = apply_params(a, prm), apply_params(a.clone(), prm)
    assert torch.equal(a1, a2)
    # Translation and cutout are linear with zero fill: one draw applied to a, b and a + b adds up.
    prm = sample_params("translation,cutout", 6, 16, generator=g)
    assert torch.allclose(apply_params(a, prm) + apply_params(b, prm), apply_params(a + b, prm), atol=1e-6)
    # Independent draws differ (so the pair equality above means something).
    assert not torch.equal(diff_augment(a, POLICY, generator=g), diff_augment(a, POLICY, generator=g))


def test_diff_augment_is_differentiable():
    x = blocky(4, 8, 2).requires_grad_(True)
    y = diff_augment(x, POLICY, generator=torch.Generator().manual_seed(3))
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # Exact gradients of a fixed draw (colour is nonlinear through the image mean).
    prm = sample_params(POLICY, 2, 4, generator=torch.Generator().manual_seed(4))
    xd = torch.randn(2, 3, 4, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: apply_params(t, prm), (xd,))


@pytest.mark.parametrize("policy", ["translation", "cutout", POLICY])
def test_translation_and_cutout_move_whole_native_pixels(policy):
    k = 4
    x = blocky(32, 8, k)
    g = torch.Generator().manual_seed(0)
    prm = sample_params(policy, 32, 32, pixel=k, generator=g)
    assert is_blocky(apply_params(x, prm), k)
    if prm.shift is not None:
        assert (prm.shift % k == 0).all() and prm.shift.abs().max() > 0
        assert prm.shift.abs().max() <= 32 // 8
    # Without the native pixel size, shifts of single pixels break the blocks.
    prm1 = sample_params(policy, 32, 32, pixel=1, generator=g)
    assert not is_blocky(apply_params(x, prm1), k)


def test_translation_moves_content():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 3, 3] = 1
    prm = sample_params("translation", 1, 8, generator=torch.Generator().manual_seed(0))
    prm.shift = torch.tensor([[1, -1]])
    out = apply_params(x, prm)
    assert out[0, 0, 4, 2] == 1 and out.sum() == 1


def test_probability_zero_is_identity_and_one_changes_every_image():
    x = blocky(16, 8, 2)
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(diff_augment(x, POLICY, p=0.0, generator=g), x, atol=1e-6)
    out = diff_augment(x, POLICY, p=torch.tensor(1.0), generator=g)
    assert ((out - x).flatten(1).abs().amax(1) > 0).all()
    half = sample_params("translation", 2000, 32, p=0.5, generator=g)
    moved = (half.shift != 0).any(1).float().mean().item()
    assert 0.4 < moved < 0.55  # about half gated off (a few gated-on draws are a zero shift)


def test_instance_noise_schedule():
    assert instance_noise_std(0.2, 100, 0, 1000) == pytest.approx(0.2)
    assert instance_noise_std(0.2, 100, 50, 1000) == pytest.approx(0.1)
    assert instance_noise_std(0.2, 100, 100, 1000) == 0.0
    assert instance_noise_std(0.2, 100, 500, 1000) == 0.0
    assert instance_noise_std(0.2, 0, 250, 1000) == pytest.approx(0.15)  # 0 = anneal over the run
    assert instance_noise_std(0.0, 100, 0, 1000) == 0.0
