"""The evaluation stage's pictures: the generated portraits closest to TRAIN, and a row per attribute value
read by the judge."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from heroportraits.data.images import make_grid
from heroportraits.evaluation.judge import load_or_train_judge
from heroportraits.evaluation.masks import split_alpha
from heroportraits.figures import plain_text, save_figure, show_image


@plain_text
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
        show_image(axes[r, 2 * c], generated[p["index"]], f"gen {p['index']}{flag}")
        show_image(axes[r, 2 * c + 1], train_images[p["train_index"]], f"train d={p['distance']:.1f}")
    fig.suptitle(
        f"closest generated | nearest TRAIN ({mem['space']}; ! = flagged, <= {mem['threshold']:.2f})", fontsize=8
    )
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


@plain_text
def plot_attribute_grid(
    sampler, dataset: str | None = None, per_row: int = 8, seed: int = 0, path: str | Path | None = None
):
    """One row per value of every conditioned attribute: `per_row` portraits with that value fixed
    (the rest from the training mix, the same noise down each column), labelled with how many
    of them the dataset's judge reads as that value. Saved if `path`."""
    import matplotlib.pyplot as plt

    judge = load_or_train_judge(dataset or sampler.dataset_name, progress=False)
    pairs = [(a, v) for a in sampler.cvocab.names for v in sampler.vocab.attributes[a]]
    fig, axes = plt.subplots(len(pairs), 1, figsize=(0.75 * per_row + 1.8, 0.8 * len(pairs) + 0.4), squeeze=False)
    for ax, (a, v) in zip(axes[:, 0], pairs):
        images, _ = sampler.generate(per_row, {a: v}, seed=seed, open_attributes="mix")
        images = split_alpha(images)[0]  # (per_row, H, W, 3): an RGBA model's colours
        agree = int((judge.predict(images)[:, judge.vocab.names.index(a)] == judge.vocab.encode_value(a, v)).sum())
        ax.imshow(make_grid(images, nrow=per_row, padding=2), interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_ylabel(f"{a}={v}\njudge {agree}/{per_row}", rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(
        f"one row per attribute value (step {sampler.step}; judge = samples it reads as that value)", fontsize=9
    )
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
