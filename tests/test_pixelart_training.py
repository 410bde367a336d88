"""Palette output and the FastGAN switches in training: tau on its schedule in the Trainer and across
resume, D's reconstruction loss falling on reals, both architectures x palette sources one step, the
dataset palette quantising the reals, a tiny palette model learning four classes, and a palette
checkpoint sampling with no dataset present."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_techniques import SMALL, VOCAB, fit, four_class_dataset, nearest_mean, toy_trainer

from heroportraits.data.dataset import load_dataset
from heroportraits.data.palette_quantise import colour_counts, make_dataset_palette
from heroportraits.models import build_models
from heroportraits.models.palette_output import palette_tau
from heroportraits.training.checkpoint import load_checkpoint
from heroportraits.training.loop import train
from heroportraits.training.presets import resolve_config
from heroportraits.training.setup import setup_training
from heroportraits.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


def _colours(img: np.ndarray) -> set:
    return set(map(tuple, img.reshape(-1, 3).tolist()))


def trainer16(**overrides) -> Trainer:
    """A Trainer of tiny nets on a 16x16 grid (the decoders need D maps at 8 and 4 px)."""
    cfg = resolve_config("smoke", {**SMALL, "model.g_width": 4, "model.d_width": 8, "train.batch_size": 6, **overrides})
    torch.manual_seed(0)
    G, D = build_models(cfg.model, VOCAB, 16)
    return Trainer(G, D, cfg, VOCAB, torch.Generator().manual_seed(0))


# ------------------------------------------------------------------ tau in the Trainer
def test_the_trainer_sets_tau_on_its_schedule_each_step():
    trainer, next_batch = toy_trainer(
        **{"model.output": "palette", "model.palette_k": 4, "train.tau_start": 2.0, "train.tau_end": 0.5}
    )
    trainer.tc.tau_steps = 4
    out = trainer.G.out
    seen = []
    forward = out.forward
    out.forward = lambda *a: seen.append(out.tau.item()) or forward(*a)  # tau at every G forward
    for _ in range(6):
        trainer.step(next_batch)
    per_step = seen[:: len(seen) // 6]  # D phase and G phase of one step share tau
    assert per_step == pytest.approx([palette_tau(i, 4, 2.0, 0.5) for i in range(6)])
    assert per_step[-1] == pytest.approx(0.5) and per_step[0] == pytest.approx(2.0)
    assert trainer.G_ema.out.tau.item() == pytest.approx(0.5)  # buffers travel to the EMA copy


# ------------------------------------------------------------------ FastGAN switches in the Trainer
def test_d_reconstruction_loss_falls_on_reals_in_training():
    trainer = trainer16(**{"model.d_recon": 1.0, "train.d_lr": 2e-3})
    gen = torch.Generator().manual_seed(1)
    real = (torch.rand(6, 3, 16, 16, generator=gen) > 0.5).float() * 2 - 1  # a fixed batch to rebuild
    labels = torch.zeros(6, 2, dtype=torch.long)
    losses = [trainer.step(lambda: (real, labels))["recon"].item() for _ in range(40)]
    assert all(v > 0 for v in losses)
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4]), losses
    plain, next_batch = toy_trainer()
    assert plain.step(next_batch)["recon"].item() == 0.0  # off: no decoders, nothing logged


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
@pytest.mark.parametrize("source", ["portrait", "dataset"])
def test_both_architectures_train_a_step_in_palette_mode(arch, source, toy_dataset):
    if source == "dataset":
        make_dataset_palette(toy_dataset, 6)
    cfg = resolve_config(
        "pixel",
        {**SMALL, "model.arch": arch, "model.palette_k": 6, "model.palette_source": source, "train.attr_dropout": 0.3},
    )
    s = setup_training(cfg, load_dataset(toy_dataset, "train"), torch.device("cpu"))
    G, D = s.trainer.G, s.trainer.D
    assert G.to_rgb.out_channels == 6 and G.sle is not None and D.recon is not None
    g0 = {k: v.detach().clone() for k, v in G.named_parameters()}
    stats = s.trainer.step(s.next_batch)
    assert all(torch.isfinite(v).all() for v in stats.values()) and stats["recon"] > 0
    changed = {k for k, v in G.named_parameters() if not torch.equal(v, g0[k])}
    assert "to_rgb.weight" in changed and any(k.startswith("sle.") for k in changed)
    if source == "portrait":
        assert any(k.startswith("out.head.") for k in changed)  # the palette head learns too
    else:  # D's reals are quantised to the palette G draws from
        palette = _colours(np.asarray(load_dataset(toy_dataset).meta["palette"]["colours"], np.uint8))
        assert _colours(s.shard.images.permute(0, 2, 3, 1).numpy()) <= palette


# ------------------------------------------------------------------ end to end
def test_resume_is_exact_in_palette_mode_with_gumbel_and_decoders(toy_dataset, project_root):
    """tau, the Gumbel noise and the decoders' quarter all continue where a stopped run left off
    (tau_steps fixed: the first half runs with train.steps=3, which would otherwise be the schedule's length).
    The second half samples with palette_merge on: a sampling choice, so it may change and learns nothing."""
    overrides = {"model.output": "palette", "model.palette_k": 5, "model.palette_mix": "gumbel", "model.d_recon": 1.0}
    overrides["train.tau_steps"] = 6
    straight = train(resolve_config("smoke", overrides), toy_dataset, "straight", progress=False)
    train(resolve_config("smoke", {**overrides, "train.steps": 3}), toy_dataset, "resumed", progress=False)
    merged = {**overrides, "draw.palette_merge": 3.0}
    resumed = train(resolve_config("smoke", merged), toy_dataset, "resumed", progress=False)
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    for net in ("G", "D", "G_ema"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs after resume"
    assert a["G"]["out.tau"].item() == pytest.approx(palette_tau(5, 6, 1.0, 0.1))  # the last step's tau


def test_tiny_palette_model_learns_four_classes(project_root):
    """As test_techniques' four-class check, with every pixel drawn from a per-portrait palette."""
    name = four_class_dataset(project_root)
    data = load_dataset(name, "train")
    real = data.images.permute(0, 2, 3, 1).numpy()
    classes = data.vocab.attributes["shape"]
    means = np.stack([real[data.labels[:, 0].numpy() == k].reshape(-1, 64 * 64 * 3).mean(0) for k in range(4)])
    sampler = fit(name, "four_palette", steps=150, **{"model.output": "palette", "model.palette_k": 8})
    correct, n = 0, 64
    for k, value in enumerate(classes):
        images, _ = sampler.generate(n, {"shape": value}, seed=k)
        assert max(len(_colours(img)) for img in images) <= 8
        correct += int((nearest_mean(images, means) == k).sum())
    accuracy = correct / (n * len(classes))
    assert accuracy > 0.75, f"accuracy {accuracy:.2f} on samples (chance 0.25)"


def test_a_palette_checkpoint_samples_with_no_dataset(toy_dataset, project_root, tmp_path):
    """`sample` in a fresh process, with the dataset folder gone: the checkpoint holds the palette."""
    colours = make_dataset_palette(toy_dataset, 6).colours
    cfg = resolve_config("smoke", {"model.output": "palette", "model.palette_k": 6, "model.palette_source": "dataset"})
    result = train(cfg, toy_dataset, "pal", progress=False)
    assert load_checkpoint(result.checkpoint)["dataset"]["palette"] == colours
    shutil.rmtree(project_root / "data" / toy_dataset)
    out = tmp_path / "samples"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    cmd = [sys.executable, "-m", "heroportraits", "sample", str(result.checkpoint), "--n", "12", "--out", str(out)]
    subprocess.run(cmd, check=True, env=env, cwd=project_root, capture_output=True)
    with open(out / "labels.csv") as f:
        files = [r["file"] for r in csv.DictReader(f)]
    assert len(files) == 12
    allowed = {tuple(c) for c in colours}
    for name in files:
        img = np.asarray(Image.open(out / name))
        assert _colours(img) <= allowed and len(_colours(img)) <= 6
    everything = np.stack([np.asarray(Image.open(out / f)) for f in files])
    assert len(colour_counts(everything)[0]) > 1


def test_the_pixel_preset_is_the_demo_body_plus_its_switches():
    # dcgan_sn_proj_ms: the demo as the pixel preset was measured against
    # (docs/log/2026-12-01-palette-relaxation.md), before the demo got D's classifier
    pixel, demo = resolve_config("pixel").to_dict(), resolve_config("dcgan_sn_proj_ms").to_dict()
    switched = {"output", "palette_k", "palette_source", "palette_mix", "g_sle", "d_recon"}
    drop = lambda d: {k: v for k, v in d.items() if k not in switched}  # noqa: E731
    assert drop(pixel["model"]) == drop(demo["model"])
    assert pixel["train"] == demo["train"]
    assert pixel["model"]["output"] == "palette" and pixel["model"]["g_sle"] and pixel["model"]["d_recon"] > 0
