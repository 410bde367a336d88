"""The study's technique set in the training loop: every preset runs, ADA and LeCam react to
D, instance noise follows its schedule, and two small end-to-end checks that conditioning
works: a 4-class toy set is learnt, and an attribute left unspecified at sampling comes out
in its training mix (attribute dropout)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn
from toys import toy_trainer

from heroportraits.data.attributes import UNSPECIFIED, Vocabulary
from heroportraits.data.dataset import load_dataset, write_dataset
from heroportraits.data.images import nearest_upscale
from heroportraits.models.config import is_flow
from heroportraits.models.flow import FlowGenerator
from heroportraits.models.layers import ConditionalBatchNorm2d
from heroportraits.sampling.sampler import Sampler, most_common_labels
from heroportraits.training.ema import ema_beta
from heroportraits.training.loop import train
from heroportraits.training.presets import PRESETS, resolve_config
from heroportraits.training.setup import setup_training

VOCAB = Vocabulary({"gender": ["m", "f"], "hero_class": ["a", "b", "c", "d"]})


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


class ConstantD(nn.Module):
    """A discriminator that answers `level` (+ a tiny learnable term so G still gets a gradient)."""

    def __init__(self, level: float):
        super().__init__()
        self.level = level
        self.w = nn.Parameter(torch.tensor(1e-3))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.level + self.w * x.flatten(1).mean(1)


# ------------------------------------------------------------------ every preset runs
SMALL = {  # small widths and batch: a preset's other switches run as they are, fast
    "model.g_width": 8,
    "model.d_width": 8,
    "model.z_dim": 16,
    "model.embed_dim": 4,
    "train.batch_size": 8,
    "train.device": "cpu",
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_and_runs_one_training_step(preset, toy_dataset):
    """Each preset's switches, kept as they are, on small widths and a small batch (set up as train() does)."""
    cfg, reference = resolve_config(preset, SMALL), resolve_config(preset)
    resized = {"g_width", "d_width", "z_dim", "embed_dim", "batch_size", "device"}
    for section in ("model", "train"):  # every other switch (regularisers included) as the preset has it
        ours, theirs = dataclasses.asdict(getattr(cfg, section)), dataclasses.asdict(getattr(reference, section))
        assert {k: v for k, v in ours.items() if k not in resized} == {
            k: v for k, v in theirs.items() if k not in resized
        }
    mc, tc = cfg.model, cfg.train
    data = load_dataset(toy_dataset, "train")
    if cfg.draw.palette_check:  # drawn with the palette check: data whose palettes the rules labelled (as LPC's)
        data.meta["prepared"] = {"auto_attributes": ["palette"]}
    s = setup_training(cfg, data, torch.device("cpu"))  # as train() builds a run
    trainer, G, D = s.trainer, s.trainer.G, s.trainer.D
    if is_flow(mc):  # the flow family: a velocity network and its sampler as G, no D
        assert isinstance(G, FlowGenerator) and D is None
        g0 = [p.detach().clone() for p in G.parameters()]
        stats = trainer.step(s.next_batch)
        assert trainer.iteration == 1 and set(stats) == set(trainer.stats)
        assert all(torch.isfinite(v).all() for v in stats.values()), stats
        assert any(not torch.equal(a, b) for a, b in zip(g0, G.parameters())), "G did not update"
        return

    # The built networks are the ones the preset names.
    d_arch = {"style": "dcgan"}.get(mc.arch, mc.arch)  # the style-based G trains against the DCGAN D
    assert type(G).__name__.lower().startswith(mc.arch) and type(D).__name__.lower().startswith(d_arch)
    assert any(hasattr(m, "parametrizations") for m in D.modules()) == mc.d_spectral_norm
    assert any(hasattr(m, "parametrizations") for m in G.modules()) == mc.g_spectral_norm
    assert (D.proj is not None) == (mc.d_cond == "projection")
    assert any(isinstance(m, ConditionalBatchNorm2d) for m in G.modules()) == ("cbn" in mc.g_cond)

    g0 = [p.detach().clone() for p in G.parameters()]
    d0 = [p.detach().clone() for p in D.parameters()]
    noise_used = []
    d_input = trainer.d_input
    trainer.d_input = lambda x, std: noise_used.append(std) or d_input(x, std)
    stats = trainer.step(s.next_batch)
    assert trainer.iteration == 1
    assert all(torch.isfinite(v).all() for v in stats.values()), stats
    assert any(not torch.equal(a, b) for a, b in zip(g0, G.parameters())), "G did not update"
    assert any(not torch.equal(a, b) for a, b in zip(d0, D.parameters())), "D did not update"
    assert (stats["r1"] > 0) == (tc.r1_gamma > 0)  # lazy R1 runs on D update 0
    assert noise_used == [tc.instance_noise_std] * 3  # step 0: the full std (or 0 when off)
    assert trainer.policy == tc.augment.replace(" ", "")  # DiffAugment policy as the preset sets it
    # EMA: one update with the preset's coefficient from the initial weights.
    beta = 0.0 if tc.ema_start > 0 else ema_beta(tc.ema_decay, tc.batch_size, 0, tc.ema_rampup)
    for e, p, p0 in zip(trainer.G_ema.parameters(), G.parameters(), g0):
        assert torch.allclose(e, beta * p0 + (1 - beta) * p.detach(), atol=1e-6)


