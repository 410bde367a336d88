"""The study runner: specs checked field by field, the summary's verdict rule by hand, resuming
a killed study, sharded runs merging to the table of one process, and the data-size subset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_project_root, synthetic_blocks_dataset

from heroportraits.cli import main as cli_main
from heroportraits.data.dataset import limit_images, load_dataset, stratified_subset
from heroportraits.evaluation.judge import JudgeConfig, load_or_train_judge
from heroportraits.study import runner as R
from heroportraits.study import tables as T
from heroportraits.study.spec import StudyError, builtin_names, load_spec, parse_budget, parse_spec
from heroportraits.training.presets import resolve_config

TEST_JUDGE = JudgeConfig(width=8, feature_dim=32, epochs=3, batch_size=32)


def toy_spec(**changes) -> dict:
    """2 variants x 2 seeds x 4 steps of the smoke preset on the toy dataset."""
    spec = {
        "name": "t",
        "dataset": "toy",
        "preset": "smoke",
        "seeds": [0, 1],
        "n": 24,
        "metrics": ["fd", "recall", "cond_acc.joint"],
        "set": ["train.checkpoint_every=2", "train.sample_every=100", "train.eval_every=4", "train.eval_samples=24"],
        "budget": {"steps": 4},
        "variants": [{"name": "a"}, {"name": "b", "set": {"model.use_palette": False}}],
    }
    spec.update(changes)
    return spec


@pytest.fixture
def toy_study(project_root, one_thread):
    """The toy dataset with a small cached judge in a fresh project root."""
    synthetic_blocks_dataset(project_root)
    load_or_train_judge("toy", TEST_JUDGE, progress=False)
    return project_root


# ---------------------------------------------------------------- specs
def test_spec_refuses_unknown_fields_naming_them():
    with pytest.raises(StudyError, match="unknown field 'seed'"):
        parse_spec({**toy_spec(), "seed": [0]})
    bad_variant = toy_spec(variants=[{"name": "a", "sett": {"model.use_palette": False}}])
    with pytest.raises(StudyError, match=r"variants\[0\]: unknown field 'sett'"):
        parse_spec(bad_variant)
    with pytest.raises(StudyError, match="budget: unknown field 'hours'"):
        parse_spec(toy_spec(budget={"hours": 1}))


def test_spec_refuses_unknown_config_keys_naming_them():
    typo = toy_spec(variants=[{"name": "a"}, {"name": "b", "set": {"model.use_palete": False}}])
    with pytest.raises(StudyError, match="variant 'b'.*model.use_palete"):
        parse_spec(typo)
    with pytest.raises(StudyError, match="train.r1_gama"):
        parse_spec(toy_spec(set=["train.r1_gama=1"]))
    with pytest.raises(StudyError, match="variant 'a'.*model.arch"):  # a bad value, checked like `train --set`
        parse_spec(toy_spec(variants=[{"name": "a", "set": ["model.arch=transformer"]}]))
    with pytest.raises(StudyError, match="train.steps.*budget"):  # the budget owns train.steps
        parse_spec(toy_spec(variants=[{"name": "a", "set": ["train.steps=10"]}]))


def test_spec_types_names_and_budgets_are_checked():
    with pytest.raises(StudyError, match="seeds"):
        parse_spec(toy_spec(seeds=[0, 0]))
    with pytest.raises(StudyError, match="'n' has the wrong type"):
        parse_spec(toy_spec(n="many"))
    with pytest.raises(StudyError, match="two variants are called 'a'"):
        parse_spec(toy_spec(variants=[{"name": "a"}, {"name": "a"}]))
    with pytest.raises(StudyError, match="baseline 'c' is not a variant"):
        parse_spec(toy_spec(baseline="c"))
    with pytest.raises(StudyError, match="train.instance_noise_steps"):  # its schedule needs train.steps
        parse_spec(toy_spec(preset="resnet_full", budget={"minutes": 1.0}))
    with pytest.raises(StudyError, match="train.tau_steps"):  # so does the palette output's temperature
        parse_spec(toy_spec(preset="pixel", budget={"minutes": 1.0}))
    parse_spec(toy_spec(preset="pixel", budget={"minutes": 1.0}, set=["train.tau_steps=100"]))
    assert parse_budget("minutes=20").overrides() == ["train.steps=100000000", "train.max_minutes=20.0"]
    assert parse_budget("minutes=2.5,steps=900").tag() == "2.5min-900steps"
    with pytest.raises(StudyError, match="--budget"):
        parse_budget("hours=3")


def test_toml_tables_dotted_keys_and_set_strings_give_the_same_config(tmp_path):
    text = """
