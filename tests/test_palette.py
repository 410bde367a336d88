"""palette: the rule-based labeller agrees with the palette definitions on synthetic portraits."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from heroportraits.data.attributes import PALETTES
from heroportraits.data.palette_labels import agreement, foreground_mask, label_palette

# Each palette as HSV ranges (hue in degrees, may wrap), straight from its definition.
DEFINITIONS = {
    "warm": ((-20, 55), (0.55, 0.95), (0.6, 0.95)),  # saturated reds / oranges / yellows
    "cool": ((90, 290), (0.45, 0.9), (0.5, 0.9)),  # saturated greens / teals / blues / purples
    "dark": ((0, 360), (0.1, 0.6), (0.08, 0.28)),  # low brightness, any hue
    "neutral": ((20, 50), (0.0, 0.1), (0.55, 0.95)),  # greys, whites, beige
    "muted": ((0, 360), (0.22, 0.4), (0.35, 0.65)),  # desaturated mid-tones
}


def rgb(h, s, v) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb((h % 360) / 360, min(s, 1), min(v, 1))) * 255


def portrait(rng, palette: str, backdrop: str = "painted") -> np.ndarray:
    """A 32x32 bust upscaled x2: clothes and hair in 3-tone ramps of the palette, a skin face, an outline.

    backdrop "painted": a second colour of the same palette behind the figure (the backdrop is part
    of the portrait's colours); "transparent": the black fill that prepare flattens transparency onto.
    """
    (h0, h1), (s0, s1), (v0, v1) = DEFINITIONS[palette]
    h, s, v = rng.uniform(h0, h1), rng.uniform(s0, s1), rng.uniform(v0, v1)
    yy, xx = np.mgrid[0:32, 0:32] + 0.5
    back = rgb(rng.uniform(h0, h1), rng.uniform(s0, s1), rng.uniform(v0, v1)) if backdrop == "painted" else np.zeros(3)
    img = np.zeros((32, 32, 3)) + back
    body = ((xx - 16) / 13) ** 2 + ((yy - 34) / 14) ** 2 <= 1
    head = ((xx - 16) / 6) ** 2 + ((yy - 13) / 7) ** 2 <= 1
    hair = head & (yy < 10)
    shade = np.clip((xx - 8) / 16, 0, 1)  # light from the left
    for mask, (hh, ss, vv) in [(body, (h, s, v)), (head, (25, 0.4, 0.85)), (hair, (h, s, v))]:
        tones = np.stack([rgb(hh + 10, ss * 0.8, vv * 1.15), rgb(hh, ss, vv), rgb(hh - 12, ss * 1.1, vv * 0.7)])
        img[mask] = tones[np.minimum((shade[mask] * 3).astype(int), 2)]
    inside = body | head
    edge = inside & ~(np.roll(inside, 1, 0) & np.roll(inside, -1, 0) & np.roll(inside, 1, 1) & np.roll(inside, -1, 1))
    img[edge] = rgb(h, 0.4, 0.12)  # dark outline
    img = img.round().clip(0, 255).astype(np.uint8)
    return img.repeat(2, 0).repeat(2, 1)


@pytest.mark.parametrize("backdrop", ["painted", "transparent"])
@pytest.mark.parametrize("palette", PALETTES)
def test_labeller_agrees_with_definitions(palette, backdrop):
    rng = np.random.default_rng(PALETTES.index(palette))
    images = np.stack([portrait(rng, palette, backdrop) for _ in range(40)])
    labels = [label_palette(im) for im in images]
    share = labels.count(palette) / len(labels)
    got = {value: labels.count(value) for value in set(labels)}
    assert share >= 0.9, f"{palette}: {share:.0%} labelled {palette}; got {got}"


def test_transparency_fill_is_ignored():
    rng = np.random.default_rng(0)
    img = portrait(rng, "warm", backdrop="transparent")
    mask = foreground_mask(img)
    assert not mask[0, 0] and mask[40, 32]  # corner is fill, chest is not
    assert label_palette(img) == "warm"
    assert label_palette(img, backdrop=None) == "dark"  # counting the black fill
    # The same figure flattened onto white (prepare --background 255,255,255) stays warm.
    white = img.copy()
    white[~mask] = 255
    assert label_palette(white, backdrop=(255, 255, 255)) == "warm"


def test_agreement_on_procedural_portraits():
    """The built-in generator paints each palette by the same definitions: the labeller should agree."""
    procedural = pytest.importorskip("heroportraits.data.procedural")
    images, rows = procedural.generate_portraits(150, seed=123, progress=False)
    agr = agreement([r["palette"] for r in rows], [label_palette(im) for im in images])
    assert agr.accuracy >= 0.9, agr.table()


def test_agreement_accuracy_and_confusion():
    agr = agreement(["warm", "cool", "cool", "dark"], ["warm", "cool", "warm", "dark"])
    assert agr.accuracy == pytest.approx(0.75) and agr.n == 4
    assert agr.values[:5] == PALETTES
    assert agr.confusion[PALETTES.index("cool")][PALETTES.index("warm")] == 1
    assert "75.0%" in agr.table()
    frame = agr.frame()  # rows: given, columns: automatic
    assert frame.loc["cool", "warm"] == 1 and frame.loc["cool", "cool"] == 1 and frame.to_numpy().sum() == 4
    assert (frame.index.name, frame.columns.name) == ("given", "automatic")


def test_reading_one_pixel_a_cell_gives_the_full_reading():
    """The palette check reads a sampler's portraits on their native grid (cell=2 here): the same labels."""
    rng = np.random.default_rng(7)
    images = [portrait(rng, p, b) for p in PALETTES for b in ("painted", "transparent") for _ in range(6)]
    assert [label_palette(im, cell=2) for im in images] == [label_palette(im) for im in images]
    # A border whose backdrop share is under half on the native grid (61 of 124) and half at full size (the
    # corners weigh 3 of 252 there): the backdrop frames the full image, so the cell reading ignores it too.
    native = np.full((32, 32, 3), (220, 80, 40), np.uint8)  # warm
    native[1:-1, :17] = 0  # the backdrop (black) behind more than half the image
    native[[0, 0, -1, -1], [0, -1, 0, -1]] = 0  # the four corners
    native[0, 1:28] = 0  # and 27 + 30 more border pixels: 61 of the 124
    assert int((native[[0, -1]].max(-1) == 0).sum() + (native[1:-1, [0, -1]].max(-1) == 0).sum()) == 61
    full = native.repeat(2, 0).repeat(2, 1)
    assert label_palette(full) == label_palette(full, cell=2) == "warm"
    assert label_palette(native) == "dark"  # read on the native grid alone, the backdrop would count
