"""Latent walks: slerp, walks that start and end on plain samples, strip + GIF, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from heroportraits.cli import main as cli_main
from heroportraits.data.attributes import Vocabulary
from heroportraits.models.conditioning import AttributeEmbedding, soft_labels
from heroportraits.models.layers import ConditionalBatchNorm2d
from heroportraits.sampling.sampler import Sampler
from heroportraits.sampling.walks import Walk, WalkError, parse_walk, save_walk, slerp, walk_frames

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


def test_slerp_hits_both_ends_exactly_and_keeps_the_norm_of_equal_norm_ends():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(128, generator=g), torch.randn(128, generator=g)
    b = b * (a.norm() / b.norm())  # equal norms
    t = torch.linspace(0, 1, 9)
    path = slerp(a, b, t)
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    assert torch.allclose(path.norm(dim=1), a.norm().expand(9), rtol=1e-5)
    # the straight line's middle cuts inside the sphere: for Gaussian z of this size, ~1/sqrt(2) of it
    assert ((a + b) / 2).norm() < 0.8 * a.norm()
    # the arc is walked at constant speed: the middle is half the angle away from each end
    cos = lambda u, v: torch.dot(u, v) / (u.norm() * v.norm())  # noqa: E731
    assert torch.isclose(cos(path[4], a), cos(path[4], b), atol=1e-5)
    # ends of different norms: the norm moves linearly between them
    far = slerp(a, 3 * b, t)
    assert torch.allclose(far.norm(dim=1), a.norm() * (1 + 2 * t), rtol=1e-5)


def test_soft_labels_mix_the_embeddings_of_two_values():
    vocab = Vocabulary({"gender": ["m", "f"], "palette": ["warm", "cool", "dark"]})
    emb, cbn = AttributeEmbedding(vocab, 4), ConditionalBatchNorm2d(6, vocab).eval()
    for table in (*cbn.gain, *cbn.bias):
        torch.nn.init.normal_(table.weight)  # zero-initialised tables would hide a wrong mix
    warm, cool = torch.tensor([[1, 0]]), torch.tensor([[1, 1]])
    w_warm, w_cool = soft_labels(warm, vocab.sizes), soft_labels(cool, vocab.sizes)
    assert torch.equal(emb(w_warm), emb(warm))  # one-hot weights = the plain lookup, exactly
    mid = emb(0.5 * w_warm + 0.5 * w_cool)
    assert torch.allclose(mid, (emb(warm) + emb(cool)) / 2)
    x = torch.randn(1, 6, 2, 2)
    assert torch.allclose(cbn(x, 0.5 * w_warm + 0.5 * w_cool), (cbn(x, warm) + cbn(x, cool)) / 2, atol=1e-6)


def test_parse_walk_rejects_bad_specs():
    assert parse_walk("palette=warm:cool") == Walk("palette", ["warm", "cool"], 8)
    for bad in ("palette", "palette=warm", "seed=0:x", "=a:b", "palette=warm::cool"):
        with pytest.raises(WalkError):
            parse_walk(bad)
    with pytest.raises(WalkError, match="at least 2 frames"):
        parse_walk("seed=0:1", frames=1)


def test_noise_walk_starts_and_ends_on_plain_samples(smoke_checkpoint):
    sampler = Sampler.from_checkpoint(smoke_checkpoint())
    frames = walk_frames(sampler, parse_walk("seed=3:8", frames=6), {"hero_class": "mage"}, seed=1)
    assert frames.shape == (6, 64, 64, 3)
    row = sampler.draw_conditions(1, {"hero_class": "mage"}, seed=1)
    assert np.array_equal(frames[0], sampler.generate_from_labels(row, seed=3)[0])
    assert np.array_equal(frames[-1], sampler.generate_from_labels(row, seed=8)[0])
    assert not np.array_equal(frames[0], frames[-1])


def test_attribute_walk_starts_and_ends_on_plain_samples(smoke_checkpoint):
    sampler = Sampler.from_checkpoint(smoke_checkpoint())
    frames = walk_frames(sampler, parse_walk("palette=warm:cool", frames=5), {"gender": "feminine"}, seed=2)
    row = sampler.draw_conditions(1, {"gender": "feminine", "palette": "warm"}, seed=2)
    assert np.array_equal(frames[0], sampler.generate_from_labels(row, seed=2)[0])
    row[0, sampler.vocab.names.index("palette")] = sampler.vocab.encode_value("palette", "cool")
    assert np.array_equal(frames[-1], sampler.generate_from_labels(row, seed=2)[0])
    with pytest.raises(WalkError, match="both walked and fixed"):
        walk_frames(sampler, parse_walk("palette=warm:cool"), {"palette": "dark"})


def test_strip_and_gif_have_one_frame_per_step(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (7, 64, 64, 3), dtype=np.uint8)
    strip, gif = save_walk(frames, tmp_path / "walk.png", duration_ms=50, zoom=2)
    assert Image.open(strip).size == (7 * 66 + 2, 68)  # make_grid: 2 px padding around each frame
    with Image.open(gif) as im:
        assert im.n_frames == 7 and im.size == (128, 128) and im.info["loop"] == 0
        assert im.info["duration"] == 50


def test_sample_cli_writes_walk_strip_and_gif(smoke_checkpoint, tmp_path, capsys):
    ckpt = str(smoke_checkpoint())
    assert cli_main(["sample", ckpt, "--interpolate", "seed=0:1:0", "--frames", "4", "--out", str(tmp_path)]) == 0
    with Image.open(tmp_path / "walk.gif") as im:
        assert im.n_frames == 7  # two segments of 4 frames sharing their middle end
    assert (tmp_path / "walk.png").exists()
    assert cli_main(["sample", ckpt, "--interpolate", "palette=warm:purple", "--out", str(tmp_path)]) == 2
    assert "unknown value 'purple'" in capsys.readouterr().err
    assert cli_main(["sample", ckpt, "--interpolate", "class=a:b", "--out", str(tmp_path)]) == 2
    assert "cannot walk 'class'" in capsys.readouterr().err
