"""The `train` verb."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from pathlib import Path

from heroportraits.cli.options import add_assignments, add_verb
from heroportraits.evaluation.during_training import TrainTimeScorer
from heroportraits.paths import checkpoints_dir, output_folder, plain_name, samples_dir
from heroportraits.training import distributed
from heroportraits.training.loop import train
from heroportraits.training.presets import PRESETS, preset_choices, resolve_config

DESCRIPTION = (
    "Train a conditional GAN on data/<dataset>/. Writes checkpoints to\n"
    "artifacts_gan/checkpoints/<run>/ and sample grids to artifacts_gan/samples/<run>/;\n"
    "re-running the same command resumes from the last checkpoint."
)
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
  overwrites the last good checkpoint (previous.pt keeps the one before last.pt). A run resumes
  from previous.pt (or best.pt) when last.pt cannot be read, and never starts again from step 0
  unless asked (--no-resume sets its earlier files aside, it deletes none). A resumed
  run may change steps, max_minutes, the *_every cadences, eval_samples, device, compile,
  channels_last, how it draws (the draw section), and (with a notice) learning rates and betas;
  other changes are refused.

evaluation while training (--eval-every N, default off):
  every N steps and at the end, --eval-samples portraits from the EMA generator (conditions
  from the training label mix) are scored by the dataset's judge (trained once, cached in
  data/<dataset>/judge.pt): FD and conditional accuracy, appended to eval.jsonl in the run
  folder (plot with training.figures.plot_metric_curves); best.pt is the checkpoint with the
  lowest FD. They are drawn in the run's colours without D's guidance (no best-of, no
  refinement), as the sample grids are: train-time FD follows the generator itself; `evaluate`
  scores the run's full default drawing.
"""


def add_train(sub) -> None:
    p = add_verb(
        sub,
        "train",
        _run_train,
        description=DESCRIPTION,
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
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="start from step 0 even if the run has a checkpoint (its earlier files move to RUN/earlier-<time>/)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved config (every switch) and exit")


def _run_train(args: argparse.Namespace) -> None:
    """Train a conditional GAN on a final dataset."""
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
    scorer = TrainTimeScorer(args.dataset) if cfg.train.eval_every > 0 else None
    result = train(cfg, args.dataset, run, resume=not args.no_resume, scorer=scorer)
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


def add_verbs(sub) -> None:
    add_train(sub)
