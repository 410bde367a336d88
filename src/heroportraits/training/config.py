"""A run's configuration as typed dataclasses: `Config` = model (models/config.py), train (below) and draw
(the run's default drawing, models/config.py). `apply_overrides` parses `section.field=value` overrides by
each field's declared type and `validate_config` checks every range and the fields that depend on each other,
so the notebook, the CLI, study specs and the tests all build configs the same way. Presets are a table in
presets.py. The resolved config is saved beside every run and in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing
from dataclasses import asdict, dataclass, field

from heroportraits.data.palette_files import read_palette
from heroportraits.models.config import (
    DRAW_FIELDS,
    FLOW_DRAW_FIELDS,
    FLOW_SOLVERS,
    MODEL_CHOICES,
    ConfigError,
    DrawOptions,
    ModelConfig,
    check_model_choices,
    is_flow,
)

__all__ = ["Config", "ConfigError", "DrawOptions", "ModelConfig", "TrainConfig"]  # the three sections, one import


@dataclass
class TrainConfig:
    steps: int = 3000  # generator updates
    batch_size: int = 64  # global batch: under torchrun each of N ranks draws batch_size / N (must divide)
    g_lr: float = 2e-4  # generator Adam learning rate (TTUR: set g_lr < d_lr, Heusel 2017)
    d_lr: float = 2e-4  # discriminator Adam learning rate
    g_betas: tuple[float, float] = (0.5, 0.999)  # generator Adam betas
    d_betas: tuple[float, float] = (0.5, 0.999)  # discriminator Adam betas
    lr_decay: float = 0.0  # share of train.steps at the end over which both learning rates fall linearly to 0
    # (0.5: the second half); 0 = constant. Counted in steps: a minutes budget that stops earlier stops mid-decay
    n_dis: int = 1  # discriminator updates per generator update
    reuse_fakes: bool = False  # D's last update of a step sees the fakes G's update then trains on (one G forward a
    # step instead of two: the PyTorch DCGAN example's order); with mode seeking those carry its paired labels
    loss: str = "hinge"  # GAN loss: "hinge" (Lim & Ye 2017), "ns" (non-saturating logistic, Goodfellow 2014) or
    # "rpgan" (relativistic pairing, each fake against a real of the same labels; R3GAN, Huang et al. 2024)
    attr_dropout: float = 0.0  # per-attribute probability of training with "unspecified" instead of its value
    mode_seeking: float = 0.0  # MSGAN weight (Mao 2019): G penalised when two noises under one condition agree; 0 = off
    r1_gamma: float = 0.0  # R1 penalty weight on real images (Mescheder 2018); 0 disables
    r1_every: int = 1  # lazy R1: penalise every N D updates, scaled by N (StyleGAN2)
    r2_gamma: float = 0.0  # R2: the same penalty on the fakes D sees (R3GAN pairs it with R1), on R1's lazy schedule
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
    tau_start: float = 1.0  # palette output: softmax temperature of the colour choice at step 0
    tau_end: float = 0.1  # palette output: the temperature at the end of the schedule (and after it)
    tau_schedule: str = "exp"  # palette output: "exp" (geometric) or "linear" from tau_start to tau_end
    tau_steps: int = 0  # palette output: steps over which tau anneals (0 = train.steps)
    teacher: str = ""  # the flow family: distil this flow run (its folder or checkpoint; the same model settings)
    # into a few-step drawing (training/distil.py): G starts from its weights and learns the straight path from each
    # of teacher_pairs noises to the portrait it draws from that noise (reflow); "" = learn from the data
    teacher_pairs: int = 16384  # distillation: (noise, portrait) pairs the teacher draws once, when the run starts
    teacher_steps: int = 6  # distillation: the teacher's drawing: Heun steps,
    teacher_guidance: float = 2.0  # its guidance scale (1 = none),
    teacher_guidance_until: float = 0.5  # and guidance on the passes at t < this (draw.guidance_until),
    teacher_guidance_on: str = ""  # on these attributes, each at its own scale if given (draw.guidance_on; "" = all)
    teacher_times: int = 0  # distillation: fit the paths at every t (0), or only at the K times K Euler steps
    # start from (0, 1/K, ...: where the student's drawing evaluates it)
    seed: int = 0  # seeds weights, noise and batches
    max_images: int = 0  # train on a fixed, label-stratified subset of this many TRAIN images (0 = all); the
    # subset does not depend on seed, and smaller ones lie inside larger ones (dataset.stratified_subset)
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1"...
    amp: bool = False  # bf16 autocast of G and D in training where the hardware computes bf16 natively: CUDA, or a
    # CPU with AVX512-BF16 / AMX (models/precision.py); float32 elsewhere. Drawing has its own switch, draw.bf16
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
    draw: DrawOptions = field(default_factory=DrawOptions)  # the run's default drawing (sampling only)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        """A config as saved (config.json, a checkpoint). Before the `draw` section existed its fields were
        model fields: a saved config without it takes them from there, so every older checkpoint draws as its
        run did; a drawing field renamed since is read under its new name."""
        model = d.get("model", {})
        draw = dict(d.get("draw", {k: model[k] for k in DRAW_FIELDS if k in model}))
        for old, new in RENAMED_DRAW_FIELDS.items():
            if old in draw:
                draw.setdefault(new, draw.pop(old))
        return cls(
            preset=d.get("preset", "custom"),
            model=_from_fields(ModelConfig, model),
            train=_from_fields(TrainConfig, d.get("train", {})),
            draw=_from_fields(DrawOptions, draw),
        )


SECTIONS = {"model": ModelConfig, "train": TrainConfig, "draw": DrawOptions}
RENAMED_DRAW_FIELDS = {"refine_bf16": "bf16"}  # saved configs name the field as its run did


def _from_fields(cls, values: dict):
    """Build a dataclass from a dict, ignoring keys a newer/older version added (old checkpoints load)."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in values.items():
        if k in names:
            kwargs[k] = tuple(v) if isinstance(getattr(cls(), k), tuple) else v
    return cls(**kwargs)


