"""Nothing the user made is lost (the second hostile pass, issue 35): `sample --overwrite` removes only what an
earlier `sample` wrote, after checking everything; a run with a checkpoint never starts again from step 0 on
its own, and falls back to previous.pt when last.pt cannot be read; a resume on other data is refused;
config.json holds the settings of the checkpoint beside it; a disk that fills mid-file costs one line, not a
traceback or a partial file, and side outputs that cannot be written do not stop training."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_blocks_dataset

from heroportraits.cli import main as cli_main
from heroportraits.sampling.portraits import MANIFEST
from heroportraits.training import run_files
from heroportraits.training.checkpoint import CheckpointError, load_checkpoint
from heroportraits.training.guards import DivergedError
from heroportraits.training.loop import train
from heroportraits.training.presets import resolve_config

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread
SRC = str(Path(run_files.__file__).parents[2])


def _run_dir(root: Path, run: str) -> Path:
    return root / "artifacts_gan" / "checkpoints" / run


def error_line(capsys) -> str:
    """The one error line a command printed (progress bars before it aside), and no traceback."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err and err.rstrip().endswith(errors[0]), err
    return errors[0]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# ------------------------------------------------------------------ sample --overwrite
def test_overwrite_replaces_only_what_an_earlier_sample_wrote(smoke_checkpoint, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("001.png", "2024.png", "labels.csv"):
        (mine / name).write_bytes(b"the user's own " + name.encode())
    before = _files(mine)
    # a folder `sample` never wrote into: --overwrite refuses (labels.csv is not its own), deleting nothing
    assert cli_main(["sample", str(smoke_checkpoint()), "--n", "3", "--out", str(mine), "--overwrite"]) == 2
    assert "which `sample` did not write there" in capsys.readouterr().err
    assert _files(mine) == before
    # an earlier sample's folder, with the user's notes beside it: only the earlier sample's files go
    ours = tmp_path / "ours"
    assert cli_main(["sample", str(smoke_checkpoint()), "--n", "4", "--out", str(ours)]) == 0
    (ours / "notes.txt").write_text("keep me")
    assert cli_main(["sample", str(smoke_checkpoint()), "--n", "2", "--out", str(ours), "--overwrite"]) == 0
    assert sorted(p.name for p in ours.iterdir()) == sorted(
        ["00000.png", "00001.png", "labels.csv", MANIFEST, "notes.txt"]
    )
    assert json.loads((ours / MANIFEST).read_text())["files"] == ["00000.png", "00001.png", "labels.csv"]


def test_overwrite_checks_every_option_before_it_removes_a_file(smoke_checkpoint, tmp_path, capsys):
    out = tmp_path / "s"
    assert cli_main(["sample", str(smoke_checkpoint()), "--n", "3", "--out", str(out)]) == 0
    before = _files(out)
    for bad in (["--set", "hero_class=nosuch"], ["--open", "unspecified"]):  # the smoke model has no dropout
        argv = ["sample", str(smoke_checkpoint()), "--n", "3", "--out", str(out), "--overwrite", *bad]
        assert cli_main(argv) == 2
        error_line(capsys)
        assert _files(out) == before  # refused first, nothing removed


def test_sample_never_writes_into_a_dataset_or_a_run_folder(smoke_checkpoint, toy_dataset, project_root, capsys):
    dataset = project_root / "data" / toy_dataset
    labels = (dataset / "labels.csv").read_bytes()
    assert cli_main(["sample", str(smoke_checkpoint()), "--n", "2", "--out", str(dataset), "--overwrite"]) == 2
    assert "is a dataset's or a run's folder (it holds dataset.json)" in capsys.readouterr().err
    assert (dataset / "labels.csv").read_bytes() == labels
    run = smoke_checkpoint().parent
    assert cli_main(["sample", str(run), "--n", "2", "--out", str(run), "--overwrite"]) == 2
    assert "(it holds last.pt)" in capsys.readouterr().err


# ------------------------------------------------------------------ the run's checkpoints
def _three_checkpoints(dataset: str, root: Path, run: str) -> Path:
    """A run with last.pt (step 6) and previous.pt (step 3)."""
    train(resolve_config("smoke", {"train.steps": 6, "train.checkpoint_every": 3}), dataset, run, progress=False)
    run_dir = _run_dir(root, run)
    assert load_checkpoint(run_dir / "previous.pt")["step"] == 3
    return run_dir


def test_a_truncated_last_pt_resumes_from_previous_pt_with_a_notice(toy_dataset, project_root, capsys):
    run_dir = _three_checkpoints(toy_dataset, project_root, "cut")
    last = run_dir / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])  # a save cut short, outside this project's own writer
    assert cli_main(["sample", str(run_dir), "--n", "2", "--out", str(project_root / "o")]) == 2
    assert f"Use {run_dir / 'previous.pt'}" in capsys.readouterr().err  # sample names the good checkpoint
    result = train(resolve_config("smoke", {"train.steps": 9, "train.checkpoint_every": 3}), toy_dataset, "cut")
    err = capsys.readouterr().err
    assert f"cannot read checkpoint {last}" in err and f"resuming from {run_dir / 'previous.pt'} (step 3)" in err
    assert result.step == 9 and load_checkpoint(last)["step"] == 9


