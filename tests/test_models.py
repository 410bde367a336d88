"""Architectures and conditioning: shapes, spectral norm, projection, CBN, palette OFF."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from heroportraits.data.attributes import Vocabulary
from heroportraits.models import build_models, network_resolution
from heroportraits.models.layers import ClassifierHead, ConditionalBatchNorm2d, ProjectionHead, apply_spectral_norm
from heroportraits.training.config import ModelConfig

# Palette gets 11 values so its tables (11 + 1 rows) are recognisable by shape.
VOCAB = Vocabulary({"gender": ["m", "f"], "hero_class": ["a", "b", "c", "d"], "palette": [f"p{i}" for i in range(11)]})
PALETTE_ROWS = 12


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


def tiny(**kw) -> ModelConfig:
    return ModelConfig(**{"g_width": 4, "d_width": 4, "z_dim": 8, "embed_dim": 3, **kw})


def labels(n: int, vocab: Vocabulary = VOCAB, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, s, (n,), generator=g) for s in vocab.sizes], 1)


COMBOS = list(itertools.product(["dcgan", "resnet"], ["concat", "cbn", "concat+cbn"], ["concat", "projection"]))


@pytest.mark.parametrize("arch,g_cond,d_cond", COMBOS)
def test_every_combination_builds_and_has_right_shapes(arch, g_cond, d_cond):
    for sn in (False, True):
        G, D = build_models(
            tiny(arch=arch, g_cond=g_cond, d_cond=d_cond, d_spectral_norm=sn, g_spectral_norm=sn), VOCAB, 16
        )
        y = labels(5)
        y[0] = torch.tensor(VOCAB.sizes)  # the "unspecified" row of every table exists
        x = G(torch.randn(5, 8), y)
        assert x.shape == (5, 3, 16, 16) and x.abs().max() <= 1
        out = D(x, y)
        assert out.shape == (5,) and torch.isfinite(out).all()


def test_unknown_arch_is_a_clear_error():
    with pytest.raises(ValueError, match="model.arch"):
        build_models(tiny(arch="transformer"), VOCAB, 16)


def test_native_grid_resolution():
    assert network_resolution(tiny(native_grid=True), 64, 2) == 32
    assert network_resolution(tiny(native_grid=False), 64, 2) == 64
    assert network_resolution(tiny(native_grid=True), 64, 1) == 64


def _matrix(module: nn.Module) -> torch.Tensor:
    w = module.weight  # the normalised weight (parametrized)
    if isinstance(module, nn.ConvTranspose2d):
        w = w.transpose(0, 1)
    return w.flatten(1)


def test_spectral_norm_keeps_top_singular_value_near_one():
    torch.manual_seed(0)
    lin = nn.Linear(20, 30)
    with torch.no_grad():
        lin.weight.mul_(10)
    raw = torch.linalg.matrix_norm(lin.weight.detach(), 2)
    apply_spectral_norm(lin)
    for _ in range(30):  # one power iteration per training forward
        lin(torch.randn(2, 20))
    sigma = torch.linalg.matrix_norm(lin.weight.detach(), 2)
    assert raw > 5 and abs(sigma.item() - 1) < 0.02


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_spectral_norm_in_built_networks(arch):
    torch.manual_seed(0)
    G, D = build_models(tiny(arch=arch, d_cond="projection", d_spectral_norm=True, g_spectral_norm=True), VOCAB, 16)
    for _ in range(40):
        D(torch.randn(4, 3, 16, 16), labels(4))
        G(torch.randn(4, 8), labels(4))
    normed = [m for m in (*D.modules(), *G.modules()) if hasattr(m, "parametrizations")]
    for kind in (nn.Conv2d, nn.Linear, nn.Embedding):  # embeddings: the projection tables
        assert any(isinstance(m, kind) for m in normed), kind
    for m in normed:
        sigma = torch.linalg.matrix_norm(_matrix(m).detach(), 2).item()
        assert abs(sigma - 1) < 0.05, (type(m), sigma)
    if arch == "dcgan":  # spectral norm replaces D's batch-norm
        assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())


def test_spectral_norm_off_by_default():
    G, D = build_models(tiny(), VOCAB, 16)
    assert not any(hasattr(m, "parametrizations") for m in (*G.modules(), *D.modules()))


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_projection_discriminator_output_depends_on_each_label(arch):
    torch.manual_seed(0)
    _, D = build_models(tiny(arch=arch, d_cond="projection"), VOCAB, 16)
    D.eval()
    x = torch.randn(3, 3, 16, 16)
    y = labels(3)
    base = D(x, y)
    for a in range(len(VOCAB.sizes)):
        y2 = y.clone()
        y2[:, a] = (y2[:, a] + 1) % VOCAB.sizes[a]
        assert (D(x, y2) - base).abs().min() > 1e-6, f"attribute {a} does not change D's output"
    # The label enters only through the projection term: zero it and the label is ignored.
    with torch.no_grad():
        for t in D.proj.tables:
            t.weight.zero_()
    assert torch.allclose(D(x, y), D(x, (y + 1) % torch.tensor(VOCAB.sizes)))


def test_projection_head_is_sum_of_inner_products():
    head = ProjectionHead(6, VOCAB)
    phi, y = torch.randn(4, 6), labels(4)
    expected = sum((head.tables[a].weight[y[:, a]] * phi).sum(1) for a in range(3))
    assert torch.allclose(head(phi, y), expected)


def test_conditional_batchnorm_starts_as_batchnorm_and_learns_per_label_gain():
    cbn = ConditionalBatchNorm2d(5, VOCAB)
    x, y = torch.randn(6, 5, 4, 4), labels(6)
    assert torch.allclose(cbn(x, y), nn.functional.batch_norm(x, None, None, training=True), atol=1e-5)
    with torch.no_grad():
        cbn.gain[1].weight[y[0, 1]] += 1.0  # class of sample 0 doubles its gain
    out = cbn(x, y)
    h = nn.functional.batch_norm(x, None, None, training=True)
    assert torch.allclose(out[0], 2 * h[0], atol=1e-5)


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_cbn_generator_output_depends_on_label_without_concat(arch):
    torch.manual_seed(0)
    G, _ = build_models(tiny(arch=arch, g_cond="cbn"), VOCAB, 16)
    assert G.embed is None  # z alone enters; labels only through the norms
    for m in G.modules():
        if isinstance(m, ConditionalBatchNorm2d):
            for t in (*m.gain, *m.bias):
                nn.init.normal_(t.weight, std=0.5)
    G.train()
    z = torch.randn(4, 8)
    y = labels(4)
    y2 = y.clone()
    y2[:, 1] = (y2[:, 1] + 1) % 4
    assert not torch.allclose(G(z, y), G(z, y2))


@pytest.mark.parametrize("arch,g_cond,d_cond", COMBOS)
def test_palette_off_models_have_no_palette_parameters(arch, g_cond, d_cond):
    def palette_shaped(model):
        return [n for n, p in model.named_parameters() if PALETTE_ROWS in p.shape]

    on = build_models(tiny(arch=arch, g_cond=g_cond, d_cond=d_cond, use_palette=True, embed_dim=3), VOCAB, 16)
    off = build_models(tiny(arch=arch, g_cond=g_cond, d_cond=d_cond, use_palette=False, embed_dim=3), VOCAB, 16)
    assert palette_shaped(on[0]) and palette_shaped(on[1])  # the check can see palette tables
    for model in off:
        assert palette_shaped(model) == []
        assert all("palette" not in getattr(m, "names", []) for m in model.modules())
        n_on = sum(p.numel() for p in on[list(off).index(model)].parameters())
        assert sum(p.numel() for p in model.parameters()) < n_on
    # Palette-OFF nets take labels without the palette column.
    x = off[0](torch.randn(2, 8), labels(2)[:, :2])
    assert off[1](x, labels(2)[:, :2]).shape == (2,)


def test_unknown_conditioning_is_a_clear_error():
    for field in ("g_cond", "d_cond"):
        with pytest.raises(ValueError, match=f"model.{field}"):
            build_models(tiny(**{field: "concatenate"}), VOCAB, 16)


@pytest.mark.parametrize("arch,g_cond,d_cond", COMBOS)
def test_palette_off_on_palette_only_data_is_unconditional(arch, g_cond, d_cond):
    vocab = Vocabulary({"palette": ["p0", "p1", "p2"]})
    G, D = build_models(tiny(arch=arch, g_cond=g_cond, d_cond=d_cond, use_palette=False), vocab, 8)
    y = torch.zeros(3, 0, dtype=torch.long)
    x = G(torch.randn(3, 8), y)
    assert x.shape == (3, 3, 8, 8) and D(x, y).shape == (3,)


def test_minibatch_stddev_sees_a_collapsed_group():
    from heroportraits.models.layers import minibatch_stddev

    varied = torch.randn(8, 5, 4, 4)
    collapsed = varied[:1].repeat(8, 1, 1, 1)  # one portrait drawn 8 times
    out_varied, out_collapsed = minibatch_stddev(varied, 4), minibatch_stddev(collapsed, 4)
    assert out_varied.shape == (8, 6, 4, 4) and torch.equal(out_varied[:, :5], varied)
    assert out_collapsed[:, 5].abs().max() < 1e-3  # no spread: D can tell
    assert out_varied[:, 5].min() > 0.5  # unit-variance features: std ~ 1
    # each group (samples i, i + 2, i + 4, i + 6) gets its own statistic, constant over the map
    assert torch.allclose(out_varied[0, 5], out_varied[2, 5]) and not torch.allclose(out_varied[0, 5], out_varied[1, 5])
    assert minibatch_stddev(torch.randn(6, 5, 4, 4), 4).shape == (6, 6, 4, 4)  # 4 does not divide 6: one group


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_discriminator_with_minibatch_stddev_builds_and_backpropagates(arch):
    cfg = ModelConfig(arch=arch, g_width=8, d_width=8, z_dim=8, embed_dim=4, d_cond="projection", d_mbstd=4)
    G, D = build_models(cfg, VOCAB, 16)
    labels = torch.zeros(8, len(VOCAB.names), dtype=torch.long)
    D(G(torch.randn(8, 8), labels), labels).sum().backward()
    assert all(p.grad is not None for p in G.parameters() if p.requires_grad)


def test_every_architecture_name_has_networks_and_no_more():
    from heroportraits.models import ARCHITECTURES
    from heroportraits.training.config import CHOICES
    from heroportraits.training.losses import LOSSES

    assert sorted(ARCHITECTURES) == sorted(CHOICES["model.arch"])
    assert sorted(LOSSES) == sorted(CHOICES["train.loss"])


# ------------------------------------------------------------------ auxiliary classifier (AC-GAN)
@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_d_classifier_learns_to_name_the_labels_of_a_fixed_batch(arch):
    """D's heads start near chance and learn the attributes of images that show them; the GAN logits are
    what they were without `classify`."""
    torch.manual_seed(0)
    _, D = build_models(tiny(arch=arch, d_cond="projection", d_classify=1.0, d_spectral_norm=True), VOCAB, 16)
    y = labels(24)
    x = torch.zeros(24, 3, 16, 16)
    for a in range(3):  # each attribute's value painted into its own band of rows
        x[:, a] = (y[:, a].float() / (VOCAB.sizes[a] - 1))[:, None, None] * 2 - 1
    D.eval()  # no power iteration between the two calls
    logits, extras = D(x, y, classify=True)
    assert torch.equal(D(x, y), logits) and set(extras) == {"class"}
    D.train()
    opt = torch.optim.Adam(D.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        _, extras = D(x, y, classify=True)
        opt.zero_grad()
        extras["class"].backward()
        opt.step()
        losses.append(extras["class"].item())
    assert losses[-1] < 0.3 * losses[0], losses
    with torch.no_grad():
        named = [head.argmax(1) for head in D.classifier.logits(d_features(D, x, y))]
    accuracy = [(named[a] == y[:, a]).float().mean().item() for a in range(3)]
    assert min(accuracy) > 0.75, accuracy  # chance: 0.5, 0.25, 0.09


def d_features(D, x, y):
    """phi, the features D's heads read, caught on their way in."""
    seen = []
    hook = D.classifier.heads[0].register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    D(x, y, classify=True)
    hook.remove()
    return seen[0]


def test_d_classifier_leaves_out_unspecified_labels():
    head = ClassifierHead(5, VOCAB)
    phi = torch.randn(4, 5)
    y = labels(4)
    unspecified = torch.tensor(VOCAB.sizes).expand(4, -1)
    assert head.loss(phi, unspecified).item() == 0.0  # nothing named: no loss, no NaN
    mixed = y.clone()
    mixed[:, 1] = VOCAB.sizes[1]  # hero_class unspecified everywhere: only gender and palette count
    only = [nn.functional.cross_entropy(h(phi), y[:, a], reduction="sum") for a, h in enumerate(head.heads) if a != 1]
    assert head.loss(phi, mixed).item() == pytest.approx((sum(only) / 8).item(), rel=1e-5)


def test_d_classifier_off_by_default():
    for arch in ("dcgan", "resnet"):
        _, D = build_models(tiny(arch=arch), VOCAB, 16)
        assert D.classifier is None and not any("classifier" in k for k in D.state_dict())
