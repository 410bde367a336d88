"""`python -m heroportraits VERB ...`: one command-line verb per pipeline step.

Each verb lives in its own module, which exposes `add_cli(subparsers)`; that function
registers the verb's options and sets `func` to a function taking the parsed args.
The notebooks call the same package functions that these verbs call.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from heroportraits.errors import HeroError

# Modules that register a verb, in the order `--help` lists them.
COMMAND_MODULES = [
    "heroportraits.data.procedural",
    "heroportraits.data.lpc",
    "heroportraits.data.prepare",
    "heroportraits.data.build",
    "heroportraits.training.loop",
    "heroportraits.sample",
    "heroportraits.export",
    "heroportraits.evaluation.evaluate",
    "heroportraits.bench",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m heroportraits",
        description="Conditional GANs for 64x64 pixel-art hero portraits. "
        "Pipeline: procedural (or your own images) -> prepare -> build -> train -> sample.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_cli(sub)
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
    return 0
