"""Training loop, checkpoints and resume, sampling."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from heroportraits.checkpoint import CheckpointError, load_checkpoint
from heroportraits.cli import main as cli_main
from heroportraits.config import resolve_config
from heroportraits.sample import Sampler, write_samples
from heroportraits.train import train


def test_train_writes_grid_checkpoint_and_metrics(toy_dataset, project_root):
    cfg = resolve_config("smoke")
    result = train(cfg, toy_dataset, "t1", progress=False)
    assert result.step == cfg.train.steps
    state = load_checkpoint(result.checkpoint)
    assert state["step"] == cfg.train.steps
    assert set(state) >= {"G", "D", "G_ema", "opt_G", "opt_D", "rng", "config", "vocab", "dataset"}
    grids = sorted((project_root / "artifacts_gan" / "samples" / "t1").glob("step_*.png"))
    assert [g.name for g in grids] == ["step_000003.png", "step_000006.png"]
    assert Image.open(grids[-1]).size[0] > 200
    with open(result.checkpoint.parent / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(1, 7))
    assert all(np.isfinite(float(r["d_loss"])) for r in rows)
    assert (result.checkpoint.parent / "losses.png").exists()


def test_resume_continues_from_saved_step_with_identical_state(toy_dataset, project_root):
    cfg = resolve_config("smoke")
    straight = train(cfg, toy_dataset, "straight", progress=False)

    half = resolve_config("smoke", {"train.steps": 3})
    train(half, toy_dataset, "resumed", progress=False)
    assert load_checkpoint(project_root / "artifacts_gan/checkpoints/resumed/last.pt")["step"] == 3
    resumed = train(cfg, toy_dataset, "resumed", progress=False)
    assert resumed.step == 6

    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    for net in ("G", "D", "G_ema"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs after resume"
    assert torch.equal(a["rng"]["batches"], b["rng"]["batches"])
    for k, v in a["opt_D"]["state"].items():
        assert torch.equal(v["exp_avg"], b["opt_D"]["state"][k]["exp_avg"])


def test_resume_refuses_checkpoint_from_another_config(toy_dataset):
    train(resolve_config("smoke"), toy_dataset, "r", progress=False)
    wider = resolve_config("smoke", {"model.g_width": 16, "train.steps": 8})
    with pytest.raises(CheckpointError, match="model.g_width"):
        train(wider, toy_dataset, "r", progress=False)


def test_sample_cli_writes_pngs_and_labels(toy_dataset, project_root, tmp_path):
    result = train(resolve_config("smoke"), toy_dataset, "s", progress=False)
    out = tmp_path / "samples"
    assert cli_main(["sample", str(result.checkpoint.parent), "--n", "20", "--out", str(out),
                     "--set", "hero_class=mage"]) == 0
    with open(out / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20 and all(r["hero_class"] == "mage" for r in rows)
    assert {r["gender"] for r in rows} <= {"masculine", "feminine"}
    img = np.asarray(Image.open(out / rows[0]["file"]))
    assert img.shape == (64, 64, 3)
    # The toy data is on a x2 grid, so the native-grid generator's output is crisp by construction.
    assert (img[::2, ::2] == img[1::2, 1::2]).all()
    assert cli_main(["sample", str(result.checkpoint), "--grid", "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").exists()


def test_sample_rejects_unknown_value(toy_dataset, tmp_path, capsys):
    result = train(resolve_config("smoke"), toy_dataset, "u", progress=False)
    code = cli_main(["sample", str(result.checkpoint), "--n", "2", "--out", str(tmp_path / "x"),
                     "--set", "hero_class=necromancer"])
    assert code == 2
    assert "necromancer" in capsys.readouterr().err


def test_conditions_follow_training_mix(toy_dataset):
    result = train(resolve_config("smoke"), toy_dataset, "mix", progress=False)
    sampler = Sampler.from_checkpoint(result.checkpoint)
    labels = sampler.draw_conditions(4000, {"hero_class": "mage"}, seed=1)
    gender = labels[:, sampler.vocab.names.index("gender")].float().mean().item()
    assert abs(gender - 0.5) < 0.05  # the toy set is balanced in gender
    assert (labels[:, sampler.vocab.names.index("hero_class")] == 1).all()


def test_dry_run_prints_config(capsys):
    assert cli_main(["train", "--preset", "cpu", "--dry-run", "--set", "train.steps=7"]) == 0
    out = capsys.readouterr().out
    assert '"steps": 7' in out and '"use_palette": true' in out
