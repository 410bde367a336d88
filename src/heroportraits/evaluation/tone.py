"""Global tone per palette label: does palette conditioning hold a portrait's tone?

The study this project descends from wrote "palette categories influence global tone: without
palette conditioning, hues drift more freely". Three numbers put that claim to the test:

    tone spread   every portrait gets one mean hue (the circular mean of its pixels' hues, each
                  pixel weighted by its chroma, so greys do not count) and one mean lightness
                  (HSL, 0-1). Within each palette label, the spread of those over the portraits:
                  the circular standard deviation of the hues in degrees (each portrait weighted
                  by its mean chroma: a grey portrait's hue means little) and the standard
                  deviation of the lightness. Real VAL portraits are grouped by their true label,
                  generated ones by the label they were conditioned on. A model without palette
                  conditioning never sees that label (it is drawn with the rest of the condition
                  from the training mix), so its spread is that of whatever palettes it draws.
    palette accuracy   `cond_acc.palette` of scores.evaluate_images: the judge reads the
                  palette that was asked for.
    drift         total variation distance between the palettes the judge reads in the generated
                  portraits and in real VAL: 0 = the same mix of palettes, 1 = no palette in common.

All of it is numpy on uint8 images (N, H, W, 3); `palette_tone` adds the real side from the
dataset's evaluation reference (judge, VAL split).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from heroportraits.data.palette_labels import rgb_to_hsv
from heroportraits.evaluation.scores import reference

MIN_PER_LABEL = 5  # fewer portraits with one label than this: no spread for that label
PALETTE = "palette"  # the attribute whose tone is measured


def portrait_tones(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per portrait: mean hue in degrees [0, 360), mean chroma and mean HSL lightness (0-1), each (N,)."""
    rgb = np.asarray(images, np.float32) / 255.0  # (N, H, W, 3)
    hue, chroma, value = rgb_to_hsv(rgb)  # (N, H, W) each
    rad = np.deg2rad(hue)
    c, s = (chroma * np.cos(rad)).sum((1, 2)), (chroma * np.sin(rad)).sum((1, 2))
    return {
        "hue": np.rad2deg(np.arctan2(s, c)) % 360.0,
        "chroma": chroma.mean((1, 2)),
        "lightness": (value - chroma / 2).mean((1, 2)),  # HSL L = (max + min) / 2
    }


def circular_std_deg(angles: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted circular standard deviation sqrt(-2 ln R) in degrees, R = |weighted mean of unit vectors|.

    0 when all angles agree; 350 and 10 degrees are 20 degrees apart, not 340.
    """
    rad = np.deg2rad(np.asarray(angles, np.float64))
    w = np.ones_like(rad) if weights is None else np.asarray(weights, np.float64)
    if len(rad) == 0 or w.sum() <= 0:
        return float("nan")
    r = np.hypot((w * np.cos(rad)).sum(), (w * np.sin(rad)).sum()) / w.sum()
    return float(np.rad2deg(np.sqrt(-2.0 * np.log(np.clip(r, 1e-12, 1.0)))))


def tone_spread(images: np.ndarray, labels: Sequence[str]) -> dict[str, dict]:
    """Per label: {"hue_spread" (degrees), "lightness_spread", "n"}; None spreads below MIN_PER_LABEL portraits."""
    tones = portrait_tones(images)
    labels = np.asarray(list(labels))
    out = {}
    for value in dict.fromkeys(labels.tolist()):
        pick = labels == value
        enough = pick.sum() >= MIN_PER_LABEL
        out[value] = {
            "hue_spread": circular_std_deg(tones["hue"][pick], tones["chroma"][pick]) if enough else None,
            "lightness_spread": float(tones["lightness"][pick].std(ddof=1)) if enough else None,
            "n": int(pick.sum()),
        }
    return out


def shares(labels: Sequence[str], values: Sequence[str]) -> dict[str, float]:
    """Share of each value among `labels` (0 for values that never occur)."""
    labels = list(labels)
    return {v: labels.count(v) / max(len(labels), 1) for v in values}


def total_variation(a: dict[str, float], b: dict[str, float]) -> float:
    """Total variation distance 0.5 * sum |a_v - b_v| of two distributions over the same values, in [0, 1]."""
    return 0.5 * sum(abs(a.get(v, 0.0) - b.get(v, 0.0)) for v in set(a) | set(b))


def compare_spreads(generated: dict[str, dict], real: dict[str, dict]) -> dict:
    """Mean spreads over the labels both sides have enough portraits of, plus the per-label table."""
    both = [v for v in real if real[v]["hue_spread"] is not None and (generated.get(v) or {}).get("hue_spread")]
    out: dict = {}
    for key in ("hue_spread", "lightness_spread"):
        out[key] = float(np.mean([generated[v][key] for v in both])) if both else None
        out[f"{key}_real"] = float(np.mean([real[v][key] for v in both])) if both else None
    out["per_label"] = {
        v: {
            "hue_spread": (generated.get(v) or {}).get("hue_spread"),
            "hue_spread_real": real[v]["hue_spread"],
            "lightness_spread": (generated.get(v) or {}).get("lightness_spread"),
            "lightness_spread_real": real[v]["lightness_spread"],
            "n": (generated.get(v) or {}).get("n", 0),
            "n_real": real[v]["n"],
        }
        for v in real
    }
    return out


def palette_tone(
    images: np.ndarray, label_rows: list[dict], dataset_name: str, attribute: str = PALETTE
) -> dict | None:
    """Tone spread (generated vs real VAL) and palette drift for portraits conditioned on `label_rows`.

    None when the dataset has no `attribute`. Rows whose palette is unspecified count in the
    drift but not in any label's spread.
    """
    ref = reference(dataset_name, progress=False)
    if attribute not in ref.vocab.attributes:
        return None
    a, values = ref.vocab.names.index(attribute), ref.vocab.attributes[attribute]
    real_labels = [values[i] for i in ref.val_labels[:, a]]
    gen_labels = [str(r.get(attribute, "any")) for r in label_rows]
    out = compare_spreads(tone_spread(images, gen_labels), tone_spread(ref.val_images, real_labels))
    read_gen = [values[i] for i in ref.judge.predict(images)[:, a]]
    read_real = [values[i] for i in ref.judge.predict(ref.val_images)[:, a]]
    gen_share, real_share = shares(read_gen, values), shares(read_real, values)
    out["drift"] = total_variation(gen_share, real_share)
    out["share"] = {v: {"generated": gen_share[v], "real": real_share[v]} for v in values}
    return out
