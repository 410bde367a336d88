"""A labelled portrait folder composed from a checkout of the Universal LPC spritesheet art.

The LPC art is layered: one 832x1344 sheet per body, hair style, helmet, robe... with the
same 64x64 frame grid, so stacking the same frame of several sheets dresses a character.
We stack the standing frame that faces the viewer, crop the head and shoulders on the
native pixel grid and enlarge it by nearest neighbour, so the portraits stay crisp.

Labels come from how the portrait was made, never from looking at it: gender from the
body sheet (male/female folders), hero class from the recipe that dressed it (the table in
`lpc_recipes.py`), and palette from the project's automatic labeller on the finished image.
The art is CC-BY-SA 3.0 / GPL 3.0: every output folder gets a CREDITS.txt naming the
artists of the layers it actually used. Never copy the art or its portraits into the repo.
"""

from __future__ import annotations

import colorsys
import fnmatch
import itertools
import json
import re
import shutil
import string
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from heroportraits.data.dataset import write_labels_csv
from heroportraits.data.face_regions import LPC_FACE
from heroportraits.data.figures import preview_grid
from heroportraits.data.images import save_png
from heroportraits.data.lpc_recipes import CREDIT_RULES, RECIPES, SLOT_ORDER, TINT_COLOURS
from heroportraits.data.lpc_variety import with_variety
from heroportraits.data.palette_labels import label_palette
from heroportraits.errors import HeroError
from heroportraits.paths import preview_path
from heroportraits.progress import progress_bar

UPSTREAM_URL = "https://github.com/makrohn/Universal-LPC-spritesheet"
LICENCE = (
    "CC-BY-SA 3.0 (https://creativecommons.org/licenses/by-sa/3.0/) "
    "or GPL 3.0 (https://www.gnu.org/licenses/gpl-3.0.html)"
)

SHEET_SIZE = (832, 1344)  # (width, height) of every LPC character sheet
FRAME = 64  # one animation frame is 64x64
FACING_VIEWER_ROW = 10  # walk cycle, facing down (towards the viewer)
STANDING_COLUMN = 0  # first walk frame: standing still
CROP_LEFT, CROP_TOP, CROP_SIZE = 16, 10, 32  # head and shoulders inside the frame (native px)
OUTPUT_SIZE = 64  # CROP_SIZE enlarged by nearest neighbour -> 2x2 blocks per art pixel

GENDER_LABELS = {"male": "masculine", "female": "feminine"}  # body folder -> label


class LPCArtError(HeroError):
    """A folder that does not hold the LPC art, or a recipe that names missing layers."""


@dataclass(frozen=True)
class Layer:
    """One art sheet to stack, optionally recoloured (tint: a TINT_COLOURS name)."""

    path: str  # relative to the art folder, '/'-separated
    tint: str | None = None

    def __str__(self) -> str:
        return self.path + (f"#tint={self.tint}" if self.tint else "")


@dataclass
class Background:
    """A vertical gradient from `top` to `bottom` (equal colours: flat), and the scene's light.

    `light` < 1 dims the whole portrait (dusk, a dungeon): the figures themselves are
    mid-bright, so a dark backdrop alone rarely makes a dark portrait.
    """

    top: tuple[int, int, int]
    bottom: tuple[int, int, int]
    light: float = 1.0

    def __str__(self) -> str:
        light = f"*{self.light:.2f}" if self.light != 1.0 else ""
        return "#{:02x}{:02x}{:02x}-#{:02x}{:02x}{:02x}".format(*self.top, *self.bottom) + light


@dataclass
class RecipeChoice:
    """Everything drawn for one portrait: its labels and its layers per slot."""

    hero_class: str
    body: str  # body folder: "male" or "female"
    outfit: str
    layers: dict[str, list[Layer]] = field(default_factory=dict)  # slot -> layers, bottom first
    vars: dict[str, str] = field(default_factory=dict)
    background: Background | None = None
    hair_hidden: bool = False  # a helmet or hood replaced the hair

    @property
    def gender(self) -> str:
        return GENDER_LABELS[self.body]

    def ordered_layers(self) -> list[Layer]:
        """All layers in z-order (SLOT_ORDER), bottom first."""
        return [layer for slot in SLOT_ORDER for layer in self.layers.get(slot, [])]


