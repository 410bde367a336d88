"""The flow family: it learns a tiny image set, draws it back, and its guidance does what guidance promises."""

from __future__ import annotations

import pytest
import torch

from heroportraits.data.attributes import Vocabulary
from heroportraits.models import build_generator
from heroportraits.models.config import DrawOptions
from heroportraits.models.precision import native_bf16
from heroportraits.training.config import ConfigError, check_drawing
from heroportraits.training.flow_trainer import FlowTrainer
from heroportraits.training.presets import resolve_config

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread

VOCAB = Vocabulary({"hero_class": ["a", "b", "c", "d"]})
RES = 8


def class_images() -> torch.Tensor:
    """The four classes' images (4, 3, 8, 8) in [-1, 1]: flat colours with a class-specific bar, all distinct."""
    colours = torch.tensor([[0.8, -0.6, -0.6], [-0.6, 0.8, -0.6], [-0.6, -0.6, 0.8], [0.7, 0.7, -0.7]])
    images = colours[:, :, None, None].expand(4, 3, RES, RES).clone()
    for c in range(4):
        images[c, :, 2 * c : 2 * c + 2, :] = -1.0  # a dark bar in row pair c
    return images


def trained_flow(steps: int, attr_dropout: float = 0.25, seed: int = 0) -> tuple[FlowTrainer, list[float]]:
    """A small flow model trained on the four class images; returns it and its loss every step."""
    cfg = resolve_config(
        "smoke",
        {
            "model.arch": "unet",
            "model.g_width": 16,
            "model.embed_dim": 8,
            "model.flow_blocks": 1,
            "train.g_lr": 2e-3,
            "train.g_betas": (0.9, 0.99),
            "train.batch_size": 32,
            "train.attr_dropout": attr_dropout,
            "train.ema_decay": 0.0,  # the EMA copy is the model: what is measured is what was trained
            "train.device": "cpu",
        },
    )
    torch.manual_seed(seed)
    G = build_generator(cfg.model, VOCAB, RES)
    gen = torch.Generator().manual_seed(seed)
    trainer = FlowTrainer(G, cfg, VOCAB, gen)
    images = class_images()

    def next_batch():
        y = torch.randint(0, 4, (32,), generator=gen)
        return images[y], y[:, None]

    losses = [float(trainer.step(next_batch)["loss"]) for _ in range(steps)]
    return trainer, losses


