"""Sprite sheets: the atlas JSON's rectangles match the atlas, frames are `sample`'s PNGs, the JSON fits the layout
game engines read."""

from __future__ import annotations

import json

import jsonschema  # installed with jupyter (nbformat validates notebooks with it)
import numpy as np
import pytest
from PIL import Image

from heroportraits.cli import main as cli_main
from heroportraits.sampling.portraits import attribute_grid, write_samples, write_sheet_of
from heroportraits.sampling.sampler import Sampler
from heroportraits.sampling.sheets import SheetError, layout_sheet

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread

RECT = {
    "type": "object",
    "required": ["x", "y", "w", "h"],
    "properties": {k: {"type": "integer", "minimum": 0} for k in "xywh"},
}
# The texture-atlas "hash" layout of TexturePacker, read by Phaser (load.atlas) and PixiJS (Spritesheet).
ATLAS_SCHEMA = {
    "type": "object",
    "required": ["frames", "meta"],
    "properties": {
        "frames": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["frame", "rotated", "trimmed", "spriteSourceSize", "sourceSize"],
                "properties": {
                    "frame": RECT,
                    "rotated": {"type": "boolean"},
                    "trimmed": {"type": "boolean"},
                    "spriteSourceSize": RECT,
                    "sourceSize": {"type": "object", "required": ["w", "h"]},
                },
            },
        },
        "meta": {
            "type": "object",
            "required": ["image", "size", "format", "scale"],
            "properties": {"image": {"type": "string"}, "size": {"type": "object", "required": ["w", "h"]}},
        },
    },
}


def read_sheet(png):
    return np.asarray(Image.open(png).convert("RGBA")), json.loads(png.with_suffix(".json").read_text())


def test_frames_are_the_portraits_sample_writes_and_the_rectangles_match(smoke_checkpoint, tmp_path):
    sampler = Sampler.from_checkpoint(smoke_checkpoint())
    folder = write_samples(sampler, tmp_path / "pngs", 7, seed=3, progress=False)
    atlas_png, meta_json = write_sheet_of(sampler, tmp_path / "sheet.png", n=7, seed=3)
    atlas, meta = read_sheet(atlas_png)
    jsonschema.validate(meta, ATLAS_SCHEMA)
    assert meta_json.name == "sheet.json" and meta["meta"]["image"] == "sheet.png"
    assert (meta["meta"]["size"]["w"], meta["meta"]["size"]["h"]) == (atlas.shape[1], atlas.shape[0])
    assert len(meta["frames"]) == 7
    labels = (folder / "labels.csv").read_text().splitlines()[1:]
    for i, (name, f) in enumerate(sorted(meta["frames"].items())):
        r = f["frame"]
        frame = atlas[r["y"] : r["y"] + r["h"], r["x"] : r["x"] + r["w"]]
        png = np.asarray(Image.open(folder / f"{i:05d}.png").convert("RGB"))
        assert np.array_equal(frame[..., :3], png) and (frame[..., 3] == 255).all(), name
        assert f["seed"] == 3 and f["index"] == i and ",".join(f["labels"].values()) == labels[i].split(",", 1)[1]


def test_scale_and_border_enlarge_crisply_and_pad_with_transparency(smoke_checkpoint, tmp_path):
    sampler = Sampler.from_checkpoint(smoke_checkpoint())
    images, _ = sampler.generate(3, seed=1)
    atlas, meta = read_sheet(write_sheet_of(sampler, tmp_path / "big.png", n=3, seed=1, scale=2, border=1)[0])
    for i, f in enumerate(meta["frames"].values()):
        r = f["frame"]
        assert (r["w"], r["h"]) == (128, 128)
        frame = atlas[r["y"] : r["y"] + 128, r["x"] : r["x"] + 128]
        assert np.array_equal(frame[::2, ::2, :3], images[i]) and np.array_equal(frame[1::2, 1::2, :3], images[i])
        ring = np.concatenate(
            [atlas[r["y"] - 1, r["x"] - 1 : r["x"] + 129], atlas[r["y"] + 128, r["x"] - 1 : r["x"] + 129]]
        )
        assert (ring[:, 3] == 0).all()  # the border is transparent
    with pytest.raises(SheetError, match="scale 0"):
        layout_sheet(images, [{}] * 3, 0, scale=0)


def test_the_attribute_grid_and_one_condition_are_one_command_each(smoke_checkpoint, tmp_path, capsys):
    ckpt = smoke_checkpoint()
    assert cli_main(["sample", str(ckpt), "--sheet", "--grid", "--out", str(tmp_path / "grid.png")]) == 0
    atlas, meta = read_sheet(tmp_path / "grid.png")
    layout, _ = attribute_grid(Sampler.from_checkpoint(ckpt))
    assert len(meta["frames"]) == len(layout.labels) and atlas.shape[1] == layout.n_cols * 64
    args = ["sample", str(ckpt), "--sheet", "--set", "hero_class=mage", "--n", "5", "--out", str(tmp_path / "m.png")]
    assert cli_main([*args, "--scale", "2", "--border", "1"]) == 0
    _, meta = read_sheet(tmp_path / "m.png")
    assert {f["labels"]["hero_class"] for f in meta["frames"].values()} == {"mage"}
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flags, named",
    [(["--scale", "2"], "--scale and --border"), (["--grid", "--transparent"], "--transparent cuts")],
)
def test_sheet_flags_that_would_do_nothing_are_refused_in_one_line(smoke_checkpoint, tmp_path, capsys, flags, named):
    assert cli_main(["sample", str(smoke_checkpoint()), "--out", str(tmp_path / "x.png"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert named in err and len(err.splitlines()) == 1 and not (tmp_path / "x.png").exists()