# ------------------------------------------------------------------ ADA
def test_ada_p_rises_when_d_is_overconfident_on_reals_and_falls_otherwise():
    trainer, _ = toy_trainer(**{"train.augment": "translation", "train.ada_target": 0.6, "train.ada_kimg": 1.0})
    assert trainer.ada_p.item() == 0.0  # ADA starts without augmentation
    trainer.ada_stats = torch.tensor([9.0, 10.0])  # r_t = 0.9 > 0.6: D over-confident
    trainer.adjust_ada(images=100)
    assert trainer.ada_p.item() == pytest.approx(0.1)  # + 100 / (1 kimg)
    assert trainer.ada_stats.tolist() == [0.0, 0.0]  # a fresh interval
    trainer.ada_stats = torch.tensor([2.0, 10.0])  # r_t = 0.2 < 0.6
    trainer.adjust_ada(images=40)
    assert trainer.ada_p.item() == pytest.approx(0.06)
    trainer.ada_stats = torch.tensor([-10.0, 10.0])
    trainer.adjust_ada(images=1000)
    assert trainer.ada_p.item() == 0.0  # clamped to [0, 1]
    trainer.ada_stats = torch.tensor([10.0, 10.0])
    trainer.adjust_ada(images=5000)
    assert trainer.ada_p.item() == 1.0


@pytest.mark.parametrize("level,direction", [(3.0, 1), (-3.0, -1)])
def test_ada_in_the_loop_follows_the_sign_of_d_on_reals(level, direction):
    trainer, next_batch = toy_trainer(
        ConstantD(level),
        **{
            "train.augment": "color,translation",
            "train.ada_target": 0.6,
            "train.ada_interval": 2,
            "train.ada_kimg": 0.1,
        },
    )
    trainer.ada_p = torch.tensor(0.5)
    seen = []
    for _ in range(4):
        seen.append(trainer.step(next_batch)["ada_p"].item())
    # p moves every 2 steps by 6 images x 2 steps / 100 = 0.12, up for a confident D, down otherwise.
    assert seen == pytest.approx([0.5, 0.5 + 0.12 * direction, 0.5 + 0.12 * direction, 0.5 + 0.24 * direction])


