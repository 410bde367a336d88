"""A study's pictures: bars per metric and variant, train-time curves per run, and the same noise across runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from heroportraits.data.images import make_grid
from heroportraits.figures import plain_text, save_figure


@plain_text
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
    return save_figure(fig, out)


@plain_text
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
    ax.set_title(title, fontsize=10)  # "" leaves it without one
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)


@plain_text
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
    save_figure(fig, out, dpi=110)
    return Path(out)
