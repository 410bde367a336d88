"""Plots made from the files a run writes (metrics.csv), so they can be redrawn any time."""

from __future__ import annotations

import csv
from pathlib import Path


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
