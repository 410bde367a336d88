"""A study spec: variants (a name plus config overrides) x seeds x a budget, on one dataset.

Specs are data, so a user writes one without touching code: a TOML file (Python >= 3.11,
or with the `tomli` package) or a JSON file with these fields (SPEC_FIELDS says the same):

    name = "palette"                  # folder under artifacts_gan/studies/ (default: the file name)
    description = "..."
    dataset = "procedural"            # final dataset under data/
    preset = "dcgan_sn_proj_ms"       # where every variant starts (a variant may name its own)
    seeds = [0, 1, 2]                 # train.seed of each run; every variant runs once per seed
    baseline = "on"                   # the variant the others are compared with (default: the first)
    n = 1000                          # portraits per evaluation
    metrics = ["fd", "recall"]        # main metrics: bars and the printed table (summary.csv has all)
    set = ["train.eval_every=500"]    # overrides for every variant
    budget = { steps = 2000 }         # or { minutes = 2.5 } or { minutes = 2.5, steps = 5000 } (a cap)

    [[variants]]
    name = "off"
    set = { "model.use_palette" = false }   # or ["model.use_palette=false"], the --set syntax

Every field is checked: an unknown field, a wrong type or an unknown config key is refused
with its name, and each variant's config is resolved with the same `resolve_config` as the
`train` verb, so a spec that loads is one that trains.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from heroportraits.errors import HeroError
from heroportraits.training.config import Config
from heroportraits.training.presets import resolve_config

SPEC_FIELDS = {
    "name": "the study's folder under artifacts_gan/studies/ (default: the spec file's name)",
    "description": "what the study asks",
    "dataset": "final dataset under data/ (default: procedural)",
    "preset": "config preset every variant starts from (default: dcgan_sn_proj_ms, the studies' base)",
    "seeds": "list of train.seed values, one run per variant and seed",
    "baseline": "name of the variant the others are compared with (default: the first)",
    "n": "portraits generated per evaluation (default: 1000)",
    "metrics": "main metrics, plotted as bars and printed (default: fd, kid.mean, precision, recall, ...)",
    "set": "config overrides for every variant (list of 'field=value' or a table)",
    "budget": "{steps = N}, {minutes = M} or {minutes = M, steps = N} per run",
    "variants": "list of tables: name, set, preset, description",
}
VARIANT_FIELDS = {
    "name": "the variant's name (letters, digits, _ . + -)",
    "set": "config overrides on top of the spec's `set`",
    "preset": "config preset of this variant (default: the spec's)",
    "description": "what the variant changes",
}
BUDGET_FIELDS = {"steps": "generator steps per run", "minutes": "wall minutes of training per run"}
DEFAULT_METRICS = ["fd", "kid.mean", "precision", "recall", "coverage", "cond_acc.joint"]
# Config fields the study sets itself: the budget and the seeds.
RESERVED = {
    "train.steps": "the budget sets it: use budget = {steps = N}",
    "train.max_minutes": "the budget sets it: use budget = {minutes = M}",
    "train.seed": "the spec's `seeds` set it",
}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
UNCAPPED_STEPS = 100_000_000  # train.steps of a minutes budget without a step cap
# What --smoke does to any spec: a few steps, the first two seeds, few portraits.
SMOKE = {"steps": 4, "seeds": 2, "n": 64}


class StudyError(HeroError):
    """A study spec or study folder that cannot be used; the message names the field and the fix."""


@dataclass(frozen=True)
class Budget:
    """What each run gets: `steps` generator updates, or `minutes` of training (then `steps` is a cap)."""

    steps: int | None = None
    minutes: float | None = None

    def overrides(self) -> list[str]:
        steps = self.steps if self.steps is not None else UNCAPPED_STEPS
        return [f"train.steps={steps}", f"train.max_minutes={self.minutes or 0.0}"]

    def tag(self) -> str:
        """A short folder-safe label: 2000steps, 2.5min, 2.5min-5000steps."""
        parts = [f"{self.minutes:g}min"] if self.minutes else []
        return "-".join(parts + ([f"{self.steps}steps"] if self.steps is not None else []))

    def describe(self) -> str:
        if self.minutes:
            cap = f" (at most {self.steps:,} steps)" if self.steps is not None else ""
            return f"{self.minutes:g} minutes of training per run{cap}"
        return f"{self.steps:,} steps per run"


def parse_budget(text: str) -> Budget:
    """`minutes=20`, `steps=50000` or `minutes=20,steps=100000` (the --budget syntax)."""
    values: dict = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        key, sep, raw = part.partition("=")
        if not sep or key.strip() not in BUDGET_FIELDS:
            raise StudyError(f"--budget {text!r}: expected minutes=M and/or steps=N, e.g. --budget minutes=20")
        try:
            values[key.strip()] = float(raw) if key.strip() == "minutes" else int(raw)
        except ValueError:
            raise StudyError(f"--budget {text!r}: {key.strip()} needs a number, got {raw!r}") from None
    return _budget(values, "--budget")


def _budget(values: dict, where: str) -> Budget:
    _check_fields(values, BUDGET_FIELDS, where)
    steps, minutes = values.get("steps"), values.get("minutes")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise StudyError(f"{where}: steps must be a whole number >= 1, got {steps!r}")
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes <= 0):
        raise StudyError(f"{where}: minutes must be a number > 0, got {minutes!r}")
    if steps is None and minutes is None:
        raise StudyError(f"{where}: give steps = N or minutes = M (or both: minutes with a step cap)")
    return Budget(steps, float(minutes) if minutes is not None else None)


@dataclass
class Variant:
    name: str
    preset: str
    overrides: list[str]  # `field=value`, the --set syntax: the spec's `set`, then the variant's own
    description: str = ""


@dataclass
class Spec:
    name: str
    dataset: str
    seeds: list[int]
    budget: Budget
    variants: list[Variant]
    baseline: str
    n: int = 1000
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    description: str = ""
    source: str = ""  # the file it came from, for messages

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def config(self, variant: Variant, seed: int) -> Config:
        """The run's resolved config: preset, overrides, budget and seed (resolve_config, like `train`)."""
        overrides = [*variant.overrides, *self.budget.overrides(), f"train.seed={seed}"]
        try:
            return resolve_config(variant.preset, overrides)
        except HeroError as e:
            raise StudyError(f"{self.source}: variant {variant.name!r}: {e}") from None

    def check(self) -> None:
        """Resolve every variant's config now, so a typo fails before the first run trains."""
        for v in self.variants:
            cfg = self.config(v, self.seeds[0])
            t = cfg.train
            # Schedules that default to train.steps, which a minutes budget without a step cap leaves open.
            open_schedules = {
                "train.instance_noise_steps": t.instance_noise_std > 0 and t.instance_noise_steps == 0,
                "train.tau_steps": getattr(cfg.model, "output", "rgb") == "palette" and t.tau_steps == 0,
            }
            for key, is_open in open_schedules.items():
                if self.budget.steps is None and is_open:
                    raise StudyError(
                        f"{self.source}: variant {v.name!r} has a schedule over train.steps ({key} = 0), which a "
                        f"minutes budget without a step cap leaves open: give a cap (budget minutes=M,steps=N) "
                        f"or set {key}"
                    )

    def smoke(self) -> Spec:
        """The same grid, tiny: SMOKE steps, the first seeds, few portraits; a separate folder."""
        steps = SMOKE["steps"]
        quick = [
            f"train.eval_samples={min(self.n, SMOKE['n'])}",
            f"train.checkpoint_every={steps}",
            f"train.sample_every={steps}",
            f"train.eval_every={steps}",
        ]
        variants = [dataclasses.replace(v, overrides=[*v.overrides, *quick]) for v in self.variants]
        return dataclasses.replace(
            self,
            name=f"{self.name}-smoke",
            seeds=self.seeds[: SMOKE["seeds"]],
            n=min(self.n, SMOKE["n"]),
            budget=Budget(steps=steps),
            variants=variants,
        )

    def with_budget(self, budget: Budget) -> Spec:
        """Another budget (e.g. GPU-length runs) in its own folder, so results of two budgets never mix."""
        return dataclasses.replace(self, name=f"{self.name}-{budget.tag()}", budget=budget)


