"""Configuration as plain dataclasses, with named presets.

A run is fully described by one `Config` (model + training). Presets are functions
returning a fresh Config; `resolve_config(preset, overrides)` applies `field=value`
overrides (`train.steps=2000`, `model.g_width=32`) so the notebook, the CLI and the
tests all build configs the same way. The resolved config is saved beside every run.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from typing import Callable


@dataclass
class ModelConfig:
    arch: str = "dcgan"          # network family: "dcgan"
    z_dim: int = 128             # latent size
    g_width: int = 64            # generator channels at the highest resolution (x2 per halving)
    d_width: int = 64            # discriminator channels at the highest resolution
    embed_dim: int = 16          # size of each attribute's learned embedding
    use_palette: bool = True     # condition on the palette attribute (the study's key switch)
    native_grid: bool = True     # generate/judge on the dataset's native pixel grid, upscale by nearest


@dataclass
class TrainConfig:
    steps: int = 3000            # generator updates
    batch_size: int = 64
    g_lr: float = 2e-4           # generator Adam learning rate
    d_lr: float = 2e-4           # discriminator Adam learning rate
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas (both nets)
    loss: str = "hinge"          # GAN loss: "hinge"
    ema_decay: float = 0.999     # EMA of generator weights used for samples; 0 disables
    ema_start: int = 0           # step from which EMA averages (copies before)
    seed: int = 0                # seeds weights, noise and batches
    device: str = "auto"         # "auto" (cuda if available), "cpu", "cuda", "cuda:1"...
    amp: bool = False            # bf16 autocast on CUDA
    sample_every: int = 500      # write a sample grid every N steps (and at the end)
    checkpoint_every: int = 500  # write a checkpoint every N steps (and at the end)
    log_every: int = 25          # append losses to metrics.csv every N steps
    max_minutes: float = 0.0     # stop early after this wall time (0 = no limit); still checkpoints


@dataclass
class Config:
    preset: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        return cls(
            preset=d.get("preset", "custom"),
            model=_from_fields(ModelConfig, d.get("model", {})),
            train=_from_fields(TrainConfig, d.get("train", {})),
        )


def _from_fields(cls, values: dict):
    """Build a dataclass from a dict, ignoring keys a newer/older version added (old checkpoints load)."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in values.items():
        if k in names:
            kwargs[k] = tuple(v) if isinstance(getattr(cls(), k), tuple) else v
    return cls(**kwargs)


# ---------------------------------------------------------------- presets
def _cpu() -> Config:
    """The demo: small conditional DCGAN on the native grid, ~10 minutes on 2 CPU cores."""
    return Config(
        preset="cpu",
        model=ModelConfig(g_width=48, d_width=48, z_dim=64),
        train=TrainConfig(steps=2500, batch_size=64, sample_every=500, checkpoint_every=500),
    )


def _gpu() -> Config:
    """Sized like the study's RTX 2070 runs: full-width DCGAN, 64x64, long schedule."""
    return Config(
        preset="gpu",
        model=ModelConfig(g_width=64, d_width=64, z_dim=128, native_grid=False),
        train=TrainConfig(steps=30000, batch_size=128, amp=True, sample_every=2000, checkpoint_every=2000),
    )


def _smoke() -> Config:
    """A few steps of a tiny model: for tests and notebook smoke runs."""
    return Config(
        preset="smoke",
        model=ModelConfig(g_width=8, d_width=8, z_dim=16, embed_dim=4),
        train=TrainConfig(steps=6, batch_size=16, sample_every=3, checkpoint_every=3, log_every=1),
    )


PRESETS: dict[str, Callable[[], Config]] = {"cpu": _cpu, "gpu": _gpu, "smoke": _smoke}


class ConfigError(ValueError):
    """An unknown preset or an override that does not name a config field."""


def get_preset(name: str) -> Config:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()


def apply_overrides(cfg: Config, overrides: list[str] | dict | None) -> Config:
    """Apply `section.field=value` overrides; values are parsed as JSON where possible."""
    if not overrides:
        return cfg
    items = overrides.items() if isinstance(overrides, dict) else (o.split("=", 1) for o in overrides)
    for key, raw in items:
        section, _, name = str(key).partition(".")
        target = getattr(cfg, section, None)
        if not name or not dataclasses.is_dataclass(target) or name not in {f.name for f in dataclasses.fields(target)}:
            raise ConfigError(f"unknown config field {key!r}; fields are model.* and train.* (see --dry-run)")
        value = raw
        if isinstance(raw, str):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw  # plain strings like hinge / cpu
        current = getattr(target, name)
        if isinstance(current, tuple):
            value = tuple(value)
        elif isinstance(current, bool) and not isinstance(value, bool):
            raise ConfigError(f"{key} expects true/false, got {raw!r}")
        elif isinstance(current, float) and isinstance(value, int):
            value = float(value)
        setattr(target, name, value)
    return cfg


def resolve_config(preset: str = "cpu", overrides: list[str] | dict | None = None) -> Config:
    return apply_overrides(get_preset(preset), overrides)
