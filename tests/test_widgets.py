"""The interactive sampler's logic, without a browser: choices -> grid, save, the widget box, fallback."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from heroportraits.sampling.sampler import Sampler
from heroportraits.sampling.widgets import attribute_choices, render_choices, sampler_panel, save_shown, show_sampler

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


@pytest.fixture
def sampler(smoke_checkpoint):
    return Sampler.from_checkpoint(smoke_checkpoint())


def test_choices_offer_any_then_every_value(sampler):
    choices = attribute_choices(sampler)
    assert list(choices) == ["gender", "hero_class", "palette"]
    assert choices["palette"] == ["any", "warm", "cool", "dark", "neutral", "muted"]


def test_render_follows_the_choices_and_the_seed(sampler):
    shown = render_choices(sampler, {"gender": "any", "hero_class": "mage", "palette": "cool"}, seed=3, count=5)
    assert shown.images.shape == (5, 64, 64, 3)
    assert all(r["hero_class"] == "mage" and r["palette"] == "cool" for r in shown.rows)
    assert shown.grid.shape == (2 * (2 * 66 + 2), 2 * (3 * 66 + 2), 3)  # 3 per row, 2 rows, shown at 2x
    again = render_choices(sampler, {"hero_class": "mage", "palette": "cool"}, seed=3, count=5)
    assert np.array_equal(again.images, shown.images)  # "any" = left open
    other = render_choices(sampler, {"hero_class": "mage", "palette": "cool"}, seed=4, count=5)
    assert not np.array_equal(other.images, shown.images)


def test_save_writes_a_new_folder_each_time(sampler, tmp_path):
    shown = render_choices(sampler, {"hero_class": "rogue"}, seed=0, count=3)
    first = save_shown(shown, tmp_path, sampler.vocab.names)
    second = save_shown(shown, tmp_path, sampler.vocab.names)
    assert (first.name, second.name) == ("picked_000", "picked_001")
    labels = pd.read_csv(second / "labels.csv")
    assert list(labels.columns) == ["file", "gender", "hero_class", "palette"]
    assert (labels["hero_class"] == "rogue").all() and len(labels) == 3
    assert np.array_equal(np.asarray(Image.open(second / labels["file"][0])), shown.images[0])


def test_panel_redraws_on_change_and_saves_what_it_shows(sampler, tmp_path):
    panel = sampler_panel(sampler, tmp_path, count=4)
    dropdowns = panel.children[0].children
    seed_box, count_slider, palette_box = panel.children[1].children
    picture, (button, status) = panel.children[2], panel.children[3].children
    before = picture.value
    dropdowns[1].value = "cavalry"
    assert all(r["hero_class"] == "cavalry" for r in panel.state["shown"].rows)
    assert picture.value != before
    count_slider.value = 2
    seed_box.value = 9
    assert len(panel.state["shown"].images) == 2 and panel.state["shown"].seed == 9
    button.click()
    assert "saved 2 portraits" in status.value
    assert len(list((tmp_path / "picked_000").glob("*.png"))) == 2
    palette_box.value = "#000000,#ffffff"  # this model draws unquantised: said in the status line, nothing raised
    assert "--rgb-colours" in status.value and len(panel.state["shown"].images) == 2


def test_the_panel_draws_in_the_palette_typed_into_it(smoke_checkpoint, tmp_path):
    panel = sampler_panel(Sampler.from_checkpoint(smoke_checkpoint(**{"draw.rgb_colours": 6})), tmp_path, count=3)
    panel.children[1].children[2].value = "#1a1c2c,#f4f4f4,#b13e53"
    pixels = {tuple(p) for p in panel.state["shown"].images.reshape(-1, 3).tolist()}
    assert pixels <= {(26, 28, 44), (244, 244, 244), (177, 62, 83)}


def test_without_ipywidgets_one_static_grid(sampler, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # `import ipywidgets` now fails
    shown = show_sampler(sampler, tmp_path, count=4)
    assert shown.images.shape == (4, 64, 64, 3)
    assert "ipywidgets is not installed" in capsys.readouterr().out


def test_a_model_with_ds_classifier_gets_a_refine_slider(smoke_checkpoint, tmp_path):
    guided = Sampler.from_checkpoint(smoke_checkpoint(**{"model.d_cond": "projection", "model.d_classify": 1.0}))
    panel = sampler_panel(guided, tmp_path, count=4)
    seed_box, count_slider, refine_slider, palette_box = panel.children[1].children
    assert (refine_slider.description, refine_slider.value) == ("refine", 0)  # the sampler's own setting
    plain = panel.state["shown"].images
    refine_slider.value = 3
    shown = panel.state["shown"]
    assert shown.refine == 3 and not np.array_equal(shown.images, plain)
    assert np.array_equal(shown.images, render_choices(guided, {}, seed=0, count=4, refine=3).images)
    assert guided.drawing.refine_steps == 0  # the sampler keeps its own setting for the notebook's other cells
    assert render_choices(guided, {}, seed=0, count=4).refine == 0
