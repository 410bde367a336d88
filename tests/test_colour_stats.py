"""A dataset's colour use (measured at build) and the drawing fitted to it (draw.adapt_colours)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from heroportraits.data.colour_stats import closest_pair_delta_e, colour_statistics, drawing_budget
from heroportraits.data.oklab import delta_e
from heroportraits.models.config import DrawOptions
from heroportraits.sampling.colour_budget import COUNTED_PORTRAITS, counted_budget, merged_colour_counts


def flat_portraits(counts: list[int], seed: int = 0) -> np.ndarray:
    """Portraits (N, 16, 16, 3) on a 2x native grid, portrait i in exactly counts[i] colours."""
    rng = np.random.default_rng(seed)
    out = []
    for c in counts:
        colours = rng.choice(256, (c, 3)).astype(np.uint8)
        while len(np.unique(colours, axis=0)) < c:
            colours = rng.choice(256, (c, 3)).astype(np.uint8)
        index = np.resize(np.arange(c), 64)  # every colour used
        rng.shuffle(index)
        out.append(colours[index].reshape(8, 8, 3).repeat(2, 0).repeat(2, 1))
    return np.stack(out)


def test_statistics_count_each_portraits_colours_and_derive_the_budget():
    counts = [4] * 50 + [8] * 45 + [12] * 5  # 95 % of portraits hold 8 colours or fewer
    stats = colour_statistics(flat_portraits(counts), native_scale=2)
    assert stats["n"] == 100 and stats["per_portrait"]["mean"] == pytest.approx(np.mean(counts))
    assert stats["per_portrait"]["median"] == 6 and stats["per_portrait"]["max"] == 12
    assert stats["budget"] == int(np.ceil(np.percentile(counts, 95)))
    assert 0 < stats["closest_pair_delta_e"]["p5"] <= stats["closest_pair_delta_e"]["median"]


def test_closest_pair_is_the_smallest_delta_e_between_a_portraits_colours():
    colours = np.array([[200, 40, 40], [205, 40, 40], [20, 20, 200]], np.uint8)
    assert closest_pair_delta_e(colours) == pytest.approx(float(delta_e(colours[0], colours[1])), rel=1e-6)
    assert closest_pair_delta_e(colours[:1]) == float("inf")


def test_the_drawing_fits_the_data_only_when_asked_and_explicit_colours_win():
    stats = {"budget": 23}
    fixed = DrawOptions(rgb_colours=32, palette_merge=7.0)
    assert fixed.fitted(stats) == fixed  # adapt_colours off: the preset's numbers
    adapted = DrawOptions(rgb_colours=32, palette_merge=7.0, adapt_colours=True)
    assert (adapted.fitted(stats).rgb_colours, adapted.fitted(stats).palette_merge) == (23, 7.0)  # the merge kept
    assert adapted.fitted(stats, palette_model=True) == adapted  # a palette model draws its own palette
    assert adapted.fitted(None) == adapted  # a checkpoint from before the statistics were kept
    given = adapted.changed(rgb_colours=16)  # --rgb-colours 16: the user's number, not the data's
    assert not given.adapt_colours and given.fitted(stats).rgb_colours == 16
    assert "23 colours a portrait (from the data)" in adapted.fitted(stats).describe()


def test_an_unmerged_drawing_keeps_the_median_portraits_colours_a_merged_one_the_budget():
    counts = [4] * 50 + [8] * 45 + [12] * 5
    stats = colour_statistics(flat_portraits(counts), native_scale=2)  # median 6, budget 9 (p95 8.2, up)
    unmerged = DrawOptions(rgb_colours=32, palette_merge=0.0, adapt_colours=True).fitted(stats)
    merged = DrawOptions(rgb_colours=32, palette_merge=7.0, adapt_colours=True).fitted(stats)
    assert (unmerged.rgb_colours, merged.rgb_colours) == (6, stats["budget"]) and stats["budget"] > 6
    assert drawing_budget({"budget": 8}, merged=False) == 8  # statistics without the per-portrait counts


def test_a_checkpoint_keeps_its_datas_colours_and_draws_with_their_budget(smoke_checkpoint):
    from heroportraits.sampling.sampler import Sampler
    from heroportraits.training.checkpoint import load_checkpoint

    ckpt = smoke_checkpoint(**{"draw.adapt_colours": True, "draw.rgb_colours": 6})
    state = load_checkpoint(ckpt)
    budget = drawing_budget(state["dataset"]["colours"], merged=state["config"]["draw"]["palette_merge"] > 0)
    sampler = Sampler.from_checkpoint(ckpt)
    assert sampler.drawing.rgb_colours == budget != 6 and sampler.drawing.adapt_colours
    images, _ = sampler.generate(4, seed=0)
    native = images[:, ::2, ::2].reshape(4, -1, 3)
    assert max(len(np.unique(im, axis=0)) for im in native) <= budget
    assert sampler.use({"rgb_colours": 3}).rgb_colours == 3  # --rgb-colours 3: the user's number


def shaded_portraits(n: int, colours: int, seed: int = 0) -> torch.Tensor:
    """(n, 3, 16, 16) in [-1, 1]: each portrait in `colours` far-apart base colours, every pixel jittered by a
    few dE (G's near-duplicate shades), so a merge at 7 dE joins the shades and keeps the bases apart."""
    g = torch.Generator().manual_seed(seed)
    base = torch.linspace(-0.9, 0.9, colours)[:, None] * torch.tensor([1.0, -1.0, 0.5])  # apart in every channel
    index = torch.randint(0, colours, (n, 16, 16), generator=g)
    index[:, 0, :colours] = torch.arange(colours)  # every base colour used
    image = base[index].permute(0, 3, 1, 2)
    return (image + 0.02 * torch.randn(image.shape, generator=g)).clamp(-1, 1)


def test_merged_counts_join_shades_and_the_counted_budget_is_the_smallest_that_reaches_the_target():
    raw = shaded_portraits(8, colours=5)
    assert merged_colour_counts(raw, 12, 0.0).min() > 5  # unmerged, the slots filled with shades
    assert merged_colour_counts(raw, 12, 7.0).max() == 5  # merged, the shades join: the five bases
    assert merged_colour_counts(raw, 3, 7.0).max() <= 3
    budget = counted_budget(raw, target=5.0, merge=7.0)
    assert merged_colour_counts(raw, budget, 7.0).mean() >= 5 > merged_colour_counts(raw, budget - 1, 7.0).mean()
    # out of reach: not the most allowed, but the smallest within a colour of what it draws
    most = merged_colour_counts(raw, 40, 7.0).mean()
    assert most < 6 and counted_budget(raw, target=6.0, merge=7.0, high=40) == counted_budget(raw, most - 1, 7.0)
    assert counted_budget(raw, target=6.0, merge=7.0, high=40) < 40
    assert counted_budget(raw, target=4.0, merge=0.0) == 4  # unmerged, the count is the budget


def test_a_merged_adapted_drawing_counts_its_budget_on_the_models_own_portraits(smoke_checkpoint, tmp_path):
    from heroportraits.sampling.export import example_inputs, export_generator, run_exported
    from heroportraits.sampling.sampler import Sampler

    drawing = {"draw.adapt_colours": True, "draw.rgb_colours": 6, "draw.palette_merge": 7.0}
    ckpt = smoke_checkpoint(**drawing)
    sampler = Sampler.from_checkpoint(ckpt)
    labels = sampler.draw_conditions(COUNTED_PORTRAITS, seed=0, open_attributes="mix")[:, sampler.cond_cols]
    with sampler.drawn_with(DrawOptions()), torch.no_grad():
        raw = sampler.G(sampler.noise(COUNTED_PORTRAITS, 0), labels)
    target = sampler.colours["per_portrait"]["mean"]
    budget = sampler.drawing.rgb_colours
    assert budget == counted_budget(raw, target, 7.0) and sampler.drawing.adapt_colours
    assert budget == 2 or merged_colour_counts(raw, budget - 1, 7.0).mean() < target
    again = Sampler.from_checkpoint(smoke_checkpoint(**drawing))
    assert again.drawing == sampler.drawing  # counted on fixed portraits: the same every time
    assert sampler.use({"rgb_colours": 3}).rgb_colours == 3  # --rgb-colours 3: the user's number
    assert sampler.use(None).rgb_colours == budget  # the run's drawing again, counted once
    out = export_generator(ckpt, tmp_path / "g.pt", "torchscript")  # the file draws the counted budget too
    noise, labels = example_inputs(sampler, 5, seed=2)
    assert np.array_equal(run_exported(out, noise.numpy(), labels.numpy()), sampler.render(noise, labels))
