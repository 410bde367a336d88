"""How a dataset's portraits use colour, measured at `build` (dataset.json's `colours`): how many colours a
portrait holds, and how close its distinct colours come to each other.

Drawing adapts to it (`draw.adapt_colours`, models/config.py; `drawing_budget`): unmerged, every slot is filled,
so the per-portrait quantiser keeps as many colours as a typical portrait holds (the median); merged, the merge joins
near-duplicate shades, as many as the model draws, so a sampler counts that budget on the model's own portraits
(sampling/colour_budget.py), from the high percentile here as the first guess (the grids written while training).
Either way art with 65 colours a portrait is not cut to a budget chosen for the built-in art's 18. The closest
pairs are kept for the record: a merge that would keep the art's own colours apart (on the built-in art, below ~5
dE) leaves the demo's G speckled (docs/log/2026-12-05-colour-budget.md), so the merge stays the recipe's
`draw.palette_merge`.
"""

from __future__ import annotations

import numpy as np

from heroportraits.data.oklab import DELTA_E_SCALE, rgb_to_oklab

BUDGET_PERCENTILE = 95  # the colour budget: this percentile of the real colours a portrait


def portrait_colours(image: np.ndarray) -> np.ndarray:
    """The distinct colours of one image (H, W, 3) uint8 -> (C, 3) uint8."""
    return np.unique(np.asarray(image, np.uint8).reshape(-1, 3), axis=0)


def closest_pair_delta_e(colours: np.ndarray) -> float:
    """The smallest dE between two distinct colours of a portrait (inf for a single colour)."""
    if len(colours) < 2:
        return float("inf")
    lab = rgb_to_oklab(colours)
    d = DELTA_E_SCALE * np.sqrt(((lab[:, None] - lab[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return float(d.min())


def colour_statistics(images: np.ndarray, native_scale: int = 1, limit: int = 2000, seed: int = 0) -> dict:
    """Colour use of (N, H, W, 3) uint8 portraits on their native grid (at most `limit` of them, a seeded sample):
    colours a portrait (mean, median, p90, p95, max), the dE of each portrait's closest pair of colours (p5, p10,
    median), and the colour `budget` derived from them (see the module docstring)."""
    images = np.asarray(images, np.uint8)
    if len(images) > limit:
        images = images[np.sort(np.random.default_rng(seed).choice(len(images), limit, replace=False))]
    native = images[:, ::native_scale, ::native_scale]
    colours = [portrait_colours(im) for im in native]
    counts = np.array([len(c) for c in colours], np.float64)
    closest = np.array([closest_pair_delta_e(c) for c in colours])
    closest = closest[np.isfinite(closest)]
    return {
        "n": int(len(images)),
        "per_portrait": {
            "mean": float(counts.mean()),
            "median": float(np.median(counts)),
            "p90": float(np.percentile(counts, 90)),
            "p95": float(np.percentile(counts, BUDGET_PERCENTILE)),
            "max": int(counts.max()),
        },
        "closest_pair_delta_e": {
            "p5": float(np.percentile(closest, 5)) if len(closest) else 0.0,
            "p10": float(np.percentile(closest, 10)) if len(closest) else 0.0,
            "median": float(np.median(closest)) if len(closest) else 0.0,
        },
        "budget": int(max(2, np.ceil(np.percentile(counts, BUDGET_PERCENTILE)))),
    }


def drawing_budget(stats: dict, merged: bool) -> int:
    """The colours a portrait a drawing fitted to `stats` (colour_statistics) keeps: the budget (the high
    percentile) when a merge follows (a Sampler then counts it on the model's portraits), the median when none
    does (an unmerged quantiser fills every slot: on LPC art the 95th percentile gives +63 % colours, the median
    lands within 3 %; docs/log/2026-12-05-colour-budget-both-datasets.md)."""
    if merged or "per_portrait" not in stats:
        return int(stats["budget"])
    return int(max(2, round(stats["per_portrait"]["median"])))