def _set(cfg: Config, section: str, name: str, value) -> None:
    """One field of one section (the draw section is frozen: it is replaced)."""
    if section == "draw":
        cfg.draw = dataclasses.replace(cfg.draw, **{name: value})
    else:
        setattr(getattr(cfg, section), name, value)


# ---------------------------------------------------------------- overrides: parsed by type, checked by range
@dataclass(frozen=True)
class Range:
    """The values a numeric field may take; None = no bound. `low_open`: the low bound itself is refused."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def __contains__(self, v: float) -> bool:
        above = self.low is None or (v > self.low if self.low_open else v >= self.low)
        return above and (self.high is None or v <= self.high)

    def __str__(self) -> str:
        show = lambda v: str(v) if isinstance(v, int) else f"{v:g}"  # noqa: E731  (2**32 - 1 in full)
        if self.high is not None:
            return f"in {'(' if self.low_open else '['}{show(self.low)}, {show(self.high)}]"
        return f"{'>' if self.low_open else '>='} {show(self.low)}"


AT_LEAST_0, AT_LEAST_1, UNIT, POSITIVE = Range(0), Range(1), Range(0, 1), Range(0, low_open=True)
MAX_SEED = 2**32 - 1  # every random stream a seed starts (torch, numpy) takes this many
# Every numeric field's range: checked for presets, --set, notebooks and --dry-run alike.
RANGES: dict[str, Range] = {
    **{f"model.{f}": AT_LEAST_1 for f in ("z_dim", "g_width", "d_width", "embed_dim", "flow_blocks")},
    "model.d_mbstd": AT_LEAST_0,
    "model.palette_k": Range(2),  # a palette of one colour draws nothing
    "model.d_recon": AT_LEAST_0,
    "model.d_classify": AT_LEAST_0,
    "model.d_head_classify": AT_LEAST_0,
    "model.head_rows": Range(0.0, 1.0, low_open=True),
    **{f"train.{f}": POSITIVE for f in ("tau_start", "tau_end")},
    "train.tau_steps": AT_LEAST_0,
    **{f"train.{f}": AT_LEAST_1 for f in ("steps", "batch_size", "n_dis", "r1_every", "ada_interval")},
    **{f"train.{f}": AT_LEAST_1 for f in ("sample_every", "checkpoint_every", "log_every", "eval_samples")},
    **{f"train.{f}": POSITIVE for f in ("g_lr", "d_lr", "ada_kimg")},
    **{f"train.{f}": Range(0, 1) for f in ("g_betas", "d_betas")},
    **{f"train.{f}": UNIT for f in ("attr_dropout", "lr_decay", "augment_p", "ada_target", "ema_decay", "lecam_decay")},
    **{
        f"train.{f}": AT_LEAST_0
        for f in ("mode_seeking", "r1_gamma", "r2_gamma", "ema_start", "ema_rampup", "lecam_weight")
    },
    **{f"train.{f}": AT_LEAST_0 for f in ("instance_noise_std", "instance_noise_steps", "max_minutes")},
    "train.seed": Range(0, MAX_SEED),
    "train.eval_every": AT_LEAST_0,
    "train.max_images": AT_LEAST_0,  # 0 = the whole TRAIN split
    **{f"train.{f}": AT_LEAST_1 for f in ("teacher_pairs", "teacher_steps")},
    "train.teacher_guidance": AT_LEAST_0,
    "train.teacher_times": AT_LEAST_0,
    "train.teacher_guidance_until": Range(0, 1, low_open=True),
    "draw.rgb_colours": AT_LEAST_0,
    "draw.palette_merge": AT_LEAST_0,
    "draw.best_of": AT_LEAST_1,
    "draw.refine_steps": AT_LEAST_0,
    "draw.refine_rate": POSITIVE,
    "draw.refine_realness": AT_LEAST_0,
    "draw.refine_head": AT_LEAST_0,
    "draw.palette_check": AT_LEAST_0,
    "draw.flow_steps": AT_LEAST_1,
    "draw.guidance": AT_LEAST_0,
    "draw.guidance_from": UNIT,
    "draw.guidance_until": UNIT,
}
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
_INT = re.compile(r"[+-]?\d+")


def _field_types(section: str) -> dict[str, type]:
    """Field name -> declared type (int, float, bool, str, tuple[float, float]) of one config section."""
    return typing.get_type_hints(SECTIONS[section])


def _parse_scalar(key: str, kind: type, raw) -> int | float | bool | str:
    """One value of a declared scalar type, from a --set string or a Python value; refuses what it is not."""
    text = raw.strip() if isinstance(raw, str) else None
    if kind is bool:
        if isinstance(raw, bool) or (text is not None and text.lower() in ("true", "false")):
            return raw if isinstance(raw, bool) else text.lower() == "true"
        raise ConfigError(f"{key}={raw!r}: expects true or false")
    if kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if text is not None and _INT.fullmatch(text):
            return int(text)
        raise ConfigError(f"{key}={raw!r}: expects a whole number (int)")
    if kind is float:
        try:
            value = float(text if text is not None else raw) if not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            value = None
        if value is None or not math.isfinite(value):
            raise ConfigError(f"{key}={raw!r}: expects a finite number (float)")
        return value
    if isinstance(raw, str):  # str fields: a quoted value ("" for empty) is unquoted, anything else kept as written
        return text[1:-1] if len(text) > 1 and text[0] == text[-1] == '"' else raw
    raise ConfigError(f"{key}={raw!r}: expects text")


def parse_value(key: str, kind, raw):
    """A field's value from its declared type; tuples take `[a, b]` or `a,b`."""
    if typing.get_origin(kind) is tuple:
        items = raw
        if isinstance(raw, str):
            text = raw.strip()
            try:
                items = json.loads(text) if text.startswith("[") else text.split(",")
            except json.JSONDecodeError:
                items = None  # refused below, with an example
        args = typing.get_args(kind)
        if not isinstance(items, (list, tuple)) or len(items) != len(args):
            raise ConfigError(f"{key}={raw!r}: expects {len(args)} values, e.g. {key}=[0.0,0.9]")
        return tuple(_parse_scalar(key, k, v) for k, v in zip(args, items))
    return _parse_scalar(key, kind, raw)


