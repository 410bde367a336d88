"""Manual curation: review grids to look at, and an overrides file to act on what you saw.

The loop: `prepare` a folder, open the review grids (one per attribute value, every
tile captioned with its file), write the fixes into an overrides CSV, and `prepare`
again with `--overrides`. Fixes live in a file, not in edited images or hand-made
label changes, so the cleaned dataset can be rebuilt from the raw folder at any time.

Overrides CSV (one fix per row; `note` is optional and copied into the report):
    file,action,attribute,value,note
    images/00017.png,exclude,,,watermark
    images/00042.png,relabel,hero_class,mage,staff not sword
`file` is relative to the input folder, as in labels.csv. `exclude` drops the image
(the report says excluded_by_override); `relabel` sets one attribute's value.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from heroportraits.data.dataset import read_images, read_labels_csv
from heroportraits.data.figures import captioned_grid
from heroportraits.errors import HeroError
from heroportraits.paths import data_dir

OVERRIDE_COLUMNS = ["file", "action", "attribute", "value", "note"]
ACTIONS = ("exclude", "relabel")


class OverrideError(HeroError):
    """An overrides file that cannot be applied; the message names the row and the fix."""


@dataclass
class Override:
    file: str  # path relative to the input folder (posix slashes)
    action: str  # "exclude" or "relabel"
    attribute: str  # relabel: which attribute; exclude: ignored
    value: str  # relabel: the new value
    note: str  # free text, copied into the report
    line: int  # line number in the CSV, for error messages


def normalise_relpath(path: str) -> str:
    """'.\\a\\b.png', './a/b.png', 'a//b.png' -> 'a/b.png': one spelling per file."""
    return PurePosixPath(path.strip().replace("\\", "/")).as_posix().removeprefix("./")


def read_csv_rows(path: str | Path, what: str, error: type[HeroError]) -> tuple[list[str], list[tuple[int, dict]]]:
    """(header, [(line, row)]) of a UTF-8 CSV (a byte-order mark is fine; blank lines are skipped). A folder, a
    missing file, another encoding, binary data, a repeated column name or a named-less column holding values is
    one `error` naming the file (never a silent last-column-wins); the empty column a trailing comma makes is
    dropped."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{what} {path} is a folder; give the CSV file (e.g. {path / 'labels.csv'})")
    if not path.is_file():
        raise error(f"{what} {path} does not exist")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read()
        if "\0" in text:
            raise UnicodeError("it holds NUL bytes")
        table = list(csv.reader(io.StringIO(text)))
    except (UnicodeError, csv.Error) as e:
        utf16 = path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
        hint = "it is UTF-16" if utf16 else str(e)
        raise error(f"{what} {path} is not a UTF-8 text CSV ({hint}); save it as 'CSV UTF-8' and try again") from None
    header = [h.strip() for h in (table[0] if table else [])]
    unnamed = [i for i, h in enumerate(header) if not h]
    if any(i < len(r) and r[i].strip() for r in table[1:] for i in unnamed):
        raise error(f"{what} {path}: column {unnamed[0] + 1} has values but no name; name it in the header row")
    named = [i for i, h in enumerate(header) if h]  # a trailing comma's empty column is dropped
    header = [header[i] for i in named]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise error(f"{what} {path} names column(s) {repeated} more than once; keep one of each")
    rows = [
        (line, {h: (r[i] if i < len(r) else "") for h, i in zip(header, named)})
        for line, r in enumerate(table[1:], start=2)
        if any(c.strip() for c in r)
    ]
    return header, rows


def read_overrides(path: str | Path) -> list[Override]:
    """Parse an overrides CSV; syntax errors name the line."""
    path = Path(path)
    header, rows = read_csv_rows(path, "overrides file", OverrideError)
    missing = {"file", "action"} - set(header)
    if missing:
        raise OverrideError(
            f"{path}: missing column(s) {sorted(missing)}; expected header {','.join(OVERRIDE_COLUMNS)}"
        )
    out = []
    for line, row in rows:
        get = lambda k, row=row: (row.get(k) or "").strip()  # noqa: E731
        action = get("action").lower()
        if not get("file") and not action:
            continue  # blank line
        if action not in ACTIONS:
            raise OverrideError(f"{path}:{line}: action {get('action')!r} is not one of {list(ACTIONS)}")
        if action == "relabel" and not (get("attribute") and get("value")):
            raise OverrideError(f"{path}:{line}: relabel needs an attribute and a value")
        out.append(Override(normalise_relpath(get("file")), action, get("attribute"), get("value"), get("note"), line))
    return out


def check_overrides(overrides: list[Override], files: set[str], attributes: list[str], path: str | Path) -> None:
    """Every override must name an image of the input folder and a known attribute."""
    for o in overrides:
        if o.file not in files:
            raise OverrideError(
                f"{path}:{o.line}: override names {o.file!r}, which is not an image in the input folder "
                f"(paths are relative to the input folder, as in labels.csv)"
            )
        if o.action == "relabel" and o.attribute not in attributes:
            raise OverrideError(f"{path}:{o.line}: unknown attribute {o.attribute!r}; attributes are {attributes}")


def split_overrides(overrides: list[Override]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """-> (excluded file -> note, file -> {attribute: new value}); later rows win."""
    excluded: dict[str, str] = {}
    relabels: dict[str, dict[str, str]] = {}
    for o in overrides:
        if o.action == "exclude":
            excluded[o.file] = o.note
        else:
            relabels.setdefault(o.file, {})[o.attribute] = o.value
    return excluded, relabels


# ---------------------------------------------------------------- review grids
def review_dir(name: str) -> Path:
    return data_dir() / name / "prepared" / "review"


def review_grids(name: str, attribute: str, per_value: int = 48, columns: int = 8, seed: int = 0) -> list[Path]:
    """One PNG per value of `attribute` in the prepared set `name`, tiles captioned by file.

    Shows up to `per_value` images per value (a seeded random sample, so every part of
    a large class can turn up); saved as data/<name>/prepared/review/<attribute>=<value>.png.
    """
    prepared = data_dir() / name / "prepared"
    if not (prepared / "labels.csv").exists():
        raise OverrideError(f"no prepared set at {prepared}; run `python -m heroportraits prepare` first")
    rows = read_labels_csv(prepared / "labels.csv")
    if rows and attribute not in rows[0]:
        raise OverrideError(f"attribute {attribute!r} not in {prepared / 'labels.csv'}; columns: {list(rows[0])}")
    images = read_images(prepared / "images.npy", "prepare it again")  # (N, H, W, 3): the colours
    values = _vocab_order(prepared, attribute, rows)
    out_dir = review_dir(name)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for value in values:
        idx = np.array([i for i, r in enumerate(rows) if r[attribute] == value], np.int64)
        shown = np.sort(rng.choice(idx, size=min(per_value, len(idx)), replace=False)) if len(idx) else idx
        fig = captioned_grid(
            images[shown],
            [rows[i]["file"] for i in shown],
            columns,
            f"{attribute} = {value}  ({len(idx)} images, {len(shown)} shown)",
        )
        path = out_dir / f"{attribute}={_safe(value)}.png"
        fig.savefig(path, dpi=100)
        paths.append(path)
    return paths


def _vocab_order(prepared: Path, attribute: str, rows: list[dict]) -> list[str]:
    meta = prepared / "prepare.json"
    if meta.exists():
        vocab = json.loads(meta.read_text()).get("attributes", {})
        if attribute in vocab:
            return list(vocab[attribute])
    return sorted({r[attribute] for r in rows})


def _safe(value: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in value)