def _missing_art_message(root: Path, what: str) -> str:
    return (
        f"{root} does not hold the Universal LPC spritesheet art ({what}). Expected the "
        f"upstream layout, e.g. body/male/light.png, body/female/*.png, hair/<male|female>/"
        f"<style>/<colour>.png, head/helms/... Get it with `git clone {UPSTREAM_URL}` and "
        f"point --art at the clone."
    )


class LPCArt:
    """A local LPC art folder: finds sheets by pattern and caches the one cropped frame of each.

    Only the head-and-shoulders crop of the viewer-facing standing frame is kept per
    sheet, as float32 (CROP_SIZE, CROP_SIZE, 4) in [0, 1]; every PNG is decoded once.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise LPCArtError(_missing_art_message(self.root, "no such folder"))
        for body in ("male", "female"):  # checked before indexing: --art may be a huge folder
            if not any((self.root / "body" / body).glob("*.png")):
                raise LPCArtError(_missing_art_message(self.root, f"no body/{body}/*.png"))
        # Index every sheet once (relative posix paths and their folder segments).
        self.files = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*.png"))
        self._segments = [f.split("/") for f in self.files]
        self._match_cache: dict[str, list[str]] = {}
        with Image.open(self.root / self.match("body/male/*.png")[0]) as im:
            if im.size != SHEET_SIZE:
                size = f"{im.size[0]}x{im.size[1]}, not {SHEET_SIZE[0]}x{SHEET_SIZE[1]}"
                raise LPCArtError(_missing_art_message(self.root, f"body sheets are {size}"))
        self._crop_cache: dict[Layer, np.ndarray] = {}
        self.used: set[str] = set()  # sheets actually composed, for CREDITS.txt

    def match(self, pattern: str) -> list[str]:
        """Sheets matching a '/'-separated glob whose `*` stays inside one folder name."""
        if pattern not in self._match_cache:
            parts = pattern.split("/")
            self._match_cache[pattern] = [
                f
                for f, seg in zip(self.files, self._segments)
                if len(seg) == len(parts) and all(fnmatch.fnmatchcase(s, p) for s, p in zip(seg, parts))
            ]
        return self._match_cache[pattern]

    def crop(self, layer: Layer) -> np.ndarray:
        """The head-and-shoulders crop of one sheet's standing front frame: (32, 32, 4) float32."""
        if layer not in self._crop_cache:
            if layer.tint is not None:
                self._crop_cache[layer] = tint(self.crop(Layer(layer.path)), TINT_COLOURS[layer.tint])
            else:
                path = self.root / layer.path
                if not path.is_file():
                    raise LPCArtError(f"missing LPC layer {path}; is the art checkout complete?")
                x0 = STANDING_COLUMN * FRAME + CROP_LEFT
                y0 = FACING_VIEWER_ROW * FRAME + CROP_TOP
                with Image.open(path) as im:
                    # Crop first so that only one frame gets converted to RGBA.
                    rgba = im.crop((x0, y0, x0 + CROP_SIZE, y0 + CROP_SIZE)).convert("RGBA")
                self._crop_cache[layer] = np.asarray(rgba, np.float32) / 255.0
        return self._crop_cache[layer]

    def authors_file(self) -> Path | None:
        path = self.root / "AUTHORS.txt"
        return path if path.is_file() else None


