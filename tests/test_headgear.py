"""Does the class change the headgear: the head-item judge's scores, D's head classifier, the command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_project_root, synthetic_blocks_dataset

from heroportraits import cli
from heroportraits.data.attributes import DEFAULT_SCHEMA, LabelError, Vocabulary
from heroportraits.data.dataset import write_dataset
from heroportraits.data.images import nearest_upscale
from heroportraits.evaluation.headgear import (
    HEADGEAR_KINDS,
    HeadgearError,
    headgear_judge,
    headgear_kind,
    headgear_scores,
    scores_frame,
)
from heroportraits.evaluation.judge import JudgeConfig
from heroportraits.models import build_models
from heroportraits.models.head_classifier import HeadClassifier
from heroportraits.training.config import ConfigError
from heroportraits.training.presets import resolve_config

CLASSES = DEFAULT_SCHEMA["hero_class"]
KIND_COLOURS = [
    (250, 250, 250),
    (200, 30, 30),
    (30, 160, 40),
    (150, 150, 160),
    (90, 90, 60),
    (60, 40, 150),
    (240, 200, 0),
]


def test_lpc_head_items_map_to_their_kinds():
    assert headgear_kind("none") == "bare"
    assert headgear_kind("head/helms/male/metal_helm_male.png#tint=red") == "helmet"
    assert headgear_kind("head/hoods/female/chain_hood_female.png") == "chain hood"
    assert headgear_kind("head/hoods/male/cloth_hood_male.png#tint=blue") == "cloth hood"
    assert headgear_kind("head/tiaras_female/gold.png") == "tiara"
    assert headgear_kind("head/caps/male/leather_cap_male.png") == "cap"
    assert headgear_kind("head/bandanas/female/red.png#tint=black") == "bandana"
    with pytest.raises(HeadgearError, match="no known kind"):
        headgear_kind("head/crowns/king.png")


def test_scores_tell_headgear_that_follows_the_class_from_headgear_that_follows_the_noise():
    rng = np.random.default_rng(0)
    real_classes = np.repeat(np.arange(4), 50)
    real_kinds = real_classes + 1  # each class its own kind
    follows_class = np.tile(np.arange(4) + 1, (100, 1))  # (noises, classes)
    s = headgear_scores(follows_class, real_kinds, real_classes)
    assert s["class_from_headgear"] == {"model": 1.0, "real": 1.0, "chance": 0.25}
    assert s["changes_with_class"] == {"model": 1.0, "real": 1.0}
    assert s["pairs_differ"]["model"] == 1.0 and s["distance"]["model"] == 0.0
    follows_noise = np.repeat(rng.integers(1, 5, size=(100, 1)), 4, axis=1)  # the noise picks it, class or not
    s = headgear_scores(follows_noise, real_kinds, real_classes)
    assert s["changes_with_class"]["model"] == 0.0 and s["pairs_differ"]["model"] == 0.0
    assert s["class_from_headgear"]["model"] == pytest.approx(0.25)
    assert 0.5 < s["distance"]["model"] < 1.0
    assert s["bare"] == {"model": 0.0, "real": 0.0}
    s = headgear_scores(np.zeros((10, 4), int), real_kinds, real_classes)  # every head bare
    assert s["bare"]["model"] == 1.0 and s["changes_with_class"]["model"] == 0.0
    frame = scores_frame(s)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["model", "real", "chance"]


def test_head_classifier_reads_only_the_top_rows_and_learns_from_them():
    torch.manual_seed(0)
    vocab = Vocabulary(DEFAULT_SCHEMA)
    head = HeadClassifier(vocab, "hero_class", rows=0.5, width=8)
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    below = x.clone()
    below[:, :, 16:] = -x[:, :, 16:]
    above = x.clone()
    above[:, :, :16] = -x[:, :, :16]
    assert torch.equal(head.logits(x), head.logits(below))
    assert not torch.allclose(head.logits(x), head.logits(above))
    # top rows coloured by class, bottom rows random: the loss falls as it learns the top
    labels = torch.stack(
        [torch.zeros(64, dtype=torch.long), torch.arange(64) % 4, torch.zeros(64, dtype=torch.long)], 1
    )
    x = torch.rand(64, 3, 32, 32) * 2 - 1
    x[:, :, :16] = (labels[:, 1].float() / 1.5 - 1)[:, None, None, None]
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    first = head.loss(x, labels).item()
    for _ in range(60):
        loss = head.loss(x, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


def test_head_classifier_with_a_fake_class_learns_to_tell_fakes_from_reals_by_the_top_rows():
    torch.manual_seed(0)
    vocab = Vocabulary(DEFAULT_SCHEMA)
    head = HeadClassifier(vocab, "hero_class", rows=0.5, width=8, fake_class=True)
    labels = torch.stack(
        [torch.zeros(64, dtype=torch.long), torch.arange(64) % 4, torch.zeros(64, dtype=torch.long)], 1
    )
    real = torch.rand(64, 3, 32, 32) * 2 - 1
    real[:, :, :16] = (labels[:, 1].float() / 1.5 - 1)[:, None, None, None]  # a flat band names the class
    fake = real.clone()
    fake[:, :, :16] = torch.rand(64, 3, 16, 32) * 2 - 1  # noise where the band should be
    assert head.logits(real).shape == (64, 5)  # four classes and "fake"
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(80):
        loss = head.loss(real, labels) + head.fake_loss(fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
    p_fake = lambda x: head.logits(x).softmax(1)[:, 4]  # noqa: E731
    assert p_fake(fake).mean() > 0.9 > 0.1 > p_fake(real).mean()
    # G's side: the asked class's log-likelihood is low on fakes, since they are named fake
    assert head.log_likelihood(fake, labels).mean() < head.log_likelihood(real, labels).mean() - 2


def test_training_with_a_fake_class_in_the_head_classifier(smoke_checkpoint):
    ckpt = smoke_checkpoint(**{"model.d_head_classify": 1.0, "model.d_cond": "projection", "model.head_fake": True})
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["D"]["head_classifier.head.weight"].shape[0] == len(CLASSES) + 1
    metrics = pd.read_csv(ckpt.parent / "metrics.csv")
    assert (metrics["d_head"] > 0).all()
    with pytest.raises(ConfigError, match="model.head_fake=true .* needs model.d_head_classify > 0"):
        resolve_config("smoke", {"model.head_fake": True, "model.d_cond": "projection"})


def test_head_classifier_settings_are_checked():
    with pytest.raises(ConfigError, match="model.head_rows"):
        resolve_config("smoke", {"model.head_rows": 0})
    with pytest.raises(ConfigError, match="d_head_classify=1 needs model.d_cond=projection"):
        resolve_config("smoke", {"model.d_head_classify": 1, "model.d_cond": "concat"})
    cfg = resolve_config(
        "smoke", {"model.d_head_classify": 1, "model.d_cond": "projection", "model.head_attribute": "hat"}
    )
    with pytest.raises(LabelError, match="model.head_attribute='hat'.*hero_class"):
        build_models(cfg.model, Vocabulary(DEFAULT_SCHEMA), 32)
    off = resolve_config("smoke", {"model.d_cond": "projection"})
    assert build_models(off.model, Vocabulary(DEFAULT_SCHEMA), 32)[1].head_classifier is None


def test_training_with_the_head_classifier_logs_its_loss(smoke_checkpoint):
    ckpt = smoke_checkpoint(**{"model.d_head_classify": 1.0, "model.d_cond": "projection"})
    metrics = pd.read_csv(ckpt.parent / "metrics.csv")
    assert (metrics["d_head"] > 0).all()
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert any(k.startswith("head_classifier.") for k in state["D"])
    off = pd.read_csv(smoke_checkpoint(**{"model.d_cond": "projection"}).parent / "metrics.csv")
    assert (off["d_head"] == 0).all()


def _headgear_dataset(root, n=320):
    """A final dataset whose source labels.csv records a head item per portrait: the item's kind is a
    band of its colour over the top rows, and class c mostly wears kind c + 1."""
    rng = np.random.default_rng(0)
    vocab = Vocabulary(DEFAULT_SCHEMA)
    source = root / "data" / "sources" / "heads"
    source.mkdir(parents=True)
    items = [
        "none",
        "head/bandanas/male/red.png",
        "head/caps/male/leather_cap_male.png",
        "head/helms/male/metal_helm_male.png",
    ]
    images, rows, labels = [], [], []
    for i in range(n):
        c = i % 4
        item = items[c] if rng.random() < 0.8 else items[rng.integers(4)]
        img = rng.integers(0, 255, size=(32, 32, 3), dtype=np.uint8)
        img[:12] = KIND_COLOURS[HEADGEAR_KINDS.index(headgear_kind(item))]
        images.append(nearest_upscale(img, 2))
        row = {"file": f"images/{i:05d}.png", "gender": "masculine", "hero_class": CLASSES[c], "palette": "warm"}
        rows.append({**row, "split": "val" if i % 5 == 4 else "train"})
        labels.append(f"{row['file']},{item}")
    (source / "labels.csv").write_text("file,headgear\n" + "\n".join(labels) + "\n")
    meta = {"name": "heads", "native_scale": 2, "source": {"kind": "synthetic-test", "input_dir": "data/sources/heads"}}
    write_dataset(root / "data" / "heads", np.stack(images), rows, vocab, meta)
    return "heads"


def test_headgear_command_end_to_end(tmp_path, monkeypatch, capsys):
    from heroportraits.training.loop import train

    root = make_project_root(tmp_path / "project")
    monkeypatch.setenv("HEROPORTRAITS_ROOT", str(root))
    name = _headgear_dataset(root)
    judge = headgear_judge(name, JudgeConfig(epochs=12, batch_size=32, width=8, feature_dim=32), progress=False)
    assert judge.accuracy["headgear"] > 0.9  # the band names the kind
    cfg = resolve_config("smoke", {"train.steps": 2, "model.d_head_classify": 1.0, "model.d_cond": "projection"})
    ckpt = train(cfg, name, "h", progress=False).checkpoint
    assert cli.main(["headgear", str(ckpt.parent), "--noises", "12", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "class named by the headgear alone" in out
    scores = json.loads((ckpt.parent / "headgear.json").read_text())
    assert scores["n_noises"] == 12 and scores["classes"] == CLASSES
    assert scores["class_from_headgear"]["real"] > 0.6  # 80 % wear their class's kind
    assert 0 <= scores["changes_with_class"]["model"] <= 1
    assert (ckpt.parent / "headgear.png").exists()
    capsys.readouterr()
    assert cli.main(["headgear", str(ckpt.parent), "--noises", "4", "--refine", "2", "--quiet"]) == 2
    assert "model.d_classify > 0" in capsys.readouterr().err  # refinement needs D's auxiliary classifier
    assert scores["drawing"]["refine_steps"] == 0  # the scores say how their portraits were drawn


def test_headgear_command_refuses_data_without_head_items_in_one_line(tmp_path, monkeypatch, capsys, smoke_checkpoint):
    root = make_project_root(tmp_path / "project")
    monkeypatch.setenv("HEROPORTRAITS_ROOT", str(root))
    synthetic_blocks_dataset(root)
    ckpt = smoke_checkpoint()
    assert cli.main(["headgear", str(ckpt), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "headgear" in err and "heroportraits lpc" in err
