"""Every picture the project draws, in one place: sample grids, plots, previews and review grids.

Sample grids take their layout from the vocabulary, so any attribute set gets a sensible
grid: rows and columns take the two attributes with the most values (hero_class and
palette preferred), blocks the next one; any further attribute is held at its most
common value. The plots read the files the pipeline writes (metrics.csv, eval.jsonl,
dataset.json, build_report.csv), so a notebook can redraw them at any time.
Pixels are always shown with nearest-neighbour interpolation, so pixel art stays crisp.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from heroportraits.data.attributes import Vocabulary
from heroportraits.data.images import make_grid
from heroportraits.errors import HeroError
from heroportraits.paths import data_dir


class DrawingError(HeroError):
    """A file with nothing to draw, or without the column asked for."""


@dataclass
class GridLayout:
    rows: str | None
    cols: str | None
    blocks: str | None
    labels: torch.Tensor  # (N, A) conditions, block-major then row-major
    n_rows: int
    n_cols: int
    n_blocks: int
    vocab: Vocabulary

    def value_names(self, attr: str | None, n: int) -> list[str]:
        return self.vocab.attributes[attr] if attr else [""] * n


def grid_layout(vocab: Vocabulary, default_labels: list[int] | None = None, min_cols: int = 4) -> GridLayout:
    """Conditions for a grid. `default_labels` holds values for attributes not on an axis."""
    preferred = ["hero_class", "palette", "gender"]
    names = [n for n in preferred if n in vocab.attributes]
    names += sorted((n for n in vocab.names if n not in names), key=lambda n: -len(vocab.attributes[n]))
    rows, cols, blocks = (names + [None, None, None])[:3]
    sizes = {n: len(vocab.attributes[n]) for n in vocab.names}
    n_rows = sizes.get(rows, 1)
    n_cols = sizes.get(cols, min_cols) if cols else min_cols
    n_blocks = sizes.get(blocks, 1)
    base = list(default_labels) if default_labels is not None else [0] * len(vocab.names)
    labels = []
    for b in range(n_blocks):
        for r in range(n_rows):
            for c in range(n_cols):
                row = list(base)
                for attr, v in ((rows, r), (cols, c), (blocks, b)):
                    if attr:
                        row[vocab.names.index(attr)] = v
                labels.append(row)
    t = torch.tensor(labels, dtype=torch.long).reshape(-1, max(len(vocab.names), 1))
    return GridLayout(rows, cols, blocks, t, n_rows, n_cols, n_blocks, vocab)


def fixed_noise(layout: GridLayout, z_dim: int, seed: int = 1234) -> torch.Tensor:
    """One latent per column, shared by every row and block: only the condition changes down a column."""
    g = torch.Generator().manual_seed(seed)
    z_cols = torch.randn(layout.n_cols, z_dim, generator=g)
    return z_cols.repeat(layout.n_rows * layout.n_blocks, 1)


def save_grid_figure(images: np.ndarray, layout: GridLayout, path: str | Path, title: str = "") -> Path:
    """Labelled grid (matplotlib, nearest-neighbour display so pixels stay crisp)."""
    import matplotlib.pyplot as plt

    per_block = layout.n_rows * layout.n_cols
    h = images.shape[1]
    fig, axes = plt.subplots(
        1,
        layout.n_blocks,
        figsize=(1.0 + 0.9 * layout.n_cols * layout.n_blocks, 0.6 + 0.9 * layout.n_rows),
        squeeze=False,
    )
    for b, ax in enumerate(axes[0]):
        block = make_grid(images[b * per_block : (b + 1) * per_block], nrow=layout.n_cols, padding=2)
        ax.imshow(block, interpolation="nearest")
        ax.set_xticks([2 + (h + 2) * c + h / 2 for c in range(layout.n_cols)])
        ax.set_xticklabels(layout.value_names(layout.cols, layout.n_cols), rotation=45, fontsize=8)
        ax.set_yticks([2 + (h + 2) * r + h / 2 for r in range(layout.n_rows)])
        ax.set_yticklabels(layout.value_names(layout.rows, layout.n_rows) if b == 0 else [], fontsize=8)
        ax.tick_params(length=0)
        if layout.blocks:
            ax.set_title(layout.vocab.attributes[layout.blocks][b], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _finish(fig, path, dpi=110)
    return Path(path)


def _finish(fig, path: str | Path | None, dpi: int = 100):
    """Save `fig` to `path` (making its folder) when given. A saved pyplot figure is closed,
    so a notebook does not show it twice; the figure is returned either way."""
    if path is not None:
        import matplotlib.pyplot as plt

        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=dpi)
        finally:
            plt.close(fig)
    return fig


def _image_axes(ax, image: np.ndarray, title: str = "", fontsize: int = 7) -> None:
    """One portrait on an axis, pixels crisp, no frame."""
    ax.imshow(image, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=fontsize)


# ---------------------------------------------------------------- metric files and curves
def read_metric_file(path: str | Path) -> pd.DataFrame:
    """metrics.csv or eval.jsonl (nested keys joined with '.') -> its numeric columns, one row per
    line (NaN where a line lacks a key)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        frame = pd.json_normalize([json.loads(line) for line in path.read_text().splitlines() if line.strip()])
    else:
        frame = pd.read_csv(path)
    return frame.select_dtypes("number").astype(float)