# ---------------------------------------------------------------- reading and checking
def _check_fields(values: dict, allowed: dict, where: str) -> None:
    if not isinstance(values, dict):
        raise StudyError(f"{where} must be a table/object, got {type(values).__name__}")
    unknown = [k for k in values if k not in allowed]
    if unknown:
        raise StudyError(f"{where}: unknown field {unknown[0]!r}; the fields are {list(allowed)}")


def _typed(values: dict, key: str, kind, where: str, default=None):
    value = values.get(key, default)
    if value is not None and (not isinstance(value, kind) or (isinstance(value, bool) and kind is int)):
        raise StudyError(f"{where}: field {key!r} has the wrong type ({type(value).__name__}): {SPEC_FIELDS[key]}")
    return value


def _format_value(value) -> str:
    """A TOML/JSON value as --set text: true/false, numbers, lists as JSON, strings as they are."""
    return value if isinstance(value, str) else json.dumps(value)


def _flatten_table(table: dict, prefix: str = "") -> dict:
    """{"model": {"use_palette": false}} (TOML dotted keys) -> {"model.use_palette": false}."""
    out = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(_flatten_table(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _overrides(value, where: str) -> list[str]:
    """A `set` field (list of 'field=value' strings, or a table) -> --set strings, reserved keys refused."""
    if value is None:
        return []
    if isinstance(value, dict):
        items = [f"{k}={_format_value(v)}" for k, v in _flatten_table(value).items()]
    elif isinstance(value, list) and all(isinstance(s, str) and "=" in s for s in value):
        items = list(value)
    else:
        raise StudyError(f"{where}: `set` must be a table or a list of 'field=value' strings, got {value!r}")
    for item in items:
        key = item.split("=", 1)[0].strip()
        if key in RESERVED:
            raise StudyError(f"{where}: {key} cannot be set per variant: {RESERVED[key]}")
    return items


def _variants(raw, preset: str, common: list[str], where: str) -> list[Variant]:
    if not isinstance(raw, list) or not raw:
        raise StudyError(f"{where}: `variants` must be a non-empty list of tables ([[variants]] in TOML)")
    out = []
    for i, v in enumerate(raw):
        here = f"{where}: variants[{i}]"
        _check_fields(v, VARIANT_FIELDS, here)
        name = v.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise StudyError(f"{here}: `name` must be letters, digits, _ . + - (a folder name), got {name!r}")
        if any(o.name == name for o in out):
            raise StudyError(f"{where}: two variants are called {name!r}")
        here = f"{where}: variant {name!r}"
        vpreset = v.get("preset", preset)
        if not isinstance(vpreset, str):
            raise StudyError(f"{here}: `preset` must be a preset name, got {vpreset!r}")
        out.append(Variant(name, vpreset, [*common, *_overrides(v.get("set"), here)], str(v.get("description", ""))))
    return out


def parse_spec(data: dict, source: str = "spec", default_name: str = "study") -> Spec:
    """Check a spec's fields one by one and build it (every variant's config is resolved too)."""
    _check_fields(data, SPEC_FIELDS, source)
    name = _typed(data, "name", str, source, default_name)
    if not NAME_PATTERN.match(name):
        raise StudyError(f"{source}: `name` must be letters, digits, _ . + - (a folder name), got {name!r}")
    seeds = _typed(data, "seeds", list, source, [0, 1, 2])
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise StudyError(f"{source}: `seeds` must be a non-empty list of whole numbers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise StudyError(f"{source}: `seeds` lists a seed twice: {seeds}")
    n = _typed(data, "n", int, source, 1000)
    if n < 10:
        raise StudyError(f"{source}: `n` (portraits per evaluation) must be >= 10, got {n}")
    metrics = _typed(data, "metrics", list, source, list(DEFAULT_METRICS))
    if not metrics or not all(isinstance(m, str) for m in metrics):
        raise StudyError(f"{source}: `metrics` must be a non-empty list of metric names, got {metrics!r}")
    preset = _typed(data, "preset", str, source, "dcgan_sn_proj_ms")
    common = _overrides(data.get("set"), source)
    if "budget" not in data:
        raise StudyError(f"{source}: no `budget`; add budget = {{steps = N}} or {{minutes = M}}")
    budget = _budget(data["budget"], f"{source}: budget")
    variants = _variants(data.get("variants"), preset, common, source)
    baseline = _typed(data, "baseline", str, source, variants[0].name)
    if baseline not in [v.name for v in variants]:
        raise StudyError(f"{source}: baseline {baseline!r} is not a variant; variants are {[v.name for v in variants]}")
    spec = Spec(
        name=name,
        dataset=_typed(data, "dataset", str, source, "procedural"),
        seeds=seeds,
        budget=budget,
        variants=variants,
        baseline=baseline,
        n=n,
        metrics=metrics,
        description=_typed(data, "description", str, source, ""),
        source=source,
    )
    spec.check()
    return spec


def builtin_dir() -> Path:
    """studies/ of this checkout (the package lives in src/heroportraits/study/)."""
    return Path(__file__).resolve().parents[3] / "studies"


def builtin_names() -> list[str]:
    folder = builtin_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def _read_toml(path: Path, text: str) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise StudyError(
                f"{path}: TOML specs need Python >= 3.11 (or `pip install tomli`); or write JSON"
            ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise StudyError(f"{path}: not valid TOML: {e}") from None


def load_spec(spec: str | Path) -> Spec:
    """A spec file (.toml or .json), or the name of a built-in one under studies/."""
    path = Path(spec)
    if not path.is_file():
        if (builtin_dir() / f"{spec}.toml").is_file():
            path = builtin_dir() / f"{spec}.toml"
        else:
            raise StudyError(
                f"no study spec {str(spec)!r}: give a .toml/.json file or a built-in name "
                f"({', '.join(builtin_names())})"
            )
    if path.suffix.lower() not in (".json", ".toml"):
        raise StudyError(f"{path}: a study spec is a .toml or .json file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise StudyError(f"{path} is not UTF-8 text; save it as UTF-8 (TOML and JSON files are)") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise StudyError(f"{path}: not valid JSON: {e}") from None
    else:
        data = _read_toml(path, text)
    return parse_spec(data, str(path), default_name=path.stem)
