"""D-guided sampling (selection.py). Best of R (`--best-of R`): each kept portrait is the candidate D's
classifier agrees with most, 1 candidate is plain sampling, quantisation applies to the kept portraits only.
Refinement (`--refine T`): each step moves the noise up the guidance score by its set share of the noise's
length, keeps the length, raises the score, and 0 steps is plain sampling; with `--refine-head W` it climbs D's
head classifier too. A model without D's classifier (or head classifier) is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from heroportraits.cli import main as cli_main
from heroportraits.data.attributes import Vocabulary
from heroportraits.evaluation.evaluate import evaluate_checkpoint
from heroportraits.models.config import DrawOptions
from heroportraits.models.head_classifier import HeadClassifier
from heroportraits.models.layers import ClassifierHead
from heroportraits.models.precision import native_bf16
from heroportraits.sampling.export import example_inputs, export_generator, run_exported
from heroportraits.sampling.sampler import Sampler
from heroportraits.sampling.selection import classifier_agreement, guidance_score, refine_noise
from heroportraits.training.config import Config, ConfigError
from heroportraits.training.presets import resolve_config

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread

CLASSIFIER = {"model.d_cond": "projection", "model.d_classify": 1.0}


def test_log_likelihood_sums_the_named_attributes_and_matches_the_loss():
    head = ClassifierHead(5, Vocabulary.from_json({"gender": ["a", "b"], "palette": ["x", "y", "z"]}))
    phi = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([[0, 2], [1, 0], [2, 1], [0, 3]])  # gender 2 and palette 3 are "unspecified"
    ll = head.log_likelihood(phi, labels)
    g, p = (torch.log_softmax(lg, 1) for lg in head.logits(phi))
    expected = torch.stack([g[0, 0] + p[0, 2], g[1, 1] + p[1, 0], p[2, 1], g[3, 0]])  # unspecified ones left out
    assert torch.allclose(ll, expected)
    assert torch.allclose(head.loss(phi, labels), -ll.sum() / 6)  # 6 named labels


def test_best_of_keeps_the_candidate_the_classifier_agrees_with_most(smoke_checkpoint):
    plain = Sampler.from_checkpoint(smoke_checkpoint(**CLASSIFIER))
    sampler = Sampler.from_checkpoint(smoke_checkpoint(**CLASSIFIER), draw={"best_of": 3})
    labels = plain.draw_conditions(8, seed=1)
    images = sampler.generate_from_labels(labels, seed=1)
    # by hand: 3 candidates a portrait from noise(24, 1), scored by D's classifier, the best rendered
    cols = plain.cond_cols
    y = labels[:, cols]
    candidates = plain.noise(24, 1).view(3, 8, -1)
    with torch.no_grad():
        scores = torch.stack([classifier_agreement(sampler.D, plain.G(z, y), y) for z in candidates])
    best = scores.argmax(0)
    assert (best > 0).any()  # the test means something only if some portrait keeps a later candidate
    expected = plain.render(candidates[best, torch.arange(8)], y)
    assert np.array_equal(images, expected)
    assert np.array_equal(
        Sampler.from_checkpoint(smoke_checkpoint(**CLASSIFIER), draw={"best_of": 1}).generate_from_labels(
            labels, seed=1
        ),
        plain.generate_from_labels(labels, seed=1),
    )  # one candidate: plain sampling


def test_best_of_quantises_the_kept_portraits(smoke_checkpoint):
    sampler = Sampler.from_checkpoint(smoke_checkpoint(**CLASSIFIER), draw={"rgb_colours": 5, "best_of": 2})
    images, _ = sampler.generate(6, seed=2)
    assert max(len(np.unique(im.reshape(-1, 3), axis=0)) for im in images) <= 5
    assert all(out.colours == 5 for out in sampler.G.modules() if hasattr(out, "colours"))  # restored after


def test_best_of_is_refused_without_a_classifier(smoke_checkpoint, tmp_path, capsys):
    with pytest.raises(
        ConfigError, match=r"draw.best_of=4 \(--best-of 4\) ranks candidates by D's auxiliary classifier"
    ):
        Sampler.from_checkpoint(smoke_checkpoint(), draw={"best_of": 4})
    with pytest.raises(ConfigError, match=r"draw.best_of=0 is out of range: must be >= 1"):
        Sampler.from_checkpoint(smoke_checkpoint(**CLASSIFIER), draw={"best_of": 0})
    assert cli_main(["sample", str(smoke_checkpoint()), "--out", str(tmp_path / "s"), "--best-of", "2"]) == 2
    assert "model.d_classify > 0 (this one has 0); set it to 1 (off)" in capsys.readouterr().err
    argv = ["evaluate", "--images", str(tmp_path), "--dataset", "toy", "--best-of", "2"]
    assert cli_main(argv) == 2
    assert "--best-of changes how a checkpoint draws" in capsys.readouterr().err


def test_the_config_sets_best_of_and_the_flag_overrides_it(smoke_checkpoint):
    ckpt = smoke_checkpoint(**CLASSIFIER, **{"draw.best_of": 3})
    assert Sampler.from_checkpoint(ckpt).drawing.best_of == 3 and Sampler.from_checkpoint(ckpt).D is not None
    plain = Sampler.from_checkpoint(ckpt, draw={"best_of": 1})
    assert plain.drawing.best_of == 1 and plain.D is None
    assert plain.run_drawing.best_of == plain.config.draw.best_of == 3  # drawing otherwise leaves the run's own
    assert Sampler.from_checkpoint(ckpt, draw=DrawOptions()).drawing == DrawOptions()  # G's own portraits


def test_sample_and_evaluate_take_best_of(smoke_checkpoint, tmp_path, monkeypatch):
    ckpt = smoke_checkpoint(**CLASSIFIER)
    monkeypatch.setenv("HEROPORTRAITS_ROOT", str(ckpt.parents[3]))  # the smoke run's project, with its toy data
    out = tmp_path / "b"
    assert cli_main(["sample", str(ckpt), "--n", "4", "--out", str(out), "--best-of", "3"]) == 0
    assert len(list(out.glob("*.png"))) == 4 and Image.open(next(out.glob("*.png"))).size == (64, 64)
    ev = evaluate_checkpoint(
        ckpt, n=12, n_subsets=2, with_floor=False, write=False, progress=False, draw={"best_of": 3}
    )
    assert ev.results["drawing"]["best_of"] == 3


def test_an_export_draws_each_noise_as_plain_sampling_does(smoke_checkpoint, tmp_path):

    ckpt = smoke_checkpoint(**CLASSIFIER, **{"draw.best_of": 3, "draw.refine_steps": 2})
    out = export_generator(ckpt, tmp_path / "g.pt", "torchscript")  # G only: no D in the file to guide it
    plain = Sampler.from_checkpoint(ckpt, draw={"best_of": 1, "refine_steps": 0})
    noise, labels = example_inputs(plain, 4, seed=5)
    assert np.array_equal(run_exported(out, noise.numpy(), labels.numpy()), plain.render(noise, labels))


def _guided(smoke_checkpoint, **drawing) -> tuple[Sampler, torch.Tensor, torch.Tensor]:
    sampler = Sampler.from_checkpoint(smoke_checkpoint(**CLASSIFIER), draw=drawing)
    labels = sampler.draw_conditions(32, seed=3)
    return sampler, sampler.noise(32, 3), labels[:, sampler.cond_cols]


def test_a_refinement_step_moves_the_noise_along_its_normalised_gradient(smoke_checkpoint):
    sampler, z, y = _guided(smoke_checkpoint, refine_steps=1)
    G, D = sampler.G, sampler.D
    stepped = refine_noise(G, D, z, y, steps=1, rate=0.1, realness=0.5)
    # by hand: the gradient of log-likelihood + 0.5 x D's output, a step of 0.1 x |z| along it, rescaled to |z|
    x = z.clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(guidance_score(D, G(x, y), y, 0.5).sum(), x)
    moved = z + 0.1 * z.norm(dim=1, keepdim=True) * grad / grad.norm(dim=1, keepdim=True)
    assert torch.allclose(stepped, moved * z.norm(dim=1, keepdim=True) / moved.norm(dim=1, keepdim=True), atol=1e-5)
    assert torch.allclose(stepped.norm(dim=1), z.norm(dim=1), rtol=1e-5)  # the noise keeps its length
    assert all(p.grad is None for p in [*G.parameters(), *D.parameters()])  # only the noise's gradient


def test_refinement_raises_the_classifiers_agreement(smoke_checkpoint):
    sampler, z, y = _guided(smoke_checkpoint, refine_steps=1)
    G, D = sampler.G, sampler.D
    with torch.no_grad():
        before = classifier_agreement(D, G(z, y), y)
        after = classifier_agreement(D, G(refine_noise(G, D, z, y, steps=3, rate=0.02, realness=0.0), y), y)
    assert (after > before).float().mean() > 0.9 and after.mean() > before.mean()


def test_refined_sampling_draws_the_refined_noise_quantised(smoke_checkpoint):
    sampler, _, _ = _guided(smoke_checkpoint, refine_steps=2, rgb_colours=5)
    labels = sampler.draw_conditions(6, seed=4)
    y = labels[:, sampler.cond_cols]
    d = sampler.drawing
    z = refine_noise(sampler.G, sampler.D, sampler.noise(6, 4), y, 2, d.refine_rate, d.refine_realness)
    images = sampler.generate_from_labels(labels, seed=4)
    assert np.array_equal(images, sampler.render(z, y))
    assert max(len(np.unique(im.reshape(-1, 3), axis=0)) for im in images) <= 5  # quantised after refining
    plain = Sampler.from_checkpoint(smoke_checkpoint(**CLASSIFIER), draw={"rgb_colours": 5, "refine_steps": 0})
    assert not np.array_equal(images, plain.generate_from_labels(labels, seed=4))
    assert np.array_equal(plain.generate_from_labels(labels, seed=4), plain.render(sampler.noise(6, 4), y))


def test_refine_is_refused_without_a_classifier_and_recorded(smoke_checkpoint, tmp_path, capsys, monkeypatch):
    with pytest.raises(ConfigError, match=r"draw.refine_steps=3 \(--refine 3\) guides the noise by D's auxiliary"):
        Sampler.from_checkpoint(smoke_checkpoint(), draw={"refine_steps": 3})
    with pytest.raises(ConfigError, match="draw.refine_steps=-1 is out of range: must be >= 0"):
        Sampler.from_checkpoint(smoke_checkpoint(**CLASSIFIER), draw={"refine_steps": -1})
    assert cli_main(["sample", str(smoke_checkpoint()), "--out", str(tmp_path / "s"), "--refine", "2"]) == 2
    assert "model.d_classify > 0 (this one has 0); set it to 0 (off)" in capsys.readouterr().err
    assert cli_main(["evaluate", "--images", str(tmp_path), "--dataset", "toy", "--refine", "2"]) == 2
    assert "--refine changes how a checkpoint draws" in capsys.readouterr().err
    ckpt = smoke_checkpoint(**CLASSIFIER, **{"draw.refine_steps": 2})
    assert Sampler.from_checkpoint(ckpt).drawing.refine_steps == 2
    assert Sampler.from_checkpoint(ckpt, draw={"refine_steps": 0}).D is None
    monkeypatch.setenv("HEROPORTRAITS_ROOT", str(ckpt.parents[3]))
    ev = evaluate_checkpoint(ckpt, n=12, n_subsets=2, with_floor=False, write=False, progress=False)
    drawing = ev.results["drawing"]
    assert (drawing["refine_steps"], drawing["refine_rate"], drawing["best_of"]) == (2, 0.05, 1)
    assert cli_main(["sample", str(ckpt), "--n", "3", "--out", str(tmp_path / "r"), "--refine", "1"]) == 0
    assert len(list((tmp_path / "r").glob("*.png"))) == 3


def test_refinement_reaches_a_palette_models_colour_choices(smoke_checkpoint):
    ckpt = smoke_checkpoint(**CLASSIFIER, **{"model.output": "palette", "model.palette_k": 6})
    sampler = Sampler.from_checkpoint(ckpt, draw={"refine_steps": 2})
    labels = sampler.draw_conditions(16, seed=3)
    y = labels[:, sampler.cond_cols]
    G, D, z = sampler.G, sampler.D, sampler.noise(16, 3)
    (out,) = [m for m in G.modules() if hasattr(m, "differentiable")]

    def noise_gradient() -> torch.Tensor:
        x = z.clone().requires_grad_(True)
        with torch.enable_grad():
            return torch.autograd.grad(guidance_score(D, G(x, y), y, 0.0).sum(), x)[0]

    palette_only = noise_gradient()  # sampling's argmax: only the palette colours carry a gradient
    out.differentiable = True
    try:
        with torch.no_grad():
            same = torch.equal(G(z, y), Sampler.from_checkpoint(ckpt, draw={"palette_merge": 0.0}).G(z, y))
        through_choices = noise_gradient()
    finally:
        out.differentiable = False
    assert same  # it draws the same argmax colours (unmerged) ...
    assert not torch.allclose(through_choices, palette_only)  # ... with the per-pixel choices' gradient too
    with torch.no_grad():
        before = classifier_agreement(D, G(z, y), y)
        after = classifier_agreement(D, G(refine_noise(G, D, z, y, steps=3, rate=0.02, realness=0.0), y), y)
    assert after.mean() > before.mean() and not out.differentiable
    images = sampler.generate_from_labels(labels, seed=3)
    assert max(len(np.unique(im.reshape(-1, 3), axis=0)) for im in images) <= 6


def test_the_realness_weight_is_a_sampling_choice(smoke_checkpoint, tmp_path, capsys, monkeypatch):
    ckpt = smoke_checkpoint(**CLASSIFIER)
    alone = Sampler.from_checkpoint(ckpt, draw={"refine_steps": 2, "refine_realness": 0.0})
    mixed = Sampler.from_checkpoint(ckpt, draw={"refine_steps": 2, "refine_realness": 2.0})
    assert (alone.drawing.refine_realness, mixed.drawing.refine_realness) == (0.0, 2.0)
    labels = alone.draw_conditions(6, seed=4)
    y = labels[:, alone.cond_cols]
    z = refine_noise(alone.G, alone.D, alone.noise(6, 4), y, 2, alone.drawing.refine_rate, 0.0)
    assert np.array_equal(alone.generate_from_labels(labels, seed=4), alone.render(z, y))
    assert not np.array_equal(alone.generate_from_labels(labels, seed=4), mixed.generate_from_labels(labels, seed=4))
    with pytest.raises(ConfigError, match="draw.refine_realness=-1.0 is out of range: must be >= 0"):
        Sampler.from_checkpoint(ckpt, draw={"refine_steps": 2, "refine_realness": -1.0})
    with pytest.raises(
        ConfigError, match=r"draw.refine_realness=2 \(--refine-realness 2\) weighs refinement, which is off"
    ):
        Sampler.from_checkpoint(ckpt, draw={"refine_steps": 0, "refine_realness": 2.0})
    assert cli_main(["evaluate", "--images", str(tmp_path), "--dataset", "toy", "--refine-realness", "0"]) == 2
    assert "--refine-realness changes how a checkpoint draws" in capsys.readouterr().err
    monkeypatch.setenv("HEROPORTRAITS_ROOT", str(ckpt.parents[3]))
    drawing = {"refine_steps": 1, "refine_realness": 0.0}
    ev = evaluate_checkpoint(ckpt, n=12, n_subsets=2, with_floor=False, write=False, progress=False, draw=drawing)
    assert (ev.results["drawing"]["refine_steps"], ev.results["drawing"]["refine_realness"]) == (1, 0.0)
    out = tmp_path / "w"
    assert (
        cli_main(["sample", str(ckpt), "--n", "2", "--out", str(out), "--refine", "1", "--refine-realness", "0"]) == 0
    )


def test_refinement_in_bf16_moves_the_noise_as_float32_does(smoke_checkpoint, tmp_path):
    ckpt = smoke_checkpoint(**CLASSIFIER)
    sampler = Sampler.from_checkpoint(ckpt, draw={"refine_steps": 3, "bf16": True})
    said = ", bf16)" if native_bf16(sampler.device) else ", float32 (bf16 asked, not native here))"
    assert sampler.drawing.bf16 and sampler.describe_drawing().endswith(said), sampler.describe_drawing()
    labels = sampler.draw_conditions(32, seed=3)
    G, D, z, y = sampler.G, sampler.D, sampler.noise(32, 3), labels[:, sampler.cond_cols]
    half = refine_noise(G, D, z, y, 3, 0.02, 0.0, bf16=True)
    full = refine_noise(G, D, z, y, 3, 0.02, 0.0)
    assert half.dtype == torch.float32 and torch.allclose(half.norm(dim=1), z.norm(dim=1), rtol=1e-5)
    if native_bf16(z.device):  # other passes, nearly the same path
        assert not torch.equal(half, full)
        assert torch.nn.functional.cosine_similarity(half - z, full - z).min() > 0.9
    else:  # float32 where bf16 would be emulated
        assert torch.equal(half, full)
    with torch.no_grad():
        before, after = (classifier_agreement(D, G(x, y), y).mean() for x in (z, half))
    assert after > before
    d = sampler.drawing
    refined = refine_noise(G, D, z, y, 3, d.refine_rate, d.refine_realness, bf16=True)
    assert np.array_equal(sampler.generate_from_labels(labels, seed=3), sampler.render(refined, y))
    with pytest.raises(
        ConfigError, match=r"draw.bf16=true \(--bf16\) runs a GAN's refinement in bf16, and refinement is off"
    ):
        Sampler.from_checkpoint(ckpt, draw={"refine_steps": 0, "bf16": True})
    assert Sampler.from_checkpoint(ckpt, draw={"refine_steps": 0, "bf16": False}).drawing.refine_steps == 0
    out = tmp_path / "b"
    assert cli_main(["sample", str(ckpt), "--n", "2", "--out", str(out), "--refine", "1", "--bf16"]) == 0
    assert len(list(out.glob("*.png"))) == 2


HEAD = {**CLASSIFIER, "model.d_head_classify": 1.0}


def test_head_log_likelihood_is_the_asked_values_log_probability():
    head = HeadClassifier(
        Vocabulary.from_json({"gender": ["a", "b"], "hero_class": ["w", "m", "r"]}), "hero_class", 0.5, 4
    )
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    labels = torch.tensor([[0, 2], [1, 0], [0, 3], [1, 1]])  # class 3 is "unspecified"
    logp = torch.log_softmax(head.logits(x), 1)
    assert torch.allclose(
        head.log_likelihood(x, labels), torch.stack([logp[0, 2], logp[1, 0], logp[0, 0] * 0, logp[3, 1]])
    )
    assert torch.allclose(head.loss(x, labels), -head.log_likelihood(x, labels).sum() / 3)


def test_refinement_with_the_head_weight_climbs_the_head_classifier(smoke_checkpoint):
    sampler, z, y = _guided_head(smoke_checkpoint)
    G, D = sampler.G, sampler.D
    with torch.no_grad():
        before = D.head_classifier.log_likelihood(G(z, y), y)
    moved = {w: refine_noise(G, D, z, y, steps=3, rate=0.02, realness=0.0, head=w) for w in (0.0, 20.0)}
    with torch.no_grad():
        after = {w: D.head_classifier.log_likelihood(G(m, y), y) for w, m in moved.items()}
        plain = guidance_score(D, G(z, y), y, 0.0)
        both = guidance_score(D, G(z, y), y, 0.0, head=2.0)
    assert torch.allclose(both, plain + 2.0 * before)  # the head's log-likelihood, weighted, beside the classifier's
    assert after[20.0].mean() > after[0.0].mean() and after[20.0].mean() > before.mean()


def _guided_head(smoke_checkpoint, **drawing):
    sampler = Sampler.from_checkpoint(smoke_checkpoint(**HEAD), draw={"refine_steps": 1, **drawing})
    labels = sampler.draw_conditions(32, seed=3)
    return sampler, sampler.noise(32, 3), labels[:, sampler.cond_cols]


def test_the_head_weight_is_a_sampling_choice_refused_without_a_head_classifier(
    smoke_checkpoint, tmp_path, capsys, monkeypatch
):
    with pytest.raises(ConfigError, match=r"draw.refine_head=1 \(--refine-head 1\) climbs D's head classifier.*"):
        Sampler.from_checkpoint(smoke_checkpoint(**CLASSIFIER), draw={"refine_steps": 2, "refine_head": 1.0})
    with pytest.raises(ConfigError, match=r"draw.refine_head=2 \(--refine-head 2\) weighs refinement, which is off"):
        Sampler.from_checkpoint(smoke_checkpoint(**HEAD), draw={"refine_steps": 0, "refine_head": 2.0})
    with pytest.raises(ConfigError, match="draw.refine_head=-1.0 is out of range: must be >= 0"):
        Sampler.from_checkpoint(smoke_checkpoint(**HEAD), draw={"refine_steps": 2, "refine_head": -1.0})
    with pytest.raises(
        ConfigError, match=r"draw.refine_head=1 \(--refine-head 1\) climbs D's head.*d_head_classify > 0"
    ):
        resolve_config("smoke", {**CLASSIFIER, "draw.refine_head": 1.0})
    ckpt = smoke_checkpoint(**HEAD)
    sampler, z, y = _guided_head(smoke_checkpoint, refine_head=3.0)
    assert sampler.drawing.refine_head == 3.0
    d = sampler.drawing
    refined = refine_noise(sampler.G, sampler.D, z, y, 1, d.refine_rate, d.refine_realness, head=3.0)
    labels = sampler.draw_conditions(32, seed=3)
    assert np.array_equal(sampler.generate_from_labels(labels, seed=3), sampler.render(refined, y))
    monkeypatch.setenv("HEROPORTRAITS_ROOT", str(ckpt.parents[3]))
    drawing = {"refine_steps": 1, "refine_head": 0.5}
    ev = evaluate_checkpoint(ckpt, n=12, n_subsets=2, with_floor=False, write=False, progress=False, draw=drawing)
    assert (ev.results["drawing"]["refine_steps"], ev.results["drawing"]["refine_head"]) == (1, 0.5)
    assert cli_main(["evaluate", "--images", str(tmp_path), "--dataset", "toy", "--refine-head", "1"]) == 2
    assert "--refine-head changes how a checkpoint draws" in capsys.readouterr().err
    out = tmp_path / "h"
    assert cli_main(["sample", str(ckpt), "--n", "2", "--out", str(out), "--refine", "1", "--refine-head", "1"]) == 0
    assert len(list(out.glob("*.png"))) == 2


def test_a_checkpoint_from_before_the_draw_section_draws_as_its_run_did(smoke_checkpoint, tmp_path):
    """Checkpoints written before drawing options left the model kept them in config.model: they load with them
    read into the run's drawing, and draw the same portraits."""
    ckpt = smoke_checkpoint(**CLASSIFIER, **{"draw.refine_steps": 2, "draw.rgb_colours": 5})
    state = torch.load(ckpt, weights_only=True)
    state["config"]["model"].update(state["config"].pop("draw"))  # the layout of older checkpoints
    torch.save(state, tmp_path / "old.pt")
    old, new = Sampler.from_checkpoint(tmp_path / "old.pt"), Sampler.from_checkpoint(ckpt)
    assert old.drawing == new.drawing and old.drawing.refine_steps == 2 and old.drawing.rgb_colours == 5
    labels = new.draw_conditions(6, seed=2)
    assert np.array_equal(old.generate_from_labels(labels, seed=2), new.generate_from_labels(labels, seed=2))


def test_a_checkpoint_saved_with_refine_bf16_draws_with_bf16():
    """draw.refine_bf16 became draw.bf16 (it now covers a flow model's solver too): runs saved under the old name
    keep their drawing."""
    saved = Config().to_dict()
    saved["draw"] = {k: v for k, v in saved["draw"].items() if k != "bf16"} | {"refine_bf16": True}
    assert Config.from_dict(saved).draw.bf16 is True
    assert Config.from_dict(Config().to_dict()).draw.bf16 is False