def test_a_run_with_a_checkpoint_never_starts_again_from_step_0_on_its_own(toy_dataset, project_root, capsys):
    run_dir = _three_checkpoints(toy_dataset, project_root, "keep")
    (run_dir / "last.pt").unlink()  # the user deleted the broken last.pt
    previous = (run_dir / "previous.pt").read_bytes()
    result = train(resolve_config("smoke", {"train.steps": 6, "train.checkpoint_every": 3}), toy_dataset, "keep")
    assert "last.pt is missing; resuming from" in capsys.readouterr().err
    assert result.step == 6 and load_checkpoint(run_dir / "last.pt")["step"] == 6
    # every checkpoint unreadable: refused in one line, nothing deleted
    for name in ("last.pt", "previous.pt"):
        (run_dir / name).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="has checkpoints, but none can be read.*--no-resume"):
        train(resolve_config("smoke"), toy_dataset, "keep", progress=False)
    assert (run_dir / "previous.pt").read_bytes() == b"not a checkpoint"
    # --no-resume starts again, and sets the earlier run's files aside
    train(resolve_config("smoke"), toy_dataset, "keep", resume=False, progress=False)
    (earlier,) = run_dir.glob("earlier-*")
    assert {"last.pt", "previous.pt", "metrics.csv", "config.json"} <= {p.name for p in earlier.iterdir()}
    assert previous != (earlier / "previous.pt").read_bytes() == b"not a checkpoint"
    assert load_checkpoint(run_dir / "last.pt")["step"] == 6


def test_resuming_on_another_dataset_is_refused(toy_dataset, project_root):
    train(resolve_config("smoke", {"train.steps": 3}), toy_dataset, "swap", progress=False)
    synthetic_blocks_dataset(project_root, name="other", seed=5)  # the same attributes, other images
    with pytest.raises(CheckpointError, match=r"trained on dataset 'toy', not on 'other'.*--dataset toy"):
        train(resolve_config("smoke", {"train.steps": 6}), "other", "swap", progress=False)
    synthetic_blocks_dataset(project_root, name="toy", seed=7)  # the same name, rebuilt with other images
    with pytest.raises(CheckpointError, match="as it was then: it has been rebuilt since"):
        train(resolve_config("smoke", {"train.steps": 6}), "toy", "swap", progress=False)


def test_config_json_holds_the_settings_of_the_checkpoint_after_a_diverged_resume(toy_dataset, project_root):
    train(resolve_config("smoke", {"train.steps": 3}), toy_dataset, "cfg", progress=False)
    config = _run_dir(project_root, "cfg") / "config.json"
    explode = {"train.steps": 9, "train.d_lr": 1e30, "train.g_lr": 1e30}
    with pytest.raises(DivergedError):
        train(resolve_config("smoke", explode), toy_dataset, "cfg", progress=False)
    assert json.loads(config.read_text())["train"]["g_lr"] == 2e-4  # what last.pt holds, not the rejected 1e30


# ------------------------------------------------------------------ full disks
def _limited(limit_bytes: int):
    """A child process whose files may not grow past `limit_bytes`: a disk that fills mid-file (ulimit -f)."""

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def _cli(argv: list[str], root: Path, limit_bytes: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "HEROPORTRAITS_ROOT": str(root), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "heroportraits", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_limited(limit_bytes),
    )


