"""Data tables for the LPC source: which art layers make which hero class, and who drew them.

Kept apart from `lpc.py` so that changing what a "mage" wears, or adding a class, is an
edit to a table and not to code. Everything here is plain dicts and lists (JSON-shaped):
`lpc.load_recipes(path)` reads the same structure from a JSON file to override it.

Recipe structure
----------------
RECIPES["common"]            slots and variables every portrait draws (skin, eyes, hair...)
RECIPES["classes"][name]     {"outfits": [outfit, ...]}: one outfit is drawn per portrait
outfit                       {"name", "w" (weight), "genders" (optional),
                              "vars" (override/add variables), "slots" (override/add slots)}
slot                         a list of options; one is drawn by weight `w`
option                       {"w", "layers": [pattern, ...], "genders" (optional),
                              "hide_hair" (helmets and hoods replace the hair), "tint" (optional),
                              "when"/"unless": {var: [values]} (only for / not for those values),
                              "also": {other_slot: [pattern, ...]} (parts that belong together
                              but sit at another depth, e.g. a cape behind and its clip in front)}
pattern                      a path relative to the art folder. `{g}` is the body folder
                             (male/female), `{var}` a drawn variable, `*` picks one matching
                             file uniformly (within one path segment), and a leading `?`
                             means "skip quietly if nothing matches" (e.g. orcs have no ear sheets).
variables                    {value: weight} (or a list, uniform), drawn once per portrait so
                             that matching parts (cape and cape clip, robe and hood) agree.
tint                         a TINT_COLOURS name (after `{var}` substitution): recolour the
                             option's layers keeping their shading, e.g. a hood in the robe colour.

Z-order is SLOT_ORDER, bottom first; slots a recipe does not name stay empty.
"""

from __future__ import annotations

from pathlib import Path

# Bottom to top. Capes and quivers hang behind the body; hair lies over clothes (long hair
# falls on the shoulders) but under anything worn on the head.
SLOT_ORDER = [
    "behind",  # behind_body: capes, quiver
    "body",  # body/<g>/<skin>.png (the base sprite)
    "ears",
    "eyes",
    "nose",
    "facial",  # beards, moustaches
    "torso",  # shirts, robes, mail, breastplates
    "torso_over",  # tabards, pauldrons and arm plates over the chest piece
    "neck",  # cape clips, necklaces
    "hair",
    "head",  # helmets, hoods, caps, bandanas, tiaras
    "front",  # shields held in front of the body
]

# Recolours for `tint` (RGB of the mid-tone; shading is kept from the layer itself).
TINT_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (48, 46, 54),
    "blue": (52, 78, 170),
    "brown": (120, 78, 44),
    "dark brown": (78, 52, 34),
    "dark gray": (84, 84, 90),
    "forest green": (46, 112, 56),
    "light gray": (168, 168, 164),
    "purple": (112, 56, 150),
    "red": (168, 38, 38),
    "white": (226, 224, 214),
    "olive": (96, 104, 44),
}


def _o(w: float = 1, layers: list[str] | None = None, **extra) -> dict:
    """One slot option (a helper so the tables below stay one line per option)."""
    return {"w": w, "layers": list(layers or []), **extra}


_HAIR_NATURAL = {
    "black": 8,
    "raven": 5,
    "raven2": 3,
    "brown": 7,
    "brown2": 3,
    "brunette": 6,
    "brunette2": 3,
    "dark-blonde": 4,
    "blonde": 5,
    "blonde2": 3,
    "light-blonde": 3,
    "light-blonde2": 2,
    "white-blonde": 2,
    "white-blonde2": 1,
    "gold": 2,
    "redhead": 5,
    "redhead2": 3,
    "ruby-red": 2,
    "gray": 3,
    "gray2": 2,
    "white": 3,
    # fantasy colours, rarer
    "blue": 1,
    "blue2": 1,
    "green": 1,
    "green2": 1,
    "pink": 1,
    "pink2": 1,
    "purple": 1,
    "white-cyan": 1,
}

