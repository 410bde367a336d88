"""The style-based generator: modulation and demodulation, fixed noise when drawing, style mixing, conditioning."""

from __future__ import annotations

import pytest
import torch

from heroportraits.data.attributes import Vocabulary
from heroportraits.models import build_models
from heroportraits.models.conditioning import soft_labels
from heroportraits.models.dcgan import DCGANDiscriminator
from heroportraits.models.stylegan import ModulatedConv, StyleGenerator
from heroportraits.training.presets import resolve_config

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread

VOCAB = Vocabulary({"gender": ["m", "f"], "hero_class": ["a", "b", "c"]})


def tiny_style(**overrides) -> StyleGenerator:
    cfg = resolve_config("smoke", {"model.arch": "style", "model.g_width": 8, **overrides})
    torch.manual_seed(0)
    G, D = build_models(cfg.model, VOCAB, 32)
    assert isinstance(G, StyleGenerator) and isinstance(D, DCGANDiscriminator)
    return G


def test_demodulation_cancels_the_scale_of_a_style_and_keeps_unit_scale():
    torch.manual_seed(0)
    conv = ModulatedConv(16, 32, 3, w_dim=8)
    plain = ModulatedConv(16, 32, 3, w_dim=8, demodulate=False)
    plain.load_state_dict(conv.state_dict())
    x, w = torch.randn(4, 16, 12, 12), torch.randn(4, 8)
    with torch.no_grad():
        for m in (conv, plain):
            m.affine.weight.mul_(0.3)
        y = conv(x, w)
        conv.affine.weight.mul_(10), conv.affine.bias.mul_(10)  # every style 10x larger
        assert torch.allclose(conv(x, w), y, atol=1e-4)  # demodulated: the same maps
        assert 0.7 < y[:, :, 1:-1, 1:-1].std().item() < 1.3  # unit scale inside the border
        plain.affine.weight.mul_(10), plain.affine.bias.mul_(10)
        assert not torch.allclose(plain(x, w), y, atol=1e-2)  # without demodulation the scale passes through


def test_drawing_uses_fixed_noise_and_training_fresh_noise():
    G = tiny_style()
    z, y = torch.randn(3, G.z_dim), torch.tensor([[0, 1], [1, 2], [0, 0]])
    for layer in G.layers:
        layer.noise_strength.data.fill_(0.5)  # noise matters (it starts at 0)
    G.eval()
    with torch.no_grad():
        a, b = G(z, y), G(z, y)
    assert torch.equal(a, b) and a.shape == (3, 3, 32, 32) and a.abs().max() <= 1
    G.train()
    with torch.no_grad():
        assert not torch.allclose(G(z, y), G(z, y))


def test_labels_steer_the_style_and_soft_labels_equal_one_hots():
    G = tiny_style().eval()
    z = torch.randn(2, G.z_dim)
    y = torch.tensor([[0, 1], [0, 1]])
    with torch.no_grad():
        assert not torch.allclose(G(z, y), G(z, torch.tensor([[1, 2], [1, 2]])))
        assert torch.allclose(G(z, y), G(z, soft_labels(y, VOCAB.sizes)), atol=1e-5)  # what walks use


def test_style_mixing_takes_coarse_layers_from_one_noise_and_fine_from_the_other():
    G = tiny_style().eval()
    za, zb, y = torch.randn(2, G.z_dim), torch.randn(2, G.z_dim), torch.tensor([[0, 0], [1, 1]])
    with torch.no_grad():
        assert torch.allclose(G(za, y, w=G.mix_styles(za, zb, y, crossover=G.num_styles)), G(za, y))
        assert torch.allclose(G(za, y, w=G.mix_styles(za, zb, y, crossover=0)), G(zb, y))
        mixed = G(za, y, w=G.mix_styles(za, zb, y, crossover=3))
    assert not torch.allclose(mixed, G(za, y)) and not torch.allclose(mixed, G(zb, y))


def test_the_style_generator_refuses_what_it_does_not_have():
    from heroportraits.training.config import ConfigError

    for bad, match in (({"model.g_cond": "cbn"}, "g_cond"), ({"model.output": "palette"}, "output"),
                       ({"model.g_sle": True}, "g_sle")):  # fmt: skip
        with pytest.raises(ConfigError, match=f"model.arch=style.*{match}"):
            resolve_config("smoke", {"model.arch": "style", **bad})
