"""Configuration as plain dataclasses, with named presets.

A run is fully described by one `Config` (model + training). Presets are functions
returning a fresh Config; `resolve_config(preset, overrides)` applies `field=value`
overrides (`train.steps=2000`, `model.g_width=32`) so the notebook, the CLI and the
tests all build configs the same way. The resolved config is saved beside every run.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from heroportraits.errors import HeroError


@dataclass
class ModelConfig:
    arch: str = "dcgan"  # network family: "dcgan" (Radford 2016) or "resnet" (SNGAN/BigGAN residual blocks)
    z_dim: int = 128  # latent size
    g_width: int = 64  # generator channels at the highest resolution (x2 per halving, capped at x8)
    d_width: int = 64  # discriminator channels at the highest resolution (x2 per halving, capped at x8)
    embed_dim: int = 16  # size of each attribute's learned embedding (concat conditioning)
    g_cond: str = (
        "concat"  # G conditioning: "concat" (embeddings joined to z), "cbn" (conditional batch-norm), "concat+cbn"
    )
    d_cond: str = (
        "concat"  # D conditioning: "concat" (embedding maps after layer 1) or "projection" (Miyato & Koyama 2018)
    )
    use_palette: bool = True  # condition on the palette attribute (the study's key switch); OFF = no palette parameters
    native_grid: bool = True  # generate/judge on the dataset's native pixel grid, upscale by nearest
    g_spectral_norm: bool = False  # spectral normalisation of G's conv/linear weights (BigGAN)
    d_spectral_norm: bool = False  # spectral normalisation of D's weights (Miyato 2018); replaces D's batch-norm
    d_mbstd: int = 0  # minibatch-stddev group size (Karras 2018): D sees how varied a group is; 0 = off


@dataclass
class TrainConfig:
    steps: int = 3000  # generator updates
    batch_size: int = 64  # global batch: under torchrun each of N ranks draws batch_size / N (must divide)
    g_lr: float = 2e-4  # generator Adam learning rate (TTUR: set g_lr < d_lr, Heusel 2017)
    d_lr: float = 2e-4  # discriminator Adam learning rate
    g_betas: tuple[float, float] = (0.5, 0.999)  # generator Adam betas
    d_betas: tuple[float, float] = (0.5, 0.999)  # discriminator Adam betas
    n_dis: int = 1  # discriminator updates per generator update
    loss: str = "hinge"  # GAN loss: "hinge" (Lim & Ye 2017) or "ns" (non-saturating logistic, Goodfellow 2014)
    attr_dropout: float = 0.0  # per-attribute probability of training with "unspecified" instead of its value
    mode_seeking: float = 0.0  # MSGAN weight (Mao 2019): G penalised when two noises under one condition agree; 0 = off
    r1_gamma: float = 0.0  # R1 penalty weight on real images (Mescheder 2018); 0 disables
    r1_every: int = 1  # lazy R1: penalise every N D updates, scaled by N (StyleGAN2)
    ema_decay: float = 0.999  # EMA of generator weights used for samples; 0 disables
    ema_start: int = 0  # step from which EMA averages (copies before)
    ema_rampup: float = 0.05  # EMA half-life <= rampup x images seen (stylegan2-ada); 0 = off. Without it
    # a short run's EMA is mostly the random initial weights
    augment: str = ""  # DiffAugment policy (Zhao 2020), e.g. "color,translation,cutout"; "" = off
    augment_p: float = 1.0  # probability each augmentation op is applied per image (when ADA is off)
    ada_target: float = 0.0  # ADA (Karras 2020): tune augment p so E[sign D(real)] -> target (0.6); 0 = off
    ada_interval: int = 4  # ADA: adjust p every N steps
    ada_kimg: float = 100.0  # ADA: thousands of real images D sees for p to move by 1
    lecam_weight: float = 0.0  # LeCam regularisation weight (Tseng 2021); 0 disables
    lecam_decay: float = 0.99  # LeCam: EMA decay of the anchors (D's mean real/fake outputs)
    instance_noise_std: float = 0.0  # Gaussian noise std added to D inputs at step 0 (Sonderby 2016); 0 disables
    instance_noise_steps: int = 0  # steps over which that std anneals linearly to 0 (0 = over the whole run)
    seed: int = 0  # seeds weights, noise and batches
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1"...
    amp: bool = False  # bf16 autocast on CUDA
    channels_last: bool = False  # G, D and their inputs in channels-last (NHWC) memory: the layout oneDNN (CPU) and
    # cuDNN tensor cores (GPU) convolve fastest; same values (docs/performance.md)
    compile: str = "off"  # torch.compile G and D: "off"; "cuda" = only when training on a GPU (the *_gpu
    # presets); "on" = any device (CPU: needs a C++ compiler, no measured gain).
    # A spectral-norm D stays eager (docs/performance.md)
    sample_every: int = 500  # write a sample grid every N steps (and at the end)
    checkpoint_every: int = 500  # write a checkpoint every N steps (and at the end)
    log_every: int = 25  # append losses to metrics.csv every N steps
    max_minutes: float = 0.0  # stop early after this wall time (0 = no limit); still checkpoints
    eval_every: int = 0  # every N steps (and at the end): FD + conditional accuracy of eval_samples G_ema
    # portraits (evaluate.quick_fd, the dataset's judge) -> eval.jsonl, best.pt; 0 = off
    eval_samples: int = 500  # portraits per train-time evaluation (FD is biased by n: compare runs at equal n)


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
    def from_dict(cls, d: dict) -> Config:
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
# CPU presets run the networks on the native grid (32x32 for the built-in data) and
# fit a ~10 minute run on 2 cores; *_gpu presets are sized like the study's RTX 2070
# runs (64x64 networks, full width, long schedules).
def _dcgan() -> Config:
    """The study's baseline: plain conditional DCGAN (concat embeddings in G and D) on the native grid."""
    return Config(
        preset="dcgan",
        model=ModelConfig(g_width=48, d_width=48, z_dim=64),
        train=TrainConfig(steps=6000, batch_size=64, channels_last=True, sample_every=1000, checkpoint_every=1000),
    )


