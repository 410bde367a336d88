"""Per-portrait quantisation of RGB samples (`draw.rgb_colours`): k-means finds a known palette, a
quantised model draws at most K colours a portrait and only in eval mode, the merge acts on the found
palette, and the switch reaches the config checks, `sample`, `evaluate` and export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from test_pixelart_models import VOCAB, colours_per_image, labels

from heroportraits.cli import main as cli_main
from heroportraits.data.dataset import read_labels_csv
from heroportraits.data.oklab import delta_e, unit_rgb_to_oklab
from heroportraits.models import build_models, colour_quantise, to_pixels
from heroportraits.models.colour_quantise import cluster_colours, farthest_first, nearest_centre
from heroportraits.models.palette_output import set_palette_merge, set_rgb_colours
from heroportraits.sampling.export import export_generator, read_metadata
from heroportraits.training.config import ConfigError, ModelConfig
from heroportraits.training.presets import resolve_config

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread

KNOWN = np.array([[20, 20, 30], [230, 220, 200], [200, 40, 40], [40, 170, 60], [50, 70, 210]], np.uint8)


def uint8(x: torch.Tensor) -> np.ndarray:
    """Images (N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8, as sampling converts them."""
    return to_pixels(x, x.shape[-1]).numpy()


def noisy_portraits(n: int = 3, size: int = 16, noise: float = 6.0, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Portraits painted in the KNOWN colours (each pixel one at random) with Gaussian noise of `noise`
    levels (0-255) on every channel: in [-1, 1], and the colour index of every pixel."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(KNOWN), (n, size, size))
    rgb = KNOWN[index].astype(np.float64) + rng.normal(0, noise, (n, size, size, 3))
    images = torch.tensor(np.clip(rgb, 0, 255) / 127.5 - 1.0, dtype=torch.float32).permute(0, 3, 1, 2)
    return images, index


def test_kmeans_recovers_a_known_palette_from_noisy_portraits():
    images, truth = noisy_portraits()
    colours, index = cluster_colours(images, k=len(KNOWN))
    found = np.clip(np.round((colours.numpy() + 1.0) * 127.5), 0, 255).astype(np.uint8)  # (N, K, 3)
    for n in range(len(images)):
        # each cluster is one true colour: the pixels of a cluster share their true index, and back
        pairs = set(zip(index[n].flatten().tolist(), truth[n].flatten().tolist()))
        assert len(pairs) == len(KNOWN)
        for slot, true in pairs:  # the cluster's mean is the true colour up to the noise's mean (~0.5 level)
            assert delta_e(found[n, slot], KNOWN[true]) < 1.5


def test_farthest_first_starts_from_distinct_colours():
    images, _ = noisy_portraits(noise=0.0)
    points = images.flatten(2).transpose(1, 2)
    start = farthest_first(points, len(KNOWN))
    assert all(len({tuple(c) for c in s.tolist()}) == len(KNOWN) for s in start)


def test_nearest_centre_is_the_brute_force_nearest():
    # the matrix-product distances pick the centre the plain (x - c)^2 sums pick
    g = torch.Generator().manual_seed(0)
    points, centres = torch.rand(4, 300, 3, generator=g), torch.rand(4, 9, 3, generator=g)
    brute = ((points[:, :, None] - centres[:, None]) ** 2).sum(-1).argmin(-1)
    assert torch.equal(nearest_centre(points, centres), brute)


def test_kmeans_is_plain_lloyd_to_the_bit():
    """The fast path (one scatter a step for sums and sizes, min's indices) draws exactly what plain Lloyd steps
    from the same start draw: a speed-up may not change a single portrait."""
    images, _ = noisy_portraits(n=4, size=24, noise=25.0)
    k = 6
    rgb = images.flatten(2).transpose(1, 2).contiguous()
    lab = unit_rgb_to_oklab((rgb + 1.0) / 2.0)
    centres = farthest_first(lab, k)

    def sums(assign, values):  # values (N, P, C) summed per cluster, one cluster at a time
        return torch.stack([(values * (assign == c)[..., None]).sum(1) for c in range(k)], dim=1)

    for _ in range(colour_quantise.LLOYD_STEPS):
        assign = ((lab[:, :, None] - centres[:, None]) ** 2).sum(-1).argmin(-1)
        counts = sums(assign, torch.ones_like(lab[..., :1]))
        centres = torch.where(counts > 0, sums(assign, lab) / counts.clamp_min(1.0), centres)
    assign = ((lab[:, :, None] - centres[:, None]) ** 2).sum(-1).argmin(-1)
    colours, index = cluster_colours(images, k)
    assert torch.equal(index.flatten(1), assign)
    counts = sums(assign, torch.ones_like(lab[..., :1]))
    torch.testing.assert_close(colours, sums(assign, rgb) / counts.clamp_min(1.0), rtol=0, atol=1e-6)


def test_a_large_batch_is_clustered_in_chunks_as_each_portrait_alone(monkeypatch):
    monkeypatch.setattr(colour_quantise, "CHUNK", 2)
    images, _ = noisy_portraits(n=5, noise=20.0)
    colours, index = cluster_colours(images, k=4)  # chunks of 2, 2 and 1
    for n in range(5):
        alone = cluster_colours(images[n : n + 1], k=4)
        assert torch.equal(alone[1], index[n : n + 1]) and torch.equal(alone[0], colours[n : n + 1])


def test_quantised_rgb_model_draws_at_most_k_colours_and_only_when_sampling():
    torch.manual_seed(0)
    G, _ = build_models(ModelConfig(g_width=4, d_width=4, z_dim=8, embed_dim=3), VOCAB, 16)
    z, y = torch.randn(6, 8) * 3, labels(6)
    G.eval()
    with torch.no_grad():
        plain = G(z, y)
        assert set_rgb_colours(G, 5) == 1
        quantised = G(z, y)
        alone = G(z[:1], y[:1])  # a portrait quantises the same alone as in a batch
        assert set_palette_merge(G, 30.0) == 1  # the found palette can be merged like G's own
        merged = G(z, y)
        G.train()  # training never quantises: D sees what G drew
        trained = G(z, y)
        set_rgb_colours(G, 0)
        assert torch.equal(G(z, y), trained)
    counts = [len(c) for c in colours_per_image(quantised)]
    assert max(counts) <= 5 and min(counts) >= 3 and min(len(c) for c in colours_per_image(plain)) > 50
    assert np.array_equal(uint8(alone), uint8(quantised[:1]))
    assert sum(map(len, colours_per_image(merged))) < sum(counts)
    # quantising moves each pixel to its cluster's mean: near where it was
    assert (quantised - plain).abs().mean() < 0.1


def test_config_takes_rgb_colours_for_rgb_models_only():
    cfg = resolve_config("cpu", {"draw.rgb_colours": 24, "draw.palette_merge": 6})
    assert cfg.draw.rgb_colours == 24 and cfg.draw.palette_merge == 6
    with pytest.raises(ConfigError, match="draw.rgb_colours=24 .* quantises RGB samples .*palette models already"):
        resolve_config("dcgan_sn_proj_ms_palette", {"draw.rgb_colours": 24})
    with pytest.raises(ConfigError, match="draw.rgb_colours=1 .*one colour draws nothing"):
        resolve_config("cpu", {"draw.rgb_colours": 1})
    with pytest.raises(ConfigError, match="draw.rgb_colours"):
        resolve_config("cpu", {"draw.rgb_colours": -3})
    # a merge with nothing to merge is refused: test_config.test_values_are_parsed_by_their_declared_type


def test_sample_and_evaluate_take_rgb_colours(smoke_checkpoint, tmp_path, capsys):
    ckpt = smoke_checkpoint()
    out = tmp_path / "q"
    assert cli_main(["sample", str(ckpt), "--n", "6", "--out", str(out), "--rgb-colours", "7"]) == 0
    rows = read_labels_csv(out / "labels.csv")
    counts = [len(np.unique(np.asarray(Image.open(out / r["file"])).reshape(-1, 3), axis=0)) for r in rows]
    assert len(counts) == 6 and max(counts) <= 7
    assert cli_main(["sample", str(ckpt), "--n", "2", "--out", str(tmp_path / "b"), "--rgb-colours", "1"]) == 2
    assert "draw.rgb_colours=1 (--rgb-colours 1) quantises RGB samples" in capsys.readouterr().err
    argv = ["evaluate", "--images", str(out), "--dataset", "toy", "--rgb-colours", "7"]
    assert cli_main(argv) == 2
    assert "--rgb-colours changes how a checkpoint draws" in capsys.readouterr().err


def test_rgb_colours_are_refused_for_a_palette_model(smoke_checkpoint, tmp_path, capsys):
    ckpt = smoke_checkpoint(**{"model.output": "palette", "model.palette_k": 6})
    assert cli_main(["sample", str(ckpt), "--n", "2", "--out", str(tmp_path / "s"), "--rgb-colours", "8"]) == 2
    assert "(palette models already draw palette_k colours)" in capsys.readouterr().err


def test_export_records_the_quantisation(smoke_checkpoint, tmp_path):
    out = export_generator(
        smoke_checkpoint(), tmp_path / "q.pt", "torchscript", {"palette_merge": 3.0, "rgb_colours": 6}
    )
    assert read_metadata(out)["rgb_colours"] == 6 and read_metadata(out)["palette_merge"] == 3.0
    assert "rgb_colours" not in read_metadata(export_generator(smoke_checkpoint(), tmp_path / "p.pt", "torchscript"))
