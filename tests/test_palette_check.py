"""The palette check (`--palette-check N`): off-palette portraits redrawn from new noise, only where the palette
rules made the labels; refused in one line elsewhere, before any training."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_project_root, synthetic_blocks_dataset
from toys import FAMILIES

from heroportraits.cli import main as cli_main
from heroportraits.data.palette_labels import label_palette, off_palette
from heroportraits.errors import HeroError
from heroportraits.sampling.palette_check import redraw_off_palette, round_seed
from heroportraits.sampling.sampler import SampleError, Sampler
from heroportraits.training.checkpoint import load_checkpoint
from heroportraits.training.loop import train
from heroportraits.training.presets import resolve_config

PALETTES = ["warm", "cool", "dark", "neutral", "muted"]
SOLID = {"warm": (220, 80, 40), "cool": (40, 90, 220), "dark": (20, 20, 30), "neutral": (200, 200, 195)}


def solid(name: str) -> np.ndarray:
    return np.full((16, 16, 3), SOLID[name], np.uint8)


def test_off_palette_reads_each_asked_palette_and_skips_open_rows():
    images = np.stack([solid("warm"), solid("cool"), solid("dark"), solid("warm")])
    asked = np.array([0, 0, 2, len(PALETTES)])  # warm (right), warm (wrong), dark (right), open
    assert off_palette(images, asked, PALETTES).tolist() == [False, True, False, False]


def test_redraws_only_the_off_portraits_until_they_are_on_or_the_rounds_run_out():
    images = np.stack([solid("warm"), solid("cool"), solid("neutral"), solid("dark")])
    asked = np.array([0, 0, 0, 2])  # rows 1 and 2 are off
    calls = []

    def redraw(round_, rows):  # round 1 fixes row 1 only; round 2 fixes everything
        calls.append((round_, rows.tolist()))
        return np.stack([solid("warm") if round_ == 2 or r == 1 else solid("cool") for r in rows])

    fixed, record = redraw_off_palette(images, asked, PALETTES, (0, 0, 0), 3, redraw)
    assert calls == [(1, [1, 2]), (2, [2])] and record == {"redrawn": [2, 1], "still_off": 0}
    assert not off_palette(fixed, asked, PALETTES).any() and (fixed[[0, 3]] == images[[0, 3]]).all()
    kept, record = redraw_off_palette(images, asked, PALETTES, (0, 0, 0), 1, lambda r, rows: images[rows])
    assert record == {"redrawn": [2], "still_off": 2} and (kept == images).all()
    assert len({round_seed(0, 1), round_seed(0, 2), round_seed(1, 1), 0, 1}) == 5  # apart from plain seeds


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two smoke runs: on data whose palettes the rules labelled, and on the same data with given labels."""
    root = make_project_root(tmp_path_factory.mktemp("palette_check"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEROPORTRAITS_ROOT", str(root))
        for name in ("ruled", "given"):
            folder = synthetic_blocks_dataset(root, name=name, n=160)
            if name == "ruled":  # recorded as labelled by the rules (its colours are the palettes' own; the rules
                # read 88 % of them as labelled): the check reads the record, and redraws by the rules alone
                meta = json.loads((folder / "dataset.json").read_text())
                meta["prepared"] = {"auto_attributes": ["palette"]}
                (folder / "dataset.json").write_text(json.dumps(meta))
        cfg = resolve_config("smoke", {"train.steps": 4, "train.ema_start": 0})
        made = {name: train(cfg, name, f"{name}-run", progress=False).checkpoint for name in ("ruled", "given")}
        yield root, made


def test_the_check_redraws_off_palette_portraits_deterministically(runs, monkeypatch):
    root, made = runs
    monkeypatch.setenv("HEROPORTRAITS_ROOT", str(root))
    plain = Sampler.from_checkpoint(made["ruled"])
    assert plain.palette_rules == {"backdrop": [0, 0, 0], "labels_by_rules": True}  # kept in the checkpoint
    before, rows = plain.generate(96, seed=3, open_attributes="mix")
    checked = Sampler.from_checkpoint(made["ruled"], draw={"palette_check": 4})
    after, rows_after = checked.generate(96, seed=3, open_attributes="mix")
    record = checked.last_palette_check
    assert checked.native_cell == 2  # read one pixel a native cell, and below the full-size reading agrees
    assert rows_after == rows and (checked.generate(96, seed=3, open_attributes="mix")[0] == after).all()
    off_before = [label_palette(img) != r["palette"] for img, r in zip(before, rows)]
    off_after = [label_palette(img) != r["palette"] for img, r in zip(after, rows)]
    assert record["redrawn"][0] == sum(off_before) > 0 and record["still_off"] == sum(off_after)
    assert all((a == b).all() for a, b, off in zip(after, before, off_before) if not off)  # the on ones kept
    assert "off-palette portraits redrawn up to 4 times" in checked.describe_drawing()


def test_the_check_is_refused_where_labels_came_with_the_data(runs, monkeypatch):
    root, made = runs
    monkeypatch.setenv("HEROPORTRAITS_ROOT", str(root))
    with pytest.raises(SampleError, match="'given''s palette labels came with the data.*leave it out"):
        Sampler.from_checkpoint(made["given"], draw={"palette_check": 2})
    cfg = resolve_config("smoke", {"train.steps": 1, "draw.palette_check": 2})
    with pytest.raises(HeroError, match=r"draw.palette_check=2 .*came with the data") as e:
        train(cfg, "given", "refused", progress=False)
    assert "\n" not in str(e.value) and not (root / "artifacts_gan" / "checkpoints" / "refused").exists()


def test_a_student_checks_its_drawing_when_distil_is_told_to(runs, monkeypatch, capsys):
    """`distil --palette-check N` stores the check in the student's drawing (a `flow_unet` teacher draws unchecked),
    0 turns a teacher's off, the teacher's is kept without the flag, and it is refused in one line where the labels
    came with the data."""
    root, _ = runs
    monkeypatch.setenv("HEROPORTRAITS_ROOT", str(root))
    flow = {**FAMILIES["flow"], "train.steps": 2}
    teachers = {  # the ruled teacher checks its own drawing twice; data with given labels allows no check
        name: train(resolve_config("smoke", {**flow, **extra}), name, f"{name}-flow", progress=False).checkpoint
        for name, extra in (("ruled", {"draw.palette_check": 2}), ("given", {}))
    }

    def distil(teacher, run: str, *extra: str) -> int:
        words = ["distil", str(teacher), "--run", run, "--minutes", "0", "--steps", "1", "--pairs", "8", *extra]
        return cli_main(words)

    assert distil(teachers["ruled"], "checked", "--palette-check", "3") == 0
    assert distil(teachers["ruled"], "as-taught") == 0
    assert distil(teachers["ruled"], "unchecked", "--palette-check", "0") == 0
    checks = [
        load_checkpoint(root / "artifacts_gan/checkpoints" / run)["config"]["draw"]["palette_check"]
        for run in ("checked", "as-taught", "unchecked")
    ]
    assert checks == [3, 2, 0]
    capsys.readouterr()
    assert distil(teachers["given"], "refused", "--palette-check", "2") == 2
    err = capsys.readouterr().err.strip()
    assert "came with the data" in err and "\n" not in err
    assert not (root / "artifacts_gan/checkpoints/refused").exists()
