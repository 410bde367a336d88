"""Where datasets and artifacts live, found the same way from the CLI and from notebooks.

The project root is the nearest folder above the working directory that holds both
`data/` and `artifacts_gan/` (so notebooks running in `notebooks/` find it), unless
HEROPORTRAITS_ROOT says otherwise. Outside a checkout, the working directory is used.
"""

from __future__ import annotations

import os
from pathlib import Path


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
