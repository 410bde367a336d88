"""Transparent backgrounds for RGB portraits: the flood fill from the border cuts flat and graded backgrounds,
never an enclosed region, and keeps a figure that touches the edge."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from heroportraits.cli import main as cli_main
from heroportraits.data.dataset import read_labels_csv
from heroportraits.data.procedural import portrait_at
from heroportraits.sampling.transparency import background_mask, cut_backgrounds, is_clean, without_specks

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


def figure_on(background: np.ndarray) -> np.ndarray:
    """A 16x16 native image: a dark-outlined orange figure with shoulders at the bottom edge, on `background`."""
    img = background.copy()
    img[3:13, 4:12] = (30, 20, 20)  # outline
    img[4:12, 5:11] = (230, 140, 60)  # face
    img[12:16, 2:14] = (30, 20, 20)  # shoulders down to the bottom edge
    return img


def test_a_flat_background_is_cut_and_the_figure_kept_to_the_edge():
    img = figure_on(np.full((16, 16, 3), (90, 120, 200), np.uint8))
    bg = background_mask(img)
    assert bg[0].all() and bg[:, 0].all() and not bg[4:12, 5:11].any()
    assert not bg[15, 2:14].any()  # the shoulders touch the edge and stay
    assert is_clean(bg)


def test_a_graded_background_is_cut_whole():
    rows = np.linspace(40, 160, 16).astype(np.uint8)  # a vertical gradient, 8 levels a row
    grad = np.stack([rows[:, None].repeat(16, 1), rows[:, None].repeat(16, 1), np.full((16, 16), 180)], -1)
    img = figure_on(grad.astype(np.uint8))
    bg = background_mask(img)
    assert bg[:3].all() and not bg[4:12, 5:11].any()


def test_an_enclosed_region_of_the_background_colour_is_never_cut():
    blue = np.array((90, 120, 200), np.uint8)
    img = figure_on(np.full((16, 16, 3), blue, np.uint8))
    img[6:9, 6:9] = blue  # a hole in the face, the background's very colour
    img[6, 7] = (10, 10, 10)  # a one-pixel eye inside the hole: enclosed, so not a speck
    bg = without_specks(background_mask(img))
    assert not bg[6:9, 6:9].any()


def test_specks_standing_alone_in_the_background_are_cut_with_it():
    img = figure_on(np.full((16, 16, 3), (90, 120, 200), np.uint8))
    img[1, 1] = img[1, 14] = (250, 250, 250)  # the background's dither
    img[0:6, 14] = (200, 180, 60)  # a banner pole: more than a speck, stands apart from the figure
    bg = without_specks(background_mask(img))
    assert bg[1, 1] and not bg[0:6, 14].any() and not bg[4:12, 5:11].any()
    assert is_clean(bg)  # the pole is a small share of the figure


def test_portraits_get_binary_alpha_on_the_native_grid_and_a_cleanliness_flag():
    images = np.stack([portrait_at(i, seed=5)[0] for i in range(12)])
    rgba, clean = cut_backgrounds(images, native_scale=2)
    assert rgba.shape == (12, 64, 64, 4) and set(np.unique(rgba[..., 3])) <= {0, 255}
    assert np.array_equal(rgba[..., :3], images)
    assert (rgba[:, ::2, ::2, 3] == rgba[:, 1::2, 1::2, 3]).all()  # whole native pixels
    assert clean.dtype == bool and clean.mean() >= 0.5  # most built-in backgrounds cut cleanly


def test_sample_transparent_writes_rgba_pngs_and_says_how_many_were_clean(smoke_checkpoint, tmp_path, capsys):
    out = tmp_path / "cut"
    assert cli_main(["sample", str(smoke_checkpoint()), "--n", "4", "--transparent", "--out", str(out)]) == 0
    assert "background cut cleanly in" in capsys.readouterr().out
    png = np.asarray(Image.open(out / "00000.png"))
    assert png.shape == (64, 64, 4) and set(np.unique(png[..., 3])) <= {0, 255}
    assert {r["background_cut"] for r in read_labels_csv(out / "labels.csv")} <= {"clean", "rough"}