def _split_override(item) -> tuple[str, object]:
    if isinstance(item, tuple):
        return item
    if "=" not in str(item):
        raise ConfigError(f"override {item!r} has no value: write section.field=value, e.g. train.steps=2000")
    key, raw = str(item).split("=", 1)
    return key.strip(), raw


def apply_overrides(cfg: Config, overrides: list[str] | dict | None) -> Config:
    """Apply `section.field=value` overrides, each parsed by the field's declared type (a wrong
    type or an unknown field is refused here, naming it; ranges are checked by validate_config)."""
    items = (overrides or {}).items() if isinstance(overrides, dict) else overrides or []
    for key, raw in (_split_override(i) for i in items):
        section, _, name = str(key).partition(".")
        if section not in SECTIONS:
            raise ConfigError(f"unknown config field {key!r}: fields are model.<name>, train.<name> or draw.<name>")
        types = _field_types(section)
        if name not in types:
            if section == "model" and name in DRAW_FIELDS:
                raise ConfigError(f"{key} is how portraits are drawn, not the model: set draw.{name} instead")
            raise ConfigError(f"unknown config field {key!r}; {section} fields are: {', '.join(types)}")
        _set(cfg, section, name, parse_value(key, types[name], raw))
    return cfg


def _check_value(key: str, kind, value):
    """A field's value parsed by its declared type and held to its range."""
    parsed = parse_value(key, kind, value)  # a hand-built Config with z_dim=1.5 is refused too
    allowed = RANGES.get(key)
    if allowed is not None and not all(v in allowed for v in (parsed if isinstance(parsed, tuple) else [parsed])):
        raise ConfigError(f"{key}={value!r} is out of range: must be {allowed}")
    return parsed