def test_a_checkpoint_save_cut_short_mid_file_is_one_line_and_leaves_last_pt_whole(toy_dataset, project_root):
    first = train(resolve_config("smoke", {"train.steps": 3}), toy_dataset, "full", progress=False)
    before = first.checkpoint.read_bytes()
    limit = len(before) // 2  # the next checkpoint stops half way through its write
    argv = ["train", "--dataset", toy_dataset, "--run", "full", "--preset", "smoke", "--steps", "6"]
    proc = _cli(argv, project_root, limit)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and "could not write checkpoint" in lines[-1] and "MB free" in lines[-1]
    assert first.checkpoint.read_bytes() == before  # last.pt whole
    assert not list(first.checkpoint.parent.glob("*.tmp")) and not list(first.checkpoint.parent.glob(".write-test*"))


def test_a_full_disk_at_the_next_start_removes_the_partial_save_first(toy_dataset, project_root, monkeypatch):
    first = train(resolve_config("smoke", {"train.steps": 3}), toy_dataset, "start", progress=False)
    run_dir = first.checkpoint.parent
    (run_dir / "last.pt.tmp").write_bytes(b"half a checkpoint a killed save left")

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(run_files.RunFilesError, match="No space left on device .*MB free"):
        train(resolve_config("smoke", {"train.steps": 6}), toy_dataset, "start", progress=False)
    monkeypatch.undo()
    assert not (run_dir / "last.pt.tmp").exists() and not list(run_dir.glob(".write-test*"))


def test_a_sample_grid_that_cannot_be_written_does_not_stop_training(toy_dataset, project_root, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_files, "save_grid_figure", full)
    result = train(resolve_config("smoke", {"train.steps": 6, "train.sample_every": 2}), toy_dataset, "g")
    assert result.step == 6 and load_checkpoint(result.checkpoint)["step"] == 6
    err = capsys.readouterr().err
    assert err.count("could not write the sample grids") == 1 and "training goes on" in err  # reported once


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_onto_a_full_disk_is_one_line_and_leaves_no_file(smoke_checkpoint, tmp_path, fmt):
    out = tmp_path / f"g.{'pt' if fmt == 'torchscript' else 'onnx'}"
    proc = _cli(["export", str(smoke_checkpoint()), "--format", fmt, "--out", str(out)], tmp_path, 4096)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip().splitlines()[-1].startswith("error: cannot write")
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


def test_sample_and_prepare_onto_a_full_disk_are_one_line_and_keep_what_was_there(
    smoke_checkpoint, tmp_path, monkeypatch, capsys
):
    from heroportraits.data.images import save_png as real_save_png
    from heroportraits.sampling import portraits

    calls = []

    def fills_up(img, path):
        calls.append(path)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save_png(img, path)

    monkeypatch.setattr(portraits, "save_png", fills_up)
    out = tmp_path / "s"
    assert cli_main(["sample", str(smoke_checkpoint()), "--n", "5", "--out", str(out)]) == 2
    err = error_line(capsys)
    assert err.startswith("error: cannot write portraits into") and "No space left" in err
    assert not out.exists() or not list(out.iterdir())  # the two PNGs it managed are removed again
    monkeypatch.undo()

    from heroportraits.data import prepare

    images = tmp_path / "in"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # noise: a 32x32 native grid
        real_save_png(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), images / f"{i}.png")
    (images / "labels.csv").write_text("file,hero_class\n0.png,mage\n1.png,rogue\n2.png,mage\n")
    monkeypatch.setenv("HEROPORTRAITS_ROOT", str(tmp_path))
    assert cli_main(["prepare", "--input", str(images), "--name", "mine", "--no-auto-palette"]) == 0
    prepared = tmp_path / "data" / "mine" / "prepared"
    before = {n: (prepared / n).read_bytes() for n in ("images.npy", "labels.csv", "prepare.json")}

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(prepare.np, "save", full)  # the report is written; images.npy is not
    assert cli_main(["prepare", "--input", str(images), "--name", "mine", "--no-auto-palette"]) == 2
    assert error_line(capsys).startswith("error: cannot write the prepared set into")
    assert {n: (prepared / n).read_bytes() for n in before} == before  # the earlier set, whole
    assert not list(prepared.glob("*.tmp"))
