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
A flat backdrop says little about the figure's palette, so the most common border
colour (when the border is mostly one colour) is left out of the statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from heroportraits.attributes import PALETTES


@dataclass(frozen=True)
class PaletteRules:
    """Thresholds of the rules (brightness, chroma on a 0-1 scale; hues in degrees)."""

    dark_brightness: float = 0.30     # mean value (max channel) below this -> dark
    neutral_chroma: float = 0.10      # mean chroma (max - min channel) below this -> neutral
    muted_chroma: float = 0.20        # mean chroma below this (and not neutral) -> muted
    warm_hues: tuple[float, float] = (330.0, 70.0)  # hue arc counted as warm (wraps through 0)
    warm_share: float = 0.5           # share of coloured weight in the warm arc -> warm, else cool
    ignore_background: bool = True    # leave the dominant border colour out of the statistics
    background_share: float = 0.5     # border share a single colour needs to count as backdrop
    background_tolerance: int = 12    # max channel difference to the backdrop colour (0-255)


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

    def table(self) -> str:
        """The confusion matrix as text: rows are the given labels, columns the automatic ones."""
        w = max(8, *(len(v) for v in self.values)) + 1
        lines = [f"palette agreement: {self.accuracy:.1%} of {self.n} images (rows: given, columns: automatic)"]
        lines.append(" " * w + "".join(f"{v:>{w}}" for v in self.values))
        for v, row in zip(self.values, self.confusion):
            lines.append(f"{v:<{w}}" + "".join(f"{c:>{w}}" for c in row))
        return "\n".join(lines)


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P, 3) float in [0, 1] -> hue in degrees [0, 360), chroma and value, each (P,)."""
    mx, mn = rgb.max(1), rgb.min(1)
    chroma = mx - mn
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(
        mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)
    ) * 60.0
    return hue, chroma, mx


def foreground_mask(img: np.ndarray, rules: PaletteRules = DEFAULT_RULES) -> np.ndarray:
    """(H, W) bool: pixels that are not the flat backdrop (all True if there is none)."""
    h, w = img.shape[:2]
    if not rules.ignore_background:
        return np.ones((h, w), bool)
    border = np.concatenate([img[0], img[-1], img[1:-1, 0], img[1:-1, -1]]).astype(np.int32)  # (B, 3)
    packed = (border[:, 0] << 16) | (border[:, 1] << 8) | border[:, 2]
    colours, counts = np.unique(packed, return_counts=True)
    top = colours[counts.argmax()]
    bg = np.array([(top >> 16) & 255, (top >> 8) & 255, top & 255], np.int32)
    near_border = np.abs(border - bg).max(1) <= rules.background_tolerance
    if near_border.mean() < rules.background_share:
        return np.ones((h, w), bool)
    mask = np.abs(img.astype(np.int32) - bg).max(-1) > rules.background_tolerance
    # A figure that is mostly backdrop-coloured: judge the whole image instead.
    return mask if mask.mean() >= 0.1 else np.ones((h, w), bool)


def palette_features(img: np.ndarray, rules: PaletteRules = DEFAULT_RULES) -> dict[str, float]:
    """Brightness, chroma and warm share of the foreground: the numbers a label is decided from."""
    rgb = img[foreground_mask(img, rules)].astype(np.float32) / 255.0  # (P, 3)
    hue, chroma, val = _hsv(rgb)
    lo, hi = rules.warm_hues
    warm = (hue >= lo) | (hue < hi) if lo > hi else (hue >= lo) & (hue < hi)
    weight = chroma**2  # strong colours decide the hue; greys carry none
    total = weight.sum()
    return {
        "brightness": float(val.mean()),
        "chroma": float(chroma.mean()),
        "saturation": float((chroma / np.maximum(val, 1e-6)).mean()),
        "warm_share": float(weight[warm].sum() / total) if total > 0 else 0.5,
        "foreground": float(len(rgb) / (img.shape[0] * img.shape[1])),
    }


def label_from_features(f: dict[str, float], rules: PaletteRules = DEFAULT_RULES) -> str:
    if f["brightness"] < rules.dark_brightness:
        return "dark"
    if f["chroma"] < rules.neutral_chroma:
        return "neutral"
    if f["chroma"] < rules.muted_chroma:
        return "muted"
    return "warm" if f["warm_share"] >= rules.warm_share else "cool"


def label_palette(img: np.ndarray, rules: PaletteRules = DEFAULT_RULES) -> str:
    """One of PALETTES for an (H, W, 3) uint8 image."""
    return label_from_features(palette_features(img, rules), rules)


def label_palettes(images: np.ndarray, rules: PaletteRules = DEFAULT_RULES) -> list[str]:
    """Labels for a batch (N, H, W, 3) uint8."""
    return [label_palette(im, rules) for im in images]


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
