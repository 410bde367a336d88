"""Per-portrait colour quantisation of an RGB generator's samples (`draw.rgb_colours`, sampling only).

An RGB generator regresses three numbers a pixel, so every small error is a new colour: ~1,000
colours a portrait where pixel art uses ~18, and soft noisy steps between neighbours. A pixel artist
reduces a painting to a small palette of its own; this does the same to each sample: the portrait's
native pixels are clustered into at most K colours by k-means in OKLab (where equal distances look
alike), and each pixel is drawn in its cluster's mean colour. Nothing changes in training (D never
sees it), so it can be switched on or off for any trained RGB model. It is the RGB twin of the
palette output's merge (models/palette_output.py): there G picks each pixel from a palette it draws;
here the palette is found after G drew. docs/log/2026-12-03-per-portrait-quantisation.md measures it.

Deterministic and made of fixed-size tensor ops only (no sampling, no data-dependent loop), so a
portrait quantises the same in every batch and exported ONNX / TorchScript files carry it: the
start centres are chosen farthest-first (each new centre the pixel furthest from the ones chosen),
then a fixed number of Lloyd steps.
"""

from __future__ import annotations

import torch

from heroportraits.data.oklab import unit_rgb_to_oklab

LLOYD_STEPS = 10  # k-means iterations after the farthest-first start
CHUNK = 64  # portraits clustered at once: their (N, P, K) distance scores stay in cache (~1.5x faster than 256)


def nearest_centre(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Each point's nearest centre: points (N, P, 3), centres (N, K, 3) -> (N, P) indices. The squared
    distance |x - c|^2 = |x|^2 - 2 x.c + |c|^2 less |x|^2 (the same for every centre of a point) is one
    batched matrix product; the (N, P, K, 3) differences it avoids made sampling ~5 times slower. The indices of
    `min`, not `argmin`: the same first minimum, and on CPU 1.5-2x faster over a short last axis (k colours)."""
    scores = torch.baddbmm((centres * centres).sum(-1)[:, None, :], points, centres.transpose(1, 2), alpha=-2.0)
    return scores.min(-1).indices


def farthest_first(points: torch.Tensor, k: int) -> torch.Tensor:
    """k start centres per portrait: the pixel nearest the mean colour, then each time the pixel
    furthest from every centre chosen so far. points (N, P, 3) -> centres (N, k, 3)."""
    planes = points.permute(2, 0, 1).contiguous()  # (3, N, P): one colour channel per plane, for fast sums

    def squared_distances(centre: torch.Tensor) -> torch.Tensor:  # (N, 3) -> (N, P)
        d = planes - centre.T[:, :, None]
        return d[0] * d[0] + d[1] * d[1] + d[2] * d[2]

    rows = torch.arange(points.shape[0], device=points.device)
    centres = [points[rows, squared_distances(points.mean(1)).argmin(1)]]
    nearest = squared_distances(centres[0])  # (N, P) to the closest centre so far
    for _ in range(k - 1):
        centres.append(points[rows, nearest.argmax(1)])
        nearest = torch.minimum(nearest, squared_distances(centres[-1]))
    return torch.stack(centres, dim=1)


def cluster_colours(images: torch.Tensor, k: int, steps: int = LLOYD_STEPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Each portrait's own palette of at most k colours: images (N, 3, H, W) in [-1, 1] -> colours
    (N, k, 3) in [-1, 1] (each cluster's mean colour in RGB) and index (N, H, W) (each pixel's cluster),
    from k-means on the pixels' OKLab colours."""
    exporting = torch.jit.is_tracing() or torch.compiler.is_compiling()  # a traced graph has one batch, any size
    if not exporting and images.shape[0] > CHUNK:
        parts = [cluster_colours(part, k, steps) for part in images.split(CHUNK)]
        return torch.cat([colours for colours, _ in parts]), torch.cat([index for _, index in parts])
    n, _, h, w = images.shape
    rgb = images.float().flatten(2).transpose(1, 2).contiguous()  # (N, P, 3)
    lab = unit_rgb_to_oklab((rgb + 1.0) / 2.0)
    centres = farthest_first(lab, k)
    ones = torch.ones_like(lab[..., :1])
    counted = torch.cat([lab, ones], dim=-1)  # (N, P, 4): a cluster's colour sums and its size in one pass
    for _ in range(steps):
        sums = cluster_sums(nearest_centre(lab, centres), counted, k)  # (N, k, 4)
        counts = sums[..., 3:]
        centres = torch.where(counts > 0, sums[..., :3] / counts.clamp_min(1.0), centres)
    assign = nearest_centre(lab, centres)  # (N, P): the last pass only assigns
    sums = cluster_sums(assign, torch.cat([rgb, ones], dim=-1), k)
    colours = sums[..., :3] / sums[..., 3:].clamp_min(1.0)  # (N, k, 3)
    return colours, assign.reshape(n, h, w)


def cluster_sums(assign: torch.Tensor, values: torch.Tensor, k: int) -> torch.Tensor:
    """values (N, P, C) summed over the pixels that `assign` (N, P) puts in each of k clusters -> (N, k, C)."""
    index = assign[..., None].expand(-1, -1, values.shape[-1])
    return torch.zeros(values.shape[0], k, values.shape[-1], dtype=values.dtype, device=values.device).scatter_add_(
        1, index, values
    )
