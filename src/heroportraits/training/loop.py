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
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from heroportraits.cli import add_assignments, add_verb
from heroportraits.data.dataset import batch_warning, load_dataset
from heroportraits.paths import checkpoints_dir, output_folder, plain_name, samples_dir
from heroportraits.progress import TrainingBar
from heroportraits.training import distributed
from heroportraits.training.checkpoint import foreign_weights, load_checkpoint
from heroportraits.training.config import PRESETS, Config, TrainConfig, preset_choices, resolve_config, validate_config
from heroportraits.training.distributed import DistInfo
from heroportraits.training.guards import StopSignals, check_logged
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
    stopped_by: str | None = None  # "SIGINT" / "SIGTERM": stopped early by that signal, checkpoint written


def train(cfg: Config, dataset: str, run: str, resume: bool = True, progress: bool = True) -> TrainResult:
    """Train `run` on `dataset`, resuming its last.pt unless resume=False.

    Launched by torchrun, this process is one rank: it joins the process group for the run
    (and leaves it after), trains on its shard of the data and only rank 0 writes files.
    """
    validate_config(cfg)
    tc = cfg.train
    with distributed.process_group(resolve_device(tc.device)) as (info, device):
        # ---- data (the whole train split in memory), models, Trainer, this rank's batch sampler
        warning = batch_warning(tc.batch_size, dataset)
        if warning and info.is_main:
            print(warning, file=sys.stderr)  # in a notebook too, not only from the CLI
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

        # ---- the loop; SIGINT / SIGTERM only flag a stop, the current step finishes
        show, interrupted = progress and info.is_main, False
        bar = TrainingBar(tc.steps, tc.max_minutes, step, desc=f"train {run}", disable=not show)
        with StopSignals() as signals, bar:
            while step < tc.steps:
                # ---- one iteration: D phase(s), G phase, EMA, ADA (see Trainer.step)
                stats = trainer.step(s.next_batch)
                step = trainer.iteration
                bar.update(step)

                # ---- logging (the only host sync): losses averaged over ranks, appended by rank 0;
                # a non-finite one stops the run before anything else is written (guards.py)
                logged = step % tc.log_every == 0 or step == tc.steps
                if logged:
                    check_logged(step, files.log(step, stats, trainer.noise_std(step - 1)), tc, files.last)
                    bar.set_postfix(files.postfix)
                interrupted = signals.requested(logged, info)
                out_of_time = _out_of_time(tc, files.start, logged, info)
                last = step == tc.steps or out_of_time

                # ---- samples, evaluation (eval.jsonl, best.pt) and checkpoints, written by rank 0;
                # an interrupted run only checkpoints
                do_eval = tc.eval_every > 0 and (step % tc.eval_every == 0 or last) and not interrupted
                do_checkpoint = step % tc.checkpoint_every == 0 or last or interrupted
                rng_states = distributed.all_gather(s.gen.get_state(), info) if do_eval or do_checkpoint else []
                if (step % tc.sample_every == 0 or last) and not interrupted:
                    files.write_samples(step)
                if do_eval:
                    bar.set_postfix(files.evaluate(step, rng_states))
                if do_checkpoint:
                    files.save(files.last, rng_states)
                if out_of_time or interrupted:
                    break
        files.close(trained=step > start_step)  # losses.png
        distributed.barrier(info)  # the other ranks return once rank 0's files are written
        stopped_by = signals.name if interrupted and step < tc.steps else None
    return TrainResult(run, files.last, files.sample_dir, step, time.time() - files.start, files.best, stopped_by)


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

stopping and resuming (docs/reliability.md):
  Ctrl-C / SIGTERM finish the current step, write last.pt, print the command that resumes
  and exit 130 / 143; a diverged run (NaN / inf losses or weights) stops with exit 2 and never
  overwrites the last good checkpoint (previous.pt keeps the one before last.pt). A resumed
  run may change steps, max_minutes, the *_every cadences, eval_samples, device, compile,
  channels_last, and (with a notice) learning rates and betas; other changes are refused.

evaluation while training (--eval-every N, default off):
  every N steps and at the end, --eval-samples portraits from the EMA generator (conditions
  from the training label mix) are scored by the dataset's judge (trained once, cached in
  data/<dataset>/judge.pt): FD and conditional accuracy, appended to eval.jsonl in the run
  folder (plot with evaluate.plot_metric_curves); best.pt is the checkpoint with the lowest FD.
"""


def add_cli(sub) -> None:
    p = add_verb(
        sub,
        "train",
        _run_cli,
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
        help="named config preset (default: cpu = dcgan_sn_proj_ms_ac); --dry-run says what it is",
    )
    p.add_argument(
        "--run",
        "--run-name",
        dest="run",
        default=None,
        help="run name (default: <dataset>_<preset>); spell it --run-name under torchrun",
    )
    add_assignments(
        p,
        "overrides",
        "FIELD=VALUE",
        "override a config field, e.g. --set train.steps=5000 --set model.use_palette=false",
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
    run = plain_name(args.run or f"{Path(str(args.dataset)).name}_{args.preset}", "run name")
    for folder in (checkpoints_dir() / run, samples_dir() / run):
        output_folder(folder, "run folder")
    result = train(cfg, args.dataset, run, resume=not args.no_resume)
    if not distributed.detect().is_main:
        return
    summary = {
        "run": result.run,
        "step": result.step,
        "checkpoint": str(result.checkpoint),
        "samples": str(result.samples),
        "minutes": round(result.seconds / 60, 2),
        "best": result.best,
    }
    print(json.dumps(summary | ({"stopped_by": result.stopped_by} if result.stopped_by else {}), indent=2))
    if result.stopped_by:
        command = resume_command(args.dataset, args.preset, run, overrides)
        print(
            f"stopped by {result.stopped_by} after step {result.step}; checkpoint {result.checkpoint}. "
            f"Resume with:\n  {command}",
            file=sys.stderr,
        )
        raise SystemExit(128 + signal.Signals[result.stopped_by].value)  # 130 for SIGINT, 143 for SIGTERM


def resume_command(dataset: str, preset: str, run: str, overrides: list[str]) -> str:
    """The command line that continues `run` from its last.pt (the same settings, never --no-resume)."""
    torchrun = distributed.detect().enabled
    launcher = "torchrun --nproc_per_node N -m heroportraits" if torchrun else "python -m heroportraits"
    words = ["train", "--dataset", str(dataset), "--preset", preset, "--run-name", run]
    for o in overrides:
        words += ["--set", o]
    return f"{launcher} {shlex.join(words)}"
