"""Automatic palette labelling from colour statistics.

Used when a dataset has no palette column (and always for LPC art): an image is
`dark`, `neutral`, `muted`, `warm` or `cool` by the brightness, saturation and hue
of its pixels. Rules, not a model, so the label is explainable and needs no training.

The palettes, as the rules read them:
    dark     low brightness overall
    neutral  greys, whites, beige: almost no colour
    muted    desaturated mid-tones: some colour, but dusty
    warm     saturated reds, oranges, yellows
    cool     saturated blues, teals, purples, greens
A painted backdrop is part of a portrait's palette and counts. The fill that
transparency was flattened onto (`backdrop`, black by default as in prepare) is not
the artist's colour, so where it frames the image it is left out of the statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from heroportraits.data.attributes import PALETTES


@dataclass(frozen=True)
class PaletteRules:
    """Thresholds of the rules (brightness and saturation on a 0-1 scale; hues in degrees).

    Placed between the ranges the definitions imply (grey/beige below ~0.16 saturation,
    dusty colours below ~0.4, vivid above); checked against the procedural portraits'
    own palette labels (notebook 01 prints the agreement) and tests/test_palette.py.
    """

    dark_brightness: float = 0.30  # median value (max channel) below this -> dark
    lit_value: float = 0.30  # saturation is read only from pixels at least this bright
    neutral_saturation: float = 0.165  # median saturation of lit pixels below this -> neutral
    muted_saturation: float = 0.42  # below this (and not neutral) -> muted; above: warm or cool
    warm_hues: tuple[float, float] = (330.0, 70.0)  # hue arc counted as warm (wraps through 0)
    warm_share: float = 0.5  # share of the colour weight in the warm arc -> warm, else cool
    background_share: float = 0.5  # border share the backdrop colour needs before it is ignored
    background_tolerance: int = 12  # max channel difference to the backdrop colour (0-255)


DEFAULT_RULES = PaletteRules()


@dataclass
class PaletteAgreement:
    """How often automatic labels match given ones; confusion[i][j] = given i, automatic j."""

    values: list[str]
    accuracy: float
    n: int
    confusion: list[list[int]] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"values": self.values, "accuracy": self.accuracy, "n": self.n, "confusion": self.confusion}

    def frame(self) -> pd.DataFrame:
        """The confusion matrix: rows are the given labels, columns the automatic ones."""
        index = pd.Index(self.values, name="given")
        return pd.DataFrame(self.confusion, index=index, columns=pd.Index(self.values, name="automatic"))

    def table(self) -> str:
        head = f"palette agreement: {self.accuracy:.1%} of {self.n} images (rows: given, columns: automatic)"
        return head + "\n" + self.frame().to_string()


def rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(..., 3) float in [0, 1] -> hue in degrees [0, 360), chroma and value, each (...)."""
    mx, mn = rgb.max(-1), rgb.min(-1)
    chroma = mx - mn
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) * 60.0
    return hue, chroma, mx


def foreground_mask(
    img: np.ndarray,
    backdrop: tuple[int, int, int] | None = (0, 0, 0),
    rules: PaletteRules = DEFAULT_RULES,
    cell: int = 1,
) -> np.ndarray:
    """(H / cell, W / cell) bool: pixels of the image's `cell`-pixel grid (see palette_features) that are not the
    flattened-transparency fill (all True if it does not frame the image)."""
    grid = img[::cell, ::cell]
    everything = np.ones(grid.shape[:2], bool)
    if backdrop is None:
        return everything
    bg = np.asarray(backdrop, np.int32)
    border = np.concatenate([img[0], img[-1], img[1:-1, 0], img[1:-1, -1]]).astype(np.int32)  # (B, 3): full size
    if (np.abs(border - bg).max(1) <= rules.background_tolerance).mean() < rules.background_share:
        return everything
    mask = np.abs(grid.astype(np.int32) - bg).max(-1) > rules.background_tolerance
    # Almost nothing but backdrop (a black image): judge the whole image instead.
    return mask if mask.mean() >= 0.1 else everything


