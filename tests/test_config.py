"""Config: presets named for what they are (with aliases), and every --set value checked before any work."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from heroportraits.cli import main as cli_main
from heroportraits.models.config import DrawOptions
from heroportraits.training.config import Config, ConfigError, apply_overrides
from heroportraits.training.presets import (
    PRESET_ALIASES,
    PRESETS,
    get_preset,
    preset_chain,
    preset_choices,
    resolve_config,
)


def test_aliases_are_the_presets_they_name():
    assert PRESET_ALIASES == {
        "cpu": "dcgan_sn_proj_ms_ac",
        "gpu": "dcgan_sn_proj_ms_ac_gpu",
        "pixel": "dcgan_sn_proj_ms_pixel",
    }
    for alias, name in PRESET_ALIASES.items():
        a, b = get_preset(alias), get_preset(name)
        assert a == b and a.preset == name  # the run records the full name
    assert set(preset_choices()) == set(PRESETS) | set(PRESET_ALIASES)
    with pytest.raises(ConfigError, match="aliases: cpu = dcgan_sn_proj_ms_ac"):
        get_preset("cpu_fast")


def test_the_preset_table_is_well_formed():
    """Each preset starts from a preset in the table (no loop), says what it is in one line, and every override
    names a config field with a value it can take: every preset resolves and passes validate_config."""
    for name, preset in PRESETS.items():
        assert preset.description and "\n" not in preset.description, name
        chain = preset_chain(name)
        assert chain[-1] == name and len(set(chain)) == len(chain) and PRESETS[chain[0]].base is None
        assert preset.base is None or preset.base in PRESETS
        assert resolve_config(name).preset == name
        for key in preset.overrides:
            apply_overrides(Config(), {key: preset.overrides[key]})  # a typo in the table would be refused here


def test_a_preset_is_its_base_with_its_overrides():
    """What a preset's row says is what it does: its base's config, with each override set and nothing else."""
    for name, preset in PRESETS.items():
        base = get_preset(preset.base) if preset.base else Config()
        mine = get_preset(name)
        changed = {
            f"{section}.{k}"
            for section in ("model", "train", "draw")
            for k, v in asdict(getattr(mine, section)).items()
            if asdict(getattr(base, section))[k] != v
        }
        assert changed <= set(preset.overrides), (name, changed - set(preset.overrides))


# What the names' parts promise (the table's comment: the networks, then the techniques on top).
NAME_PARTS = {
    "dcgan": lambda c: c.model.arch == "dcgan",
    "resnet": lambda c: c.model.arch == "resnet",
    "sn_proj": lambda c: (
        c.model.d_spectral_norm
        and c.model.d_cond == "projection"
        and ("cbn" in c.model.g_cond or c.model.arch == "style")
    ),
    "style": lambda c: c.model.arch == "style" and c.model.g_cond == "concat",
    "_ms": lambda c: c.train.mode_seeking > 0,
    "_ac": lambda c: c.model.d_classify > 0,
    "pixel": lambda c: c.model.output == "palette" and c.model.g_sle and c.model.d_recon > 0,
    "palette": lambda c: c.model.output == "palette" and c.model.d_classify > 0,
    "head": lambda c: c.model.d_head_classify > 0,
    "full": lambda c: c.train.r1_gamma > 0 and c.train.augment and c.train.instance_noise_std > 0,
    # GPU-sized: batch >= 128 and GANs at 64x64 (the flow family stays on the native grid everywhere)
    "_gpu": lambda c: (not c.model.native_grid or c.model.arch == "unet") and c.train.batch_size >= 128,
    "flow_unet": lambda c: c.model.arch == "unet" and c.train.attr_dropout > 0,
}


def test_every_preset_is_what_its_name_says():
    for name in PRESETS:
        cfg = get_preset(name)
        for part, holds in NAME_PARTS.items():
            if part in name:
                assert holds(cfg), (name, part)
        if "sn_proj" not in name and name.startswith("dcgan"):
            assert (cfg.model.d_cond, cfg.model.d_spectral_norm) == ("concat", False), name  # the plain baseline


# Fields a GPU twin may size differently: the networks' width, grid and batch, the schedule, the speed switches.
SIZE_FIELDS = {
    "model.g_width",
    "model.d_width",
    "model.z_dim",
    "model.native_grid",
    "model.embed_dim",
    "model.flow_blocks",
    "train.steps",
    "train.batch_size",
    "train.tau_steps",
    "train.amp",
    "train.compile",
    "train.channels_last",
    "train.sample_every",
    "train.checkpoint_every",
}


def test_gpu_twins_differ_from_their_cpu_preset_in_size_only():
    for name in PRESETS:
        if not name.endswith("_gpu"):
            continue
        cpu, gpu = get_preset(name.removesuffix("_gpu")).to_dict(), get_preset(name).to_dict()
        differ = {f"{s}.{k}" for s in ("model", "train", "draw") for k in cpu[s] if cpu[s][k] != gpu[s][k]}
        assert differ <= SIZE_FIELDS, (name, differ - SIZE_FIELDS)


def test_the_demo_draws_with_its_aids_and_the_studies_base_as_g_draws():
    demo, base = get_preset("cpu"), get_preset("dcgan_sn_proj_ms")
    assert demo.draw.guided and demo.draw.rgb_colours > 1  # refined by D's classifier, quantised a portrait
    assert base.draw == DrawOptions() and not get_preset("dcgan_sn_proj_ms_palette").draw.guided
    assert asdict(demo.model) | {"d_classify": 0.0} == asdict(base.model)  # the same networks, D's classifier on


def test_dry_run_prints_the_description_and_pure_json(capsys):
    assert cli_main(["train", "--preset", "cpu", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["preset"] == "dcgan_sn_proj_ms_ac"
    assert captured.err.strip() == f"preset dcgan_sn_proj_ms_ac: {PRESETS['dcgan_sn_proj_ms_ac'].description}"
    assert resolve_config("resnet_full").preset == "resnet_full"


BAD_SETS = [
    ("train.steps=abc", "train.steps='abc': expects a whole number"),
    ("train.batch_size=abc", "train.batch_size='abc': expects a whole number"),
    ("model.z_dim=1.5", "model.z_dim='1.5': expects a whole number"),
    ("train.n_dis=2.5", "train.n_dis='2.5': expects a whole number"),
    ("model.g_width=0", "model.g_width=0 is out of range: must be >= 1"),
    ("train.device=bogus", "train.device='bogus': use auto, cpu, cuda, cuda:N or mps"),
    ("train.checkpoint_every=0", "train.checkpoint_every=0 is out of range: must be >= 1"),
    ("train.sample_every=0", "train.sample_every=0 is out of range: must be >= 1"),
    ("train.steps=true", "train.steps='true': expects a whole number"),
    ("train.steps=-5", "train.steps=-5 is out of range: must be >= 1"),
    ("train.steps", "'train.steps' has no value: write section.field=value"),
    ("train.g_lr=0", "train.g_lr=0.0 is out of range: must be > 0"),
    ("train.g_lr=nan", "train.g_lr='nan': expects a finite number"),
    ("train.d_betas=[0.5]", "train.d_betas='[0.5]': expects 2 values"),
    ("train.ema_decay=1.5", "train.ema_decay=1.5 is out of range: must be in [0, 1]"),
    ("train.amp=yes", "train.amp='yes': expects true or false"),
]


@pytest.mark.parametrize("item,message", BAD_SETS, ids=[b[0] for b in BAD_SETS])
def test_dry_run_refuses_a_bad_set_naming_field_value_and_what_is_allowed(item, message, capsys):
    assert cli_main(["train", "--dry-run", "--set", item]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1  # one line, no traceback


def test_unknown_field_is_named_with_the_sections_fields():
    with pytest.raises(ConfigError, match=r"unknown config field 'train.stepz'; train fields are: steps, batch_size"):
        resolve_config("cpu", ["train.stepz=3"])
    with pytest.raises(ConfigError, match="model.<name>, train.<name> or draw.<name>"):
        resolve_config("cpu", ["optim.lr=3"])


def test_values_are_parsed_by_their_declared_type():
    cfg = resolve_config("cpu", ["train.steps=7", "train.g_lr=1e-3", "train.g_betas=0,0.99", "train.d_betas=[0, 0.9]"])
    assert cfg.train.steps == 7 and cfg.train.g_lr == 0.001
    assert cfg.train.g_betas == (0.0, 0.99) and cfg.train.d_betas == (0.0, 0.9)
    cfg = resolve_config("cpu", ["train.amp=True", 'train.augment=""', "train.device=cuda:1", "train.max_minutes=2"])
    assert cfg.train.amp is True and cfg.train.augment == "" and cfg.train.max_minutes == 2.0
    # A notebook's dict and a hand-built Config are checked the same way.
    with pytest.raises(ConfigError, match="train.steps=True: expects a whole number"):
        resolve_config("cpu", {"train.steps": True})
    cfg = get_preset("smoke")
    cfg.model.z_dim = 1.5
    from heroportraits.training.config import validate_config

    with pytest.raises(ConfigError, match=r"palette_merge=4 \(--palette-merge 4\) merges palette colours, so it needs"):
        resolve_config("dcgan_sn_proj_ms", {"draw.palette_merge": 4})
    with pytest.raises(ConfigError, match="draw.palette_merge"):
        resolve_config("dcgan_sn_proj_ms_palette", {"draw.palette_merge": -1})
    with pytest.raises(ConfigError, match="d_classify=1 needs model.d_cond=projection: with d_cond=concat"):
        resolve_config("dcgan", {"model.d_classify": 1})
    with pytest.raises(ConfigError, match="model.d_classify"):
        resolve_config("cpu", {"model.d_classify": -0.5})
    assert resolve_config("cpu", {"model.d_classify": 0.5}).model.d_classify == 0.5
    with pytest.raises(ConfigError, match=r"draw.best_of=4 \(--best-of 4\) ranks candidates by D's auxiliary"):
        resolve_config("cpu", {"model.d_classify": 0, "draw.refine_steps": 0, "draw.best_of": 4})
    with pytest.raises(ConfigError, match=r"draw.refine_steps=7 \(--refine 7\) guides the noise by D's auxiliary"):
        resolve_config("cpu", {"model.d_classify": 0})
    for field in ("refine_steps", "refine_realness"):
        with pytest.raises(ConfigError, match=f"draw.{field}=-1(.0)? is out of range"):
            resolve_config("cpu", {f"draw.{field}": -1})
    with pytest.raises(ConfigError, match="model.refine_steps is how portraits are drawn, not the model: set draw."):
        resolve_config("cpu", {"model.refine_steps": 3})  # a field that moved is named where it went
    with pytest.raises(ConfigError, match="draw.refine_rate"):
        resolve_config("cpu", {"draw.refine_rate": 0})
    with pytest.raises(ConfigError, match="draw.best_of"):
        resolve_config("cpu", {"draw.best_of": 0})
    with pytest.raises(ConfigError, match="model.z_dim=1.5: expects a whole number"):
        validate_config(cfg)


def test_every_numeric_field_has_a_range():
    import typing

    from heroportraits.training.config import RANGES, ModelConfig, TrainConfig

    for section, cls in (("model", ModelConfig), ("train", TrainConfig), ("draw", DrawOptions)):
        for name, kind in typing.get_type_hints(cls).items():
            numeric = kind in (int, float) or typing.get_origin(kind) is tuple
            assert not numeric or f"{section}.{name}" in RANGES, f"add {section}.{name} to config.RANGES"


def test_train_with_a_bad_value_fails_before_any_work(toy_dataset, project_root, capsys):
    assert cli_main(["train", "--dataset", toy_dataset, "--run", "bad", "--set", "train.sample_every=0"]) == 2
    assert "train.sample_every=0" in capsys.readouterr().err
    assert not (project_root / "artifacts_gan" / "checkpoints" / "bad").exists()