def _sn_projection(cfg: Config) -> Config:
    """Spectral-norm D with a projection head and label-driven batch-norm in G (Miyato 2018,
    Miyato & Koyama 2018) on the DCGAN body: in a CPU budget's 2,000 steps the classes show
    (helmets, hoods, pennants) where the plain baseline still draws one figure for all."""
    cfg.model.g_cond, cfg.model.d_cond, cfg.model.d_spectral_norm = "concat+cbn", "projection", True
    cfg.train.g_betas = cfg.train.d_betas = (0.0, 0.9)
    cfg.train.mode_seeking = 1.0  # without it each condition collapses to one portrait (recall 0.00 -> 0.80)
    return cfg


def _cpu() -> Config:
    """The demo: the DCGAN body with SN + projection conditioning and mode seeking, ~10 minutes on 2 CPU cores."""
    cfg = _sn_projection(_dcgan())
    cfg.preset = "cpu"
    return cfg


def _dcgan_gpu() -> Config:
    """The baseline sized like the study's RTX 2070 runs: full-width DCGAN, 64x64, long schedule."""
    return Config(
        preset="dcgan_gpu",
        model=ModelConfig(g_width=64, d_width=64, z_dim=128, native_grid=False),
        train=TrainConfig(
            steps=30000,
            batch_size=128,
            amp=True,
            channels_last=True,
            compile="cuda",
            sample_every=2000,
            checkpoint_every=2000,
        ),
    )


def _smoke() -> Config:
    """A few steps of a tiny model: for tests and notebook smoke runs."""
    return Config(
        preset="smoke",
        model=ModelConfig(g_width=8, d_width=8, z_dim=16, embed_dim=4),
        train=TrainConfig(steps=6, batch_size=16, sample_every=3, checkpoint_every=3, log_every=1),
    )


def _named(preset: str, make: Callable[[], Config]) -> Callable[[], Config]:
    def build() -> Config:
        cfg = make()
        cfg.preset = preset
        return cfg

    return build


def _sn_proj(cfg: Config) -> Config:
    """SNGAN-style (Miyato 2018): residual nets, conditional BN in G, projection D with spectral norm, hinge."""
    cfg.model.arch, cfg.model.g_cond, cfg.model.d_cond = "resnet", "cbn", "projection"
    cfg.model.d_spectral_norm = True
    cfg.train.g_betas = cfg.train.d_betas = (0.0, 0.9)
    return cfg


def _full(cfg: Config) -> Config:
    """The study's full stabiliser set on top of SN + projection: R1, EMA with ramp-up, TTUR,
    DiffAugment, annealed instance noise."""
    _sn_proj(cfg)
    t = cfg.train
    t.g_lr, t.d_lr = 1e-4, 4e-4  # TTUR
    t.r1_gamma, t.r1_every = 0.2, 4  # lazy R1
    t.ema_decay, t.ema_rampup = 0.999, 0.05
    t.augment = "color,translation,cutout"
    t.instance_noise_std = 0.1  # annealed to 0 over the run
    return cfg


def _resnet_sn_proj() -> Config:
    return _sn_proj(
        Config(
            preset="resnet_sn_proj",
            model=ModelConfig(g_width=32, d_width=32, z_dim=64),
            train=TrainConfig(steps=2500, batch_size=32, channels_last=True, sample_every=250, checkpoint_every=250),
        )
    )


