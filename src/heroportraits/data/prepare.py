"""Bring your own portraits: any folder of images + labels -> a clean staging set.

`prepare_dataset` reads every image under a folder, flattens transparency (keeping the
mask when an image has any), brings it to 64x64 without blurring pixel art, attaches
labels (from a labels.csv or from sub-folder names, plus automatic palette labels when
asked or missing), applies the manual overrides, and writes `data/<name>/prepared/`:
    images.npy     uint8 (N, 64, 64, 3), accepted images in file order; (N, 64, 64, 4) when any
                   accepted image has transparency: the RGB still flattened onto the background,
                   channel 4 its mask, 0 or 255 (255 everywhere for images without alpha)
    labels.csv     file, <one column per attribute>
    report.csv     one row per input file (and per label row without an image):
                   accepted, or rejected with a reason -- nothing is dropped silently
    prepare.json   input, attributes and their values, native pixel scale, parameters,
                   palette agreement, counts, alpha (kept or not, how many images had it)
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

import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from heroportraits.data import palette_labels as palette_mod
from heroportraits.data.attributes import DEFAULT_SCHEMA, UNSPECIFIED
from heroportraits.data.curation import (
    check_overrides,
    normalise_relpath,
    read_csv_rows,
    read_overrides,
    split_overrides,
)
from heroportraits.data.dataset import RESERVED_COLUMNS, read_labels_csv, read_table, write_labels_csv
from heroportraits.data.figures import plot_palette_agreement
from heroportraits.data.images import (
    MAX_PIXELS,
    ImageReadError,
    ImageTooLarge,
    detect_pixel_scale,
    flatten_alpha,
    has_transparency,
    list_images,
    load_image_rgba,
    scan_folder,
    to_resolution,
)
from heroportraits.errors import HeroError
from heroportraits.paths import data_dir, plain_name, project_root, writing
from heroportraits.progress import progress_bar

PALETTE = "palette"
FOLDER_ATTRIBUTE = "hero_class"  # what one level of sub-folders means when nothing else is said
REASONS = {  # why an input path is not used: the `reason` column of report.csv
    "unreadable": "the file cannot be decoded as an image",
    "too_large": f"more than {MAX_PIXELS:,} pixels (e.g. a decompression bomb)",
    "broken_link": "a symbolic link to nothing, or a link loop",
    "not_a_file": "a folder or device named like an image",
    "unsupported_type": "an image type that is not read (convert it to PNG)",
    "not_an_image": "not an image file (skipped, e.g. labels.csv)",
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
    """What prepare did: `table()` where the files went (a DataFrame), `summary()` all of it as text (the CLI)."""

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
    n_skipped: int = 0  # other files under the input folder (labels.csv, notes...): listed in the report
    checks: list[str] = field(default_factory=list)  # label values that look like slips (value_checks)
    n_alpha: int = 0  # accepted images with transparency: when > 0, images.npy keeps the mask as channel 4

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())

    def table(self) -> pd.DataFrame:
        """Where every input file went: found, accepted, and rejected per reason (with its meaning)."""
        rows = [("image files found", self.n_files, ""), ("accepted", self.n_accepted, "")]
        rows += [(f"rejected: {r}", n, REASONS.get(r, "")) for r, n in sorted(self.rejected.items())]
        rows += [("skipped: not_an_image", self.n_skipped, REASONS["not_an_image"])] if self.n_skipped else []
        return pd.DataFrame(rows, columns=["files", "count", "meaning"]).set_index("files")

    def summary(self) -> str:
        lines = [
            f"prepared {self.name!r} from {self.input_dir} (labels from {self.label_source}"
            + (f", automatic {', '.join(self.auto_attributes)}" if self.auto_attributes else "")
            + ")",
            *("  " + line for line in self.table().to_string().splitlines()),
        ]
        lines.append(f"  native pixel scale: x{self.native_scale}   ({self.seconds:.1f} s)")
        for attr, values in self.attributes.items():
            counts = self.value_counts[attr]
            lines.append(f"  {attr}: " + ", ".join(f"{v} {counts.get(v, 0)}" for v in values))
        if self.n_alpha:
            lines.append(
                f"  alpha kept: {self.n_alpha} of {self.n_accepted} images have transparency "
                "(the mask is channel 4 of images.npy)"
            )
        lines += [f"  check: {c}" for c in self.checks]
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
    header, rows = read_csv_rows(path, "labels file", PrepareError)
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
    for line, row in rows:
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


NEAR_EMPTY = 2  # a label value with this many images or fewer is flagged as a possible slip


def value_checks(value_counts: dict[str, dict[str, int]], attributes: list[str]) -> list[str]:
    """Label values that look like slips, one line each: values of an attribute that differ only
    in case (`MASCULINE` beside `masculine`), and values with NEAR_EMPTY images or fewer. They are
    kept as classes of their own (no --values was given); the lines say what to look at."""
    checks = []
    for attr in attributes:
        counts = value_counts[attr]
        by_fold: dict[str, list[str]] = {}
        for v in sorted(counts):
            by_fold.setdefault(v.casefold(), []).append(v)
        for same in (g for g in by_fold.values() if len(g) > 1):
            shown = ", ".join(f"{v!r} ({counts[v]})" for v in same)
            checks.append(f"{attr} values {shown} differ only in case: each is a class of its own")
        for v, n in sorted(counts.items()):
            if n <= NEAR_EMPTY and len(counts) > 1:
                checks.append(f"{attr}={v!r} has only {n} image(s): a typo? (fix the label or pass --values)")
    return checks


def vocabulary_order(attr: str, values: set[str] | list[str]) -> list[str]:
    """Canonical order for values of the default schema, sorted otherwise."""
    canon = DEFAULT_SCHEMA.get(attr)
    if canon is not None and set(values) <= set(canon):
        return [v for v in canon if v in set(values)]
    return sorted(values)


# ---------------------------------------------------------------- the plan: labels, attributes, overrides
@dataclass
class _Plan:
    """Everything decided before the first image is read."""

    labels: _Labels
    labels_csv: Path | None
    columns: list[str]  # given attribute columns that are used (palette left out when automatic)
    attr_names: list[str]  # every attribute of the prepared set, in order
    use_auto: bool  # palette labelled from colours
    has_given_palette: bool  # the labels have a palette column (agreement can be measured)
    values: dict[str, list[str]]  # allowed values per attribute (may be empty)
    excluded: dict[str, str]  # file -> note, from the overrides
    relabels: dict[str, dict[str, str]]  # file -> {attribute: value}, from the overrides

    def where_labels(self) -> str:
        return f"row in {self.labels_csv.name}" if self.labels.source == "csv" else "label folder"


def _resolve_labels(
    input_dir: Path,
    rels: list[str],
    labels_csv: str | Path | None,
    attributes: list[str] | None,
    auto_palette: bool | None,
    values: dict[str, list[str]],
    overrides_csv: str | Path | None,
) -> _Plan:
    """Read the labels (CSV or folders), decide which attributes exist and which is automatic,
    and check the allowed values and the overrides against them: all before any image is read."""
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
    reserved = [a for a in attr_names if a in RESERVED_COLUMNS]
    if reserved:
        raise PrepareError(
            f"the labels name an attribute {reserved[0]!r}, a column the final dataset keeps for itself (`build` "
            f"writes each image's {RESERVED_COLUMNS[reserved[0]]}): rename it, or leave it out with --attributes"
        )
    unknown = sorted(set(values) - set(attr_names))
    if unknown:
        raise PrepareError(f"allowed values given for unknown attribute(s) {unknown}; attributes are {attr_names}")
    excluded, relabels = {}, {}
    if overrides_csv is not None:
        ovr = read_overrides(overrides_csv)
        check_overrides(ovr, set(rels), attr_names, overrides_csv)
        excluded, relabels = split_overrides(ovr)
    return _Plan(labels, labels_csv, columns, attr_names, use_auto, has_given_palette, values, excluded, relabels)


# ---------------------------------------------------------------- one file
def _resized(img: np.ndarray, rgba: np.ndarray | None, k: int, size: int) -> tuple[np.ndarray, int]:
    """The composite at size x size, with the source's mask as channel 4 when it has one (`rgba`): cropped
    and resized with the colours, then made binary (>= 128: figure, 255; else background, 0)."""
    if rgba is not None:
        img = np.dstack([img, rgba[..., 3]])
    out, scale = to_resolution(img[::k, ::k], size)  # grid already undone: detection is not repeated at full size
    if rgba is not None:
        out = np.dstack([out[..., :3], np.where(out[..., 3] >= 128, 255, 0).astype(np.uint8)])
    return out, scale


@dataclass
class _Accepted:
    """What the accepted images add up to, in file order."""

    images: list[np.ndarray] = field(default_factory=list)  # (size, size, 3) uint8, or 4 with the mask
    rows: list[dict] = field(default_factory=list)  # file + one value per attribute
    scales: list[int] = field(default_factory=list)
    given_palette: list[str] = field(default_factory=list)  # given vs automatic palette, for the agreement
    auto_palette: list[str] = field(default_factory=list)


def _process_file(
    path: Path, rel: str, plan: _Plan, size: int, min_size: int, background: tuple[int, int, int], acc: _Accepted
) -> dict:
    """Read, check, label and resize one image; add it to `acc` if accepted. Returns its report row."""
    row = {"file": rel, "status": "rejected", "reason": "", "detail": ""}
    if rel in plan.excluded:
        return {**row, "reason": "excluded_by_override", "detail": plan.excluded[rel]}
    try:
        rgba = load_image_rgba(path)
    except ImageTooLarge as e:
        return {**row, "reason": "too_large", "detail": str(e)[:200]}
    except ImageReadError as e:
        return {**row, "reason": "unreadable", "detail": str(e.__cause__ or e)[:200]}
    img = flatten_alpha(rgba, background)
    h, w = img.shape[:2]
    k = detect_pixel_scale(img)
    row.update(width=w, height=h)
    if min(h, w) // k < min_size:
        return {
            **row,
            "reason": "too_small",
            "detail": f"{w}x{h} stored at x{k}: native {w // k}x{h // k} < {min_size}",
        }
    given = plan.labels.by_file.get(rel)
    if given is None and rel not in plan.relabels:
        return {**row, "reason": "unlabelled", "detail": f"no {plan.where_labels()}"}
    out, scale = _resized(img, rgba if has_transparency(rgba) else None, k, size)
    label = {c: (given or {}).get(c, "") for c in plan.columns}
    auto = palette_mod.label_palette(out[..., :3], backdrop=background) if plan.use_auto else ""
    if plan.use_auto:
        label[PALETTE] = auto
    label.update(plan.relabels.get(rel, {}))
    row.update({a: label[a] for a in plan.attr_names}, scale=scale)
    if plan.use_auto and rel in plan.labels.given_palette:
        row["palette_given"] = plan.labels.given_palette[rel]
    problems = [p for a in plan.attr_names if (p := _check_value(a, label[a], plan.values))]
    if problems:
        return {**row, "reason": "bad_label", "detail": "; ".join(problems)}
    if rel in plan.relabels:
        row["detail"] = "relabelled by override: " + ", ".join(f"{a}={v}" for a, v in plan.relabels[rel].items())
    acc.images.append(out)
    acc.rows.append({"file": rel, **{a: label[a] for a in plan.attr_names}})
    acc.scales.append(scale)
    given_palette = plan.labels.given_palette.get(rel, "")
    if plan.use_auto and plan.has_given_palette and given_palette not in ("", UNSPECIFIED):
        acc.given_palette.append(given_palette)
        acc.auto_palette.append(auto)
    return {**row, "status": "accepted"}


def _other_row(input_dir: Path, path: Path, reason: str, detail: str) -> dict:
    """The report row of a path that is not read as an image (a broken link, a .tiff, labels.csv...)."""
    status = "skipped" if reason == "not_an_image" else "rejected"
    return {"file": path.relative_to(input_dir).as_posix(), "status": status, "reason": reason, "detail": detail}


def _missing_image_rows(plan: _Plan, rels: list[str], reported: set[str]) -> list[dict]:
    """Report rows for label rows that name no image (and for duplicate label rows); a label
    row for a path already reported (a broken link, a .tiff) adds nothing: that row says why."""
    image_set = set(rels) | reported
    missing = [
        {
            "file": rel,
            "status": "rejected",
            "reason": "missing_image",
            "detail": "label row for a file that is not an image under the input folder",
        }
        for rel in plan.labels.by_file
        if rel not in image_set
    ]
    return missing + plan.labels.extra_rows


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
    plain_name(name, "dataset name")
    check_sizes(size, min_size, background)
    input_dir = Path(input_dir).expanduser().resolve()
    if isinstance(attributes, str):
        attributes = [a.strip() for a in attributes.split(",") if a.strip()]
    files, rels, other_rows = _scan_input(input_dir)
    source = source if source is not None else read_source(input_dir)  # checked before anything is written
    values = {k: list(v) for k, v in (values or {}).items()}
    plan = _resolve_labels(input_dir, rels, labels_csv, attributes, auto_palette, values, overrides_csv)

    acc = _Accepted()
    report = [
        _process_file(path, rel, plan, size, min_size, background, acc)
        for path, rel in zip(progress_bar(files, desc="prepare", disable=not progress, unit="img"), rels)
    ]
    report += other_rows + _missing_image_rows(plan, rels, {r["file"] for r in other_rows})
    folder = data_dir() / name / "prepared"
    with writing(folder, "the prepared set into", PrepareError):
        _write_report(folder, report, plan)
    if not acc.rows:
        _refuse_empty(folder, input_dir, report)
    parameters = {
        "size": size,
        "min_size": min_size,
        "background": list(background),
        "auto_palette": auto_palette,
        "attributes": attributes,
        "values": values or None,
        "overrides_csv": _display_path(overrides_csv) if overrides_csv else None,
    }
    with writing(folder, "the prepared set into", PrepareError):
        meta, agreement = _write_outputs(folder, name, input_dir, source, plan, acc, report, len(files), parameters)
    return _result(name, folder, input_dir, len(files), plan, acc, report, meta, agreement, time.perf_counter() - t0)


def check_sizes(size: int, min_size: int, background) -> None:
    """The output side, the smallest native grid and the background colour: refused in one line before any work
    when the networks cannot use them (a side that is not a power of two from 16 to 512) or they are no colour."""
    if not (isinstance(size, int) and 16 <= size <= 512 and size & (size - 1) == 0):
        raise PrepareError(f"size {size}: the networks halve the side down to 4x4, so use a power of two, 16 to 512")
    if not (isinstance(min_size, int) and 1 <= min_size <= size):
        raise PrepareError(f"min size {min_size}: a native grid side from 1 to the output size ({size})")
    if len(background) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in background):
        raise PrepareError(f"background {tuple(background)}: an R,G,B colour, each 0 to 255 (e.g. 0,0,0)")


def read_source(input_dir: Path) -> dict:
    """What the input folder is, from its source.json (written by `procedural` / `lpc`), else {"kind": "folder"}."""
    described = input_dir / "source.json"
    if not described.exists():
        return {"kind": "folder"}
    try:
        source = json.loads(described.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PrepareError(f"{described} is not valid JSON ({e}); fix it or remove it") from None
    if not isinstance(source, dict):
        raise PrepareError(f'{described} must hold a JSON object (e.g. {{"kind": "folder"}}); fix it or remove it')
    return source


def _scan_input(input_dir: Path) -> tuple[list[Path], list[str], list[dict]]:
    """The image files under input_dir, their relative paths, and report rows for every other file."""
    if input_dir.is_file():
        raise PrepareError(f"--input {input_dir} is a file; give the folder that holds the images ({input_dir.parent})")
    if not input_dir.is_dir():
        raise PrepareError(f"input folder {input_dir} does not exist")
    files, others = scan_folder(input_dir)
    if not files:
        raise PrepareError(f"no images (png, jpg, gif, webp, bmp) under {input_dir}")
    rels = [p.relative_to(input_dir).as_posix() for p in files]
    return files, rels, [_other_row(input_dir, path, reason, detail) for path, reason, detail in others]


def _refuse_empty(folder: Path, input_dir: Path, report: list[dict]) -> None:
    """No image accepted: remove a previous run's outputs (they must not be built) and say why."""
    for stale in ("images.npy", "labels.csv", "prepare.json"):
        (folder / stale).unlink(missing_ok=True)
    reasons = dict(Counter(r["reason"] for r in report))
    raise PrepareError(f"no image of {input_dir} was accepted (rejections: {reasons}); see {folder / 'report.csv'}")


