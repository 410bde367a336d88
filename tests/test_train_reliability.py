"""Training never loses work: divergence, interrupts (real signals to a real `train` process),
partial and failed saves, resume with changed settings, unwritable run folders.
docs/reliability.md lists which test shows which guarantee."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from toys import FAMILIES

from heroportraits.cli import main as cli_main
from heroportraits.errors import HeroError
from heroportraits.paths import write_json
from heroportraits.sampling.sampler import Sampler
from heroportraits.training.checkpoint import CheckpointError, load_checkpoint, nonfinite_weights, save_checkpoint
from heroportraits.training.guards import DivergedError
from heroportraits.training.loop import train
from heroportraits.training.presets import resolve_config
from heroportraits.training.run_files import RunFilesError
from heroportraits.training.setup import check_resume

EXPLODE = {"train.d_lr": 1e30, "train.g_lr": 1e30}  # Adam steps of 1e30: inf weights within two steps


def _run_dir(root: Path, run: str) -> Path:
    return root / "artifacts_gan" / "checkpoints" / run


def _cli(root: Path, *args: str) -> tuple[list[str], dict]:
    """A `python -m heroportraits ...` command line and its environment (the test's project root)."""
    cmd = [sys.executable, "-m", "heroportraits", *args]
    return cmd, {**os.environ, "HEROPORTRAITS_ROOT": str(root), "OMP_NUM_THREADS": "1"}


# ------------------------------------------------------------------ divergence
@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_nan_run_stops_with_one_message_and_saves_nothing_non_finite(family, toy_dataset, project_root):
    cmd, env = _cli(project_root, "train", "--dataset", toy_dataset, "--preset", "smoke", "--run", "nan")
    cmd += ["--set", "train.d_lr=1e30", "--set", "train.g_lr=1e30"]
    cmd += [item for k, v in FAMILIES[family].items() for item in ("--set", f"{k}={v}")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("error: training diverged at step ") and "learning rates too high" in message
    last = _run_dir(project_root, "nan") / "last.pt"
    assert not last.exists() or not nonfinite_weights(load_checkpoint(last))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_diverging_resume_keeps_the_good_checkpoint(family, toy_dataset, project_root):
    good = train(resolve_config("smoke", {**FAMILIES[family], "train.steps": 3}), toy_dataset, "div", progress=False)
    before = good.checkpoint.read_bytes()
    with pytest.raises(DivergedError, match=r"diverged at step [456].*last\.pt \(saved before, finite\) is kept"):
        train(resolve_config("smoke", {**FAMILIES[family], **EXPLODE}), toy_dataset, "div", progress=False)
    assert good.checkpoint.read_bytes() == before  # last.pt: still the good step-3 checkpoint
    assert load_checkpoint(good.checkpoint)["step"] == 3


def test_non_finite_checkpoints_are_refused_by_sample_evaluate_and_loaders(toy_dataset, project_root, capsys):
    good = train(resolve_config("smoke"), toy_dataset, "bad", progress=False)
    state = torch.load(good.checkpoint, weights_only=True)
    first = next(iter(state["G_ema"]))
    state["G_ema"][first] = torch.full_like(state["G_ema"][first], float("nan"))
    torch.save(state, good.checkpoint)  # what the old code wrote after a divergence
    previous = good.checkpoint.parent / "previous.pt"
    for verb in (
        ["sample", str(good.checkpoint), "--n", "2", "--out", str(project_root / "o")],
        ["evaluate", str(good.checkpoint.parent), "--n", "20", "--no-floor"],
    ):
        assert cli_main(verb) == 2
        err = capsys.readouterr().err
        assert f"{good.checkpoint} holds non-finite weights (G_ema.{first})" in err and str(previous) in err
    assert not (project_root / "o").exists()
    with pytest.raises(CheckpointError, match="non-finite"):
        Sampler.from_checkpoint(good.checkpoint)  # the loader export uses too


# ------------------------------------------------------------------ SIGINT / SIGTERM
@pytest.mark.parametrize("sig,family", [(signal.SIGINT, "gan"), (signal.SIGTERM, "gan"), (signal.SIGTERM, "flow")])
def test_a_signal_finishes_the_step_saves_and_prints_the_resume_command(sig, family, toy_dataset, project_root):
    run = f"sig{int(sig)}"
    cmd, env = _cli(project_root, "train", "--dataset", toy_dataset, "--preset", "smoke", "--run", run)
    cmd += [item for k, v in FAMILIES[family].items() for item in ("--set", f"{k}={v}")]
    cmd += ["--set", "train.steps=100000", "--set", "train.checkpoint_every=100000"]
    cmd += ["--set", "train.sample_every=100000"]  # only the signal writes a checkpoint
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = _run_dir(project_root, run) / "metrics.csv"
    deadline = time.time() + 180
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):  # header + two steps
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err[-2000:]
    assert "Traceback" not in err
    saved = load_checkpoint(_run_dir(project_root, run) / "last.pt")["step"]
    assert json.loads(out)["step"] == saved >= 2 and json.loads(out)["stopped_by"] == sig.name
    assert f"stopped by {sig.name} after step {saved}" in err
    command = err.split("Resume with:")[1].strip().splitlines()[0]
    assert command.startswith("python -m heroportraits train ") and "--no-resume" not in command

    # The printed command resumes from the saved step (two more steps here).
    assert cli_main([*shlex.split(command)[3:], "--set", f"train.steps={saved + 2}"]) == 0
    assert load_checkpoint(_run_dir(project_root, run) / "last.pt")["step"] == saved + 2
    steps = [int(line.split(",")[0]) for line in metrics.read_text().splitlines()[1:]]
    assert steps == list(range(1, saved + 3))  # no step lost, none logged twice


# ------------------------------------------------------------------ saves
def test_last_pt_keeps_its_previous_checkpoint_beside_it(toy_dataset, project_root):
    result = train(resolve_config("smoke"), toy_dataset, "prev", progress=False)  # checkpoints at 3 and 6
    assert load_checkpoint(result.checkpoint)["step"] == 6
    assert load_checkpoint(result.checkpoint.parent / "previous.pt")["step"] == 3


def test_a_partial_checkpoint_from_a_killed_save_is_removed_on_the_next_start(toy_dataset, project_root, capsys):
    result = train(resolve_config("smoke"), toy_dataset, "tmp", progress=False)
    partial = result.checkpoint.with_suffix(".pt.tmp")
    partial.write_bytes(b"PK\x03\x04 half a zip file")
    train(resolve_config("smoke"), toy_dataset, "tmp", progress=False)  # nothing left to train: no save
    assert not partial.exists() and f"removed {partial}" in capsys.readouterr().err
    assert load_checkpoint(result.checkpoint)["step"] == 6


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux) to fill a disk for real")
def test_a_full_disk_gives_one_clear_error_and_leaves_last_pt_whole(tmp_path):
    last = tmp_path / "last.pt"
    save_checkpoint({"step": 1, "G": {"w": torch.ones(3)}}, last)
    before = last.read_bytes()
    last.with_suffix(".pt.tmp").symlink_to("/dev/full")  # every write into the temp file: ENOSPC
    with pytest.raises(
        CheckpointError, match=r"could not write checkpoint .*last\.pt: No space left on device; .* MB free"
    ):
        save_checkpoint({"step": 2, "G": {"w": torch.ones(50_000)}}, last, keep_previous=tmp_path / "previous.pt")
    assert last.read_bytes() == before and not last.with_suffix(".pt.tmp").exists()
    assert not (tmp_path / "previous.pt").exists()  # nothing moved before the new file was whole


