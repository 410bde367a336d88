"""A dataset's colour use (measured at build) and the drawing fitted to it (draw.adapt_colours)."""

from __future__ import annotations

import numpy as np
import pytest

from heroportraits.data.colour_stats import closest_pair_delta_e, colour_statistics, drawing_budget
from heroportraits.data.oklab import delta_e
from heroportraits.models.config import DrawOptions


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
