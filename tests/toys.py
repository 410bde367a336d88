"""Tiny training set-ups that several test modules share (imported as `from toys import ...`)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from heroportraits.data.attributes import Vocabulary
from heroportraits.models import build_models
from heroportraits.training.presets import resolve_config
from heroportraits.training.trainer import Trainer

TOY_VOCAB = Vocabulary({"gender": ["m", "f"], "hero_class": ["a", "b", "c", "d"]})
# Every model family as overrides of the smoke preset (a tiny DCGAN): the run machinery's tests take each.
FAMILIES = {
    "gan": {},
    "style": {"model.arch": "style"},  # StyleGAN2's G against the DCGAN D
    "flow": {"model.arch": "unet", "train.attr_dropout": 0.1, "draw.flow_steps": 2},
}


def toy_trainer(d: nn.Module | None = None, **overrides) -> tuple[Trainer, Callable]:
    """A Trainer on 8x8 random images with tiny nets, and its batch source; `d` replaces the discriminator."""
    cfg = resolve_config(
        "smoke",
        {
            "model.g_width": 4,
            "model.d_width": 4,
            "model.z_dim": 8,
            "model.embed_dim": 2,
            "train.batch_size": 6,
            "train.device": "cpu",
            **overrides,
        },
    )
    torch.manual_seed(0)
    G, D = build_models(cfg.model, TOY_VOCAB, 8)
    gen = torch.Generator().manual_seed(0)
    trainer = Trainer(G, d if d is not None else D, cfg, TOY_VOCAB, gen)

    def next_batch():
        x = torch.rand(6, 3, 8, 8, generator=gen) * 2 - 1
        return x, torch.stack([torch.randint(0, s, (6,), generator=gen) for s in TOY_VOCAB.sizes], 1)

    return trainer, next_batch