def palette_features(
    img: np.ndarray,
    backdrop: tuple[int, int, int] | None = (0, 0, 0),
    rules: PaletteRules = DEFAULT_RULES,
    cell: int = 1,
) -> dict[str, float]:
    """Brightness, saturation and warm share: the numbers a label is decided from.

    Medians, not means: a face, an outline or a gem is a minority of the pixels and
    should not move a portrait into another palette. Saturation is read from lit
    pixels only, since the hue of a near-black outline or shadow is noise.

    `cell`: the image is its native grid upscaled `cell` times by whole pixels (what a sampler draws), so one pixel
    a cell is read: each colour repeated cell^2 times has the same medians and shares, for cell^2 fewer pixels
    (the border that tells the backdrop is read at full size, as it weighs corners).
    """
    mask = foreground_mask(img, backdrop, rules, cell)
    rgb = img[::cell, ::cell][mask].astype(np.float32) / 255.0  # (P, 3)
    hue, chroma, val = rgb_to_hsv(rgb)
    sat = chroma / np.maximum(val, 1e-6)
    lit = val >= rules.lit_value
    lo, hi = rules.warm_hues
    warm = (hue >= lo) | (hue < hi) if lo > hi else (hue >= lo) & (hue < hi)
    weight = chroma**2  # strong colours decide the hue; greys carry none
    total = weight.sum()
    return {
        "brightness": float(np.median(val)),
        "saturation": float(np.median(sat[lit])) if lit.any() else 0.0,
        "warm_share": float(weight[warm].sum() / total) if total > 0 else 0.5,
        "foreground": float(len(rgb) / mask.size),
    }


def label_from_features(f: dict[str, float], rules: PaletteRules = DEFAULT_RULES) -> str:
    if f["brightness"] < rules.dark_brightness:
        return "dark"
    if f["saturation"] < rules.neutral_saturation:
        return "neutral"
    if f["saturation"] < rules.muted_saturation:
        return "muted"
    return "warm" if f["warm_share"] >= rules.warm_share else "cool"


def label_palette(
    img: np.ndarray,
    backdrop: tuple[int, int, int] | None = (0, 0, 0),
    rules: PaletteRules = DEFAULT_RULES,
    cell: int = 1,
) -> str:
    """One of PALETTES for an (H, W, 3) uint8 image; `backdrop` is the transparency fill to ignore; `cell` as in
    palette_features."""
    return label_from_features(palette_features(img, backdrop, rules, cell), rules)


def rules_reading(meta: dict) -> dict:
    """How the rules read a dataset (its dataset.json): the backdrop its sources were flattened onto, and whether its
    palette labels ARE the rules' reading (LPC, a folder without a palette column) or were given with the data."""
    prepared, parameters = meta.get("prepared") or {}, meta.get("parameters") or {}
    backdrop = (parameters.get("prepare") or {}).get("background", [0, 0, 0])
    return {"backdrop": [int(c) for c in backdrop], "labels_by_rules": "palette" in prepared.get("auto_attributes", [])}


def palette_check_refusal(rounds: int, dataset: str, rules: dict | None, conditioned: bool) -> str | None:
    """The one line refusing the palette check (draw.palette_check, sampling/palette_check.py) for this dataset and
    model, or None where it applies: a model without palette conditioning, a dataset whose labels are unknown here,
    or labels given with the data (the check would draw the rules' palettes instead of the data's own)."""
    if not rounds:
        return None
    if not conditioned:
        why = "and this model was trained without palette: leave it out"
    elif rules is None:
        why = (
            f"so it needs to know how {dataset!r}'s palette labels were made; this checkpoint is older than that "
            "record and the dataset is not here: build the dataset here, or leave it out"
        )
    elif not rules["labels_by_rules"]:
        why = (
            f"and {dataset!r}'s palette labels came with the data, not from those rules, so it would draw the rules' "
            "palettes instead of yours: leave it out"
        )
    else:
        return None
    option = f"draw.palette_check={rounds} (--palette-check {rounds})"
    return f"{option} redraws portraits the palette rules read off their asked palette, {why}"


def off_palette(
    images: np.ndarray, asked: np.ndarray, values: list[str], backdrop=(0, 0, 0), cell: int = 1
) -> np.ndarray:
    """(N,) bool: portraits (N, H, W, 3+) whose asked palette (index into `values`; len(values) and above = open,
    never off) is not the one the rules read (`cell`: as in palette_features)."""
    off = np.zeros(len(images), bool)
    for i in np.flatnonzero(np.asarray(asked) < len(values)):
        off[i] = label_palette(np.asarray(images[i])[..., :3], tuple(backdrop), cell=cell) != values[int(asked[i])]
    return off


def agreement(given: list[str], automatic: list[str], values: list[str] | None = None) -> PaletteAgreement:
    """Accuracy and confusion matrix of automatic labels against given ones."""
    values = list(values or PALETTES)
    for v in sorted(set(given) | set(automatic)):
        if v not in values:
            values.append(v)
    index = {v: i for i, v in enumerate(values)}
    confusion = np.zeros((len(values), len(values)), np.int64)
    for g, a in zip(given, automatic):
        confusion[index[g], index[a]] += 1
    n = int(confusion.sum())
    acc = float(np.trace(confusion) / n) if n else float("nan")
    return PaletteAgreement(values, acc, n, confusion.tolist())
