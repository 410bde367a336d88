"""Drawing on the native 32x32 pixel-art grid: a layered canvas, shape masks, colour ramps.

Why a canvas of colour *indices* and object ids rather than RGB: pixel art is a few
colours per object (a 3-tone ramp: shadow, mid, light) plus a dark outline where one
object meets whatever lies behind it. Keeping each pixel's object id lets one final
pass draw every outline, inner ones included, in a couple of vectorised numpy ops.
Every shape is a boolean (32, 32) mask computed from pixel-centre coordinates, so a
portrait costs a few hundred small array operations and no Python loop over pixels.
"""

from __future__ import annotations

import colorsys

import numpy as np

N = 32  # native grid size
# Pixel-centre coordinates, (32, 32) each: shapes are tested at x + 0.5, y + 0.5.
Y, X = np.mgrid[0:N, 0:N].astype(np.float32) + 0.5

# Light comes from the upper left and a little from the front (normalised below).
_LIGHT = np.array([-0.55, -0.65, 0.75], np.float32)
_LIGHT /= np.linalg.norm(_LIGHT)

RGB = tuple[int, int, int]


# ----------------------------------------------------------------------------- colour


def hsv(h: float, s: float, v: float) -> RGB:
    """Hue in degrees, saturation and value in [0, 1] -> an RGB byte triple."""
    r, g, b = colorsys.hsv_to_rgb((h % 360) / 360.0, min(max(s, 0), 1), min(max(v, 0), 1))
    return (round(r * 255), round(g * 255), round(b * 255))


def _toward(h: float, target: float, amount: float) -> float:
    """Rotate hue h by `amount` degrees toward `target` along the short way round."""
    d = (target - h + 180) % 360 - 180
    return h + np.sign(d) * min(abs(d), amount)


def ramp(h: float, s: float, v: float, spread: float = 1.0) -> tuple[RGB, RGB, RGB]:
    """Shadow, mid and light tones of one material, with pixel-art hue shifting.

    Shadows drift toward blue-violet and get more saturated; highlights drift toward
    yellow and get paler. `spread` scales how far apart the three tones are.
    """
    shadow = hsv(_toward(h, 250, 14 * spread), s * 1.05 + 0.06 * spread, v * (1 - 0.33 * spread))
    light = hsv(_toward(h, 55, 10 * spread), s * (1 - 0.22 * spread), v * (1 + 0.2 * spread) + 0.04 * spread)
    return shadow, hsv(h, s, v), light


# ----------------------------------------------------------------------------- shapes


