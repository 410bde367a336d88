"""The options several verbs share, so that they read and check alike: counts, seeds, devices,
`--set` assignments, progress, and how a checkpoint's portraits are drawn."""

from __future__ import annotations

import argparse
import inspect

from heroportraits.models.config import DRAW_FIELDS, FLOW_SOLVERS
from heroportraits.training.config import MAX_SEED


def add_verb(subparsers, name: str, run, **kwargs) -> argparse.ArgumentParser:
    """Register verb `name`; `run(args)` is called with the parsed options. `run`'s docstring is the verb's help:
    its first paragraph in `python -m heroportraits --help`, the rest in the verb's own --help (unless
    `description` is given)."""
    summary, _, rest = inspect.cleandoc(run.__doc__ or "").partition("\n\n")
    summary = " ".join(summary.split()).rstrip(".")
    kwargs.setdefault("description", " ".join(rest.split()) or summary)
    p = subparsers.add_parser(name, help=summary[0].lower() + summary[1:] if summary else None, **kwargs)
    p.set_defaults(func=run)
    return p


def at_least(low: int, high: int | None = None):
    """An argparse type: a whole number >= low (and <= high), refused with one clear line otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expects a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            allowed = f">= {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value}")
        return value

    parse.__name__ = f"whole number >= {low}"
    return parse


def add_count(p: argparse.ArgumentParser, flag: str, default: int, help: str, low: int = 1) -> None:
    """A count option (--n, --subsets, --steps...): a whole number >= low, its default in the help."""
    p.add_argument(flag, type=at_least(low), default=default, help=f"{help} (default {default})")


def add_seed(p: argparse.ArgumentParser, help: str = "random seed") -> None:
    p.add_argument("--seed", type=at_least(0, MAX_SEED), default=0, help=f"{help} (default 0)")


def add_device(p: argparse.ArgumentParser, default: str = "cpu") -> None:
    p.add_argument(
        "--device", default=default, help=f"auto (cuda if available), cpu, cuda, cuda:1 ... (default {default})"
    )


def add_assignments(p: argparse.ArgumentParser, dest: str, metavar: str, help: str) -> None:
    """A repeatable `--set KEY=VALUE` option (config fields for train/bench, attributes for sample)."""
    p.add_argument("--set", dest=dest, action="append", default=[], metavar=metavar, help=help)


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_drawing_options(p: argparse.ArgumentParser, guided: bool = True, best_of: bool = True) -> None:
    """How a checkpoint's portraits are drawn (models.config.DrawOptions), for the verbs that draw them: the colour
    options and, D-guided (not for export, whose file holds G alone), refinement and best of R (`best_of`: not for
    verbs that keep each noise). Each defaults to the run's own (its config's `draw` section); `drawing_changes`
    reads back the ones given."""
    p.add_argument(
        "--rgb-colours",
        type=int,
        metavar="K",
        help="RGB models: quantise each portrait to at most K colours of its own (k-means in OKLab), so it is "
        "drawn in flat colours; 0 = off, as G draws them (default: the run's draw.rgb_colours)",
    )
    p.add_argument(
        "--palette-merge",
        type=float,
        metavar="DE",
        help="palette models (and RGB models with --rgb-colours): merge each portrait's colours closer than DE "
        "(100 x OKLab distance; e.g. 4.5) into the more used one, so near-identical colours stop speckling; "
        "0 = off (default: the run's draw.palette_merge)",
    )
    p.add_argument(
        "--adapt-colours",
        action=argparse.BooleanOptionalAction,
        help="take the colour budget from the dataset's own colour use: unmerged, as many colours as its median "
        "portrait holds (measured at build); merged, the smallest budget whose merged portraits of this model hold "
        "as many as the data's (counted on 64 of them); --rgb-colours / --palette-merge turn it off (default: the "
        "run's draw.adapt_colours)",
    )
    p.add_argument(
        "--palette-file",
        dest="palette",
        metavar="FILE",
        help="draw in your palette: a Lospec .hex, a GIMP .gpl or a swatch image, or colours as "
        "'#1a1c2c,#5d275d,...'; each portrait's own colours go to the nearest free palette colours in OKLab, so "
        "distinct ones stay distinct where the palette allows (default: the run's draw.palette, usually none)",
    )
    p.add_argument(
        "--dither",
        action=argparse.BooleanOptionalAction,
        help="with --palette-file: ordered (Bayer 4x4) dithering between each pixel's two nearest palette colours",
    )
    p.add_argument(
        "--flow-steps",
        type=int,
        metavar="N",
        help="flow models: solver steps from noise to portrait (fewer = faster, coarser) (default: the run's "
        "draw.flow_steps)",
    )
    p.add_argument(
        "--solver",
        dest="flow_solver",
        choices=FLOW_SOLVERS,
        help="flow models: euler (one pass a step) or heun (two, second order) (default: the run's draw.flow_solver)",
    )
    p.add_argument(
        "--guidance",
        type=float,
        metavar="W",
        help="flow models trained with attribute dropout: classifier-free guidance scale; 1 = off, higher pushes "
        "each portrait towards its labels, two passes a step (default: the run's draw.guidance)",
    )
    p.add_argument(
        "--guidance-from",
        type=float,
        metavar="T",
        help="flow models: guide only the solver's passes at time t >= T (0 = noise, 1 = portrait) (default: the "
        "run's draw.guidance_from, usually 0)",
    )
    p.add_argument(
        "--guidance-until",
        type=float,
        metavar="T",
        help="flow models: guide only the solver's passes at time t < T; the later ones, which draw the detail, "
        "take one pass (faster) (default: the run's draw.guidance_until, usually 1)",
    )
    p.add_argument(
        "--guidance-on",
        metavar="ATTRS",
        help="flow models: guide only these attributes, comma-separated (palette, say), or each at its own scale "
        "(hero_class=1.5,palette=2: one more pass per attribute); the others are drawn as the conditional model "
        "draws them, with their variety (default: the run's draw.guidance_on, usually all)",
    )
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        help="flow models: the network's weights in channels-last memory while drawing, the same portraits up to "
        "float rounding, faster on the Xeons measured (default: the run's draw.channels_last)",
    )
    if not guided:
        return
    if best_of:
        p.add_argument(
            "--best-of",
            type=int,
            metavar="R",
            help="draw R candidates for each portrait and keep the one D's classifier reads most surely as the "
            "asked attributes (models trained with model.d_classify; ~R times the sampling time); 1 = off "
            "(default: the run's draw.best_of)",
        )
        p.add_argument(
            "--palette-check",
            type=int,
            metavar="N",
            help="data whose palette labels were read by the palette rules (LPC, folders without a palette column): "
            "redraw each portrait the rules read off its asked palette from new noise, up to N times (1 + the "
            "off share x N draws at most); 0 = off (default: the run's draw.palette_check)",
        )
    p.add_argument(
        "--refine",
        dest="refine_steps",
        type=int,
        metavar="T",
        help="move each portrait's noise T small steps towards a portrait D's classifier reads more surely as "
        "the asked attributes (models trained with model.d_classify; ~3T times the sampling time); 0 = off "
        "(default: the run's draw.refine_steps)",
    )
    p.add_argument(
        "--refine-rate",
        type=float,
        metavar="S",
        help="with --refine: each step moves the noise by this share of its length (default: the run's "
        "draw.refine_rate)",
    )
    p.add_argument(
        "--refine-realness",
        type=float,
        metavar="W",
        help="with --refine: the weight of D's realness score beside its classifier (0 = the classifier alone; "
        "the scale of D's score depends on the GAN loss, docs/log/2026-12-03-refinement-by-d-classifier.md) "
        "(default: the run's draw.refine_realness)",
    )
    p.add_argument(
        "--refine-head",
        type=float,
        metavar="W",
        help="with --refine: the weight of D's head classifier beside its classifier, so the head (headgear) "
        "moves towards the asked class too (models trained with model.d_head_classify; 0 = off) "
        "(default: the run's draw.refine_head)",
    )
    p.add_argument(
        "--bf16",
        dest="bf16",
        action=argparse.BooleanOptionalAction,
        help="the drawing's passes in bf16 where the hardware computes it natively, float32 elsewhere: a GAN's "
        "refinement (with --refine; the portrait itself is drawn in float32), a flow model's solver; about 1.5-2x "
        "faster at the same scores (default: the run's draw.bf16)",
    )


def drawing_changes(args: argparse.Namespace) -> dict:
    """The drawing options given on the command line, by DrawOptions field: what changes the run's drawing."""
    return {f: getattr(args, f) for f in DRAW_FIELDS if getattr(args, f, None) is not None}
