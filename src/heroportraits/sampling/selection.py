"""D-guided sampling: best-of-R selection (`--best-of R`) and noise refinement (`--refine T`), both
steered by D's auxiliary classifier.

A conditional G sometimes draws a portrait whose gender, class or palette the judge cannot read, or a
muddled one far from every real portrait. D's classifier (`model.d_classify`, AC-GAN) was trained on
the real portraits to name their attributes, so its log-likelihood of the asked labels tells how well a
portrait shows its condition:

* best of R draws R candidates a portrait and keeps the one the classifier agrees with most. It is
  rejection sampling guided by D (Azadi et al. 2019), ranked by the classifier rather than by D's realness:
  on the demo the classifier cut FD by a third where realness mostly lifted precision
  (docs/log/2026-12-03-best-of-four.md).
  About R + 1 generator passes and R passes of D a portrait.
* refinement moves each portrait's noise T small steps up the gradient of the classifier's log-likelihood
  plus a little of D's realness score, keeping the noise's length (so it stays where G was trained), the
  latent-space refinement of Tanaka 2019 (DOT) and Che et al. 2020 (DDLS) with D's classifier added.
  Models with D's head classifier (model.d_head_classify) can climb its log-likelihood too
  (draw.refine_head), so the head, not only colours and collars, moves towards the class.
  A portrait becomes a nearby one that shows its condition more plainly, rather than another draw: on the
  demo FD fell by half and precision passed 0.6 where best-of could not
  (docs/log/2026-12-03-refinement-by-d-classifier.md).
  About 3T passes of G and D a portrait.

Training is unchanged. Both score portraits as G drew them (before `rgb_colours` quantises), as D saw G's
portraits in training; the kept ones are quantised after.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from heroportraits.models.palette_output import palette_outputs, rgb_outputs
from heroportraits.models.precision import bf16_autocast


def classifier_agreement(D: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(N,) log-likelihood D's auxiliary classifier gives each image's asked labels (conditioning
    vocabulary indices). Both D architectures pass their features `phi` to their `out` layer and the
    classifier reads the same features, so they are taken from there."""
    return guidance_score(D, images, labels, realness=0.0)


def guidance_score(
    D: nn.Module, images: torch.Tensor, labels: torch.Tensor, realness: float, head: float = 0.0
) -> torch.Tensor:
    """(N,) the classifier's log-likelihood of each image's asked labels, plus `realness` x D's output (its
    realness score for those labels, projection term included), plus `head` x the log-likelihood D's head
    classifier gives the asked value of its attribute (D has one: model.d_head_classify)."""
    captured = {}
    hook = D.out.register_forward_hook(lambda _module, inputs, _output: captured.update(phi=inputs[0]))
    try:
        d = D(images, labels)
    finally:
        hook.remove()
    score = D.classifier.log_likelihood(captured["phi"], labels)
    if realness:
        score = score + realness * d.reshape(-1).float()
    if head:
        score = score + head * D.head_classifier.log_likelihood(images, labels)
    return score


@contextlib.contextmanager
def as_drawn(G: nn.Module, differentiable: bool = False):
    """G's RGB quantisation off inside: candidates are scored as G drew them, as D saw them in training.
    `differentiable`: a palette output draws its argmax colours with the soft mix's gradient (unmerged), so
    the noise's gradient reaches each pixel's choice of colour, not only the palette."""
    quantisers = [(out, out.colours) for out in rgb_outputs(G)]
    palettes = palette_outputs(G) if differentiable else []
    try:
        for out, _ in quantisers:
            out.colours = 0
        for out in palettes:
            out.differentiable = True
        yield G
    finally:
        for out, colours in quantisers:
            out.colours = colours
        for out in palettes:
            out.differentiable = False


def best_noise(
    G: nn.Module, D: nn.Module, candidates: torch.Tensor, labels: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """candidates (R, N, z_dim) noise, labels (N, A) -> (N, z_dim): for each portrait, the candidate whose
    image D's classifier agrees with most (the first on ties). G and D in eval mode."""

    def agreement(z: torch.Tensor) -> torch.Tensor:  # (N, z_dim) -> (N,), in batches
        parts = zip(z.split(batch_size), labels.split(batch_size))
        return torch.cat([classifier_agreement(D, G(part, y), y) for part, y in parts])

    with as_drawn(G), torch.no_grad():
        best = torch.stack([agreement(z) for z in candidates]).argmax(0)  # (N,)
    return candidates[best, torch.arange(candidates.shape[1])]


def refine_noise(
    G: nn.Module,
    D: nn.Module,
    z: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    rate: float,
    realness: float,
    batch_size: int = 256,
    head: float = 0.0,
    bf16: bool = False,
) -> torch.Tensor:
    """noise (N, z_dim), labels (N, A) -> (N, z_dim) after `steps` ascent steps on guidance_score (with
    `realness` and `head` as its weights). Each step
    moves a portrait's noise by `rate` x its length along its own normalised gradient, then rescales it
    to its length before the first step, so every portrait moves the same distance whatever its score's
    scale. Only the noise's gradient is computed (G's and D's weights get none). G and D in eval mode.
    `bf16`: G's and D's passes under bf16 autocast where the device computes bf16 natively (the noise, its
    gradient and each step stay float32; only the direction is normalised, so bf16's precision suffices)."""
    out = []
    autocast = bf16_autocast(z.device, bf16)
    with as_drawn(G, differentiable=True), torch.enable_grad():
        for part, y in zip(z.split(batch_size), labels.split(batch_size)):
            length = part.norm(dim=1, keepdim=True)
            for _ in range(steps):
                part = part.detach().requires_grad_(True)
                with autocast:
                    score = guidance_score(D, G(part, y), y, realness, head)
                (grad,) = torch.autograd.grad(score.float().sum(), part)
                part = part + rate * length * grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
                part = part * (length / part.norm(dim=1, keepdim=True).clamp_min(1e-12))
            out.append(part.detach())
    return torch.cat(out) if out else z