dataset = "toy"
preset = "smoke"
budget = { steps = 4 }
[[variants]]
name = "a"
set = { model.use_palette = false, "train.g_betas" = [0.0, 0.9] }
[[variants]]
name = "b"
set = ["model.use_palette=false", "train.g_betas=[0.0, 0.9]"]
"""
    (tmp_path / "mine.toml").write_text(text)
    spec = load_spec(tmp_path / "mine.toml")
    assert spec.name == "mine" and spec.seeds == [0, 1, 2]
    a, b = (spec.config(v, 0) for v in spec.variants)
    assert a.to_dict() == b.to_dict()
    assert a.model.use_palette is False and a.train.g_betas == (0.0, 0.9) and a.train.steps == 4
    (tmp_path / "bad.json").write_text(json.dumps(toy_spec(description=3)))
    assert cli_main(["study", str(tmp_path / "bad.json"), "--dry-run"]) == 2


def test_builtin_specs_load_with_at_least_three_seeds():
    assert set(builtin_names()) >= {"palette", "stabilisers", "architecture", "data_size", "resolution"}
    for name in builtin_names():
        spec = load_spec(name)
        assert len(spec.seeds) >= 3, name
        assert spec.smoke().budget.steps == 4 and len(spec.smoke().seeds) == 2
    palette = load_spec("palette")
    assert palette.config(palette.variant("off"), 0).model.use_palette is False
    sizes = load_spec("data_size")
    assert [sizes.config(v, 0).train.max_images for v in sizes.variants] == [1000, 2000, 4000, 0]
    stab = load_spec("stabilisers")
    base, no_r1 = stab.config(stab.variant("resnet_full"), 1), stab.config(stab.variant("no_r1"), 1)
    assert base.train.r1_gamma > 0 and no_r1.train.r1_gamma == 0 and no_r1.train.seed == 1


# ---------------------------------------------------------------- the summary, by hand
def test_summary_statistics_match_a_hand_computed_example():
    results = pd.DataFrame(
        {
            "variant": ["base"] * 3 + ["far"] * 3 + ["near"] * 3 + ["one"],
            "seed": [0, 1, 2] * 3 + [0],
            "fd": [1.0, 2.0, 3.0, 5.0, 6.0, 7.0, 2.5, 3.0, 3.5, 9.0],
            "recall": [0.5, 0.6, 0.7, 0.9, 1.0, 1.1, 0.5, 0.6, 0.7, 0.2],
        }
    )
    s = T.summarise(results, "base").set_index(["variant", "metric"])
    # far: mean 6, std 1 vs base mean 2, std 1: se = sqrt(1/3 + 1/3) = 0.8165, threshold = max(1.633, 1, 1)
    far = s.loc[("far", "fd")]
    assert (far["mean"], far["std"], far["diff"]) == pytest.approx((6.0, 1.0, 4.0))
    assert far["threshold"] == pytest.approx(2 * np.sqrt(2 / 3))
    assert far["verdict"] == "worse" and far["display"] == "6 ± 1"  # FD: lower is better
    assert s.loc[("far", "recall"), "verdict"] == "better"  # +0.4 > threshold 0.163
    # near: mean 3, std 0.5; diff 1 < 2 * sqrt(0.25/3 + 1/3) = 1.291
    near = s.loc[("near", "fd")]
    assert near["threshold"] == pytest.approx(2 * np.sqrt(0.25 / 3 + 1 / 3))
    assert near["verdict"] == "no measurable difference"
    assert s.loc[("near", "recall"), "verdict"] == "no measurable difference"  # identical values
    assert s.loc[("one", "fd"), "verdict"] == "too few seeds"
    assert s.loc[("base", "fd"), "verdict"] == "baseline"
    # the seed-to-seed spread also bounds it (it binds from ~5 seeds on): 6 seeds, diff 2 is more than
    # 2 se = 2 * 2.19 / sqrt(6) = 1.79 but less than the variant's own std sqrt(24 / 5) = 2.19
    wide = pd.DataFrame({"variant": ["b"] * 6 + ["w"] * 6, "x": [0.0] * 6 + [0.0, 4.0] * 3})
    w = T.summarise(wide, "b").set_index(["variant", "metric"]).loc[("w", "x")]
    assert (w["diff"], w["std"], w["threshold"]) == pytest.approx((2.0, np.sqrt(24 / 5), np.sqrt(24 / 5)))
    assert 2 * np.sqrt(24 / 5 / 6) < 2.0
    assert w["verdict"] == "no measurable difference"


def test_training_seconds_add_up_across_restarts():
    # run A: steps 10..40 (killed after 40, checkpoint at 30); run B resumed at 30, logged 40..60
    rows = [(10, 5.0), (20, 10.0), (30, 15.0), (40, 4.0), (50, 9.0), (60, 14.0)]
    assert R.training_seconds(rows, [0, 30], 30) == 15.0
    assert R.training_seconds(rows, [0, 30], 60) == 15.0 + 14.0
    assert R.training_seconds(rows, [0], 20) == 10.0


# ---------------------------------------------------------------- data size
def test_stratified_subset_is_nested_proportional_and_fixed():
    labels = torch.tensor([[i % 4, 0] for i in range(400)] + [[9, 1]] * 100)  # 4 labels x 100, one label x 100
    small, big = stratified_subset(labels, 50), stratified_subset(labels, 200)
    assert len(small) == 50 and len(big) == 200
    assert set(small.tolist()) <= set(big.tolist())
    assert torch.equal(small, stratified_subset(labels, 50))
    _, counts = torch.unique(labels[big], dim=0, return_counts=True)
    assert counts.tolist() == [40] * 5  # each of the 5 labels keeps its fifth
    assert len(stratified_subset(labels, 10_000)) == 500


def test_train_max_images_trains_on_the_subset(toy_dataset, one_thread):
    from heroportraits.training.loop import train

    cfg = resolve_config("smoke", {"train.max_images": 40, "train.steps": 1})
    state = torch.load(train(cfg, toy_dataset, "sub", progress=False).checkpoint, weights_only=True)
    assert sum(state["dataset"]["label_mix"]["counts"]) == 40
    full = load_dataset(toy_dataset, "train")
    assert len(limit_images(full, 40)) == 40 and limit_images(full, 0) is full


# ---------------------------------------------------------------- running a study
def _results(root: Path, name: str = "t") -> pd.DataFrame:
    return pd.read_csv(root / "artifacts_gan" / "studies" / name / "results.csv")


def test_study_writes_tables_and_rerun_skips_finished_runs(toy_study, monkeypatch):
    spec = parse_spec(toy_spec(), "toy.json")
    outcome = R.run_study(spec, progress=False)
    assert outcome.tables and outcome.finished == outcome.total == 4
    folder = outcome.folder
    results = _results(toy_study)
    assert list(results["run"]) == ["a-s0", "a-s1", "b-s0", "b-s1"]
    assert (results["steps"] == 4).all() and results["fd"].notna().all()
    assert {"cond_acc.palette", "palette.hue_spread", "palette.drift", "memorisation.median_nn"} <= set(results)
    summary = pd.read_csv(folder / "summary.csv")
    assert (
        set(summary["variant"]) == {"a", "b"}
        and (summary.loc[summary["variant"] == "a", "verdict"] == "baseline").all()
    )
    for f in ("floor.csv", "bars.png", "fd_vs_time.png", "samples.png", "runs/a-s0/grid.png", "runs/b-s1/eval.jsonl"):
        assert (folder / f).exists(), f
    assert np.load(folder / "runs/a-s0/samples.npy").shape == (R.GRID_COLUMNS, 64, 64, 3)
    assert R._curves(R.Study(spec))["a"][0][0] == [4]  # a step budget: train-time FD against steps

    stamps = {p: p.stat().st_mtime_ns for p in folder.glob("runs/*/result.json")}

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    with monkeypatch.context() as m:
        m.setattr("heroportraits.training.loop.train", no_training)
        m.setattr(R, "evaluate_run", no_training)
        assert R.run_study(spec, progress=False).tables
    assert stamps == {p: p.stat().st_mtime_ns for p in folder.glob("runs/*/result.json")}
    # a changed spec is refused for runs it already started, naming the difference
    (folder / "runs/b-s1/result.json").unlink()
    changed = parse_spec(toy_spec(variants=[{"name": "a"}, {"name": "b", "set": {"model.g_width": 12}}]), "toy.json")
    with pytest.raises(StudyError, match="run b-s1 .*model.g_width"):
        R.run_study(changed, progress=False)


# `python -m heroportraits` whose process SIGKILLs itself right after its first last.pt is written: a kill at a
# known step, where polling for the file from outside raced the training (it could finish, or die mid-save).
KILLED_AFTER_FIRST_CHECKPOINT = """
import os, signal, sys
from heroportraits.training import run_files
save = run_files.save_checkpoint
def save_then_die(state, path, **kwargs):
    save(state, path, **kwargs)
    if path.name == "last.pt":
        os.kill(os.getpid(), signal.SIGKILL)
