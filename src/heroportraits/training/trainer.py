"""One training iteration (`Trainer.step`) and the state it carries from one to the next.

The loop (loop.py), the benchmark (bench.py) and every rank of a multi-GPU run drive
this class; `setup.setup_training` builds it from a config and the data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from heroportraits.data.attributes import Vocabulary
from heroportraits.models.precision import bf16_autocast
from heroportraits.training import distributed
from heroportraits.training.augment import diff_augment, instance_noise_std, parse_policy
from heroportraits.training.config import Config
from heroportraits.training.distributed import DistInfo, unwrap, without_ddp
from heroportraits.training.ema import ema_beta, make_ema, update_ema
from heroportraits.training.losses import get_losses, lecam_penalty, mode_seeking_penalty, r1_penalty
from heroportraits.training.pixel_art import palette_layers, recon_part, tau

# What `Trainer.step` returns, all 0-dim tensors; metrics.csv adds step, time and noise std.
STEP_STATS = ["d_loss", "g_loss", "d_real", "d_fake", "r1", "r2", "lecam", "ada_p", "rt", "recon", "d_class", "d_head"]

NextBatch = Callable[[], tuple[torch.Tensor, torch.Tensor]]


class GBatch(NamedTuple):
    """G's batch of a step, with its graph: what the G phase back-propagates through."""

    z: torch.Tensor
    labels: torch.Tensor
    fakes: torch.Tensor


def lr_scale(steps: int, decay: float, iteration: int) -> float:
    """The learning rates' factor at `iteration`: 1, then linearly to 0 over the last `decay` share of `steps`."""
    span = decay * steps
    return 1.0 if span <= 0 else min(1.0, max(0.0, (steps - iteration) / span))


