"""Staging set -> final dataset: remove duplicates, count, split, write dataset.json.

`build_dataset(name)` reads data/<name>/prepared/ (written by prepare.py) and writes
the final dataset data/<name>/ in the format of dataset.py, plus
    build_report.csv   every prepared image: kept (with its split) or removed as a
                       duplicate of another file (named), so nothing vanishes unseen
    counts.png         images per attribute value and per joint label
Duplicates would leak between train and val and overweight some portraits:
  * exact: identical 64x64 bytes (hash);
  * near: RMS difference of 16x16 box-downsampled colours below a threshold (0-255
    scale), found with one batched matrix product per chunk, not a Python double loop.
  Both compare the colours (RGB); a prepared set with alpha keeps its mask as channel 4
  of the dataset's images.npy (dataset.json `alpha`).
The split is stratified on the joint label (every attribute together), so rare
combinations land in both splits and val measures all of them.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from heroportraits.data.attributes import Vocabulary
from heroportraits.data.colour_stats import colour_statistics
from heroportraits.data.dataset import (
    read_images,
    read_labels_csv,
    read_meta,
    read_table,
    write_dataset,
    write_labels_csv,
)
from heroportraits.data.figures import plot_counts
from heroportraits.data.prepare import read_prepare_meta
from heroportraits.errors import HeroError
from heroportraits.paths import data_dir, plain_name, required_file
from heroportraits.progress import progress_bar

NEAR_GRID = 16  # side of the downsampled image that near-duplicates are compared on
NEAR_THRESHOLD = 4.0  # RMS colour difference (0-255) on that grid below which two images are one


class BuildError(HeroError):
    """A staging set that cannot be built into a dataset; the message says what to do."""


@dataclass
class BuildResult:
    name: str
    folder: Path  # data/<name>
    n_prepared: int  # images in the staging set
    n_kept: int
    n_exact_duplicates: int
    n_near_duplicates: int
    splits: dict[str, int]  # {"train": n, "val": n}
    counts: dict  # as in dataset.json
    seconds: float
    paths: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [
            f"built {self.name!r}: {self.n_prepared} prepared -> {self.n_kept} kept "
            f"({self.n_exact_duplicates} exact, {self.n_near_duplicates} near duplicates removed) "
            f"in {self.seconds:.1f} s",
            "  splits: " + ", ".join(f"{k} {v}" for k, v in self.splits.items()),
        ]
        for attr, counts in self.counts["per_attribute"].items():
            lines.append(f"  {attr}: " + ", ".join(f"{v} {n}" for v, n in counts.items()))
        lines.append(
            f"  joint labels: {len(self.counts['joint'])} combinations, "
            f"smallest {min(c['count'] for c in self.counts['joint'])} images"
        )
        return "\n".join(lines)


# ---------------------------------------------------------------- duplicates
def exact_duplicates(images: np.ndarray) -> np.ndarray:
    """(N,) int: index of the first identical image, or -1 for a first occurrence."""
    first: dict[bytes, int] = {}
    out = np.full(len(images), -1, np.int64)
    for i, img in enumerate(images):
        h = hashlib.blake2b(np.ascontiguousarray(img).tobytes(), digest_size=16).digest()
        if h in first:
            out[i] = first[h]
        else:
            first[h] = i
    return out


def downsample(images: np.ndarray, grid: int = NEAR_GRID) -> np.ndarray:
    """(N, S, S, 3) uint8 -> (N, grid*grid*3) float32 box averages (S a multiple of grid)."""
    n, s = images.shape[:2]
    if s % grid:
        raise BuildError(f"image size {s} is not a multiple of the near-duplicate grid {grid}")
    k = s // grid
    x = images.reshape(n, grid, k, grid, k, 3).astype(np.float32).mean(axis=(2, 4))  # (N, g, g, 3)
    return x.reshape(n, -1)


def near_duplicates(
    images: np.ndarray,
    threshold: float = NEAR_THRESHOLD,
    grid: int = NEAR_GRID,
    candidates: np.ndarray | None = None,
    chunk: int = 1024,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy near-duplicate removal in file order.

    Returns (dup_of (N,) int, distance (N,) float): image i is removed as a duplicate of
    the closest earlier *kept* image j with RMS(downsample(i) - downsample(j)) < threshold
    (dup_of[i] = j), else dup_of[i] = -1. Only `candidates` (bool mask) take part if given.
    Distances come from |a|^2 + |b|^2 - 2ab in chunks (one matmul each); pairs near the
    threshold are re-measured exactly so float rounding cannot flip a decision.
    """
    n = len(images)
    dup_of = np.full(n, -1, np.int64)
    dist = np.full(n, np.nan)
    idx = np.arange(n) if candidates is None else np.flatnonzero(candidates)
    if len(idx) < 2 or threshold <= 0:
        return dup_of, dist
    feats = downsample(images[idx], grid)  # (M, D)
    d = feats.shape[1]
    x = torch.from_numpy(feats)
    sq = (x * x).sum(1)  # (M,)
    loose = (threshold + 1.0) ** 2 * d  # squared-sum bound with a safety margin
    pairs: dict[int, list[int]] = {}
    starts = range(0, len(idx), chunk)
    for s in progress_bar(starts, desc="near duplicates", disable=not progress or len(starts) < 2, unit="chunk"):
        rows = x[s : s + chunk]  # (C, D)
        d2 = sq[s : s + chunk, None] + sq[None, : s + chunk] - 2 * rows @ x[: s + chunk].T  # (C, s+C)
        r, c = torch.nonzero(d2 < loose, as_tuple=True)
        keep = c < r + s  # only earlier images
        for a, b in zip((r[keep] + s).tolist(), c[keep].tolist()):
            pairs.setdefault(a, []).append(b)
    for a in sorted(pairs):  # file order: earlier images decide first
        kept = [b for b in pairs[a] if dup_of[idx[b]] < 0]
        if not kept:
            continue
        rms = np.sqrt(((feats[kept].astype(np.float64) - feats[a]) ** 2).mean(1))  # exact, per pair
        j = int(rms.argmin())
        if rms[j] < threshold:
            dup_of[idx[a]], dist[idx[a]] = idx[kept[j]], float(rms[j])
    return dup_of, dist


