"""Named presets as one table: each a name, the preset it starts from, one line saying what it is, and the
fields it overrides (the form of stylegan2-ada's `cfg_specs`).

A preset's name says what it is: the networks, then the techniques on top. CPU-sized presets run the networks
on the native grid (32x32 for the built-in data) and fit a ~10 minute run on 2 cores; *_gpu twins are sized
like the study's RTX 2070 runs (64x64 networks, full width, long schedules). What each one measured is in
docs/results.md; `python -m heroportraits train --preset NAME --dry-run` prints one resolved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from heroportraits.training.config import Config, ConfigError, apply_overrides, validate_config


@dataclass(frozen=True)
class Preset:
    base: str | None  # the preset this one starts from (None: the config's defaults)
    description: str  # one line: what the preset is (printed by `train --dry-run`, tabled in the README)
    overrides: Mapping[str, object]  # `section.field: value`, applied on top of the base


# ---------------------------------------------------------------- the pieces presets are made of
CPU_DCGAN = {  # the DCGAN body (concat embeddings in G and D) on the native grid
    "model.g_width": 48,
    "model.d_width": 48,
    "model.z_dim": 64,
    "train.steps": 6000,
    "train.batch_size": 64,
    "train.channels_last": True,
    "train.sample_every": 1000,
    "train.checkpoint_every": 1000,
}
CPU_RESNET = {
    "model.arch": "resnet",
    "model.g_width": 32,
    "model.d_width": 32,
    "model.z_dim": 64,
    "train.steps": 2500,
    "train.batch_size": 32,
    "train.channels_last": True,
    "train.sample_every": 250,
    "train.checkpoint_every": 250,
}
GPU = {  # full width at 64x64, bf16, compiled on CUDA, 30,000 steps of 128
    "model.g_width": 64,
    "model.d_width": 64,
    "model.z_dim": 128,
    "model.native_grid": False,
    "train.steps": 30000,
    "train.batch_size": 128,
    "train.amp": True,
    "train.channels_last": True,
    "train.compile": "cuda",
    "train.sample_every": 2000,
    "train.checkpoint_every": 2000,
}
SN_PROJECTION_MS = {  # spectral-norm projection D, label-driven batch-norm in G (Miyato 2018, Miyato & Koyama 2018)
    "model.g_cond": "concat+cbn",
    "model.d_cond": "projection",
    "model.d_spectral_norm": True,
    "train.g_betas": (0.0, 0.9),
    "train.d_betas": (0.0, 0.9),
    "train.mode_seeking": 1.0,  # without it each condition collapses to one portrait
}
DEMO = {
    "model.d_classify": 2.0,  # D's auxiliary classifier (AC-GAN, Odena 2017)
    "train.mode_seeking": 0.5,  # halved: the classifier already keeps each condition's portraits apart
    "train.amp": True,  # bf16 where the CPU computes it natively
    "train.reuse_fakes": True,  # one G forward a step
    "draw.rgb_colours": 32,  # each portrait quantised to colours of its own ...
    "draw.palette_merge": 7.0,  # ... those within 7 dE merged ...
    "draw.adapt_colours": True,  # ... as many as leave the data's colours a portrait (28 on the built-in data)
    "draw.refine_steps": 7,  # each portrait's noise refined 7 steps by D's classifier ...
    "draw.refine_realness": 0.025,  # ... with half the default realness weight ...
    "draw.bf16": True,  # ... in bf16 where native: 1.5x faster, the same scores
}
SN_PROJ = {  # SNGAN-style (Miyato 2018): conditional BN in G, projection D with spectral norm, hinge
    "model.g_cond": "cbn",
    "model.d_cond": "projection",
    "model.d_spectral_norm": True,
    "train.g_betas": (0.0, 0.9),
    "train.d_betas": (0.0, 0.9),
}
FULL = {  # the study's full stabiliser set on top of SN + projection
    "train.g_lr": 1e-4,  # TTUR
    "train.d_lr": 4e-4,
    "train.r1_gamma": 0.2,  # lazy R1
    "train.r1_every": 4,
    "train.ema_decay": 0.999,
    "train.ema_rampup": 0.05,
    "train.augment": "color,translation,cutout",  # DiffAugment
    "train.instance_noise_std": 0.1,  # annealed to 0 over the run
}
PALETTE_OUTPUT = {  # every native pixel one of 32 colours of a palette G draws per portrait, straight-through
    "model.output": "palette",
    "model.palette_k": 32,
    "model.palette_source": "portrait",
    "model.palette_mix": "straight",
}
PIXEL = {**PALETTE_OUTPUT, "model.g_sle": True, "model.d_recon": 1.0}  # + FastGAN's SLE and self-supervised D
PALETTE = {
    **PALETTE_OUTPUT,
    "train.d_lr": 1e-4,  # D slowed: half G's learning rate ...
    "train.r1_gamma": 1.0,  # ... and lazy R1, or D wins from ~3,000 steps
    "train.r1_every": 4,
    "model.d_classify": 2.0,  # D's auxiliary classifier
    "draw.palette_merge": 5.0,  # samples merge near-identical colours
}
PALETTE_HEAD = {  # for art whose classes differ by head item (the varied LPC composition)
    "model.palette_k": 64,  # LPC portraits hold ~65 colours ...
    "draw.palette_merge": 0.0,  # ... so none are merged
    "model.d_head_classify": 4.0,  # D's head classifier, which also names fakes
    "model.head_fake": True,
    "draw.refine_steps": 1,  # samples refined one step by D's classifier
    "train.steps": 8153,  # what 60 minutes gave on the first VM
    "train.tau_steps": 6000,
}
STYLE = {  # StyleGAN2's generator (mapping network, modulated convs, noise inputs, skip outputs) in the demo's place
    "model.arch": "style",
    "model.g_cond": "concat",  # the labels join z in the mapping network
}
FLOW_CPU = {  # conditional flow matching (models/flow.py): a lean U-Net on the native grid, ~2x the demo's step
    "model.arch": "unet",
    "model.g_width": 16,  # 16, 32, 64 channels at 32, 16, 8 px: ~150 MFLOP a velocity
    "model.flow_blocks": 1,
    "model.embed_dim": 16,
    "train.steps": 3000,
    "train.batch_size": 64,
    "train.g_lr": 1e-3,
    "train.g_betas": (0.9, 0.99),
    "train.attr_dropout": 0.1,  # so guidance and open attributes work
    "train.amp": True,
    "train.sample_every": 500,
    "train.checkpoint_every": 500,
    "draw.flow_steps": 8,  # Heun 8 (15 passes) drew better than Euler 16 (docs/log/2026-12-05-flow-pilot.md)
    "draw.flow_solver": "heun",
    "draw.bf16": True,  # the solver's passes in bf16 where native: 2x faster, the same scores
    "draw.channels_last": True,  # the solver's passes in channels-last memory: 1.4x faster on a Xeon, the same scores
    "draw.rgb_colours": 32,  # the demo's colours: each portrait quantised to colours of its own, merged at 7 dE,
    "draw.palette_merge": 7.0,
    "draw.adapt_colours": True,  # as many as leave the data's colours a portrait (50 on the built-in data)
}
FLOW_GPU = {  # the same recipe, sized for a GPU: 64, 128, 256 channels, two blocks a level, batch 128
    **FLOW_CPU,
    **{k: GPU[k] for k in ("train.steps", "train.batch_size", "train.compile", "train.channels_last")},
    **{k: GPU[k] for k in ("train.sample_every", "train.checkpoint_every")},
    "model.g_width": 64,
    "model.flow_blocks": 2,
    "model.embed_dim": 32,
}
LPC_DRAWING = {  # the flow family's drawing for LPC art (docs/log/2026-12-06-palette-check.md): the class guided on
    "draw.palette_merge": 0.0,  # the data's median colours a portrait, none merged (LPC holds ~57-65)
    "draw.flow_steps": 6,
    "draw.guidance": 2.0,
    "draw.guidance_until": 0.5,  # guided on the first half of the solver's times ...
    "draw.guidance_on": "hero_class",  # ... on the class (and so the headgear) alone
    "draw.palette_check": 4,  # the palette by the rules that labelled it: off-palette portraits redrawn
}
SMOKE = {
    "model.g_width": 8,
    "model.d_width": 8,
    "model.z_dim": 16,
    "model.embed_dim": 4,
    "train.steps": 6,
    "train.batch_size": 16,
    "train.sample_every": 3,
    "train.checkpoint_every": 3,
    "train.log_every": 1,
}

# ---------------------------------------------------------------- the table
_SN_PROJ_MS = "DCGAN + spectral-norm projection D + conditional BN in G + mode seeking"
_DEMO = (
    "dcgan_sn_proj_ms + D's auxiliary classifier (AC-GAN, weight 2), mode seeking halved, samples quantised to "
    "the data's colours a portrait, each one's noise refined 7 steps by D's classifier; trained and refined in bf16 "
    "where native, one G forward a step"
)
_PIXEL = "dcgan_sn_proj_ms + per-portrait palette output (32 colours) + FastGAN SLE in G and self-supervised D"
_PALETTE = (
    "dcgan_sn_proj_ms + per-portrait palette output (32 colours, straight-through) + D lr halved, lazy R1 "
    "and D's auxiliary classifier"
)
_PALETTE_HEAD = (
    "dcgan_sn_proj_ms_palette at 64 colours a portrait + D's head classifier (weight 4) that also names fakes, "
    "8,153 steps, samples refined 1 step: for art whose classes differ by head item (LPC)"
)
_SN_PROJ = "residual G and D, spectral-norm projection D, conditional BN in G"
_FULL = "resnet_sn_proj + R1, TTUR, EMA ramp-up, DiffAugment, instance noise"
_STYLE = (
    "the demo with StyleGAN2's generator in place of the DCGAN G (mapping network from noise and labels, modulated "
    "convs, noise inputs, skip outputs), the same D, losses and drawing"
)
_FLOW = (
    "conditional flow matching (rectified flow): a U-Net velocity network on the native grid, every attribute "
    "through adaptive norms with attribute dropout, drawn in Euler / Heun steps and quantised like the demo"
)
_FLOW_LPC = (
    "flow_unet drawn for art whose palettes the palette rules labelled (LPC): 6 Heun steps, the class guided (2) on "
    "the first half, off-palette portraits redrawn (up to 4 times), the data's colours unmerged; 24,000 steps (60 "
    "minutes on a 2-core Xeon)"
)
PRESETS: dict[str, Preset] = {
    "dcgan": Preset(None, "plain conditional DCGAN (concat embeddings in G and D), the baseline; CPU-sized", CPU_DCGAN),
    "dcgan_gpu": Preset(None, "plain conditional DCGAN, the baseline; GPU-sized", GPU),
    "dcgan_sn_proj_ms": Preset("dcgan", f"{_SN_PROJ_MS}; CPU-sized (the studies' base)", SN_PROJECTION_MS),
    "dcgan_sn_proj_ms_gpu": Preset("dcgan_gpu", f"{_SN_PROJ_MS}; GPU-sized", SN_PROJECTION_MS),
    "dcgan_sn_proj_ms_ac": Preset("dcgan_sn_proj_ms", f"{_DEMO}; CPU-sized (the demo)", DEMO),
    "dcgan_sn_proj_ms_ac_gpu": Preset("dcgan_sn_proj_ms_gpu", f"{_DEMO}; GPU-sized", DEMO),
    "dcgan_sn_proj_ms_pixel": Preset("dcgan_sn_proj_ms", f"{_PIXEL}; CPU-sized", PIXEL),
    "dcgan_sn_proj_ms_pixel_gpu": Preset("dcgan_sn_proj_ms_gpu", f"{_PIXEL}; GPU-sized", PIXEL),
    # tau reaches its end for the last third of the run: 4,000 of the CPU preset's 6,000 steps
    "dcgan_sn_proj_ms_palette": Preset(
        "dcgan_sn_proj_ms", f"{_PALETTE}; CPU-sized", {**PALETTE, "train.tau_steps": 4000}
    ),
    "dcgan_sn_proj_ms_palette_gpu": Preset(
        "dcgan_sn_proj_ms_gpu", f"{_PALETTE}; GPU-sized", {**PALETTE, "train.tau_steps": 20000}
    ),
    "dcgan_sn_proj_ms_palette_head": Preset("dcgan_sn_proj_ms_palette", f"{_PALETTE_HEAD}; CPU-sized", PALETTE_HEAD),
    "resnet_sn_proj": Preset(None, f"{_SN_PROJ}; CPU-sized", {**CPU_RESNET, **SN_PROJ}),
    "resnet_sn_proj_gpu": Preset(None, f"{_SN_PROJ}; GPU-sized", {**GPU, "model.arch": "resnet", **SN_PROJ}),
    "resnet_full": Preset("resnet_sn_proj", f"{_FULL}; CPU-sized", FULL),
    "resnet_full_gpu": Preset("resnet_sn_proj_gpu", f"{_FULL}; GPU-sized", FULL),
    "style_sn_proj_ms_ac": Preset("dcgan_sn_proj_ms_ac", f"{_STYLE}; CPU-sized", {**STYLE, "model.g_width": 16}),
    "style_sn_proj_ms_ac_gpu": Preset("dcgan_sn_proj_ms_ac_gpu", f"{_STYLE}; GPU-sized", STYLE),
    "flow_unet": Preset(None, f"{_FLOW}; CPU-sized", FLOW_CPU),
    "flow_unet_gpu": Preset(None, f"{_FLOW}; GPU-sized (64, 128, 256 channels, 2 blocks a level)", FLOW_GPU),
    "flow_unet_lpc": Preset("flow_unet", f"{_FLOW_LPC}; CPU-sized", {**LPC_DRAWING, "train.steps": 24000}),
    "flow_unet_lpc_gpu": Preset("flow_unet_gpu", f"{_FLOW_LPC}; GPU-sized", LPC_DRAWING),
    "smoke": Preset(None, "a few steps of a tiny DCGAN: tests and notebook smoke runs", SMOKE),
}
# Short names: `cpu` is always the demo (what `make demo` and notebook 03 train), `gpu` its GPU-sized twin.
PRESET_ALIASES = {"cpu": "dcgan_sn_proj_ms_ac", "gpu": "dcgan_sn_proj_ms_ac_gpu", "pixel": "dcgan_sn_proj_ms_pixel"}


def preset_name(name: str) -> str:
    """The preset an alias stands for (`cpu` -> `dcgan_sn_proj_ms_ac`); refuses unknown names."""
    name = PRESET_ALIASES.get(name, name)
    if name not in PRESETS:
        aliases = ", ".join(f"{a} = {p}" for a, p in PRESET_ALIASES.items())
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)} (aliases: {aliases})")
    return name


def preset_choices() -> list[str]:
    """Every name `--preset` accepts: the presets, then their aliases."""
    return sorted(PRESETS) + sorted(PRESET_ALIASES)


def preset_chain(name: str) -> list[str]:
    """The preset and its bases, the first base first: dcgan, dcgan_sn_proj_ms, dcgan_sn_proj_ms_ac."""
    chain = [preset_name(name)]
    while PRESETS[chain[0]].base is not None:
        chain.insert(0, PRESETS[chain[0]].base)
    return chain


def get_preset(name: str) -> Config:
    """A fresh Config of the preset `name` (or alias): the defaults, then each base's overrides in turn;
    it records the preset's full name."""
    cfg = Config()
    for step in preset_chain(name):
        apply_overrides(cfg, dict(PRESETS[step].overrides))
    cfg.preset = preset_name(name)
    return cfg


def resolve_config(preset: str = "cpu", overrides: list[str] | dict | None = None) -> Config:
    """A preset with `section.field=value` overrides on top, checked (config.validate_config)."""
    return validate_config(apply_overrides(get_preset(preset), overrides))