class Trainer:
    """One training iteration and the state it carries between iterations.

    `step(next_batch)` runs `n_dis` D phases (each on a fresh batch, with R1 every
    `r1_every` D updates and the LeCam term), one G phase on the last batch's labels (with
    `train.reuse_fakes` the last D phase already trains on G's batch: one G forward a step),
    the EMA update and the ADA adjustment; it returns a dict of 0-dim tensors
    (STEP_STATS) and never calls .item(), so a GPU never waits for the host.

    `next_batch()` -> (real (B, 3, R, R) in [-1, 1], labels (B, A)) on the device.
    `vocab` is the conditioning vocabulary (its sizes are the "unspecified" indices).
    `pixel` is the native pixel size of the images D sees (translation moves whole ones).
    All randomness (noise, attribute dropout, augmentation) comes from `generator`.
    With `dist_info` of a multi-process run, G and D are DDP-wrapped (gradients averaged
    over ranks); the ADA statistics and LeCam anchors are averaged over ranks and the
    buffers broadcast from rank 0 each step, so every rank carries the same state.

    A model family's trainer (this one: GANs; flow_trainer.FlowTrainer: the flow family) has the same outside:
    `stats`, `step`, `G`, `G_ema`, `optimisers`, `z_dim`, `noise`, `noise_std`, `networks_state` /
    `load_networks` and `state_dict` / `load_state_dict`; the loop and the run files use nothing else.
    """

    stats = tuple(STEP_STATS)

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        cfg: Config,
        vocab: Vocabulary,
        generator: torch.Generator,
        pixel: int = 1,
        dist_info: DistInfo | None = None,
    ):
        tc = cfg.train
        self.G, self.D, self.tc, self.z_dim = G, D, tc, cfg.model.z_dim
        self.dist = dist_info or DistInfo()
        self.G_ema = make_ema(unwrap(G))
        self.opt_G = torch.optim.Adam(G.parameters(), lr=tc.g_lr, betas=tuple(tc.g_betas))
        self.opt_D = torch.optim.Adam(D.parameters(), lr=tc.d_lr, betas=tuple(tc.d_betas))
        self.optimisers = {"opt_G": self.opt_G, "opt_D": self.opt_D}
        self.d_loss_fn, self.g_loss_fn = get_losses(tc.loss)
        self.gen, self.pixel = generator, pixel
        self.device = next(unwrap(G).parameters()).device
        self.compiled = [n for n, m in (("G", G), ("D", D)) if hasattr(without_ddp(m), "_orig_mod")]
        self.policy = ",".join(parse_policy(tc.augment))
        self.ada = tc.ada_target > 0
        self.autocast = bf16_autocast(self.device, tc.amp)
        self.unspecified = torch.tensor(vocab.sizes, dtype=torch.long, device=self.device)  # (A,)
        # State that exact resume needs (see state_dict).
        self.iteration = 0  # G updates done
        self.ada_p = torch.tensor(0.0 if self.ada else tc.augment_p, device=self.device)
        self.ada_stats = torch.zeros(2, device=self.device)  # sum of sign(D(real)), count since last adjust
        self.lecam_anchors = torch.zeros(2, device=self.device)  # EMA of mean D(real), mean D(fake)
        self._zero = torch.zeros((), device=self.device)
        self.model_cfg = cfg.model
        self.palette_layers = palette_layers(unwrap(G), generator)  # palette output: tau set each step

    # ---- the pieces of an iteration
    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=self.gen, device=self.device)

    def noise_std(self, iteration: int | None = None) -> float:
        """The instance-noise std at `iteration` (default: the coming one), on its schedule."""
        tc = self.tc
        it = self.iteration if iteration is None else iteration
        return instance_noise_std(tc.instance_noise_std, tc.instance_noise_steps, it, tc.steps)

    def drop_attributes(self, labels: torch.Tensor) -> torch.Tensor:
        """Attribute dropout: each label -> "unspecified" with probability attr_dropout."""
        if self.tc.attr_dropout <= 0 or labels.shape[1] == 0:
            return labels
        drop = torch.rand(labels.shape, generator=self.gen, device=labels.device) < self.tc.attr_dropout
        return torch.where(drop, self.unspecified.expand_as(labels), labels)

    def d_input(self, x: torch.Tensor, noise_std: float) -> torch.Tensor:
        """What D sees: DiffAugment (probability p per op), then instance noise."""
        if self.policy:
            p = self.ada_p if self.ada else self.tc.augment_p
            x = diff_augment(x, self.policy, p=p, pixel=self.pixel, generator=self.gen)
        if noise_std > 0:
            x = x + noise_std * torch.randn(x.shape, generator=self.gen, device=x.device, dtype=x.dtype)
        return x

    def step(self, next_batch: NextBatch, bare: bool = False) -> dict[str, torch.Tensor]:
        """One iteration. bare=True keeps only the networks' work (forwards, backwards, losses,
        optimiser steps) and skips augmentation, instance noise, attribute dropout and the EMA
        update: the benchmark times it beside the full step to see the time spent outside them."""
        tc = self.tc
        see = (lambda x, std: x) if bare else self.d_input
        noise_std = self.noise_std()
        for layer in self.palette_layers:  # the palette's softmax temperature for this step (a buffer of G)
            layer.tau.fill_(tau(tc, self.iteration))
        if tc.lr_decay > 0:  # from the iteration alone, so a resumed run picks up the same rate
            scale = lr_scale(tc.steps, tc.lr_decay, self.iteration)
            for opt, lr in ((self.opt_G, tc.g_lr), (self.opt_D, tc.d_lr)):
                for group in opt.param_groups:
                    group["lr"] = lr * scale
        self.D.requires_grad_(True)
        r1 = r2 = self._zero  # the last R1 / R2 values of this iteration's D updates (lazy: not every update has one)
        for i in range(tc.n_dis):
            d = self._d_phase(next_batch, i, noise_std, see, bare)
            r1 = d["r1"] if d["r1"] is not None else r1
            r2 = d["r2"] if d["r2"] is not None else r2
        self.D.requires_grad_(False)
        g_batch = d["g_batch"]  # train.reuse_fakes: drawn in the last D phase; otherwise drawn now
        if g_batch is None:
            g_batch = self.g_forward(d["y"])
        g_loss = self._g_phase(g_batch, d["d_real"].detach(), noise_std, see)
        self.D.requires_grad_(True)

        # ---- ranks: batch-norm statistics / spectral-norm vectors from rank 0 (parameters already agree)
        distributed.sync_buffers(self.G, self.dist)
        distributed.sync_buffers(self.D, self.dist)
        batch = d["y"].shape[0] * self.dist.world_size
        if not bare:
            self.update_ema(batch)
        self.iteration += 1

        # ---- ADA: move p toward E[sign D(real)] = ada_target, every ada_interval steps
        if self.ada and self.iteration % tc.ada_interval == 0:
            self.adjust_ada(images=batch * tc.n_dis * tc.ada_interval)
        d_real = d["d_real"].detach()
        return {
            "d_loss": d["d_loss"].detach(),
            "g_loss": g_loss.detach(),
            "d_real": d_real.mean(),
            "d_fake": d["d_fake"].detach().mean(),
            "r1": r1.detach(),
            "r2": r2.detach(),
            "lecam": d["lecam"].detach(),
            "ada_p": self.ada_p.clone(),
            "rt": d_real.sign().mean(),
            "recon": d["recon"].detach(),
            "d_class": d["d_class"].detach(),
            "d_head": d["d_head"].detach(),
        }

    def _d_phase(self, next_batch: NextBatch, i: int, noise_std: float, see, bare: bool) -> dict:
        """D update i of this iteration: real vs fake under the same (possibly dropped) conditions.

        G and D may be DDP wrappers: only forwards whose backward updates that network go
        through the wrapper (its gradient all-reduce); the others use the module inside
        (compiled when train.compile is on).
        """
        tc, D = self.tc, self.D
        real, y = next_batch()
        y = y if bare else self.drop_attributes(y)
        lazy_turn = (self.iteration * tc.n_dis + i) % tc.r1_every == 0  # R1 and R2 share the lazy schedule
        do_r1, do_r2 = tc.r1_gamma > 0 and lazy_turn, tc.r2_gamma > 0 and lazy_turn
        real = real.detach().requires_grad_(do_r1)
        # D sees a non-leaf alias of a leaf it must differentiate by (R1): module backward hooks, such as the
        # FLOP counter's in `bench`, cannot take a leaf input under autograd.grad. The same values and gradients.
        real_in = real.view_as(real) if do_r1 else real
        g_batch, y_fake = None, y
        if tc.reuse_fakes and i == tc.n_dis - 1:  # G's own batch, kept (with its graph) for the G phase
            g_batch = self.g_forward(y)
            fake, y_fake = g_batch.fakes.detach(), g_batch.labels
        else:
            with torch.no_grad(), self.autocast:
                fake = without_ddp(self.G)(self.noise(real.shape[0]), y)
        fake = fake.requires_grad_(do_r2)  # R2 differentiates D by the fake images too
        fake_in = fake.view_as(fake) if do_r2 else fake
        # R1 back-propagates through D's input gradient (double backward), which compiled
        # graphs cannot: with train.compile, an R1 phase runs D eagerly (both forwards: a
        # compiled one would bump the batch-norm statistics the eager one saved)
        eager = (do_r1 or do_r2) and "D" in self.compiled
        mc = self.model_cfg
        part = recon_part(mc, self.iteration * tc.n_dis + i)  # self-supervised D: a quarter to rebuild, or None
        classify = mc.d_classify > 0 or mc.d_head_classify > 0  # AC-GAN: D also names the reals' attributes
        extras = {}
        with self.autocast, torch.compiler.set_stance("force_eager") if eager else contextlib.nullcontext():
            if part is None and not classify:
                d_real = D(see(real_in, noise_std), y).float()
            else:  # the decoders' L1 and the classifier's cross-entropy on this real batch join D's loss
                d_real, extras = D(see(real_in, noise_std), y, part=part, classify=classify)
                d_real = d_real.float()
            if mc.head_fake:  # D's head classifier also learns to name these fakes as fakes
                d_fake, fake_extras = D(see(fake_in, noise_std), y_fake, fakes=True)
                extras["head"] = extras["head"] + fake_extras["head_fake"]
            else:
                d_fake = D(see(fake_in, noise_std), y_fake)
            d_fake = d_fake.float()
        d_loss = self.d_loss_fn(d_real, d_fake)
        recon, d_class = extras.get("recon", self._zero), extras.get("class", self._zero)
        d_head = extras.get("head", self._zero)
        loss = d_loss + mc.d_recon * recon + mc.d_classify * d_class + mc.d_head_classify * d_head
        r1, r2, lecam = None, None, self._zero
        if tc.lecam_weight > 0:
            lecam = lecam_penalty(d_real, d_fake, self.lecam_anchors[0], self.lecam_anchors[1])
            loss = loss + tc.lecam_weight * lecam
            means = torch.stack([d_real.detach().mean(), d_fake.detach().mean()])
            self.lecam_anchors.lerp_(distributed.mean_over_ranks(means, self.dist), 1.0 - tc.lecam_decay)
        if do_r1:  # lazy R1: every r1_every D updates, scaled by r1_every (StyleGAN2)
            r1 = r1_penalty(d_real, real)
            loss = loss + (tc.r1_gamma / 2) * tc.r1_every * r1
        if do_r2:  # R2: the same penalty on the fakes (R3GAN)
            r2 = r1_penalty(d_fake, fake)
            loss = loss + (tc.r2_gamma / 2) * tc.r1_every * r2
        self.opt_D.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_D.step()
        self.ada_stats += torch.stack([d_real.detach().sign().sum(), self._zero + d_real.numel()])
        return {
            "y": y,
            "g_batch": g_batch,
            "d_loss": d_loss,
            "d_real": d_real,
            "d_fake": d_fake,
            "r1": r1,
            "r2": r2,
            "lecam": lecam,
            "recon": recon,
            "d_class": d_class,
            "d_head": d_head,
        }

    def g_forward(self, y: torch.Tensor) -> GBatch:
        """G's batch of a step on labels `y`. With mode seeking (MSGAN) the two halves share labels: the first
        half of `y`, twice."""
        yg = y[: y.shape[0] // 2].repeat(2, 1) if self.tc.mode_seeking > 0 else y
        z = self.noise(yg.shape[0])
        with self.autocast:
            return GBatch(z, yg, self.G(z, yg))

    def _g_phase(self, g_batch: GBatch, d_real: torch.Tensor, noise_std: float, see) -> torch.Tensor:
        """G update: fool D (frozen) with G's batch (`g_forward` on the last D batch's labels).

        `d_real`: D's logits on that batch's reals (before its update, no gradient); only the relativistic
        loss reads them, each fake paired with the real whose labels it was given, at no extra forward."""
        tc = self.tc
        z, yg, fake = g_batch
        if tc.mode_seeking > 0:
            d_real = d_real[: d_real.shape[0] // 2].repeat(2)
        mc = self.model_cfg
        with self.autocast:
            if mc.d_classify > 0 or mc.d_head_classify > 0:  # AC-GAN: G also pays when D's classifiers do not
                # name fakes as their conditions
                d_fake, extras = without_ddp(self.D)(see(fake, noise_std), yg, classify=True)
                g_loss = self.g_loss_fn(d_fake.float(), d_real)
                named = mc.d_classify * extras.get("class", 0.0) + mc.d_head_classify * extras.get("head", 0.0)
                g_loss = g_loss + named
            else:
                g_loss = self.g_loss_fn(without_ddp(self.D)(see(fake, noise_std), yg).float(), d_real)
        if tc.mode_seeking > 0:
            g_loss = g_loss + tc.mode_seeking * mode_seeking_penalty(fake.float(), z)
        self.opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_G.step()
        return g_loss

    def update_ema(self, batch: int) -> None:
        """EMA of G: a plain copy before ema_start; the half-life ramps up with the images seen
        (over all ranks; `batch` is the global batch)."""
        tc, beta = self.tc, 0.0
        if self.iteration >= tc.ema_start:
            beta = ema_beta(tc.ema_decay, batch, self.iteration * batch, tc.ema_rampup)
        update_ema(self.G_ema, unwrap(self.G), beta)

    def adjust_ada(self, images: int) -> None:
        """ADA (Karras et al. 2020): r_t = E[sign D(real)] over the last interval (all ranks); p moves
        up if D is over-confident on reals (r_t > target), down otherwise, by images / ada_kimg k."""
        stats = distributed.mean_over_ranks(self.ada_stats, self.dist)  # same ratio as the sums
        rt = stats[0] / stats[1].clamp(min=1)
        step = torch.sign(rt - self.tc.ada_target) * images / (self.tc.ada_kimg * 1000)
        self.ada_p = (self.ada_p + step).clamp(0.0, 1.0)
        self.ada_stats.zero_()

    # ---- checkpoints and exact resume
    def networks_state(self) -> dict:
        """The networks and optimisers, as a checkpoint holds them."""
        return {
            "G": unwrap(self.G).state_dict(),
            "D": unwrap(self.D).state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
        }

    def load_networks(self, state: dict) -> None:
        unwrap(self.G).load_state_dict(state["G"]), unwrap(self.D).load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"]), self.opt_D.load_state_dict(state["opt_D"])

    def state_dict(self) -> dict:
        """Everything besides the networks, optimisers and RNG that resuming needs."""
        return {
            "iteration": self.iteration,
            "ada_p": self.ada_p.detach().cpu(),
            "ada_stats": self.ada_stats.cpu(),
            "lecam_anchors": self.lecam_anchors.cpu(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.iteration = int(state["iteration"])
        if "ada_p" not in state:  # a checkpoint from before the Trainer kept its state: the step alone
            return
        self.ada_p = state["ada_p"].to(self.device)
        self.ada_stats = state["ada_stats"].to(self.device)
        self.lecam_anchors = state["lecam_anchors"].to(self.device)