def _check_types_and_ranges(cfg: Config) -> None:
    """Every field holds its declared type, every number its range, the device a device name."""
    for section in SECTIONS:
        target = getattr(cfg, section)
        for name, kind in _field_types(section).items():
            _set(cfg, section, name, _check_value(f"{section}.{name}", kind, getattr(target, name)))
    if not DEVICE_PATTERN.fullmatch(cfg.train.device):
        raise ConfigError(f"train.device={cfg.train.device!r}: use auto, cpu, cuda, cuda:N or mps")


# The one list of names for every field that takes a name; models and losses index their
# implementations with them (tests check the two agree).
CHOICES = {
    **MODEL_CHOICES,
    "train.loss": ("hinge", "ns", "rpgan"),
    "train.compile": ("off", "cuda", "on"),
    "train.tau_schedule": ("exp", "linear"),
    "draw.flow_solver": FLOW_SOLVERS,
}


def check_choice(key: str, value) -> None:
    """Refuse a name outside CHOICES[key], e.g. check_choice("train.loss", "wasserstein")."""
    if value not in CHOICES[key]:
        raise ConfigError(f"{key}={value!r} is not one of {list(CHOICES[key])}")


def check_choices(section_cfg: ModelConfig | TrainConfig) -> None:
    """Every name field of one config section."""
    if isinstance(section_cfg, ModelConfig):
        check_model_choices(section_cfg)
        return
    for key in CHOICES:
        if key.startswith("train."):
            check_choice(key, getattr(section_cfg, key.partition(".")[2]))


# How each drawing option is spelt on the command line (sample, evaluate, export, headgear), for messages
# that name both ways of setting it.
DRAW_FLAGS = {
    "rgb_colours": "--rgb-colours",
    "palette_merge": "--palette-merge",
    "best_of": "--best-of",
    "refine_steps": "--refine",
    "refine_rate": "--refine-rate",
    "refine_realness": "--refine-realness",
    "refine_head": "--refine-head",
    "bf16": "--bf16",
    "adapt_colours": "--adapt-colours",
    "palette": "--palette-file",
    "dither": "--dither",
    "flow_steps": "--flow-steps",
    "flow_solver": "--solver",
    "guidance": "--guidance",
    "guidance_from": "--guidance-from",
    "guidance_until": "--guidance-until",
    "guidance_on": "--guidance-on",
    "palette_check": "--palette-check",
    "channels_last": "--channels-last",
}