def test_ada_p_is_the_augmentation_probability_d_sees():
    trainer, next_batch = toy_trainer(**{"train.augment": "color,translation,cutout", "train.ada_target": 0.6})
    x, _ = next_batch()
    trainer.ada_p = torch.tensor(0.0)
    assert torch.allclose(trainer.d_input(x, 0.0), x, atol=1e-6)
    trainer.ada_p = torch.tensor(1.0)
    assert ((trainer.d_input(x, 0.0) - x).flatten(1).abs().amax(1) > 0).all()


# ------------------------------------------------------------------ auxiliary classifier (AC-GAN)
def test_d_classifier_in_training_learns_reals_and_steers_g():
    """With model.d_classify, D's cross-entropy on reals falls, and G's update carries the classifier's term."""
    on = {"model.d_cond": "projection", "model.d_classify": 1.0, "train.d_lr": 2e-3}
    trainer, _ = toy_trainer(**on)
    gen = torch.Generator().manual_seed(1)
    y = torch.stack([torch.arange(6) % 2, torch.arange(6) % 4], 1)
    real = torch.zeros(6, 3, 8, 8)  # gender in channel 0, class in channel 1
    real[:, 0], real[:, 1] = (y[:, :1, None] * 2.0 - 1), (y[:, 1:, None] / 1.5 - 1)
    real = real + 0.05 * torch.randn(real.shape, generator=gen)
    losses = [trainer.step(lambda: (real, y))["d_class"].item() for _ in range(40)]
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4]), losses
    assert toy_trainer(**{"model.d_cond": "projection"})[0].step(lambda: (real, y))["d_class"].item() == 0.0

    def g_after_one_step(weight: float) -> dict:
        trainer, _ = toy_trainer(**{**on, "model.d_classify": weight})
        trainer.step(lambda: (real, y))
        return {k: v.detach().clone() for k, v in trainer.G.named_parameters()}

    # A vanishing weight and weight 1 build the same nets from the same seed: only the classifier terms differ.
    tiny, full, again = g_after_one_step(1e-9), g_after_one_step(1.0), g_after_one_step(1e-9)
    assert all(torch.equal(tiny[k], again[k]) for k in tiny)
    assert max((full[k] - tiny[k]).abs().max().item() for k in tiny) > 1e-5


# ------------------------------------------------------------------ R3GAN: relativistic pairing, R1 + R2
def test_relativistic_g_loss_pairs_each_fake_with_the_real_of_its_labels():
    """G's relativistic loss reads D's logits on the D phase's reals: under mode seeking the two halves of
    the fake batch take the first half's labels, and so the first half's real logits."""
    trainer, next_batch = toy_trainer(**{"train.loss": "rpgan", "train.mode_seeking": 1.0})
    seen = {}
    d_phase, g_loss_fn = trainer._d_phase, trainer.g_loss_fn
    trainer._d_phase = lambda *a: seen.setdefault("d", d_phase(*a))
    trainer.g_loss_fn = lambda fake, real: seen.setdefault("g", (fake, real)) and g_loss_fn(fake, real)
    stats = trainer.step(next_batch)
    d_real = seen["d"]["d_real"].detach()
    assert torch.equal(seen["g"][1], d_real[:3].repeat(2))
    assert stats["g_loss"].item() > 0 and torch.isfinite(stats["g_loss"])


def test_r2_penalises_d_on_fakes_on_the_lazy_schedule():
    """R2 is D's input-gradient norm on the fakes: logged when on, and it changes D's update."""

    def after_steps(r2_gamma: float, steps: int = 2):
        trainer, next_batch = toy_trainer(**{"train.loss": "rpgan", "train.r2_gamma": r2_gamma, "train.r1_every": 2})
        stats = [trainer.step(next_batch) for _ in range(steps)]
        return [s["r2"].item() for s in stats], [p.detach().clone() for p in trainer.D.parameters()]

    (r2_on, d_on), (r2_off, d_off) = after_steps(10.0), after_steps(0.0)
    assert r2_on[0] > 0 and r2_on[1] == 0.0  # lazy: D updates 0, 2, 4... (the logged value is the last one)
    assert r2_off == [0.0, 0.0]
    assert any(not torch.allclose(a, b) for a, b in zip(d_on, d_off))