# ---------------------------------------------------------------- split and counts
def stratified_split(keys: list[tuple], val_fraction: float, seed: int = 0) -> np.ndarray:
    """(N,) array of "train"/"val", stratified on `keys` (one hashable joint label per image).

    Per joint cell, val gets its share of round(val_fraction * N) by largest remainder,
    but never the cell's last image: a cell with >= 2 images keeps at least one in train.
    Deterministic for a seed (cells are visited in sorted order).
    """
    if not 0 <= val_fraction < 1:
        raise BuildError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    cells: dict[tuple, list[int]] = {}
    for i, k in enumerate(keys):
        cells.setdefault(k, []).append(i)
    order = sorted(cells)
    sizes = np.array([len(cells[k]) for k in order])
    quota = val_fraction * sizes
    cap = np.maximum(sizes - 1, 0)
    n_val = np.minimum(np.floor(quota).astype(int), cap)
    # Hand out what rounding left over to the largest remainders (random tie-break), within caps.
    left = int(round(val_fraction * len(keys))) - int(n_val.sum())
    tie = rng.random(len(order))
    for c in sorted(range(len(order)), key=lambda c: (-(quota[c] - np.floor(quota[c])), tie[c])):
        if left <= 0:
            break
        if n_val[c] < cap[c]:
            n_val[c] += 1
            left -= 1
    split = np.full(len(keys), "train", dtype=object)
    for c, k in enumerate(order):
        members = rng.permutation(cells[k])
        split[members[: n_val[c]]] = "val"
    return split


