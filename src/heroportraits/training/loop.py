"""The training loop: one function, read top to bottom, driving a `Trainer` whose `step()`
does one iteration (D phases, G phase, EMA, regularisers) and keeps the state between them.

    python -m heroportraits train --dataset procedural --preset cpu --run demo
    torchrun --nproc_per_node 4 -m heroportraits train --preset resnet_full_gpu --run-name big

writes to artifacts_gan/checkpoints/<run>/ (last.pt, config.json, metrics.csv,
losses.png; with train.eval_every > 0 also eval.jsonl and best.pt) and
artifacts_gan/samples/<run>/ (step_XXXXXX.png grids, latest.png), and resumes from
last.pt when the run folder already has one. `setup_training` builds everything a run
needs from the config and the data; `train()`, the benchmark and every rank of a
multi-GPU run (distributed.py) go through it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from heroportraits.data.attributes import Vocabulary
from heroportraits.data.dataset import PortraitData, load_dataset
from heroportraits.data.images import tensor_to_uint8
from heroportraits.drawing import fixed_noise, grid_layout, plot_losses, save_grid_figure
from heroportraits.models import build_models, conditioning_vocab, network_resolution, to_native, upscale_to_output
from heroportraits.paths import checkpoints_dir, samples_dir
from heroportraits.sample import Sampler
from heroportraits.training import distributed
from heroportraits.training.augment import diff_augment, instance_noise_std, parse_policy
from heroportraits.training.checkpoint import check_compatible, foreign_weights, load_checkpoint, save_checkpoint
from heroportraits.training.config import PRESETS, Config, preset_choices, resolve_config, validate_config
from heroportraits.training.distributed import DistInfo
from heroportraits.training.ema import ema_beta, make_ema, update_ema
from heroportraits.training.losses import get_losses, lecam_penalty, r1_penalty

# What `Trainer.step` returns, all 0-dim tensors; metrics.csv adds step, time and noise std.
STEP_STATS = ["d_loss", "g_loss", "d_real", "d_fake", "r1", "lecam", "ada_p", "rt"]
METRIC_COLUMNS = ["step", "seconds", "images_per_s", *STEP_STATS, "noise_std"]


@dataclass
class TrainResult:
    run: str
    checkpoint: Path  # last.pt
    samples: Path  # folder of sample grids
    step: int
    seconds: float
    best: dict | None = None  # {"fd", "step"} of best.pt, the lowest train-time FD (eval_every > 0; rank 0)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def label_mix(labels: torch.Tensor) -> dict:
    """Joint label rows and their counts: what `sample` draws conditions from."""
    rows, counts = torch.unique(labels.cpu(), dim=0, return_counts=True)
    return {"rows": rows.tolist(), "counts": counts.tolist()}


def batch_sampler(
    data: PortraitData,
    batch_size: int,
    resolution: int,
    cond_cols: torch.Tensor,
    generator: torch.Generator,
    channels_last: bool = False,
) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """A callable drawing random training batches on the data's device, without host syncs.

    Returns (real (B, 3, R, R) float in [-1, 1] on the network grid, labels (B, A') over
    the conditioning attributes `cond_cols`), real in channels-last memory if asked (the
    networks' layout with train.channels_last). The images are cut to the network grid
    once, here, so a batch gathers and converts only the pixels the networks see.
    """
    grid = PortraitData(to_native(data.images, resolution).contiguous(), data.labels, data.vocab, data.meta, data.files)
    layout = torch.channels_last if channels_last else torch.contiguous_format

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(grid), (batch_size,), generator=generator, device=grid.images.device)
        real, labels = grid.batch(idx)  # (B, 3, R, R), (B, A)
        return real.contiguous(memory_format=layout), labels[:, cond_cols]

    return next_batch


def mode_seeking_penalty(fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mode seeking (MSGAN, Mao et al. 2019): the two halves of the batch share their labels, and
    G is penalised by 1 / (|G(z1) - G(z2)| / |z1 - z2|), so two noises under one condition must
    give two different portraits.   fake: (2H, 3, R, R), z: (2H, Z) -> 0-dim."""
    x1, x2 = fake.chunk(2)
    z1, z2 = z.chunk(2)
    ratio = (x1 - x2).abs().mean(dim=(1, 2, 3)) / (z1 - z2).abs().mean(dim=1)  # (H,)
    return 1.0 / (ratio.mean() + 1e-5)


# The plain module inside a DDP / compiled wrapper (EMA, checkpoints and the benchmark want that).
_unwrap = distributed.unwrap


def _no_ddp(module: nn.Module) -> nn.Module:
    """The network without its DDP wrapper, still compiled when train.compile is on: for forwards
    that must not all-reduce gradients, at compiled speed."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def compile_enabled(mode: str, device: torch.device) -> bool:
    """train.compile: "on" everywhere, "cuda" only on a GPU (CPU compiles for ~30 s and gains nothing)."""
    return mode == "on" or (mode == "cuda" and device.type == "cuda")


class Trainer:
    """One training iteration and the state it carries between iterations.

    `step(next_batch)` runs `n_dis` D phases (each on a fresh batch, with R1 every
    `r1_every` D updates and the LeCam term), one G phase on the last batch's labels,
    the EMA update and the ADA adjustment; it returns a dict of 0-dim tensors
    (STEP_STATS) and never calls .item(), so a GPU never waits for the host.
    `train()` below, the benchmark and multi-GPU training all drive this class.

    `next_batch()` -> (real (B, 3, R, R) in [-1, 1], labels (B, A)) on the device.
    `vocab` is the conditioning vocabulary (its sizes are the "unspecified" indices).
    `pixel` is the native pixel size of the images D sees (translation moves whole ones).
    All randomness (noise, attribute dropout, augmentation) comes from `generator`.
    With `dist_info` of a multi-process run, G and D are DDP-wrapped (gradients averaged
    over ranks); the ADA statistics and LeCam anchors are averaged over ranks and the
    buffers broadcast from rank 0 each step, so every rank carries the same state.
    """

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        cfg: Config,
        vocab: Vocabulary,
        generator: torch.Generator,
        pixel: int = 1,
        G_ema: nn.Module | None = None,
        dist_info: DistInfo | None = None,
    ):
        tc = cfg.train
        self.G, self.D, self.tc, self.z_dim = G, D, tc, cfg.model.z_dim
        self.dist = dist_info or DistInfo()
        self.G_ema = G_ema if G_ema is not None else make_ema(_unwrap(G))
        self.opt_G = torch.optim.Adam(G.parameters(), lr=tc.g_lr, betas=tuple(tc.g_betas))
        self.opt_D = torch.optim.Adam(D.parameters(), lr=tc.d_lr, betas=tuple(tc.d_betas))
        self.d_loss_fn, self.g_loss_fn = get_losses(tc.loss)
        self.gen, self.pixel = generator, pixel
        self.device = next(_unwrap(G).parameters()).device
        self.compiled = [n for n, m in (("G", G), ("D", D)) if hasattr(_no_ddp(m), "_orig_mod")]  # torch.compile'd
        self.policy = ",".join(parse_policy(tc.augment))
        self.ada = tc.ada_target > 0
        self.autocast = torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=tc.amp and self.device.type == "cuda"
        )
        self.unspecified = torch.tensor(vocab.sizes, dtype=torch.long, device=self.device)  # (A,)
        # State that exact resume needs (see state_dict).
        self.iteration = 0  # G updates done
        self.ada_p = torch.tensor(0.0 if self.ada else tc.augment_p, device=self.device)
        self.ada_stats = torch.zeros(2, device=self.device)  # sum of sign(D(real)), count since last adjust
        self.lecam_anchors = torch.zeros(2, device=self.device)  # EMA of mean D(real), mean D(fake)
        self._zero = torch.zeros((), device=self.device)

    # ---- the pieces of an iteration
    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=self.gen, device=self.device)

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

    def step(self, next_batch: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        # G and D may be DDP wrappers: only forwards whose backward updates that network go
        # through the wrapper (its gradient all-reduce); the others use the module inside
        # (compiled when train.compile is on).
        tc, G, D, info = self.tc, self.G, self.D, self.dist
        G_plain, D_plain = _no_ddp(G), _no_ddp(D)
        noise_std = instance_noise_std(tc.instance_noise_std, tc.instance_noise_steps, self.iteration, tc.steps)
        r1, lecam = self._zero, self._zero

        # ---- D phases: real vs fake under the same (possibly dropped) conditions
        D.requires_grad_(True)
        for i in range(tc.n_dis):
            real, y = next_batch()
            y = self.drop_attributes(y)
            do_r1 = tc.r1_gamma > 0 and (self.iteration * tc.n_dis + i) % tc.r1_every == 0
            real = real.detach().requires_grad_(do_r1)
            with torch.no_grad(), self.autocast:
                fake = G_plain(self.noise(real.shape[0]), y)
            # R1 back-propagates through D's input gradient (double backward), which compiled
            # graphs cannot: with train.compile, an R1 phase runs D eagerly (both forwards: a
            # compiled one would bump the batch-norm statistics the eager one saved)
            eager = do_r1 and "D" in self.compiled
            with self.autocast, torch.compiler.set_stance("force_eager") if eager else contextlib.nullcontext():
                d_real = D(self.d_input(real, noise_std), y).float()
                d_fake = D(self.d_input(fake, noise_std), y).float()
            d_loss = self.d_loss_fn(d_real, d_fake)
            loss = d_loss
            if tc.lecam_weight > 0:
                lecam = lecam_penalty(d_real, d_fake, self.lecam_anchors[0], self.lecam_anchors[1])
                loss = loss + tc.lecam_weight * lecam
                means = torch.stack([d_real.detach().mean(), d_fake.detach().mean()])
                self.lecam_anchors.lerp_(distributed.mean_over_ranks(means, info), 1.0 - tc.lecam_decay)
            if do_r1:  # lazy R1: every r1_every D updates, scaled by r1_every (StyleGAN2)
                r1 = r1_penalty(d_real, real)
                loss = loss + (tc.r1_gamma / 2) * tc.r1_every * r1
            self.opt_D.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_D.step()
            self.ada_stats += torch.stack([d_real.detach().sign().sum(), self._zero + d_real.numel()])

        # ---- G phase: fool D on the last batch's conditions with fresh noise (D frozen)
        D.requires_grad_(False)
        yg = y if tc.mode_seeking <= 0 else y[: y.shape[0] // 2].repeat(2, 1)  # MSGAN: pairs share labels
        z = self.noise(yg.shape[0])
        with self.autocast:
            fake = G(z, yg)
            g_loss = self.g_loss_fn(D_plain(self.d_input(fake, noise_std), yg).float())
        if tc.mode_seeking > 0:
            g_loss = g_loss + tc.mode_seeking * mode_seeking_penalty(fake.float(), z)
        self.opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_G.step()
        D.requires_grad_(True)

        # ---- ranks: batch-norm statistics / spectral-norm vectors from rank 0 (parameters already agree)
        distributed.sync_buffers(G, info)
        distributed.sync_buffers(D, info)

        # ---- EMA of G (plain copy before ema_start; half-life ramps up with images seen, over all ranks)
        beta, batch = 0.0, y.shape[0] * info.world_size
        if self.iteration >= tc.ema_start:
            beta = ema_beta(tc.ema_decay, batch, self.iteration * batch, tc.ema_rampup)
        update_ema(self.G_ema, _unwrap(G), beta)
        self.iteration += 1

        # ---- ADA: move p toward E[sign D(real)] = ada_target, every ada_interval steps
        if self.ada and self.iteration % tc.ada_interval == 0:
            self.adjust_ada(images=batch * tc.n_dis * tc.ada_interval)

        return {
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            "d_real": d_real.detach().mean(),
            "d_fake": d_fake.detach().mean(),
            "r1": r1.detach(),
            "lecam": lecam.detach(),
            "ada_p": self.ada_p.clone(),
            "rt": d_real.detach().sign().mean(),
        }

    def adjust_ada(self, images: int) -> None:
        """ADA (Karras et al. 2020): r_t = E[sign D(real)] over the last interval (all ranks); p moves
        up if D is over-confident on reals (r_t > target), down otherwise, by images / ada_kimg k."""
        stats = distributed.mean_over_ranks(self.ada_stats, self.dist)  # same ratio as the sums
        rt = stats[0] / stats[1].clamp(min=1)
        step = torch.sign(rt - self.tc.ada_target) * images / (self.tc.ada_kimg * 1000)
        self.ada_p = (self.ada_p + step).clamp(0.0, 1.0)
        self.ada_stats.zero_()

    # ---- exact resume
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
        self.ada_p = state["ada_p"].to(self.device)
        self.ada_stats = state["ada_stats"].to(self.device)
        self.lecam_anchors = state["lecam_anchors"].to(self.device)


# ------------------------------------------------------------------ building a run
@dataclass
class TrainingSetup:
    """Everything one training process needs, built from a config and a dataset split."""

    trainer: Trainer  # networks (DDP-wrapped when distributed), EMA, optimisers, step state
    next_batch: Callable[[], tuple[torch.Tensor, torch.Tensor]]  # this rank's batches, on the device
    gen: torch.Generator  # this rank's stream: batches, noise, attribute dropout, augmentation
    vocab: Vocabulary  # the dataset's attributes (checkpoints store it)
    cvocab: Vocabulary  # the attributes the networks condition on (palette dropped when OFF)
    cond_cols: torch.Tensor  # (A',) columns of the dataset's labels that make up cvocab
    out_res: int  # the dataset's image size (64)
    net_res: int  # the networks' grid: out_res, or the native grid out_res / native_scale
    native_scale: int  # the dataset's native pixel size at out_res
    pixel: int  # native pixel size on the grid D sees (translation moves whole ones)
    label_mix: dict  # joint label rows/counts of the whole split: what sampling draws from
    shard: PortraitData  # this rank's rows of the split (all of them in one process), on the device
    info: DistInfo  # rank and world size (world size 1 outside torchrun)
    device: torch.device


def setup_training(
    cfg: Config, data: PortraitData, device: torch.device, info: DistInfo | None = None
) -> TrainingSetup:
    """Build a run's pieces from the data's own metadata: conditioning vocabulary, network and
    native resolution, models on `device`, Trainer, random stream and batch sampler.

    `info` (from distributed.setup) makes this one rank of a multi-process run: the rows
    are sharded, G and D wrapped in DDP, the batch split (train.batch_size is global) and
    the random stream seeded per rank. Without it, a single-process run.
    """
    info = info or DistInfo()
    tc, mc = cfg.train, cfg.model
    vocab = data.vocab
    cvocab = conditioning_vocab(mc, vocab)
    cond_cols = torch.tensor([vocab.names.index(n) for n in cvocab.names], device=device, dtype=torch.long)
    out_res = data.resolution
    net_res = network_resolution(mc, out_res, data.native_scale)
    pixel = max(1, data.native_scale * net_res // out_res)  # native pixel size on the grid D sees

    # ---- this rank's rows, on the device (all rows in a single process)
    shard = data
    if info.enabled:
        idx = distributed.shard_indices(len(data), info, seed=tc.seed)
        files = [data.files[i] for i in idx.tolist()] if data.files else []
        shard = PortraitData(
            data.images[idx.to(data.images.device)], data.labels[idx.to(data.labels.device)], vocab, data.meta, files
        )
    shard = shard.to(device)

    # ---- models (same seed on every rank; DDP also broadcasts rank 0's), EMA copy, optimisers
    torch.manual_seed(tc.seed)
    G, D = build_models(mc, vocab, net_res)
    G, D = G.to(device), D.to(device)
    if tc.channels_last:  # NHWC conv weights (batches follow in next_batch); the same values
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    if compile_enabled(tc.compile, device):  # inside DDP: distributed.unwrap finds the plain module
        G = torch.compile(G)
        if not mc.d_spectral_norm:  # compiled spectral norm saves its power-iteration buffers for
            D = torch.compile(D)  # backward, and D's second forward overwrites them: D stays eager
    G, D = distributed.wrap(G, info, device), distributed.wrap(D, info, device)
    gen = torch.Generator(device=device).manual_seed(distributed.rank_seed(tc.seed, info))
    trainer = Trainer(G, D, cfg, cvocab, gen, pixel=pixel, dist_info=info)
    next_batch = batch_sampler(
        shard, distributed.per_rank_batch(tc.batch_size, info), net_res, cond_cols, gen, channels_last=tc.channels_last
    )
    return TrainingSetup(
        trainer,
        next_batch,
        gen,
        vocab,
        cvocab,
        cond_cols,
        out_res,
        net_res,
        data.native_scale,
        pixel,
        label_mix(data.labels),
        shard,
        info,
        device,
    )


def training_state(s: TrainingSetup, cfg: Config, dataset: str, best: dict | None, rng_states: list) -> dict:
    """The checkpoint dict: state_dicts, step, config, vocabulary, label mix, RNG of every rank, best eval."""
    t = s.trainer
    state = {
        "step": t.iteration,
        "config": cfg.to_dict(),
        "vocab": s.vocab.to_json(),
        "dataset": {
            "name": str(dataset),
            "native_scale": s.native_scale,
            "resolution": s.out_res,
            "network_resolution": s.net_res,
            "label_mix": s.label_mix,
        },
        "G": _unwrap(t.G).state_dict(),
        "D": _unwrap(t.D).state_dict(),
        "G_ema": t.G_ema.state_dict(),
        "opt_G": t.opt_G.state_dict(),
        "opt_D": t.opt_D.state_dict(),
        "trainer": t.state_dict(),
        "rng": {"batches": rng_states[0], "torch": torch.get_rng_state()},
        "best": best,
    }
    if len(rng_states) > 1:
        state["rng"]["ranks"] = rng_states  # rank r's batch/noise stream, for exact multi-process resume
    return state


def restore(s: TrainingSetup, state: dict, cfg: Config, path: Path) -> dict | None:
    """Load a checkpoint into a fresh setup (networks, optimisers, ADA p / LeCam anchors, this
    rank's random stream, step); returns its best train-time evaluation ({"fd", "step"} or None)."""
    t, info = s.trainer, s.info
    check_compatible(state["config"]["model"], cfg.to_dict()["model"], state["vocab"], s.vocab.to_json(), path)
    _unwrap(t.G).load_state_dict(state["G"]), _unwrap(t.D).load_state_dict(state["D"])
    t.G_ema.load_state_dict(state["G_ema"])
    t.opt_G.load_state_dict(state["opt_G"]), t.opt_D.load_state_dict(state["opt_D"])
    t.load_state_dict(
        state.get(
            "trainer",
            {"iteration": state["step"], "ada_p": t.ada_p, "ada_stats": t.ada_stats, "lecam_anchors": t.lecam_anchors},
        )
    )
    rng, ranks = state["rng"], state["rng"].get("ranks")
    if ranks is not None and len(ranks) == info.world_size:
        s.gen.set_state(ranks[info.rank].cpu())
    elif info.rank == 0:
        s.gen.set_state(rng["batches"].cpu())
    else:  # resumed on another number of ranks: a fresh stream for this one
        s.gen.manual_seed(distributed.rank_seed(cfg.train.seed + t.iteration, info))
    torch.set_rng_state(rng["torch"].cpu())
    return state.get("best")


def _checkpoint_exists(path: Path, info: DistInfo) -> bool:
    """Whether `path` exists, the same answer on every rank (they all resume from it)."""
    seen = distributed.all_gather(path.exists(), info)
    if len(set(seen)) > 1:
        raise distributed.DistributedError(
            f"{path} exists on ranks {[r for r, e in enumerate(seen) if e]} but not on the others: "
            f"multi-node runs need artifacts_gan/ on a filesystem every node shares"
        )
    return seen[0]


def _drop_rows_after(path: Path, step: int) -> None:
    """Cut a metrics CSV / eval JSONL back to `step`: rows a stopped run logged after its last
    checkpoint would otherwise appear twice once the resumed run logs those steps again."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    if path.suffix == ".jsonl":
        keep = [ln for ln in lines if ln.strip() and json.loads(ln)["step"] <= step]
    else:
        keep = lines[:1] + [ln for ln in lines[1:] if ln.strip() and int(ln.split(",", 1)[0]) <= step]
    if keep != lines:
        path.write_text("".join(keep))


# ------------------------------------------------------------------ evaluation while training
def prepare_evaluation(dataset: str, progress: bool = True) -> None:
    """Load (or train once and cache) the dataset's judge and embed its VAL split, so the first
    evaluation does not stall the progress bar; fails early if the dataset has no VAL split."""
    from heroportraits.evaluation import evaluate

    with torch.random.fork_rng(devices=[]):  # training a judge reseeds the global RNG
        evaluate.reference(dataset, progress=progress)


def evaluate_generator(state: dict, dataset: str, n: int, device: torch.device) -> dict:
    """quick_fd (FD, conditional accuracy) of n portraits from the EMA generator in a checkpoint
    dict, conditions drawn from the training label mix, through the `sample` verb's Sampler.
    Fixed noise and conditions (seed 0), so successive evaluations differ only by the weights."""
    from heroportraits.evaluation import evaluate

    with torch.random.fork_rng(devices=[]):  # building the sampler's network draws from the global RNG
        images, rows = Sampler(state, device).generate(n, seed=0, open_attributes="mix")
        return evaluate.quick_fd(images, rows, str(dataset), n=n)


# ------------------------------------------------------------------ the loop
def train(cfg: Config, dataset: str, run: str, resume: bool = True, progress: bool = True) -> TrainResult:
    """Train `run` on `dataset`, resuming its last.pt unless resume=False.

    Launched by torchrun, this process is one rank: it joins the process group, trains on
    its shard of the data and only rank 0 writes files (see distributed.py).
    """
    validate_config(cfg)
    tc, mc = cfg.train, cfg.model
    info, device = distributed.setup(resolve_device(tc.device))
    main = info.is_main  # rank 0 writes every file
    ckpt_dir, sample_dir = checkpoints_dir() / run, samples_dir() / run
    ckpt_path, best_path = ckpt_dir / "last.pt", ckpt_dir / "best.pt"
    metrics_path, eval_path = ckpt_dir / "metrics.csv", ckpt_dir / "eval.jsonl"

    # ---- data (the whole train split in memory), models, Trainer and this rank's batch sampler
    data = load_dataset(dataset, "train")
    s = setup_training(cfg, data, device, info)
    trainer = s.trainer

    # ---- fixed grid: same noise and conditions at every sample step
    common = torch.mode(data.labels[:, s.cond_cols.cpu()], dim=0).values.tolist()
    layout = grid_layout(s.cvocab, default_labels=common)
    grid_z = fixed_noise(layout, mc.z_dim).to(device)
    grid_y = layout.labels.to(device)
    del data  # the loop needs only this rank's shard, already on the device

    # ---- resume: every rank reads last.pt (networks, optimisers, ADA p / LeCam anchors, its RNG, step)
    best = None  # {"fd", "step"}: lowest train-time FD so far
    if resume and _checkpoint_exists(ckpt_path, info):
        with foreign_weights(ckpt_path):
            best = restore(s, load_checkpoint(ckpt_path, map_location=device), cfg, ckpt_path)
    step = trainer.iteration

    # ---- run folder (rank 0): resolved config; metrics and evaluations cut back to the resumed step
    if main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        sample_dir.mkdir(parents=True, exist_ok=True)
        (ckpt_dir / "config.json").write_text(cfg.to_json())
        if step == 0 or not metrics_path.exists():
            with open(metrics_path, "w", newline="") as f:
                csv.writer(f).writerow(METRIC_COLUMNS)
        if step == 0:  # a fresh start: an older run's evaluations and best.pt are not this run's
            eval_path.unlink(missing_ok=True)
            best_path.unlink(missing_ok=True)
        for path in (metrics_path, eval_path):
            _drop_rows_after(path, step)

    # ---- the judge for train-time FD: trained once per dataset and cached, before the bar starts
    if main and tc.eval_every > 0:
        prepare_evaluation(dataset, progress)

    def save(path: Path, rng_states: list) -> None:
        save_checkpoint(training_state(s, cfg, dataset, best, rng_states), path)

    def write_samples() -> Path:
        with torch.no_grad():
            imgs = upscale_to_output(trainer.G_ema(grid_z, grid_y), s.out_res)
        arr = tensor_to_uint8(imgs)
        path = save_grid_figure(arr, layout, sample_dir / f"step_{step:06d}.png", title=f"{run}  step {step}")
        (sample_dir / "latest.png").write_bytes(path.read_bytes())
        return path

    def evaluate_now(rng_states: list) -> dict:
        """FD of G_ema now -> a row of eval.jsonl; best.pt (= last.pt's content) when the lowest yet."""
        nonlocal best
        result = evaluate_generator(training_state(s, cfg, dataset, best, rng_states), dataset, tc.eval_samples, device)
        is_best = best is None or result["fd"] < best["fd"]
        if is_best:
            best = {"fd": result["fd"], "step": step}
            save(best_path, rng_states)
        with open(eval_path, "a") as f:
            f.write(
                json.dumps({"step": step, "seconds": round(time.time() - start, 2), **result, "best": is_best}) + "\n"
            )
        return result

    start, start_step, window = time.time(), step, time.time()
    bar = tqdm(total=tc.steps, initial=step, disable=not (progress and main), desc=f"train {run}", unit="step")
    postfix: dict[str, str] = {} if best is None else {"best_fd": f"{best['fd']:.2f}"}
    while step < tc.steps:
        # ---- one iteration: D phase(s), G phase, EMA, ADA (see Trainer.step)
        noise_std = instance_noise_std(tc.instance_noise_std, tc.instance_noise_steps, step, tc.steps)
        stats = trainer.step(s.next_batch)
        step = trainer.iteration
        bar.update(1)

        # ---- logging (the only host sync): losses averaged over ranks, appended by rank 0
        logged = step % tc.log_every == 0 or step == tc.steps
        if logged:
            now = time.time()
            ips = tc.log_every * tc.batch_size / max(now - window, 1e-9)
            window = now
            means = distributed.mean_over_ranks(torch.stack([stats[k] for k in STEP_STATS]), info)
            values = {k: round(v, 5) for k, v in zip(STEP_STATS, means.tolist())}
            if main:
                row = [
                    step,
                    round(now - start, 2),
                    round(ips, 1),
                    *(values[k] for k in STEP_STATS),
                    round(noise_std, 5),
                ]
                with open(metrics_path, "a", newline="") as f:
                    csv.writer(f).writerow(row)
            postfix.update(d=f"{values['d_loss']:.3f}", g=f"{values['g_loss']:.3f}")
            bar.set_postfix(**postfix)
        out_of_time = tc.max_minutes > 0 and time.time() - start > tc.max_minutes * 60
        if info.enabled and tc.max_minutes > 0:  # ranks stop together: they compare clocks at log steps
            out_of_time = logged and distributed.any_rank(out_of_time, info)
        last = step == tc.steps or out_of_time

        # ---- samples, evaluation (eval.jsonl, best.pt) and checkpoints, written by rank 0
        do_eval = tc.eval_every > 0 and (step % tc.eval_every == 0 or last)
        do_checkpoint = step % tc.checkpoint_every == 0 or last
        rng_states = distributed.all_gather(s.gen.get_state(), info) if do_eval or do_checkpoint else []
        if main and (step % tc.sample_every == 0 or last):
            write_samples()
        if main and do_eval:
            t0 = time.time()
            result = evaluate_now(rng_states)
            window += time.time() - t0  # keep evaluation time out of the next images/s
            postfix.update(fd=f"{result['fd']:.2f}", best_fd=f"{best['fd']:.2f}")
            bar.set_postfix(**postfix)
        if main and do_checkpoint:
            save(ckpt_path, rng_states)
        if out_of_time:
            break
    bar.close()
    if main and step == start_step:  # nothing to do (already trained): still leave a grid
        write_samples()
    if main:
        plot_losses(metrics_path, ckpt_dir / "losses.png")
    distributed.barrier(info)  # the other ranks return once rank 0's files are written
    return TrainResult(run, ckpt_path, sample_dir, step, time.time() - start, best)


# ------------------------------------------------------------------ CLI
EPILOG = """\
multi-GPU / multi-node (PyTorch DDP, one process per GPU; gloo on CPU):
  torchrun --nproc_per_node 4 -m heroportraits train --preset resnet_full_gpu --run-name big
  torchrun --nnodes 2 --node_rank R --master_addr HOST --nproc_per_node 8 -m heroportraits train ...
  (--run-name, not --run: torchrun's own parser reads --run as an abbreviation of its --run-path)
  train.batch_size is the global batch (each of N ranks draws batch_size / N, from its own
  shard of the data, with its own noise); rank 0 writes samples, checkpoints and metrics;
  re-running the same command resumes every rank from last.pt.

evaluation while training (--eval-every N, default off):
  every N steps and at the end, --eval-samples portraits from the EMA generator (conditions
  from the training label mix) are scored by the dataset's judge (trained once, cached in
  data/<dataset>/judge.pt): FD and conditional accuracy, appended to eval.jsonl in the run
  folder (plot with evaluate.plot_metric_curves); best.pt is the checkpoint with the lowest FD.
"""


def add_cli(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a conditional GAN on a final dataset",
        description="Train a conditional GAN on data/<dataset>/. Writes checkpoints to\n"
        "artifacts_gan/checkpoints/<run>/ and sample grids to artifacts_gan/samples/<run>/;\n"
        "re-running the same command resumes from the last checkpoint.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--dataset", default="procedural", help="final dataset name under data/ or a path (default: procedural)"
    )
    p.add_argument(
        "--preset",
        default="cpu",
        choices=preset_choices(),
        help="named config preset (default: cpu = dcgan_sn_proj_ms); --dry-run says what it is",
    )
    p.add_argument(
        "--run",
        "--run-name",
        dest="run",
        default=None,
        help="run name (default: <dataset>_<preset>); spell it --run-name under torchrun",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a config field, e.g. --set train.steps=5000 --set model.use_palette=false",
    )
    p.add_argument("--steps", type=int, help="shortcut for --set train.steps=N")
    p.add_argument(
        "--device",
        help="shortcut for --set train.device=... (auto, cpu, cuda); under torchrun each rank uses cuda:LOCAL_RANK",
    )
    p.add_argument(
        "--eval-every",
        type=int,
        metavar="N",
        help="shortcut for --set train.eval_every=N: FD and "
        "conditional accuracy every N steps -> eval.jsonl, best.pt (default 0 = off)",
    )
    p.add_argument(
        "--eval-samples",
        type=int,
        metavar="N",
        help="shortcut for --set train.eval_samples=N: portraits per evaluation (default 500)",
    )
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if the run has a checkpoint")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config (every switch) and exit")
    p.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> None:
    overrides = list(args.overrides)
    for flag, field in (
        (args.steps, "steps"),
        (args.device, "device"),
        (args.eval_every, "eval_every"),
        (args.eval_samples, "eval_samples"),
    ):
        if flag is not None:
            overrides.append(f"train.{field}={flag}")
    cfg = resolve_config(args.preset, overrides)
    if args.dry_run:
        # What the preset is goes to stderr, so that stdout stays the JSON (`--dry-run | jq`).
        print(f"preset {cfg.preset}: {PRESETS[cfg.preset].description}", file=sys.stderr)
        print(cfg.to_json())
        return
    run = args.run or f"{Path(str(args.dataset)).name}_{args.preset}"
    result = train(cfg, args.dataset, run, resume=not args.no_resume)
    info = distributed.detect()
    if info.is_main:
        print(
            json.dumps(
                {
                    "run": result.run,
                    "step": result.step,
                    "checkpoint": str(result.checkpoint),
                    "samples": str(result.samples),
                    "minutes": round(result.seconds / 60, 2),
                    "best": result.best,
                },
                indent=2,
            )
        )
    distributed.cleanup(info)