def _spelt(name: str, value) -> str:
    """`draw.best_of=4 (--best-of 4)`: a drawing option as a config field and as a flag."""
    if isinstance(value, bool):  # a switch: --bf16 / --no-bf16
        flag = DRAW_FLAGS[name] if value else DRAW_FLAGS[name].replace("--", "--no-", 1)
        return f"draw.{name}={str(value).lower()} ({flag})"
    shown = value if isinstance(value, str) else f"{value:g}"
    return f"draw.{name}={shown} ({DRAW_FLAGS[name]} {shown})"


# What only a GAN trains with (its D, its losses and regularisers, G's output tricks): a flow model
# (model.arch=unet) keeps each at its default, so a setting it would silently ignore is refused.
GAN_ONLY = {
    "model": (
        "output",
        "g_cond",
        "d_cond",
        "g_spectral_norm",
        "d_spectral_norm",
        "d_mbstd",
        "g_sle",
        "d_recon",
        "d_classify",
        "d_head_classify",
        "head_fake",
    ),
    "train": (
        "n_dis",
        "reuse_fakes",
        "mode_seeking",
        "r1_gamma",
        "r2_gamma",
        "augment",
        "ada_target",
        "lecam_weight",
        "instance_noise_std",
    ),
}


def check_family(cfg: Config) -> None:
    """Refuse settings a model family cannot train with: GAN-only settings on a flow model, G options the
    style-based generator does not have (its labels enter through the mapping network, its output is RGB), and an
    alpha channel beside a palette output (model.alpha draws a mask next to RGB colours)."""
    m = cfg.model
    if m.alpha and m.output != "rgb":
        raise ConfigError(
            "model.alpha=true draws a mask beside RGB colours; a palette model (model.output=palette) has none: "
            "set model.output=rgb"
        )
    if m.arch == "style":
        for bad, why in (
            (m.g_cond != "concat", f"model.g_cond={m.g_cond!r}: its labels join z in the mapping network; use concat"),
            (m.output != "rgb", f"model.output={m.output!r}: it draws RGB (skip outputs); use rgb"),
            (m.g_sle, "model.g_sle=true: skip-layer excitation is the DCGAN / ResNet G's; set it false"),
        ):
            if bad:
                raise ConfigError(f"model.arch=style (StyleGAN2's generator) cannot take {why}")
    if is_flow(m):
        widths = (m.g_width, 2 * m.g_width, 4 * m.g_width)  # the U-Net's levels, each normalised in 8 groups
        if any(w >= 8 and w % 8 for w in widths):
            raise ConfigError(
                f"model.g_width={m.g_width}: the flow U-Net's levels have {', '.join(map(str, widths))} channels, "
                "normalised in groups of 8, so each must be a multiple of 8 (or under 8): use 16, 24, 32..."
            )
    if cfg.train.teacher_guidance_on and cfg.train.teacher_guidance == 1:
        raise ConfigError(
            f"train.teacher_guidance_on={cfg.train.teacher_guidance_on!r} (--teacher-guidance-on) says what the "
            "teacher's guidance pushes, and it is off (train.teacher_guidance=1): add --teacher-guidance W (2, say)"
        )
    if cfg.train.teacher_times and not cfg.train.teacher:
        raise ConfigError(
            f"train.teacher_times={cfg.train.teacher_times} fits a distilled student at its drawing's times, and "
            "this run has no train.teacher: leave it 0, or distil (python -m heroportraits distil RUN --set "
            "train.teacher_times=K)"
        )
    if not is_flow(m):
        if cfg.train.teacher:
            raise ConfigError(
                f"train.teacher={cfg.train.teacher!r} distils a flow model, and model.arch={m.arch} is a GAN: "
                "leave train.teacher empty, or distil a flow run (python -m heroportraits distil RUN)"
            )
        return
    defaults = Config()
    for section, names in GAN_ONLY.items():
        for name in names:
            value, default = getattr(getattr(cfg, section), name), getattr(getattr(defaults, section), name)
            if value != default:
                raise ConfigError(
                    f"{section}.{name}={value!r} is a GAN's setting, and model.arch={cfg.model.arch} is the flow "
                    f"family (no discriminator): leave it at {default!r}, or train a GAN (model.arch=dcgan)"
                )