def tint(rgba: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Recolour a layer to `colour`, keeping its shading (luminance relative to its median)."""
    out = rgba.copy()
    lum = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)  # (H, W)
    opaque = rgba[..., 3] > 0.5
    ref = float(np.median(lum[opaque])) if opaque.any() else 0.5
    rel = lum / max(ref, 1e-3)  # 1.0 at the layer's mid-tone
    out[..., :3] = np.clip(rel[..., None] * (np.asarray(colour, np.float32) / 255.0), 0, 1)
    return out


# ---------------------------------------------------------------------------------------
# Drawing a recipe


def load_recipes(path: str | Path | None = None) -> dict:
    """The recipe table: lpc_recipes.RECIPES, or a JSON file with the same structure."""
    if path is None:
        return RECIPES
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise LPCArtError(f"cannot read recipe table {path}: {e}") from e
    if "classes" not in data or "common" not in data:
        raise LPCArtError(f"recipe table {path} needs 'common' and 'classes' (see lpc_recipes.py)")
    return data


def _weighted(rng: np.random.Generator, items: list, weights: list[float]):
    w = np.asarray(weights, np.float64)
    return items[int(rng.choice(len(items), p=w / w.sum()))]


def _allowed(entry: dict, body: str, values: dict | None = None) -> bool:
    """Gender restriction, and `when`/`unless` conditions on drawn variables (e.g. skin)."""
    if body not in entry.get("genders", ("male", "female")):
        return False
    values = values or {}
    if any(values.get(k) not in v for k, v in entry.get("when", {}).items()):
        return False
    return not any(values.get(k) in v for k, v in entry.get("unless", {}).items())


def class_genders(recipes: dict) -> list[tuple[str, str]]:
    """(hero_class, body) pairs the recipes can dress, in table order: the balanced cycle."""
    return [
        (cls, body)
        for cls, spec in recipes["classes"].items()
        for body in ("male", "female")
        if any(_allowed(o, body) for o in spec["outfits"])
    ]


def choose_recipe(
    art: LPCArt, hero_class: str, body: str, rng: np.random.Generator, recipes: dict | None = None
) -> RecipeChoice:
    """Draw an outfit, variables and one option per slot for a class and body; resolve files."""
    recipes = recipes or RECIPES
    if hero_class not in recipes["classes"]:
        raise LPCArtError(f"unknown hero class {hero_class!r}; the recipes have {list(recipes['classes'])}")
    outfits = [o for o in recipes["classes"][hero_class]["outfits"] if _allowed(o, body)]
    if not outfits:
        raise LPCArtError(f"no {hero_class} outfit allows a {body} body; add one in the recipe table")
    outfit = _weighted(rng, outfits, [o.get("w", 1) for o in outfits])

    # Variables first (outfit overrides common), so matching parts share one colour.
    var_specs = {**recipes["common"].get("vars", {}), **outfit.get("vars", {})}
    values = {"g": body}
    for name, spec in var_specs.items():
        options = spec if isinstance(spec, dict) else {v: 1 for v in spec}
        values[name] = _weighted(rng, list(options), list(options.values()))

    slots = {**recipes["common"].get("slots", {}), **outfit.get("slots", {})}
    choice = RecipeChoice(hero_class, body, outfit.get("name", "outfit"), vars=dict(values))
    hide_hair = False
    extra: dict[str, list[Layer]] = {}
    for slot in SLOT_ORDER:  # fixed order: the rng draws the same sequence for every recipe
        options = [o for o in slots.get(slot, []) if _allowed(o, body, values)]
        if not options:
            continue
        option = _weighted(rng, options, [o.get("w", 1) for o in options])
        hide_hair |= bool(option.get("hide_hair"))
        colour = option.get("tint")
        colour = colour.format(**values) if colour else None
        if colour is not None and colour not in TINT_COLOURS:
            raise LPCArtError(f"tint {colour!r} in the {hero_class} recipe is not in TINT_COLOURS")
        where = f"{hero_class}/{choice.outfit}/{slot}"
        choice.layers[slot] = _resolve(art, option.get("layers", []), values, colour, rng, where)
        for other, patterns in option.get("also", {}).items():
            extra[other] = extra.get(other, []) + _resolve(art, patterns, values, colour, rng, where)
    for other, layers in extra.items():  # parts of an option that sit at another depth
        choice.layers[other] = choice.layers.get(other, []) + layers
    if hide_hair:  # helmets and hoods replace the hair rather than sit on it
        choice.layers["hair"] = []
        choice.hair_hidden = True
    return choice


def _resolve(
    art: LPCArt, patterns: list[str], values: dict, colour: str | None, rng: np.random.Generator, where: str
) -> list[Layer]:
    """Patterns -> layers: fill in variables, pick one file per `*` match, skip optional misses."""
    layers = []
    for pattern in patterns:
        resolved = pattern.lstrip("?").format(**values)
        matches = art.match(resolved)
        if not matches:
            if pattern.startswith("?"):
                continue
            raise LPCArtError(
                f"recipe {where}: no LPC sheet matches {resolved!r} in {art.root}. "
                f"Fix the pattern in lpc_recipes.py or the art checkout."
            )
        layers.append(Layer(matches[int(rng.integers(len(matches)))], colour))
    return layers


def check_recipes(art: LPCArt, recipes: dict | None = None) -> list[str]:
    """Every problem in a recipe table: patterns no sheet matches, unknown tints or slots.

    Each pattern is tried with every value of the variables it uses, for every body the
    option allows, so a typo shows up here rather than as a rare crash mid-generation.
    """
    recipes = recipes or RECIPES
    problems = []
    for cls, spec in recipes["classes"].items():
        for outfit in spec["outfits"]:
            var_specs = {**recipes["common"].get("vars", {}), **outfit.get("vars", {})}
            slots = {**recipes["common"].get("slots", {}), **outfit.get("slots", {})}
            for slot, options in slots.items():
                if slot not in SLOT_ORDER:
                    problems.append(f"{cls}/{outfit.get('name')}: unknown slot {slot!r} (known: {SLOT_ORDER})")
                for option in options:
                    for other in option.get("also", {}):
                        if other not in SLOT_ORDER:
                            problems.append(f"{cls}/{outfit.get('name')}: unknown slot {other!r} in 'also'")
                    patterns = list(option.get("layers", [])) + [
                        p for ps in option.get("also", {}).values() for p in ps
                    ]
                    for body in option.get("genders", outfit.get("genders", ["male", "female"])):
                        problems += _check_option(
                            art, option, patterns, var_specs, body, f"{cls}/{outfit.get('name')}/{slot}"
                        )
    return sorted(set(problems))


def _check_option(art: LPCArt, option: dict, patterns: list[str], var_specs: dict, body: str, where: str) -> list[str]:
    """Problems of one option for one body: every variable value of every pattern and tint."""
    problems = []
    texts = patterns + ([option["tint"]] if option.get("tint") else [])
    for text in texts:
        is_tint = text is not None and text == option.get("tint") and text not in patterns
        names = sorted({f for _, f, _, _ in string.Formatter().parse(text) if f and f != "g"})
        unknown = [n for n in names if n not in var_specs]
        if unknown:
            problems.append(f"{where}: {text!r} uses undefined variable(s) {unknown}")
            continue
        misses, tried = [], 0
        for combo in itertools.product(*[list(var_specs[n]) for n in names]):
            values = dict(zip(names, combo), g=body)
            when = {k: v for k, v in option.get("when", {}).items() if k in values}
            unless = {k: v for k, v in option.get("unless", {}).items() if k in values}
            if any(values[k] not in v for k, v in when.items()) or any(values[k] in v for k, v in unless.items()):
                continue  # the option is never drawn with these values
            tried += 1
            resolved = text.lstrip("?").format(**values)
            if is_tint:
                if resolved not in TINT_COLOURS:
                    misses.append(f"{where}: tint {resolved!r} is not in TINT_COLOURS")
            elif not art.match(resolved):
                misses.append(f"{where} ({body}): no sheet matches {resolved!r}")
        if text.startswith("?"):
            # Optional layers may miss for some values, but a pattern that never matches is a typo.
            if tried and len(misses) == tried:
                problems.append(f"{where} ({body}): optional {text!r} matches no sheet for any value")
        else:
            problems += misses
    return problems


def choose_background(rng: np.random.Generator) -> Background:
    """Flat or gradient, any hue and brightness: drawn independently of the class."""
    h, s, v = rng.uniform(0, 1), rng.uniform(0.0, 0.9), rng.uniform(0.12, 0.95)
    top = tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h, s, v))
    light = float(rng.uniform(0.45, 0.7)) if rng.uniform() < 0.1 else 1.0
    if rng.uniform() < 0.4:
        return Background(top, top, light)
    h2 = (h + rng.uniform(-0.08, 0.08)) % 1.0
    v2 = float(np.clip(v + rng.choice([-1, 1]) * rng.uniform(0.15, 0.35), 0.05, 1.0))
    bottom = tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h2, s, v2))
    return Background(top, bottom, light)


def render_background(bg: Background, size: int = CROP_SIZE) -> np.ndarray:
    """(size, size, 3) float32 in [0, 1]; one colour per native row so it stays on the pixel grid."""
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None]  # (size, 1)
    rows = (1 - t) * np.asarray(bg.top, np.float32) + t * np.asarray(bg.bottom, np.float32)
    return np.repeat((rows / 255.0)[:, None, :], size, axis=1)


def compose_portrait(
    art: LPCArt, recipe_choice: RecipeChoice, rng: np.random.Generator | None = None, alpha: bool = False
) -> np.ndarray:
    """Stack the chosen layers in z-order over the background -> (64, 64, 3) uint8.

    The background is `recipe_choice.background`, or drawn from `rng` when that is None.
    alpha=True: (64, 64, 4), the same colours and the figure's mask, 255 where any layer is at least
    half opaque (alpha >= 128) and 0 where only the background shows.
    """
    bg = recipe_choice.background
    if bg is None:
        bg = choose_background(rng if rng is not None else np.random.default_rng())
    canvas = render_background(bg)  # (32, 32, 3)
    figure = np.zeros(canvas.shape[:2], bool)
    for layer in recipe_choice.ordered_layers():
        rgba = art.crop(layer)  # (32, 32, 4)
        cover = rgba[..., 3:4]
        canvas = rgba[..., :3] * cover + canvas * (1.0 - cover)  # "over", canvas stays opaque
        figure |= np.round(rgba[..., 3] * 255.0) >= 128  # on the byte scale: float 128/255 could miss
        art.used.add(layer.path)
    native = np.clip(canvas * (bg.light * 255.0) + 0.5, 0, 255).astype(np.uint8)  # (32, 32, 3)
    if alpha:
        native = np.dstack([native, np.where(figure, 255, 0).astype(np.uint8)])  # (32, 32, 4)
    k = OUTPUT_SIZE // CROP_SIZE
    return native.repeat(k, axis=0).repeat(k, axis=1)  # (64, 64, 3 or 4), k x k blocks


def make_portrait(art: LPCArt, index: int, seed: int = 0, recipes: dict | None = None, alpha: bool = False):
    """Portrait number `index` of a seeded run: (image, RecipeChoice). Same (seed, index) -> same;
    alpha=True adds the figure's mask as a 4th channel (compose_portrait)."""
    recipes = recipes or RECIPES
    combos = class_genders(recipes)
    hero_class, body = combos[index % len(combos)]  # balanced classes and genders
    rng = np.random.default_rng([seed, index])
    choice = choose_recipe(art, hero_class, body, rng, recipes)
    choice.background = choose_background(rng)
    return compose_portrait(art, choice, alpha=alpha), choice


# ---------------------------------------------------------------------------------------
# Credits


def parse_authors(text: str) -> dict[str, list[str]]:
    """AUTHORS.txt -> {author: [items]}. Authors are lines underlined with dashes."""
    lines = text.lstrip("\ufeff").splitlines()
    authors: dict[str, list[str]] = {}
    current = None
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"-{3,}", nxt.strip()):
            current = line.strip()
            authors[current] = []
        elif current and line.strip() and not re.fullmatch(r"-{3,}", line.strip()):
            authors[current].append(line.strip())
    return authors


