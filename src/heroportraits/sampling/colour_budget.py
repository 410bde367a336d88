"""A merged drawing's colour budget, counted on the model's own portraits.

Unmerged, a per-portrait quantiser fills every slot, so the data's median colours a portrait is the budget
(data/colour_stats.drawing_budget). Merged, it is not: the merge joins near-duplicate shades, and how many a model
draws is the model's own. On the built-in data, 32 colours merged at 7 dE leave the demo GAN 20.8 a portrait and the
flow model 14.9 (real 18.2), and no budget read from the data alone lands both
(docs/log/2026-12-05-colour-budget-both-datasets.md). So a merged adapted drawing (`draw.adapt_colours` with
`draw.palette_merge` > 0) counts its budget once, on a fixed batch of the model's portraits: the smallest budget
whose merged portraits hold, on average, as many colours as the data's portraits do.
"""

from __future__ import annotations

import torch

from heroportraits.models.palette_output import RGBOutput

COUNTED_PORTRAITS = 64  # the batch the budget is counted on (seed 0, the training label mix)
MAX_BUDGET = 256  # no portrait is drawn in more colours than this
SHORT_BY = 1.0  # out of reach: the budget that draws within this many colours of MAX_BUDGET's count


def merged_colour_counts(raw: torch.Tensor, budget: int, merge: float) -> torch.Tensor:
    """(N,) how many colours each of the portraits `raw` (N, 3, H, W) in [-1, 1], as G drew them, keeps when
    quantised to `budget` colours of its own and merged at `merge` dE by the RGB output's own quantiser (as drawing
    does), counted in 8-bit RGB as they are saved."""
    quantised = RGBOutput(budget, merge, squash=False).eval()(raw, None, None)
    pixels = quantised.clamp(-1, 1).add(1).mul(127.5).round().long()  # (N, 3, H, W)
    codes = (pixels[:, 0] * 65536 + pixels[:, 1] * 256 + pixels[:, 2]).flatten(1)  # (N, HW)
    return torch.tensor([len(torch.unique(row)) for row in codes], dtype=torch.float64)


def counted_budget(raw: torch.Tensor, target: float, merge: float, low: int = 2, high: int = MAX_BUDGET) -> int:
    """The smallest budget in [low, high] whose merged portraits (merged_colour_counts) hold on average at least
    `target` colours. When none does (art with more colours than the merge leaves, e.g. LPC's close shades at 7 dE),
    the smallest that comes within SHORT_BY colours of what `high` reaches: more slots would add nothing a player
    sees, and every slot costs drawing time. Bisection: more slots never leave fewer colours after the merge, up to
    k-means' own noise, which a batch's mean evens out."""
    raw = raw[:, :3].float()
    most = float(merged_colour_counts(raw, high, merge).mean())
    if most < target:
        target = most - SHORT_BY
    while low < high:
        mid = (low + high) // 2
        if merged_colour_counts(raw, mid, merge).mean() >= target:
            high = mid
        else:
            low = mid + 1
    return low
