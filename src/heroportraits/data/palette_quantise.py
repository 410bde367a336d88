"""A dataset's colour palette: the TRAIN pixels clustered into at most K colours in OKLab.

    python -m heroportraits palette NAME --k 32      # report + store the palette with the dataset

Pixel art draws from few colours per portrait, but a dataset's hues vary from portrait to
portrait, so one shared palette loses colour; how much is what the report says: mean and
max dE (100 x OKLab distance, data/oklab.py) of every train pixel to its palette colour,
and the share of pixels whose colour is in the palette exactly. The palette is stored in
dataset.json ("palette": colours and report) with a swatch, data/NAME/palette.png; a
generator with `model.palette_source=dataset` draws every pixel from it (docs/pixelart.md).
(Not to be confused with data/palette_labels.py, the rules for the palette LABEL.)

Clustering: weighted k-means (k-means++ seeding) over the distinct colours, each weighted by
its pixel count, so millions of pixels cost as much as their few ten thousand colours. Each
centre is then snapped to the nearest colour that really occurs in its cluster: palettes of
real colours keep the common ones exact, where a mean would be a colour nobody drew.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from heroportraits.data.dataset import load_dataset, read_meta
from heroportraits.data.images import save_png
from heroportraits.data.oklab import DELTA_E_SCALE, rgb_to_oklab
from heroportraits.errors import HeroError
from heroportraits.paths import dataset_dir, write_json

SWATCH = 16  # side of one colour's square in palette.png
SWATCH_ROW = 8  # colours per row of palette.png


class PaletteError(HeroError):
    """A palette that cannot be made or is missing; the message says which command makes it."""


@dataclass
class PaletteReport:
    k: int  # colours asked for
    colours: list[list[int]]  # (K', 3) sRGB 0-255, K' <= k, dark to light
    counts: list[int]  # train pixels each colour stands for
    distinct_colours: int  # distinct colours in the pixels clustered
    pixels: int  # pixels clustered (the native grid of every train image)
    mean_delta_e: float  # mean dE of a pixel to its palette colour
    max_delta_e: float  # worst pixel
    exact_share: float  # share of pixels whose colour is in the palette

    def summary(self) -> str:
        return (
            f"palette: {len(self.colours)} colours (asked {self.k}) for {self.distinct_colours} distinct colours in "
            f"{self.pixels} pixels; dE mean {self.mean_delta_e:.2f}, max {self.max_delta_e:.2f} "
            f"(100 x OKLab distance, ~2 just noticeable); {100 * self.exact_share:.1f} % of pixels kept exactly"
        )


def colour_counts(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) uint8 -> (distinct colours (M, 3) uint8, pixel counts (M,)), in code order."""
    flat = np.asarray(pixels, np.uint8).reshape(-1, 3).astype(np.uint32)
    codes, counts = np.unique((flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2], return_counts=True)
    colours = np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=1).astype(np.uint8)
    return colours, counts