def credits_for(paths: list[str]) -> dict[str, dict[str, set[str]]]:
    """{author: {item: {files}}} for the given sheets, from CREDIT_RULES."""
    out: dict[str, dict[str, set[str]]] = {}
    for path in paths:
        for pattern, pairs in CREDIT_RULES:
            m = re.search(pattern, path)
            if not m:
                continue
            for author, item in pairs:
                item = item.replace("{1}", m.group(1)) if "{1}" in item else item
                out.setdefault(author, {}).setdefault(item, set()).add(path)
    return out


def write_credits(art: LPCArt, paths: list[str], out_path: Path) -> Path:
    """CREDITS.txt: the licence, the source, and the artists of every layer used."""
    known = parse_authors(art.authors_file().read_text(encoding="utf-8")) if art.authors_file() else {}
    credits = credits_for(sorted(paths))
    uncredited = sorted(p for p in paths if not any(p in files for a in credits.values() for files in a.values()))
    lines = [
        "Portraits composed from the Universal LPC Spritesheet art (Liberated Pixel Cup).",
        f"Source: {UPSTREAM_URL} (local copy: {art.root.resolve()})",
        f"Licence: {LICENCE}.",
        "The portraits are derived works of the layers below and carry the same licence;",
        "credit these artists when you use or share them (names as in the upstream AUTHORS.txt).",
        "Changes made: layers stacked into characters, the standing front frame cropped to head and",
        "shoulders and enlarged 2x by nearest neighbour over generated backgrounds; some hoods and",
        "capes recoloured; some portraits dimmed.",
        "",
        f"Artists of the {len(paths)} layers used:",
        "",
    ]
    for author in sorted(credits):
        note = "" if author in known else "  [not found in this checkout's AUTHORS.txt]"
        lines.append(f"{author}{note}")
        for item in sorted(credits[author]):
            files = sorted(credits[author][item])
            shown = ", ".join(files[:4]) + (f", ... ({len(files)} files)" if len(files) > 4 else "")
            lines.append(f"  - {item}: {shown}")
        lines.append("")
    if uncredited:
        lines.append("Layers with no specific author entry (credit: Universal LPC Spritesheet contributors,")
        lines.append("see AUTHORS.txt of the source):")
        lines += [f"  - {p}" for p in uncredited]
        lines.append("")
    out_path.write_text("\n".join(lines), encoding="utf-8")
    return out_path


