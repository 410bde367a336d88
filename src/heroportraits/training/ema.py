"""Exponential moving average of generator weights (samples come from the EMA copy).

Batch-norm in the EMA copy: its running mean/variance buffers are *copied* from the
trained G at every update, not averaged (as in stylegan2-ada). They describe the
activations of the current weights, which the EMA weights stay close to; averaging
statistics of old weights would mismatch the scale of the averaged ones less well
than the latest estimate does. The EMA copy always runs in eval mode, so sampling
uses those running statistics and never updates them. Spectral-norm power-iteration
vectors (u, v) are buffers too, and are copied the same way.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def make_ema(model: nn.Module) -> nn.Module:
    ema = copy.deepcopy(model).eval()
    ema.requires_grad_(False)
    return ema


def ema_beta(decay: float, batch_size: int, images_seen: int, rampup: float = 0.0) -> float:
    """The per-step EMA coefficient, with stylegan2-ada's ramp-up.

    `decay` per step means a half-life of batch * ln 0.5 / ln decay images; with ramp-up
    the half-life is at most rampup x images seen so far, so early weights (random
    noise) are forgotten quickly. Returns 0 (= copy) when decay <= 0; decay = 1 freezes
    the average (half-life infinite) except while the ramp-up caps it.
    """
    if decay > 1:
        raise ValueError(f"train.ema_decay={decay} must be in [0, 1] (0 disables the EMA, 0.999 is typical)")
    if decay <= 0:
        return 0.0
    half_life = batch_size * math.log(0.5) / math.log(decay) if decay < 1 else math.inf  # in images
    if rampup > 0:
        half_life = min(half_life, images_seen * rampup)
    return 0.5 ** (batch_size / max(half_life, 1e-8))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * model for parameters; buffers copied (see above)."""
    ema_params, params = list(ema.parameters()), [p.detach() for p in model.parameters()]
    ema_buffers, buffers = list(ema.buffers()), list(model.buffers())
    if len(ema_params) != len(params) or len(ema_buffers) != len(buffers):
        raise ValueError(
            "the EMA copy and the model have different parameters/buffers; build the EMA copy with make_ema(model)"
        )
    if ema_params:
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)
    for b_ema, b in zip(ema_buffers, buffers):
        b_ema.copy_(b)