# ------------------------------------------------------------------ speed: one G forward a step, bf16 on CPU
@pytest.mark.parametrize("mode_seeking", [0.0, 1.0])
def test_reuse_fakes_draws_g_once_a_step_and_d_learns_on_the_fakes_g_then_trains_on(mode_seeking):
    """train.reuse_fakes: G runs once a step; D's update sees those fakes (detached) with the labels G drew
    them for (under mode seeking the first half's, twice), and the G update goes through the same fakes."""
    seen = {}
    for reuse in (False, True):
        trainer, next_batch = toy_trainer(**{"train.reuse_fakes": reuse, "train.mode_seeking": mode_seeking})
        g_out, d_in = [], []
        trainer.G.register_forward_hook(lambda m, args, out, g_out=g_out: g_out.append((args[1], out.detach())))
        trainer.D.register_forward_pre_hook(lambda m, args, d_in=d_in: d_in.append((args[0].detach(), args[1])))
        trainer.step(next_batch)
        seen[reuse] = g_out, d_in
    (plain_g, plain_d), (reuse_g, reuse_d) = seen[False], seen[True]
    assert len(plain_g) == 2 and len(reuse_g) == 1 and len(plain_d) == len(reuse_d) == 3  # D: real, fake; G phase
    (labels, fake), (_, d_fake_labels), (g_phase_in, _) = reuse_g[0], reuse_d[1], reuse_d[2]
    assert torch.equal(reuse_d[1][0], fake) and torch.equal(g_phase_in, fake)
    assert torch.equal(d_fake_labels, labels)
    if mode_seeking:  # G's batch: the first half of the reals' labels, twice
        assert torch.equal(labels, reuse_d[0][1][:3].repeat(2, 1))
    else:
        assert torch.equal(labels, reuse_d[0][1])
    assert not torch.equal(plain_d[1][0], plain_d[2][0])  # plain: D's fakes and G's fakes are two draws


def test_amp_trains_in_bf16_where_the_cpu_computes_it_natively_and_in_float32_elsewhere(monkeypatch):
    from heroportraits.models.precision import native_bf16 as native

    assert native(torch.device("cuda")) and not native(torch.device("meta"))
    for flags, expect in (((False, False), False), ((True, False), True), ((False, True), True)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda f=flags[0]: f, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda f=flags[1]: f, raising=False)
        assert native(torch.device("cpu")) is expect
        for amp in (False, True):
            trainer, next_batch = toy_trainer(**{"train.amp": amp})
            assert isinstance(trainer.autocast, torch.autocast) is (amp and expect)
    # bf16 autocast in the step: G's convolutions compute in bf16, the weights and the EMA copy stay float32
    trainer, next_batch = toy_trainer(**{"train.amp": True})
    dtypes = []
    trainer.G.register_forward_hook(lambda m, args, out: dtypes.append(out.dtype))
    before = [p.detach().clone() for p in trainer.G.parameters()]
    stats = trainer.step(next_batch)
    assert dtypes == [torch.bfloat16, torch.bfloat16] and all(torch.isfinite(v) for v in stats.values())
    assert all(p.dtype == torch.float32 for p in [*trainer.G.parameters(), *trainer.G_ema.parameters()])
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.G.parameters()))


