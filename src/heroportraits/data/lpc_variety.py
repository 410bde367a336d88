"""How varied the LPC portraits are within a class: `python -m heroportraits lpc --variety low|high`.

"low" is the recipe table as written: most classes have one iconic look, so the headgear
alone names the class. "high" (the default, and the setting for measurements) makes the
data as hard as a curated real set (issue 11, part 0). `with_variety` rewrites any recipe
table (the built-in one or a --recipes JSON) so that, for every outfit of every class,
  * the head slot also draws the head items of the class's other outfits (`class_pool`),
  * a share of portraits wears a head item of another class (`borrowed_head`),
  * a share goes bare-headed (`bare_head`),
and adds VARIETY_HIGH's extra outfits and flatter odds for skins, hair, eyes and
recolours (lpc_recipes.py). The class label still names the recipe that dressed the
portrait; what changes is how much one class's portraits differ from each other.

A head item borrowed from another outfit may name that outfit's variables (a hood dyed
"{robe}"); it is made concrete first, one option per value, weighted by the lender's odds,
so it needs nothing from the borrower.
"""

from __future__ import annotations

import copy
import itertools
import string

from heroportraits.data.lpc_recipes import VARIETY_HIGH, VARIETY_SHARES
from heroportraits.errors import HeroError

VARIETIES = ("low", "high")


class VarietyError(HeroError):
    """An unknown variety setting."""


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _texts(option: dict) -> list[str]:
    """Every string of an option that may name variables: layer patterns, `also` patterns, tint."""
    texts = list(option.get("layers", [])) + [p for ps in option.get("also", {}).values() for p in ps]
    return texts + ([option["tint"]] if option.get("tint") else [])


def _odds(spec) -> dict:
    return spec if isinstance(spec, dict) else {v: 1 for v in spec}


def _fill(text: str, values: dict) -> str:
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def concretise(option: dict, var_specs: dict) -> list[dict]:
    """`option` with the variables of `var_specs` it uses filled in: one option per value combination,
    weighted by the variables' odds; combinations its when/unless on those variables rule out are dropped."""
    names = sorted(set().union(*map(_fields, _texts(option))) & set(var_specs))
    if not names:
        return [copy.deepcopy(option)]
    odds = [_odds(var_specs[n]) for n in names]
    out = []
    for combo in itertools.product(*(list(o) for o in odds)):
        values = dict(zip(names, combo))
        if any(k in values and values[k] not in v for k, v in option.get("when", {}).items()):
            continue
        if any(k in values and values[k] in v for k, v in option.get("unless", {}).items()):
            continue
        share = 1.0
        for n, o in zip(names, odds):
            share *= o[values[n]] / sum(o.values())
        new = copy.deepcopy(option)
        new["w"] = option.get("w", 1) * share
        new["layers"] = [_fill(p, values) for p in option.get("layers", [])]
        if option.get("tint"):
            new["tint"] = _fill(option["tint"], values)
        if option.get("also"):
            new["also"] = {slot: [_fill(p, values) for p in ps] for slot, ps in option["also"].items()}
        for cond in ("when", "unless"):
            if cond in new:
                new[cond] = {k: v for k, v in new[cond].items() if k not in values}
        out.append(new)
    return out


def _head_items(outfit: dict) -> list[dict]:
    """The non-bare head options of one outfit, with its own variables filled in (for lending)."""
    specs = outfit.get("vars", {})
    return [c for o in outfit.get("slots", {}).get("head", []) if o.get("layers") for c in concretise(o, specs)]


def _key(option: dict) -> tuple:
    return tuple(option.get("layers", [])), option.get("tint"), tuple(option.get("genders", ()))


def _scaled(options: list[dict], total: float) -> list[dict]:
    """Options (deduplicated by what they draw) with weights rescaled to sum to `total`."""
    merged: dict[tuple, dict] = {}
    for o in options:
        if _key(o) in merged:
            merged[_key(o)]["w"] += o.get("w", 1)
        else:
            merged[_key(o)] = {**copy.deepcopy(o), "w": o.get("w", 1)}
    mass = sum(o["w"] for o in merged.values())
    return [{**o, "w": o["w"] * total / mass} for o in merged.values()] if mass > 0 else []


def _varied_head(own: list[dict], pool: list[dict], borrowed: list[dict], shares: dict) -> list[dict]:
    """One outfit's head slot: own items, the class pool, borrowed items and bare heads at their shares.
    Own items keep their variables (a hood stays dyed like this portrait's robe); pool items that
    draw the same sheets as an own item are left out, so they cannot undo that match."""
    own_items = [o for o in own if o.get("layers")]
    own_sheets = {tuple(o["layers"]) for o in own_items}
    pool = [o for o in pool if tuple(o["layers"]) not in own_sheets]
    class_share = 1.0 - shares["bare_head"] - shares["borrowed_head"]
    pool_share = class_share * shares["class_pool"] if pool and own_items else (0.0 if own_items else class_share)
    return [
        *_scaled(own_items, class_share - pool_share),
        *_scaled(pool, pool_share),
        *_scaled(borrowed, shares["borrowed_head"]),
        {"w": shares["bare_head"], "layers": []},
    ]


def with_variety(recipes: dict, variety: str = "high") -> dict:
    """A recipe table at the given variety ("low": unchanged). Never modifies `recipes`."""
    if variety not in VARIETIES:
        raise VarietyError(f"unknown variety {variety!r}; choose one of {list(VARIETIES)}")
    table = copy.deepcopy(recipes)
    if variety == "low":
        return table
    table["common"].setdefault("vars", {}).update(copy.deepcopy(VARIETY_HIGH["common_vars"]))
    for cls, spec in table["classes"].items():
        spec["outfits"] += copy.deepcopy(VARIETY_HIGH["outfits"].get(cls, []))
        for outfit in spec["outfits"]:  # more recolours where the outfit has the variable
            for name, odds in VARIETY_HIGH["class_vars"].get(cls, {}).items():
                if name in outfit.get("vars", {}):
                    outfit["vars"][name] = copy.deepcopy(odds)
    heads = {cls: [_head_items(o) for o in spec["outfits"]] for cls, spec in table["classes"].items()}
    for cls, spec in table["classes"].items():
        borrowed = [item for other, per in heads.items() if other != cls for items in per for item in items]
        for i, outfit in enumerate(spec["outfits"]):
            pool = [item for j, items in enumerate(heads[cls]) if j != i for item in items]
            own = outfit.get("slots", {}).get("head", [])
            outfit.setdefault("slots", {})["head"] = _varied_head(own, pool, borrowed, VARIETY_SHARES)
    return table