# ---------------------------------------------------------------------------------------
# The folder


def _upstream_commit(root: Path) -> str | None:
    """The art checkout's commit: from .git, or a 'commit abc1234' mention in its README."""
    head = root / ".git" / "HEAD"
    if head.is_file():
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref_file = root / ".git" / ref[5:]
            return ref_file.read_text().strip() if ref_file.is_file() else None
        return ref
    readme = root / "README.md"
    if readme.is_file():
        m = re.search(r"commit ([0-9a-f]{7,40})", readme.read_text(encoding="utf-8", errors="replace"))
        return m.group(1) if m else None
    return None


def generate_lpc_folder(
    art_dir: str | Path | None,
    out_dir: str | Path,
    n: int = 7600,
    seed: int = 0,
    progress: bool = True,
    recipes: dict | None = None,
    variety: str = "high",
    alpha: bool = False,
) -> Path:
    """Write n labelled portraits: images/00000.png..., labels.csv, CREDITS.txt, source.json;
    preview grid beside the folder. `variety` (lpc_variety.py): "high" mixes head items, outfits
    and colours within each class like a curated real set; "low" is the recipe table as written.
    alpha=True: RGBA PNGs, transparent where only the background shows, so `prepare` keeps the mask."""
    art, recipes = _checked_art(art_dir, with_variety(recipes or RECIPES, variety))
    out = Path(out_dir)
    if (out / "images").exists():
        shutil.rmtree(out / "images")  # a rerun replaces the folder's images, never mixes runs
    (out / "images").mkdir(parents=True)
    t0 = time.perf_counter()
    rows = []
    previews: dict[tuple[str, str], list[np.ndarray]] = {}  # (class, gender) -> first portraits
    for i in progress_bar(range(n), desc="lpc portraits", disable=not progress, unit="img"):
        drawn, choice = make_portrait(art, i, seed, recipes, alpha=alpha)
        name = f"{i:05d}.png"
        save_png(drawn, out / "images" / name)
        img = drawn[..., :3]  # labels and the preview read the colours
        rows.append(_label_row(f"images/{name}", img, choice))
        group = previews.setdefault((choice.hero_class, choice.gender), [])
        if len(group) < 10:  # keep a few per group for the preview grid
            group.append(img)
    seconds = time.perf_counter() - t0

    write_labels_csv(out / "labels.csv", rows, list(rows[0]) if rows else ["file", "gender", "hero_class", "palette"])
    write_credits(art, sorted(art.used), out / "CREDITS.txt")
    source = {**lpc_source_info(art, n=n, seed=seed, recipes=recipes), "variety": variety, "alpha": alpha}
    source["seconds"] = round(seconds, 1)
    (out / "source.json").write_text(json.dumps(source, indent=2), encoding="utf-8")
    if previews:
        genders = [g for g in GENDER_LABELS.values() if any(k[1] == g for k in previews)]
        panels = {g: [previews.get((c, g), []) for c in recipes["classes"]] for g in genders}
        preview_grid(panels, list(recipes["classes"]), path=preview_path(out))
    return out