def nearest(points: np.ndarray, centres: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """(M, 3), (K, 3) -> (index of each point's nearest centre (M,), its squared distance (M,))."""
    idx, d2 = np.empty(len(points), np.int64), np.empty(len(points))
    for s in range(0, len(points), chunk):
        d = ((points[s : s + chunk, None, :] - centres[None]) ** 2).sum(-1)  # (C, K)
        idx[s : s + chunk] = d.argmin(1)
        d2[s : s + chunk] = d[np.arange(len(d)), idx[s : s + chunk]]
    return idx, d2


def weighted_kmeans(points: np.ndarray, weights: np.ndarray, k: int, seed: int = 0, iters: int = 100) -> np.ndarray:
    """k-means of `points` (M, 3) weighted by `weights` (M,), k-means++ seeding -> centres (k, 3)."""
    rng = np.random.default_rng(seed)
    w = weights.astype(np.float64)
    centres = [points[rng.choice(len(points), p=w / w.sum())]]
    for _ in range(1, k):  # each next seed drawn by weight x squared distance to the seeds so far
        _, d2 = nearest(points, np.stack(centres))
        score = w * d2
        centres.append(points[rng.choice(len(points), p=score / score.sum())])
    centres = np.stack(centres)
    assign = None
    for _ in range(iters):
        new, d2 = nearest(points, centres)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        mass = np.bincount(assign, weights=w, minlength=k)
        for c in range(3):
            centres[:, c] = np.bincount(assign, weights=w * points[:, c], minlength=k) / np.maximum(mass, 1e-12)
        for empty in np.flatnonzero(mass == 0):  # an empty cluster takes the worst-served colour
            worst = int((w * d2).argmax())
            centres[empty], d2[worst] = points[worst], 0.0
    return centres


def quantise_colours(colours: np.ndarray, counts: np.ndarray, k: int, seed: int = 0) -> PaletteReport:
    """Distinct colours (M, 3) uint8 with pixel counts (M,) -> a palette of at most k of them and its error."""
    if k < 1:
        raise PaletteError(f"a palette needs at least 1 colour, got k={k}")
    lab = rgb_to_oklab(colours)  # (M, 3)
    if len(colours) <= k:
        palette_idx = np.arange(len(colours))
    else:
        centres = weighted_kmeans(lab, counts, k, seed)
        assign, _ = nearest(lab, centres)
        palette_idx = []
        for c in range(k):  # snap each centre to the closest colour that occurs in its cluster
            members = np.flatnonzero(assign == c)
            if len(members):
                palette_idx.append(members[((lab[members] - centres[c]) ** 2).sum(1).argmin()])
        palette_idx = np.unique(palette_idx)
    palette_idx = palette_idx[np.argsort(lab[palette_idx, 0], kind="stable")]  # dark to light
    assign, d2 = nearest(lab, lab[palette_idx])
    de = DELTA_E_SCALE * np.sqrt(d2)  # (M,) each distinct colour's error
    total = int(counts.sum())
    return PaletteReport(
        k=int(k),
        colours=colours[palette_idx].astype(int).tolist(),
        counts=np.bincount(assign, weights=counts, minlength=len(palette_idx)).astype(int).tolist(),
        distinct_colours=int(len(colours)),
        pixels=total,
        mean_delta_e=float((de * counts).sum() / total),
        max_delta_e=float(de.max()),
        exact_share=float(counts[de == 0].sum() / total),
    )


def quantise_images(images: np.ndarray, k: int, seed: int = 0) -> PaletteReport:
    """(N, H, W, 3) uint8 -> the palette of at most k colours that best covers their pixels."""
    return quantise_colours(*colour_counts(images), k, seed)


def apply_palette(images: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Every pixel of (..., 3) uint8 `images` -> its nearest `palette` colour (K, 3) in OKLab."""
    colours, _ = colour_counts(images)
    idx, _ = nearest(rgb_to_oklab(colours), rgb_to_oklab(np.asarray(palette, np.uint8)))
    flat = np.asarray(images, np.uint8).reshape(-1, 3).astype(np.uint32)
    codes = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    keys = (colours[:, 0].astype(np.uint32) << 16) | (colours[:, 1].astype(np.uint32) << 8) | colours[:, 2]
    lut = np.asarray(palette, np.uint8)[idx]  # distinct colour -> palette colour
    return lut[np.searchsorted(keys, codes)].reshape(np.shape(images))


def swatch(colours: list[list[int]]) -> np.ndarray:
    """The palette as rows of SWATCH x SWATCH squares, SWATCH_ROW per row -> (H, W, 3) uint8."""
    rows = -(-len(colours) // SWATCH_ROW)
    out = np.full((rows * SWATCH, SWATCH_ROW * SWATCH, 3), 255, np.uint8)
    for i, c in enumerate(colours):
        r, col = divmod(i, SWATCH_ROW)
        out[r * SWATCH : (r + 1) * SWATCH, col * SWATCH : (col + 1) * SWATCH] = c
    return out


# ---------------------------------------------------------------- a dataset's palette
def train_pixels(name: str | Path) -> np.ndarray:
    """The TRAIN split's pixels on its native grid (one per native pixel): (N, h, w, 3) uint8."""
    data = load_dataset(name, "train")
    s = data.native_scale
    return data.images[..., ::s, ::s].permute(0, 2, 3, 1).numpy()


def make_dataset_palette(name: str | Path, k: int, seed: int = 0) -> PaletteReport:
    """Cluster the train pixels of dataset `name` into at most k colours; store them in its
    dataset.json ("palette") and a swatch data/NAME/palette.png. Returns the report."""
    report = quantise_images(train_pixels(name), k, seed)
    folder = dataset_dir(name)
    meta = read_meta(folder)
    meta["palette"] = {**asdict(report), "seed": seed, "split": "train", "space": "oklab"}
    write_json(folder / "dataset.json", meta)
    save_png(swatch(report.colours), folder / "palette.png")
    return report


def dataset_palette(meta: dict, k: int, name: str = "the dataset") -> np.ndarray:
    """The palette stored in a dataset's metadata (dataset.json) -> (K', 3) uint8, K' <= k.
    It must have been made for the same k, so the config says which palette a model drew from."""
    stored = meta.get("palette")
    fix = f"`python -m heroportraits palette {name} --k {k}`"
    if not stored:
        raise PaletteError(f"{name} has no palette (model.palette_source=dataset needs one); make it with {fix}")
    if int(stored["k"]) != k:
        raise PaletteError(
            f"{name}'s palette was made with k={stored['k']} but model.palette_k={k}; "
            f"remake it with {fix} or set model.palette_k={stored['k']}"
        )
    return np.asarray(stored["colours"], np.uint8)
