"""The data stage's pictures: source previews, review grids, palette agreement, a final dataset's counts,
removed duplicates and examples. They read the files the data stage writes (dataset.json,
build_report.csv), so a notebook can redraw them at any time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from heroportraits.data.dataset import load_dataset, read_images, read_labels_csv
from heroportraits.data.images import make_grid
from heroportraits.figures import plain_text, save_figure, show_image
from heroportraits.paths import data_dir


@plain_text
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
    return save_figure(fig, path)


@plain_text
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
            show_image(ax, images[i], caption, fontsize=5)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.4 / (nrows * 1.25 + 0.4), hspace=0.3, wspace=0.05)
    return fig


@plain_text
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
@plain_text
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
    return save_figure(fig, folder / "counts.png")


@plain_text
def plot_duplicates(name: str, max_pairs: int = 8):
    """Removed duplicates above the image they duplicate; saved to data/<name>/duplicates.png. None if none."""
    from matplotlib.figure import Figure

    folder = data_dir() / name
    report = read_labels_csv(folder / "build_report.csv")
    removed = [r for r in report if r["status"] == "removed"][:max_pairs]
    if not removed:
        return None
    images = read_images(folder / "prepared" / "images.npy")  # RGB; prepared order = report order
    index = {r["file"]: i for i, r in enumerate(report)}
    fig = Figure(figsize=(2.4 * len(removed), 2.8), layout="constrained")
    for c, r in enumerate(removed):
        for k, (f, what) in enumerate([(r["duplicate_of"], "kept"), (r["file"], r["reason"].replace("_", " "))]):
            ax = fig.add_subplot(2, len(removed), 1 + c + k * len(removed))
            show_image(ax, images[index[f]], f"{what}\n{f[-18:]}", fontsize=6)
    return save_figure(fig, folder / "duplicates.png")


@plain_text
def plot_examples(name: str, attribute: str | None = None, per_value: int = 8, split: str = "train", seed: int = 0):
    """A row of random images per value of `attribute` (default: the first attribute).

    Saved to data/<name>/examples_<attribute>.png.
    """
    from matplotlib.figure import Figure

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
                show_image(ax, data.images[idx[c]].permute(1, 2, 0).numpy())
            if c == 0:
                ax.set_title(f"{attribute}={v}", fontsize=7, loc="left")
    return save_figure(fig, data_dir() / name / f"examples_{attribute}.png")
