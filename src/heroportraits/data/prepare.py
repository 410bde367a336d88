"""Bring your own portraits: any folder of images + labels -> a clean staging set.

`prepare_dataset` reads every image under a folder, flattens transparency, brings it
to 64x64 without blurring pixel art, attaches labels (from a labels.csv or from
sub-folder names, plus automatic palette labels when asked or missing), applies the
manual overrides, and writes `data/<name>/prepared/`:
    images.npy     uint8 (N, 64, 64, 3), accepted images in file order
    labels.csv     file, <one column per attribute>
    report.csv     one row per input file (and per label row without an image):
                   accepted, or rejected with a reason -- nothing is dropped silently
    prepare.json   input, attributes and their values, native pixel scale, parameters,
                   palette agreement, counts
`build.py` turns this into the final dataset (dedup, split, dataset.json).

Labels:
  * labels.csv: a `file` column (paths relative to the input folder) plus one column
    per attribute. `attributes` picks columns; by default every column but `file`.
  * no CSV: sub-folder names. One level of folders is one attribute (`hero_class`
    unless `attributes` names it); nested levels map in order to `attributes`.
  * palette: labelled from colours (palette.label_palette) when the labels have no
    palette column (auto_palette=None), always (True) or never (False). When a given
    palette column exists and auto_palette=True, the automatic labels are used and
    their agreement with the given ones is measured.
Values are kept as written (surrounding spaces stripped); `any` is reserved.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from heroportraits.data import palette_labels as palette_mod
from heroportraits.data.attributes import DEFAULT_SCHEMA, UNSPECIFIED
from heroportraits.data.curation import check_overrides, normalise_relpath, read_overrides, split_overrides
from heroportraits.data.dataset import read_labels_csv, write_labels_csv
from heroportraits.data.images import ImageReadError, detect_pixel_scale, list_images, load_image, to_resolution
from heroportraits.errors import HeroError
from heroportraits.paths import data_dir, project_root

PALETTE = "palette"
FOLDER_ATTRIBUTE = "hero_class"  # what one level of sub-folders means when nothing else is said
REASONS = {  # why an input is rejected: the `reason` column of report.csv
    "unreadable": "the file cannot be decoded as an image",
    "too_small": "the image (on its native pixel grid) is smaller than min_size",
    "unlabelled": "no label row / folder for this image",
    "bad_label": "a label value is empty, reserved or not allowed",
    "excluded_by_override": "an overrides row excludes it",
    "missing_image": "a label row names a file that is not an image in the folder",
    "duplicate_label_row": "a second label row for the same file (the first one is used)",
}


class PrepareError(HeroError):
    """Input that cannot be prepared (missing folder, inconsistent labels); says how to fix it."""


@dataclass
class PrepareResult:
    """What prepare did; `summary()` prints the table the notebook shows."""

    name: str
    folder: Path  # data/<name>/prepared
    input_dir: Path
    n_files: int  # image files found under the input folder
    n_accepted: int
    rejected: dict[str, int]  # reason -> count (label rows without image included)
    attributes: dict[str, list[str]]  # attribute -> ordered values
    value_counts: dict[str, dict[str, int]]
    native_scale: int  # most common detected scale among accepted images
    label_source: str  # "csv" or "folders"
    auto_attributes: list[str]  # attributes labelled automatically (["palette"] or [])
    palette_agreement: palette_mod.PaletteAgreement | None
    seconds: float
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())

    def summary(self) -> str:
        lines = [
            f"prepared {self.name!r} from {self.input_dir} (labels from {self.label_source}"
            + (f", automatic {', '.join(self.auto_attributes)}" if self.auto_attributes else "")
            + ")",
            f"  {'image files found':<28}{self.n_files:>7}",
            f"  {'accepted':<28}{self.n_accepted:>7}",
        ]
        for reason, n in sorted(self.rejected.items()):
            lines.append(f"  {'rejected: ' + reason:<28}{n:>7}   {REASONS.get(reason, '')}")
        lines.append(f"  native pixel scale: x{self.native_scale}   ({self.seconds:.1f} s)")
        for attr, values in self.attributes.items():
            counts = self.value_counts[attr]
            lines.append(f"  {attr}: " + ", ".join(f"{v} {counts.get(v, 0)}" for v in values))
        if self.palette_agreement is not None:
            lines.append(self.palette_agreement.table())
        return "\n".join(lines)


# ---------------------------------------------------------------- labels
@dataclass
class _Labels:
    """Given labels for one input folder, before any image is read."""

    columns: list[str]  # attribute columns / folder levels found in the labels
    by_file: dict[str, dict[str, str]]  # relative path -> {attribute: value}
    source: str  # "csv" or "folders"
    extra_rows: list[dict]  # report rows: duplicate label rows, label rows w/o image
    given_palette: dict[str, str]  # relative path -> given palette (to measure agreement)


def _read_csv_labels(path: Path, attributes: list[str] | None, want_auto: bool) -> _Labels:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        rows = [{(k or "").strip(): (v or "") for k, v in r.items()} for r in reader]
    if "file" not in header:
        raise PrepareError(f"{path} has no 'file' column (columns: {header}); the first column must name each image")
    available = [h for h in header if h != "file"]
    if attributes is None:
        columns = available
    else:
        missing = [a for a in attributes if a not in available and not (a == PALETTE and want_auto)]
        if missing:
            raise PrepareError(f"{path} has no column(s) {missing} (columns: {header}); fix --attributes")
        columns = [a for a in attributes if a in available]
    by_file: dict[str, dict[str, str]] = {}
    given_palette: dict[str, str] = {}
    extra = []
    for line, row in enumerate(rows, start=2):
        rel = normalise_relpath(row.get("file", ""))
        if rel in by_file:
            extra.append(
                {
                    "file": rel,
                    "status": "rejected",
                    "reason": "duplicate_label_row",
                    "detail": f"{path.name} line {line}: the file already has a label row",
                }
            )
            continue
        by_file[rel] = {a: row.get(a, "").strip() for a in columns}
        if PALETTE in row:
            given_palette[rel] = row[PALETTE].strip()
    return _Labels(columns, by_file, "csv", extra, given_palette)


def _folder_labels(rels: list[str], attributes: list[str] | None, want_auto: bool) -> _Labels:
    depths = Counter(len(r.split("/")) - 1 for r in rels)
    depth = max((d for d in depths if d > 0), key=lambda d: (depths[d], d), default=0)
    if depth == 0:
        raise PrepareError(
            "no labels: the input folder has no labels.csv and no sub-folders. Put images in one "
            "folder per class (e.g. warrior/, mage/) or add a labels.csv with a 'file' column."
        )
    if attributes is None:
        if depth > 1:
            raise PrepareError(
                f"images are {depth} folder levels deep; name the attribute of each level with "
                f"--attributes (e.g. --attributes gender,hero_class)"
            )
        columns = [FOLDER_ATTRIBUTE]
    else:
        columns = [a for a in attributes if not (a == PALETTE and want_auto and len(attributes) == depth + 1)]
        if len(columns) != depth:
            raise PrepareError(
                f"images are {depth} folder level(s) deep but --attributes names {len(attributes)} "
                f"({attributes}); give one name per folder level"
            )
    by_file = {r: dict(zip(columns, r.split("/")[:-1])) for r in rels if len(r.split("/")) - 1 == depth}
    return _Labels(columns, by_file, "folders", [], {})


def _check_value(attr: str, value: str, allowed: dict[str, list[str]]) -> str | None:
    """None if the value is usable, else why not."""
    if value == "":
        return f"empty {attr}"
    if value == UNSPECIFIED:
        return f"{attr}={value!r} is reserved for 'unspecified'"
    if attr in allowed and value not in allowed[attr]:
        return f"{attr}={value!r} not allowed (allowed: {', '.join(allowed[attr])})"
    return None


def vocabulary_order(attr: str, values: set[str] | list[str]) -> list[str]:
    """Canonical order for values of the default schema, sorted otherwise."""
    canon = DEFAULT_SCHEMA.get(attr)
    if canon is not None and set(values) <= set(canon):
        return [v for v in canon if v in set(values)]
    return sorted(values)


# ---------------------------------------------------------------- main entry
def prepare_dataset(
    input_dir: str | Path,
    name: str,
    labels_csv: str | Path | None = None,
    attributes: list[str] | str | None = None,
    auto_palette: bool | None = None,
    overrides_csv: str | Path | None = None,
    size: int = 64,
    min_size: int = 16,
    background: tuple[int, int, int] = (0, 0, 0),
    values: dict[str, list[str]] | None = None,
    source: dict | None = None,
    progress: bool = True,
) -> PrepareResult:
    """Read, label, check and resize every image under `input_dir`; write data/<name>/prepared/.

    labels_csv: defaults to <input_dir>/labels.csv when that exists, else sub-folder labels.
    attributes: attribute columns to use (list or "a,b"); default every CSV column but `file`.
    values: optional allowed values per attribute (also fixes their order); others are bad_label.
    source: what the folder is, stored in prepare.json (default: <input_dir>/source.json if
        present, else {"kind": "folder"}).
    """
    t0 = time.perf_counter()
    input_dir = Path(input_dir).expanduser().resolve()
    if not input_dir.is_dir():
        raise PrepareError(f"input folder {input_dir} does not exist")
    if isinstance(attributes, str):
        attributes = [a.strip() for a in attributes.split(",") if a.strip()]
    values = {k: list(v) for k, v in (values or {}).items()}
    files = list_images(input_dir)
    rels = [p.relative_to(input_dir).as_posix() for p in files]
    if not files:
        raise PrepareError(f"no images (png, jpg, gif, webp, bmp) under {input_dir}")

    # Labels: CSV or folders; then decide which attribute (palette) is automatic.
    if labels_csv is None and (input_dir / "labels.csv").exists():
        labels_csv = input_dir / "labels.csv"
    want_auto = auto_palette is not False and (attributes is None or PALETTE in attributes)
    if labels_csv is not None:
        labels_csv = Path(labels_csv)
        if not labels_csv.exists():
            raise PrepareError(f"labels file {labels_csv} does not exist")
        labels = _read_csv_labels(labels_csv, attributes, want_auto)
    else:
        labels = _folder_labels(rels, attributes, want_auto)
    has_given_palette = PALETTE in labels.columns
    use_auto = want_auto and (auto_palette is True or not has_given_palette)
    columns = [c for c in labels.columns if not (use_auto and c == PALETTE)]
    order = attributes or labels.columns + ([PALETTE] if use_auto and PALETTE not in labels.columns else [])
    attr_names = [a for a in order if a in columns or (use_auto and a == PALETTE)]
    if not attr_names:
        raise PrepareError("no attributes to label with: the labels have no attribute columns")
    unknown = sorted(set(values) - set(attr_names))
    if unknown:
        raise PrepareError(f"allowed values given for unknown attribute(s) {unknown}; attributes are {attr_names}")

    # Overrides: checked against the files and attributes before any work is done.
    excluded, relabels = {}, {}
    if overrides_csv is not None:
        ovr = read_overrides(overrides_csv)
        check_overrides(ovr, set(rels), attr_names, overrides_csv)
        excluded, relabels = split_overrides(ovr)

    # Every image: read, check size, label, resize.
    report: list[dict] = []
    accepted_imgs, accepted_rows, scales = [], [], []
    given_pal, auto_pal = [], []
    for path, rel in zip(tqdm(files, desc="prepare", disable=not progress, unit="img"), rels):
        row = {"file": rel, "status": "rejected", "reason": "", "detail": ""}
        report.append(row)
        if rel in excluded:
            row.update(reason="excluded_by_override", detail=excluded[rel])
            continue
        try:
            img = load_image(path, background)
        except ImageReadError as e:
            row.update(reason="unreadable", detail=str(e.__cause__ or e)[:200])
            continue
        h, w = img.shape[:2]
        k = detect_pixel_scale(img)
        row.update(width=w, height=h)
        if min(h, w) // k < min_size:
            row.update(reason="too_small", detail=f"{w}x{h} stored at x{k}: native {w // k}x{h // k} < {min_size}")
            continue
        given = labels.by_file.get(rel)
        if given is None and rel not in relabels:
            where = f"row in {Path(labels_csv).name}" if labels.source == "csv" else "label folder"
            row.update(reason="unlabelled", detail=f"no {where}")
            continue
        out, scale = to_resolution(img[::k, ::k], size)  # grid already undone: detection is not repeated at full size
        label = {c: (given or {}).get(c, "") for c in columns}
        auto = palette_mod.label_palette(out, backdrop=background) if use_auto else ""
        if use_auto:
            label[PALETTE] = auto
        label.update(relabels.get(rel, {}))
        problems = [p for a in attr_names if (p := _check_value(a, label[a], values))]
        row.update({a: label[a] for a in attr_names}, scale=scale)
        if use_auto and rel in labels.given_palette:
            row["palette_given"] = labels.given_palette[rel]
        if problems:
            row.update(reason="bad_label", detail="; ".join(problems))
            continue
        if rel in relabels:
            row["detail"] = "relabelled by override: " + ", ".join(f"{a}={v}" for a, v in relabels[rel].items())
        row.update(status="accepted")
        accepted_imgs.append(out)
        accepted_rows.append({"file": rel, **{a: label[a] for a in attr_names}})
        scales.append(scale)
        if use_auto and has_given_palette and labels.given_palette.get(rel, "") not in ("", UNSPECIFIED):
            given_pal.append(labels.given_palette[rel])
            auto_pal.append(auto)

    # Label rows that name no image are reported too.
    image_set = set(rels)
    for rel in labels.by_file:
        if rel not in image_set:
            report.append(
                {
                    "file": rel,
                    "status": "rejected",
                    "reason": "missing_image",
                    "detail": "label row for a file that is not an image under the input folder",
                }
            )
    report.extend(labels.extra_rows)
    folder = data_dir() / name / "prepared"
    report_columns = ["file", "status", "reason", "detail", "width", "height", "scale", *attr_names]
    report_columns += ["palette_given"] if use_auto and has_given_palette else []
    write_labels_csv(folder / "report.csv", report, report_columns)
    if not accepted_rows:
        for stale in ("images.npy", "labels.csv", "prepare.json"):  # a previous run's set must not be built
            (folder / stale).unlink(missing_ok=True)
        reasons = dict(Counter(r["reason"] for r in report))
        raise PrepareError(f"no image of {input_dir} was accepted (rejections: {reasons}); see {folder / 'report.csv'}")

    # Vocabulary: the allowed values when given, else what was seen (canonical/sorted order).
    vocab = {a: values[a] if a in values else vocabulary_order(a, {r[a] for r in accepted_rows}) for a in attr_names}
    value_counts = {a: dict(Counter(r[a] for r in accepted_rows)) for a in attr_names}
    scale_counts = Counter(scales)
    native_scale = max(scale_counts, key=lambda s: (scale_counts[s], s))
    agreement = palette_mod.agreement(given_pal, auto_pal) if given_pal else None
    rejected = dict(Counter(r["reason"] for r in report if r["status"] == "rejected"))

    # Write the rest of data/<name>/prepared/.
    shutil.rmtree(folder / "review", ignore_errors=True)  # grids of a previous run may show stale values
    np.save(folder / "images.npy", np.stack(accepted_imgs).astype(np.uint8))
    write_labels_csv(folder / "labels.csv", accepted_rows, ["file", *attr_names])
    if source is None:
        described = input_dir / "source.json"
        source = json.loads(described.read_text()) if described.exists() else {"kind": "folder"}
    meta = {
        "name": name,
        "input_dir": _display_path(input_dir),
        "source": {**source, "input_dir": _display_path(input_dir)},
        "label_source": labels.source,
        "labels_csv": _display_path(labels_csv) if labels_csv else None,
        "attributes": vocab,
        "auto_attributes": [PALETTE] if use_auto else [],
        "native_scale": int(native_scale),
        "native_scale_counts": {str(k): v for k, v in sorted(scale_counts.items())},
        "palette_agreement": agreement.to_json() if agreement else None,
        "counts": {"files": len(files), "accepted": len(accepted_rows), "rejected": rejected, "values": value_counts},
        "parameters": {
            "size": size,
            "min_size": min_size,
            "background": list(background),
            "auto_palette": auto_palette,
            "attributes": attributes,
            "values": values or None,
            "overrides_csv": _display_path(overrides_csv) if overrides_csv else None,
        },
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (folder / "prepare.json").write_text(json.dumps(meta, indent=2))
    (folder / "palette_agreement.png").unlink(missing_ok=True)
    if agreement is not None:
        agreement.plot().savefig(folder / "palette_agreement.png", dpi=100)
    return PrepareResult(
        name=name,
        folder=folder,
        input_dir=input_dir,
        n_files=len(files),
        n_accepted=len(accepted_rows),
        rejected=rejected,
        attributes=vocab,
        value_counts=value_counts,
        native_scale=int(native_scale),
        label_source=labels.source,
        auto_attributes=meta["auto_attributes"],
        palette_agreement=agreement,
        seconds=time.perf_counter() - t0,
        paths={
            k: folder / f
            for k, f in [
                ("images", "images.npy"),
                ("labels", "labels.csv"),
                ("report", "report.csv"),
                ("meta", "prepare.json"),
            ]
            + ([("palette_agreement", "palette_agreement.png")] if agreement is not None else [])
        },
    )


def _display_path(p: str | Path) -> str:
    """Paths inside the project are stored relative to its root, so the folder can move."""
    p = Path(p).resolve()
    try:
        return p.relative_to(project_root()).as_posix()
    except ValueError:
        return str(p)


def read_report(name: str) -> list[dict]:
    return read_labels_csv(data_dir() / name / "prepared" / "report.csv")


def read_prepare_meta(name: str) -> dict:
    path = data_dir() / name / "prepared" / "prepare.json"
    if not path.exists():
        raise PrepareError(f"no prepared set {name!r} (missing {path}); run `python -m heroportraits prepare` first")
    return json.loads(path.read_text())


# ---------------------------------------------------------------- defaults for the notebooks
def default_input(smoke: bool = False, n: int | None = None, seed: int = 0, progress: bool = True) -> tuple[Path, dict]:
    """`train_images/` when it holds images, else the built-in procedural portraits.

    Returns (folder, source description). Procedural portraits are generated into
    data/sources/procedural (7,600, or 240 when smoke) and reused when the same n and
    seed are already there (recorded in its source.json, which prepare also reads).
    """
    own = project_root() / "train_images"
    if own.is_dir() and list_images(own):
        return own, {"kind": "folder", "path": "train_images"}
    from heroportraits.data import procedural  # lazily: the drawing code is only needed without train_images/

    n = n or (240 if smoke else 7600)
    out = data_dir() / "sources" / "procedural"
    labels = out / "labels.csv"
    meta = out / "source.json"
    wanted = {"kind": "procedural", "n": n, "seed": seed}
    fresh = meta.exists() and json.loads(meta.read_text()) == wanted and labels.exists()
    if not (fresh and len(read_labels_csv(labels)) == n and len(list_images(out / "images")) == n):
        shutil.rmtree(out, ignore_errors=True)  # our own generated folder: another n or seed leaves stale files
        procedural.write_procedural_folder(out, n, seed, progress=progress)
        meta.write_text(json.dumps(wanted))
    return out, wanted


# ---------------------------------------------------------------- CLI
def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "prepare",
        help="any folder of images + labels -> data/NAME/prepared (report of every file)",
        description="Read every image under --input, label it (labels.csv or sub-folder names, automatic "
        "palette), apply --overrides, resize to 64x64 crisply; write data/NAME/prepared/.",
    )
    p.add_argument("--input", required=True, help="folder of images (searched recursively)")
    p.add_argument("--name", required=True, help="dataset name: writes data/NAME/prepared/")
    p.add_argument("--labels", help="labels CSV (default: INPUT/labels.csv if present, else folder names)")
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
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--min-size", type=int, default=16, help="reject images smaller than this on their native grid")
    p.add_argument("--background", default="0,0,0", help="R,G,B that transparency is flattened onto")
    p.add_argument("--review", action="store_true", help="also write review grids for every attribute")
    p.set_defaults(func=_run_cli)


def _run_cli(args) -> None:
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
        from heroportraits.data.curation import review_grids

        for attr in result.attributes:
            paths = review_grids(args.name, attr)
            print(f"review grids for {attr}: {paths[0].parent}")