# ------------------------------------------------------------------ learning-rate decay
def test_learning_rates_fall_linearly_to_zero_over_the_last_share_of_steps():
    trainer, next_batch = toy_trainer(**{"train.steps": 10, "train.lr_decay": 0.5, "train.d_lr": 1e-3})
    g_lrs, d_lrs = [], []
    for _ in range(10):
        trainer.step(next_batch)
        g_lrs.append(trainer.opt_G.param_groups[0]["lr"])
        d_lrs.append(trainer.opt_D.param_groups[0]["lr"])
    scale = [1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2]  # iterations 0-9 of 10: (10 - i) / 5, capped at 1
    assert g_lrs == pytest.approx([2e-4 * f for f in scale]) and d_lrs == pytest.approx([1e-3 * f for f in scale])
    # A resumed trainer sets the rate from its iteration, not from what its optimiser held.
    again, _ = toy_trainer(**{"train.steps": 10, "train.lr_decay": 0.5})
    again.iteration = 8
    again.step(next_batch)
    assert again.opt_G.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.4)
    constant, _ = toy_trainer(**{"train.steps": 10})
    constant.iteration = 9
    constant.step(next_batch)
    assert constant.opt_G.param_groups[0]["lr"] == pytest.approx(2e-4)


# ------------------------------------------------------------------ LeCam, instance noise, native pixels
def test_lecam_anchors_are_an_ema_of_d_outputs_and_the_penalty_enters_the_loss():
    trainer, next_batch = toy_trainer(ConstantD(0.7), **{"train.lecam_weight": 0.5, "train.lecam_decay": 0.9})
    stats = trainer.step(next_batch)
    assert stats["lecam"].item() == pytest.approx(0.7**2, rel=1e-2)  # anchors 0: relu(0.7 - 0)^2 + relu(0 - 0.7)^2
    expected = 0.1 * torch.stack([stats["d_real"], stats["d_fake"]])
    assert torch.allclose(trainer.lecam_anchors, expected)
    for _ in range(45):
        trainer.step(next_batch)
    assert torch.allclose(trainer.lecam_anchors, torch.tensor([0.7, 0.7]), atol=0.02)
    # D answers what both anchors hold: nothing left to penalise.
    assert trainer.step(next_batch)["lecam"].item() < 1e-4


def test_instance_noise_follows_its_schedule_in_the_loop():
    trainer, next_batch = toy_trainer(**{"train.instance_noise_std": 0.4, "train.instance_noise_steps": 4})
    used = []
    d_input = trainer.d_input
    trainer.d_input = lambda x, std: used.append(std) or d_input(x, std)
    for _ in range(6):
        trainer.step(next_batch)
    per_step = used[::3]  # real, fake, G phase share one std
    assert per_step == pytest.approx([0.4, 0.3, 0.2, 0.1, 0.0, 0.0])
    x = torch.zeros(4000, 3, 2, 2)
    assert d_input(x, 0.25).std().item() == pytest.approx(0.25, rel=0.05)


def test_trainer_augments_whole_native_pixels():
    trainer, _ = toy_trainer(**{"train.augment": "translation,cutout"})
    trainer.pixel = 2
    small = torch.rand(32, 3, 4, 4) * 2 - 1
    x = small.repeat_interleave(2, 2).repeat_interleave(2, 3)  # 8x8 made of 2x2 blocks
    out = trainer.d_input(x, 0.0)
    assert not torch.equal(out, x)
    assert torch.equal(out[..., ::2, ::2].repeat_interleave(2, 2).repeat_interleave(2, 3), out)


# ------------------------------------------------------------------ end to end: conditioning is learnt
# A recipe that settles within a few hundred steps on these toy sets (measured; see
# docs/techniques.md): non-saturating loss + R1 (Mescheder 2018: converges where hinge
# without R1 oscillates between colour modes here), lr 1e-3, and EMA ramp-up so the EMA
# generator is not dominated by the random initial weights in so short a run.
CELLS = 16  # native grid: 16x16 cells, stored as 64x64 images (native_scale 4)
RECIPE = {
    "model.g_width": 16,
    "model.d_width": 16,
    "model.z_dim": 16,
    "model.embed_dim": 4,
    "train.batch_size": 32,
    "train.loss": "ns",
    "train.r1_gamma": 1.0,
    "train.g_lr": 1e-3,
    "train.d_lr": 1e-3,
    "train.ema_decay": 0.999,
    "train.ema_rampup": 0.05,
    "train.log_every": 50,
    "train.device": "cpu",
}
COLOURS = {"red": (220, 50, 40), "green": (40, 190, 70), "blue": (50, 70, 230), "yellow": (230, 210, 40)}


