"""Sample grids whose layout is the attributes: rows = class, columns = palette, a block per gender.

The layout is read from the vocabulary, so any attribute set gets a sensible grid:
rows and columns take the two attributes with the most values (hero_class and
palette preferred), blocks the next one; any further attribute is held at its most
common value.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from heroportraits.data.attributes import Vocabulary
from heroportraits.data.images import make_grid


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def read_metrics(path: str | Path) -> dict[str, list[float]]:
    """metrics.csv -> column name -> values (empty cells become NaN)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    cols: dict[str, list[float]] = {}
    for r in rows:
        for k, v in r.items():
            cols.setdefault(k, []).append(float(v) if v not in ("", None) else float("nan"))
    return cols


def plot_losses(metrics_csv: str | Path, out: str | Path | None = None):
    """D and G losses (and D's mean logits on real/fake) against step."""
    import matplotlib.pyplot as plt

    m = read_metrics(metrics_csv)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key in ("d_loss", "g_loss"):
        if key in m:
            a.plot(m["step"], m[key], label=key, lw=1)
    a.set_xlabel("step"), a.set_title("losses"), a.legend()
    for key in ("d_real", "d_fake"):
        if key in m:
            b.plot(m["step"], m[key], label=key, lw=1)
    b.set_xlabel("step"), b.set_title("D logits (mean)"), b.legend()
    fig.tight_layout()
    if out:
        fig.savefig(out, dpi=100)
        plt.close(fig)
    return fig
