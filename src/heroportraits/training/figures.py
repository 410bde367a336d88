"""The training stage's pictures: the attribute grid of samples, and the curves of a run's files.

Sample grids take their layout from the vocabulary, so any attribute set gets a sensible
grid: rows and columns take the two attributes with the most values (hero_class and
palette preferred), blocks the next one; any further attribute is held at its most
common value. The curves read metrics.csv and eval.jsonl, so a notebook can redraw them at any time.
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
from heroportraits.figures import DrawingError, plain_text, save_figure


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


@plain_text
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
    save_figure(fig, path, dpi=110)
    return Path(path)


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


@plain_text
def plot_losses(metrics_csv: str | Path, out: str | Path | None = None):
    """A GAN's D and G losses (and D's mean logits on real/fake), or a flow model's loss (and its gradient's
    norm), against step."""
    import matplotlib.pyplot as plt

    m = read_metric_file(metrics_csv)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    panels = ((a, ("d_loss", "g_loss"), "losses"), (b, ("d_real", "d_fake"), "D logits (mean)"))
    if "d_loss" not in m:  # the flow family
        panels = ((a, ("loss",), "flow-matching loss"), (b, ("grad_norm",), "gradient norm (before clipping)"))
    for ax, keys, title in panels:
        for key in keys:
            if key in m:
                ax.plot(m["step"], m[key], label=key, lw=1)
        ax.set_xlabel("step"), ax.set_title(title), ax.legend()
    fig.tight_layout()
    return save_figure(fig, out)


@plain_text
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
    return save_figure(fig, out)
