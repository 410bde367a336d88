"""Where datasets and artifacts live, found the same way from the CLI and from notebooks.

The project root is the nearest folder above the working directory that holds both
`data/` and `artifacts_gan/` (so notebooks running in `notebooks/` find it), unless
HEROPORTRAITS_ROOT says otherwise. Outside a checkout, the working directory is used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from heroportraits.errors import HeroError

PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # dataset and run names: one folder, never a path


class PathError(HeroError):
    """A name that is not a plain name, or an output path already taken by a file."""


def project_root() -> Path:
    env = os.environ.get("HEROPORTRAITS_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "data").is_dir() and (folder / "artifacts_gan").is_dir():
            return folder
    return here


def data_dir() -> Path:
    return project_root() / "data"


def samples_dir() -> Path:
    return project_root() / "artifacts_gan" / "samples"


def checkpoints_dir() -> Path:
    return project_root() / "artifacts_gan" / "checkpoints"


def studies_dir() -> Path:
    """Where `python -m heroportraits study` writes each study's runs, tables and plots."""
    return project_root() / "artifacts_gan" / "studies"


def dataset_dir(name_or_path: str | Path) -> Path:
    """A dataset given by name (`data/<name>`) or by an explicit path."""
    p = Path(name_or_path)
    if p.is_absolute() or p.exists() or len(p.parts) > 1:
        return p
    return data_dir() / str(name_or_path)


def preview_path(source_dir: str | Path) -> Path:
    """Where a generated source folder's preview grid goes: beside the folder, not inside it,
    so that `prepare` (which reads every image in the folder) never sees it."""
    source_dir = Path(source_dir)
    return source_dir.parent / f"{source_dir.name}_preview.png"


def plain_name(name: str, what: str) -> str:
    """`name` if it is a plain folder name (letters, digits, - _ .; not `.` or `..`), else a PathError.

    Dataset and run names become folders under data/ and artifacts_gan/: a name such as
    `../../x` would write outside them. Options that take a path say so in their help.
    """
    if not PLAIN_NAME.fullmatch(str(name)) or set(str(name)) == {"."}:
        raise PathError(
            f"{what} {name!r} is not a plain name: use letters, digits, '-', '_' and '.' only "
            f"(it names a folder under the project; it cannot be a path)"
        )
    return str(name)


def output_folder(path: str | Path, what: str) -> Path:
    """`path` as a folder to write into: refused with a clear line when a file already has that name."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PathError(f"{what} {path} is a file, not a folder; give a folder path (or move the file)")
    return path


def output_file(path: str | Path, what: str) -> Path:
    """`path` as a file to write: refused with one clear line when it is a folder, or when a file stands where one
    of the folders above it should be."""
    path = Path(path)
    if path.is_dir():
        raise PathError(f"{what} {path} is a folder, not a file; give a file path, e.g. {path / ('out' + path.suffix)}")
    blocking = next((p for p in path.parents if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise PathError(f"{what} {path}: {blocking} is a file, not a folder; give a path in a folder")
    return path


def free_space(path: str | Path) -> str:
    """'N MB free on FOLDER' for the nearest existing folder at or above `path`."""
    path = Path(path)
    folder = next((p for p in (path, *path.parents) if p.is_dir()), Path("/"))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return f"free space on {folder} unknown"
    return f"{free / 2**20:,.0f} MB free on {folder}"


@contextlib.contextmanager
def writing(path: str | Path, what: str, error: type[HeroError] = PathError) -> Iterator[None]:
    """Inside: an OSError while writing `path` (a read-only folder, a full disk, a file too large) becomes one line
    naming it, the reason and the free space, as `error`."""
    try:
        yield
    except OSError as e:
        raise error(
            f"cannot write {what} {path}: {e.strerror or e} ({free_space(path)}); make room or pick a writable place"
        ) from None


def required_file(path: str | Path, error: type[HeroError], how: str) -> Path:
    """`path` when it is a file; else `error`: '<folder> has no <name>; <how to make it>'."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path.parent} has no {path.name}; {how}")
    return path


def write_json(path: str | Path, data, indent: int = 2) -> None:
    """Atomically (temp file + rename): a killed process never leaves half a record, and a record the
    user already had (a dataset.json that gets a palette) is whole before and after."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent))
    os.replace(tmp, path)
