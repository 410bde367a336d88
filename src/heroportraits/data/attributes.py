"""Attribute vocabularies: the names and values that condition every model.

Attributes are data, not code: a dataset's `dataset.json` lists its attributes and
their values, and every model, sampler and metric reads them from there. The default
schema below is what the built-in procedural dataset uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from heroportraits.errors import HeroError

GENDERS = ["masculine", "feminine"]
HERO_CLASSES = ["warrior", "mage", "rogue", "cavalry"]
PALETTES = ["warm", "cool", "dark", "neutral", "muted"]

DEFAULT_SCHEMA: dict[str, list[str]] = {
    "gender": GENDERS,
    "hero_class": HERO_CLASSES,
    "palette": PALETTES,
}

# Token a user (or attribute dropout) passes to leave an attribute open.
UNSPECIFIED = "any"


class LabelError(HeroError):
    """A label value or attribute name that the vocabulary does not know."""


@dataclass
class Vocabulary:
    """Ordered attributes, each with its ordered list of values.

    Index `len(values)` of an attribute is reserved for "unspecified", so that an
    embedding table of size `len(values) + 1` can learn what "any value" means.
    """

    attributes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.attributes)

    @property
    def sizes(self) -> list[int]:
        return [len(v) for v in self.attributes.values()]

    def unspecified_index(self, name: str) -> int:
        return len(self.attributes[name])

    def encode_value(self, name: str, value: str) -> int:
        if name not in self.attributes:
            raise LabelError(f"unknown attribute {name!r}; this dataset has {self.names}")
        values = self.attributes[name]
        if value == UNSPECIFIED:
            return len(values)
        if value not in values:
            raise LabelError(
                f"unknown value {value!r} for attribute {name!r}; allowed: {values} "
                f"(or {UNSPECIFIED!r} to leave it open)"
            )
        return values.index(value)

    def encode(self, row: dict[str, str]) -> list[int]:
        """One label row (attribute -> value) to indices; missing attributes are unspecified."""
        unknown = set(row) - set(self.attributes)
        if unknown:
            raise LabelError(f"unknown attribute(s) {sorted(unknown)}; this dataset has {self.names}")
        return [self.encode_value(n, row.get(n, UNSPECIFIED)) for n in self.names]

    def decode(self, indices) -> dict[str, str]:
        out = {}
        for name, i in zip(self.names, indices):
            values = self.attributes[name]
            out[name] = values[int(i)] if int(i) < len(values) else UNSPECIFIED
        return out

    def columns(self, names: list[str]) -> list[int]:
        """Where each of `names` sits in this vocabulary's order: label rows of this vocabulary indexed by these
        columns are rows of the vocabulary of just those attributes (e.g. the conditioning one, palette OFF)."""
        return [self.names.index(n) for n in names]

    def without(self, *names: str) -> Vocabulary:
        """A copy without some attributes (e.g. palette conditioning OFF)."""
        return Vocabulary({k: list(v) for k, v in self.attributes.items() if k not in names})

    def to_json(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.attributes.items()}

    @classmethod
    def from_json(cls, data: dict[str, list[str]]) -> Vocabulary:
        return cls({str(k): [str(x) for x in v] for k, v in data.items()})


def parse_assignments(pairs: list[str] | None) -> dict[str, str]:
    """`["hero_class=mage", "gender=feminine"]` -> dict, with a clear error on bad syntax."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise LabelError(f"expected ATTRIBUTE=VALUE, got {pair!r} (e.g. hero_class=mage)")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out
