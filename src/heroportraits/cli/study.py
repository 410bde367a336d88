"""The `study` verb."""

from __future__ import annotations

import argparse

from heroportraits.cli.options import add_verb
from heroportraits.study.runner import describe, merge_study, parse_shard, prepare_spec, run_study
from heroportraits.study.spec import StudyError, builtin_names


def add_study(sub) -> None:
    p = add_verb(sub, "study", _run_study)
    p.add_argument("spec", help=f"spec file or built-in name ({', '.join(builtin_names())})")
    p.add_argument("--dataset", help="train and evaluate on this dataset instead of the spec's")
    p.add_argument(
        "--budget",
        help="per-run budget instead of the spec's: minutes=M, steps=N or both "
        "(minutes with a step cap); results go to <name>-<budget>/",
    )
    p.add_argument("--smoke", action="store_true", help="a few steps per run, two seeds, 64 portraits: <name>-smoke/")
    p.add_argument("--shard", default="0/1", metavar="I/N", help="run only runs I, I+N, I+2N, ... (default 0/1)")
    p.add_argument("--variants", metavar="A,B", help="run only these variants (the tables still cover the whole spec)")
    p.add_argument("--seeds", metavar="0,1", help="run only these of the spec's seeds (e.g. a one-seed screen first)")
    p.add_argument("--merge", action="store_true", help="only write the tables from the finished runs present")
    p.add_argument("--partial", action="store_true", help="with --merge: tabulate even if runs are missing")
    p.add_argument("--device", help="train.device of every run (cpu, cuda, cuda:1); evaluation runs there too")
    p.add_argument("--name", help="the study folder's name (default: the spec's, + -smoke / -<budget>)")
    p.add_argument("--dry-run", action="store_true", help="print the runs and their status, train nothing")


def _run_study(args: argparse.Namespace) -> None:
    """Run a study: config variants x seeds x a budget, evaluated and tabulated.

    Train and evaluate every run of a study spec (a built-in name under studies/ or a .toml/.json file), then
    write results.csv, summary.csv and figures to artifacts_gan/studies/<name>/. Re-running skips finished runs
    and resumes interrupted ones.
    """
    spec = prepare_spec(args.spec, args.dataset, args.budget, args.smoke, args.name)
    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    seeds = parse_seeds(args.seeds)
    if args.dry_run:
        print(describe(spec, variants, seeds))
    elif args.merge:
        merge_study(spec, partial=args.partial)
    else:
        run_study(spec, parse_shard(args.shard), args.device, variants=variants, seeds=seeds)


def parse_seeds(text: str | None) -> list[int] | None:
    """`0,2` -> [0, 2]; None -> None (every seed)."""
    if not text:
        return None
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise StudyError(f"--seeds {text!r}: expected whole numbers separated by commas, e.g. --seeds 0,1") from None


def add_verbs(sub) -> None:
    add_study(sub)