def _result(name, folder, input_dir, n_files, plan, acc, report, meta, agreement, seconds) -> PrepareResult:
    paths = {"images": "images.npy", "labels": "labels.csv", "report": "report.csv", "meta": "prepare.json"}
    if agreement is not None:
        paths["palette_agreement"] = "palette_agreement.png"
    return PrepareResult(
        name=name,
        folder=folder,
        input_dir=input_dir,
        n_files=n_files,
        n_accepted=len(acc.rows),
        rejected=meta["counts"]["rejected"],
        attributes=meta["attributes"],
        value_counts=meta["counts"]["values"],
        native_scale=meta["native_scale"],
        label_source=plan.labels.source,
        auto_attributes=meta["auto_attributes"],
        palette_agreement=agreement,
        seconds=seconds,
        paths={k: folder / f for k, f in paths.items()},
        n_skipped=sum(r["status"] == "skipped" for r in report),
        checks=meta["checks"],
        n_alpha=meta["alpha"]["images_with_alpha"],
    )


# ---------------------------------------------------------------- outputs
def _write_report(folder: Path, report: list[dict], plan: _Plan) -> None:
    columns = ["file", "status", "reason", "detail", "width", "height", "scale", *plan.attr_names]
    columns += ["palette_given"] if plan.use_auto and plan.has_given_palette else []
    write_labels_csv(folder / "report.csv", report, columns)


