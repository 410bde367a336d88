"""The built-in dataset: labelled pixel-art hero portraits drawn from code, no download.

Each portrait is drawn on a native 32x32 grid (1-px dark outlines, 3-tone ramps, a
limited palette) and stored 2x nearest-upscaled at 64x64. Labels are the default
schema (gender, hero_class, palette), and each one is *shown*, not stamped:
    hero_class  gear at head and shoulders, several variants per class
    gender      overlapping statistical cues (hair, beard, jaw, lips, lashes, jewellery)
    palette     colour families of the background and clothing, which fill most pixels
Image i of seed s is drawn from its own numpy Generator seeded with (s, i), so any
image can be regenerated alone and the output never depends on batching or workers.
With alpha, each portrait gets a 4th channel: 0 where the backdrop shows, 255 on the figure
(the Canvas's `figure` mask); the colours and the random draws are the same as without.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from heroportraits.data import procedural_parts as pp
from heroportraits.data.attributes import DEFAULT_SCHEMA, GENDERS, HERO_CLASSES, PALETTES, LabelError
from heroportraits.data.dataset import write_labels_csv
from heroportraits.data.face_regions import PROCEDURAL_FACE
from heroportraits.data.figures import preview_grid
from heroportraits.data.images import nearest_upscale, save_png
from heroportraits.data.procedural_parts import hsv, ramp
from heroportraits.paths import preview_path
from heroportraits.progress import progress_bar

NATIVE = pp.N  # drawn at 32x32 ...
SCALE = 2  # ... stored at 64x64
MAX_COLOURS = 24  # hard cap on distinct colours per portrait
COLUMNS = ["file", "gender", "hero_class", "palette"]


# ----------------------------------------------------------------------------- colours

# Skin and hair are independent of the palette label (HSV: hue degrees, sat, value).
SKIN_TONES = [
    (26, 0.20, 0.98),
    (22, 0.30, 0.95),
    (24, 0.42, 0.86),
    (30, 0.45, 0.74),
    (22, 0.55, 0.60),
    (18, 0.60, 0.44),
]
HAIR_COLOURS = {
    "black": (230, 0.30, 0.22),
    "dark_brown": (20, 0.60, 0.32),
    "brown": (25, 0.62, 0.50),
    "auburn": (10, 0.72, 0.58),
    "ginger": (20, 0.80, 0.85),
    "blonde": (45, 0.55, 0.93),
    "platinum": (50, 0.15, 0.96),
    "grey": (220, 0.06, 0.78),
}
IRIS = [(25, 0.75, 0.42), (210, 0.65, 0.75), (120, 0.55, 0.55), (200, 0.15, 0.55)]


def _jit(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


# The saturated families share one recipe (one draw order); only their ranges differ:
# hues; cloth (sat, value on a light / dark backdrop); cloth2 (sat, value); backdrop (sat,
# value light / dark); metal and trim (hue, sat, value); plume and gem (hues to pick, sat[, value]).
VIVID = {
    "warm": (
        [2, 14, 26, 38, 48],
        [(0.72, 0.9), (0.62, 0.82), (0.8, 0.95)],
        [(0.7, 0.9), (0.75, 0.95)],
        [(0.55, 0.8), (0.85, 0.97), (0.5, 0.62)],
        [[(34, 44), (0.5, 0.62), (0.8, 0.9)], [(44, 50), (0.7, 0.85), (0.92, 1.0)]],
        [([0, 12, 30], (0.8, 0.95), (0.85, 0.98)), ([0, 25, 50], (0.75, 0.9))],
    ),
    "cool": (
        [145, 172, 195, 215, 238, 262, 285],
        [(0.6, 0.85), (0.5, 0.68), (0.72, 0.9)],
        [(0.55, 0.85), (0.7, 0.9)],
        [(0.5, 0.75), (0.78, 0.95), (0.42, 0.55)],
        [[(200, 220), (0.22, 0.32), (0.78, 0.88)], [(185, 200), (0.25, 0.45), (0.92, 1.0)]],
        [([200, 230, 170, 275], (0.7, 0.9), (0.8, 0.95)), ([180, 200, 280], (0.6, 0.8))],
    ),
}


def _vivid_family(rng: np.random.Generator, table: tuple) -> dict[str, tuple[float, float, float]]:
    """A warm or cool family from its VIVID ranges; half the portraits get a light backdrop."""
    hues, cloth, cloth2, bg, (metal, trim), (plume, gem) = table
    u = lambda lo, hi: _jit(rng, lo, hi)  # noqa: E731
    pick = lambda xs: float(xs[rng.integers(len(xs))]) + u(-6, 6)  # noqa: E731
    h1, h2, hb = pick(hues), pick(hues), pick(hues)
    light_bg = rng.random() < 0.5
    return dict(
        cloth=(h1, u(*cloth[0]), u(*cloth[1]) if light_bg else u(*cloth[2])),
        cloth2=(h2, u(*cloth2[0]), u(*cloth2[1])),
        bg=(hb, u(*bg[0]), u(*bg[1]) if light_bg else u(*bg[2])),
        metal=(u(*metal[0]), u(*metal[1]), u(*metal[2])),
        trim=(u(*trim[0]), u(*trim[1]), u(*trim[2])),
        plume=(pick(plume[0]), u(*plume[1]), u(*plume[2])),
        gem=(pick(gem[0]), u(*gem[1]), 1.0),
    )


# The dark and muted families: (sat, value) of cloth, cloth2 and backdrop; (hue, sat, value) of
# metal and trim; (sat, value) of plume and gem.
SOFT = {
    "dark": (
        [[(0.35, 0.6), (0.24, 0.36)], [(0.3, 0.55), (0.3, 0.42)], [(0.3, 0.6), (0.1, 0.2)]],
        [[(205, 230), (0.12, 0.2), (0.4, 0.48)], [(35, 45), (0.35, 0.5), (0.5, 0.6)]],
        [[(0.45, 0.65), (0.35, 0.45)], [(0.6, 0.8), (0.75, 0.9)]],
    ),
    "muted": (
        [[(0.25, 0.38), (0.45, 0.62)], [(0.22, 0.35), (0.55, 0.7)], [(0.22, 0.34), (0.55, 0.7)]],
        [[(30, 220), (0.06, 0.12), (0.6, 0.7)], [(35, 45), (0.25, 0.35), (0.7, 0.78)]],
        [[(0.3, 0.4), (0.65, 0.75)], [(0.3, 0.45), (0.8, 0.9)]],
    ),
}


def _soft_family(u, hues: tuple[float, float, float], table: tuple, gem_hue) -> dict[str, tuple[float, float, float]]:
    """A dark or muted family: cloth, cloth2 and backdrop in `hues`, the plume in cloth2's hue;
    `gem_hue(h1)` is called in its place in the draw order (the portraits depend on that order)."""
    h1, h2, hb = hues
    (cloth, cloth2, bg), (metal, trim), (plume, gem) = table
    return dict(
        cloth=(h1, u(*cloth[0]), u(*cloth[1])),
        cloth2=(h2, u(*cloth2[0]), u(*cloth2[1])),
        bg=(hb, u(*bg[0]), u(*bg[1])),
        metal=(u(*metal[0]), u(*metal[1]), u(*metal[2])),
        trim=(u(*trim[0]), u(*trim[1]), u(*trim[2])),
        plume=(h2, u(*plume[0]), u(*plume[1])),
        gem=(gem_hue(h1), u(*gem[0]), u(*gem[1])),
    )


def _family(rng: np.random.Generator, palette: str) -> dict[str, tuple[float, float, float]]:
    """HSV bases of the palette-driven materials: background, clothing, metal, trim, plume, gem.

    warm: saturated reds/oranges/golds; cool: saturated blues/teals/purples/greens;
    dark: low value everywhere; neutral: greys/whites/beige; muted: dusty mid-tones.
    """
    u = lambda lo, hi: _jit(rng, lo, hi)  # noqa: E731
    pick = lambda xs: float(xs[rng.integers(len(xs))]) + u(-6, 6)  # noqa: E731
    if palette in VIVID:
        return _vivid_family(rng, VIVID[palette])
    if palette == "dark":  # any hue, low value everywhere; the gem one of four bright hues
        hues = u(0, 360), u(0, 360), u(0, 360)
        return _soft_family(u, hues, SOFT["dark"], lambda h1: pick([0, 120, 200, 280]))
    if palette == "neutral":
        hb = pick([35, 40, 210, 220])
        h1 = pick([30, 40, 210, 220])
        light_bg = rng.random() < 0.6
        return dict(
            cloth=(h1, u(0.04, 0.14), u(0.55, 0.72) if light_bg else u(0.8, 0.95)),
            cloth2=(pick([35, 210]), u(0.02, 0.08), u(0.88, 0.97) if rng.random() < 0.6 else u(0.35, 0.45)),
            bg=(hb, u(0.02, 0.1), u(0.8, 0.94) if light_bg else u(0.5, 0.62)),
            metal=(u(200, 220), u(0.03, 0.08), u(0.8, 0.9)),
            trim=(u(40, 50), u(0.06, 0.14), u(0.9, 0.98)),
            plume=(40, u(0.02, 0.06), u(0.92, 0.98) if rng.random() < 0.5 else u(0.25, 0.35)),
            gem=(210, u(0.1, 0.2), u(0.9, 1.0)),
        )
    if palette == "muted":  # dusty mid-tones; the gem in the cloth's hue
        hues = [350, 20, 45, 95, 140, 185, 215, 300]
        return _soft_family(u, (pick(hues), pick(hues), pick(hues)), SOFT["muted"], lambda h1: h1)
    raise LabelError(f"unknown palette {palette!r}; allowed: {PALETTES}")


def make_look(rng: np.random.Generator, palette: str) -> pp.Look:
    """All colours of one portrait: palette-driven families plus independent skin and hair."""
    f = _family(rng, palette)
    dark = palette == "dark"
    dim = 0.72 if dark else 1.0  # a dark portrait is lit dimly, skin and hair included
    sh, ss, sv = SKIN_TONES[rng.integers(len(SKIN_TONES))]
    hh, hs, hv = list(HAIR_COLOURS.values())[rng.integers(len(HAIR_COLOURS))]
    ih, is_, iv = IRIS[rng.integers(len(IRIS))]
    leather_s, leather_v = {
        "warm": (0.6, 0.45),
        "cool": (0.35, 0.4),
        "dark": (0.4, 0.22),
        "neutral": (0.18, 0.45),
        "muted": (0.3, 0.42),
    }[palette]
    bh, bs, bv = f["bg"]
    return pp.Look(
        bg=ramp(bh, bs, bv, spread=0.6),
        cloth=ramp(*f["cloth"]),
        cloth2=ramp(*f["cloth2"]),
        metal=ramp(*f["metal"], spread=1.1),
        trim=ramp(*f["trim"]),
        plume=ramp(*f["plume"]),
        gem=ramp(*f["gem"], spread=0.8),
        leather=ramp(24, leather_s, leather_v),
        wood=ramp(28, leather_s * 0.9, leather_v * 1.15),
        bone=ramp(42, 0.16, 0.9 * (0.7 if dark else 1.0)),
        skin=ramp(sh, ss, sv * dim, spread=0.8),
        hair=ramp(hh, hs, max(hv * dim, 0.2), spread=1.1),
        iris=hsv(ih, is_, iv * dim),
        lips=hsv(352, 0.55, 0.78 * dim),
        white=hsv(50, 0.05, 1.0 * (0.9 if dark else 1.0)),
        outline=hsv(f["cloth"][0], 0.45, 0.06 if dark else 0.13),
    )


# ----------------------------------------------------------------------------- gender cues

HAIR_STYLES = {
    "masculine": {
        "crop": 0.2,
        "spiky": 0.13,
        "swept_l": 0.07,
        "swept_r": 0.07,
        "bald": 0.1,
        "mohawk": 0.05,
        "fringe": 0.08,
        "long": 0.12,
        "ponytail_l": 0.04,
        "ponytail_r": 0.04,
        "bob": 0.1,
    },
    "feminine": {
        "long": 0.26,
        "bob": 0.12,
        "ponytail_l": 0.08,
        "ponytail_r": 0.08,
        "bun": 0.12,
        "braids": 0.12,
        "fringe": 0.08,
        "swept_l": 0.05,
        "swept_r": 0.05,
        "crop": 0.04,
    },
}
BEARDS = {"none": 0.4, "stubble": 0.14, "moustache": 0.12, "goatee": 0.12, "full": 0.22}


def _choice(rng: np.random.Generator, table: dict[str, float]) -> str:
    keys = list(table)
    p = np.asarray([table[k] for k in keys], float)
    return keys[rng.choice(len(keys), p=p / p.sum())]


def sample_traits(rng: np.random.Generator, gender: str) -> pp.Traits:
    """Face cues that are informative about gender in aggregate, never decisive alone."""
    if gender not in GENDERS:
        raise LabelError(f"unknown gender {gender!r}; allowed: {GENDERS}")
    m = gender == "masculine"
    return pp.Traits(
        hair=_choice(rng, HAIR_STYLES[gender]),
        beard=_choice(rng, BEARDS) if m else "none",
        jaw=float(np.clip(rng.normal(0.72 if m else 0.28, 0.18), 0, 1)),
        rx=_jit(rng, 5.9, 6.6) if m else _jit(rng, 5.5, 6.2),
        neck=_jit(rng, 2.8, 3.4) if m else _jit(rng, 2.2, 2.8),
        shoulders=_jit(rng, 14.5, 16.0) if m else _jit(rng, 13.0, 14.8),
        lips=int(rng.random() < (0.1 if m else 0.75)) * int(rng.integers(1, 3)),
        lashes=int(rng.random() < (0.05 if m else 0.7)) * int(rng.integers(1, 3)),
        thick_brows=bool(rng.random() < (0.7 if m else 0.15)),
        brow_hair=bool(rng.random() < 0.5),
        earrings=int(rng.random() < (0.15 if m else 0.55)) * int(rng.integers(1, 4)),
        smirk=bool(rng.random() < 0.5),
    )


# ----------------------------------------------------------------------------- backgrounds

_BAYER = (np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]) + 0.5) / 16.0 - 0.5
_BAYER_GRID = np.tile(_BAYER, (NATIVE // 4, NATIVE // 4))


def background(cv: pp.Canvas, rng: np.random.Generator, lk: pp.Look) -> str:
    """Flat, vertical gradient, or a dithered glow behind the head."""
    kind = ["flat", "gradient", "glow"][rng.integers(3)]
    if kind == "flat":
        level = np.ones((NATIVE, NATIVE), int)
    elif kind == "gradient":
        t = pp.Y / NATIVE if rng.random() < 0.5 else 1 - pp.Y / NATIVE
        level = np.clip(np.floor(3 * t + 0.8 * _BAYER_GRID), 0, 2).astype(int)
    else:
        r = np.sqrt((pp.X - 16) ** 2 + (pp.Y - 13) ** 2) / 20.0
        level = np.clip(2 - np.floor(3 * r + 0.8 * _BAYER_GRID), 0, 2).astype(int)
    cv.background(level, list(lk.bg))
    return kind


# ----------------------------------------------------------------------------- classes


def _base_head(cv, h, lk, t, eyes=True, ears=True):
    if ears:
        pp.draw_ears(cv, h, lk)
    pp.draw_face(cv, h, lk, t, eyes=eyes)
    if t.beard != "none":
        pp.draw_beard(cv, h, lk, t.beard)


def _hair_back(cv, h, lk, t):
    pp.hair_back(cv, h, lk, "long" if t.hair == "braids" else t.hair)


def _hair_front(cv, h, lk, t, under_hat=False):
    pp.hair_front(cv, h, lk, "long" if t.hair == "braids" else t.hair, under_hat=under_hat)
    if t.hair == "braids":
        pp.braids_front(cv, h, lk)


def _body(cv, h, lk, t, tones=None):
    pp.draw_neck(cv, h, lk, t.neck)
    pp.draw_torso(cv, h, tones or lk.cloth, t.shoulders)


def _warrior(cv, rng, h, lk, t) -> str:
    helm = ["horned", "closed", "tface", "sallet"][rng.choice(4, p=[0.32, 0.2, 0.2, 0.28])]
    layered, spiked = bool(rng.random() < 0.5), bool(rng.random() < 0.35)
    _hair_back(cv, h, lk, t)
    _body(cv, h, lk, t)
    pp.breastplate(cv, h, lk, tabard=bool(rng.random() < 0.5))
    pp.pauldrons(cv, h, lk, layered, spiked)
    if helm != "closed":
        _base_head(cv, h, lk, t, ears=False)
    if t.hair == "braids":
        pp.braids_front(cv, h, lk)
    if helm == "horned":
        pp.helm_horned(cv, h, lk, nasal=bool(rng.random() < 0.5))
    elif helm == "sallet":
        pp.helm_sallet(cv, h, lk)
    else:
        pp.helm_closed(cv, h, lk, tface=helm == "tface")
    return f"{helm}{'-spiked' if spiked else ''}{'-layered' if layered else ''}"


def _mage(cv, rng, h, lk, t) -> str:
    head = ["hat", "hood", "circlet"][rng.choice(3, p=[0.45, 0.35, 0.2])]
    side, tip = int(rng.choice([-1, 1])), ["orb", "crystal", "crescent"][rng.integers(3)]
    if head != "hood":
        _hair_back(cv, h, lk, t)
    _body(cv, h, lk, t)
    pp.robe_collar(cv, h, lk, high=bool(rng.random() < 0.65))
    if rng.random() < 0.8:
        pp.amulet(cv, h, lk)
    if head == "hood":
        pp.hood(cv, h, lk, lk.cloth, pointed=float(rng.choice([-1, 1])) * _jit(rng, 0.3, 1.0), part="inside")
    _base_head(cv, h, lk, t, ears=head != "hood")
    if head == "hood":
        pp.hair_front(cv, h, lk, "fringe" if t.hair not in ("bald", "crop") else "bald")
        pp.hood(cv, h, lk, lk.cloth, pointed=float(rng.choice([-1, 1])) * _jit(rng, 0.3, 1.0), part="outside")
    else:
        _hair_front(cv, h, lk, t, under_hat=head == "hat")
        if head == "hat":
            pp.hat_pointed(cv, h, lk, bend=float(rng.choice([-1, 1])) * _jit(rng, 0.4, 1.0))
        else:
            pp.circlet(cv, h, lk)
        if t.earrings:
            pp.earrings(cv, h, lk, t.earrings)
    pp.staff(cv, h, lk, side, tip)
    return f"{head}-{tip}"


def _rogue(cv, rng, h, lk, t) -> str:
    head = ["hood", "bandana", "bare"][rng.choice(3, p=[0.5, 0.25, 0.25])]
    mask = ["scarf", "eyes", "none"][rng.choice(3, p=[0.45, 0.25, 0.3])]
    if head == "bare" and mask == "none":
        mask = "eyes"
    side = int(rng.choice([-1, 1]))
    hood_tones = lk.cloth if rng.random() < 0.6 else lk.cloth2
    pp.dagger_hilt(cv, h, lk, side)
    if head != "hood":
        _hair_back(cv, h, lk, t)
    _body(cv, h, lk, t)
    pp.leather_collar(cv, h, lk)
    pp.chest_strap(cv, h, lk, side)
    if head == "hood":
        pp.hood(cv, h, lk, hood_tones, pointed=0.0, part="inside")
    _base_head(cv, h, lk, t, ears=head != "hood")
    if head == "hood":
        pp.hair_front(cv, h, lk, "fringe" if t.hair not in ("bald", "crop") else "bald")
    else:
        _hair_front(cv, h, lk, t, under_hat=head == "bandana")
    if mask == "eyes":
        pp.eye_mask(cv, h, lk, lk.cloth2 if hood_tones is lk.cloth else lk.cloth)
        pp.draw_eyes(cv, h, lk, t)
    if head == "hood":
        pp.hood(cv, h, lk, hood_tones, pointed=0.0, part="outside")
    elif head == "bandana":
        pp.bandana(cv, h, lk, hood_tones, side=-side)
    if mask == "scarf":
        pp.scarf_mask(cv, h, lk, lk.cloth2 if hood_tones is lk.cloth else lk.cloth)
    if t.earrings and head != "hood":
        pp.earrings(cv, h, lk, t.earrings)
    return f"{head}-{mask}"


def _cavalry(cv, rng, h, lk, t) -> str:
    head = ["plume", "crest", "cavalier"][rng.choice(3, p=[0.4, 0.3, 0.3])]
    side = int(rng.choice([-1, 1]))
    cheeks = bool(rng.random() < 0.5) and head != "cavalier"
    pp.lance(cv, h, lk, side, forked=bool(rng.random() < 0.5))
    _hair_back(cv, h, lk, t)
    _body(cv, h, lk, t)
    pp.cloak(cv, h, lk, clasp_gem=bool(rng.random() < 0.5))
    _base_head(cv, h, lk, t, ears=not cheeks)
    _hair_front(cv, h, lk, t, under_hat=True)
    if head == "cavalier":
        pp.hat_cavalier(cv, h, lk, side=-side)
    else:
        pp.helm_plumed(cv, h, lk, side=-side, crest=head == "crest", cheeks=cheeks)
    if t.earrings and not cheeks:
        pp.earrings(cv, h, lk, t.earrings)
    return f"{head}{'-cheeks' if cheeks else ''}"


CLASS_DRAWERS = {"warrior": _warrior, "mage": _mage, "rogue": _rogue, "cavalry": _cavalry}


# ----------------------------------------------------------------------------- one portrait


def _limit_colours(img: np.ndarray, max_colours: int = MAX_COLOURS) -> np.ndarray:
    """Merge the rarest colours into their nearest frequent ones until at most `max_colours` remain."""
    flat = img.reshape(-1, 3)
    cols, inv, counts = np.unique(flat, axis=0, return_inverse=True, return_counts=True)
    if len(cols) <= max_colours:
        return img
    keep = np.argsort(-counts, kind="stable")[:max_colours]
    d = ((cols[:, None, :].astype(int) - cols[keep][None, :, :].astype(int)) ** 2).sum(-1)  # (C, K)
    return cols[keep][d.argmin(1)][inv.reshape(-1)].reshape(img.shape)


def draw_portrait_with_variant(
    rng: np.random.Generator, gender: str, hero_class: str, palette: str, alpha: bool = False
) -> tuple[np.ndarray, str]:
    """Like draw_portrait, also returning a short name of the gear variant drawn; alpha=True: (32, 32, 4),
    the 4th channel 255 on the figure and 0 on the backdrop."""
    if hero_class not in CLASS_DRAWERS:
        raise LabelError(f"unknown hero_class {hero_class!r}; allowed: {HERO_CLASSES}")
    lk = make_look(rng, palette)
    t = sample_traits(rng, gender)
    dx = int(rng.choice([-1, 0, 0, 1]))
    h = pp.Head(
        cx=16 + dx, hy=14.5 + float(rng.choice([-1.0, 0.0, 0.0, 1.0])), rx=t.rx, ry=_jit(rng, 7.0, 7.6), jaw=t.jaw
    )
    cv = pp.Canvas(lk.outline)
    background(cv, rng, lk)
    variant = CLASS_DRAWERS[hero_class](cv, rng, h, lk, t)
    img = _limit_colours(cv.render())
    if alpha:
        img = np.dstack([img, np.where(cv.figure, 255, 0).astype(np.uint8)])
    return img, variant


def draw_portrait(rng: np.random.Generator, gender: str, hero_class: str, palette: str) -> np.ndarray:
    """One portrait on the native grid: (32, 32, 3) uint8. All randomness comes from `rng`."""
    return draw_portrait_with_variant(rng, gender, hero_class, palette)[0]


# ----------------------------------------------------------------------------- many portraits

Weights = dict[str, dict[str, float]]


def _label_probs(weights: Weights | None) -> dict[str, np.ndarray]:
    """Per attribute, a probability vector over DEFAULT_SCHEMA's values (uniform unless weighted)."""
    weights = weights or {}
    unknown = set(weights) - set(DEFAULT_SCHEMA)
    if unknown:
        raise LabelError(f"weights for unknown attribute(s) {sorted(unknown)}; allowed: {list(DEFAULT_SCHEMA)}")
    probs = {}
    for name, values in DEFAULT_SCHEMA.items():
        w = weights.get(name, {})
        bad = set(w) - set(values)
        if bad:
            raise LabelError(f"weights name unknown {name} value(s) {sorted(bad)}; allowed: {values}")
        p = np.asarray([float(w.get(v, 1.0 if not w else 0.0)) for v in values])
        if (p < 0).any() or p.sum() <= 0:
            raise LabelError(f"weights for {name} must be >= 0 and not all zero, got {w}")
        probs[name] = p / p.sum()
    return probs