def draw(
    G, labels: torch.Tensor, steps: int, guidance: float = 1.0, solver: str = "euler", seed: int = 1, interval=(0, 1)
):
    G.eval()
    G.steps, G.solver, G.guidance = steps, solver, guidance
    G.guidance_from, G.guidance_until = interval
    z = torch.randn(len(labels), G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G(z, labels[:, None])


def nearest_class(x: torch.Tensor) -> torch.Tensor:
    """Each image's nearest class image (mean absolute distance) -> (N,) class, and that distance."""
    d = (x[:, None] - class_images()[None]).abs().mean((2, 3, 4))
    return d.min(1)


@pytest.fixture(scope="module")
def learned():
    return trained_flow(steps=300)


def test_loss_falls_and_the_sampler_draws_the_training_images_back(learned):
    trainer, losses = learned
    assert sum(losses[-20:]) / 20 < 0.25 * sum(losses[:20]) / 20, (losses[:3], losses[-3:])  # measured: 1.24 -> 0.15
    labels = torch.arange(4).repeat(8)
    for solver in ("euler", "heun"):  # 8 noises a class, each drawn back to its class's image (measured ~0.10)
        x = draw(trainer.G_ema, labels, steps=24, solver=solver)
        distance, cls = nearest_class(x)
        assert (cls == labels).float().mean() >= 0.95, solver
        assert distance.mean() < 0.15, f"{solver}: mean distance {distance.mean():.3f} to the nearest training image"


def test_guidance_zero_draws_the_unconditional_model():
    trainer, _ = trained_flow(steps=5)
    G = trainer.G_ema
    labels = torch.arange(4).repeat(2)
    unconditional = torch.full_like(labels, VOCAB.sizes[0])  # "any"
    assert torch.allclose(draw(G, labels, 4, guidance=0.0), draw(G, unconditional, 4, guidance=1.0), atol=1e-5)
    assert not torch.allclose(draw(G, labels, 4, guidance=2.0), draw(G, labels, 4, guidance=1.0), atol=1e-3)


def test_higher_guidance_draws_the_asked_class_more_often():
    trainer, _ = trained_flow(steps=20, attr_dropout=0.5)  # barely trained: conditioning still weak
    labels = torch.arange(4).repeat(32)
    accuracy = {}
    for w in (0.0, 1.0, 2.0, 4.0):
        _, cls = nearest_class(draw(trainer.G_ema, labels, steps=12, guidance=w))
        accuracy[w] = (cls == labels).float().mean().item()
    # measured: 0.25 (unconditional: chance), 0.64, 0.81, 0.95
    assert accuracy[0.0] < 0.4 and accuracy[1.0] + 0.1 < accuracy[2.0] < accuracy[4.0], accuracy


def test_the_solver_in_bf16_draws_what_float32_draws(learned):
    """draw.bf16: each velocity pass under bf16 autocast where the CPU computes bf16 natively (float32 elsewhere),
    the steps added up in float32; each noise lands on the same training image, the portraits a little apart."""
    G = learned[0].G_ema
    labels = torch.arange(4).repeat(8)
    full = draw(G, labels, steps=8, solver="heun")
    G.bf16 = True
    try:
        half = draw(G, labels, steps=8, solver="heun")
    finally:
        G.bf16 = False
    assert half.dtype == torch.float32
    if native_bf16(torch.device("cpu")):
        gap = (half - full).abs()
        assert 0 < gap.mean() < 0.02, f"mean gap {gap.mean():.4f}"  # measured 0.0014 (AMD EPYC, AVX512-BF16)
        assert torch.equal(nearest_class(half)[1], nearest_class(full)[1])
    else:
        assert torch.equal(half, full)
    assert DrawOptions(flow_steps=8, bf16=True).describe(flow=True).startswith("8 Heun steps in bf16")
    fallback = DrawOptions(flow_steps=8, bf16=True).describe(flow=True, bf16_native=False)  # what a CPU without it says
    assert fallback.startswith("8 Heun steps in float32 (bf16 asked, not native here)"), fallback


def test_guidance_applies_only_on_the_passes_inside_its_interval(monkeypatch):
    """draw.guidance_from / guidance_until: the passes at t in [from, until) are guided (a doubled batch), the
    others are one conditional pass; an interval holding every pass draws what plain guidance draws, one holding
    none what guidance 1 draws."""
    trainer, _ = trained_flow(steps=5)
    G = trainer.G_ema
    labels = torch.arange(4).repeat(2)
    batches = []
    net = G.net.forward
    monkeypatch.setattr(G.net, "forward", lambda x, t, y: batches.append((float(t[0]), len(x))) or net(x, t, y))
    draw(G, labels, 4, guidance=2.0, solver="heun", interval=(0.0, 0.5))
    # Heun, 4 steps: passes at t = 0, .25 | .25, .5 | .5, .75 | .75 (the last step is Euler's)
    assert batches == [(0.0, 16), (0.25, 16), (0.25, 16), (0.5, 8), (0.5, 8), (0.75, 8), (0.75, 8)]
    everywhere = draw(G, labels, 4, guidance=2.0, interval=(0.0, 1.0))
    assert torch.equal(draw(G, labels, 4, guidance=2.0), everywhere)
    nowhere = draw(G, labels, 4, guidance=2.0, interval=(0.9, 1.0))  # Euler's passes: t = 0, .25, .5, .75
    assert torch.equal(nowhere, draw(G, labels, 4, guidance=1.0))
    early = draw(G, labels, 4, guidance=2.0, interval=(0.0, 0.5))
    assert not torch.allclose(early, everywhere, atol=1e-4) and not torch.allclose(early, nowhere, atol=1e-4)
    described = DrawOptions(flow_steps=8, guidance=2, guidance_until=0.5).describe(flow=True)
    assert described.startswith("8 Heun steps, guidance 2 for t in [0, 0.5)")


def test_guidance_on_some_attributes_keeps_the_others_as_asked_in_its_free_pass():
    """draw.guidance_on: the free pass leaves only the named attributes open (indices and soft labels alike),
    naming every attribute is plain guidance, a name the model lacks is refused in one line."""
    from heroportraits.models.flow import GuidanceError

    two = Vocabulary({"gender": ["m", "f"], "hero_class": ["a", "b", "c", "d"]})
    cfg = resolve_config("smoke", {"model.arch": "unet", "model.g_width": 16, "model.embed_dim": 8})
    G = build_generator(cfg.model, two, RES).eval()
    with torch.no_grad():  # weights at random everywhere (a new U-Net's last layers start at zero): labels matter
        for w in G.parameters():
            w.normal_(0, 0.2, generator=torch.Generator().manual_seed(w.numel()))
    labels = torch.tensor([[0, 1], [1, 3]])
    G.use_drawing(DrawOptions(guidance=2, guidance_on="hero_class"))
    assert torch.equal(G._unconditional(labels), torch.tensor([[0, 4], [1, 4]]))  # 4: hero_class "any"
    soft = torch.nn.functional.one_hot(labels, 5).float()
    assert torch.equal(G._unconditional(soft).argmax(-1), torch.tensor([[0, 4], [1, 4]]))
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        G.use_drawing(DrawOptions(flow_steps=2, guidance=2, guidance_on="gender, hero_class"))
        named = G(z, labels)
        G.use_drawing(DrawOptions(flow_steps=2, guidance=2))
        assert torch.equal(named, G(z, labels))
        G.use_drawing(DrawOptions(flow_steps=2, guidance=2, guidance_on="gender"))
        assert not torch.allclose(named, G(z, labels), atol=1e-5)
    with pytest.raises(GuidanceError, match=r"no attribute 'palette'; name some of \['gender', 'hero_class'\]"):
        G.use_drawing(DrawOptions(guidance=2, guidance_on="palette"))
    with pytest.raises(GuidanceError, match=r"'strong' is no scale; write hero_class=1.5"):
        G.use_drawing(DrawOptions(guidance=2, guidance_on="hero_class=strong"))
    # A scale per attribute: one free pass per attribute, each opening that attribute alone; with one attribute it
    # is that attribute's plain guidance, and scale 1 on an attribute leaves it out.
    with torch.no_grad():
        G.use_drawing(DrawOptions(flow_steps=2, guidance=2, guidance_on="gender=1.5,hero_class=3"))
        assert G.attribute_scales == [1.5, 3.0]
        assert torch.equal(G._unconditional(labels), torch.tensor([[2, 1], [2, 3], [0, 4], [1, 4]]))
        composed = G(z, labels)
        G.use_drawing(DrawOptions(flow_steps=2, guidance=3, guidance_on="hero_class=3"))
        alone = G(z, labels)
        G.use_drawing(DrawOptions(flow_steps=2, guidance=3, guidance_on="hero_class"))
        assert torch.allclose(alone, G(z, labels), atol=1e-5)
        G.use_drawing(DrawOptions(flow_steps=2, guidance=2, guidance_on="gender=1,hero_class=3"))
        assert torch.allclose(alone, G(z, labels), atol=1e-5)
        assert not torch.allclose(composed, alone, atol=1e-4)
    assert (
        DrawOptions(flow_steps=6, guidance=2, guidance_on="palette", guidance_until=0.5)
        .describe(flow=True)
        .startswith("6 Heun steps, guidance 2 on palette for t in [0, 0.5)")
    )
    with pytest.raises(
        ConfigError, match=r"--guidance-on palette\) says where or on what guidance applies, and guidance is off"
    ):
        check_drawing(DrawOptions(guidance_on="palette"), cfg.model, given={"guidance_on"})


def test_a_guidance_interval_that_cannot_apply_is_refused_in_words():
    flow = resolve_config("flow_unet")
    gan = resolve_config("smoke")
    with pytest.raises(ConfigError, match=r"leave no time to guide"):
        check_drawing(DrawOptions(guidance=2, guidance_from=0.5, guidance_until=0.5), flow.model)
    with pytest.raises(ConfigError, match=r"guidance is off \(draw.guidance=1\): add --guidance W"):
        check_drawing(DrawOptions(guidance_until=0.5), flow.model, given={"guidance_until"})
    with pytest.raises(ConfigError, match=r"--guidance-until 0.5\) says how a flow model draws, and this is a GAN"):
        check_drawing(DrawOptions(guidance_until=0.5), gan.model)
    with pytest.raises(ConfigError, match=r"draw.guidance_until=1.5 .* must be in \[0, 1\]"):
        check_drawing(DrawOptions(guidance=2, guidance_until=1.5), flow.model)
    assert check_drawing(DrawOptions(guidance=2, guidance_until=0.5), flow.model, {"guidance_until"}).guidance == 2


def test_a_width_the_unet_cannot_normalise_is_refused_in_words():
    with pytest.raises(ConfigError, match=r"model.g_width=6: the flow U-Net's levels have 6, 12, 24 channels"):
        resolve_config("flow_unet", {"model.g_width": 6})
    assert resolve_config("flow_unet", {"model.g_width": 24}).model.g_width == 24


def test_a_channels_last_drawing_draws_the_plain_layouts_portraits(smoke_checkpoint):
    """draw.channels_last: the sampler's network in channels-last memory while it draws, the same portraits up to
    float rounding (unquantised: k-means would turn a last-bit difference into another colour), the plain layout
    again when a drawing turns it off; a GAN refuses it (it says how a flow model draws)."""
    from heroportraits.sampling.sampler import Sampler

    ckpt = smoke_checkpoint(**{"model.arch": "unet", "train.attr_dropout": 0.1, "draw.flow_steps": 2})
    sampler = Sampler.from_checkpoint(ckpt)
    weight = lambda: sampler.G.net.stem.weight  # noqa: E731 (the parameter as the sampler's G holds it now)
    labels = sampler.draw_conditions(5, seed=0, open_attributes="mix")
    plain = sampler.generate_from_labels(labels, seed=3).astype(int)
    with sampler.drawn_with({"channels_last": True}) as drawing:
        assert weight().is_contiguous(memory_format=torch.channels_last) and not weight().is_contiguous()
        nhwc = sampler.generate_from_labels(labels, seed=3).astype(int)
        assert drawing.describe(flow=True).startswith("2 Heun steps, channels-last")
    assert weight().is_contiguous()
    assert abs(plain - nhwc).max() <= 1 and (plain == nhwc).mean() > 0.99
    with pytest.raises(ConfigError, match=r"\(--channels-last\) says how a flow model draws, and this is a GAN"):
        check_drawing(DrawOptions(channels_last=True), resolve_config("smoke").model)