def ellipse(cx: float, cy: float, rx: float, ry: float, p: float = 2.0) -> np.ndarray:
    """Filled super-ellipse; p=2 is an ellipse, larger p is squarer."""
    return np.abs((X - cx) / rx) ** p + np.abs((Y - cy) / ry) ** p <= 1.0


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Pixels whose centre lies in [x0, x1) x [y0, y1)."""
    return (X >= x0) & (X < x1) & (Y >= y0) & (Y < y1)


def polygon(points: list[tuple[float, float]]) -> np.ndarray:
    """Filled polygon (any simple polygon) by the even-odd crossing rule."""
    inside = np.zeros((N, N), bool)
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]):
        if y0 == y1:
            continue
        crosses = (Y >= min(y0, y1)) & (Y < max(y0, y1))
        xi = x0 + (Y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (X < xi)
    return inside


def segment(x0: float, y0: float, x1: float, y1: float, width: float = 1.0) -> np.ndarray:
    """Thick line: pixels within width/2 of the segment."""
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((X - x0) * dx + (Y - y0) * dy) / max(dx * dx + dy * dy, 1e-6), 0, 1)
    return (X - x0 - t * dx) ** 2 + (Y - y0 - t * dy) ** 2 <= (width / 2) ** 2


def px(*cells: tuple[int, int]) -> np.ndarray:
    """A mask of single pixels given as (x, y) pairs, floored to the grid (off-grid ones dropped)."""
    m = np.zeros((N, N), bool)
    for x, y in cells:
        x, y = int(np.floor(x)), int(np.floor(y))
        if 0 <= x < N and 0 <= y < N:
            m[y, x] = True
    return m


# ----------------------------------------------------------------------------- canvas


class Canvas:
    """Layered 32x32 drawing: colour index per pixel, object id per pixel, one outline pass.

    `shape` paints a new object (later objects are in front) shaded with a 3-tone ramp;
    `decal` paints pixels onto existing objects without creating an edge (eyes, mouth).
    `render` outlines every object where it borders an object behind it, then maps
    indices to RGB: (32, 32, 3) uint8. `figure` is every pixel painted after the background
    (shapes and decals): the mask of a portrait drawn with alpha.
    """

    def __init__(self, outline: RGB):
        self.colors: list[RGB] = [outline]  # index 0 is the outline colour
        self._lookup = {outline: 0}
        self.idx = np.zeros((N, N), np.int16)
        self.obj = np.zeros((N, N), np.int16)  # 0 = background
        self.decals = np.zeros((N, N), bool)
        self.outlined = [False]  # per object id: draw its outline?
        self.figure = np.zeros((N, N), bool)  # painted by a shape or decal: not the background

    def color(self, rgb: RGB) -> int:
        if rgb not in self._lookup:
            self._lookup[rgb] = len(self.colors)
            self.colors.append(rgb)
        return self._lookup[rgb]

    def background(self, index_map: np.ndarray, colours: list[RGB]) -> None:
        """Fill the whole grid from a (32, 32) map of indices into `colours`."""
        lut = np.array([self.color(c) for c in colours], np.int16)
        self.idx[:] = lut[index_map]

    def shape(
        self,
        mask: np.ndarray,
        tones: tuple[RGB, RGB, RGB],
        shade: str = "round",
        center: tuple[float, float] | None = None,
        radii: tuple[float, float] | None = None,
        lo: float = 0.35,
        hi: float = 0.8,
        outline: bool = True,
    ) -> np.ndarray:
        """Paint a new object over everything so far; returns its mask.

        shade: "round" (ellipsoid lit from the upper left), "cyl" (only left-right),
        "flat" (mid tone) or "dark" (shadow tone). center/radii default to the bbox.
        """
        if not mask.any():
            return mask
        t = np.array([self.color(c) for c in tones], np.int16)
        if shade in ("round", "cyl"):
            if center is None or radii is None:
                ys, xs = np.nonzero(mask)
                bx0, bx1, by0, by1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
                center = center or ((bx0 + bx1) / 2, (by0 + by1) / 2)
                radii = radii or (max((bx1 - bx0) / 2, 0.5), max((by1 - by0) / 2, 0.5))
            u = (X - center[0]) / radii[0]
            v = np.zeros_like(u) if shade == "cyl" else (Y - center[1]) / radii[1]
            nz = np.sqrt(np.clip(1.0 - u * u - v * v, 0.05, 1.0))
            d = (_LIGHT[0] * u + _LIGHT[1] * v + _LIGHT[2] * nz) / np.sqrt(u * u + v * v + nz * nz)
            level = np.where(d > hi, 2, np.where(d < lo, 0, 1))
        else:
            level = np.full((N, N), 0 if shade == "dark" else 1)
        self.idx[mask] = t[level[mask]]
        self.outlined.append(outline)
        self.obj[mask] = len(self.outlined) - 1
        self.decals[mask] = False
        self.figure |= mask
        return mask

    def decal(self, mask: np.ndarray, rgb: RGB) -> None:
        """Paint pixels on top without making a new object (no outline around them)."""
        self.idx[mask] = self.color(rgb)
        self.decals |= mask
        self.figure |= mask

    def render(self) -> np.ndarray:
        o = self.obj
        # Neighbour object ids, padded with the pixel's own id so the border never outlines.
        p = np.pad(o, 1, mode="edge")
        behind = (p[:-2, 1:-1] < o) | (p[2:, 1:-1] < o) | (p[1:-1, :-2] < o) | (p[1:-1, 2:] < o)
        edge = behind & np.asarray(self.outlined)[o] & ~self.decals
        idx = np.where(edge, 0, self.idx)
        return np.asarray(self.colors, np.uint8)[idx]


# ----------------------------------------------------------------------------- the figure


class Head:
    """Where the face sits on the grid; every part is placed relative to it.

    cx lies on a pixel boundary (an integer), so features drawn at equal distances
    either side of it are mirror-symmetric. `jaw` runs from 0 (narrow, pointed chin)
    to 1 (wide, square jaw).
    """

    def __init__(self, cx: int, hy: float, rx: float, ry: float, jaw: float):
        self.cx, self.hy, self.rx, self.ry, self.jaw = cx, hy, rx, ry, jaw
        self.er = int(hy)  # upper row of the 2x2 eyes
        self.top = hy - ry  # crown of the skull
        self.st = 23.5  # top line of the shoulders

    def face_mask(self) -> np.ndarray:
        v = (Y - self.hy) / self.ry
        # Below the eyes the face narrows toward the chin; a wide jaw narrows less and squarer.
        taper = np.where(v > 0, 1.0 - (0.32 - 0.24 * self.jaw) * v, 1.0)
        u = (X - self.cx) / (self.rx * taper)
        p = np.where(v > 0, 2.0 + 1.8 * self.jaw, 2.4)
        return np.abs(u) ** p + np.abs(v) ** p <= 1.0


class Look:
    """One portrait's colours: ramps are (shadow, mid, light) triples, the rest single RGBs.

    Ramps: bg, skin, hair, cloth, cloth2, metal, trim, leather, wood, plume, gem, bone.
    Singles: outline, white, lips, iris.
    """

    def __init__(self, **colours):
        self.__dict__.update(colours)


class Traits:
    """Gender-informative but overlapping cues of one face (see procedural.sample_traits)."""

    def __init__(self, **cues):
        self.__dict__.update(cues)


# ---- head and face


def draw_ears(cv: Canvas, h: Head, lk: Look) -> None:
    for side in (-1, 1):
        cv.shape(ellipse(h.cx + side * (h.rx - 0.1), h.er + 1.6, 1.5, 2.0), lk.skin, lo=0.25)


def draw_neck(cv: Canvas, h: Head, lk: Look, half: float = 3.0) -> None:
    cv.shape(
        rect(h.cx - half, h.hy + 3, h.cx + half, 31), lk.skin, "cyl", center=(h.cx - 1, 0), radii=(half + 1, 1), lo=0.55
    )


def draw_face(cv: Canvas, h: Head, lk: Look, t: Traits, eyes: bool = True) -> None:
    """Face oval with 2x2 eyes (white highlight pixel), brows, nose and mouth."""
    cv.shape(h.face_mask(), lk.skin, center=(h.cx - 0.5, h.hy - 1.0), radii=(h.rx + 1.2, h.ry + 1.5), lo=0.5, hi=0.86)
    c, er = h.cx, h.er
    shadow, _, light = lk.skin
    if eyes:
        draw_eyes(cv, h, lk, t)
    brow = lk.hair[0] if t.brow_hair else lk.outline
    for a, outer in ((c - 4, c - 5), (c + 2, c + 4)):
        cells = [(a, er - 2), (a + 1, er - 2)]
        if t.thick_brows:
            cells.append((outer, er - 2))
        cv.decal(px(*cells), brow)
    # Nose: a shadow line on the unlit side of the centre.
    cv.decal(px((c, er + 2), (c, er + 3)), shadow)
    cv.decal(px((c - 1, er + 3)), light)
    draw_mouth(cv, h, lk, t)


def draw_eyes(cv: Canvas, h: Head, lk: Look, t: Traits) -> None:
    c, er = h.cx, h.er
    for a in (c - 4, c + 2):
        cv.decal(px((a, er), (a + 1, er)), lk.outline)  # pupil / upper lid
        cv.decal(px((a, er + 1), (a + 1, er + 1)), lk.iris)
        cv.decal(px((a + 1, er)), lk.white)  # highlight: same side in both eyes
        if t.lashes:
            cv.decal(px((a - 1 if a < c else a + 2, er - (0 if t.lashes == 1 else 1))), lk.outline)


def draw_mouth(cv: Canvas, h: Head, lk: Look, t: Traits) -> None:
    c, mr = h.cx, h.er + 5
    if t.lips:
        cv.decal(px((c - 1, mr), (c, mr)), lk.lips)
        if t.lips > 1:
            cv.decal(px((c - 2, mr), (c + 1, mr)), lk.skin[0])
    else:
        cv.decal(px((c - 1, mr), (c, mr), (c + 1 if t.smirk else c - 2, mr)), lk.skin[0])


def draw_beard(cv: Canvas, h: Head, lk: Look, style: str) -> None:
    c, er = h.cx, h.er
    face = h.face_mask()
    mustache = px((c - 2, er + 4), (c - 1, er + 4), (c, er + 4), (c + 1, er + 4))
    if style == "stubble":
        dots = face & (Y > er + 3.5) & ((X.astype(int) + Y.astype(int)) % 2 == 0)
        cv.decal(dots, lk.skin[0])
        return
    if style == "full":
        m = face & ((Y > er + 3) | ((np.abs(X - c) > h.rx - 1.8) & (Y > er + 0.5)))
        m |= ellipse(c, h.hy + h.ry - 0.3, h.rx * 0.62, 2.3) | mustache
        cv.shape(m, lk.hair, center=(c - 1, h.hy + 2), radii=(h.rx + 1, 5), lo=0.3, hi=0.75, outline=False)
        cv.decal(px((c - 1, er + 5), (c, er + 5)), lk.hair[0])  # mouth inside the beard
        return
    if style == "goatee":
        m = ellipse(c, h.hy + h.ry - 1.2, 1.8, 2.2) & (Y > er + 5.5) | mustache
        cv.shape(m, lk.hair, center=(c - 1, h.hy + 3), radii=(3, 4), lo=0.3, outline=False)
        return
    if style == "moustache":
        m = mustache | px((c - 3, er + 5), (c + 2, er + 5))
        cv.shape(m, lk.hair, "flat", outline=False)


# ---- hair


def hair_back(cv: Canvas, h: Head, lk: Look, style: str) -> None:
    """Hair mass behind head and shoulders (drawn before the body)."""
    c = h.cx
    if style in ("long", "braids_back"):
        m = ellipse(c, h.hy - 0.5, h.rx + 2.3, h.ry + 1.8) | rect(c - h.rx - 2.3, h.hy, c + h.rx + 2.3, 30)
        m &= ~(rect(0, 27, N, N) & (np.abs(X - c) < h.rx - 1 - (Y - 27)))
        cv.shape(m, lk.hair, "cyl", center=(c - 2, 0), radii=(h.rx + 3, 1), lo=0.3)
    elif style == "bob":
        m = ellipse(c, h.hy + 0.5, h.rx + 2.4, h.ry + 1.5, p=2.4)
        cv.shape(m, lk.hair, center=(c - 2, h.hy - 2), radii=(h.rx + 3, h.ry + 2), lo=0.3)
    elif style in ("ponytail_l", "ponytail_r"):
        s = -1 if style.endswith("l") else 1
        m = ellipse(c + s * (h.rx + 0.8), h.hy + 3.5, 1.9, 6.0) | ellipse(c + s * (h.rx - 0.5), h.hy - 1.5, 2.5, 2.5)
        cv.shape(m, lk.hair, lo=0.3)
    elif style == "bun":
        cv.shape(ellipse(c, h.top - 1.2, 2.8, 2.3), lk.hair, lo=0.3)


def hair_front(cv: Canvas, h: Head, lk: Look, style: str, under_hat: bool = False) -> None:
    """Hair on top of the head and around the face (drawn after the face)."""
    c, er, rx = h.cx, h.er, h.rx
    ax = np.abs(X - c)
    cap = ellipse(c, h.hy - 0.6, rx + 1.0, h.ry + 1.0)
    side = np.clip((ax - (rx - 2.4)) / 1.6, 0, 1)  # 0 at the forehead, 1 at the temples
    if style == "bald":
        return
    if style == "crop":
        line = er - 3.5 + 3.5 * side
    elif style in ("fringe", "bob"):
        line = er - 2.2 + 3.0 * side
    elif style == "swept_l" or style == "swept_r":
        s = 1 if style.endswith("r") else -1
        line = np.clip(er - 3 + s * (X - c) * 0.55, er - 5.5, er - 1.2) + 3.5 * side
    elif style == "spiky":
        line = er - 3 + (X.astype(int) % 2) + 3 * side
        spikes = np.zeros((N, N), bool)
        for k in range(-2, 3):
            x0 = c + 2.6 * k
            spikes |= polygon(
                [(x0 - 1.6, h.top + 1.5), (x0 + 1.6, h.top + 1.5), (x0 + 0.7 * k, h.top - 3.2 + 0.6 * abs(k))]
            )
        cap |= spikes
    elif style == "mohawk":
        cap = rect(c - 1.5, h.top - 3.5, c + 1.5, h.top + 3) | ellipse(c, h.top, 2, 2.5)
        line = np.full((N, N), h.top + 3.0)
    elif style in ("long", "braids_back", "ponytail_l", "ponytail_r", "bun"):
        # Centre parting sweeping down to both temples.
        line = er - 3.8 + 0.55 * ax + 2.5 * side
    else:
        raise ValueError(f"unknown hair style {style!r}")
    m = cap & (Y < line)
    if style in ("long", "braids_back"):
        m |= rect(c - rx - 1.8, h.hy - 3, c - rx + 1.2, h.hy + 4.5) | rect(
            c + rx - 1.2, h.hy - 3, c + rx + 1.8, h.hy + 4.5
        )
    if style == "bob":
        m |= (ax > rx - 1.3) & (ax < rx + 2.4) & (Y > h.hy - 4) & (Y < h.hy + h.ry - 1.0)
    if under_hat:
        m &= Y > h.top + 2.5
    cv.shape(m, lk.hair, center=(c - 2.0, h.top + 1.5), radii=(rx + 2.5, 5.5), lo=0.35, hi=0.85)
    if style in ("long", "braids_back", "ponytail_l", "ponytail_r", "bun") and not under_hat:
        cv.decal(rect(c - 0.5, h.top - 0.5, c + 0.5, h.top + 2.5) & m, lk.hair[0])  # parting


def braids_front(cv: Canvas, h: Head, lk: Look) -> None:
    """Two braids falling in front of the shoulders, with a woven shading pattern."""
    for s in (-1, 1):
        x = h.cx + s * (h.rx + 0.5)
        m = rect(x - 2, h.hy + 1, x + 2, 29.5) & ~(rect(0, 28.5, N, N) & (np.abs(X - x) > 1))
        cv.shape(m, lk.hair, "cyl", center=(x - 1, 0), radii=(2.2, 1), lo=0.1)
        inner = m & (np.abs(X - x) < 1.1) & (Y > h.hy + 2) & (Y < 28)
        cv.decal(inner & (Y.astype(int) % 2 == (X.astype(int) % 2)), lk.hair[0])  # woven strands


def earrings(cv: Canvas, h: Head, lk: Look, style: int) -> None:
    for _s, x in ((-1, h.cx - int(h.rx) - 1), (1, h.cx + int(h.rx))):
        cells = [(x, h.er + 4)]
        if style > 1:
            cells.append((x, h.er + 5))
        cv.decal(px(*cells), lk.trim[2] if style != 3 else lk.gem[1])


# ---- body


def torso(h: Head, width: float = 15.0, top: float | None = None) -> np.ndarray:
    top = h.st if top is None else top
    return ellipse(h.cx, 33.5, width, 33.5 - top, p=3.2)


def draw_torso(cv: Canvas, h: Head, tones, width: float = 15.0) -> np.ndarray:
    return cv.shape(torso(h, width), tones, "round", center=(h.cx - 3, 24), radii=(width + 3, 14), lo=0.45, hi=0.88)


# ---- class gear: warrior


def pauldrons(cv: Canvas, h: Head, lk: Look, layered: bool, spiked: bool) -> None:
    c, st = h.cx, h.st
    for s in (-1, 1):
        x = c + s * 10.0
        if spiked:
            cv.shape(polygon([(x - 1.6, st + 1), (x + 1.6, st + 1), (x + s * 1.8, st - 4.8)]), lk.bone, "cyl", lo=0.2)
        if layered:
            cv.shape(ellipse(x + s * 0.6, st + 5.0, 5.0, 3.2), lk.metal, center=(x - 2, st + 3), radii=(6, 5), lo=0.4)
        cv.shape(ellipse(x, st + 2.6, 5.4, 3.9), lk.metal, center=(x - 1.5, st + 1.2), radii=(6, 4.5), lo=0.45)
        cv.decal(px((int(x) - 1 + (s > 0), int(st + 3))), lk.trim[2])  # rivet


def _metal_front(cv: Canvas, h: Head, lk: Look, top: float, bottom: float, light: tuple[float, float], hi=0.8) -> None:
    """A metal trapezoid from the shoulders (half-width `top`) down to the bottom edge (half-width
    `bottom`), shaded as a cylinder: `light` = (offset left of the centre line, radius)."""
    c, st = h.cx, h.st
    trapezoid = polygon([(c - top, st), (c + top, st), (c + bottom, 32), (c - bottom, 32)])
    cv.shape(trapezoid, lk.metal, "cyl", center=(c - light[0], 0), radii=(light[1], 1), lo=0.35, hi=hi)


def breastplate(cv: Canvas, h: Head, lk: Look, tabard: bool) -> None:
    c, st = h.cx, h.st
    _metal_front(cv, h, lk, top=6, bottom=7.5, light=(2, 8), hi=0.85)
    if tabard:
        cv.shape(rect(c - 2.5, st + 3.5, c + 2.5, 32), lk.cloth, "cyl", lo=0.2)
        cv.decal(px((c - 1, st + 5.5), (c, st + 5.5), (c - 1, st + 6.5), (c, st + 6.5)), lk.trim[1])
    else:
        cv.decal(rect(c - 1, st + 2, c, 32), lk.metal[2])  # centre ridge
    cv.shape(ellipse(c, st + 0.3, 4.6, 2.0), lk.metal, center=(c - 1, st - 1), radii=(5, 3), lo=0.35)  # gorget


def helm_horned(cv: Canvas, h: Head, lk: Look, nasal: bool) -> None:
    c, er, rx = h.cx, h.er, h.rx
    for s in (-1, 1):
        horn = np.zeros((N, N), bool)
        for t in np.linspace(0, 1, 9):
            horn |= ellipse(
                c + s * (rx - 0.5 + 5.0 * np.sin(t * 1.4)), er - 3.0 - 7.5 * t**1.5, 1.9 - 1.2 * t, 1.9 - 1.2 * t
            )
        cv.shape(horn, lk.bone, "cyl", center=(c + s * (rx + 2), 0), radii=(4, 1), lo=0.3)
    dome = ellipse(c, h.hy - 1.0, rx + 1.4, h.ry + 1.3) & (Y < er - 0.5)
    cv.shape(dome, lk.metal, center=(c - 2, h.top + 1), radii=(rx + 2, 5.5), lo=0.4, hi=0.85)
    cv.shape(dome & (Y >= er - 2.5), lk.trim, "cyl", center=(c - 2, 0), radii=(rx + 2, 1), lo=0.3)
    if nasal:
        cv.shape(rect(c - 1, er - 1.5, c + 1, er + 3), lk.metal, "cyl", lo=0.5)


def helm_closed(cv: Canvas, h: Head, lk: Look, tface: bool) -> None:
    """Full helm: a visor with eye slits, or a T-shaped face opening (barbute)."""
    c, er, rx = h.cx, h.er, h.rx
    m = ellipse(c, h.hy - 0.6, rx + 1.5, h.ry + 1.4, p=2.6)
    if tface:
        m &= ~(rect(c - 4.5, er - 1, c + 4.5, er + 2) | rect(c - 2, er, c + 2, 32))
    cv.shape(m, lk.metal, center=(c - 2, h.hy - 3), radii=(rx + 2.5, h.ry + 2), lo=0.4, hi=0.85)
    if tface:
        return
    cv.decal(rect(c - 5, er, c - 1, er + 1) | rect(c + 1, er, c + 5, er + 1), lk.outline)  # eye slits
    cv.decal(rect(c - 1, h.top, c, er + 6), lk.metal[2])  # ridge
    cv.decal(px((c + 2, er + 3), (c + 4, er + 3), (c + 3, er + 4), (c + 2, er + 5), (c + 4, er + 5)), lk.outline)


def helm_sallet(cv: Canvas, h: Head, lk: Look) -> None:
    """Open helm with cheek guards and a raised visor across the brow."""
    c, er, rx = h.cx, h.er, h.rx
    dome = ellipse(c, h.hy - 1.0, rx + 1.5, h.ry + 1.4) & (Y < er - 0.5)
    cheeks = ellipse(c, h.hy, rx + 1.5, h.ry + 1.4) & (np.abs(X - c) > rx - 1.8) & (Y < h.hy + 4.5)
    cv.shape(dome | cheeks, lk.metal, center=(c - 2, h.top + 1), radii=(rx + 2, 7), lo=0.4, hi=0.85)
    visor = rect(c - rx - 1.5, er - 5, c + rx + 1.5, er - 1.5) & ellipse(c, h.hy - 1, rx + 2.2, h.ry + 2)
    cv.shape(visor, lk.metal, "cyl", center=(c - 2, 0), radii=(rx + 2, 1), lo=0.3)
    cv.decal(rect(c - 4, er - 3, c - 1, er - 2) | rect(c + 1, er - 3, c + 4, er - 2), lk.outline)


# ---- class gear: mage


def robe_collar(cv: Canvas, h: Head, lk: Look, high: bool) -> None:
    c, st = h.cx, h.st
    cv.shape(polygon([(c - 3.2, st - 0.5), (c + 3.2, st - 0.5), (c, st + 5.5)]), lk.cloth2, "flat")  # V neck
    rise = 5.5 if high else 2.0
    for s in (-1, 1):
        pts = [
            (c + s * 2.6, st + 5.5),
            (c + s * 3.4, st - rise + 1.5),
            (c + s * 7.5, st - rise),
            (c + s * 9.0, st + 1.0),
            (c + s * 4.0, st + 6.5),
        ]
        cv.shape(polygon(pts), lk.cloth2, center=(c + s * 5 - 2, st - 1), radii=(4, 4), lo=0.35)


def amulet(cv: Canvas, h: Head, lk: Look) -> None:
    c, st = h.cx, h.st
    chain = segment(c - 3, st - 0.5, c - 0.5, st + 3.8, 0.8) | segment(c + 2, st - 0.5, c - 0.5, st + 3.8, 0.8)
    cv.decal(chain, lk.trim[1])
    cv.shape(ellipse(c, st + 5.2, 1.6, 1.7), lk.gem, lo=0.3)
    cv.decal(px((c - 1, int(st + 4))), lk.white)


def staff(cv: Canvas, h: Head, lk: Look, side: int, head: str) -> None:
    x = h.cx + side * 12.0
    cv.shape(segment(x, 33, x - side * 0.4, 8.5, 1.7), lk.wood, "cyl", center=(x - 0.5, 0), radii=(1.2, 1), lo=0.3)
    if head == "orb":
        cv.shape(
            segment(x - 2.2, 9.5, x + 2.2, 9.5, 1.2)
            | segment(x - 2.2, 9.5, x - 2.2, 5.5, 1.0)
            | segment(x + 2.2, 9.5, x + 2.2, 5.5, 1.0),
            lk.trim,
            "flat",
        )
        cv.shape(ellipse(x, 6.3, 2.2, 2.3), lk.gem, lo=0.3, hi=0.75)
    elif head == "crystal":
        cv.shape(
            polygon([(x, 0.5), (x + 2.3, 5.5), (x, 10.0), (x - 2.3, 5.5)]),
            lk.gem,
            "cyl",
            center=(x, 0),
            radii=(2.3, 1),
            lo=0.2,
            hi=0.8,
        )
    else:  # crescent
        moon = ellipse(x, 5.5, 3.2, 3.2) & ~ellipse(x + side * 1.5, 4.0, 2.5, 2.6)
        cv.shape(moon, lk.trim, lo=0.3)
        cv.shape(ellipse(x - side * 0.5, 6.0, 1.1, 1.1), lk.gem, "flat")


def hat_pointed(cv: Canvas, h: Head, lk: Look, bend: float) -> None:
    c, rx = h.cx, h.rx
    by = h.er - 2.0
    cone = polygon(
        [
            (c - rx + 0.5, by),
            (c - 3.0 + 0.3 * bend, by - 6.0),
            (c + bend * 5, by - 12.5),
            (c + 3.0 + 0.6 * bend, by - 6.0),
            (c + rx - 0.5, by),
        ]
    )
    cv.shape(cone, lk.cloth, center=(c - 2, by - 4), radii=(6.5, 8), lo=0.35, hi=0.85)
    cv.shape(cone & (Y > by - 3), lk.cloth2, "cyl", center=(c - 2, 0), radii=(rx, 1), lo=0.3)
    cv.shape(ellipse(c, by + 0.3, rx + 5.0, 1.7), lk.cloth, center=(c - 3, by - 1), radii=(rx + 6, 3), lo=0.35)


def hood(cv: Canvas, h: Head, lk: Look, tones, pointed: float, part: str) -> None:
    """A hood in two passes: part="inside" (the shadowed opening, before the face)
    and part="outside" (the cowl, drawn over the face edges and hair)."""
    c, rx, ry, hy = h.cx, h.rx, h.ry, h.hy
    opening = ellipse(c, hy + 1.2, rx + 0.4, ry + 0.3)
    if part == "inside":
        cv.shape(opening, tones, "dark", outline=False)
        return
    outer = ellipse(c, hy - 0.4, rx + 2.7, ry + 2.3)
    if pointed:
        tip = c + pointed * 3
        outer |= polygon([(c - 4.5, h.top - 0.5), (c + 4.5, h.top - 0.5), (tip, h.top - 6.0)])
    drape = polygon([(c - rx - 2.7, hy), (c + rx + 2.7, hy), (c + rx + 5.5, h.st + 3.5), (c - rx - 5.5, h.st + 3.5)])
    cv.shape((outer | drape) & ~opening, tones, center=(c - 3, hy - 2), radii=(rx + 5, ry + 6), lo=0.4, hi=0.88)
    # Fold line down the middle of the cowl's peak.
    cv.decal(rect(c - 1, h.top - 3, c, hy + 1.2 - ry - 0.3) & outer, tones[0])


def circlet(cv: Canvas, h: Head, lk: Look) -> None:
    c = h.cx
    cv.decal(rect(c - h.rx, h.er - 3.5, c + h.rx, h.er - 2.5) & ellipse(c, h.hy, h.rx + 1, h.ry + 1), lk.trim[1])
    cv.shape(px((c - 1, h.er - 4), (c, h.er - 4), (c - 1, h.er - 3), (c, h.er - 3)), lk.gem, "flat")


# ---- class gear: rogue


def leather_collar(cv: Canvas, h: Head, lk: Look) -> None:
    c, st = h.cx, h.st
    pts = [
        (c - 6.5, st - 1.0),
        (c + 6.5, st - 1.0),
        (c + 7.5, st + 2.0),
        (c + 2.0, st + 3.5),
        (c, st + 2.0),
        (c - 2.0, st + 3.5),
        (c - 7.5, st + 2.0),
    ]
    cv.shape(polygon(pts), lk.leather, center=(c - 2, st - 1), radii=(8, 4), lo=0.35)


def chest_strap(cv: Canvas, h: Head, lk: Look, side: int) -> None:
    c, st = h.cx, h.st
    cv.shape(segment(c + side * 9, st + 0.5, c - side * 7, 33, 2.0), lk.leather, "flat")
    bx, by = c + side * 2, st + 6
    cv.decal(px((int(bx), int(by)), (int(bx) - 1, int(by))), lk.trim[2])


def dagger_hilt(cv: Canvas, h: Head, lk: Look, side: int) -> None:
    """A hilt rising over the shoulder from a sheath on the back (drawn before the body)."""
    c, st = h.cx, h.st
    x0, y0, x1, y1 = c + side * 8.0, st + 3.0, c + side * 11.5, st - 6.0
    cv.shape(segment(x0, y0, x1, y1, 1.6), lk.leather, "flat")
    gx, gy = x0 + (x1 - x0) * 0.3, y0 + (y1 - y0) * 0.3
    cv.shape(segment(gx - 2.6, gy - side * 1.0, gx + 2.6, gy + side * 1.0, 1.8), lk.metal, "cyl", lo=0.4)
    cv.shape(ellipse(x1, y1, 1.6, 1.6), lk.trim, lo=0.3)


def scarf_mask(cv: Canvas, h: Head, lk: Look, tones) -> None:
    c, er = h.cx, h.er
    m = ellipse(c, h.hy + 4.5, h.rx + 1.2, 5.5, p=2.5) & (Y > er + 2.2)
    cv.shape(m, tones, center=(c - 2, er + 3), radii=(h.rx + 2, 6), lo=0.4)
    cv.decal(rect(c - 3, er + 6, c + 2, er + 7) & m, tones[0])  # fold


def eye_mask(cv: Canvas, h: Head, lk: Look, tones) -> None:
    c, er = h.cx, h.er
    m = rect(c - h.rx - 0.5, er - 1, c + h.rx + 0.5, er + 2) & ellipse(c, h.hy, h.rx + 0.5, h.ry)
    cv.shape(m, tones, "cyl", center=(c - 2, 0), radii=(h.rx + 1, 1), lo=0.3)


def bandana(cv: Canvas, h: Head, lk: Look, tones, side: int) -> None:
    c, er, rx = h.cx, h.er, h.rx
    tails = polygon(
        [
            (c + side * (rx - 0.5), er - 3),
            (c + side * (rx + 4.5), er + 1),
            (c + side * (rx + 2.5), er + 2.5),
            (c + side * (rx + 0.5), er - 0.5),
        ]
    )
    cv.shape(tails, tones, lo=0.3)
    cap = ellipse(c, h.hy - 0.6, rx + 1.2, h.ry + 1.2) & (Y < er - 1.2)
    cv.shape(cap, tones, center=(c - 2, h.top + 1), radii=(rx + 2, 5), lo=0.4)


# ---- class gear: cavalry


def lance(cv: Canvas, h: Head, lk: Look, side: int, forked: bool) -> None:
    xb, xt = h.cx + side * 13.5, h.cx + side * 9.0
    cv.shape(segment(xb, 33, xt, 1.5, 1.6), lk.wood, "flat")
    cv.shape(polygon([(xt - 1.3, 2.5), (xt + 1.3, 2.5), (xt - 0.2, -2.5)]), lk.metal, "cyl", lo=0.4)
    y0, y1, far = 3.0, 9.5, xt + side * 9.5
    pts = (
        [(xt, y0), (far, (y0 + y1) / 2 - 1.0), (xt, y1)]
        if not forked
        else [(xt, y0), (far, y0 + 1.5), (far - side * 3.5, (y0 + y1) / 2), (far, y1 - 0.5), (xt, y1)]
    )
    cv.shape(polygon(pts), lk.cloth2, "cyl", center=(xt, 0), radii=(9, 1), lo=-0.2, hi=0.6)


def cloak(cv: Canvas, h: Head, lk: Look, clasp_gem: bool) -> None:
    c, st = h.cx, h.st
    _metal_front(cv, h, lk, top=3.5, bottom=5.5, light=(1.5, 5))
    for s in (-1, 1):
        cv.decal(segment(c + s * 9, st + 3.5, c + s * 10.5, 32, 0.8), lk.cloth[0])  # folds
        cv.shape(ellipse(c + s * 4.0, st + 1.6, 1.6, 1.6), lk.gem if clasp_gem else lk.trim, lo=0.3)
    cv.decal(rect(c - 2.5, st + 1.5, c + 2.5, st + 2.5), lk.trim[1])  # chain between clasps


def helm_plumed(cv: Canvas, h: Head, lk: Look, side: int, crest: bool, cheeks: bool) -> None:
    c, er, rx = h.cx, h.er, h.rx
    if crest:  # transverse crest, bristles standing up
        m = ellipse(c, h.top - 0.5, rx + 3.5, 5.5) & (Y < h.top + 1.5)
        cv.shape(m, lk.plume, center=(c - 2, h.top - 3), radii=(rx + 4, 5), lo=0.35)
        cv.decal(m & (X.astype(int) % 3 == 0) & (Y > h.top - 4.2) & (Y < h.top - 1), lk.plume[0])
    else:  # a plume on the crown sweeping to one side and down behind the head
        plume = np.zeros((N, N), bool)
        for t in np.linspace(0, 1, 12):
            r = 3.1 - 1.5 * t
            plume |= ellipse(c + side * 10.5 * t, h.top - 1.5 - 2.5 * np.sin(np.pi * t * 0.8) + 8.0 * t**2, r, r * 0.85)
        cv.shape(plume, lk.plume, center=(c + side * 4 - 2, h.top - 4), radii=(9, 5), lo=0.35)
        cv.decal(plume & segment(c + side * 2, h.top - 3.5, c + side * 9, h.top + 2.5, 0.9), lk.plume[0])
    dome = ellipse(c, h.hy - 1.0, rx + 1.4, h.ry + 1.3) & (Y < er - 1.0)
    if cheeks:
        dome |= ellipse(c, h.hy, rx + 1.4, h.ry + 1.3) & (np.abs(X - c) > rx - 1.6) & (Y < h.hy + 3.5)
    cv.shape(dome, lk.metal, center=(c - 2, h.top + 1), radii=(rx + 2, 6), lo=0.4, hi=0.85)
    cv.shape(ellipse(c, er - 1.6, rx + 2.6, 1.2), lk.trim, "cyl", center=(c - 2, 0), radii=(rx + 3, 1), lo=0.3)


def hat_cavalier(cv: Canvas, h: Head, lk: Look, side: int) -> None:
    c, er, rx = h.cx, h.er, h.rx
    feather = np.zeros((N, N), bool)
    for t in np.linspace(0, 1, 12):
        r = 2.9 - 1.3 * t
        feather |= ellipse(
            c + side * (1.5 + 10.5 * t), er - 7.0 - 2.0 * np.sin(np.pi * t * 0.8) + 7.5 * t**2, r, r * 0.85
        )
    cv.shape(feather, lk.plume, center=(c + side * 4 - 2, er - 10), radii=(9, 4), lo=0.35)
    cv.decal(feather & segment(c + side * 2, er - 8, c + side * 11, er - 1, 0.9), lk.plume[0])  # quill
    crown = ellipse(c, er - 4.5, rx - 0.2, 4.2, p=2.6) & (Y < er - 2.5)
    cv.shape(crown, lk.cloth2, center=(c - 2, er - 7), radii=(rx, 4), lo=0.4)
    cv.shape(crown & (Y > er - 4.2), lk.trim, "cyl", center=(c - 2, 0), radii=(rx, 1), lo=0.3)
    cv.shape(ellipse(c, er - 2.3, rx + 5.2, 1.8), lk.cloth2, center=(c - 3, er - 3), radii=(rx + 6, 3), lo=0.35)
