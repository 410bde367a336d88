"""Training loop, checkpoints and resume, sampling."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from toys import FAMILIES

from heroportraits.cli import main as cli_main
from heroportraits.evaluation.during_training import TrainTimeScorer
from heroportraits.sampling.sampler import Sampler
from heroportraits.training.checkpoint import CheckpointError, load_checkpoint
from heroportraits.training.config import ConfigError
from heroportraits.training.loop import train
from heroportraits.training.presets import resolve_config


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


@pytest.mark.parametrize("family", list(FAMILIES))
def test_resume_continues_from_saved_step_with_identical_state(family, toy_dataset, project_root):
    cfg = resolve_config("smoke", FAMILIES[family])
    straight = train(cfg, toy_dataset, "straight", progress=False)

    half = resolve_config("smoke", {**FAMILIES[family], "train.steps": 3})
    train(half, toy_dataset, "resumed", progress=False)
    assert load_checkpoint(project_root / "artifacts_gan/checkpoints/resumed/last.pt")["step"] == 3
    resumed = train(cfg, toy_dataset, "resumed", progress=False)
    assert resumed.step == 6

    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    has_d = family != "flow"  # the flow family has no D
    nets = ("G", "D", "G_ema") if has_d else ("G", "G_ema")
    assert ("D" in a) == has_d
    for net in nets:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs after resume"
    assert torch.equal(a["rng"]["batches"], b["rng"]["batches"])
    for opt in ("opt_G", "opt_D") if has_d else ("opt_G",):
        for k, v in a[opt]["state"].items():
            assert torch.equal(v["exp_avg"], b[opt]["state"][k]["exp_avg"])


def test_resume_refuses_checkpoint_from_another_config(toy_dataset):
    train(resolve_config("smoke"), toy_dataset, "r", progress=False)
    wider = resolve_config("smoke", {"model.g_width": 16, "train.steps": 8})
    with pytest.raises(CheckpointError, match="model.g_width"):
        train(wider, toy_dataset, "r", progress=False)


def test_sample_cli_writes_pngs_and_labels(toy_dataset, project_root, tmp_path):
    result = train(resolve_config("smoke"), toy_dataset, "s", progress=False)
    out = tmp_path / "samples"
    assert (
        cli_main(["sample", str(result.checkpoint.parent), "--n", "20", "--out", str(out), "--set", "hero_class=mage"])
        == 0
    )
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
    code = cli_main(
        ["sample", str(result.checkpoint), "--n", "2", "--out", str(tmp_path / "x"), "--set", "hero_class=necromancer"]
    )
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


def test_dry_run_and_help_show_evaluation_and_multi_gpu_options(capsys):
    assert cli_main(["train", "--preset", "cpu", "--dry-run", "--eval-every", "100", "--eval-samples", "50"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["train"]["eval_every"] == 100 and cfg["train"]["eval_samples"] == 50
    assert resolve_config("cpu").train.eval_every == 0  # presets leave the judge off
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    text = capsys.readouterr().out
    assert "--eval-every" in text and "eval.jsonl" in text and "best.pt" in text
    assert "torchrun" in text and "global batch" in text and "--run-name" in text
    with pytest.raises(ConfigError, match="eval_samples"):
        resolve_config("smoke", {"train.eval_every": 2, "train.eval_samples": 5})


def test_eval_every_writes_curve_and_keeps_best_checkpoint(toy_dataset, project_root):
    from heroportraits.evaluation.judge import JudgeConfig, load_or_train_judge
    from heroportraits.training.figures import read_metric_file

    load_or_train_judge(toy_dataset, JudgeConfig(epochs=2), progress=False)  # cached: train() loads it
    drawing = {"model.d_cond": "projection", "model.d_classify": 1.0, "draw.rgb_colours": 5, "draw.refine_steps": 2}
    cfg = resolve_config("smoke", {"train.eval_every": 2, "train.eval_samples": 20, **drawing})
    with pytest.raises(
        ConfigError, match=r"train.eval_every=2 scores the run while it trains, so train\(\) needs a scorer"
    ):
        train(cfg, toy_dataset, "ev", progress=False)  # refused before any work
    assert not (project_root / "artifacts_gan" / "checkpoints" / "ev").exists()
    result = train(cfg, toy_dataset, "ev", progress=False, scorer=TrainTimeScorer(toy_dataset))
    run_dir = result.checkpoint.parent
    rows = [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert {r["drawing"] for r in rows} == {"5 colours a portrait"}  # the run's colours, without its refinement
    assert all(r["n"] == 20 and np.isfinite(r["fd"]) and 0 <= r["cond_acc"] <= 1 for r in rows)
    assert {"cond_acc_gender", "cond_acc_hero_class", "cond_acc_palette"} <= set(rows[0])
    best_row = min(rows, key=lambda r: r["fd"])
    best = load_checkpoint(run_dir / "best.pt")
    assert best["step"] == best_row["step"] and [r["best"] for r in rows].count(True) >= 1
    assert best["best"] == {"fd": best_row["fd"], "step": best_row["step"]} == result.best
    assert load_checkpoint(result.checkpoint)["best"] == result.best  # survives into last.pt
    assert read_metric_file(run_dir / "eval.jsonl")["fd"].tolist() == [r["fd"] for r in rows]  # what the notebook plots


class ScriptedScorer:
    """A RunScorer that gives these FDs in turn (no judge needed)."""

    def __init__(self, fds: list[float]):
        self.fds = iter(fds)

    def prepare(self, progress: bool) -> None:
        pass

    def __call__(self, state: dict, n: int, device) -> dict:
        return {"n": n, "fd": next(self.fds), "cond_acc": 0.5}


def test_best_fd_survives_resume(toy_dataset, project_root):
    scorer = ScriptedScorer([5.0, 1.0, 3.0, 2.0])  # steps 2, 4, 6, then 8 after the resume
    cfg = resolve_config("smoke", {"train.eval_every": 2, "train.eval_samples": 10})
    train(cfg, toy_dataset, "rb", progress=False, scorer=scorer)
    run_dir = project_root / "artifacts_gan" / "checkpoints" / "rb"
    with open(run_dir / "eval.jsonl", "a") as f:  # logged after the last checkpoint by a run that then died
        f.write(json.dumps({"step": 7, "fd": 0.1}) + "\n")
    with open(run_dir / "metrics.csv", "a") as f:
        f.write("7,1.0,1.0\n")
    result = train(
        resolve_config("smoke", {"train.eval_every": 2, "train.eval_samples": 10, "train.steps": 8}),
        toy_dataset,
        "rb",
        progress=False,
        scorer=scorer,
    )
    rows = [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()]
    assert [(r["step"], r["fd"], r["best"]) for r in rows] == [
        (2, 5.0, True),
        (4, 1.0, True),
        (6, 3.0, False),
        (8, 2.0, False),
    ]
    assert result.best == {"fd": 1.0, "step": 4} and load_checkpoint(run_dir / "best.pt")["step"] == 4
    assert load_checkpoint(result.checkpoint)["step"] == 8
    with open(run_dir / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(1, 9))


def test_metrics_of_an_older_version_stay_aligned_when_resumed(toy_dataset, project_root):
    """A metrics.csv written before a column was added (d_class) is rewritten under today's columns."""
    train(resolve_config("smoke", {"train.steps": 4}), toy_dataset, "old", progress=False)
    path = project_root / "artifacts_gan" / "checkpoints" / "old" / "metrics.csv"
    with open(path) as f:
        before = list(csv.DictReader(f))
    with open(path, "w", newline="") as f:  # as an older version wrote it: no d_class column
        old_columns = [c for c in before[0] if c != "d_class"]
        writer = csv.writer(f)
        writer.writerow(old_columns)
        writer.writerows([[row[c] for c in old_columns] for row in before])
    train(resolve_config("smoke", {"train.steps": 6}), toy_dataset, "old", progress=False)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    assert "d_class" in header and all(len(r) == len(header) for r in body)
    table = [dict(zip(header, r)) for r in body]
    assert [int(r["step"]) for r in table] == list(range(1, 7))
    assert [r["d_loss"] for r in table[:4]] == [r["d_loss"] for r in before]  # kept under their names
    assert [r["d_class"] for r in table[:4]] == [""] * 4 and all(r["d_class"] for r in table[4:])