def test_non_finite_weights_are_never_written(tmp_path):
    with pytest.raises(CheckpointError, match=r"refusing to write .*G\.w"):
        save_checkpoint({"step": 1, "G": {"w": torch.tensor([1.0, float("inf")])}}, tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_run_folder_is_found_before_the_first_step(toy_dataset, project_root):
    blocker = project_root / "artifacts_gan" / "samples" / "ro"
    blocker.write_text("a file where the run's sample folder goes")
    with pytest.raises(RunFilesError, match=f"cannot write to the run folder {blocker}"):
        train(resolve_config("smoke"), toy_dataset, "ro", progress=False)
    run_dir = _run_dir(project_root, "ro")
    assert not (run_dir / "metrics.csv").exists() and not (run_dir / "last.pt").exists()


# ------------------------------------------------------------------ resume with changed settings
def test_resume_applies_new_learning_rates_and_betas_with_a_notice(toy_dataset, project_root, capsys):
    train(resolve_config("smoke", {"train.steps": 3}), toy_dataset, "lr", progress=False)
    changed = {"train.steps": 4, "train.g_lr": 1e-4, "train.d_betas": [0.0, 0.9], "train.log_every": 2}
    result = train(resolve_config("smoke", changed), toy_dataset, "lr", progress=False)
    err = capsys.readouterr().err
    assert "train.g_lr 0.0002 -> 0.0001" in err and "train.d_betas [0.5, 0.999] -> [0.0, 0.9]" in err
    state = load_checkpoint(result.checkpoint)
    assert state["step"] == 4
    assert [g["lr"] for g in state["opt_G"]["param_groups"]] == [1e-4]
    assert [tuple(g["betas"]) for g in state["opt_D"]["param_groups"]] == [(0.0, 0.9)]
    saved = json.loads((result.checkpoint.parent / "config.json").read_text())["train"]
    assert saved["g_lr"] == 1e-4 and saved["d_betas"] == [0.0, 0.9]  # config.json tells the truth


def test_resume_refuses_changes_to_what_the_run_learns_and_lists_them(toy_dataset, project_root):
    train(resolve_config("smoke", {"train.steps": 3}), toy_dataset, "fix", progress=False)
    config_json = _run_dir(project_root, "fix") / "config.json"
    before = config_json.read_text()
    other = resolve_config("smoke", {"train.r1_gamma": 1.0, "train.loss": "ns", "train.steps": 6})
    with pytest.raises(CheckpointError) as e:
        train(other, toy_dataset, "fix", progress=False)
    message = str(e.value)
    assert "train.r1_gamma: 0.0 -> 1.0" in message and "train.loss: 'hinge' -> 'ns'" in message
    assert "train.steps" not in message and "--run NEW_NAME" in message and "--no-resume" in message
    assert isinstance(e.value, HeroError) and config_json.read_text() == before
    # The fixes it names work: a new run name, or starting again from scratch.
    assert train(other, toy_dataset, "fix", resume=False, progress=False).step == 6


def test_resume_allows_sampling_only_changes_and_refuses_training_arithmetic():
    """How a checkpoint samples (quantisation, best-of, refinement) may change on resume; bf16 and the fakes'
    reuse change the training arithmetic, so they are refused like any other change to what the run learns."""
    saved = resolve_config("cpu", {}).to_dict()
    sampling = {
        "draw.rgb_colours": 16,
        "draw.palette_merge": 0.0,
        "draw.best_of": 4,
        "draw.refine_steps": 2,
        "draw.refine_realness": 0.0,
    }
    sampling["draw.refine_rate"] = 0.02
    assert check_resume(saved, resolve_config("cpu", sampling).to_dict(), Path("last.pt")) == {}
    # a checkpoint written before the draw section (its drawing in model fields) resumes with today's config
    old = json.loads(json.dumps(saved))
    old["model"].update(old.pop("draw"))
    assert check_resume(old, resolve_config("cpu", sampling).to_dict(), Path("last.pt")) == {}
    for field in ("train.amp", "train.reuse_fakes"):
        with pytest.raises(CheckpointError, match=f"{field}: True -> False"):
            check_resume(saved, resolve_config("cpu", {field: False}).to_dict(), Path("last.pt"))


def test_a_json_record_killed_mid_write_keeps_its_old_content(tmp_path, monkeypatch):
    """paths.write_json writes a temp file and renames it: a write that dies half way (here: the disk
    fills after a few bytes) leaves the record the user had (a dataset.json, a study record) whole."""
    record = tmp_path / "dataset.json"
    write_json(record, {"resolution": 64, "palette": None})
    real_write = Path.write_text

    def dies_half_way(self, text, *args, **kwargs):
        real_write(self, text[:5], *args, **kwargs)
        raise OSError("No space left on device")

    monkeypatch.setattr(Path, "write_text", dies_half_way)
    with pytest.raises(OSError):
        write_json(record, {"resolution": 64, "palette": [[0, 0, 0]]})
    monkeypatch.undo()
    assert json.loads(record.read_text()) == {"resolution": 64, "palette": None}
