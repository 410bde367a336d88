"""The final dataset format, and loading it into memory for training.

A final dataset is a folder `data/<name>/` with
    images.npy     uint8 array (N, H, W, 3), or (N, H, W, 4) for a dataset with alpha: every
                   image, in one compact file. With alpha the RGB channels are still the portrait
                   over its background (what an RGB dataset holds) and channel 4 is the figure's
                   mask, 0 (background) or 255 (figure), so every RGB reader works unchanged
    labels.csv     index, file, <one column per attribute>, split   (one row per image)
    dataset.json   attributes (ordered vocabularies), counts, splits, resolution,
                   native pixel scale, source, `alpha` (true when images.npy has the mask)
                   and the parameters that made it
`build.py` writes it; everything downstream reads vocabularies and the pixel scale
from `dataset.json` rather than from code. Training holds the whole split in memory
as one uint8 tensor and draws random batches from it: no per-image file reads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from heroportraits.data.attributes import Vocabulary
from heroportraits.data.colour_stats import colour_statistics
from heroportraits.errors import HeroError
from heroportraits.paths import dataset_dir, required_file, write_json

FORMAT_VERSION = 1
# labels.csv columns that are no attribute: `build` writes them itself, so labels may not use their names
RESERVED_COLUMNS = {"index": "row number", "split": "train/val split"}


class DatasetError(HeroError):
    """A dataset folder that is missing, incomplete or inconsistent."""


@dataclass
class PortraitData:
    """One split of a dataset, in memory. images: (N, 3, H, W) uint8 (or (N, 4, H, W) from
    `with_alpha_channel`); labels: (N, A) int64; alpha: the figure's mask (N, 1, H, W) uint8, 0 or 255,
    when the dataset has one, else None."""

    images: torch.Tensor
    labels: torch.Tensor
    vocab: Vocabulary
    meta: dict = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    alpha: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def native_scale(self) -> int:
        return int(self.meta.get("native_scale", 1))

    def colours(self) -> dict:
        """How the dataset's portraits use colour (data/colour_stats.py): measured at build, or now for a dataset
        built before (from these images)."""
        if "colours" not in self.meta:
            rgb = self.images[:, :3].permute(0, 2, 3, 1).cpu().numpy()
            self.meta["colours"] = colour_statistics(rgb, self.native_scale)
        return self.meta["colours"]

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    def to(self, device) -> PortraitData:
        alpha = self.alpha.to(device) if self.alpha is not None else None
        return PortraitData(self.images.to(device), self.labels.to(device), self.vocab, self.meta, self.files, alpha)

    def with_alpha_channel(self) -> PortraitData:
        """A copy whose images are RGBA, (N, 4, H, W) uint8 with the mask as channel 4, for a model that
        draws RGBA (model.alpha); refused in one line when the dataset has no alpha."""
        if self.alpha is None:
            raise DatasetError(
                f"{self.meta.get('name', 'the dataset')} has no alpha: model.alpha needs portraits with "
                "transparency (`procedural --alpha`, `lpc --alpha`, or PNGs with alpha through `prepare`)"
            )
        images = torch.cat([self.images[:, :3], self.alpha.to(self.images.device)], dim=1)
        return PortraitData(images, self.labels, self.vocab, self.meta, self.files, None)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images as float in [-1, 1] and their labels, for the given indices."""
        x = self.images[idx].float().div_(127.5).sub_(1.0)
        return x, self.labels[idx]