def _resnet_sn_proj_gpu() -> Config:
    return _sn_proj(
        Config(
            preset="resnet_sn_proj_gpu",
            model=ModelConfig(g_width=64, d_width=64, z_dim=128, native_grid=False),
            train=TrainConfig(
                steps=30000,
                batch_size=128,
                amp=True,
                channels_last=True,
                compile="cuda",
                sample_every=2000,
                checkpoint_every=2000,
            ),
        )
    )


PRESETS: dict[str, Callable[[], Config]] = {
    "cpu": _cpu,  # the demo: dcgan + SN + projection
    "gpu": _named("gpu", lambda: _sn_projection(_dcgan_gpu())),  # the same recipe at the study's GPU size
    "smoke": _smoke,  # tests and notebook smoke runs
    "dcgan": _dcgan,  # the study's plain cDCGAN baseline
    "dcgan_gpu": _dcgan_gpu,
    "resnet_sn_proj": _resnet_sn_proj,
    "resnet_sn_proj_gpu": _resnet_sn_proj_gpu,
    "resnet_full": _named("resnet_full", lambda: _full(_resnet_sn_proj())),
    "resnet_full_gpu": _named("resnet_full_gpu", lambda: _full(_resnet_sn_proj_gpu())),
}


class ConfigError(HeroError):
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
            if not isinstance(value, (list, tuple)) or len(value) != len(current):
                raise ConfigError(f"{key} expects {len(current)} values like {list(current)}, got {raw!r}")
            value = tuple(type(c)(v) for c, v in zip(current, value))  # [0, 0.9] -> (0.0, 0.9)
        elif isinstance(current, bool) and not isinstance(value, bool):
            raise ConfigError(f"{key} expects true/false, got {raw!r}")
        elif isinstance(current, float) and isinstance(value, int):
            value = float(value)
        setattr(target, name, value)
    return cfg


# The one list of names for every field that takes a name; models and losses index their
# implementations with them (tests check the two agree).
CHOICES = {
    "model.arch": ("dcgan", "resnet"),
    "model.g_cond": ("concat", "cbn", "concat+cbn"),
    "model.d_cond": ("concat", "projection"),
    "train.loss": ("hinge", "ns"),
    "train.compile": ("off", "cuda", "on"),
}


def check_choice(key: str, value) -> None:
    """Refuse a name outside CHOICES[key], e.g. check_choice("train.loss", "wasserstein")."""
    if value not in CHOICES[key]:
        raise ConfigError(f"{key}={value!r} is not one of {list(CHOICES[key])}")


def check_choices(section_cfg: ModelConfig | TrainConfig) -> None:
    """Every name field of one config section; also called by build_models, which a notebook
    may call with a ModelConfig it built by hand (a typo would silently drop the conditioning)."""
    section = "model" if isinstance(section_cfg, ModelConfig) else "train"
    for key in CHOICES:
        if key.startswith(section + "."):
            check_choice(key, getattr(section_cfg, key.partition(".")[2]))


def validate_config(cfg: Config) -> Config:
    """Reject values the code cannot run, naming the field and the allowed values."""
    from heroportraits.training.augment import AugmentError, parse_policy  # the op names live with the ops

    check_choices(cfg.model)
    check_choices(cfg.train)
    t = cfg.train
    try:
        ops = parse_policy(t.augment)
    except AugmentError as e:
        raise ConfigError(f"train.augment: {e}") from None
    if t.ada_target > 0 and not ops:
        raise ConfigError(
            "train.ada_target > 0 tunes the DiffAugment probability, so it needs train.augment "
            "(e.g. --set train.augment=color,translation,cutout)"
        )
    for name in ("attr_dropout", "augment_p", "ada_target", "ema_decay"):
        if not 0.0 <= getattr(t, name) <= 1.0:
            raise ConfigError(f"train.{name}={getattr(t, name)} must be in [0, 1]")
    if t.mode_seeking < 0:
        raise ConfigError(f"train.mode_seeking={t.mode_seeking} must be >= 0 (0 = off)")
    for name in ("n_dis", "r1_every", "ada_interval", "batch_size", "log_every"):
        if getattr(t, name) < 1:
            raise ConfigError(f"train.{name}={getattr(t, name)} must be >= 1")
    if t.eval_every < 0:
        raise ConfigError(f"train.eval_every={t.eval_every} must be >= 0 (0 = no evaluation while training)")
    if t.eval_every > 0 and t.eval_samples < 10:
        raise ConfigError(f"train.eval_samples={t.eval_samples}: FD needs at least 10 portraits (500 is typical)")
    return cfg


def resolve_config(preset: str = "cpu", overrides: list[str] | dict | None = None) -> Config:
    return validate_config(apply_overrides(get_preset(preset), overrides))
