"""The training loop: one function, read top to bottom, driving a `Trainer` whose `step()`
does one iteration (D phases, G phase, EMA, regularisers) and keeps the state between them.

    python -m heroportraits train --dataset procedural --preset cpu --run demo

writes to artifacts_gan/checkpoints/<run>/ (last.pt, config.json, metrics.csv,
losses.png) and artifacts_gan/samples/<run>/ (step_XXXXXX.png grids, latest.png),
and resumes from last.pt when the run folder already has one.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from heroportraits.attributes import Vocabulary
from heroportraits.augment import diff_augment, instance_noise_std, parse_policy
from heroportraits.checkpoint import check_compatible, load_checkpoint, save_checkpoint
from heroportraits.config import PRESETS, Config, resolve_config, validate_config
from heroportraits.dataset import PortraitData, load_dataset
from heroportraits.ema import ema_beta, make_ema, update_ema
from heroportraits.grids import fixed_noise, grid_layout, save_grid_figure
from heroportraits.images import tensor_to_uint8
from heroportraits.losses import get_losses, lecam_penalty, r1_penalty
from heroportraits.models import build_models, conditioning_vocab, network_resolution, to_native, upscale_to_output
from heroportraits.paths import checkpoints_dir, samples_dir
from heroportraits.plots import plot_losses

# What `Trainer.step` returns, all 0-dim tensors; metrics.csv adds step, time and noise std.
STEP_STATS = ["d_loss", "g_loss", "d_real", "d_fake", "r1", "lecam", "ada_p", "rt"]
METRIC_COLUMNS = ["step", "seconds", "images_per_s", *STEP_STATS, "noise_std"]


@dataclass
class TrainResult:
    run: str
    checkpoint: Path        # last.pt
    samples: Path           # folder of sample grids
    step: int
    seconds: float


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def label_mix(labels: torch.Tensor) -> dict:
    """Joint label rows and their counts: what `sample` draws conditions from."""
    rows, counts = torch.unique(labels.cpu(), dim=0, return_counts=True)
    return {"rows": rows.tolist(), "counts": counts.tolist()}


def batch_sampler(data: PortraitData, batch_size: int, resolution: int, cond_cols: torch.Tensor,
                  generator: torch.Generator) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """A callable drawing random training batches on the data's device, without host syncs.

    Returns (real (B, 3, R, R) float in [-1, 1] on the network grid, labels (B, A') over
    the conditioning attributes `cond_cols`).
    """

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(data), (batch_size,), generator=generator, device=data.images.device)
        real, labels = data.batch(idx)
        return to_native(real, resolution), labels[:, cond_cols]

    return next_batch


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DDP / compiled wrapper (EMA and checkpoints want that)."""
    return getattr(model, "module", getattr(model, "_orig_mod", model))


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
    """

    def __init__(self, G: nn.Module, D: nn.Module, cfg: Config, vocab: Vocabulary,
                 generator: torch.Generator, pixel: int = 1, G_ema: nn.Module | None = None):
        tc = cfg.train
        self.G, self.D, self.tc, self.z_dim = G, D, tc, cfg.model.z_dim
        self.G_ema = G_ema if G_ema is not None else make_ema(_unwrap(G))
        self.opt_G = torch.optim.Adam(G.parameters(), lr=tc.g_lr, betas=tuple(tc.g_betas))
        self.opt_D = torch.optim.Adam(D.parameters(), lr=tc.d_lr, betas=tuple(tc.d_betas))
        self.d_loss_fn, self.g_loss_fn = get_losses(tc.loss)
        self.gen, self.pixel = generator, pixel
        self.device = next(_unwrap(G).parameters()).device
        self.policy = ",".join(parse_policy(tc.augment))
        self.ada = tc.ada_target > 0
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16,
                                       enabled=tc.amp and self.device.type == "cuda")
        self.unspecified = torch.tensor(vocab.sizes, dtype=torch.long, device=self.device)  # (A,)
        # State that exact resume needs (see state_dict).
        self.iteration = 0                                                  # G updates done
        self.ada_p = torch.tensor(0.0 if self.ada else tc.augment_p, device=self.device)
        self.ada_stats = torch.zeros(2, device=self.device)   # sum of sign(D(real)), count since last adjust
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
        tc, G, D = self.tc, self.G, self.D
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
                fake = G(self.noise(real.shape[0]), y)
            with self.autocast:
                d_real = D(self.d_input(real, noise_std), y).float()
                d_fake = D(self.d_input(fake, noise_std), y).float()
            d_loss = self.d_loss_fn(d_real, d_fake)
            loss = d_loss
            if tc.lecam_weight > 0:
                lecam = lecam_penalty(d_real, d_fake, self.lecam_anchors[0], self.lecam_anchors[1])
                loss = loss + tc.lecam_weight * lecam
                means = torch.stack([d_real.detach().mean(), d_fake.detach().mean()])
                self.lecam_anchors.lerp_(means, 1.0 - tc.lecam_decay)
            if do_r1:  # lazy R1: every r1_every D updates, scaled by r1_every (StyleGAN2)
                r1 = r1_penalty(d_real, real)
                loss = loss + (tc.r1_gamma / 2) * tc.r1_every * r1
            self.opt_D.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_D.step()
            self.ada_stats += torch.stack([d_real.detach().sign().sum(), self._zero + d_real.numel()])

        # ---- G phase: fool D on the last batch's conditions with fresh noise (D frozen)
        D.requires_grad_(False)
        with self.autocast:
            g_loss = self.g_loss_fn(D(self.d_input(G(self.noise(y.shape[0]), y), noise_std), y).float())
        self.opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_G.step()
        D.requires_grad_(True)

        # ---- EMA of G (plain copy before ema_start; half-life ramps up with images seen)
        beta = 0.0
        if self.iteration >= tc.ema_start:
            beta = ema_beta(tc.ema_decay, y.shape[0], self.iteration * y.shape[0], tc.ema_rampup)
        update_ema(self.G_ema, _unwrap(G), beta)
        self.iteration += 1

        # ---- ADA: move p toward E[sign D(real)] = ada_target, every ada_interval steps
        if self.ada and self.iteration % tc.ada_interval == 0:
            self.adjust_ada(images=real.shape[0] * tc.n_dis * tc.ada_interval)

        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "d_real": d_real.detach().mean(),
                "d_fake": d_fake.detach().mean(), "r1": r1.detach(), "lecam": lecam.detach(),
                "ada_p": self.ada_p.clone(), "rt": d_real.detach().sign().mean()}

    def adjust_ada(self, images: int) -> None:
        """ADA (Karras et al. 2020): r_t = E[sign D(real)] over the last interval; p moves up
        if D is over-confident on reals (r_t > target), down otherwise, by images / ada_kimg k."""
        rt = self.ada_stats[0] / self.ada_stats[1].clamp(min=1)
        step = torch.sign(rt - self.tc.ada_target) * images / (self.tc.ada_kimg * 1000)
        self.ada_p = (self.ada_p + step).clamp(0.0, 1.0)
        self.ada_stats.zero_()

    # ---- exact resume
    def state_dict(self) -> dict:
        """Everything besides the networks, optimisers and RNG that resuming needs."""
        return {"iteration": self.iteration, "ada_p": self.ada_p.detach().cpu(),
                "ada_stats": self.ada_stats.cpu(), "lecam_anchors": self.lecam_anchors.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.iteration = int(state["iteration"])
        self.ada_p = state["ada_p"].to(self.device)
        self.ada_stats = state["ada_stats"].to(self.device)
        self.lecam_anchors = state["lecam_anchors"].to(self.device)


def train(cfg: Config, dataset: str, run: str, resume: bool = True, progress: bool = True) -> TrainResult:
    validate_config(cfg)
    tc, mc = cfg.train, cfg.model
    device = resolve_device(tc.device)
    torch.manual_seed(tc.seed)
    ckpt_dir, sample_dir = checkpoints_dir() / run, samples_dir() / run
    ckpt_path = ckpt_dir / "last.pt"

    # ---- data: the whole train split in memory, as one uint8 tensor on the device
    data = load_dataset(dataset, "train", device=device)
    vocab = data.vocab
    cvocab = conditioning_vocab(mc, vocab)
    cond_cols = torch.tensor([vocab.names.index(n) for n in cvocab.names], device=device, dtype=torch.long)
    out_res = data.resolution
    net_res = network_resolution(mc, out_res, data.native_scale)
    pixel = max(1, data.native_scale * net_res // out_res)  # native pixel size on the grid D sees

    # ---- models, EMA copy, optimisers, and the per-iteration state (Trainer)
    G, D = build_models(mc, vocab, net_res)
    G, D = G.to(device), D.to(device)
    gen = torch.Generator(device=device).manual_seed(tc.seed)  # batches, noise, dropout, augmentation
    trainer = Trainer(G, D, cfg, cvocab, gen, pixel=pixel)
    next_batch = batch_sampler(data, tc.batch_size, net_res, cond_cols, gen)

    # ---- fixed grid: same noise and conditions at every sample step
    common = torch.mode(data.labels[:, cond_cols].cpu(), dim=0).values.tolist()
    layout = grid_layout(cvocab, default_labels=common)
    grid_z = fixed_noise(layout, mc.z_dim).to(device)
    grid_y = layout.labels.to(device)

    # ---- resume: networks, optimisers, ADA p / LeCam anchors, RNG, step
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        check_compatible(state["config"]["model"], cfg.to_dict()["model"], state["vocab"], vocab.to_json(), ckpt_path)
        G.load_state_dict(state["G"]), D.load_state_dict(state["D"]), trainer.G_ema.load_state_dict(state["G_ema"])
        trainer.opt_G.load_state_dict(state["opt_G"]), trainer.opt_D.load_state_dict(state["opt_D"])
        trainer.load_state_dict(state.get("trainer", {"iteration": state["step"], "ada_p": trainer.ada_p,
                                                      "ada_stats": trainer.ada_stats,
                                                      "lecam_anchors": trainer.lecam_anchors}))
        gen.set_state(state["rng"]["batches"].cpu())
        torch.set_rng_state(state["rng"]["torch"].cpu())
    step = trainer.iteration
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    sample_dir.mkdir(parents=True, exist_ok=True)
    (ckpt_dir / "config.json").write_text(cfg.to_json())
    metrics_path = ckpt_dir / "metrics.csv"
    if step == 0 or not metrics_path.exists():
        with open(metrics_path, "w", newline="") as f:
            csv.writer(f).writerow(METRIC_COLUMNS)

    def checkpoint() -> None:
        save_checkpoint(
            {
                "step": step,
                "config": cfg.to_dict(),
                "vocab": vocab.to_json(),
                "dataset": {"name": str(dataset), "native_scale": data.native_scale, "resolution": out_res,
                            "network_resolution": net_res, "label_mix": label_mix(data.labels)},
                "G": G.state_dict(), "D": D.state_dict(), "G_ema": trainer.G_ema.state_dict(),
                "opt_G": trainer.opt_G.state_dict(), "opt_D": trainer.opt_D.state_dict(),
                "trainer": trainer.state_dict(),
                "rng": {"batches": gen.get_state(), "torch": torch.get_rng_state()},
            },
            ckpt_path,
        )

    def write_samples() -> Path:
        with torch.no_grad():
            imgs = upscale_to_output(trainer.G_ema(grid_z, grid_y), out_res)
        arr = tensor_to_uint8(imgs)
        path = save_grid_figure(arr, layout, sample_dir / f"step_{step:06d}.png", title=f"{run}  step {step}")
        (sample_dir / "latest.png").write_bytes(path.read_bytes())
        return path

    start, start_step, window = time.time(), step, time.time()
    bar = tqdm(total=tc.steps, initial=step, disable=not progress, desc=f"train {run}", unit="step")
    while step < tc.steps:
        # ---- one iteration: D phase(s), G phase, EMA, ADA (see Trainer.step)
        noise_std = instance_noise_std(tc.instance_noise_std, tc.instance_noise_steps, step, tc.steps)
        stats = trainer.step(next_batch)
        step = trainer.iteration
        bar.update(1)

        # ---- logging (the only host sync), samples, checkpoints
        if step % tc.log_every == 0 or step == tc.steps:
            now = time.time()
            ips = tc.log_every * tc.batch_size / max(now - window, 1e-9)
            window = now
            values = {k: round(float(v.item()), 5) for k, v in stats.items()}
            row = [step, round(now - start, 2), round(ips, 1), *(values[k] for k in STEP_STATS), round(noise_std, 5)]
            with open(metrics_path, "a", newline="") as f:
                csv.writer(f).writerow(row)
            bar.set_postfix(d=f"{values['d_loss']:.3f}", g=f"{values['g_loss']:.3f}")
        out_of_time = tc.max_minutes > 0 and time.time() - start > tc.max_minutes * 60
        if step % tc.sample_every == 0 or step == tc.steps or out_of_time:
            write_samples()
        if step % tc.checkpoint_every == 0 or step == tc.steps or out_of_time:
            checkpoint()
        if out_of_time:
            break
    bar.close()
    if step == start_step:  # nothing to do (already trained): still leave a grid
        write_samples()
    plot_losses(metrics_path, ckpt_dir / "losses.png")
    return TrainResult(run, ckpt_path, sample_dir, step, time.time() - start)


# ------------------------------------------------------------------ CLI
def add_cli(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a conditional GAN on a final dataset",
        description="Train a conditional GAN on data/<dataset>/. Writes checkpoints to "
        "artifacts_gan/checkpoints/<run>/ and sample grids to artifacts_gan/samples/<run>/; "
        "re-running the same command resumes from the last checkpoint.",
    )
    p.add_argument("--dataset", default="procedural", help="final dataset name under data/ or a path (default: procedural)")
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS), help="named config preset (default: cpu)")
    p.add_argument("--run", default=None, help="run name (default: <dataset>_<preset>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a config field, e.g. --set train.steps=5000 --set model.use_palette=false")
    p.add_argument("--steps", type=int, help="shortcut for --set train.steps=N")
    p.add_argument("--device", help="shortcut for --set train.device=... (auto, cpu, cuda)")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if the run has a checkpoint")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config (every switch) and exit")
    p.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> None:
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.device:
        overrides.append(f"train.device={args.device}")
    cfg = resolve_config(args.preset, overrides)
    if args.dry_run:
        print(cfg.to_json())
        return
    run = args.run or f"{Path(str(args.dataset)).name}_{args.preset}"
    result = train(cfg, args.dataset, run, resume=not args.no_resume)
    print(json.dumps({"run": result.run, "step": result.step, "checkpoint": str(result.checkpoint),
                      "samples": str(result.samples), "minutes": round(result.seconds / 60, 2)}, indent=2))
