"""The sampling verbs: sample (PNG folders, grids, walks) and export."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from heroportraits.cli import options
from heroportraits.data.attributes import parse_assignments
from heroportraits.data.dataset import read_labels_csv
from heroportraits.paths import output_folder
from heroportraits.sampling.export import FORMATS, export_generator, read_metadata
from heroportraits.sampling.portraits import write_grid, write_samples, write_sheet_of
from heroportraits.sampling.sampler import OPEN_MODES, SampleError, Sampler
from heroportraits.sampling.walks import write_walk
from heroportraits.training.checkpoint import resolve_checkpoint_path


def add_sample(sub) -> None:
    p = options.add_verb(sub, "sample", _run_sample)
    p.add_argument("checkpoint", help="checkpoint file, or run folder (uses its last.pt)")
    options.add_count(p, "--n", 64, "number of portraits")
    p.add_argument("--out", required=True, help="output folder path (or .png file with --grid)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a folder that already holds files: its numbered PNGs and labels.csv are replaced, "
        "anything else is left",
    )
    options.add_assignments(
        p,
        "conditions",
        "ATTR=VALUE",
        "fix an attribute, e.g. --set hero_class=mage (repeatable); others follow the training mix",
    )
    p.add_argument(
        "--open",
        dest="open_attributes",
        choices=OPEN_MODES,
        default=None,
        help="attributes not fixed by --set: 'mix' = drawn from the training mix, 'unspecified' = left "
        "to the model (default: unspecified if it was trained with attribute dropout, else mix)",
    )
    p.add_argument("--grid", action="store_true", help="write one grid image instead of individual files")
    p.add_argument(
        "--sheet",
        action="store_true",
        help="write a sprite sheet instead: --out as an atlas PNG plus its JSON beside it (the frame layout Phaser, "
        "PixiJS and TexturePacker read; each frame with its labels and seed); with --grid, of the attribute grid",
    )
    p.add_argument(
        "--transparent",
        action="store_true",
        help="RGBA portraits with the background each shares with its border cut (a flood fill on the native grid); "
        "says how many were cut cleanly (labels.csv / the sheet's frames: background_cut)",
    )
    p.add_argument(
        "--scale", type=int, default=1, help="with --sheet: enlarge each portrait N times, crisp (default 1)"
    )
    p.add_argument(
        "--border",
        type=int,
        default=0,
        help="with --sheet: transparent pixels around each frame against bleeding (default 0; 1 is usual)",
    )
    p.add_argument(
        "--interpolate",
        metavar="SPEC",
        help="write a latent walk (strip .png + animated .gif) instead: seed=0:1[:2...] walks the noise between "
        "seeds under one condition, ATTR=A:B[:C...] (e.g. palette=warm:cool) walks an attribute at fixed noise",
    )
    p.add_argument("--frames", type=int, default=8, help="frames per walk segment, ends included (default 8)")
    options.add_drawing_options(p)
    options.add_seed(p, "noise and condition seed")
    options.add_device(p)


def _run_sample(args: argparse.Namespace) -> None:
    """Generate portraits from a checkpoint.

    Generate portraits with the EMA generator of CHECKPOINT (a .pt file or a run folder). Writes individual PNGs
    plus labels.csv to --out, or one grid image with --grid.
    """
    _check_sheet_flags(args)
    sampler = Sampler.from_checkpoint(
        resolve_checkpoint_path(args.checkpoint), args.device, options.drawing_changes(args)
    )
    conditions = parse_assignments(args.conditions)
    if args.interpolate:
        out = Path(args.out)
        out = out if out.suffix.lower() in (".png", ".gif") else output_folder(out, "--out") / "walk.png"
        strip, gif = write_walk(
            sampler, args.interpolate, out, args.frames, conditions, args.seed, args.open_attributes
        )
        print(f"wrote {strip} and {gif}")
    elif args.sheet:
        out = Path(args.out)
        out = out if out.suffix.lower() == ".png" else output_folder(out, "--out") / "sheet.png"
        atlas, meta = write_sheet_of(
            sampler,
            out,
            conditions,
            args.n,
            args.seed,
            args.open_attributes,
            args.scale,
            args.border,
            args.grid,
            args.transparent,
        )
        print(f"wrote {atlas} and {meta}")
        if args.transparent and not sampler.draws_alpha:
            frames = json.loads(meta.read_text())["frames"].values()
            _print_cuts([f["labels"]["background_cut"] for f in frames])
    elif args.grid:
        out = Path(args.out)
        if out.suffix.lower() != ".png":
            out = output_folder(out, "--out") / "grid.png"
        print(f"wrote {write_grid(sampler, out, conditions, args.n, args.seed, args.open_attributes)}")
    else:
        out = write_samples(
            sampler,
            args.out,
            args.n,
            conditions,
            args.seed,
            open_attributes=args.open_attributes,
            overwrite=args.overwrite,
            transparent=args.transparent,
        )
        print(f"wrote {args.n} portraits and labels.csv to {out}")
        if args.transparent and not sampler.draws_alpha:
            _print_cuts([row["background_cut"] for row in read_labels_csv(out / "labels.csv")])


def _check_sheet_flags(args: argparse.Namespace) -> None:
    """Flags that would do nothing for what is asked are refused, not dropped (checked before the model loads)."""
    if not args.sheet and (args.scale != 1 or args.border != 0):
        raise SampleError("--scale and --border shape a sprite sheet: add --sheet, or leave them out")
    if args.transparent and (args.interpolate or (args.grid and not args.sheet)):
        raise SampleError(
            "--transparent cuts portraits written as PNGs or as a --sheet, not a grid figure or a walk: "
            "add --sheet, or leave --transparent out"
        )


def _print_cuts(cuts: list[str]) -> None:
    clean = cuts.count("clean")
    print(
        f"background cut cleanly in {clean} of {len(cuts)} portraits ({clean / max(len(cuts), 1):.0%}); the others "
        "are marked rough (background_cut): their figure meets the border in the background's colour"
    )


def add_export(sub) -> None:
    p = options.add_verb(sub, "export", _run_export)
    p.add_argument("checkpoint", help="checkpoint file, or run folder (uses its last.pt)")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default="onnx", help="onnx (default) or torchscript")
    p.add_argument("--out", required=True, help="output file, e.g. hero.onnx or hero.pt")
    options.add_drawing_options(p, guided=False)


def _run_export(args: argparse.Namespace) -> None:
    """Export the EMA generator to ONNX or TorchScript.

    Export the EMA generator of CHECKPOINT (a .pt file or a run folder) as one file: noise (N, z_dim) float32
    and label indices (N, A) int64 in, uint8 RGB (N, 64, 64, 3) out, dynamic N. The attribute values and z_dim
    are stored inside the file. See docs/export.md.
    """
    out = export_generator(args.checkpoint, args.out, args.fmt, options.drawing_changes(args))
    meta = read_metadata(out)
    attrs = ", ".join(f"{k} ({len(v)})" for k, v in meta["attributes"].items())
    print(f"wrote {out} ({args.fmt}, z_dim {meta['z_dim']}, attributes: {attrs or 'none'})")


def add_verbs(sub) -> None:
    add_sample(sub)
    add_export(sub)
