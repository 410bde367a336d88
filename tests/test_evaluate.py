"""The evaluation suite end to end: memorisation, intra-class FD, the floor, the table,
the figures, and the `evaluate` verb on a checkpoint and on a folder of PNGs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import make_project_root, synthetic_blocks_dataset, synthetic_shapes_dataset

from heroportraits.cli import main as cli_main
from heroportraits.data.dataset import load_dataset
from heroportraits.data.palette_labels import label_palette, rules_reading
from heroportraits.evaluation import report as R
from heroportraits.evaluation import scores as S
from heroportraits.evaluation.evaluate import evaluate_checkpoint
from heroportraits.evaluation.figures import plot_attribute_grid
from heroportraits.evaluation.judge import JudgeConfig, load_or_train_judge
from heroportraits.figures import DrawingError
from heroportraits.sampling.portraits import write_samples
from heroportraits.sampling.sampler import Sampler
from heroportraits.training.figures import plot_metric_curves
from heroportraits.training.loop import train
from heroportraits.training.presets import resolve_config

TEST_JUDGE = JudgeConfig(width=8, feature_dim=64, epochs=6, batch_size=64)
FACE = [16, 16, 48, 48]  # the shapes dataset says its "faces" are here: the centre, where its shapes lie


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """Shapes dataset + its small judge (cached, so the suite reuses it) + a smoke checkpoint."""
    root = make_project_root(tmp_path_factory.mktemp("evaluate"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEROPORTRAITS_ROOT", str(root))
        synthetic_shapes_dataset(root, source={"kind": "synthetic-test", "face_box": FACE})
        judge = load_or_train_judge("shapes", TEST_JUDGE, progress=False)
        result = train(resolve_config("smoke"), "shapes", "tiny", progress=False)
        train_split, val_split = load_dataset("shapes", "train"), load_dataset("shapes", "val")
        yield {
            "root": root,
            "judge": judge,
            "run": result.checkpoint.parent,
            "train": train_split.images.permute(0, 2, 3, 1).numpy(),
            "train_rows": [train_split.vocab.decode(r) for r in train_split.labels.tolist()],
            "val": val_split.images.permute(0, 2, 3, 1).numpy(),
            "val_rows": [val_split.vocab.decode(r) for r in val_split.labels.tolist()],
        }


def test_memorisation_flags_exact_copies_of_train_images(shapes):
    copies = [3, 50, 100, 222, 400, 777]
    images = np.concatenate([shapes["train"][copies], shapes["val"][:54]])
    rows = [shapes["train_rows"][i] for i in copies] + shapes["val_rows"][:54]
    mem = S.evaluate_images(images, rows, "shapes", n_subsets=5, progress=False)["memorisation"]
    assert mem["threshold"] > 0  # VAL is never an exact copy of TRAIN
    assert set(range(len(copies))) <= set(mem["flagged_indices"])
    assert mem["flagged"] <= len(copies) + 3  # real VAL images: ~1% flagged by construction
    closest = mem["closest"][: len(copies)]
    assert sorted(p["index"] for p in closest) == list(range(len(copies)))
    assert all(p["distance"] == 0.0 and p["train_index"] == copies[p["index"]] for p in closest)


def test_intra_class_fd_is_zero_for_val_with_true_labels_and_grows_with_wrong_labels(shapes):
    val, rows = shapes["val"], shapes["val_rows"]
    right = S.evaluate_images(val, rows, "shapes", n_subsets=5, memorisation=False, progress=False)
    assert right["fd"] == pytest.approx(0.0, abs=1e-6)
    assert right["precision"] == right["recall"] == right["coverage"] == 1.0
    for attr, values in right["intra_fd"].items():
        for value, r in values.items():
            assert r["fd"] == pytest.approx(0.0, abs=1e-6), (attr, value)
            assert r["n"] == r["n_real"] >= S.MIN_CLASS

    colours = shapes["judge"].vocab.attributes["colour"]
    rotated = [{**r, "colour": colours[(colours.index(r["colour"]) + 1) % 4]} for r in rows]
    wrong = S.evaluate_images(val, rotated, "shapes", n_subsets=5, memorisation=False, progress=False)
    assert wrong["fd"] == pytest.approx(0.0, abs=1e-6)  # the images did not change ...
    assert all(r["fd"] > 1.0 for r in wrong["intra_fd"]["colour"].values())  # ... their classes did
    assert all(r["fd"] == pytest.approx(0.0, abs=1e-6) for r in wrong["intra_fd"]["shape"].values())
    assert wrong["cond_acc"]["colour"] < 0.2 and wrong["cond_acc"]["shape"] == right["cond_acc"]["shape"]


def test_floor_scores_real_train_against_val_and_is_cached_on_disk(shapes, monkeypatch):
    fl = S.floor("shapes", 120, n_subsets=10, progress=False)
    assert fl["n"] == 120 and fl["dataset"] == "shapes"
    assert fl["precision"] > 0.8 and fl["recall"] > 0.8
    assert fl["cond_acc"]["colour"] > 0.9
    assert 0 < fl["memorisation"]["flagged_share"] <= 0.02  # VAL against TRAIN: the 1% percentile
    stored = json.loads((shapes["root"] / "data" / "shapes" / S.FLOOR_FILE).read_text())
    assert "n=120,subsets=10,seed=0,k=3" in stored["entries"]
    S._FLOORS.clear()

    def no_recompute(*a, **k):
        raise AssertionError("the floor should come from judge_floor.json")

    monkeypatch.setattr(S, "evaluate_images", no_recompute)
    assert S.floor("shapes", 120, n_subsets=10, progress=False)["fd"] == fl["fd"]


def test_table_shows_scores_beside_the_floor_and_the_judge_accuracy(shapes):
    rows = shapes["train_rows"][:60]
    res = S.evaluate_images(shapes["train"][:60], rows, "shapes", n_subsets=5, progress=False)
    table = R.format_table(res, S.floor("shapes", 60, n_subsets=5, progress=False))
    acc = shapes["judge"].accuracy
    assert f"Judge VAL accuracy: shape {acc['shape']:.3f}, colour {acc['colour']:.3f}" in table
    assert "floor: 60 real TRAIN images" in table
    for label in (
        "FD (judge features)",
        "KID x1000",
        "precision",
        "recall",
        "density",
        "coverage",
        "colour=red",
        "shape=ring",
        "distinct colours",
        "one-colour 2x2 blocks",
        "edge sharpness",
        "median nearest-neighbour distance",
        "flagged",
    ):
        assert label in table, label


def test_palette_read_by_the_labelling_rules_against_the_asked_palette(tmp_path, monkeypatch):
    """The rules that label palettes read the drawn portraits too: the palettes they read score 1, rotated ones 0,
    rows that leave the palette open are not counted, and the table says whether the rules made the labels."""
    root = make_project_root(tmp_path)
    monkeypatch.setenv("HEROPORTRAITS_ROOT", str(root))
    synthetic_blocks_dataset(root, n=200)
    load_or_train_judge("toy", TEST_JUDGE, progress=False)
    val = load_dataset("toy", "val")
    images = val.images.permute(0, 2, 3, 1).numpy()
    rows = [{**val.vocab.decode(r), "palette": label_palette(img)} for r, img in zip(val.labels.tolist(), images)]
    right = S.evaluate_images(images, rows, "toy", n_subsets=5, memorisation=False, progress=False)["palette_rules"]
    assert right["accuracy"] == 1.0 and right["n"] == len(rows) and right["labels_by_rules"] is False
    palettes = val.vocab.attributes["palette"]
    rotated = [{**r, "palette": palettes[(palettes.index(r["palette"]) + 1) % 5]} for r in rows]
    rotated[0]["palette"] = "any"
    wrong = S.evaluate_images(images, rotated, "toy", n_subsets=5, memorisation=False, progress=False)
    assert wrong["palette_rules"]["accuracy"] == 0.0 and wrong["palette_rules"]["n"] == len(rows) - 1
    assert "palette, read by the rules" in R.format_table(wrong) and "against given labels" in R.format_table(wrong)
    assert rules_reading({"prepared": {"auto_attributes": ["palette"]}, "parameters": {"prepare": {
        "background": [9, 9, 9]}}}) == {"backdrop": [9, 9, 9], "labels_by_rules": True}  # fmt: skip
    assert rules_reading({}) == {"backdrop": [0, 0, 0], "labels_by_rules": False}


def speckled(images: np.ndarray, levels: int = 3) -> np.ndarray:
    """Each native 2x2 pixel moved by up to +-levels per channel: speckle that colour counts barely see."""
    native = images[:, ::2, ::2].astype(int)
    noise = np.random.default_rng(0).integers(-levels, levels + 1, native.shape)
    return np.clip(native + noise, 0, 255).repeat(2, 1).repeat(2, 2).astype(np.uint8)


def test_detail_score_sits_at_its_floor_for_real_images_and_sees_speckle(shapes):
    images, rows = shapes["train"][:200], shapes["train_rows"][:200]
    real = S.evaluate_images(images, rows, "shapes", n_subsets=5, memorisation=False, progress=False)["detail"]
    noisy = S.evaluate_images(speckled(images), rows, "shapes", n_subsets=5, memorisation=False, progress=False)
    noisy = noisy["detail"]
    for region in ("whole", "face"):  # the dataset records a face box, so the face is scored alone too
        assert real[region]["pattern_distance"] < 0.05 < 0.5 < noisy[region]["pattern_distance"], region
        assert noisy[region]["isolated_share"]["generated"] > 0.8 > 0.2 > real[region]["isolated_share"]["generated"]
    assert real["face"]["box"] == FACE and noisy["face"]["fd"] > real["face"]["fd"] >= 0
    table = R.format_table({**S.evaluate_images(images, rows, "shapes", n_subsets=5, progress=False)})
    assert "read by the rules" not in table  # the shapes dataset has no palette
    for label in ("pattern distance (TV)", "isolated native pixels", "face: pattern distance", "face: FD"):
        assert label in table, label


def test_scores_as_dataframes_per_metric_and_per_attribute_value(shapes):
    images, rows = shapes["train"][:60], shapes["train_rows"][:60]
    res = S.evaluate_images(images, rows, "shapes", n_subsets=5, progress=False)
    fl = S.floor("shapes", 60, n_subsets=5, progress=False)
    metrics = R.metrics_frame(res, fl)
    assert list(metrics.columns) == ["group", "generated", "floor", "note"]
    assert metrics.loc["FD (judge features)  lower=better", "generated"] == pytest.approx(res["fd"])
    assert metrics.loc["KID x1000  lower=better", "floor"] == pytest.approx(fl["kid"]["mean"] * 1e3)
    assert metrics.loc["colour", "generated"] == res["cond_acc"]["colour"]
    assert metrics.loc["joint", "floor"] == fl["cond_acc"]["joint"]
    assert list(dict.fromkeys(metrics["group"])) == [
        "distribution",
        "conditional accuracy",
        "pixel art",
        "detail",
        "memorisation",
    ]
    no_floor = R.metrics_frame(res)["floor"]  # without a floor only memorisation has one (VAL against TRAIN)
    assert no_floor.drop("median nearest-neighbour distance").isna().all()

    per_value = R.per_value_frame(res, fl)
    assert per_value.index.names == ["attribute", "value"] and len(per_value) == 3 + 4  # shapes + colours
    assert list(per_value.columns) == ["n", "n_real", "fd", "fd_floor", "cond_acc", "cond_acc_floor", "judge_acc"]
    _, preds = shapes["judge"].embed(images)
    ring = np.array([r["shape"] == "ring" for r in rows])
    ring_index = ["square", "ring", "cross"].index("ring")
    assert per_value.loc[("shape", "ring"), "n"] == ring.sum()
    assert per_value.loc[("shape", "ring"), "cond_acc"] == pytest.approx((preds[ring, 0] == ring_index).mean())
    assert per_value.loc[("colour", "red"), "judge_acc"] == shapes["judge"].accuracy["colour"]
    assert R.per_value_frame(res)["fd_floor"].isna().all()  # no floor given


def test_evaluate_verb_on_a_checkpoint_writes_json_and_figure(shapes, capsys):
    run = shapes["run"]
    assert cli_main(["evaluate", str(run), "--n", "80", "--subsets", "10"]) == 0
    out = capsys.readouterr().out
    assert "FD (judge features)" in out and "Judge VAL accuracy" in out and "floor" in out
    saved = json.loads((run / "last.eval.json").read_text())
    res, fl = saved["results"], saved["floor"]
    assert res["n"] == 80 and fl["n"] == 80 and res["step"] == 6
    assert res["drawing"] == resolve_config("smoke").draw.record()  # the JSON says how its portraits were drawn
    assert res["cond_acc"]["joint"] is not None  # conditions follow the training mix
    assert set(res["seconds"]) >= {"judge", "generate", "scores", "floor"}
    assert (run / "last.nn.png").stat().st_size > 1000
    again = evaluate_checkpoint(run, n=80, n_subsets=10, with_floor=False, write=False, progress=False)
    assert again.results["fd"] == res["fd"] and again.results["kid"] == res["kid"]  # deterministic


def test_evaluate_verb_on_an_image_folder(shapes, tmp_path, capsys):
    folder = write_samples(Sampler.from_checkpoint(shapes["run"] / "last.pt"), tmp_path / "samples", 40, progress=False)
    assert cli_main(["evaluate", "--images", str(folder), "--dataset", "shapes", "--subsets", "5", "--no-floor"]) == 0
    saved = json.loads((folder / "eval.json").read_text())
    assert saved["results"]["n"] == 40 and saved["floor"] is None
    assert (folder / "nearest_neighbours.png").exists()
    assert "wrote" in capsys.readouterr().out


def test_evaluate_verb_errors_clearly_and_before_training_a_judge(toy_dataset, project_root, tmp_path, capsys):
    empty = tmp_path / "pngs"
    empty.mkdir()
    assert cli_main(["evaluate", "--images", str(empty), "--dataset", toy_dataset]) == 2
    err = capsys.readouterr().err
    assert "has no labels.csv" in err and "sample CHECKPOINT --out" in err
    assert not (project_root / "data" / toy_dataset / "judge.pt").exists()
    assert cli_main(["evaluate", "--images", str(empty)]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert cli_main(["evaluate"]) == 2
    assert "either a CHECKPOINT or --images" in capsys.readouterr().err
    assert cli_main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_attribute_grid_and_metric_curves(shapes, tmp_path):
    sampler = Sampler.from_checkpoint(shapes["run"] / "last.pt")
    fig = plot_attribute_grid(sampler, per_row=4, path=tmp_path / "attrs.png")
    assert [ax.get_ylabel().split("\n")[0] for ax in fig.axes] == [
        "shape=square",
        "shape=ring",
        "shape=cross",
        "colour=red",
        "colour=green",
        "colour=blue",
        "colour=yellow",
    ]
    assert (tmp_path / "attrs.png").exists()

    log = tmp_path / "eval.jsonl"
    log.write_text("".join(json.dumps({"step": s, "fd": 10.0 / s, "cond_acc": 0.1 * s}) + "\n" for s in (1, 2, 3)))
    fig = plot_metric_curves(log, ["fd", "cond_acc"])
    assert [ax.get_title() for ax in fig.axes] == ["fd", "cond_acc"]
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [10.0, 5.0, 10.0 / 3])
    with pytest.raises(DrawingError, match="no column"):
        plot_metric_curves(log, ["kid"])


def test_evaluate_prints_the_table_then_names_what_it_could_not_write(shapes, tmp_path, capsys):
    folder = write_samples(Sampler.from_checkpoint(shapes["run"] / "last.pt"), tmp_path / "ro", 40, progress=False)
    # Both output names taken by folders: the writes fail as in a read-only folder (which root could still write).
    (folder / "eval.json").mkdir()
    (folder / "nearest_neighbours.png").mkdir()
    argv = ["evaluate", "--images", str(folder), "--dataset", "shapes", "--subsets", "5", "--no-floor"]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert out.index("FD (judge features)") < out.index("could not write")  # the scores are never lost
    assert f"could not write {folder / 'eval.json'}" in out
    assert f"could not write {folder / 'nearest_neighbours.png'}" in out and "wrote" not in out
    if os.geteuid() != 0:  # a truly read-only folder, where the user can make one
        ro = write_samples(Sampler.from_checkpoint(shapes["run"] / "last.pt"), tmp_path / "ro2", 40, progress=False)
        ro.chmod(0o555)
        try:
            assert (
                cli_main(["evaluate", "--images", str(ro), "--dataset", "shapes", "--subsets", "5", "--no-floor"]) == 0
            )
            assert "could not write" in capsys.readouterr().out
        finally:
            ro.chmod(0o755)


def test_kid_needs_a_subset(shapes):
    with pytest.raises(S.EvaluationError, match="n_subsets=0"):
        S.evaluate_images(shapes["val"][:40], shapes["val_rows"][:40], "shapes", n_subsets=0, progress=False)