def _write_outputs(
    folder: Path,
    name: str,
    input_dir: Path,
    source: dict | None,
    plan: _Plan,
    acc: _Accepted,
    report: list[dict],
    n_files: int,
    parameters: dict,
) -> tuple[dict, palette_mod.PaletteAgreement | None]:
    """images.npy, labels.csv, prepare.json (and the palette agreement figure); returns (meta, agreement)."""
    attr_names = plan.attr_names
    # Vocabulary: the allowed values when given, else what was seen (canonical/sorted order).
    vocab = {
        a: plan.values[a] if a in plan.values else vocabulary_order(a, {r[a] for r in acc.rows}) for a in attr_names
    }
    scale_counts = Counter(acc.scales)
    value_counts = {a: dict(Counter(r[a] for r in acc.rows)) for a in attr_names}
    auto = [PALETTE] if plan.use_auto else []
    agreement = palette_mod.agreement(acc.given_palette, acc.auto_palette) if acc.given_palette else None
    n_alpha = sum(img.shape[-1] == 4 for img in acc.images)
    shutil.rmtree(folder / "review", ignore_errors=True)  # our own grids of a previous run may show stale values
    meta = {
        "name": name,
        "input_dir": _display_path(input_dir),
        "source": {**source, "input_dir": _display_path(input_dir)},
        "label_source": plan.labels.source,
        "labels_csv": _display_path(plan.labels_csv) if plan.labels_csv else None,
        "attributes": vocab,
        "auto_attributes": auto,
        "native_scale": int(max(scale_counts, key=lambda s: (scale_counts[s], s))),  # the most common scale
        "native_scale_counts": {str(k): v for k, v in sorted(scale_counts.items())},
        "palette_agreement": agreement.to_json() if agreement else None,
        "alpha": {"kept": n_alpha > 0, "images_with_alpha": n_alpha},
        "counts": {
            "files": n_files,
            "accepted": len(acc.rows),
            "rejected": dict(Counter(r["reason"] for r in report if r["status"] == "rejected")),
            "values": value_counts,
        },
        "parameters": parameters,
        "checks": value_checks(value_counts, [a for a in attr_names if a not in plan.values and a not in auto]),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    # images, labels and their record replace the old ones together: written beside them, then renamed, so a
    # write that fails (a full disk) leaves the previous set whole
    written = [folder / "images.npy.tmp", folder / "labels.csv.tmp", folder / "prepare.json.tmp"]
    try:
        with open(written[0], "wb") as f:
            np.save(f, _stacked(acc.images, n_alpha > 0))
        write_labels_csv(written[1], acc.rows, ["file", *attr_names])
        written[2].write_text(json.dumps(meta, indent=2))
        for tmp in written:
            os.replace(tmp, tmp.with_suffix(""))
    finally:
        for tmp in written:
            tmp.unlink(missing_ok=True)
    (folder / "palette_agreement.png").unlink(missing_ok=True)
    if agreement is not None:
        plot_palette_agreement(agreement).savefig(folder / "palette_agreement.png", dpi=100)
    return meta, agreement


def _stacked(images: list[np.ndarray], alpha: bool) -> np.ndarray:
    """(N, S, S, 3) uint8 as ever; with `alpha` (N, S, S, 4), images without a mask made opaque (255)."""
    if alpha:
        images = [
            img if img.shape[-1] == 4 else np.dstack([img, np.full(img.shape[:2], 255, np.uint8)]) for img in images
        ]
    return np.stack(images).astype(np.uint8)


def _display_path(p: str | Path) -> str:
    """Paths inside the project are stored relative to its root, so the folder can move."""
    p = Path(p).resolve()
    try:
        return p.relative_to(project_root()).as_posix()
    except ValueError:
        return str(p)


def read_report(name: str) -> pd.DataFrame:
    """report.csv of `prepare NAME`: one row per input file (and per label row without an image),
    columns file, status (accepted / rejected), reason, detail, size, scale and the labels, as text."""
    path = data_dir() / name / "prepared" / "report.csv"
    if not path.exists():
        raise PrepareError(f"no prepare report for {name!r} (missing {path}); run `python -m heroportraits prepare`")
    return read_table(path)


def read_prepare_meta(name: str) -> dict:
    path = data_dir() / name / "prepared" / "prepare.json"
    if not path.exists():
        raise PrepareError(f"no prepared set {name!r} (missing {path}); run `python -m heroportraits prepare` first")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PrepareError(f"{path} is not valid JSON ({e}); run `python -m heroportraits prepare` again") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("attributes"), dict):
        raise PrepareError(f"{path} names no attributes; run `python -m heroportraits prepare` again")
    return meta


