"""The training loop: one function, read top to bottom.

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

import torch
from tqdm.auto import tqdm

from heroportraits.checkpoint import check_compatible, load_checkpoint, save_checkpoint
from heroportraits.config import PRESETS, Config, resolve_config
from heroportraits.dataset import load_dataset
from heroportraits.ema import make_ema, update_ema
from heroportraits.grids import fixed_noise, grid_layout, save_grid_figure
from heroportraits.images import tensor_to_uint8
from heroportraits.losses import get_losses
from heroportraits.models import build_models, conditioning_vocab, network_resolution, to_native, upscale_to_output
from heroportraits.paths import checkpoints_dir, samples_dir
from heroportraits.plots import plot_losses

METRIC_COLUMNS = ["step", "seconds", "images_per_s", "d_loss", "g_loss", "d_real", "d_fake"]


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


def train(cfg: Config, dataset: str, run: str, resume: bool = True, progress: bool = True) -> TrainResult:
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

    # ---- models, EMA copy, optimisers
    G, D = build_models(mc, vocab, net_res)
    G, D = G.to(device), D.to(device)
    G_ema = make_ema(G)
    opt_G = torch.optim.Adam(G.parameters(), lr=tc.g_lr, betas=tc.betas)
    opt_D = torch.optim.Adam(D.parameters(), lr=tc.d_lr, betas=tc.betas)
    d_loss_fn, g_loss_fn = get_losses(tc.loss)
    gen = torch.Generator().manual_seed(tc.seed)  # batches and noise: one CPU stream, saved for exact resume

    # ---- fixed grid: same noise and conditions at every sample step
    common = torch.mode(data.labels[:, cond_cols].cpu(), dim=0).values.tolist()
    layout = grid_layout(cvocab, default_labels=common)
    grid_z = fixed_noise(layout, mc.z_dim).to(device)
    grid_y = layout.labels.to(device)

    # ---- resume
    step = 0
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        check_compatible(state["config"]["model"], cfg.to_dict()["model"], state["vocab"], vocab.to_json(), ckpt_path)
        G.load_state_dict(state["G"]), D.load_state_dict(state["D"]), G_ema.load_state_dict(state["G_ema"])
        opt_G.load_state_dict(state["opt_G"]), opt_D.load_state_dict(state["opt_D"])
        gen.set_state(state["rng"]["batches"])
        torch.set_rng_state(state["rng"]["torch"])
        step = int(state["step"])
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
                "G": G.state_dict(), "D": D.state_dict(), "G_ema": G_ema.state_dict(),
                "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(),
                "rng": {"batches": gen.get_state(), "torch": torch.get_rng_state()},
            },
            ckpt_path,
        )

    def write_samples() -> Path:
        with torch.no_grad():
            imgs = upscale_to_output(G_ema(grid_z, grid_y), out_res)
        arr = tensor_to_uint8(imgs)
        path = save_grid_figure(arr, layout, sample_dir / f"step_{step:06d}.png", title=f"{run}  step {step}")
        (sample_dir / "latest.png").write_bytes(path.read_bytes())
        return path

    def new_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(data), (tc.batch_size,), generator=gen).to(device)
        real, labels = data.batch(idx)
        z = torch.randn(tc.batch_size, mc.z_dim, generator=gen).to(device)
        return to_native(real, net_res), labels[:, cond_cols], z

    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=tc.amp and device.type == "cuda")
    start, start_step, window = time.time(), step, time.time()
    bar = tqdm(total=tc.steps, initial=step, disable=not progress, desc=f"train {run}", unit="step")
    while step < tc.steps:
        # ---- D step: real vs fake under the same conditions
        real, y, z = new_batch()
        with autocast:
            fake = G(z, y).detach()
            d_real, d_fake = D(real, y).float(), D(fake, y).float()
        d_loss = d_loss_fn(d_real, d_fake)
        opt_D.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_D.step()

        # ---- G step: fool D on the same conditions with fresh noise
        z = torch.randn(tc.batch_size, mc.z_dim, generator=gen).to(device)
        with autocast:
            g_loss = g_loss_fn(D(G(z, y), y).float())
        opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_G.step()

        # ---- EMA of G (plain copy before ema_start)
        update_ema(G_ema, G, tc.ema_decay if step >= tc.ema_start and tc.ema_decay > 0 else 0.0)
        step += 1
        bar.update(1)

        # ---- logging, samples, checkpoints
        if step % tc.log_every == 0 or step == tc.steps:
            now = time.time()
            ips = tc.log_every * tc.batch_size / max(now - window, 1e-9)
            window = now
            row = [step, round(now - start, 2), round(ips, 1), d_loss.item(), g_loss.item(),
                   d_real.mean().item(), d_fake.mean().item()]
            with open(metrics_path, "a", newline="") as f:
                csv.writer(f).writerow(row)
            bar.set_postfix(d=f"{row[3]:.3f}", g=f"{row[4]:.3f}")
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