def check_drawing(
    draw: DrawOptions, model: ModelConfig, given: typing.Collection[str] = (), attr_dropout: float | None = None
) -> DrawOptions:
    """Refuse drawing options a model cannot draw with, naming the option both as a config field and as a flag:
    a value of the wrong type or out of range, quantisation of a palette model, a merge with nothing to merge,
    D-guided options without the D they need, a flow model's solver options on a GAN, guidance on a model that
    never learned the unconditional velocity (`attr_dropout`, the run's train.attr_dropout, when known).
    `given`: the options the caller set explicitly; setting a refinement weight with refinement off does
    nothing, so it is refused too. Returns the checked options."""
    for name, kind in _field_types("draw").items():
        value = _check_value(f"draw.{name}", kind, getattr(draw, name))
        draw = dataclasses.replace(draw, **{name: value})
    if draw.palette:
        if model.output != "palette" and draw.rgb_colours == 0 and not draw.adapt_colours:
            raise ConfigError(
                f"draw.palette={draw.palette!r} (--palette-file) assigns each portrait's own colours to the palette's, "
                "so an RGB model needs them first: add --rgb-colours K (32, say)"
            )
        read_palette(draw.palette)  # a file that is no palette: one line naming it and the line
    elif draw.dither:
        raise ConfigError("draw.dither=true (--dither) dithers between a palette's colours: add --palette-file FILE")
    if draw.flow_solver not in FLOW_SOLVERS:
        raise ConfigError(f"{_spelt('flow_solver', draw.flow_solver)} is not one of {list(FLOW_SOLVERS)}")
    flow_options = [n for n in FLOW_DRAW_FIELDS if getattr(draw, n) != getattr(DrawOptions(), n)]
    if flow_options and not is_flow(model):
        name = flow_options[0]
        raise ConfigError(
            f"{_spelt(name, getattr(draw, name))} says how a flow model draws, and this is a GAN "
            f"(model.arch={model.arch}): leave it out"
        )
    if is_flow(model) and draw.guidance != 1 and attr_dropout is not None and attr_dropout <= 0:
        raise ConfigError(
            f"{_spelt('guidance', draw.guidance)} mixes in the unconditional velocity, which this model never learned "
            "(train.attr_dropout=0): draw with guidance 1, or train with train.attr_dropout > 0 (0.1, say)"
        )
    if draw.guidance_from >= draw.guidance_until:
        raise ConfigError(
            f"{_spelt('guidance_from', draw.guidance_from)} and {_spelt('guidance_until', draw.guidance_until)} "
            "leave no time to guide: guidance applies for t in [from, until), so give from < until (0 and 0.5, say)"
        )
    interval = [n for n in ("guidance_from", "guidance_until", "guidance_on") if n in given]
    if interval and draw.guidance == 1:
        raise ConfigError(
            f"{_spelt(interval[0], getattr(draw, interval[0]))} says where or on what guidance applies, and guidance "
            "is off (draw.guidance=1): add --guidance W (2, say), or leave it out"
        )
    if draw.rgb_colours == 1 or (draw.rgb_colours > 1 and model.output == "palette"):
        why = "one colour draws nothing" if draw.rgb_colours == 1 else "palette models already draw palette_k colours"
        raise ConfigError(
            f"{_spelt('rgb_colours', draw.rgb_colours)} quantises RGB samples to a few colours ({why}): use >= 2 "
            "with model.output=rgb, or 0 (off)"
        )
    if draw.palette_merge > 0 and model.output != "palette" and draw.rgb_colours == 0:
        raise ConfigError(
            f"{_spelt('palette_merge', draw.palette_merge)} merges palette colours, so it needs model.output=palette "
            "or an RGB model's samples quantised (draw.rgb_colours > 0, --rgb-colours K); or set it to 0"
        )
    needs_classifier = [n for n, off in (("best_of", 1), ("refine_steps", 0)) if getattr(draw, n) > off]
    if needs_classifier and model.d_classify <= 0:
        name = needs_classifier[0]
        purpose = "ranks candidates" if name == "best_of" else "guides the noise"
        off = 1 if name == "best_of" else 0
        raise ConfigError(
            f"{_spelt(name, getattr(draw, name))} {purpose} by D's auxiliary classifier, so it needs a model "
            f"trained with model.d_classify > 0 (this one has {model.d_classify:g}); set it to {off} (off)"
        )
    if draw.refine_head > 0 and model.d_head_classify <= 0:
        raise ConfigError(
            f"{_spelt('refine_head', draw.refine_head)} climbs D's head classifier, so it needs a model trained "
            "with model.d_head_classify > 0; set it to 0 (off)"
        )
    for name in ("refine_rate", "refine_realness", "refine_head"):
        if name in given and draw.refine_steps == 0 and not (name == "refine_head" and not draw.refine_head):
            raise ConfigError(
                f"{_spelt(name, getattr(draw, name))} weighs refinement, which is off (draw.refine_steps=0): "
                "add --refine T (5, say), or leave it out"
            )
    if "bf16" in given and draw.bf16 and draw.refine_steps == 0 and not is_flow(model):
        raise ConfigError(
            f"{_spelt('bf16', True)} runs a GAN's refinement in bf16, and refinement is off "
            "(draw.refine_steps=0): add --refine T (5, say), or leave it out"
        )
    return draw