def count_labels(rows: list[dict], vocab: Vocabulary) -> dict:
    """Per-attribute counts (in vocabulary order) and joint counts (largest first)."""
    per = {a: {v: 0 for v in values} for a, values in vocab.attributes.items()}
    for r in rows:
        for a in vocab.names:
            per[a][r[a]] += 1
    joint = Counter(tuple(r[a] for a in vocab.names) for r in rows)
    return {
        "total": len(rows),
        "per_attribute": per,
        "joint": [
            {**dict(zip(vocab.names, k)), "count": n} for k, n in sorted(joint.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }


def _duplicate_report(rows: list[dict], exact: np.ndarray, near: np.ndarray, near_dist: np.ndarray, vocab) -> list:
    """One build_report.csv row per prepared image: kept, or removed naming the image it duplicates."""
    report = []
    for i, r in enumerate(rows):
        j = exact[i] if exact[i] >= 0 else near[i]
        entry = {"file": r["file"], "status": "kept" if j < 0 else "removed", "reason": "", "duplicate_of": ""}
        entry.update(distance="", split="", note="")
        if j >= 0:
            entry.update(
                reason="exact_duplicate" if exact[i] >= 0 else "near_duplicate",
                duplicate_of=rows[j]["file"],
                distance=0.0 if exact[i] >= 0 else round(float(near_dist[i]), 3),
            )
            differ = [a for a in vocab.names if r[a] != rows[j][a]]
            if differ:
                entry["note"] = "labels differ: " + ", ".join(f"{a} {r[a]} vs {rows[j][a]}" for a in differ)
        report.append(entry)
    return report


def _split(rows: list[dict], kept: np.ndarray, vocab, val_fraction: float, seed: int, report: list[dict]):
    """The kept rows with their split (also entered in `report`), their counts, and the split sizes."""
    kept_rows = [rows[i] for i in kept]
    split = stratified_split([tuple(r[a] for a in vocab.names) for r in kept_rows], val_fraction, seed)
    out_rows = [{"file": r["file"], **{a: r[a] for a in vocab.names}, "split": s} for r, s in zip(kept_rows, split)]
    for i, s in zip(kept, split):
        report[i]["split"] = s
    counts = count_labels(out_rows, vocab)
    counts["per_split"] = {
        s: count_labels([r for r in out_rows if r["split"] == s], vocab)["per_attribute"] for s in ("train", "val")
    }
    return out_rows, counts, {s: int((split == s).sum()) for s in ("train", "val")}


def _dataset_meta(name: str, prep: dict, counts: dict, splits: dict, exact, near, parameters: dict) -> dict:
    """dataset.json's own fields (write_dataset adds format, resolution and attributes)."""
    return {
        "name": name,
        "native_scale": int(prep.get("native_scale", 1)),
        "counts": counts,
        "splits": splits,
        "source": prep.get("source", {"kind": "folder", "input_dir": prep.get("input_dir")}),
        "prepared": {
            "label_source": prep.get("label_source"),
            "auto_attributes": prep.get("auto_attributes", []),
            "palette_agreement": prep.get("palette_agreement"),
            "counts": prep.get("counts"),
            "created_at": prep.get("created_at"),
        },
        "removed": {"exact_duplicates": int((exact >= 0).sum()), "near_duplicates": int((near >= 0).sum())},
        "parameters": parameters,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# ---------------------------------------------------------------- tables of a built dataset
def label_counts(name: str) -> pd.DataFrame:
    """Images per attribute value and split: index (attribute, value), columns train, val, total."""
    per_split = read_meta(name)["counts"]["per_split"]
    frame = pd.DataFrame(
        {s: pd.Series({(a, v): n for a, c in counts.items() for v, n in c.items()}) for s, counts in per_split.items()}
    )
    frame.index.names = ["attribute", "value"]
    return frame.assign(total=frame.sum(axis=1))


def joint_crosstab(name: str, columns: str | None = None, split: str | None = None) -> pd.DataFrame:
    """Images per joint label: one row per combination of the other attributes, one column per value of
    `columns` (default: the last attribute, e.g. palette); `split` counts one split only."""
    labels = read_table(data_dir() / name / "labels.csv")
    if split is not None:
        labels = labels[labels["split"] == split]
    names = list(read_meta(name)["attributes"])
    columns = columns or names[-1]
    rows = [n for n in names if n != columns]
    if not rows:  # one attribute: one row of counts
        return labels[columns].value_counts().to_frame().T
    return pd.crosstab([labels[n] for n in rows], labels[columns])


def read_build_report(name: str) -> pd.DataFrame:
    """build_report.csv: every prepared image, kept or removed (with the file it duplicates), its split."""
    return read_table(data_dir() / name / "build_report.csv")


# ---------------------------------------------------------------- main entry
def build_dataset(
    name: str,
    val_fraction: float = 0.1,
    seed: int = 0,
    near_duplicate_threshold: float = NEAR_THRESHOLD,
    progress: bool = True,
    plot: bool = True,
) -> BuildResult:
    """Deduplicate, split and write the final dataset data/<name>/ from data/<name>/prepared/."""
    t0 = time.perf_counter()
    prep = read_prepare_meta(plain_name(name, "dataset name"))
    prepared = data_dir() / name / "prepared"
    again = "run `python -m heroportraits prepare` again"
    for needed in ("images.npy", "labels.csv"):
        required_file(prepared / needed, BuildError, again)
    images = np.asarray(read_images(prepared / "images.npy", again, alpha=True))  # (N, 64, 64, 3 or 4) uint8
    rgb = images[..., :3]  # duplicates and colours are the portraits' colours; the mask travels with them
    rows = read_labels_csv(prepared / "labels.csv")
    if len(rows) != len(images):
        raise BuildError(f"{prepared}: labels.csv has {len(rows)} rows, images.npy {len(images)}; prepare again")
    vocab = Vocabulary.from_json(prep["attributes"])

    # Duplicates: exact first (cheap), then near among the remaining images.
    exact = exact_duplicates(rgb)
    near, near_dist = near_duplicates(rgb, near_duplicate_threshold, candidates=exact < 0, progress=progress)
    keep = (exact < 0) & (near < 0)
    report = _duplicate_report(rows, exact, near, near_dist, vocab)

    # Split on the joint label, then write the dataset in prepared (file) order.
    kept = np.flatnonzero(keep)
    out_rows, counts, splits = _split(rows, kept, vocab, val_fraction, seed, report)
    parameters = {
        "val_fraction": val_fraction,
        "seed": seed,
        "near_duplicate_threshold": near_duplicate_threshold,
        "near_duplicate_grid": NEAR_GRID,
        "prepare": prep.get("parameters", {}),
    }
    meta = _dataset_meta(name, prep, counts, splits, exact, near, parameters)
    train_images = rgb[kept][np.array([r["split"] == "train" for r in out_rows], bool)]
    meta["colours"] = colour_statistics(train_images, meta["native_scale"])  # what drawing adapts to
    folder = data_dir() / name
    (folder / "duplicates.png").unlink(missing_ok=True)  # a previous build's picture would mislead
    write_dataset(folder, images[kept], out_rows, vocab, meta)  # with the mask when prepared with one
    write_labels_csv(
        folder / "build_report.csv", report, ["file", "status", "reason", "duplicate_of", "distance", "split", "note"]
    )
    paths = {"dataset": folder / "dataset.json", "report": folder / "build_report.csv"}
    if plot:
        plot_counts(name)
        paths["counts_plot"] = folder / "counts.png"
    empty = [f"{a}={v}" for a, c in counts["per_split"]["train"].items() for v, n in c.items() if n == 0]
    if empty:
        print(f"warning: no training images for {', '.join(empty)}; the model cannot learn these values")
    return BuildResult(
        name=name,
        folder=folder,
        n_prepared=len(rows),
        n_kept=len(kept),
        n_exact_duplicates=meta["removed"]["exact_duplicates"],
        n_near_duplicates=meta["removed"]["near_duplicates"],
        splits=splits,
        counts=counts,
        seconds=time.perf_counter() - t0,
        paths=paths,
    )
