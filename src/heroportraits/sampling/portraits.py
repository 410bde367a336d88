"""What the `sample` verb writes: a folder of numbered PNGs with labels.csv, or one grid image.

The folder must be empty (or new) unless the caller overwrites it, so stale PNGs are never scored
with new ones; a manifest in the folder lists what `sample` wrote, which is all `--overwrite` may replace,
and a dataset's or a run's folder is never written into. `save_portraits` is also how the widget saves the
portraits it shows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from heroportraits.data.dataset import write_labels_csv
from heroportraits.data.images import make_grid, save_png
from heroportraits.paths import output_file, output_folder, write_json, writing
from heroportraits.progress import progress_bar
from heroportraits.sampling.sampler import SampleError, Sampler, most_common_labels
from heroportraits.sampling.sheets import layout_sheet, write_sheet
from heroportraits.sampling.transparency import cut_backgrounds, with_cut_labels
from heroportraits.training.checkpoint import RUN_CHECKPOINTS
from heroportraits.training.figures import grid_layout, save_grid_figure

MANIFEST = ".heroportraits-sample.json"  # the files `sample` wrote into a folder: all that --overwrite may replace
# Files that make a folder a dataset's or a run's: `sample` never writes into one (its labels.csv is not ours).
PIPELINE_FILES = ("dataset.json", "prepare.json", "images.npy", *RUN_CHECKPOINTS, "metrics.csv")


def portrait_names(n: int) -> list[str]:
    """The files a set of n portraits is written as: 00000.png, 00001.png, ... and labels.csv."""
    digits = max(5, len(str(n - 1)))
    return [f"{i:0{digits}d}.png" for i in range(n)] + ["labels.csv"]


def written_before(out_dir: Path) -> list[str]:
    """The files an earlier `sample` wrote into `out_dir`, as its manifest lists them ([] without one)."""
    try:
        files = json.loads((out_dir / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [f for f in files if isinstance(f, str) and Path(f).name == f]


def check_sample_folder(out_dir: Path, n: int, overwrite: bool) -> list[str]:
    """Refuse a folder `sample` must not write n portraits into, before any work: a dataset's or a run's folder;
    a folder holding anything, unless `overwrite`; with `overwrite`, files of the new set's names that no earlier
    `sample` wrote (its manifest says which it did). Returns the earlier sample's files to replace."""
    pipeline = [name for name in PIPELINE_FILES if (out_dir / name).exists()]
    if pipeline:
        raise SampleError(
            f"{out_dir} is a dataset's or a run's folder (it holds {pipeline[0]}): `sample` never writes there; "
            "choose a folder of its own for --out"
        )
    present = sorted(p.name for p in out_dir.iterdir()) if out_dir.is_dir() else []
    if not present:
        return []
    ours = written_before(out_dir)
    if not overwrite:
        shown = ", ".join(present[:3]) + (" ..." if len(present) > 3 else "")
        raise SampleError(
            f"{out_dir} already holds {len(present)} file(s) ({shown}); choose an empty --out, or pass "
            f"--overwrite to replace the portraits an earlier `sample` wrote there (nothing else is removed)"
        )
    clash = sorted(set(portrait_names(n)) & set(present) - set(ours))
    if clash:
        raise SampleError(
            f"{out_dir} holds {', '.join(clash[:3])}{' ...' if len(clash) > 3 else ''}, which `sample` did not write "
            f"there (its {MANIFEST} does not list them): --overwrite replaces only its own files; choose another --out"
        )
    return ours


def write_samples(
    sampler: Sampler,
    out_dir: str | Path,
    n: int,
    conditions=None,
    seed: int = 0,
    progress=True,
    open_attributes: str | None = None,
    overwrite: bool = False,
    transparent: bool = False,
) -> Path:
    """n PNGs + labels.csv (file + the attribute values each image was conditioned on; `any` = unspecified).
    With `transparent`, RGBA PNGs with each portrait's background cut (sampling/transparency.py) and a
    `background_cut` column (clean / rough). A model that draws alpha (model.alpha) writes RGBA PNGs always, its
    own mask as their alpha.

    The folder must be empty (or new) unless `overwrite`, which replaces only what an earlier `sample` wrote
    there: stale PNGs that labels.csv does not list would otherwise be scored with the new ones. Everything is
    checked, and every portrait drawn, before the first file is removed.
    """
    out_dir = output_folder(out_dir, "sample folder")
    if n < 1:
        raise SampleError(f"n={n}: the number of portraits must be >= 1")
    earlier = check_sample_folder(out_dir, n, overwrite)
    images, rows = sampler.generate(n, conditions, seed, open_attributes=open_attributes)
    names = sampler.vocab.names
    if transparent and not sampler.draws_alpha:  # a model that draws alpha has cut nothing: its mask is its own
        images, clean = cut_backgrounds(images, sampler.native_scale)
        rows, names = with_cut_labels(rows, clean), [*names, "background_cut"]
    for name in [*earlier, MANIFEST]:
        (out_dir / name).unlink(missing_ok=True)
    return save_portraits(images, rows, out_dir, names, progress)


