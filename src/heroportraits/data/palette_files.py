"""A user's palette, read from the files pixel artists keep them in: Lospec's `.hex` (one RRGGBB a line), GIMP's
`.gpl`, an image swatch (its distinct colours), or a list written out (`#1a1c2c,#5d275d,...`).

`read_palette(spec)` -> (P, 3) uint8 colours in the file's order, duplicates dropped. A file that is not a palette
is one line naming the file, the line and what was expected (`PaletteFileError`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from heroportraits.errors import HeroError

MAX_COLOURS = 256  # a swatch with more distinct colours is a picture, not a palette
IMAGE_SUFFIXES = (".png", ".gif", ".bmp", ".webp")
_HEX = re.compile(r"#?([0-9a-fA-F]{6})")


class PaletteFileError(HeroError):
    """A palette file (or list) that cannot be read as colours."""


def read_palette(spec: str | Path) -> np.ndarray:
    """The colours of a palette file or of a comma-separated list of hex colours -> (P, 3) uint8, P >= 1."""
    text = str(spec)
    path = Path(text)
    if "," in text or (_HEX.fullmatch(text.strip()) and not path.exists()):
        colours = [
            _hex_colour(item.strip(), f"the palette list, colour {i}")
            for i, item in enumerate(text.split(","), 1)
            if item.strip()
        ]
    elif not path.is_file():
        raise PaletteFileError(
            f"palette {text!r}: no such file; give a .hex, .gpl or image file, or colours as #rrggbb,#rrggbb,..."
        )
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        colours = _image_colours(path)
    elif path.suffix.lower() == ".gpl":
        colours = _gpl_colours(path)
    else:
        colours = [_hex_colour(line, f"{path}, line {i}") for i, line in _lines(path) if line]
    if not colours:
        raise PaletteFileError(f"{path}: holds no colours; a palette needs at least one")
    unique = list(dict.fromkeys(tuple(int(v) for v in c) for c in colours))  # file order, duplicates once
    return np.array(unique, np.uint8).reshape(-1, 3)


def _lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise PaletteFileError(f"{path}: not a text file; a .hex palette holds one RRGGBB colour a line") from None
    return [(i, line.split(";")[0].strip()) for i, line in enumerate(text.splitlines(), 1)]


def _hex_colour(item: str, where: str) -> tuple[int, int, int]:
    m = _HEX.fullmatch(item)
    if not m:
        raise PaletteFileError(f"{where}: {item!r} is not a colour; write RRGGBB (e.g. 1a1c2c)")
    value = m.group(1)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _gpl_colours(path: Path) -> list[tuple[int, int, int]]:
    """GIMP palette: "GIMP Palette", optional Name: / Columns: lines and # comments, then "R G B [name]" lines."""
    lines = _lines(path)
    if not lines or lines[0][1] != "GIMP Palette":
        raise PaletteFileError(f"{path}, line 1: a .gpl palette starts with 'GIMP Palette'")
    colours = []
    for i, line in lines[1:]:
        if not line or line.startswith("#") or re.match(r"(Name|Columns)\s*:", line):
            continue
        parts = line.split()
        try:
            rgb = tuple(int(v) for v in parts[:3])
        except ValueError:
            rgb = ()
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise PaletteFileError(f"{path}, line {i}: {line!r} is not a colour; write R G B (0-255) and a name")
        colours.append(rgb)
    return colours


def _image_colours(path: Path) -> list[tuple[int, int, int]]:
    """A swatch image's distinct opaque colours, in reading order."""
    try:
        with Image.open(path) as im:
            rgba = np.asarray(im.convert("RGBA")).reshape(-1, 4)
    except (UnidentifiedImageError, OSError) as e:
        raise PaletteFileError(f"{path}: cannot be read as an image ({e})") from None
    opaque = rgba[rgba[:, 3] > 0][:, :3]
    _, first = np.unique(opaque, axis=0, return_index=True)
    colours = [tuple(int(v) for v in opaque[i]) for i in np.sort(first)]
    if len(colours) > MAX_COLOURS:
        raise PaletteFileError(
            f"{path}: {len(colours)} distinct colours is a picture, not a swatch (at most {MAX_COLOURS}); "
            "give a .hex or .gpl palette, or a swatch image"
        )
    return colours
