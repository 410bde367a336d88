"""The dataset palette: OKLab conversions, recovering known palettes, a hand-computable error
report, and the `palette` verb storing it with a dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from heroportraits.cli import main as cli_main
from heroportraits.data.dataset import load_dataset
from heroportraits.data.oklab import delta_e, oklab_to_rgb, rgb_to_oklab
from heroportraits.data.palette_quantise import (
    PaletteError,
    apply_palette,
    colour_counts,
    dataset_palette,
    quantise_images,
)

KNOWN = np.array([[20, 20, 30], [200, 40, 40], [40, 170, 60], [50, 70, 210], [230, 210, 40], [245, 245, 240]], np.uint8)


def test_oklab_reference_values_and_round_trip():
    # Ottosson's reference: white is L=1, a=b=0; black is 0; pure sRGB red is (0.628, 0.225, 0.126).
    assert rgb_to_oklab(np.array([255, 255, 255])) == pytest.approx([1.0, 0.0, 0.0], abs=1e-4)
    assert rgb_to_oklab(np.array([0, 0, 0])) == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    assert rgb_to_oklab(np.array([255, 0, 0])) == pytest.approx([0.62796, 0.22486, 0.12585], abs=1e-4)
    rgb = np.random.default_rng(0).integers(0, 256, (5000, 3)).astype(np.uint8)
    assert np.array_equal(oklab_to_rgb(rgb_to_oklab(rgb)), rgb)
    assert delta_e(np.array([0, 0, 0]), np.array([255, 255, 255])) == pytest.approx(100.0, abs=0.01)


def _images_from(palette: np.ndarray, n: int = 12, size: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return palette[rng.integers(0, len(palette), (n, size, size))]  # (n, size, size, 3)


def test_a_palette_of_exactly_k_colours_is_recovered_exactly():
    report = quantise_images(_images_from(KNOWN), k=len(KNOWN))
    assert sorted(map(tuple, report.colours)) == sorted(map(tuple, KNOWN.tolist()))
    assert report.mean_delta_e == 0 and report.max_delta_e == 0 and report.exact_share == 1.0
    assert sum(report.counts) == report.pixels == 12 * 64
    # Asked for more than the data has: every colour, no invented ones ("at most K").
    assert len(quantise_images(_images_from(KNOWN), k=32).colours) == len(KNOWN)


def test_a_known_palette_is_recovered_from_jittered_pixels():
    """Every pixel its palette colour +-3 per channel: 6 clusters, each snapped to a member near the true colour."""
    rng = np.random.default_rng(1)
    images = _images_from(KNOWN, n=40).astype(int) + rng.integers(-3, 4, (40, 8, 8, 3))
    images = np.clip(images, 0, 255).astype(np.uint8)
    report = quantise_images(images, k=len(KNOWN))
    got = np.array(report.colours, np.uint8)
    assert len(got) == len(KNOWN)
    for colour in KNOWN:  # each known colour has its own palette entry close by (jitter alone is < ~3 dE)
        assert delta_e(got, colour).min() < 3.0
    assert report.max_delta_e < 6.0 and report.exact_share < 0.5


def test_error_report_is_the_hand_computed_one():
    """Colours A x 5, B x 3, B' (B + 1 red) x 1 with k=2: B' joins B's cluster, whose member nearest
    the count-weighted centre is B. So one pixel of nine is off, by dE(B, B')."""
    a, b, b2 = [10, 200, 10], [200, 30, 30], [201, 30, 30]
    image = np.array([[a] * 5 + [b] * 3 + [b2]], np.uint8)  # (1, 9, 3)
    report = quantise_images(image[None], k=2)
    assert sorted(report.colours) == sorted([a, b])
    off = float(delta_e(np.array(b, np.uint8), np.array(b2, np.uint8)))
    assert off > 0
    assert report.max_delta_e == pytest.approx(off)
    assert report.mean_delta_e == pytest.approx(off / 9)
    assert report.exact_share == pytest.approx(8 / 9)
    assert sorted(report.counts) == [4, 5]
    # Quantising with that palette moves B' onto B and nothing else.
    out = apply_palette(image, np.array(report.colours))
    assert out[0, :8].tolist() == image[0, :8].tolist() and out[0, 8].tolist() == b


def test_colour_counts_counts_pixels():
    colours, counts = colour_counts(np.array([[[1, 2, 3], [1, 2, 3], [0, 0, 9]]], np.uint8))
    assert colours.tolist() == [[0, 0, 9], [1, 2, 3]] and counts.tolist() == [1, 2]


def test_palette_verb_stores_the_palette_with_the_dataset(toy_dataset, project_root, capsys):
    assert cli_main(["palette", toy_dataset, "--k", "4"]) == 0
    out = capsys.readouterr().out
    assert "4 colours" in out and "kept exactly" in out
    folder = project_root / "data" / toy_dataset
    meta = json.loads((folder / "dataset.json").read_text())
    stored = meta["palette"]
    assert stored["k"] == 4 and len(stored["colours"]) == 4 and stored["split"] == "train"
    assert 0 < stored["exact_share"] < 1 and stored["mean_delta_e"] > 0
    # Clustered from the train split's native pixels: every palette colour occurs there.
    data = load_dataset(toy_dataset, "train")
    train_colours = {tuple(c) for c in colour_counts(data.images.permute(0, 2, 3, 1).numpy())[0].tolist()}
    assert {tuple(c) for c in stored["colours"]} <= train_colours
    assert stored["pixels"] == len(data) * 32 * 32  # 64x64 stored, native scale 2
    swatch = np.asarray(Image.open(folder / "palette.png"))
    assert {tuple(c) for c in swatch.reshape(-1, 3).tolist()} >= {tuple(c) for c in stored["colours"]}
    # The dataset still loads, and the stored palette is what a model is given.
    assert dataset_palette(load_dataset(toy_dataset).meta, 4).tolist() == stored["colours"]
    with pytest.raises(PaletteError, match="k=4 but model.palette_k=8"):
        dataset_palette(meta, 8, toy_dataset)


def test_missing_palette_names_the_command(toy_dataset, capsys):
    with pytest.raises(PaletteError, match="python -m heroportraits palette toy --k 16"):
        dataset_palette(load_dataset(toy_dataset).meta, 16, toy_dataset)