def save_portraits(images: np.ndarray, rows: list[dict], out_dir: str | Path, names: list[str], progress=False) -> Path:
    """images (N, H, W, 3 or 4) uint8 -> out_dir/00000.png ... and labels.csv (file + each row's attribute `names`), and
    the manifest that lists them. A write that fails (a full disk) removes what this call wrote and says so."""
    out_dir = Path(out_dir)
    files = portrait_names(len(images))
    written: list[Path] = []
    try:
        with writing(out_dir, "portraits into", SampleError):
            out_dir.mkdir(parents=True, exist_ok=True)
            for img, name in zip(progress_bar(images, disable=not progress, desc="writing PNGs"), files):
                written.append(out_dir / name)
                save_png(img, out_dir / name)
            written.append(out_dir / "labels.csv")
            records = [{"file": name, **row} for name, row in zip(files, rows)]
            write_labels_csv(out_dir / "labels.csv", records, ["file", *names])
            written.append(out_dir / MANIFEST)
            write_json(out_dir / MANIFEST, {"files": files})
    except SampleError:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return out_dir


def write_grid(
    sampler: Sampler,
    out_path: str | Path,
    conditions=None,
    n: int = 64,
    seed: int = 0,
    open_attributes: str | None = None,
) -> Path:
    """With no conditions: the attribute layout grid (rows = class, cols = palette, blocks = gender).
    With conditions: n portraits under them, tiled. A path that cannot be written is one line, checked first."""
    out_path = output_file(out_path, "grid")
    if not conditions:
        layout, full = attribute_grid(sampler)
        images = sampler.generate_from_labels(full, seed)
        with writing(out_path, "grid", SampleError):
            return save_grid_figure(images, layout, out_path, title=f"step {sampler.step}")
    images, _ = sampler.generate(n, conditions, seed, open_attributes=open_attributes)
    with writing(out_path, "grid", SampleError):
        return save_png(make_grid(images, nrow=int(np.ceil(np.sqrt(n)))), out_path)


def attribute_grid(sampler: Sampler):
    """The attribute layout grid (rows = class, cols = palette, blocks = gender; other attributes at their most
    common value): its layout and the (cells, A) full-vocabulary label rows of its cells."""
    common = most_common_labels(sampler._mix_rows, sampler._mix_p)
    cols = sampler.cond_cols
    layout = grid_layout(sampler.cvocab, default_labels=common[cols].tolist())
    full = common.repeat(len(layout.labels), 1)
    full[:, cols] = layout.labels
    return layout, full


def write_sheet_of(
    sampler: Sampler,
    out_path: str | Path,
    conditions=None,
    n: int = 64,
    seed: int = 0,
    open_attributes: str | None = None,
    scale: int = 1,
    border: int = 0,
    grid: bool = False,
    transparent: bool = False,
) -> tuple[Path, Path]:
    """A sprite sheet (atlas PNG + atlas JSON, sampling/sheets.py) of the portraits `sample` would write for these
    arguments (n under `conditions`), or with `grid` of the attribute grid (one row per layout row); with
    `transparent`, their backgrounds cut (each frame's labels say whether cleanly)."""
    columns = None
    if grid:
        layout, full = attribute_grid(sampler)
        images = sampler.generate_from_labels(full, seed)
        rows, columns = [sampler.vocab.decode(r) for r in full.tolist()], layout.n_cols
    else:
        images, rows = sampler.generate(n, conditions, seed, open_attributes=open_attributes)
    if transparent and not sampler.draws_alpha:
        images, clean = cut_backgrounds(images, sampler.native_scale)
        rows = with_cut_labels(rows, clean)
    return write_sheet(layout_sheet(images, rows, seed, scale, border, columns=columns), out_path, scale)
