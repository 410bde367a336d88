"""Palette output and the FastGAN parts at the network level: palette samples hold only palette
colours, the relaxations behave as documented, tau follows its schedule, SLE gates respond to
their input, D's decoders rebuild the real images they are trained on."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from heroportraits.data.attributes import Vocabulary
from heroportraits.data.oklab import delta_e, rgb_to_oklab, unit_rgb_to_oklab
from heroportraits.models import build_models, to_pixels
from heroportraits.models.fastgan import FastGANError, SkipExcitation, SkipExcitations, quarter
from heroportraits.models.palette_output import (
    PaletteConfigError,
    PaletteOutput,
    merge_close_colours,
    palette_tau,
    set_palette_merge,
    set_tau,
)
from heroportraits.training.config import ModelConfig

VOCAB = Vocabulary({"gender": ["m", "f"], "hero_class": ["a", "b", "c", "d"], "palette": ["p0", "p1", "p2"]})
DATASET_PALETTE = np.array([[0, 0, 0], [255, 255, 255], [200, 40, 40], [40, 170, 60], [50, 70, 210]], np.uint8)

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


def uint8(x: torch.Tensor) -> np.ndarray:
    """Images (N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8, as sampling converts them."""
    return to_pixels(x, x.shape[-1]).numpy()


def tiny(**kw) -> ModelConfig:
    return ModelConfig(**{"g_width": 4, "d_width": 4, "z_dim": 8, "embed_dim": 3, "output": "palette", **kw})


def labels(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, s, (n,), generator=g) for s in VOCAB.sizes], 1)


def colours_per_image(x: torch.Tensor) -> list[set]:
    return [set(map(tuple, img.reshape(-1, 3).tolist())) for img in uint8(x)]


COMBOS = list(itertools.product(["dcgan", "resnet"], ["concat", "cbn", "concat+cbn"], ["portrait", "dataset"]))


@pytest.mark.parametrize("arch,g_cond,source", COMBOS)
def test_palette_samples_hold_only_palette_colours(arch, g_cond, source):
    """Eval mode (the EMA generator, `sample`): each pixel one palette colour, at most K per portrait;
    with the dataset palette, only its colours, exactly."""
    torch.manual_seed(0)
    cfg = tiny(arch=arch, g_cond=g_cond, palette_source=source, palette_k=len(DATASET_PALETTE))
    G, _ = build_models(cfg, VOCAB, 16, palette=DATASET_PALETTE)
    G.eval()
    z, y = torch.randn(12, 8) * 3, labels(12)
    with torch.no_grad():
        x = G(z, y)
        k = G.out.channels
        assert k == len(DATASET_PALETTE) and G.to_rgb.out_channels == k
        palettes = uint8(G.out.colours(z, y).transpose(1, 2)[..., None])  # (N, K, 1, 3)
    used = colours_per_image(x)
    assert all(len(c) <= k for c in used)
    assert max(len(c) for c in used) > 1  # the logits choose; not one flat colour
    for img_colours, palette in zip(used, palettes):
        assert img_colours <= set(map(tuple, palette.reshape(-1, 3).tolist()))
    if source == "dataset":
        assert set().union(*used) <= set(map(tuple, DATASET_PALETTE.tolist()))
    else:  # per-portrait palettes differ from portrait to portrait (they come from z and the labels)
        assert len({tuple(map(tuple, p.reshape(-1, 3).tolist())) for p in palettes}) > 1


def test_training_mode_mixes_and_eval_mode_picks():
    torch.manual_seed(0)
    out = PaletteOutput(tiny(palette_source="dataset"), VOCAB, DATASET_PALETTE)
    logits = torch.randn(2, 5, 4, 4)
    z, y = torch.zeros(2, 8), labels(2)
    palette = torch.tensor(DATASET_PALETTE, dtype=torch.float32) / 127.5 - 1
    out.eval()
    hard = out(logits, z, y)
    assert torch.equal(hard, palette[logits.argmax(1)].permute(0, 3, 1, 2))
    out.train()
    set_tau(out, 0.5)
    soft = out(logits, z, y)
    expected = torch.einsum("nkhw,kc->nchw", torch.softmax(logits / 0.5, 1), palette)
    assert torch.allclose(soft, expected, atol=1e-6)
    set_tau(out, 1e-3)  # a cold softmax is the argmax choice
    assert torch.allclose(out(logits, z, y), hard, atol=1e-4)


def test_straight_through_is_hard_forward_with_the_soft_gradient():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 4, 4, requires_grad=True)
    z, y = torch.zeros(2, 8), labels(2)
    straight = PaletteOutput(tiny(palette_source="dataset", palette_mix="straight"), VOCAB, DATASET_PALETTE)
    soft = PaletteOutput(tiny(palette_source="dataset", palette_mix="soft"), VOCAB, DATASET_PALETTE)
    x = straight(logits, z, y)
    assert torch.equal(x.detach(), straight.eval()(logits, z, y))  # forward: the argmax colours
    (g_straight,) = torch.autograd.grad(x.sum(), logits)
    (g_soft,) = torch.autograd.grad(soft(logits, z, y).sum(), logits)
    assert torch.allclose(g_straight, g_soft) and g_soft.abs().sum() > 0


def test_gumbel_noise_comes_from_the_generator_it_is_given():
    out = PaletteOutput(tiny(palette_source="dataset", palette_mix="gumbel"), VOCAB, DATASET_PALETTE)
    logits, z, y = torch.zeros(3, 5, 4, 4), torch.zeros(3, 8), labels(3)
    draws = []
    for _ in range(2):
        out.generator = torch.Generator().manual_seed(7)
        draws.append(out(logits, z, y))
    assert torch.equal(draws[0], draws[1])
    assert draws[0].flatten(1).std(1).min() > 0  # equal logits, yet the noise picks different colours


def test_tau_follows_its_schedule():
    assert palette_tau(0, 100, 1.0, 0.01) == pytest.approx(1.0)
    assert palette_tau(50, 100, 1.0, 0.01) == pytest.approx(0.1)  # geometric: halfway in log
    assert palette_tau(100, 100, 1.0, 0.01) == pytest.approx(0.01)
    assert palette_tau(500, 100, 1.0, 0.01) == pytest.approx(0.01)  # held after the schedule
    assert palette_tau(25, 100, 1.0, 0.2, "linear") == pytest.approx(0.8)
    taus = [palette_tau(s, 10, 2.0, 0.5) for s in range(11)]
    assert all(a > b for a, b in zip(taus, taus[1:]))
    ratios = [b / a for a, b in zip(taus, taus[1:])]
    assert max(ratios) == pytest.approx(min(ratios))  # equal ratio per step


def test_tau_is_a_buffer_in_the_state_dict():
    G, _ = build_models(tiny(), VOCAB, 16)
    set_tau(G, 0.25)
    state = G.state_dict()
    assert state["out.tau"].item() == 0.25
    fresh, _ = build_models(tiny(), VOCAB, 16)
    fresh.load_state_dict(state)
    assert fresh.out.tau.item() == 0.25


def test_dataset_palette_is_required_and_carried_by_the_state_dict():
    with pytest.raises(PaletteConfigError, match="python -m heroportraits palette"):
        build_models(tiny(palette_source="dataset"), VOCAB, 16)
    G, _ = build_models(tiny(palette_source="dataset"), VOCAB, 16, palette=DATASET_PALETTE)
    assert uint8(G.state_dict()["out.palette"].T[None, :, :, None])[0, :, 0].tolist() == (DATASET_PALETTE.tolist())


def test_rgb_models_keep_their_state_dict_keys():
    """The RGB output layer has no parameters: checkpoints from before the palette option still load."""
    G, _ = build_models(tiny(output="rgb"), VOCAB, 16)
    assert not any(k.startswith("out.") for k in G.state_dict())
    assert "to_rgb.weight" in G.state_dict() and G.to_rgb.out_channels == 3


# ------------------------------------------------------------------ skip-layer excitation
def test_sle_gates_respond_to_their_input():
    torch.manual_seed(0)
    sle = SkipExcitation(low_channels=6, high_channels=5)
    high = torch.ones(2, 5, 16, 16)
    low = torch.randn(2, 6, 4, 4)
    out = sle(high, low)
    gates = out[:, :, 0, 0]  # high is all ones: the output is the gate
    assert ((gates > 0) & (gates < 1)).all()
    assert torch.equal(out, gates[:, :, None, None].expand_as(out))  # one gate per channel
    assert not torch.allclose(gates[0], gates[1])  # the two low maps give two gate sets
    assert not torch.allclose(sle(high, low * -3)[:, :, 0, 0], gates)  # another low map, other gates


@pytest.mark.parametrize("arch,sizes", [("dcgan", [16]), ("resnet", [16, 32])])
def test_sle_in_g_gates_the_native_grid_maps(arch, sizes):
    G, _ = build_models(tiny(arch=arch, output="rgb", g_sle=True), VOCAB, 32)
    assert G.sle.sizes == sizes
    seen = {}
    for size in sizes:  # record each gate's input and output
        G.sle.gates[str(size)].gates.register_forward_hook(lambda m, i, o, s=size: seen.__setitem__(s, o))
    G(torch.randn(3, 8), labels(3))
    assert set(seen) == set(sizes) and all(g.shape[-1] == 1 for g in seen.values())
    plain, _ = build_models(tiny(arch=arch, output="rgb"), VOCAB, 32)
    assert plain.sle is None


def test_sle_refuses_a_grid_without_maps_to_gate():
    with pytest.raises(FastGANError, match="model.g_sle"):
        build_models(tiny(arch="dcgan", g_sle=True), VOCAB, 16)  # DCGAN G's maps at 16: 4, 8 only
    with pytest.raises(FastGANError, match="model.g_sle"):
        SkipExcitations({4: 8, 8: 4})


# ------------------------------------------------------------------ self-supervised D
def test_quarters_tile_the_map():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert quarter(x, 0).flatten().tolist() == [0, 1, 4, 5]
    assert quarter(x, 3).flatten().tolist() == [10, 11, 14, 15]


@pytest.mark.parametrize("arch,d_cond", [("dcgan", "concat"), ("dcgan", "projection"), ("resnet", "projection")])
def test_d_decoders_rebuild_reals_better_with_training(arch, d_cond):
    """The reconstruction loss D adds on reals falls when D and its decoders train on it."""
    torch.manual_seed(0)
    _, D = build_models(tiny(arch=arch, d_cond=d_cond, output="rgb", d_recon=1.0, d_width=8), VOCAB, 32)
    real = torch.rand(8, 3, 32, 32) * 2 - 1
    real[:, :, 8:24, 8:24] = -1  # some structure to rebuild
    y = labels(8)
    logits, extras = D(real, y, part=0)
    assert logits.shape == (8,) and set(extras) == {"recon"} and extras["recon"].ndim == 0
    assert torch.equal(D(real, y), logits)  # without `part`: the logits alone, as before
    opt = torch.optim.Adam(D.parameters(), lr=2e-3)
    losses = []
    for step in range(30):
        loss = D(real, y, part=step % 4)[1]["recon"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4]), losses


def test_d_decoders_need_a_grid_of_16():
    with pytest.raises(FastGANError, match="model.d_recon"):
        build_models(tiny(d_recon=1.0), VOCAB, 8)
    _, D = build_models(tiny(output="rgb"), VOCAB, 16)
    assert D.recon is None  # off by default: no extra parameters


def _unit(rgb) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float32) / 127.5 - 1.0  # uint8-like values -> [-1, 1]


def test_torch_oklab_matches_the_numpy_one():
    rgb = np.random.default_rng(0).integers(0, 256, (50, 3)).astype(np.uint8)
    got = unit_rgb_to_oklab(torch.tensor(rgb, dtype=torch.float64) / 255.0).numpy()
    assert np.allclose(got, rgb_to_oklab(rgb), atol=1e-9)


def test_merge_moves_near_identical_colours_to_the_more_used_one_only():
    """Slots within dE of a more used kept slot take its colour; the rest keep theirs."""
    rgb = np.array([[200, 40, 40], [201, 41, 40], [40, 40, 200], [201, 51, 40], [90, 90, 90]], np.uint8)
    assert delta_e(rgb[0], rgb[1]) < 1.0 < delta_e(rgb[1], rgb[3]) < 2.0 < delta_e(rgb[1], rgb[2])
    colours = _unit(rgb)[None]  # (1, 5, 3)
    # usage: slot 1 most, then 0, 2, 3; slot 4 unused
    index = torch.tensor([1] * 6 + [0] * 4 + [2] * 3 + [3] * 2).reshape(1, 3, 5)
    merged = merge_close_colours(colours, index, delta_e=1.0)[0]
    assert torch.equal(merged[0], colours[0, 1])  # the less used of a near pair takes the other's colour
    assert torch.equal(merged[1], colours[0, 1]) and torch.equal(merged[2], colours[0, 2])
    assert torch.equal(merged[3], colours[0, 3])  # 1.3 dE away: above the threshold, kept
    assert torch.equal(merged[4], colours[0, 4])
    wider = merge_close_colours(colours, index, delta_e=2.0)[0]
    assert torch.equal(wider[3], colours[0, 1])  # now within reach of the most used
    for m in (merged, wider):  # only palette colours come out
        assert {tuple(c) for c in m.tolist()} <= {tuple(c) for c in colours[0].tolist()}


def test_merge_runs_per_portrait():
    rgb = np.array([[10, 10, 10], [11, 11, 11]], np.uint8)
    colours = _unit(rgb)[None].repeat(2, 1, 1)
    index = torch.stack([torch.tensor([0, 0, 0, 1]), torch.tensor([1, 1, 1, 0])]).reshape(2, 2, 2)
    merged = merge_close_colours(colours, index, delta_e=5.0)
    assert torch.equal(merged[0, 1], colours[0, 0]) and torch.equal(merged[1, 0], colours[1, 1])


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_palette_merge_cuts_a_models_colours_and_keeps_them_palette_colours(arch):
    torch.manual_seed(0)
    G, _ = build_models(tiny(arch=arch, palette_k=16), VOCAB, 16)
    G.eval()
    z, y = torch.randn(16, 8) * 3, labels(16)
    with torch.no_grad():
        plain = colours_per_image(G(z, y))
        assert set_palette_merge(G, 30.0) == 1
        merged = colours_per_image(G(z, y))
        set_palette_merge(G, 0.0)
        assert colours_per_image(G(z, y)) == plain  # off again: the same portraits
    assert all(m <= p for m, p in zip(merged, plain))  # merged colours are colours the portrait had
    assert sum(map(len, merged)) < sum(map(len, plain))
    G.train()  # training never merges: D sees what G chose
    with torch.no_grad():
        unmerged = G(z, y)
        set_palette_merge(G, 30.0)
        assert torch.equal(G(z, y), unmerged)