def validate_config(cfg: Config) -> Config:
    """Reject values the code cannot run, naming the field and the allowed values."""
    from heroportraits.training.augment import AugmentError, parse_policy  # the op names live with the ops

    _check_types_and_ranges(cfg)
    check_choices(cfg.model)
    check_choices(cfg.train)
    t, m = cfg.train, cfg.model
    try:
        ops = parse_policy(t.augment)
    except AugmentError as e:
        raise ConfigError(f"train.augment: {e}") from None
    if t.ada_target > 0 and not ops:
        raise ConfigError(
            "train.ada_target > 0 tunes the DiffAugment probability, so it needs train.augment "
            "(e.g. --set train.augment=color,translation,cutout)"
        )
    if m.d_classify > 0 and m.d_cond != "projection":
        raise ConfigError(
            f"model.d_classify={m.d_classify:g} needs model.d_cond=projection: with d_cond="
            f"{m.d_cond} D's features hold the labels themselves, so its classifier would read them "
            "instead of the image (or set model.d_classify=0)"
        )
    if m.d_head_classify > 0 and m.d_cond != "projection":
        raise ConfigError(
            f"model.d_head_classify={m.d_head_classify:g} needs model.d_cond=projection: with d_cond="
            f"{m.d_cond} D's features hold the labels (or set model.d_head_classify=0)"
        )
    if m.head_fake and m.d_head_classify <= 0:
        raise ConfigError(
            "model.head_fake=true teaches D's head classifier to name fakes, so it needs model.d_head_classify > 0 "
            "(or set model.head_fake=false)"
        )
    check_family(cfg)
    cfg.draw = check_drawing(cfg.draw, m, attr_dropout=t.attr_dropout)
    if t.mode_seeking > 0 and t.batch_size < 2:
        raise ConfigError(
            f"train.batch_size={t.batch_size}: mode seeking (train.mode_seeking={t.mode_seeking:g}) compares the two "
            "halves of a batch, so it needs at least 2 (or set train.mode_seeking=0)"
        )
    if t.eval_every > 0 and t.eval_samples < 10:
        raise ConfigError(f"train.eval_samples={t.eval_samples}: FD needs at least 10 portraits (500 is typical)")
    return cfg
