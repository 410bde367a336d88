"""Sprite sheets a game engine loads: one atlas PNG and its JSON (`sample --sheet`).

The JSON is the texture-atlas "hash" layout that Phaser, PixiJS and TexturePacker share: `frames` maps each frame's
name to its rectangle in the atlas (`frame: {x, y, w, h}`, unrotated, untrimmed), and `meta` names the image and
its size. Each frame also carries what drew it: its labels, the sample's seed and its row in that sample, so a
portrait can be drawn again. `scale` enlarges every portrait by an integer with nearest neighbour (crisp);
`border` leaves that many transparent pixels around each frame, what atlases need against bleeding when filtered.
At scale 1 and no border, each frame is pixel for pixel the PNG `sample` writes for the same seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from heroportraits.errors import HeroError
from heroportraits.paths import output_file, write_json, writing

ATLAS_FORMAT = "RGBA8888"


class SheetError(HeroError):
    """A sheet that cannot be laid out or written as asked."""


@dataclass
class Sheet:
    image: np.ndarray  # (H, W, 4) uint8 atlas, transparent between frames
    frames: dict[str, dict]  # frame name -> {"frame": {x, y, w, h}, ...} in the atlas JSON's layout


def layout_sheet(
    images: np.ndarray,
    rows: list[dict],
    seed: int,
    scale: int = 1,
    border: int = 0,
    columns: int | None = None,
    names: list[str] | None = None,
) -> Sheet:
    """Portraits (N, S, S, 3 or 4) uint8 and their label rows -> the atlas and its frames, row-major in `columns`
    columns (default: a square-ish sheet)."""
    if scale < 1 or border < 0:
        raise SheetError(f"scale {scale}, border {border}: the scale is a whole number >= 1 and the border >= 0")
    n, size = len(images), images.shape[1] * scale
    columns = columns or math.ceil(math.sqrt(n))
    rows_n = math.ceil(n / columns)
    cell = size + 2 * border
    atlas = np.zeros((rows_n * cell, columns * cell, 4), np.uint8)
    names = names or [f"portrait_{i:05d}" for i in range(n)]
    frames = {}
    for i, (img, row) in enumerate(zip(images, rows)):
        big = img.repeat(scale, 0).repeat(scale, 1)
        if big.shape[-1] == 3:
            big = np.concatenate([big, np.full(big.shape[:2] + (1,), 255, np.uint8)], axis=-1)
        x, y = (i % columns) * cell + border, (i // columns) * cell + border
        atlas[y : y + size, x : x + size] = big
        frames[names[i]] = {
            "frame": {"x": x, "y": y, "w": size, "h": size},
            "rotated": False,
            "trimmed": False,
            "spriteSourceSize": {"x": 0, "y": 0, "w": size, "h": size},
            "sourceSize": {"w": size, "h": size},
            "labels": {k: v for k, v in row.items() if k != "file"},
            "seed": seed,
            "index": i,  # the portrait's row in the sample drawn with `seed`
        }
    return Sheet(atlas, frames)


def atlas_json(sheet: Sheet, image_name: str, scale: int) -> dict:
    """The atlas JSON for `sheet` whose image is saved as `image_name` beside it."""
    h, w = sheet.image.shape[:2]
    return {
        "frames": sheet.frames,
        "meta": {
            "app": "heroportraits",
            "image": image_name,
            "format": ATLAS_FORMAT,
            "size": {"w": w, "h": h},
            "scale": "1",  # the atlas's own scale for the engine; the portraits' upscale is `portrait_scale`
            "portrait_scale": scale,
        },
    }


def write_sheet(sheet: Sheet, out: str | Path, scale: int = 1) -> tuple[Path, Path]:
    """The atlas as OUT (.png) and its JSON beside it (OUT with .json): both written, or one line saying why not."""
    out = output_file(Path(out).with_suffix(".png"), "sheet")
    meta = out.with_suffix(".json")
    with writing(out, "sheet", SheetError):
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sheet.image, "RGBA").save(out)
        write_json(meta, atlas_json(sheet, out.name, scale))
    return out, meta