def plot_losses(metrics_csv: str | Path, out: str | Path | None = None):
    """D and G losses (and D's mean logits on real/fake) against step."""
    import matplotlib.pyplot as plt

    m = read_metric_file(metrics_csv)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, keys, title in ((a, ("d_loss", "g_loss"), "losses"), (b, ("d_real", "d_fake"), "D logits (mean)")):
        for key in keys:
            if key in m:
                ax.plot(m["step"], m[key], label=key, lw=1)
        ax.set_xlabel("step"), ax.set_title(title), ax.legend()
    fig.tight_layout()
    return _finish(fig, out)


def plot_metric_curves(path: str | Path, keys: list[str] | None = None, out: str | Path | None = None):
    """One panel per metric against `step` (or row number) from a metrics CSV/JSONL; saved if `out`."""
    import matplotlib.pyplot as plt

    cols = read_metric_file(path)
    if cols.empty:
        raise DrawingError(f"{path} has no numeric rows to plot")
    x = cols["step"] if "step" in cols else np.arange(len(cols))
    keys = keys or [k for k in cols if k not in ("step", "seconds", "images_per_s")]
    missing = [k for k in keys if k not in cols]
    if missing:
        raise DrawingError(f"{path} has no column(s) {missing}; it has {sorted(cols)}")
    ncol = min(3, len(keys))
    nrow = (len(keys) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 2.8 * nrow), squeeze=False)
    for ax in axes.flat[len(keys) :]:
        ax.axis("off")
    for ax, k in zip(axes.flat, keys):
        y = np.asarray(cols[k], float)
        ok = ~np.isnan(y)
        ax.plot(np.asarray(x, float)[ok], y[ok], marker="." if ok.sum() < 50 else None, lw=1)
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("step" if "step" in cols else "row")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _finish(fig, out)


# ---------------------------------------------------------------- source previews and review grids
def preview_grid(
    panels: dict[str, list[list[np.ndarray]]],
    row_labels: list[str],
    col_labels: list[str] | None = None,
    path: str | Path | None = None,
):
    """A generated source at a glance: one panel per key of `panels` (e.g. gender), one row of
    (H, W, 3) portraits per `row_labels` entry (e.g. hero class). Short rows are padded white.

    With `col_labels`, each label names an equal run of columns (e.g. a palette over two portraits).
    """
    import matplotlib.pyplot as plt

    per_row = max(len(r) for rows in panels.values() for r in rows)
    size, pad = next(t for rows in panels.values() for r in rows for t in r).shape[0], 2
    blank = np.full((size, size, 3), 255, np.uint8)
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(1.0 * per_row + 1.3, (1.0 * len(row_labels) + 0.5) * len(panels)), squeeze=False
    )
    for ax, (title, rows) in zip(axes[:, 0], panels.items()):
        tiles = [t for r in rows for t in list(r) + [blank] * (per_row - len(r))]
        ax.imshow(make_grid(np.stack(tiles), nrow=per_row, padding=pad), interpolation="nearest")
        span = (size + pad) * per_row / len(col_labels) if col_labels else 0
        ax.set_xticks([pad + span * (i + 0.5) - pad / 2 for i in range(len(col_labels or []))], col_labels or [])
        ax.set_yticks([pad + (size + pad) * (i + 0.5) - pad / 2 for i in range(len(row_labels))], row_labels)
        ax.tick_params(length=0)
        ax.set_title(title)
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.tight_layout()
    return _finish(fig, path)


