"""The `train` verb."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from pathlib import Path

from heroportraits.cli.options import add_assignments, add_verb, at_least
from heroportraits.evaluation.during_training import TrainTimeScorer
from heroportraits.models.config import is_flow
from heroportraits.paths import checkpoints_dir, output_folder, plain_name, samples_dir
from heroportraits.training import distributed
from heroportraits.training.checkpoint import load_checkpoint, resolve_checkpoint_path
from heroportraits.training.config import Config, apply_overrides, validate_config
from heroportraits.training.distil import TeacherError
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
    resume = resume_command(args.dataset, args.preset, run, overrides)
    _train_and_report(cfg, args.dataset, run, not args.no_resume, resume)


def _train_and_report(cfg: Config, dataset: str, run: str, resume: bool, resume_cmd: str) -> None:
    """Train, print the run's summary as JSON, and after a signal the command that resumes (exit 130 / 143)."""
    scorer = TrainTimeScorer(dataset) if cfg.train.eval_every > 0 else None
    result = train(cfg, dataset, run, resume=resume, scorer=scorer)
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
        print(
            f"stopped by {result.stopped_by} after step {result.step}; checkpoint {result.checkpoint}. "
            f"Resume with:\n  {resume_cmd}",
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


def add_distil(sub) -> None:
    p = add_verb(sub, "distil", _run_distil, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DISTIL_EPILOG)
    p.add_argument("teacher", help="a flow run's folder or checkpoint (artifacts_gan/checkpoints/RUN)")
    p.add_argument(
        "--draw-steps", type=at_least(1), default=2, help="the student's Euler steps (one pass each; default 2)"
    )
    p.add_argument("--minutes", type=float, default=15.0, help="training time, after the pairs are drawn (default 15)")
    p.add_argument("--steps", type=at_least(1), help="a step budget instead (with --minutes 0) or as a cap")
    p.add_argument("--pairs", type=at_least(1), default=16384, help="portraits the teacher draws (default 16384)")
    p.add_argument("--teacher-steps", type=at_least(1), default=6, help="the teacher's Heun steps (default 6)")
    p.add_argument("--teacher-guidance", type=float, default=2.0, help="its guidance scale (default 2; 1 = none)")
    p.add_argument("--teacher-guidance-until", type=float, default=0.5, help="guided on t < this (default 0.5)")
    p.add_argument(
        "--teacher-guidance-on",
        default="",
        metavar="ATTRS",
        help="guiding only these attributes, or each at its own scale (hero_class=1.5,palette=2) (default: all)",
    )
    p.add_argument(
        "--palette-check",
        type=at_least(0),
        metavar="N",
        help="the student's drawing redraws off-palette portraits up to N times, where the palette rules made the "
        "data's labels (LPC); 0 = off (default: the teacher's draw.palette_check)",
    )
    p.add_argument("--run", help="the student's run name (default: <teacher run>-distil<draw steps>)")
    add_assignments(p, "overrides", "FIELD=VALUE", "override a config field of the student, e.g. train.g_lr=1e-4")
    p.add_argument("--no-resume", action="store_true", help="start again from the teacher even if the run exists")


DISTIL_EPILOG = """\
The student keeps the teacher's model, data and training settings, except: it starts from the
teacher's weights, learns from the pairs (train.teacher*), at a quarter of the teacher's
learning rate, and draws with --draw-steps Euler steps, unguided (draw.flow_*), with the
teacher's palette check unless --palette-check N says otherwise. Every verb
reads the student like any run: sample, evaluate, export, headgear. Re-running the same
command resumes it (the pairs are drawn again, identically).
"""


def _run_distil(args: argparse.Namespace) -> None:
    """Distil a flow run into a few-step drawing: reflow on the teacher's own portraits.

    The teacher draws --pairs portraits with its guided drawing; the student, starting from its weights,
    learns the straight path from each noise to its portrait, so --draw-steps unguided Euler steps draw them."""
    if args.minutes <= 0 and not args.steps:
        raise TeacherError(
            f"--minutes {args.minutes:g} with no --steps would distil for ever: give --minutes M > 0 or --steps N"
        )
    path = resolve_checkpoint_path(args.teacher)
    state = load_checkpoint(path)
    cfg = Config.from_dict(state["config"])
    if not is_flow(cfg.model):
        raise TeacherError(f"{path}: model.arch={cfg.model.arch} is a GAN; a teacher is a flow run (model.arch=unet)")
    teacher_run = path.parent.name
    settings = {
        "train.teacher": str(path),
        "train.teacher_pairs": args.pairs,
        "train.teacher_steps": args.teacher_steps,
        "train.teacher_guidance": args.teacher_guidance,
        "train.teacher_guidance_until": args.teacher_guidance_until,
        "train.teacher_guidance_on": args.teacher_guidance_on,
        "train.g_lr": cfg.train.g_lr / 4,
        "train.lr_decay": 0.0,
        "train.max_minutes": args.minutes,
        "train.steps": args.steps or 10**9,
        "draw.flow_steps": args.draw_steps,
        "draw.flow_solver": "euler",
        "draw.guidance": 1.0,
        "draw.guidance_from": 0.0,
        "draw.guidance_until": 1.0,
        "draw.guidance_on": "",  # the student draws unguided: nothing of the teacher's guidance is left to describe
    }
    if args.palette_check is not None:  # a flow_unet teacher draws unchecked; its LPC student may check
        settings["draw.palette_check"] = args.palette_check
    overrides = [f"{k}={v}" for k, v in settings.items()] + list(args.overrides)
    cfg = validate_config(apply_overrides(cfg, overrides))
    run = plain_name(args.run or f"{teacher_run}-distil{args.draw_steps}", "run name")
    for folder in (checkpoints_dir() / run, samples_dir() / run):
        output_folder(folder, "run folder")
    words = ["distil", str(args.teacher), "--run", run]
    for flag, value in (("--draw-steps", args.draw_steps), ("--minutes", args.minutes), ("--pairs", args.pairs)):
        words += [flag, str(value)]
    words += ["--steps", str(args.steps)] if args.steps else []
    for flag, value in (
        ("--teacher-steps", args.teacher_steps),
        ("--teacher-guidance", args.teacher_guidance),
        ("--teacher-guidance-until", args.teacher_guidance_until),
    ):
        words += [flag, str(value)]
    words += ["--teacher-guidance-on", args.teacher_guidance_on] if args.teacher_guidance_on else []
    words += ["--palette-check", str(args.palette_check)] if args.palette_check is not None else []
    for o in args.overrides:
        words += ["--set", o]
    _train_and_report(
        cfg, state["dataset"]["name"], run, not args.no_resume, f"python -m heroportraits {shlex.join(words)}"
    )


def add_verbs(sub) -> None:
    add_train(sub)
    add_distil(sub)