_ORCS = ["orc", "red_orc"]
_HAIR = ["hair/{g}/*/{hair_colour}.png"]
_FACIAL = ["facial/{g}/*/{hair_colour}.png"]
_CAPE = "behind_body/cape/normal/female/cape_{cape}.png"
_TATTERED = "behind_body/cape/tattered/female/tattercape_{cape}.png"
_CLIP = "accessories/neck/capeclip/female/capeclip_{cape}.png"
_TIE = "accessories/neck/capetie/female/capetie_{cape}.png"
_QUIVER = "behind_body/equipment/quiver.png"
_NECKLACE = "accessories/necklaces_female_ no_th-sh/*.png"

_METAL_HELM = _o(5, ["head/helms/{g}/metal_helm_{g}.png"], hide_hair=True)
_GOLD_HELM = _o(5, ["head/helms/{g}/golden_helm_{g}.png"], hide_hair=True)
_CHAIN_HAT = _o(3, ["head/helms/{g}/chainhat_{g}.png"])  # a kettle hat: hair shows below it
_CHAIN_HOOD = _o(3, ["head/hoods/{g}/chain_hood_{g}.png"], hide_hair=True)
_BANDANA = _o(5, ["head/bandanas/{g}/red.png"])
_CAP = _o(5, ["head/caps/{g}/leather_cap_{g}.png"])  # feathered hat


def _hood(w: float, tint: str, **extra) -> dict:
    return _o(w, ["head/hoods/{g}/cloth_hood_{g}.png"], hide_hair=True, tint=tint, **extra)


