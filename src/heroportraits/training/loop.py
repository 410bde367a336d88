"""The training loop: `train()`, one function read top to bottom, and the `train` verb.

    python -m heroportraits train --dataset procedural --preset cpu --run demo
    torchrun --nproc_per_node 4 -m heroportraits train --preset resnet_full_gpu --run-name big

Each iteration is `Trainer.step` (trainer.py); the pieces of a run are built by
`setup.setup_training`; the run's files (checkpoints, metrics, sample grids, evaluations;
see run_files.py) are written by rank 0. Re-running the same command resumes from last.pt.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from heroportraits.data.dataset import load_dataset
from heroportraits.training import distributed
from heroportraits.training.checkpoint import foreign_weights, load_checkpoint
from heroportraits.training.config import PRESETS, Config, TrainConfig, preset_choices, resolve_config, validate_config
from heroportraits.training.distributed import DistInfo
from heroportraits.training.run_files import RunFiles
from heroportraits.training.setup import checkpoint_exists, resolve_device, restore, setup_training


@dataclass
class TrainResult:
    run: str
    checkpoint: Path  # last.pt
    samples: Path  # folder of sample grids
    step: int
    seconds: float
    best: dict | None = None  # {"fd", "step"} of best.pt, the lowest train-time FD (eval_every > 0; rank 0)


def train(cfg: Config, dataset: str, run: str, resume: bool = True, progress: bool = True) -> TrainResult:
    """Train `run` on `dataset`, resuming its last.pt unless resume=False.

    Launched by torchrun, this process is one rank: it joins the process group for the run
    (and leaves it after), trains on its shard of the data and only rank 0 writes files.
    """
    validate_config(cfg)
    tc = cfg.train
    with distributed.process_group(resolve_device(tc.device)) as (info, device):
        # ---- data (the whole train split in memory), models, Trainer, this rank's batch sampler
        data = load_dataset(dataset, "train")
        s = setup_training(cfg, data, device, info)
        files = RunFiles(run, cfg, dataset, s, data.labels)  # + the fixed sample grid
        del data  # the loop needs only this rank's shard, already on the device
        trainer = s.trainer

        # ---- resume: every rank reads last.pt (networks, optimisers, ADA p / LeCam anchors, its RNG, step)
        if resume and checkpoint_exists(files.last, info):
            with foreign_weights(files.last):
                files.best = restore(s, load_checkpoint(files.last, map_location=device), cfg, files.last)
        start_step = step = trainer.iteration
        files.open(step, progress)  # rank 0: folders, config.json, logs cut back to `step`; the judge

        show = progress and info.is_main
        bar = tqdm(total=tc.steps, initial=step, disable=not show, desc=f"train {run}", unit="step")
        while step < tc.steps:
            # ---- one iteration: D phase(s), G phase, EMA, ADA (see Trainer.step)
            stats = trainer.step(s.next_batch)
            step = trainer.iteration
            bar.update(1)

            # ---- logging (the only host sync): losses averaged over ranks, appended by rank 0
            logged = step % tc.log_every == 0 or step == tc.steps
            if logged:
                bar.set_postfix(files.log(step, stats, trainer.noise_std(step - 1)))
            out_of_time = _out_of_time(tc, files.start, logged, info)
            last = step == tc.steps or out_of_time

            # ---- samples, evaluation (eval.jsonl, best.pt) and checkpoints, written by rank 0
            do_eval = tc.eval_every > 0 and (step % tc.eval_every == 0 or last)
            do_checkpoint = step % tc.checkpoint_every == 0 or last
            rng_states = distributed.all_gather(s.gen.get_state(), info) if do_eval or do_checkpoint else []
            if step % tc.sample_every == 0 or last:
                files.write_samples(step)
            if do_eval:
                bar.set_postfix(files.evaluate(step, rng_states))
            if do_checkpoint:
                files.save(files.last, rng_states)
            if out_of_time:
                break
        bar.close()
        files.close(trained=step > start_step)  # losses.png
        distributed.barrier(info)  # the other ranks return once rank 0's files are written
    return TrainResult(run, files.last, files.sample_dir, step, time.time() - files.start, files.best)


def _out_of_time(tc: TrainConfig, start: float, logged: bool, info: DistInfo) -> bool:
    """train.max_minutes is up. Ranks stop together: under torchrun they compare clocks at log steps."""
    out = tc.max_minutes > 0 and time.time() - start > tc.max_minutes * 60
    if info.enabled and tc.max_minutes > 0:
        out = logged and distributed.any_rank(out, info)
    return out


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
    if distributed.detect().is_main:
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
