"""The palette check (`--palette-check N`): portraits whose palette, read by the rules that labelled the dataset's
palettes (data/palette_labels.py), is not the asked one are drawn again from new noise, up to N times.

Where the rules made the labels (LPC art, a folder without a palette column), a portrait's palette IS what the
rules read, so keeping only portraits the rules read as asked is rejection sampling towards the data's own
conditional: no network pass beyond the redraws, no pull on the other attributes. Portraits still off after N
redraws are kept as the last redraw drew them (the evaluation counts them). Where labels were given with the data,
the rules only approximate them, so the Sampler refuses the check there.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from heroportraits.data.palette_labels import off_palette


def round_seed(seed: int, round_: int) -> int:
    """The noise seed of redraw `round_` (1, 2, ...) of a drawing seeded `seed`: apart from every drawing's own."""
    return int(np.random.SeedSequence([seed, round_, 0x9A1E77E]).generate_state(1)[0])


def redraw_off_palette(
    images: np.ndarray,
    asked: np.ndarray,
    values: list[str],
    backdrop,
    rounds: int,
    redraw: Callable[[int, np.ndarray], np.ndarray],
    cell: int = 1,
) -> tuple[np.ndarray, dict]:
    """`images` (N, H, W, C) with the off-palette ones drawn again by `redraw(round, rows)` (the new portraits of
    those rows), at most `rounds` times. Returns the images and what it took: portraits redrawn each round and
    those still off at the end. `cell`: the images are their native grid upscaled that many times (read once a
    cell: the same labels, data/palette_labels.palette_features)."""
    images = images.copy()
    redrawn = []
    off = np.flatnonzero(off_palette(images, asked, values, backdrop, cell))
    for r in range(1, rounds + 1):
        if not len(off):
            break
        redrawn.append(int(len(off)))
        images[off] = redraw(r, off)
        off = off[off_palette(images[off], asked[off], values, backdrop, cell)]
    return images, {"redrawn": redrawn, "still_off": int(len(off))}