RECIPES: dict = {
    "common": {
        "vars": {
            "skin": {
                "light": 30,
                "tanned": 14,
                "tanned2": 14,
                "dark": 12,
                "dark2": 12,
                "darkelf": 5,
                "darkelf2": 4,
                "orc": 4,
                "red_orc": 3,
            },
            "hair_colour": _HAIR_NATURAL,
            "eye_colour": {
                "blue": 4,
                "brown": 5,
                "gray": 3,
                "green": 3,
                "orange": 1,
                "purple": 1,
                "red": 1,
                "yellow": 1,
            },
        },
        "slots": {
            "body": [_o(1, ["body/{g}/{skin}.png"])],
            # Orc sheets have their own eyes (and no ear or nose sheets).
            "eyes": [_o(1, ["body/{g}/eyes/{eye_colour}.png"], unless={"skin": _ORCS}), _o(1, when={"skin": _ORCS})],
            "ears": [
                _o(60),
                _o(15, ["?body/{g}/ears/bigears_{skin}.png"]),
                _o(25, ["?body/{g}/ears/elvenears_{skin}.png"]),
            ],
            "nose": [_o(50), _o(50, ["?body/{g}/nose/*_{skin}.png"])],
            "facial": [_o(60), _o(40, _FACIAL, genders=["male"])],
            "hair": [_o(93, _HAIR), _o(7)],  # a few are bald
        },
    },
    "classes": {
        # Metal from the neck up: helmets most of the time, armour on the shoulders always.
        "warrior": {
            "outfits": [
                {
                    "name": "plate",
                    "w": 4,
                    "vars": {"cape": {"red": 2, "blue": 2, "black": 1, "white": 1}},
                    "slots": {
                        "torso": [_o(1, ["torso/plate/chest_{g}.png"])],
                        "torso_over": [_o(1, ["torso/plate/arms_{g}.png"])],
                        "head": [_METAL_HELM, _CHAIN_HAT, _CHAIN_HOOD, _o(2)],
                        "behind": [_o(3), _o(1, [_CAPE], also={"neck": [_CLIP]})],
                        "front": [
                            _o(4),
                            _o(1, ["weapons/left hand/male/shield_male_cutoutforhat.png"], genders=["male"]),
                        ],
                    },
                },
                {
                    "name": "gold",
                    "w": 2,
                    "vars": {"cape": {"red": 2, "blue": 1, "white": 1}},
                    "slots": {
                        "torso": [_o(1, ["torso/gold/chest_{g}.png"])],
                        "torso_over": [_o(1, ["torso/gold/arms_{g}.png"])],
                        "head": [_GOLD_HELM, _o(2, ["head/helms/{g}/metal_helm_{g}.png"], hide_hair=True), _o(2)],
                        # A closed helmet hides the face: capes keep such portraits from being near-twins.
                        "behind": [_o(2), _o(1, [_CAPE], also={"neck": [_CLIP]})],
                    },
                },
                {
                    "name": "chain",
                    "w": 3,
                    "slots": {
                        "torso": [_o(1, ["torso/chain/mail_{g}.png"])],
                        "torso_over": [
                            _o(1),
                            _o(1, ["torso/chain/tabard/jacket_{g}.png"]),
                            _o(1, ["torso/plate/arms_{g}.png"]),
                        ],
                        "head": [_CHAIN_HAT, _CHAIN_HOOD, _METAL_HELM, _o(1)],
                    },
                },
            ]
        },
        # Robes in strong colours, hoods dyed to match, tiaras; old men with beards.
        "mage": {
            "outfits": [
                {
                    "name": "robe",
                    "w": 1,
                    "vars": {
                        # no green or dark grey: those hoods would read as ranger or rogue
                        "robe": {"blue": 4, "purple": 4, "red": 3, "white": 2, "black": 1, "light gray": 1},
                        "hair_colour": {
                            **_HAIR_NATURAL,
                            "gray": 8,
                            "gray2": 5,
                            "white": 10,
                            "white-cyan": 2,
                            "purple": 2,
                            "blue": 2,
                        },
                        "eye_colour": {"blue": 3, "gray": 2, "purple": 3, "yellow": 2, "orange": 1, "red": 1},
                    },
                    "slots": {
                        # The robes are cut for the female body: men wear a shirt under them so
                        # that the wider male shoulders are covered.
                        "torso": [
                            _o(1, ["torso/robes_female_no_th-sh/{robe}.png"], genders=["female"]),
                            _o(
                                1,
                                [
                                    "torso/shirts/longsleeve/male/white_longsleeve.png",
                                    "torso/robes_female_no_th-sh/{robe}.png",
                                ],
                                genders=["male"],
                            ),
                        ],
                        "facial": [
                            _o(2),
                            _o(5, ["facial/{g}/beard/{hair_colour}.png"], genders=["male"]),
                            _o(2, ["facial/{g}/bigstache/{hair_colour}.png"], genders=["male"]),
                        ],
                        "head": [
                            _o(4, ["head/tiaras_female/*.png"], genders=["female"]),
                            # a black hood would read as a rogue's: black robes go bare-headed or with a tiara
                            _hood(5, "{robe}", unless={"robe": ["black"]}),
                            _o(2),
                        ],
                        # A cape dyed like the robe, fastened at the neck.
                        "behind": [
                            _o(1),
                            _o(
                                1,
                                [_CAPE.format(cape="white")],
                                tint="{robe}",
                                also={"neck": [_CLIP.format(cape="white")]},
                            ),
                        ],
                        "neck": [_o(2), _o(1, [_NECKLACE], genders=["female"])],
                    },
                },
            ]
        },
        # Leather, red bandanas and dark hoods; tattered capes.
        "rogue": {
            "outfits": [
                {
                    "name": "leather",
                    "w": 4,
                    "vars": {
                        "cape": {"black": 3, "gray": 2, "brown": 1, "maroon": 1},
                        "hood": {"black": 3, "dark gray": 2},
                    },
                    "slots": {
                        "torso": [_o(1, ["torso/leather/chest_{g}.png"])],
                        "torso_over": [_o(1, ["torso/leather/shoulders_{g}.png"])],
                        "head": [_BANDANA, _hood(4, "{hood}"), _o(1)],
                        "behind": [_o(3), _o(1, [_TATTERED], also={"neck": [_TIE]})],
                        "neck": [_o(1)],
                    },
                },
                {
                    "name": "shirt",
                    "w": 3,
                    "vars": {"hood": {"black": 3, "dark gray": 2}},
                    "slots": {
                        "torso": [
                            _o(1, ["torso/shirts/sleeveless/female/*_pirate.png"], genders=["female"]),
                            _o(1, ["torso/shirts/longsleeve/male/*_longsleeve.png"], genders=["male"]),
                        ],
                        "torso_over": [_o(1, ["torso/leather/shoulders_{g}.png"])],
                        "neck": [
                            _o(1),
                            _o(1, ["accessories/necklaces_female_ no_th-sh/pirate_wc_sc_only.png"], genders=["female"]),
                        ],
                        "head": [_BANDANA, _hood(4, "{hood}"), _o(1)],
                    },
                },
            ]
        },
        # Woodland colours: a cape with its clip or strap, a quiver, the feathered cap.
        "ranger": {
            "outfits": [
                {
                    "name": "woodland",
                    "w": 1,
                    "vars": {"cape": {"green": 6, "brown": 3, "gray": 1}, "hood": {"forest green": 3, "olive": 2}},
                    "slots": {
                        "torso": [
                            _o(2, ["torso/tunics/female/*_tunic.png"], genders=["female"]),
                            _o(2, ["torso/shirts/longsleeve/male/*_longsleeve.png"], genders=["male"]),
                            _o(1, ["torso/leather/chest_{g}.png"]),
                        ],
                        "behind": [
                            _o(2, [_CAPE, _QUIVER], also={"neck": [_CLIP]}),
                            _o(1, [_CAPE, _QUIVER], also={"neck": [_TIE]}),
                        ],
                        # bare heads rarer than the cap or hood: without them a ranger is only a green clip
                        "head": [_CAP, _hood(3, "{hood}"), _o(2)],
                    },
                },
            ]
        },
    },
}


