"""Drawing in the user's palette: palette files read or refused in one line, colours assigned so distinct ones stay
distinct, every output pixel a palette colour, dithering, the exported file and evaluate's cost line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from heroportraits.data.palette_files import PaletteFileError, read_palette
from heroportraits.models.palette_output import assign_palette, dither_to_palette, in_user_palette, unit_delta_e
from heroportraits.sampling.sampler import Sampler
from heroportraits.training.config import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread

SWEETIE = ["1a1c2c", "5d275d", "b13e53", "ef7d57", "ffcd75", "a7f070", "38b764", "257179"]


def unit(rgb) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float32) / 127.5 - 1.0


def test_palette_files_of_each_kind_are_read_in_their_order(tmp_path):
    (tmp_path / "p.hex").write_text("\n".join(SWEETIE[:4]) + "\n\n")
    (tmp_path / "p.gpl").write_text("GIMP Palette\nName: four\nColumns: 4\n# a comment\n26 28 44 ink\n93 39 93\n")
    swatch = np.array([[[26, 28, 44], [93, 39, 93]], [[26, 28, 44], [177, 62, 83]]], np.uint8)
    Image.fromarray(swatch).save(tmp_path / "p.png")
    assert read_palette(tmp_path / "p.hex").tolist() == [[26, 28, 44], [93, 39, 93], [177, 62, 83], [239, 125, 87]]
    assert read_palette(tmp_path / "p.gpl").tolist() == [[26, 28, 44], [93, 39, 93]]
    assert read_palette(tmp_path / "p.png").tolist() == [[26, 28, 44], [93, 39, 93], [177, 62, 83]]
    assert read_palette("#1a1c2c, 5d275d,#1a1c2c").tolist() == [[26, 28, 44], [93, 39, 93]]  # duplicates once


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("bad.hex", "1a1c2c\nzz0000\n", r"bad.hex, line 2: 'zz0000' is not a colour"),
        ("bad.gpl", "GIMP Palette\n12 300 4 red\n", r"bad.gpl, line 2: '12 300 4 red' is not a colour"),
        ("bad2.gpl", "JASC-PAL\n", r"bad2.gpl, line 1: a .gpl palette starts with 'GIMP Palette'"),
        ("empty.hex", "\n", r"empty.hex: holds no colours"),
    ],
)
def test_a_bad_palette_file_is_one_line_naming_the_file_and_the_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(PaletteFileError, match=message):
        read_palette(tmp_path / name)


def test_a_missing_file_and_a_bad_list_are_named():
    with pytest.raises(PaletteFileError, match="no such file"):
        read_palette("nowhere.hex")
    with pytest.raises(PaletteFileError, match="colour 2: 'nope' is not a colour"):
        read_palette("#000000,nope")


def test_a_palette_holding_the_portraits_colours_changes_nothing():
    colours = unit([[[26, 28, 44], [177, 62, 83], [255, 205, 117]]])  # (1, 3, 3)
    index = torch.tensor([[[0, 1], [2, 2]]])
    palette = unit([[255, 205, 117], [0, 0, 0], [26, 28, 44], [177, 62, 83]])
    assert torch.equal(assign_palette(colours, index, palette), colours)


def test_distinct_close_colours_stay_distinct_where_the_palette_allows():
    skin = unit([[[200, 150, 120], [203, 153, 123], [197, 147, 117]]])  # three close skin tones
    index = torch.tensor([[[0, 0, 1, 2]]])
    palette = unit([[200, 150, 120], [210, 160, 130], [190, 140, 110], [0, 0, 255]])
    nearest = palette[unit_delta_e(skin, palette).argmin(dim=2)][0]
    assert len({tuple(c.tolist()) for c in nearest}) == 1  # nearest colour alone puts all three on one ...
    out = assign_palette(skin, index, palette)[0]
    assert len({tuple(c.tolist()) for c in out}) == 3  # ... the assignment keeps them three
    two = unit([[0, 0, 0], [255, 255, 255]])
    image = in_user_palette(skin.repeat(1, 1, 1), index, two)
    assert len(torch.unique(image.flatten(2), dim=2)[0].T) <= 2  # a two-colour palette: a two-colour portrait


def test_dithering_mixes_the_two_nearest_palette_colours_in_an_ordered_pattern():
    grey = torch.zeros(1, 3, 8, 8)  # mid grey, half way between black and white
    out = dither_to_palette(grey, unit([[0, 0, 0], [255, 255, 255]]))
    values = out[0, 0].flatten()
    assert set(values.tolist()) == {-1.0, 1.0} and 0.25 < (values > 0).float().mean() < 0.75


def test_every_pixel_sample_draws_is_a_palette_colour_and_export_carries_it(smoke_checkpoint, tmp_path):
    from heroportraits.sampling.export import example_inputs, export_generator, read_metadata, run_exported

    palette = "#1a1c2c,#5d275d,#b13e53,#ef7d57,#ffcd75,#a7f070,#38b764,#257179"
    allowed = {tuple(c) for c in read_palette(palette).tolist()}
    ckpt = smoke_checkpoint(**{"draw.rgb_colours": 6})
    for dither in (False, True):
        sampler = Sampler.from_checkpoint(ckpt, draw={"palette": palette, "dither": dither})
        images, _ = sampler.generate(6, seed=2)
        assert {tuple(p) for p in images.reshape(-1, 3).tolist()} <= allowed, dither
    out = export_generator(ckpt, tmp_path / "g.pt", "torchscript", draw={"palette": palette})
    assert read_metadata(out)["user_palette"] == palette.split(",")
    sampler = Sampler.from_checkpoint(ckpt, draw={"palette": palette})
    noise, labels = example_inputs(sampler, 5, seed=1)
    assert np.array_equal(run_exported(out, noise.numpy(), labels.numpy()), sampler.render(noise, labels))


def test_a_palette_needs_the_portraits_own_colours_and_dither_needs_a_palette(smoke_checkpoint):
    ckpt = smoke_checkpoint()  # an RGB model drawn unquantised
    with pytest.raises(ConfigError, match="add --rgb-colours K"):
        Sampler.from_checkpoint(ckpt, draw={"palette": "#000000,#ffffff"})
    with pytest.raises(ConfigError, match="--dither.*add --palette-file"):
        Sampler.from_checkpoint(ckpt, draw={"dither": True})
