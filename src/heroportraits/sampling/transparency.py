"""Transparent backgrounds for portraits drawn by RGB models (`sample --transparent`): the background a portrait
shares with its border, cut by a flood fill.

On the native grid, the fill starts from every border pixel and spreads to a 4-neighbour whose colour is within
`tolerance` dE of the pixel it came from, so a flat background and a smooth gradient are cut whole, an outline
stops it, and a region the figure encloses is never reached, whatever its colour. A cut is *clean* when it
takes most of the border (`CLEAN_BORDER`) and leaves a figure of a sensible size, nearly all in one piece: the
share of clean cuts is what `sample` reports, since a portrait whose figure shares the background's colour at the
border cannot be cut well by any fill.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from heroportraits.data.oklab import DELTA_E_SCALE, rgb_to_oklab

TOLERANCE = 4.0  # dE between neighbouring background pixels (a painted gradient's steps are smaller)
SEED_TOLERANCE = 15.0  # dE from the border's typical colour within which a border pixel seeds the fill
CLEAN_BORDER = 0.6  # a clean cut takes at least this share of the border pixels ...
CLEAN_FIGURE = (0.1, 0.9)  # ... and leaves a figure covering this share of the portrait ...
CLEAN_PIECE = 0.9  # ... with at least this share of it in its largest piece
SPECK = 3  # pixels: a piece of the figure this small, standing alone in the background, is the background's dither


def background_mask(native: np.ndarray, tolerance: float = TOLERANCE) -> np.ndarray:
    """(h, w, 3) uint8 native pixels -> (h, w) bool: the background. The seeds are the border pixels near the
    border's typical colour (its median in OKLab: most of a portrait's border is background), so a figure that
    touches the edge (shoulders at the bottom) is no seed; the fill spreads from them to 4-neighbours within
    `tolerance` dE of the pixel they came from."""
    h, w, _ = native.shape
    lab = rgb_to_oklab(native) * DELTA_E_SCALE
    border = np.zeros((h, w), bool)
    border[0], border[-1], border[:, 0], border[:, -1] = True, True, True, True
    typical = np.median(lab[border], axis=0)
    seeds = border & (np.sqrt(((lab - typical) ** 2).sum(-1)) <= SEED_TOLERANCE)
    seen = seeds.copy()
    queue = deque(zip(*np.nonzero(seeds)))
    while queue:
        y, x = queue.popleft()
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= ny < h and 0 <= nx < w and not seen[ny, nx]:
                if np.sqrt(((lab[ny, nx] - lab[y, x]) ** 2).sum()) <= tolerance:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
    return seen


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """The 4-connected pieces of `mask`, each as a bool mask, largest first."""
    h, w = mask.shape
    label = np.full(mask.shape, -1)
    pieces = []
    for start in zip(*np.nonzero(mask)):
        if label[start] >= 0:
            continue
        label[start] = len(pieces)
        queue, members = deque([start]), [start]
        while queue:
            y, x = queue.popleft()
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and label[ny, nx] < 0:
                    label[ny, nx] = len(pieces)
                    queue.append((ny, nx))
                    members.append((ny, nx))
        pieces.append(label == len(pieces))
    return sorted(pieces, key=lambda piece: -int(piece.sum()))


def without_specks(background: np.ndarray) -> np.ndarray:
    """The background with the figure's specks added: pieces of at most `SPECK` pixels standing alone in it (a
    painted background's dither). A region the figure encloses is part of the figure's piece and is never taken."""
    out = background.copy()
    for piece in _components(~background):
        if piece.sum() <= SPECK:
            out |= piece
    return out


def is_clean(background: np.ndarray) -> bool:
    """A cut that takes most of the border and leaves a figure of a sensible size, nearly all of it in one piece
    (a prop beside the figure, like a banner, may stand apart)."""
    border = np.concatenate([background[0], background[-1], background[1:-1, 0], background[1:-1, -1]])
    figure = ~background
    share = figure.mean()
    if border.mean() < CLEAN_BORDER or not CLEAN_FIGURE[0] <= share <= CLEAN_FIGURE[1]:
        return False
    return bool(_components(figure)[0].sum() >= CLEAN_PIECE * figure.sum())


def cut_backgrounds(
    images: np.ndarray, native_scale: int, tolerance: float = TOLERANCE
) -> tuple[np.ndarray, np.ndarray]:
    """Portraits (N, H, W, 3) uint8 -> (N, H, W, 4) with alpha 0 on each one's background and 255 elsewhere (cut on
    the native grid, so the alpha is blocky like the art), and which cuts are clean (N,) bool."""
    k = max(1, native_scale)
    out = np.concatenate([images, np.full(images.shape[:3] + (1,), 255, np.uint8)], axis=-1)
    clean = np.zeros(len(images), bool)
    for i, img in enumerate(images):
        background = without_specks(background_mask(img[::k, ::k], tolerance))
        clean[i] = is_clean(background)
        out[i, ..., 3] = np.where(background.repeat(k, 0).repeat(k, 1), 0, 255)
    return out, clean


def with_cut_labels(rows: list[dict], clean: np.ndarray) -> list[dict]:
    """Label rows with how each portrait's background cut went: `background_cut` = clean / rough."""
    return [{**row, "background_cut": "clean" if ok else "rough"} for row, ok in zip(rows, clean)]