def stratified_subset(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of n rows that keep every joint label's share, for training on less data.

    Nested: the subset of 1,000 lies inside the subset of 2,000. Rows are shuffled once (by
    `seed`, not the run's seed, so every run of a data-size study sees the same images); the
    r-th row of a label with g rows gets the key (r + 0.5) / g, and the n smallest keys win,
    so each label contributes in proportion to its size at every n. labels: (N, A).
    """
    total = len(labels)
    if n >= total:
        return torch.arange(total)
    order = np.random.default_rng(seed).permutation(total)
    _, group = np.unique(labels.cpu().numpy()[order], axis=0, return_inverse=True)
    group = group.reshape(-1)
    rank, sizes = np.zeros(total), np.bincount(group)
    seen = np.zeros(len(sizes), np.int64)
    for i, g in enumerate(group):  # rank of each shuffled row within its label
        rank[i], seen[g] = seen[g], seen[g] + 1
    keys = (rank + 0.5) / sizes[group]
    pick = order[np.argsort(keys, kind="stable")[:n]]
    return torch.from_numpy(np.sort(pick))


def limit_images(data: PortraitData, max_images: int) -> PortraitData:
    """The split cut to `stratified_subset(max_images)` (all of it when max_images is 0 or >= its size)."""
    if max_images <= 0 or max_images >= len(data):
        return data
    idx = stratified_subset(data.labels, max_images)
    files = [data.files[i] for i in idx.tolist()] if data.files else []
    alpha = data.alpha[idx] if data.alpha is not None else None
    return PortraitData(data.images[idx], data.labels[idx], data.vocab, data.meta, files, alpha)


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV the package wrote (labels.csv, reports) as a DataFrame of text: every value stays as
    written ("NA", "None" and "" are labels or empty cells, not missing numbers)."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError:  # a zero-byte file: no columns, no rows
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read {path} as a UTF-8 CSV ({e}); fix the file or write it again") from e


def read_labels_csv(path: str | Path) -> list[dict[str, str]]:
    return read_table(path).to_dict("records")


def write_labels_csv(path: str | Path, rows: list[dict], columns: list[str]) -> None:
    """`columns` of each row (others ignored, missing ones empty); object dtype keeps 64 as "64", not "64.0"."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=columns, dtype=object).to_csv(path, index=False)


def read_meta(name_or_path: str | Path) -> dict:
    """A final dataset's dataset.json, checked for what every reader needs (its attributes)."""
    how = "it is not a dataset. Build one first: `python -m heroportraits build NAME` (notebook 02), or check the name"
    path = required_file(dataset_dir(name_or_path) / "dataset.json", DatasetError, how)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(
            f"{path} is not valid JSON ({e}); rebuild the dataset (`python -m heroportraits build`)"
        ) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("attributes"), dict):
        raise DatasetError(f"{path} names no attributes; rebuild the dataset (`python -m heroportraits build`)")
    return meta


def write_dataset(folder: str | Path, images: np.ndarray, rows: list[dict], vocab: Vocabulary, meta: dict) -> Path:
    """Write images.npy + labels.csv + dataset.json. `rows` need 'file', 'split' and every attribute.

    images: (N, H, W, 3), or (N, H, W, 4) with the mask; dataset.json's `alpha` says which, from the array itself.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if len(rows) != len(images):
        raise DatasetError(f"{len(rows)} label rows for {len(images)} images")
    np.save(folder / "images.npy", np.ascontiguousarray(images, dtype=np.uint8))
    rows = [{"index": i, **r} for i, r in enumerate(rows)]
    write_labels_csv(folder / "labels.csv", rows, ["index", "file", *vocab.names, "split"])
    meta = {
        "format_version": FORMAT_VERSION,
        "resolution": int(images.shape[1]),
        "attributes": vocab.to_json(),
        **meta,
        "alpha": bool(images.shape[-1] == 4),
    }
    write_json(folder / "dataset.json", meta)
    return folder


def split_size(name_or_path: str | Path, split: str = "train") -> int:
    """Images in one split, from labels.csv alone (no image is loaded)."""
    read_meta(name_or_path)  # a clear error when it is not a dataset
    rows = read_labels_csv(dataset_dir(name_or_path) / "labels.csv")
    return sum(r.get("split") == split for r in rows)


def batch_warning(batch_size: int, name_or_path: str | Path) -> str | None:
    """A warning line when a batch is larger than the training split (every batch repeats images)."""
    n = split_size(name_or_path, "train")
    if batch_size <= n:
        return None
    return (
        f"warning: train.batch_size={batch_size} is larger than the {n} training images of {name_or_path}: "
        f"every batch repeats images (lower it with --set train.batch_size=N)"
    )


def read_images(
    path: Path, fix: str = "rebuild the dataset (`python -m heroportraits build`)", alpha: bool = False
) -> np.ndarray:
    """images.npy as a memory map, or one line saying it is damaged and how to `fix` it.

    (N, H, W, 3) uint8: the RGB of an RGB or RGBA file, so readers of colours need not know of alpha;
    alpha=True: the whole array, (N, H, W, 3 or 4).
    """
    try:
        images = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as e:  # missing, truncated, not an .npy, a pickle
        raise DatasetError(f"cannot read {path} ({e}); {fix}") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (3, 4):
        raise DatasetError(f"{path} holds {images.dtype} {images.shape}, not images (N, H, W, 3 or 4) uint8; {fix}")
    return images if alpha else images[..., :3]


def has_alpha(images: np.ndarray) -> bool:
    """True for (N, H, W, 4) images: RGB and the figure's mask (read_images(..., alpha=True))."""
    return images.shape[-1] == 4


def load_dataset(name_or_path: str | Path, split: str | None = "train", device="cpu") -> PortraitData:
    """Load one split ('train', 'val', or None for all) of a final dataset into memory."""
    folder = dataset_dir(name_or_path)
    meta = read_meta(folder)
    if meta.get("format_version") != FORMAT_VERSION:
        raise DatasetError(f"{folder}: format_version {meta.get('format_version')} != {FORMAT_VERSION}; rebuild it")
    for needed in ("images.npy", "labels.csv"):
        if not (folder / needed).exists():
            raise DatasetError(f"{folder} has no {needed}; rebuild it with `python -m heroportraits build`")
    vocab = Vocabulary.from_json(meta["attributes"])
    rows = read_labels_csv(folder / "labels.csv")
    images = read_images(folder / "images.npy", alpha=True)
    if len(rows) != len(images):
        raise DatasetError(f"{folder}: labels.csv has {len(rows)} rows but images.npy {len(images)} images")
    keep = [i for i, r in enumerate(rows) if split is None or r["split"] == split]
    if not keep:
        raise DatasetError(f"{folder}: split {split!r} is empty")
    labels = torch.tensor([vocab.encode({n: rows[i][n] for n in vocab.names}) for i in keep], dtype=torch.long)
    picked = torch.from_numpy(np.ascontiguousarray(images[keep])).permute(0, 3, 1, 2)
    x = picked[:, :3].contiguous()
    alpha = picked[:, 3:].contiguous() if has_alpha(images) else None
    return PortraitData(x, labels, vocab, meta, [rows[i]["file"] for i in keep], alpha).to(device)


_FINGERPRINTS: dict[tuple, str] = {}


def dataset_fingerprint(name_or_path: str | Path) -> str:
    """Hash of images.npy + labels.csv: changes whenever the dataset is rebuilt differently.

    Memoised per process on (path, size, mtime) so repeated calls cost a stat().
    """
    folder = dataset_dir(name_or_path)
    files = [folder / "images.npy", folder / "labels.csv"]
    for f in files:
        if not f.exists():
            raise DatasetError(f"{folder} has no {f.name}; build the dataset first (`python -m heroportraits build`)")
    key = tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if key not in _FINGERPRINTS:
        h = hashlib.blake2b(digest_size=16)
        for f in files:
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    h.update(chunk)
        _FINGERPRINTS[key] = h.hexdigest()
    return _FINGERPRINTS[key]
