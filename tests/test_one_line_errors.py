"""Nothing raw (the second hostile pass, issue 35): input a user can fix is refused in one line that names the thing
and the fix, before anything is written, and never as another problem (a foreign checkpoint, a diverged run,
an empty label); odd but valid input works."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import synthetic_blocks_dataset

from heroportraits.cli import main as cli_main
from heroportraits.data.images import save_png
from heroportraits.evaluation import judge as judge_module
from heroportraits.evaluation.evaluate import evaluate_checkpoint
from heroportraits.training.loop import train
from heroportraits.training.presets import resolve_config

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


def one_line(capsys) -> str:
    """The one error line the command printed (progress bars before it aside), and no traceback."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err and err.rstrip().endswith(errors[0]), err
    return errors[0]


# ------------------------------------------------------------------ configuration and devices
BAD = [
    (
        ["train", "--dry-run", "--set", "train.batch_size=1"],
        "mode seeking (train.mode_seeking=0.5) compares the two halves",
    ),
    (["train", "--dry-run", "--set", "train.seed=99999999999999999999999"], "must be in [0, 4294967295]"),
    (["train", "--dry-run", "--set", "train.g_betas=[0.5,0.9"], "expects 2 values, e.g. train.g_betas=[0.0,0.9]"),
    (["train", "--dry-run", "--set", "train.device=bogus"], "use auto, cpu, cuda, cuda:N or mps"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[a[-1] for a, _ in BAD])
def test_a_setting_the_recipe_cannot_use_is_named_as_such(argv, message, capsys):
    assert cli_main(argv) == 2
    assert message in one_line(capsys)


def test_a_device_this_machine_lacks_is_named_not_taken_for_a_foreign_checkpoint(
    smoke_checkpoint, toy_dataset, project_root, capsys
):
    for device in ("bogus", "cuda:7" if torch.cuda.is_available() else "cuda"):
        assert cli_main(["sample", str(smoke_checkpoint()), "--out", str(project_root / "s"), "--device", device]) == 2
        err = one_line(capsys)
        assert f"device {device!r}" in err and "not a checkpoint" not in err
    assert cli_main(["evaluate", str(smoke_checkpoint()), "--n", "10", "--device", "bogus"]) == 2
    assert "device 'bogus'" in one_line(capsys)
    if not torch.backends.mps.is_available():
        argv = ["train", "--dataset", toy_dataset, "--preset", "smoke", "--run", "m", "--set", "train.device=mps"]
        assert cli_main(argv) == 2
        assert "no Apple GPU (MPS)" in one_line(capsys)


def test_a_launcher_environment_without_its_rendezvous_is_one_line(toy_dataset, project_root, monkeypatch, capsys):
    for name, value in (("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    assert cli_main(["train", "--dataset", toy_dataset, "--preset", "smoke", "--run", "ddp"]) == 2
    assert "['MASTER_ADDR', 'MASTER_PORT'] are not" in one_line(capsys)


def test_the_head_classifier_takes_every_share_of_rows_its_range_allows(toy_dataset, project_root):
    head = {"model.d_cond": "projection", "model.d_head_classify": 1.0, "model.head_rows": 0.01, "train.steps": 2}
    assert train(resolve_config("smoke", head), toy_dataset, "rows", progress=False).step == 2


def test_ctrl_c_before_training_takes_over_is_one_line(monkeypatch, capsys):
    from heroportraits.cli import data as data_verbs

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(data_verbs, "write_procedural_folder", interrupted)
    assert cli_main(["procedural", "--n", "2", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err == "stopped by Ctrl-C during `procedural`\n"


# ------------------------------------------------------------------ output paths
def test_output_paths_that_cannot_be_written_are_one_line(smoke_checkpoint, tmp_path, capsys):
    folder = tmp_path / "x.png"
    folder.mkdir()
    a_file = tmp_path / "file"
    a_file.write_text("a file, not a folder")
    for argv in (
        ["sample", str(smoke_checkpoint()), "--grid", "--out", str(folder)],
        ["export", str(smoke_checkpoint()), "--format", "torchscript", "--out", str(folder)],
        ["export", str(smoke_checkpoint()), "--format", "torchscript", "--out", str(a_file / "g.pt")],
        ["sample", str(smoke_checkpoint()), "--n", "2", "--out", str(tmp_path / "s"), "--palette-merge", "nan"],
    ):
        assert cli_main(argv) == 2
        one_line(capsys)
    assert a_file.read_text() == "a file, not a folder" and not list(folder.iterdir())


def test_an_unwritable_output_folder_is_one_line(smoke_checkpoint, tmp_path, monkeypatch, capsys):
    from heroportraits.sampling import portraits

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(portraits, "save_png", denied)
    assert cli_main(["sample", str(smoke_checkpoint()), "--n", "2", "--out", str(tmp_path / "ro")]) == 2
    assert "cannot write portraits into" in one_line(capsys)


def test_evaluate_on_a_read_only_dataset_scores_with_the_judge_in_memory(tmp_path, monkeypatch, capsys):
    from conftest import make_project_root

    root = make_project_root(tmp_path / "project")
    monkeypatch.setenv("HEROPORTRAITS_ROOT", str(root))
    synthetic_blocks_dataset(root)
    ckpt = train(resolve_config("smoke", {"train.steps": 2}), "toy", "ro", progress=False).checkpoint

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(judge_module, "save_judge", denied)
    ev = evaluate_checkpoint(ckpt, n=20, n_subsets=2, with_floor=False, write=False, progress=False)
    assert np.isfinite(ev.results["fd"])
    assert "could not cache the judge" in capsys.readouterr().out
    assert not (root / "data" / "toy" / "judge.pt").exists()


def test_a_validation_split_too_small_for_k_nn_metrics_gives_the_other_scores(tmp_path, monkeypatch):
    from conftest import make_project_root

    root = make_project_root(tmp_path / "project")
    monkeypatch.setenv("HEROPORTRAITS_ROOT", str(root))
    synthetic_blocks_dataset(root, n=24)  # 3 VAL portraits
    ckpt = train(resolve_config("smoke", {"train.steps": 2}), "toy", "tiny", progress=False).checkpoint
    ev = evaluate_checkpoint(ckpt, n=20, n_subsets=2, with_floor=False, write=False, progress=False)
    assert ev.results["precision"] is None and ev.results["recall"] is None and np.isfinite(ev.results["fd"])
    assert "need more than 5 real VAL portraits" in ev.results["notes"][0] and "note:" in ev.table()


# ------------------------------------------------------------------ your own data
def _images(folder, classes=("mage", "rogue", "mage", "rogue")):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, _ in enumerate(classes):  # noise: a native grid of 32x32 (flat colour would read as one big pixel)
        save_png(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), folder / f"{i}.png")
    return folder


def _prepare(folder, *extra) -> list[str]:
    return ["prepare", "--input", str(folder), "--name", "mine", "--no-auto-palette", *extra]


def test_prepare_refuses_sizes_and_colours_it_cannot_use_before_any_work(project_root, tmp_path, capsys):
    folder = _images(tmp_path / "in")
    (folder / "labels.csv").write_text("file,hero_class\n0.png,mage\n1.png,rogue\n2.png,mage\n3.png,rogue\n")
    for extra, message in (
        (["--size", "48"], "size 48: the networks halve the side down to 4x4, so use a power of two"),
        (["--background", "999,-5,0"], "background (999, -5, 0): an R,G,B colour, each 0 to 255"),
    ):
        assert cli_main(_prepare(folder, *extra)) == 2
        assert message in one_line(capsys)
    assert not (project_root / "data" / "mine").exists()
    assert cli_main(["prepare", "--input", str(folder / "0.png"), "--name", "mine"]) == 2
    assert "is a file; give the folder that holds the images" in one_line(capsys)


def test_labels_as_spreadsheets_save_them_are_read_as_meant(project_root, tmp_path, capsys):
    folder = _images(tmp_path / "in")
    # a trailing comma (an empty last column), and an overrides file with a byte-order mark
    (folder / "labels.csv").write_text("file,hero_class,\n0.png,mage,\n1.png,rogue,\n2.png,mage,\n3.png,rogue,\n")
    overrides = tmp_path / "fixes.csv"
    overrides.write_bytes("\ufefffile,action,attribute,value,note\n3.png,exclude,,,blurry\n".encode())
    assert cli_main(_prepare(folder, "--overrides", str(overrides))) == 0
    meta = json.loads((project_root / "data" / "mine" / "prepared" / "prepare.json").read_text())
    assert meta["counts"]["accepted"] == 3 and list(meta["attributes"]) == ["hero_class"]


def test_label_files_that_cannot_be_used_are_named(project_root, tmp_path, capsys):
    folder = _images(tmp_path / "in")
    (folder / "labels.csv").write_text("file,hero_class,split\n0.png,mage,val\n1.png,rogue,train\n")
    assert cli_main(_prepare(folder)) == 2
    assert "the labels name an attribute 'split', a column the final dataset keeps for itself" in one_line(capsys)
    (folder / "labels.csv").write_text("file,hero_class\n0.png,mage\n1.png,rogue\n2.png,mage\n3.png,rogue\n")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "latin.csv").write_bytes("file,action\n0.png,exclude,é\n".encode("latin-1"))
    (bad / "utf16.csv").write_bytes("file,action\n0.png,exclude\n".encode("utf-16"))
    for overrides in (bad / "latin.csv", bad / "utf16.csv", bad):
        assert cli_main(_prepare(folder, "--overrides", str(overrides))) == 2
        assert f"overrides file {overrides}" in one_line(capsys)
    (folder / "source.json").write_text("{not json")
    assert cli_main(_prepare(folder)) == 2
    assert "source.json is not valid JSON" in one_line(capsys)
    assert not (project_root / "data" / "mine" / "prepared" / "images.npy").exists()  # checked before writing


def test_label_values_with_dollar_signs_draw_their_review_grids(project_root, tmp_path):
    folder = _images(tmp_path / "in")
    (folder / "labels.csv").write_text("file,hero_class\n0.png,$mage_$\n1.png,rogue\n2.png,$mage_$\n3.png,rogue\n")
    assert cli_main(_prepare(folder, "--review")) == 0
    assert list((project_root / "data" / "mine" / "prepared" / "review").rglob("*.png"))


def test_damaged_dataset_files_are_one_line(toy_dataset, project_root, capsys):
    folder = _images(project_root / "in")
    (folder / "labels.csv").write_text("file,hero_class\n0.png,mage\n1.png,rogue\n2.png,mage\n3.png,rogue\n")
    assert cli_main(_prepare(folder)) == 0
    (project_root / "data" / "mine" / "prepared" / "images.npy").unlink()
    assert cli_main(["build", "mine"]) == 2
    assert "has no images.npy" in one_line(capsys)
    dataset = project_root / "data" / toy_dataset
    train_argv = ["train", "--dataset", toy_dataset, "--preset", "smoke", "--run", "d"]
    images = (dataset / "images.npy").read_bytes()
    (dataset / "images.npy").write_bytes(images[: len(images) // 3])
    assert cli_main(train_argv) == 2
    assert "cannot read" in one_line(capsys)
    (dataset / "images.npy").write_bytes(images)
    meta = (dataset / "dataset.json").read_text()
    for damaged, message in (("{not json", "is not valid JSON"), (json.dumps({"name": "toy"}), "names no attributes")):
        (dataset / "dataset.json").write_text(damaged)
        assert cli_main(train_argv) == 2
        assert message in one_line(capsys)
    (dataset / "dataset.json").write_text(meta)


def test_a_study_spec_in_another_encoding_is_one_line(tmp_path, capsys):
    spec = tmp_path / "mine.toml"
    spec.write_bytes('name = "café"\nseeds = [0, 1, 2]\n[[variants]]\nname = "a"\n'.encode("latin-1"))
    assert cli_main(["study", str(spec), "--dry-run"]) == 2
    assert "is not UTF-8 text" in one_line(capsys)
