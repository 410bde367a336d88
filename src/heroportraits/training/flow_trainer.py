"""The flow family's training iteration (`FlowTrainer.step`): one regression step of the velocity network.

It has the GAN Trainer's outside (trainer.py): `step(next_batch)` returns 0-dim tensors named in `stats`, the
EMA generator `G_ema` draws the grids and is scored, `networks_state` / `load_networks` and `state_dict` are
what a checkpoint holds, so the loop, the run files, resume, the divergence guard and the benchmark serve both
families without asking which one they drive (models/flow.py says what is learned).
"""

from __future__ import annotations

import torch
from torch import nn

from heroportraits.data.attributes import Vocabulary
from heroportraits.models.flow import flow_matching_loss
from heroportraits.models.precision import bf16_autocast
from heroportraits.training import distributed
from heroportraits.training.config import Config
from heroportraits.training.distributed import DistInfo, unwrap, without_ddp
from heroportraits.training.ema import ema_beta, make_ema, update_ema
from heroportraits.training.trainer import NextBatch, lr_scale

FLOW_STATS = ("loss", "grad_norm")


class FlowTrainer:
    """One flow-matching iteration and the state it carries between iterations.

    `step(next_batch)`: a batch of reals on the network grid, attribute dropout (so the network also learns the
    unconditional velocity that classifier-free guidance needs), the flow-matching loss at a random time per
    image, one optimiser step with the gradient clipped to norm 1, the EMA update. G is the FlowGenerator
    (DDP-wrapped under torchrun); there is no D (`D` and `opt_D` are None). All randomness comes from
    `generator`."""

    stats = FLOW_STATS
    D = None
    opt_D = None

    def __init__(
        self,
        G: nn.Module,
        cfg: Config,
        vocab: Vocabulary,
        generator: torch.Generator,
        dist_info: DistInfo | None = None,
    ):
        tc = cfg.train
        self.G, self.tc, self.gen = G, tc, generator
        self.dist = dist_info or DistInfo()
        self.G_ema = make_ema(unwrap(G))
        self.opt_G = torch.optim.Adam(G.parameters(), lr=tc.g_lr, betas=tuple(tc.g_betas))
        self.optimisers = {"opt_G": self.opt_G}
        self.device = next(unwrap(G).parameters()).device
        self.z_dim = unwrap(G).z_dim
        self.compiled = ["G"] if hasattr(without_ddp(G), "_orig_mod") else []
        self.autocast = bf16_autocast(self.device, tc.amp)
        self.unspecified = torch.tensor(vocab.sizes, dtype=torch.long, device=self.device)  # (A,)
        self.iteration = 0  # optimiser steps done: all the state besides networks, optimiser and RNG
        self.palette_layers: list = []

    def noise(self, n: int) -> torch.Tensor:
        """Starting images for the sampler, flat (n, 3 R R)."""
        return torch.randn(n, self.z_dim, generator=self.gen, device=self.device)

    def noise_std(self, iteration: int | None = None) -> float:
        """Instance noise is a GAN's: always 0 here (metrics.csv keeps the column)."""
        return 0.0

    def drop_attributes(self, labels: torch.Tensor) -> torch.Tensor:
        """Attribute dropout: each label -> "unspecified" with probability attr_dropout."""
        if self.tc.attr_dropout <= 0 or labels.shape[1] == 0:
            return labels
        drop = torch.rand(labels.shape, generator=self.gen, device=labels.device) < self.tc.attr_dropout
        return torch.where(drop, self.unspecified.expand_as(labels), labels)

    def step(self, next_batch: NextBatch, bare: bool = False) -> dict[str, torch.Tensor]:
        """One iteration; bare=True skips attribute dropout and the EMA update (the benchmark's networks-only
        time)."""
        tc = self.tc
        if tc.lr_decay > 0:
            for group in self.opt_G.param_groups:
                group["lr"] = tc.g_lr * lr_scale(tc.steps, tc.lr_decay, self.iteration)
        real, y, *paired = next_batch()  # a distillation's batches carry each portrait's noise (training/distil.py)
        noise = paired[0] if paired else None
        y = y if bare or noise is not None else self.drop_attributes(y)  # a teacher's pairs hold their own dropout
        with self.autocast:
            times = tc.teacher_times if noise is not None else 0  # a student may fit only its drawing's times
            loss = flow_matching_loss(self.G, real, y, self.gen, noise=noise, times=times)
        self.opt_G.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.G.parameters(), 1.0)
        self.opt_G.step()
        distributed.sync_buffers(self.G, self.dist)
        if not bare:
            self.update_ema(real.shape[0] * self.dist.world_size)
        self.iteration += 1
        return {"loss": loss.detach(), "grad_norm": grad_norm.detach()}

    def update_ema(self, batch: int) -> None:
        """EMA of the velocity network (its weights are what draws), as for a GAN's G."""
        tc, beta = self.tc, 0.0
        if self.iteration >= tc.ema_start:
            beta = ema_beta(tc.ema_decay, batch, self.iteration * batch, tc.ema_rampup)
        update_ema(self.G_ema, unwrap(self.G), beta)

    # ---- checkpoints
    def networks_state(self) -> dict:
        """The networks and optimiser, as a checkpoint holds them."""
        return {"G": unwrap(self.G).state_dict(), "G_ema": self.G_ema.state_dict(), "opt_G": self.opt_G.state_dict()}

    def load_networks(self, state: dict) -> None:
        unwrap(self.G).load_state_dict(state["G"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])

    def state_dict(self) -> dict:
        return {"iteration": self.iteration}

    def load_state_dict(self, state: dict) -> None:
        self.iteration = int(state["iteration"])