def _write(root, name: str, cells: list[np.ndarray], rows: list[dict], vocab: Vocabulary) -> str:
    images = np.stack([nearest_upscale(c, 64 // CELLS) for c in cells])
    rows = [{"file": f"{name}/{i:04d}.png", **r, "split": "train"} for i, r in enumerate(rows)]
    write_dataset(root / "data" / name, images, rows, vocab, {"name": name, "native_scale": 64 // CELLS})
    return name


def _shape_mask(shape: str, dy: int, dx: int) -> np.ndarray:
    m = np.zeros((CELLS, CELLS), bool)
    q, h = CELLS // 4, CELLS // 2
    if shape in ("square", "ring"):
        m[q + dy : 3 * q + dy, q + dx : 3 * q + dx] = True
        if shape == "ring":
            m[q + 1 + dy : 3 * q - 1 + dy, q + 1 + dx : 3 * q - 1 + dx] = False
    elif shape == "vbar":
        m[q + dy : 3 * q + dy, h - 1 + dx : h + 1 + dx] = True
    else:  # hbar
        m[h - 1 + dy : h + 1 + dy, q + dx : 3 * q + dx] = True
    return m


def four_class_dataset(root, n: int = 48, seed: int = 0) -> str:
    """4 classes, each its own colour and shape on a dark ground, jittered by one cell."""
    rng = np.random.default_rng(seed)
    shapes, colours = ["square", "vbar", "hbar", "ring"], ["red", "green", "blue", "yellow"]
    cells, rows = [], []
    for i in range(n):
        k = i % 4
        img = np.full((CELLS, CELLS, 3), 25, np.uint8)
        img[_shape_mask(shapes[k], *rng.integers(-1, 2, 2))] = COLOURS[colours[k]]
        cells.append(np.clip(img.astype(int) + rng.integers(-8, 9, (1, 1, 3)), 0, 255).astype(np.uint8))
        rows.append({"shape": shapes[k]})
    return _write(root, "four", cells, rows, Vocabulary({"shape": shapes}))


def fit(dataset: str, run: str, steps: int, **overrides):
    cfg = resolve_config(
        "dcgan",
        {**RECIPE, "train.steps": steps, "train.sample_every": steps, "train.checkpoint_every": steps, **overrides},
    )
    return Sampler.from_checkpoint(train(cfg, dataset, run, progress=False).checkpoint)


def nearest_mean(images: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Index of the nearest class mean (L2 in pixel space) for each image."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    return ((flat[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)


def test_tiny_conditional_model_learns_four_classes(project_root):
    """train() + Sampler on 4 classes; samples classified by the nearest class mean of the training images."""
    name = four_class_dataset(project_root)
    data = load_dataset(name, "train")
    real = data.images.permute(0, 2, 3, 1).numpy()  # (N, 64, 64, 3)
    classes = data.vocab.attributes["shape"]
    means = np.stack(
        [real[data.labels[:, 0].numpy() == k].reshape(-1, 64 * 64 * 3).mean(0) for k in range(len(classes))]
    )
    assert (nearest_mean(real, means) == data.labels[:, 0].numpy()).all()  # the classifier itself is right

    sampler = fit(name, "four", steps=300)
    correct, n = 0, 64
    for k, value in enumerate(classes):
        images, rows = sampler.generate(n, {"shape": value}, seed=k)
        assert all(r["shape"] == value for r in rows)
        correct += int((nearest_mean(images, means) == k).sum())
    accuracy = correct / (n * len(classes))
    assert accuracy > 0.75, f"accuracy {accuracy:.2f} on samples (chance 0.25)"


def colour_mix_dataset(root, n: int = 60, seed: int = 0) -> tuple[str, dict[str, float]]:
    """Two attributes: `shape` (bar/block, balanced) and `colour` (the whole ground), 50/30/20."""
    rng = np.random.default_rng(seed)
    mix = {"red": 0.5, "green": 0.3, "blue": 0.2}
    colours = [c for c, share in mix.items() for _ in range(round(share * n))]
    cells, rows = [], []
    for i, colour in enumerate(colours):
        shape = ["bar", "block"][i % 2]
        img = np.zeros((CELLS, CELLS, 3), np.uint8) + np.array(COLOURS[colour], np.uint8)
        q = CELLS // 4
        if shape == "bar":
            img[q : 3 * q, CELLS // 2 - 1 : CELLS // 2 + 1] = 245
        else:
            img[q : 3 * q, q : 3 * q] = 15
        cells.append(np.clip(img.astype(int) + rng.integers(-8, 9, (1, 1, 3)), 0, 255).astype(np.uint8))
        rows.append({"shape": shape, "colour": colour})
    return _write(root, "mix", cells, rows, Vocabulary({"shape": ["bar", "block"], "colour": list(mix)})), mix


@pytest.mark.slow  # 9-15 s alone, ~20 s on a shared CPU
def test_unspecified_attribute_samples_follow_the_training_mix(project_root):
    """Attribute dropout: with `colour` left unspecified at sampling, the share of each colour
    (each sample's mean colour, nearest of the training colours) is the training mix.

    Own toy set rather than conftest's: 16x16 cells instead of 32x32 make each step ~4x cheaper,
    and three well-separated colours at 50/30/20 make "the mix" measurable with 600 samples."""
    name, mix = colour_mix_dataset(project_root)
    data = load_dataset(name, "train")
    colours = data.vocab.attributes["colour"]
    col = data.vocab.names.index("colour")
    mean_rgb = data.images.float().mean((2, 3)).numpy()  # (N, 3) each image's mean colour
    refs = np.stack([mean_rgb[data.labels[:, col].numpy() == k].mean(0) for k in range(len(colours))])

    def shares(images: np.ndarray) -> np.ndarray:
        k = nearest_mean(images.reshape(len(images), -1, 3).mean(1), refs)
        return np.bincount(k, minlength=len(colours)) / len(images)

    sampler = fit(name, "mix", steps=1000, **{"train.attr_dropout": 0.5})
    target = np.array([mix[c] for c in colours])
    per_shape = []
    for shape in ("bar", "block"):
        images, rows = sampler.generate(300, {"shape": shape}, seed=1)
        assert all(r["colour"] == UNSPECIFIED and r["shape"] == shape for r in rows)  # left to the model
        per_shape.append(shares(images))
        assert per_shape[-1].min() > 0.05, f"shape={shape}: a colour is missing, shares {per_shape[-1].round(2)}"
    # Total variation distance to the training mix. Seeds 0-5 measured 0.003-0.07 at 1000 steps;
    # always one value scores >= 0.5, a uniform mix 0.17.
    got = np.mean(per_shape, axis=0)
    tv = 0.5 * np.abs(got - target).sum()
    assert tv < 0.12, f"colour shares {got.round(2)} vs training mix {target} (TV {tv:.2f})"
    # The model is conditional, so the mix above is not just a model ignoring its labels.
    for k, colour in enumerate(colours):
        images, _ = sampler.generate(100, {"colour": colour}, seed=2)
        assert shares(images)[k] > 0.8, f"colour={colour} was asked for, got shares {shares(images).round(2)}"


def test_grid_defaults_are_the_most_common_value_over_images():
    rows = torch.tensor([[0, 0], [0, 1], [1, 0]])  # distinct label rows, as stored in a checkpoint
    counts = torch.tensor([1, 1, 10])
    # Over images, attribute 0 is mostly value 1 (10 of 12), though value 0 is in more distinct rows.
    assert most_common_labels(rows, counts).tolist() == [1, 0]