def _read_credit_rules() -> list[tuple[str, list[tuple[str, str]]]]:
    """lpc_credits.tsv as (file-path regex, [(author, item), ...]) in file order, rows of a pattern joined."""
    rules: dict[str, list[tuple[str, str]]] = {}
    text = (Path(__file__).parent / "lpc_credits.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    for pattern, author, item in rows[1:]:  # rows[0] is the header
        rules.setdefault(pattern, []).append((author, item))
    return list(rules.items())


# Who drew what: file-path regexes -> (author, item) pairs, from lpc_credits.tsv (data, not code).
CREDIT_RULES = _read_credit_rules()


# ---------------------------------------------------------------- high variety (`lpc --variety high`)
# The table above gives most classes one iconic look (every mage in a robe and a hood of its
# colour). Real curated sets are harder: a class mixes several head items and outfits, items
# cross classes, heads go bare, colours vary. lpc_variety.with_variety turns any recipe table
# into that with these settings; the head items of the other outfits of a class, and of the
# other classes, are added by code (see there), the extra outfits and colours are listed here.
VARIETY_SHARES = {
    "bare_head": 0.25,  # share of portraits with nothing on the head (hair or bald)
    "borrowed_head": 0.10,  # share wearing a head item of another class
    "class_pool": 0.3,  # of the class's own head items: share drawn from its other outfits' items
}
_ALL_CAPES = {"red": 2, "blue": 2, "black": 2, "white": 1, "gray": 1, "brown": 1, "green": 1, "maroon": 1}
_ALL_CAPES |= {"lavender": 1, "pink": 0.5, "yellow": 0.5}
VARIETY_HIGH: dict = {
    # Flatter odds: rare skins, hair and eye colours less rare.
    "common_vars": {
        "skin": {"light": 3, "tanned": 2, "tanned2": 2, "dark": 2, "dark2": 2, "darkelf": 1.5, "darkelf2": 1.5}
        | {"orc": 1.5, "red_orc": 1},
        "hair_colour": {name: 1 + w**0.5 for name, w in _HAIR_NATURAL.items()},
        "eye_colour": ["blue", "brown", "gray", "green", "orange", "purple", "red", "yellow"],
    },
    # Per class: variables every outfit that has them draws with these odds instead (more recolours;
    # a mage's hood may now be green or grey like a ranger's or a rogue's).
    "class_vars": {
        "warrior": {"cape": _ALL_CAPES},
        "mage": {"robe": {c: 1 for c in TINT_COLOURS if c != "olive"}},
        "rogue": {"cape": _ALL_CAPES, "hood": {"black": 3, "dark gray": 2, "dark brown": 2, "purple": 1, "red": 1}},
        "ranger": {"cape": _ALL_CAPES, "hood": {"forest green": 3, "olive": 2, "brown": 2, "dark gray": 1}},
    },
    # Per class: outfits added to its own (the single-outfit classes get the most).
    "outfits": {
        "warrior": [
            {
                "name": "mercenary",
                "w": 2,
                "vars": {"cape": _ALL_CAPES},
                "slots": {
                    "torso": [_o(1, ["torso/leather/chest_{g}.png"])],
                    "torso_over": [_o(1, ["torso/plate/arms_{g}.png"])],
                    "head": [_CHAIN_HAT, _METAL_HELM, _o(1, ["head/bandanas/{g}/red.png"], tint="dark brown")],
                    "behind": [_o(2), _o(1, [_TATTERED], also={"neck": [_TIE]})],
                },
            }
        ],
        "mage": [
            {
                "name": "enchanter",
                "w": 1,
                "vars": {"robe": {c: 1 for c in TINT_COLOURS if c != "olive"}},
                "slots": {
                    "torso": [
                        _o(1, ["torso/dress_female/dress_w_sash_female.png"], genders=["female"]),
                        _o(1, ["torso/shirts/longsleeve/male/*_longsleeve.png"], genders=["male"]),
                    ],
                    "torso_over": [_o(2), _o(1, ["torso/chain/tabard/jacket_{g}.png"])],
                    "head": [_hood(3, "{robe}"), _o(3, ["head/tiaras_female/*.png"], genders=["female"])],
                    "behind": [
                        _o(1, [_CAPE.format(cape="white")], tint="{robe}", also={"neck": [_CLIP.format(cape="white")]})
                    ],
                    "neck": [_o(1), _o(1, [_NECKLACE], genders=["female"])],
                },
            }
        ],
        "rogue": [
            {
                "name": "cutpurse",
                "w": 2,
                "vars": {"cape": _ALL_CAPES, "hood": {"black": 3, "dark gray": 2, "dark brown": 2}},
                "slots": {
                    "torso": [_o(1, ["torso/leather/chest_{g}.png"])],
                    "head": [_hood(3, "{hood}"), _CAP, _o(2, ["head/bandanas/{g}/red.png"], tint="black")],
                    "behind": [_o(1, [_TATTERED], also={"neck": [_TIE]})],
                },
            }
        ],
        "ranger": [
            {
                "name": "scout",
                "w": 1,
                "vars": {"cape": _ALL_CAPES, "hood": {"forest green": 3, "olive": 2, "brown": 2}},
                "slots": {
                    "torso": [
                        _o(1, ["torso/tunics/female/*_tunic.png"], genders=["female"]),
                        _o(1, ["torso/shirts/longsleeve/male/*_longsleeve.png"], genders=["male"]),
                    ],
                    "torso_over": [_o(1), _o(1, ["torso/leather/shoulders_{g}.png"])],
                    "behind": [_o(1, [_QUIVER]), _o(1, [_TATTERED, _QUIVER], also={"neck": [_TIE]})],
                    "head": [_o(3, ["head/caps/{g}/leather_cap_{g}.png"], tint="forest green"), _hood(2, "{hood}")],
                },
            }
        ],
    },
}
