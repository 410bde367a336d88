"""Per-portrait colour quantisation of an RGB generator's samples (`model.rgb_colours`, sampling only).

An RGB generator regresses three numbers a pixel, so every small error is a new colour: ~1,000
colours a portrait where pixel art uses ~18, and soft noisy steps between neighbours. A pixel artist
reduces a painting to a small palette of its own; this does the same to each sample: the portrait's
native pixels are clustered into at most K colours by k-means in OKLab (where equal distances look
alike), and each pixel is drawn in its cluster's mean colour. Nothing changes in training (D never
sees it), so it can be switched on or off for any trained RGB model. It is the RGB twin of the
palette output's merge (models/palette_output.py): there G picks each pixel from a palette it draws;
here the palette is found after G drew. docs/pixelart.md section 15 measures it.

Deterministic and made of fixed-size tensor ops only (no sampling, no data-dependent loop), so a
portrait quantises the same in every batch and exported ONNX / TorchScript files carry it: the
start centres are chosen farthest-first (each new centre the pixel furthest from the ones chosen),
then a fixed number of Lloyd steps.
"""

from __future__ import annotations

import torch

from heroportraits.data.oklab import unit_rgb_to_oklab

LLOYD_STEPS = 10  # k-means iterations after the farthest-first start


def farthest_first(points: torch.Tensor, k: int) -> torch.Tensor:
    """k start centres per portrait: the pixel nearest the mean colour, then each time the pixel
    furthest from every centre chosen so far. points (N, P, 3) -> centres (N, k, 3)."""
    n, p, _ = points.shape
    rows = torch.arange(n, device=points.device)
    first = ((points - points.mean(1, keepdim=True)) ** 2).sum(-1).argmin(1)  # (N,)
    centres = [points[rows, first]]
    nearest = ((points - centres[0][:, None]) ** 2).sum(-1)  # (N, P) squared distance to the closest centre
    for _ in range(k - 1):
        pick = nearest.argmax(1)
        centres.append(points[rows, pick])
        nearest = torch.minimum(nearest, ((points - centres[-1][:, None]) ** 2).sum(-1))
    return torch.stack(centres, dim=1)


def cluster_colours(images: torch.Tensor, k: int, steps: int = LLOYD_STEPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Each portrait's own palette of at most k colours: images (N, 3, H, W) in [-1, 1] -> colours
    (N, k, 3) in [-1, 1] (each cluster's mean colour in RGB) and index (N, H, W) (each pixel's cluster),
    from k-means on the pixels' OKLab colours."""
    n, _, h, w = images.shape
    rgb = images.float().flatten(2).transpose(1, 2)  # (N, P, 3)
    lab = unit_rgb_to_oklab((rgb + 1.0) / 2.0)
    centres = farthest_first(lab, k)
    slots = torch.arange(k, device=images.device)
    for _ in range(steps + 1):  # the last pass only assigns
        assign = ((lab[:, :, None] - centres[:, None]) ** 2).sum(-1).argmin(-1)  # (N, P)
        members = (assign[..., None] == slots).to(lab.dtype)  # (N, P, k)
        counts = members.sum(1)[..., None]  # (N, k, 1)
        centres = torch.where(counts > 0, members.transpose(1, 2) @ lab / counts.clamp_min(1.0), centres)
    colours = members.transpose(1, 2) @ rgb / counts.clamp_min(1.0)  # (N, k, 3)
    return colours, assign.reshape(n, h, w)