# ---------------------------------------------------------------- defaults for the notebooks
def default_input(n: int = 7600, seed: int = 0, progress: bool = True) -> tuple[Path, dict]:
    """`train_images/` when it holds images, else n built-in procedural portraits drawn with `seed`.

    Returns (folder, source description). The portraits go to data/sources/procedural, the
    folder `make demo` fills, and are reused when its source.json records the same n and seed
    and every image is there. A folder holding anything else is never touched: the portraits
    then go to data/sources/procedural_n<N>_seed<S> (reused the same way).
    """
    own = project_root() / "train_images"
    if own.is_dir() and list_images(own):
        return own, {"kind": "folder", "path": "train_images"}
    from heroportraits.data import procedural  # lazily: the drawing code is only needed without train_images/

    wanted = {"kind": "procedural", "n": n, "seed": seed}
    sources = data_dir() / "sources"
    candidates = [sources / "procedural", sources / f"procedural_n{n}_seed{seed}"]
    for out in candidates:
        if _holds_procedural(out, wanted):
            return out, wanted
        if not out.exists():
            procedural.write_procedural_folder(out, n, seed, progress=progress)
            return out, wanted
    raise PrepareError(
        f"{' and '.join(str(c) for c in candidates)} hold other files (not {n} procedural portraits of seed {seed}); "
        f"move them away, or prepare them with `python -m heroportraits prepare --input FOLDER`"
    )


def _holds_procedural(folder: Path, wanted: dict) -> bool:
    """True if `folder` is a complete procedural folder made with exactly these settings."""
    meta, labels = folder / "source.json", folder / "labels.csv"
    if not (meta.is_file() and labels.is_file()):
        return False
    try:
        recorded = json.loads(meta.read_text())
        same = isinstance(recorded, dict) and {k: recorded.get(k) for k in wanted} == wanted  # + e.g. face_box
        same = same and not recorded.get("alpha")  # portraits with alpha would give a dataset with a mask
    except json.JSONDecodeError:
        return False
    n = wanted["n"]
    return same and len(read_labels_csv(labels)) == n and len(list_images(folder / "images")) == n