run_files.save_checkpoint = save_then_die
from heroportraits.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_killed_study_resumes_its_interrupted_run(toy_study, tmp_path):
    spec = toy_spec(
        name="kill",
        seeds=[0],
        variants=[{"name": "a"}],
        budget={"steps": 400},
        set=["train.checkpoint_every=50", "train.sample_every=1000", "train.log_every=10"],
    )
    (tmp_path / "kill.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(Path(R.__file__).parents[2]), "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-c", KILLED_AFTER_FIRST_CHECKPOINT, "study", str(tmp_path / "kill.json")]
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == -signal.SIGKILL
    last = toy_study / "artifacts_gan/checkpoints/study-kill/a-s0/last.pt"
    run_dir = toy_study / "artifacts_gan/studies/kill/runs/a-s0"
    assert last.exists() and not (run_dir / "trained.json").exists(), "the study was not killed mid-training"
    study = R.Study(parse_spec(spec, str(tmp_path / "kill.json"), "kill"))
    assert study.status(study.runs[0]) == "interrupted"

    R.run_study(study.spec, progress=False)
    trained = json.loads((run_dir / "trained.json").read_text())
    assert trained["step"] == 400 and trained["resumed_from"] == 50  # from the checkpoint the kill left
    metrics = pd.read_csv(last.parent / "metrics.csv")
    assert metrics["step"].tolist() == list(range(10, 401, 10))  # no step twice, none missing
    # the killed process's rows up to its checkpoint were kept; the clock restarts right after them
    restarts = metrics["step"][metrics["seconds"].diff() < 0].tolist()
    assert restarts == [60]
    assert json.loads((run_dir / "result.json").read_text())["steps"] == 400


def test_sharded_runs_merge_to_the_table_of_one_process(tmp_path, monkeypatch, one_thread):
    spec = toy_spec()

    def in_root(name: str) -> Path:
        root = make_project_root(tmp_path / name)
        monkeypatch.setenv("HEROPORTRAITS_ROOT", str(root))
        if not (root / "data" / "toy").exists():
            synthetic_blocks_dataset(root)
            load_or_train_judge("toy", TEST_JUDGE, progress=False)
        return root

    one = in_root("one")
    R.run_study(parse_spec(spec, "toy.json"), progress=False)
    # two machines, one shard each; then shard 1's runs/ copied next to shard 0's and merged
    for i, name in enumerate(["m0", "m1"]):
        in_root(name)
        outcome = R.run_study(parse_spec(spec, "toy.json"), shard=(i, 2), progress=False)
        assert not outcome.tables and outcome.finished == 2
    m0 = in_root("m0")
    for run in (tmp_path / "m1/artifacts_gan/studies/t/runs").iterdir():
        (m0 / "artifacts_gan/studies/t/runs" / run.name).mkdir()
        for f in run.iterdir():
            (m0 / "artifacts_gan/studies/t/runs" / run.name / f.name).write_bytes(f.read_bytes())
    assert cli_main(["study", str(_spec_file(tmp_path, spec)), "--merge"]) == 0
    # wall clock, and the export's size (its metadata names the checkpoint's path)
    timing = ["train_minutes", "evaluate_seconds", "speed.step_ms", "speed.drawn_per_s", "speed.export_mb"]
    assert (_results(one)[timing[2:]] > 0).all().all()  # each run's speed and export size are recorded
    pd.testing.assert_frame_equal(_results(one).drop(columns=timing), _results(m0).drop(columns=timing))
    summary = [pd.read_csv(r / "artifacts_gan/studies/t/summary.csv") for r in (one, m0)]
    pd.testing.assert_frame_equal(*[s[~s["metric"].isin(timing)].reset_index(drop=True) for s in summary])


def test_merge_refuses_missing_runs_unless_partial(toy_study, tmp_path):
    path = _spec_file(tmp_path, toy_spec())
    R.run_study(parse_spec(toy_spec(), str(path)), shard=(0, 2), progress=False)
    assert cli_main(["study", str(path), "--merge"]) == 2
    assert cli_main(["study", str(path), "--merge", "--partial"]) == 0
    assert len(_results(toy_study)) == 2


def test_a_one_seed_screen_then_more_seeds_of_chosen_variants(toy_study, tmp_path, capsys):
    path = _spec_file(tmp_path, toy_spec())
    runs = toy_study / "artifacts_gan/studies/t/runs"
    finished = lambda: sorted(p.name for p in runs.glob("*") if (p / "result.json").exists())  # noqa: E731
    assert cli_main(["study", str(path), "--seeds", "0"]) == 0
    assert finished() == ["a-s0", "b-s0"]
    assert not (toy_study / "artifacts_gan/studies/t/results.csv").exists()  # a-s1, b-s1 still missing
    assert cli_main(["study", str(path), "--variants", "b", "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "a-s1                     not selected" in plan and "b-s1                     new" in plan
    # the shard splits what is selected: with only b's runs left, shard 1/2 of (b-s0, b-s1) is b-s1
    assert cli_main(["study", str(path), "--variants", "b", "--shard", "1/2"]) == 0
    assert finished() == ["a-s0", "b-s0", "b-s1"]
    assert cli_main(["study", str(path), "--variants", "c"]) == 2
    assert "has no variant 'c'; it has a, b" in capsys.readouterr().err
    assert cli_main(["study", str(path), "--seeds", "5"]) == 2
    assert cli_main(["study", str(path), "--seeds", "x"]) == 2
    assert cli_main(["study", str(path), "--variants", "a"]) == 0  # the last run: now the tables
    assert len(_results(toy_study)) == 4


def _spec_file(folder: Path, spec: dict) -> Path:
    path = folder / "t.json"
    path.write_text(json.dumps(spec))
    return path


def test_a_run_stopped_by_a_signal_is_not_counted_as_trained(toy_study, monkeypatch):
    from heroportraits.training.loop import TrainResult

    def stopped(cfg, dataset, run, resume=True, progress=True, scorer=None):
        return TrainResult(run, Path("last.pt"), Path("samples"), 2, 1.0, stopped_by="SIGINT")

    monkeypatch.setattr(R, "train", stopped)
    spec = parse_spec(toy_spec(), "toy.json")
    with pytest.raises(StudyError, match="a-s0 stopped by SIGINT at step 2.*re-run"):
        R.run_study(spec, progress=False)
    assert R.Study(spec).status(R.Study(spec).runs[0]) == "new"  # no trained.json, no result.json
