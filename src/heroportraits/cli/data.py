"""The data stage's verbs: procedural, lpc, prepare, build, palette."""

from __future__ import annotations

import argparse
import time

from heroportraits.cli.options import add_count, add_quiet, add_seed, add_verb
from heroportraits.data.build import NEAR_THRESHOLD, BuildError, build_dataset
from heroportraits.data.curation import review_grids
from heroportraits.data.lpc import UPSTREAM_URL, build_lpc_dataset, generate_lpc_folder, load_recipes
from heroportraits.data.lpc_variety import VARIETIES
from heroportraits.data.palette_quantise import make_dataset_palette
from heroportraits.data.prepare import PrepareError, prepare_dataset
from heroportraits.data.procedural import write_procedural_folder
from heroportraits.paths import data_dir, dataset_dir, output_folder, plain_name, preview_path


def add_procedural(subparsers) -> None:
    p = add_verb(subparsers, "procedural", _run_procedural)
    add_count(p, "--n", 7600, "number of portraits")
    add_seed(p, "random seed; image i depends only on (seed, i)")
    p.add_argument("--out", default=None, help="output folder path (default: data/sources/procedural)")
    _add_alpha(p)
    add_quiet(p)


def _add_alpha(p) -> None:
    p.add_argument(
        "--alpha",
        action="store_true",
        help="write portraits with alpha (transparent background) so prepare keeps the mask and a model can "
        "draw RGBA (model.alpha)",
    )


def _run_procedural(args: argparse.Namespace) -> None:
    """Draw the built-in labelled pixel-art portraits (no download).

    Draw labelled pixel-art hero portraits from code: 32x32 native pixel art stored 2x upscaled at 64x64,
    labelled gender / hero_class / palette. Writes OUT/images/*.png, OUT/labels.csv
    (file,gender,hero_class,palette) and OUT_preview.png beside it. The same --seed always gives the same
    images.
    """
    out = output_folder(args.out, "--out") if args.out else data_dir() / "sources" / "procedural"
    t0 = time.perf_counter()
    write_procedural_folder(out, n=args.n, seed=args.seed, progress=not args.quiet, alpha=args.alpha)
    dt = time.perf_counter() - t0
    kind = "RGBA PNG, transparent background" if args.alpha else "PNG"
    print(f"wrote {args.n} portraits (64x64 {kind}, native 32x32) to {out / 'images'}")
    print(f"labels: {out / 'labels.csv'}   preview: {preview_path(out)}   time: {dt:.1f} s")


LPC_DESCRIPTION = (
    "Compose labelled hero portraits (gender, hero_class, palette) from the LPC art into\n"
    "data/sources/NAME/ (images/, labels.csv, CREDITS.txt, source.json; preview grid\n"
    "data/sources/NAME_preview.png), then prepare and build the final dataset data/NAME/\n"
    "(dataset.json records the source; CREDITS.txt is copied beside it).\n"
    "The same --seed always gives the same portraits.\n\n"
    f"Get the art with:  git clone {UPSTREAM_URL}\n"
    "The art is CC-BY-SA 3.0 / GPL 3.0: share the portraits with their CREDITS.txt (docs/lpc.md)."
)


def add_lpc(subparsers) -> None:
    p = add_verb(
        subparsers,
        "lpc",
        _run_lpc,
        description=LPC_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--art", required=True, help="folder of the LPC art checkout (holds body/, hair/, head/..., AUTHORS.txt)"
    )
    add_count(p, "--n", 7600, "number of portraits, balanced over class x gender")
    p.add_argument("--name", default="lpc", help="dataset name: writes data/sources/NAME/ and data/NAME/ (default lpc)")
    add_seed(p, "portrait i depends only on (seed, i); also seeds the split")
    p.add_argument("--recipes", default=None, help="JSON recipe table replacing lpc_recipes.RECIPES (same structure)")
    p.add_argument(
        "--variety",
        choices=VARIETIES,
        default="high",
        help="high (default, for measurements): each class mixes several head items and outfits, items cross "
        "classes at a low rate, a quarter of heads bare, more skins, hair and recolours; low: the recipe table "
        "as written, one iconic look per class (docs/lpc.md)",
    )
    p.add_argument("--no-build", action="store_true", help="only write data/sources/NAME/ (prepare and build later)")
    _add_alpha(p)
    add_quiet(p)


def _run_lpc(args: argparse.Namespace) -> None:
    """Compose labelled portraits from a Universal LPC spritesheet checkout."""
    recipes = load_recipes(args.recipes)
    out = data_dir() / "sources" / plain_name(args.name, "--name")
    t0 = time.perf_counter()
    generate_lpc_folder(
        args.art,
        out,
        n=args.n,
        seed=args.seed,
        progress=not args.quiet,
        recipes=recipes,
        variety=args.variety,
        alpha=args.alpha,
    )
    print(
        f"wrote {args.n} LPC portraits{' with alpha' if args.alpha else ''} to {out} "
        f"in {time.perf_counter() - t0:.1f} s "
        f"(labels.csv, CREDITS.txt; preview {preview_path(out)})"
    )
    if not args.no_build:
        prepared, built = build_lpc_dataset(args.name, out, recipes=recipes, seed=args.seed, progress=not args.quiet)
        print(prepared.summary())
        print(built.summary())
        print(
            f"dataset ready: {built.folder} (credits in {built.folder / 'CREDITS.txt'}) "
            f"after {time.perf_counter() - t0:.1f} s in all"
        )


