"""Tone consistency per palette label (evaluation/tone.py): hand-computed values, and the real
side of a dataset against generated portraits with right and with scrambled palettes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import synthetic_blocks_dataset

from heroportraits.data.dataset import load_dataset
from heroportraits.evaluation import tone as T
from heroportraits.evaluation.judge import JudgeConfig, load_or_train_judge


def solid(rgb, n=1, size=8):
    return np.tile(np.array(rgb, np.uint8), (n, size, size, 1))


def test_portrait_tones_of_solid_colours():
    images = np.concatenate([solid((255, 0, 0)), solid((0, 0, 255)), solid((128, 128, 128)), solid((0, 255, 0))])
    t = T.portrait_tones(images)
    assert t["hue"][0] == pytest.approx(0.0, abs=1e-3) or t["hue"][0] == pytest.approx(360.0, abs=1e-3)
    assert t["hue"][1] == pytest.approx(240.0, abs=1e-3)
    assert t["hue"][3] == pytest.approx(120.0, abs=1e-3)
    assert t["chroma"].tolist() == pytest.approx([1.0, 1.0, 0.0, 1.0])
    # HSL lightness (max + min) / 2: pure colours 0.5, mid grey 128/255
    assert t["lightness"].tolist() == pytest.approx([0.5, 0.5, 128 / 255, 0.5], abs=1e-6)


def test_portrait_hue_is_chroma_weighted_circular_mean():
    img = np.zeros((1, 2, 2, 3), np.uint8)
    img[0, 0, :] = (255, 0, 42)  # hue 350.1, chroma 1
    img[0, 1, :] = (255, 42, 0)  # hue 9.9, chroma 1
    assert T.portrait_tones(img)["hue"][0] % 360 == pytest.approx(0.0, abs=1e-3)  # not 180
    img[0, 1, :] = (140, 128, 128)  # a near-grey pixel (hue 0, chroma 12/255) barely moves it
    hue_a, c_b = math.radians(360 - 42 / 255 * 60), 12 / 255
    expected = math.degrees(math.atan2(math.sin(hue_a), math.cos(hue_a) + c_b)) % 360  # 350.56, unweighted 355
    assert T.portrait_tones(img)["hue"][0] == pytest.approx(expected, abs=1e-3)


def test_circular_std_by_hand():
    assert T.circular_std_deg([30, 30, 30]) == pytest.approx(0.0, abs=1e-5)
    # 350 and 10: R = cos(10 deg), std = sqrt(-2 ln cos 10 deg) rad
    expected = math.degrees(math.sqrt(-2 * math.log(math.cos(math.radians(10)))))
    assert T.circular_std_deg([350, 10]) == pytest.approx(expected)
    assert expected < 11  # wraps: 20 degrees apart, not 340
    # weights: a zero-weight outlier does not count
    assert T.circular_std_deg([30, 30, 200], [1, 1, 0]) == pytest.approx(0.0, abs=1e-5)
    assert T.circular_std_deg([0, 180]) > 300  # opposite hues: R = 0, maximal spread


def test_tone_spread_groups_by_label_and_needs_enough_portraits():
    reds = solid((250, 20, 20), 6)
    mixed = np.concatenate([solid((250, 20, 20), 3), solid((20, 20, 250), 3)])
    few = solid((20, 250, 20), T.MIN_PER_LABEL - 1)
    spread = T.tone_spread(np.concatenate([reds, mixed, few]), ["warm"] * 6 + ["cool"] * 6 + ["dark"] * len(few))
    assert spread["warm"]["hue_spread"] == pytest.approx(0.0, abs=1e-4)
    assert spread["warm"]["lightness_spread"] == pytest.approx(0.0, abs=1e-6)
    # red (0) and blue (240) half each: R = cos(60 deg) = 0.5
    assert spread["cool"]["hue_spread"] == pytest.approx(math.degrees(math.sqrt(-2 * math.log(0.5))), abs=1e-3)
    assert spread["dark"] == {"hue_spread": None, "lightness_spread": None, "n": len(few)}


def test_shares_and_total_variation_by_hand():
    a = T.shares(["warm", "warm", "cool", "dark"], ["warm", "cool", "dark", "muted"])
    assert a == {"warm": 0.5, "cool": 0.25, "dark": 0.25, "muted": 0.0}
    b = {"warm": 0.25, "cool": 0.25, "dark": 0.0, "muted": 0.5}
    assert T.total_variation(a, b) == pytest.approx(0.5 * (0.25 + 0 + 0.25 + 0.5))
    assert T.total_variation(a, a) == 0.0


def test_palette_tone_real_vs_scrambled_palettes(project_root, one_thread):
    toy_dataset = synthetic_blocks_dataset(project_root, name="toy400", n=400).name  # 10 VAL portraits per palette
    load_or_train_judge(toy_dataset, JudgeConfig(width=8, feature_dim=32, epochs=4, batch_size=32), progress=False)
    val = load_dataset(toy_dataset, "val")
    images = val.images.permute(0, 2, 3, 1).numpy()
    rows = [val.vocab.decode(r) for r in val.labels.tolist()]
    same = T.palette_tone(images, rows, toy_dataset)
    assert same["hue_spread"] == pytest.approx(same["hue_spread_real"])
    assert same["lightness_spread"] == pytest.approx(same["lightness_spread_real"])
    assert same["drift"] == 0.0
    # The same portraits under scrambled palette labels: each label now holds every tone.
    order = np.random.default_rng(0).permutation(len(rows))
    scrambled = [{**r, "palette": rows[i]["palette"]} for r, i in zip(rows, order)]
    worse = T.palette_tone(images, scrambled, toy_dataset)
    assert worse["hue_spread"] > 3 * same["hue_spread"] + 5
    assert worse["lightness_spread"] > 2 * same["lightness_spread"]
    assert worse["drift"] == 0.0  # the same images: the judge reads the same palette mix
    # Only warm portraits: the palette mix drifts away from the real one.
    warm = [i for i, r in enumerate(rows) if r["palette"] == "warm"]
    assert T.palette_tone(images[warm], [rows[i] for i in warm], toy_dataset)["drift"] > 0.5
