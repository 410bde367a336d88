"""What the `sample` verb writes: a folder of numbered PNGs with labels.csv, or one grid image.

The folder must be empty (or new) unless the caller overwrites it, so stale PNGs are never scored
with new ones; `save_portraits` is also how the widget saves the portraits it shows.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from heroportraits.data.dataset import write_labels_csv
from heroportraits.data.images import make_grid, save_png
from heroportraits.paths import output_folder
from heroportraits.progress import progress_bar
from heroportraits.sampling.sampler import SampleError, Sampler, most_common_labels
from heroportraits.training.figures import grid_layout, save_grid_figure

SAMPLE_FILE = re.compile(r"\d+\.png")  # the portraits write_samples names: 00000.png, 00001.png, ...


def clear_sample_folder(out_dir: Path, overwrite: bool) -> None:
    """Make `out_dir` ready for a fresh set: refused when it holds anything unless `overwrite`,
    which removes only this verb's own files (numbered PNGs and labels.csv); others stay."""
    present = sorted(p.name for p in out_dir.iterdir()) if out_dir.is_dir() else []
    if not present:
        return
    if not overwrite:
        shown = ", ".join(present[:3]) + (" ..." if len(present) > 3 else "")
        raise SampleError(
            f"{out_dir} already holds {len(present)} file(s) ({shown}); choose an empty --out, or pass "
            f"--overwrite to replace its portraits (only numbered PNGs and labels.csv are removed)"
        )
    for name in present:
        if SAMPLE_FILE.fullmatch(name) or name == "labels.csv":
            (out_dir / name).unlink()


def write_samples(
    sampler: Sampler,
    out_dir: str | Path,
    n: int,
    conditions=None,
    seed: int = 0,
    progress=True,
    open_attributes: str | None = None,
    overwrite: bool = False,
) -> Path:
    """n PNGs + labels.csv (file + the attribute values each image was conditioned on; `any` = unspecified).

    The folder must be empty (or new) unless `overwrite`: stale PNGs that labels.csv does not
    list would otherwise be scored with the new ones.
    """
    out_dir = output_folder(out_dir, "sample folder")
    if n < 1:
        raise SampleError(f"n={n}: the number of portraits must be >= 1")
    clear_sample_folder(out_dir, overwrite)
    images, rows = sampler.generate(n, conditions, seed, open_attributes=open_attributes)
    return save_portraits(images, rows, out_dir, sampler.vocab.names, progress)


def save_portraits(images: np.ndarray, rows: list[dict], out_dir: str | Path, names: list[str], progress=False) -> Path:
    """images (N, H, W, 3) uint8 -> out_dir/00000.png ... and labels.csv (file + each row's attribute `names`)."""
    out_dir = Path(out_dir)
    digits = max(5, len(str(len(images) - 1)))
    records = []
    for i, img in enumerate(progress_bar(images, disable=not progress, desc="writing PNGs")):
        name = f"{i:0{digits}d}.png"
        save_png(img, out_dir / name)
        records.append({"file": name, **rows[i]})
    write_labels_csv(out_dir / "labels.csv", records, ["file", *names])
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
    With conditions: n portraits under them, tiled."""
    if not conditions:
        common = most_common_labels(sampler._mix_rows, sampler._mix_p)
        cols = sampler.cond_cols
        layout = grid_layout(sampler.cvocab, default_labels=common[cols].tolist())
        full = common.repeat(len(layout.labels), 1)
        full[:, cols] = layout.labels
        images = sampler.generate_from_labels(full, seed)
        return save_grid_figure(images, layout, out_path, title=f"step {sampler.step}")
    images, _ = sampler.generate(n, conditions, seed, open_attributes=open_attributes)
    return save_png(make_grid(images, nrow=int(np.ceil(np.sqrt(n)))), out_path)
