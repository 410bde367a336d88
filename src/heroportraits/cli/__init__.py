"""`python -m heroportraits VERB ...`: one command-line verb per pipeline step, all registered here.

Each module of this package gives one stage's verbs their options and prints their results
(`add_verbs(subparsers)`); the work itself is the package functions they call, which the notebooks
call too. Shared options (counts, seeds, devices, drawing) live in `cli.options`.
"""

from __future__ import annotations

import argparse
import sys

from heroportraits.cli import bench, data, evaluation, sampling, study, training
from heroportraits.errors import HeroError

# The stages whose verbs the command line offers, in the order `--help` lists them.
STAGES = [data, training, sampling, evaluation, bench, study]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m heroportraits",
        description="Conditional GANs for 64x64 pixel-art hero portraits. "
        "Pipeline: procedural (or your own images) -> prepare -> build -> train -> sample.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for stage in STAGES:
        stage.add_verbs(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except HeroError as e:
        # Input problems (bad labels, missing files, wrong checkpoint) get a clear
        # one-line message; anything else is a bug and keeps its traceback.
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before training took over SIGINT, or a second one: stop, in one line
        print(f"stopped by Ctrl-C during `{args.verb}`", file=sys.stderr)
        return 130
    return 0
