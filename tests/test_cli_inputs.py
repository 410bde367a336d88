"""Bad command-line input gets one clear line: counts, output paths that are files, names that are
paths, and sample folders that already hold portraits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shared_project_root, synthetic_blocks_dataset
from PIL import Image

from heroportraits.cli import main as cli_main
from heroportraits.data.dataset import read_labels_csv
from heroportraits.sampling.portraits import MANIFEST
from heroportraits.training.checkpoint import CheckpointError, load_checkpoint
from heroportraits.training.loop import train
from heroportraits.training.presets import resolve_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A smoke checkpoint on the toy set, shared by the sample tests."""
    with shared_project_root(tmp_path_factory, "inputs") as root:
        synthetic_blocks_dataset(root)
        yield train(resolve_config("smoke"), "toy", "inputs", progress=False).checkpoint.parent


def usage_error(argv: list[str], capsys) -> str:
    """argparse's refusal: exit status 2 and the message on stderr."""
    with pytest.raises(SystemExit) as e:
        cli_main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("n", ["0", "-5", "many"])
def test_sample_refuses_a_count_below_one(run, tmp_path, capsys, n):
    err = usage_error(["sample", str(run), "--n", n, "--out", str(tmp_path / "s")], capsys)
    assert "argument --n:" in err and ("must be >= 1" in err or "expects a whole number" in err)
    assert not (tmp_path / "s").exists()


def test_evaluate_refuses_too_few_samples_and_no_kid_subsets(capsys):
    assert "argument --n: must be >= 10, got 0" in usage_error(["evaluate", "RUN", "--n", "0"], capsys)
    assert "argument --subsets: must be >= 1, got 0" in usage_error(["evaluate", "RUN", "--subsets", "0"], capsys)


def test_sample_refuses_a_folder_with_portraits_unless_overwrite(run, tmp_path, capsys):
    out = tmp_path / "s"
    assert cli_main(["sample", str(run), "--n", "6", "--out", str(out)]) == 0
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert cli_main(["sample", str(run), "--n", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already holds 9 file(s)" in err and "--overwrite" in err  # 6 portraits, labels, the manifest, the note
    assert len(read_labels_csv(out / "labels.csv")) == 6  # nothing touched
    assert cli_main(["sample", str(run), "--n", "3", "--out", str(out), "--overwrite"]) == 0
    # Only its own kind was replaced: three portraits listed and present, no stale ones, the note kept.
    names = [MANIFEST, "00000.png", "00001.png", "00002.png", "labels.csv", "notes.txt"]
    assert sorted(p.name for p in out.iterdir()) == names
    assert [r["file"] for r in read_labels_csv(out / "labels.csv")] == ["00000.png", "00001.png", "00002.png"]


def test_output_paths_that_are_files_are_clear_errors(run, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    for argv in (
        ["sample", str(run), "--n", "2", "--out", str(taken)],
        ["sample", str(run), "--grid", "--out", str(taken)],
        ["procedural", "--n", "2", "--out", str(taken), "--quiet"],
    ):
        assert cli_main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and f"{taken} is a file, not a folder" in err
    assert taken.read_text() == "a file"


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "/tmp/x", "with space"])
def test_dataset_names_are_plain_names(project_root, tmp_path, capsys, name):
    (tmp_path / "in" / "warrior").mkdir(parents=True)
    assert cli_main(["prepare", "--input", str(tmp_path / "in"), "--name", name]) == 2
    assert f"dataset name {name!r} is not a plain name" in capsys.readouterr().err
    assert cli_main(["build", name]) == 2
    assert "is not a plain name" in capsys.readouterr().err
    assert sorted(p.name for p in project_root.iterdir()) == ["artifacts_gan", "data"]  # nothing written outside


def test_random_bytes_checkpoint_never_suggests_weights_only_false(run, tmp_path, capsys):
    bad = tmp_path / "random.pt"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert cli_main(["sample", str(bad), "--n", "2", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert f"cannot read checkpoint {bad}" in err and "weights_only" not in err
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(bad)
    chained = [e.value, e.value.__cause__, e.value.__context__]
    assert not any("weights_only" in str(x) for x in chained if x is not None)  # not even in a traceback


def test_a_foreign_dict_is_not_a_checkpoint_of_this_project(run, tmp_path, capsys):
    state = torch.load(run / "last.pt", weights_only=True)
    no_config = {k: v for k, v in state.items() if k != "config"}
    torch.save(no_config, tmp_path / "no_config.pt")
    other_shapes = {**state, "G_ema": {k: v[..., :1] if v.ndim else v for k, v in state["G_ema"].items()}}
    torch.save(other_shapes, tmp_path / "shapes.pt")
    for name in ("no_config.pt", "shapes.pt"):
        path = tmp_path / name
        assert cli_main(["sample", str(path), "--n", "2", "--out", str(tmp_path / name.replace(".pt", ""))]) == 2
        err = capsys.readouterr().err
        assert f"{path} is not a checkpoint of this project, or of another version" in err, err
        assert err.count("\n") == 1


def test_run_names_are_plain_names_and_not_files(project_root, capsys):
    synthetic_blocks_dataset(project_root)
    assert cli_main(["train", "--dataset", "toy", "--preset", "smoke", "--run", "../../x"]) == 2
    assert "run name '../../x' is not a plain name" in capsys.readouterr().err
    (project_root / "artifacts_gan" / "checkpoints" / "taken").write_text("a file")
    assert cli_main(["train", "--dataset", "toy", "--preset", "smoke", "--run", "taken"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert sorted(p.name for p in project_root.iterdir()) == ["artifacts_gan", "data"]


def test_a_batch_larger_than_the_dataset_is_a_printed_warning(project_root, capsys):
    synthetic_blocks_dataset(project_root, n=24)  # 21 training images
    argv = ["train", "--dataset", "toy", "--preset", "smoke", "--run", "big", "--steps", "1"]
    assert cli_main([*argv, "--set", "train.batch_size=32"]) == 0
    err = capsys.readouterr().err
    assert "warning: train.batch_size=32 is larger than the 21 training images of toy" in err
    assert cli_main([*argv, "--run", "small", "--set", "train.batch_size=8"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_palette_merge_is_refused_where_there_is_no_palette(run, tmp_path, capsys):
    """An RGB model has no palette slots: merging would silently do nothing, so it is refused."""
    assert cli_main(["sample", str(run), "--n", "3", "--out", str(tmp_path / "s"), "--palette-merge", "4"]) == 2
    err = capsys.readouterr().err
    assert "draw.palette_merge=4 (--palette-merge 4) merges palette colours, so it needs model.output=palette" in err
    assert "or set it to 0" in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_sample_palette_merge_gives_fewer_colours_from_the_same_palette(smoke_checkpoint, tmp_path):
    ckpt = smoke_checkpoint(**{"model.output": "palette", "model.palette_k": 16})
    colours = {}
    for de in ("0", "40"):
        out = tmp_path / f"merge{de}"
        assert cli_main(["sample", str(ckpt), "--n", "8", "--out", str(out), "--palette-merge", de]) == 0
        rows = read_labels_csv(out / "labels.csv")
        colours[de] = [{tuple(c) for c in np.asarray(Image.open(out / r["file"])).reshape(-1, 3)} for r in rows]
    assert all(m <= p for m, p in zip(colours["40"], colours["0"]))
    assert sum(map(len, colours["40"])) < sum(map(len, colours["0"]))