def portrait_at(
    index: int, seed: int = 0, weights: Weights | None = None, alpha: bool = False
) -> tuple[np.ndarray, dict[str, str]]:
    """Portrait `index` of the stream for `seed`: (64, 64, 3) uint8 (4 with `alpha`) and its label row.

    Its own Generator seeded with (seed, index) draws the labels and then the picture,
    so this equals row `index` of generate_portraits(n, seed) for any n.
    """
    rng = np.random.default_rng([seed, index])
    row = {
        name: values[rng.choice(len(values), p=p)]
        for (name, values), p in zip(DEFAULT_SCHEMA.items(), _label_probs(weights).values())
    }
    img, variant = draw_portrait_with_variant(rng, row["gender"], row["hero_class"], row["palette"], alpha)
    return nearest_upscale(img, SCALE), {**row, "variant": variant}


def _portraits_at(
    indices: range, seed: int, weights: Weights | None, alpha: bool = False
) -> list[tuple[np.ndarray, dict[str, str]]]:
    return [portrait_at(i, seed, weights, alpha) for i in indices]


def drawing_workers(n: int) -> int:
    """Processes that draw `n` portraits: one per usable core on Linux (forked, so no re-import), one for a
    few hundred portraits or where fork is missing. Each image has its own Generator: the same output."""
    if n < 400 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def generate_portraits(
    n: int,
    seed: int = 0,
    progress: bool = True,
    weights: Weights | None = None,
    workers: int | None = None,
    alpha: bool = False,
) -> tuple[np.ndarray, list[dict]]:
    """`n` labelled portraits: images (n, 64, 64, 3) uint8 (4 with `alpha`: the figure's mask) and rows
    {gender, hero_class, palette, variant}.

    Labels are independent and uniform unless `weights` gives relative weights, e.g.
    {"hero_class": {"mage": 2, "warrior": 1, "rogue": 1, "cavalry": 1}}.
    `workers`: drawing processes (default `drawing_workers(n)`); the images do not depend on it.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    _label_probs(weights)  # fail early on bad weights
    workers = drawing_workers(n) if workers is None else workers
    images = np.empty((n, NATIVE * SCALE, NATIVE * SCALE, 4 if alpha else 3), np.uint8)
    rows: list[dict] = []
    chunk = max(1, min(200, n // (4 * workers) or 1))
    chunks = [range(a, min(a + chunk, n)) for a in range(0, n, chunk)]
    bar = progress_bar(total=n, desc="drawing portraits", unit="img", disable=not progress)
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")))
            more = [seed] * len(chunks), [weights] * len(chunks), [alpha] * len(chunks)
            results = pool.map(_portraits_at, chunks, *more)
        else:
            results = (_portraits_at(c, seed, weights, alpha) for c in chunks)
        for indices, drawn in zip(chunks, results):
            for i, (img, row) in zip(indices, drawn):
                images[i] = img
                rows.append(row)
            bar.update(len(indices))
    bar.close()
    return images, rows


def preview_portraits(seed: int = 0, per_cell: int = 2) -> dict[str, list[list[np.ndarray]]]:
    """gender -> one row per hero_class of `per_cell` portraits per palette (data.figures.preview_grid's input).

    Drawn fresh from Generators seeded (seed, 'preview', cell) so it shows every combination.
    """

    def cell(gi: int, ci: int, pi: int, k: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 7919, gi, ci, pi, k])
        return nearest_upscale(draw_portrait(rng, GENDERS[gi], HERO_CLASSES[ci], PALETTES[pi]), SCALE)

    return {
        gender: [
            [cell(gi, ci, pi, k) for pi in range(len(PALETTES)) for k in range(per_cell)]
            for ci in range(len(HERO_CLASSES))
        ]
        for gi, gender in enumerate(GENDERS)
    }


def write_procedural_folder(
    out_dir: str | Path, n: int = 7600, seed: int = 0, progress: bool = True, alpha: bool = False
) -> Path:
    """Write `out_dir/images/00000.png ...` (64x64), `labels.csv`, `source.json` (what made it)
    and a labelled preview grid beside the folder (paths.preview_path). alpha=True: RGBA PNGs, transparent
    where the backdrop shows, so `prepare` keeps the mask (a model can then draw RGBA, model.alpha)."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, rows = generate_portraits(n, seed, progress, alpha=alpha)
    width = max(5, len(str(max(n - 1, 0))))
    for i, img in enumerate(progress_bar(images, desc="writing PNG files", unit="img", disable=not progress)):
        rows[i]["file"] = f"images/{i:0{width}d}.png"
        save_png(img, out / rows[i]["file"])
    write_labels_csv(out / "labels.csv", rows, COLUMNS)
    source = {"kind": "procedural", "n": n, "seed": seed, "face_box": list(PROCEDURAL_FACE), "alpha": alpha}
    (out / "source.json").write_text(json.dumps(source))
    preview_grid(preview_portraits(seed), HERO_CLASSES, PALETTES, preview_path(out))
    return out


# ----------------------------------------------------------------------------- CLI