def add_prepare(subparsers) -> None:
    p = add_verb(subparsers, "prepare", _run_prepare)
    p.add_argument("--input", required=True, help="path of the folder of images (searched recursively)")
    p.add_argument("--name", required=True, help="dataset name (a plain name): writes data/NAME/prepared/")
    p.add_argument("--labels", help="path of a labels CSV (default: INPUT/labels.csv if present, else folder names)")
    p.add_argument(
        "--attributes", help="comma-separated attribute columns / folder levels, e.g. gender,hero_class,palette"
    )
    p.add_argument(
        "--values",
        action="append",
        metavar="ATTR=V1,V2",
        help="allowed values of an attribute, in order (repeatable); other values are rejected",
    )
    p.add_argument("--overrides", help="curation CSV: file,action,attribute,value[,note] (exclude / relabel)")
    p.add_argument(
        "--auto-palette",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="label palette from colours (default: only when the labels have no palette column)",
    )
    add_count(p, "--size", 64, "output side in pixels")
    add_count(p, "--min-size", 16, "reject images smaller than this on their native grid")
    p.add_argument("--background", default="0,0,0", help="R,G,B that transparency is flattened onto")
    p.add_argument("--review", action="store_true", help="also write review grids for every attribute")


def _run_prepare(args) -> None:
    """Any folder of images + labels -> data/NAME/prepared (report of every file).

    Read every image under --input, label it (labels.csv or sub-folder names, automatic palette), apply
    --overrides, resize to 64x64 crisply; write data/NAME/prepared/.
    """
    values = {}
    for item in args.values or []:
        if "=" not in item:
            raise PrepareError(f"--values expects ATTR=V1,V2, got {item!r}")
        k, v = item.split("=", 1)
        values[k.strip()] = [x.strip() for x in v.split(",") if x.strip()]
    try:
        background = tuple(int(c) for c in args.background.split(","))
        assert len(background) == 3
    except (ValueError, AssertionError):
        raise PrepareError(f"--background expects R,G,B (e.g. 0,0,0), got {args.background!r}") from None
    result = prepare_dataset(
        args.input,
        args.name,
        labels_csv=args.labels,
        attributes=args.attributes,
        auto_palette=args.auto_palette,
        overrides_csv=args.overrides,
        size=args.size,
        min_size=args.min_size,
        background=background,
        values=values or None,
    )
    print(result.summary())
    print(f"wrote {result.folder} (report: {result.paths['report']})")
    if args.review:
        for attr in result.attributes:
            paths = review_grids(args.name, attr)
            print(f"review grids for {attr}: {paths[0].parent}")


def add_build(subparsers) -> None:
    p = add_verb(subparsers, "build", _run_build)
    p.add_argument("name", help="dataset name (reads data/NAME/prepared from `prepare`)")
    p.add_argument("--val-fraction", type=float, default=0.1)
    add_seed(p, "seed of the train/val split")
    p.add_argument(
        "--near-threshold",
        type=float,
        default=NEAR_THRESHOLD,
        help="RMS colour difference (0-255) on a 16x16 downsample below which images are near duplicates "
        "(0 turns near-duplicate removal off)",
    )


def _run_build(args) -> None:
    """Data/NAME/prepared -> final dataset data/NAME (dedup, stratified split, dataset.json).

    Remove exact and near duplicates, count labels, split train/val stratified on the joint label and write
    data/NAME/{images.npy,labels.csv,dataset.json,build_report.csv,counts.png}.
    """
    try:
        result = build_dataset(args.name, args.val_fraction, args.seed, args.near_threshold)
    except PrepareError as e:
        raise BuildError(str(e)) from None
    print(result.summary())
    print(f"wrote {result.folder} (duplicates listed in {result.paths['report']})")


def add_palette(sub) -> None:
    p = add_verb(sub, "palette", _run_palette)
    p.add_argument("name", help="final dataset name under data/ (from `build`) or a path")
    add_count(p, "--k", 32, "most colours in the palette")
    add_seed(p, "seed of the k-means++ start")


def _run_palette(args: argparse.Namespace) -> None:
    """Cluster a dataset's train pixels into K colours (OKLab); report and store the palette.

    Cluster the train split's pixels (native grid) of data/NAME into at most K colours in OKLab, print how much
    colour that loses (mean / max dE, share of pixels kept exactly) and store the palette in
    data/NAME/dataset.json with a swatch data/NAME/palette.png. A model trained with --set model.output=palette
    --set model.palette_source=dataset draws every pixel from it.
    """
    report = make_dataset_palette(args.name, args.k, args.seed)
    print(report.summary())
    print(f"stored in {dataset_dir(args.name) / 'dataset.json'} (swatch {dataset_dir(args.name) / 'palette.png'})")


def add_verbs(sub) -> None:
    for add in (add_procedural, add_lpc, add_prepare, add_build, add_palette):
        add(sub)
