"""Config: presets named for what they are (with aliases), and every --set value checked before any work."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from heroportraits.cli import main as cli_main
from heroportraits.training.config import (
    PRESET_ALIASES,
    PRESETS,
    ConfigError,
    get_preset,
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
    cpu = get_preset("cpu")
    assert (cpu.model.arch, cpu.model.g_cond, cpu.model.d_cond) == ("dcgan", "concat+cbn", "projection")
    assert cpu.model.d_spectral_norm and cpu.train.mode_seeking > 0  # what the name says
    assert set(preset_choices()) == set(PRESETS) | set(PRESET_ALIASES)
    palette = get_preset("dcgan_sn_proj_ms_palette")  # the demo recipe, palette output, D slowed (pixelart_long)
    assert (palette.model.output, palette.model.palette_mix, palette.model.arch) == ("palette", "straight", "dcgan")
    assert palette.train.d_lr == palette.train.g_lr / 2 and palette.train.r1_gamma > 0
    assert palette.train.tau_steps == 4000 and palette.train.steps == cpu.train.steps
    assert palette.model.palette_merge == 5.0 and palette.model.rgb_colours == 0  # samples merged (pixelart.md 10)
    assert (cpu.model.rgb_colours, cpu.model.palette_merge) == (32, 7.0)  # samples quantised (pixelart.md 15)
    assert cpu.model.best_of == palette.model.best_of == 1  # refinement, not best-of (pixelart.md 16-17) ...
    assert (cpu.model.refine_steps, palette.model.refine_steps) == (7, 0)  # ... by D's classifier (pixelart.md 18)
    assert cpu.model.refine_realness == 0.025
    assert palette.model.d_classify == 2.0 and palette.train.r1_gamma == 1.0  # D's classifier (pixelart.md 11)
    head = get_preset("dcgan_sn_proj_ms_palette_head")  # the palette preset for head items (pixelart.md 21-22)
    assert (head.model.d_head_classify, head.model.head_fake, head.model.refine_steps) == (4.0, True, 1)
    assert (head.model.palette_k, head.model.palette_merge) == (64, 0.0)
    assert (head.train.steps, head.train.tau_steps) == (8153, 6000)
    unchanged = dict(palette_k=32, palette_merge=5.0, d_head_classify=0.0, head_fake=False, refine_steps=0)
    assert replace(head.model, **unchanged) == palette.model  # the palette preset underneath, nothing else
    assert replace(head.train, steps=6000, tau_steps=4000) == palette.train
    assert cpu.model.d_classify == 2.0  # the demo has D's classifier (pixelart.md 11) ...
    base = get_preset("dcgan_sn_proj_ms")  # ... and the studies' base is the preset they measured, without it
    assert base.model.d_classify == 0.0 and base.model.rgb_colours == 0
    assert (
        replace(cpu.model, d_classify=0.0, rgb_colours=0, palette_merge=0.0, refine_steps=0, refine_realness=0.05)
        == base.model
    )
    assert (cpu.train.mode_seeking, base.train.mode_seeking) == (0.5, 1.0)  # halved beside it (pixelart.md 13)
    assert cpu.train.amp and cpu.train.reuse_fakes  # bf16 where native, one G forward a step (pixelart.md 18)
    assert replace(cpu.train, mode_seeking=1.0, amp=False, reuse_fakes=False) == base.train
    with pytest.raises(ConfigError, match="aliases: cpu = dcgan_sn_proj_ms_ac"):
        get_preset("cpu_fast")


def test_every_preset_says_what_it_is_and_gpu_twins_match():
    for name, preset in PRESETS.items():
        assert preset.description and "\n" not in preset.description, name
        if name.endswith("_gpu"):
            cpu_twin, gpu = get_preset(name.removesuffix("_gpu")), get_preset(name)
            # The twin differs in size only: the same networks and techniques.
            for field in ("arch", "g_cond", "d_cond", "d_spectral_norm", "g_spectral_norm"):
                assert getattr(cpu_twin.model, field) == getattr(gpu.model, field), (name, field)
            assert (cpu_twin.train.mode_seeking, cpu_twin.train.augment) == (gpu.train.mode_seeking, gpu.train.augment)


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
    with pytest.raises(ConfigError, match="model.<name> or train.<name>"):
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

    with pytest.raises(ConfigError, match="palette_merge=4 merges palette colours, so it needs model.output=palette"):
        resolve_config("dcgan_sn_proj_ms", {"model.palette_merge": 4})
    with pytest.raises(ConfigError, match="model.palette_merge"):
        resolve_config("dcgan_sn_proj_ms_palette", {"model.palette_merge": -1})
    with pytest.raises(ConfigError, match="d_classify=1 needs model.d_cond=projection: with d_cond=concat"):
        resolve_config("dcgan", {"model.d_classify": 1})
    with pytest.raises(ConfigError, match="model.d_classify"):
        resolve_config("cpu", {"model.d_classify": -0.5})
    assert resolve_config("cpu", {"model.d_classify": 0.5}).model.d_classify == 0.5
    with pytest.raises(ConfigError, match="model.best_of=4 ranks candidates by D's auxiliary classifier, so it needs"):
        resolve_config("cpu", {"model.d_classify": 0, "model.refine_steps": 0, "model.best_of": 4})
    with pytest.raises(ConfigError, match="model.refine_steps=7 guides the noise by D's auxiliary classifier"):
        resolve_config("cpu", {"model.d_classify": 0})
    for field in ("refine_steps", "refine_realness"):
        with pytest.raises(ConfigError, match=f"model.{field}"):
            resolve_config("cpu", {f"model.{field}": -1})
    with pytest.raises(ConfigError, match="model.refine_rate"):
        resolve_config("cpu", {"model.refine_rate": 0})
    with pytest.raises(ConfigError, match="model.best_of"):
        resolve_config("cpu", {"model.best_of": 0})
    with pytest.raises(ConfigError, match="model.z_dim=1.5: expects a whole number"):
        validate_config(cfg)


def test_every_numeric_field_has_a_range():
    import typing

    from heroportraits.training.config import RANGES, ModelConfig, TrainConfig

    for section, cls in (("model", ModelConfig), ("train", TrainConfig)):
        for name, kind in typing.get_type_hints(cls).items():
            numeric = kind in (int, float) or typing.get_origin(kind) is tuple
            assert not numeric or f"{section}.{name}" in RANGES, f"add {section}.{name} to config.RANGES"


def test_train_with_a_bad_value_fails_before_any_work(toy_dataset, project_root, capsys):
    assert cli_main(["train", "--dataset", toy_dataset, "--run", "bad", "--set", "train.sample_every=0"]) == 2
    assert "train.sample_every=0" in capsys.readouterr().err
    assert not (project_root / "artifacts_gan" / "checkpoints" / "bad").exists()