def _checked_art(art_dir: str | Path | None, recipes: dict) -> tuple[LPCArt, dict]:
    """The art folder, checked against the recipe table before anything is written: an incomplete
    checkout fails here, not mid-run."""
    if art_dir is None:
        raise LPCArtError(
            f"no LPC art folder given: pass --art (or LPC_ART in notebook 01) pointing at a clone of {UPSTREAM_URL}"
        )
    art = LPCArt(art_dir)
    problems = check_recipes(art, recipes)
    if problems:
        shown = "\n  ".join(problems[:10]) + (f"\n  ... ({len(problems)} problems)" if len(problems) > 10 else "")
        raise LPCArtError(
            f"the recipe table does not fit the LPC art in {art.root} (is the checkout complete? "
            f"compare it with {UPSTREAM_URL}):\n  {shown}"
        )
    return art, recipes


def _label_row(file: str, img: np.ndarray, choice) -> dict:
    """labels.csv's row for one portrait: the three labels, then what was drawn (for curation)."""
    hair = next((str(x) for x in choice.layers.get("hair", [])), "hidden" if choice.hair_hidden else "none")
    return {
        "file": file,
        "gender": choice.gender,
        "hero_class": choice.hero_class,
        "palette": label_palette(img),
        "outfit": choice.outfit,
        "body": choice.body,
        "skin": choice.vars.get("skin", ""),
        "hair": hair,
        "headgear": ";".join(str(x) for x in choice.layers.get("head", [])) or "none",
        "background": str(choice.background),
        "layers": ";".join(str(x) for x in choice.ordered_layers()),
    }