def captioned_grid(images: np.ndarray, captions: list[str], columns: int, title: str):
    """Tiles with a small caption under each (a file name, to copy into an overrides row)."""
    from matplotlib.figure import Figure

    n = max(len(images), 1)
    nrows = (n + columns - 1) // columns
    fig = Figure(figsize=(columns * 1.1, nrows * 1.25 + 0.4))
    fig.suptitle(title, fontsize=9)
    for i in range(nrows * columns):
        ax = fig.add_subplot(nrows, columns, i + 1)
        ax.set_axis_off()
        if i < len(images):
            caption = captions[i] if len(captions[i]) <= 18 else "…" + captions[i][-17:]
            _image_axes(ax, images[i], caption, fontsize=5)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.4 / (nrows * 1.25 + 0.4), hspace=0.3, wspace=0.05)
    return fig


def plot_palette_agreement(agreement):
    """A PaletteAgreement's confusion matrix as a Figure (counts in the cells)."""
    from matplotlib.figure import Figure

    values, m = agreement.values, np.array(agreement.confusion)
    fig = Figure(figsize=(1.0 + 0.7 * len(values), 0.8 + 0.6 * len(values)), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(m, cmap="Blues")
    for (i, j), c in np.ndenumerate(m):
        ax.text(j, i, str(c), ha="center", va="center", color="white" if c > m.max() / 2 else "black", fontsize=8)
    ax.set_xticks(range(len(values)), values, rotation=45)
    ax.set_yticks(range(len(values)), values)
    ax.set_xlabel("automatic")
    ax.set_ylabel("given")
    ax.set_title(f"palette agreement {agreement.accuracy:.1%} (n={agreement.n})", fontsize=10)
    return fig


# ---------------------------------------------------------------- a final dataset
def plot_counts(name: str):
    """Bars per attribute value (train/val stacked) and per joint label; saved to data/<name>/counts.png."""
    from matplotlib.figure import Figure

    folder = data_dir() / name
    meta = json.loads((folder / "dataset.json").read_text())
    counts = meta["counts"]
    attrs = list(meta["attributes"])
    fig = Figure(figsize=(max(10, 3.2 * len(attrs)), 7.5), layout="constrained")
    gs = fig.add_gridspec(2, len(attrs))
    for c, a in enumerate(attrs):
        ax = fig.add_subplot(gs[0, c])
        values = meta["attributes"][a]
        train = [counts["per_split"]["train"][a].get(v, 0) for v in values]
        val = [counts["per_split"]["val"][a].get(v, 0) for v in values]
        ax.bar(values, train, color="#4c72b0", label="train")
        ax.bar(values, val, bottom=train, color="#dd8452", label="val")
        ax.set_title(a)
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        if c == 0:
            ax.set_ylabel("images")
            ax.legend(fontsize=8)
    ax = fig.add_subplot(gs[1, :])
    position = {a: {v: i for i, v in enumerate(meta["attributes"][a])} for a in attrs}
    joint = sorted(counts["joint"], key=lambda j: tuple(position[a][j[a]] for a in attrs))  # vocabulary order
    ax.bar(range(len(joint)), [j["count"] for j in joint], color="#55a868")
    ax.set_xticks(
        range(len(joint)),
        ["/".join(j[a] for a in attrs) for j in joint],
        rotation=90,
        fontsize=max(4, 8 - len(joint) // 30),
    )
    ax.set_title(f"joint labels ({len(joint)} combinations of {', '.join(attrs)})")
    ax.set_ylabel("images")
    return _finish(fig, folder / "counts.png")


def plot_duplicates(name: str, max_pairs: int = 8):
    """Removed duplicates above the image they duplicate; saved to data/<name>/duplicates.png. None if none."""
    from matplotlib.figure import Figure

    from heroportraits.data.dataset import read_labels_csv

    folder = data_dir() / name
    report = read_labels_csv(folder / "build_report.csv")
    removed = [r for r in report if r["status"] == "removed"][:max_pairs]
    if not removed:
        return None
    images = np.load(folder / "prepared" / "images.npy", mmap_mode="r")  # prepared order = report order
    index = {r["file"]: i for i, r in enumerate(report)}
    fig = Figure(figsize=(2.4 * len(removed), 2.8), layout="constrained")
    for c, r in enumerate(removed):
        for k, (f, what) in enumerate([(r["duplicate_of"], "kept"), (r["file"], r["reason"].replace("_", " "))]):
            ax = fig.add_subplot(2, len(removed), 1 + c + k * len(removed))
            _image_axes(ax, images[index[f]], f"{what}\n{f[-18:]}", fontsize=6)
    return _finish(fig, folder / "duplicates.png")


def plot_examples(name: str, attribute: str | None = None, per_value: int = 8, split: str = "train", seed: int = 0):
    """A row of random images per value of `attribute` (default: the first attribute).

    Saved to data/<name>/examples_<attribute>.png.
    """
    from matplotlib.figure import Figure

    from heroportraits.data.dataset import load_dataset

    data = load_dataset(name, split)
    attribute = attribute or data.vocab.names[0]
    a = data.vocab.names.index(attribute)
    values = data.vocab.attributes[attribute]
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(1.1 * per_value, 1.2 * len(values)), layout="constrained")
    for r, v in enumerate(values):
        idx = np.flatnonzero(data.labels[:, a].numpy() == r)
        idx = rng.choice(idx, size=min(per_value, len(idx)), replace=False) if len(idx) else idx
        for c in range(per_value):
            ax = fig.add_subplot(len(values), per_value, r * per_value + c + 1)
            ax.set_axis_off()
            if c < len(idx):
                _image_axes(ax, data.images[idx[c]].permute(1, 2, 0).numpy())
            if c == 0:
                ax.set_title(f"{attribute}={v}", fontsize=7, loc="left")
    return _finish(fig, data_dir() / name / f"examples_{attribute}.png")


# ---------------------------------------------------------------- a trained model
def plot_nearest_neighbours(
    generated: np.ndarray,
    train_images: np.ndarray,
    memorisation: dict,
    path: str | Path | None = None,
    n_pairs: int = 16,
):
    """The closest generated | nearest-TRAIN pairs (an evaluation's `memorisation` entry), 4 pairs
    a row, distance above each; saved if `path`."""
    import matplotlib.pyplot as plt

    mem = memorisation
    pairs = mem["closest"][:n_pairs]
    cols = 4
    rows = max(1, (len(pairs) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2 * cols * 1.3, rows * 1.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, p in enumerate(pairs):
        r, c = divmod(i, cols)
        flag = " !" if p["distance"] <= mem["threshold"] else ""
        _image_axes(axes[r, 2 * c], generated[p["index"]], f"gen {p['index']}{flag}")
        _image_axes(axes[r, 2 * c + 1], train_images[p["train_index"]], f"train d={p['distance']:.1f}")
    fig.suptitle(
        f"closest generated | nearest TRAIN ({mem['space']}; ! = flagged, <= {mem['threshold']:.2f})", fontsize=8
    )
    fig.tight_layout()
    return _finish(fig, path, dpi=110)


def plot_attribute_grid(
    sampler, dataset: str | None = None, per_row: int = 8, seed: int = 0, path: str | Path | None = None
):
    """One row per value of every conditioned attribute: `per_row` portraits with that value fixed
    (the rest from the training mix, the same noise down each column), labelled with how many
    of them the dataset's judge reads as that value. Saved if `path`."""
    import matplotlib.pyplot as plt

    from heroportraits.evaluation.judge import load_or_train_judge

    judge = load_or_train_judge(dataset or sampler.dataset_name, progress=False)
    pairs = [(a, v) for a in sampler.cvocab.names for v in sampler.vocab.attributes[a]]
    fig, axes = plt.subplots(len(pairs), 1, figsize=(0.75 * per_row + 1.8, 0.8 * len(pairs) + 0.4), squeeze=False)
    for ax, (a, v) in zip(axes[:, 0], pairs):
        images, _ = sampler.generate(per_row, {a: v}, seed=seed, open_attributes="mix")  # (per_row, H, W, 3)
        agree = int((judge.predict(images)[:, judge.vocab.names.index(a)] == judge.vocab.encode_value(a, v)).sum())
        ax.imshow(make_grid(images, nrow=per_row, padding=2), interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_ylabel(f"{a}={v}\njudge {agree}/{per_row}", rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(
        f"one row per attribute value (step {sampler.step}; judge = samples it reads as that value)", fontsize=9
    )
    fig.tight_layout()
    return _finish(fig, path, dpi=110)


# ---------------------------------------------------------------- study figures
def plot_metric_bars(
    values: dict[str, dict[str, list[float]]], out: str | Path, baseline: str | None = None, title: str = ""
):
    """One panel per metric, one bar per variant: mean over seeds, error bar = std, dots = the seeds.

    values: metric -> variant -> per-seed values (NaN ignored); the baseline's bar is dark.
    """
    import matplotlib.pyplot as plt

    metrics = list(values)
    ncol = min(3, len(metrics))
    nrow = (len(metrics) + ncol - 1) // ncol
    variants = list(dict.fromkeys(v for m in metrics for v in values[m]))
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(max(4.0, 0.55 * len(variants) + 1.5) * ncol, 3.2 * nrow), squeeze=False
    )
    for ax in axes.flat[len(metrics) :]:
        ax.axis("off")
    for ax, metric in zip(axes.flat, metrics):
        for i, variant in enumerate(variants):
            y = np.asarray(values[metric].get(variant, []), float)
            y = y[~np.isnan(y)]
            if not len(y):
                continue
            std = y.std(ddof=1) if len(y) > 1 else 0.0
            ax.bar(i, y.mean(), yerr=std, capsize=3, color="0.35" if variant == baseline else "C0", alpha=0.8)
            ax.scatter(np.full(len(y), i), y, s=9, color="k", zorder=3)
        ax.set_xticks(range(len(variants)), variants, rotation=45, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _finish(fig, out)


def plot_curves(
    curves: dict[str, list[tuple[list[float], list[float]]]],
    out: str | Path,
    xlabel: str = "wall time (minutes)",
    ylabel: str = "FD",
    title: str = "",
):
    """One line per run, one colour per variant (e.g. train-time FD against wall time); log y if it spans 10x."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    spread = []
    for i, (variant, runs) in enumerate(curves.items()):
        for j, (x, y) in enumerate(runs):
            ax.plot(x, y, color=f"C{i % 10}", lw=1.2, marker=".", label=variant if j == 0 else None)
            spread += [v for v in y if v > 0]
    if spread and max(spread) > 10 * min(spread):
        ax.set_yscale("log")
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _finish(fig, out)


def save_comparison_grid(
    rows: list[tuple[str, np.ndarray]], out: str | Path, col_labels: list[str] | None = None, title: str = ""
) -> Path:
    """Rows of portraits side by side, each (K, H, W, 3) uint8 and labelled (e.g. one per variant and
    seed); column k holds the same noise and condition in every row, so only the model changes."""
    import matplotlib.pyplot as plt

    k, h = rows[0][1].shape[0], rows[0][1].shape[1]
    fig, ax = plt.subplots(figsize=(1.5 + 0.75 * k, 0.6 + 0.75 * len(rows)))
    ax.imshow(make_grid(np.concatenate([images for _, images in rows]), nrow=k, padding=2), interpolation="nearest")
    ax.set_yticks([2 + (h + 2) * r + h / 2 for r in range(len(rows))], [label for label, _ in rows], fontsize=8)
    ax.set_xticks(
        [2 + (h + 2) * c + h / 2 for c in range(k)],
        col_labels or [""] * k,
        rotation=60,
        ha="right",
        rotation_mode="anchor",
        fontsize=6,
    )
    ax.tick_params(length=0)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _finish(fig, out, dpi=110)
    return Path(out)