def lpc_source_info(art: LPCArt, n: int, seed: int, recipes: dict | None = None) -> dict:
    """What made the folder: enough to cite it and to regenerate it exactly."""
    recipes = recipes or RECIPES
    return {
        "kind": "lpc",
        "name": "Universal LPC Spritesheet (Liberated Pixel Cup) art",
        "url": UPSTREAM_URL,
        "art_dir": str(art.root.resolve()),
        "upstream_commit": _upstream_commit(art.root),
        "licence": LICENCE,
        "credits": "CREDITS.txt",
        "generator": "heroportraits.data.lpc",
        "n": n,
        "seed": seed,
        "frame": {"row": FACING_VIEWER_ROW, "column": STANDING_COLUMN, "size": FRAME},
        "crop": {"left": CROP_LEFT, "top": CROP_TOP, "size": CROP_SIZE},
        "face_box": list(LPC_FACE),  # where the faces are, in output pixels (data/face_regions.py)
        "native_scale": OUTPUT_SIZE // CROP_SIZE,
        "resolution": OUTPUT_SIZE,
        "hero_classes": list(recipes["classes"]),
        "labels": {
            "gender": "body folder",
            "hero_class": "recipe",
            "palette": "heroportraits.data.palette_labels.label_palette",
        },
    }


# ---------------------------------------------------------------------------------------
# Into a dataset: the same prepare and build as any other source


def prepare_lpc_dataset(
    name: str,
    source_dir: str | Path,
    recipes: dict | None = None,
    overrides_csv: str | Path | None = None,
    progress: bool = True,
):
    """prepare_dataset on a generated LPC folder -> data/<name>/prepared/, CREDITS.txt into data/<name>/.

    The classes keep the recipe table's order; the palette is re-measured by prepare
    (auto_palette=True), which reports its agreement with labels.csv (100%: same labeller,
    same pixels). CREDITS.txt goes beside the dataset now, so that building it later (CLI
    `build` or notebook 02) leaves a final dataset that carries its licence.
    """
    from heroportraits.data.attributes import GENDERS, PALETTES
    from heroportraits.data.prepare import prepare_dataset
    from heroportraits.paths import data_dir

    source_dir = Path(source_dir)
    recipes = recipes or RECIPES
    if not (source_dir / "source.json").is_file() or not (source_dir / "CREDITS.txt").is_file():
        raise LPCArtError(
            f"{source_dir} is not a generated LPC folder (no source.json / CREDITS.txt); "
            f"make one with generate_lpc_folder or `python -m heroportraits lpc --no-build`"
        )
    source = json.loads((source_dir / "source.json").read_text(encoding="utf-8"))
    result = prepare_dataset(
        source_dir,
        name,
        labels_csv=source_dir / "labels.csv",
        attributes=["gender", "hero_class", "palette"],
        auto_palette=True,
        overrides_csv=overrides_csv,
        values={"gender": GENDERS, "hero_class": list(recipes["classes"]), "palette": PALETTES},
        source=source,
        progress=progress,
    )
    shutil.copy2(source_dir / "CREDITS.txt", data_dir() / name / "CREDITS.txt")  # the licence travels with the data
    return result


def build_lpc_dataset(
    name: str,
    source_dir: str | Path,
    recipes: dict | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    progress: bool = True,
):
    """prepare + build on a generated LPC folder -> data/<name>/ with CREDITS.txt: (PrepareResult, BuildResult)."""
    from heroportraits.data.build import build_dataset

    prepared = prepare_lpc_dataset(name, source_dir, recipes=recipes, progress=progress)
    built = build_dataset(name, val_fraction=val_fraction, seed=seed, progress=progress)
    return prepared, built


# ---------------------------------------------------------------------------------------
# CLI
