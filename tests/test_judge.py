"""The judge: learns the attributes, stores its VAL accuracy, is deterministic and cached."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import make_project_root, synthetic_shapes_dataset

from heroportraits.data.dataset import load_dataset
from heroportraits.evaluation import judge as J
from heroportraits.evaluation.scores import evaluate_images, quick_fd

TEST_JUDGE = J.JudgeConfig(width=8, feature_dim=64, epochs=6, batch_size=64)
TINY = J.JudgeConfig(width=4, feature_dim=16, epochs=1, batch_size=64)  # for determinism and cache tests


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = make_project_root(tmp_path_factory.mktemp("judge"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEROPORTRAITS_ROOT", str(root))
        synthetic_shapes_dataset(root)
        yield root, J.load_or_train_judge("shapes", TEST_JUDGE, progress=False)


def val_images_and_rows(name="shapes"):
    val = load_dataset(name, "val")
    return val.images.permute(0, 2, 3, 1).numpy(), [val.vocab.decode(r) for r in val.labels.tolist()]


def test_judge_learns_the_attributes_and_stores_its_val_accuracy(shapes):
    root, judge = shapes
    assert set(judge.accuracy) == {"shape", "colour"}
    assert judge.accuracy["colour"] > 0.9 and judge.accuracy["shape"] > 0.7  # chance: 0.25 and 0.33
    assert judge.joint_accuracy <= min(judge.accuracy.values())
    assert judge.meta["n_train"] == 800 and judge.meta["n_val"] == 200
    assert (root / "data" / "shapes" / "judge.pt").exists()
    described = J.describe_accuracy(judge.accuracy, judge.joint_accuracy)
    assert "shape " in described and "joint" in described


def test_conditional_accuracy_of_real_val_with_true_labels_equals_the_stored_accuracy(shapes):
    _, judge = shapes
    images, rows = val_images_and_rows()
    res = evaluate_images(images, rows, "shapes", n_subsets=5, memorisation=False, progress=False)
    for a, acc in judge.accuracy.items():
        assert res["cond_acc"][a] == pytest.approx(acc, abs=1e-12)
    assert res["cond_acc"]["joint"] == pytest.approx(judge.joint_accuracy, abs=1e-12)
    assert res["judge"]["accuracy"] == judge.accuracy  # printed beside the scores
    quick = quick_fd(images, rows, "shapes", n=len(images))
    assert quick["cond_acc"] == pytest.approx(judge.joint_accuracy, abs=1e-12)
    assert quick["fd"] == pytest.approx(0.0, abs=1e-6)  # VAL against itself
    # Conditioned on the wrong colour, the same images score far lower.
    colours = judge.vocab.attributes["colour"]
    wrong = [{**r, "colour": colours[(colours.index(r["colour"]) + 1) % len(colours)]} for r in rows]
    assert quick_fd(images, wrong, "shapes", n=len(images))["cond_acc_colour"] < 0.2


def test_embed_rejects_images_it_cannot_read(shapes):
    _, judge = shapes
    with pytest.raises(J.JudgeError, match="64x64"):
        judge.embed(np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(J.JudgeError, match=r"\(N, H, W, 3\)"):
        judge.embed(np.zeros((2, 64, 64), np.uint8))


def test_training_is_deterministic_for_a_seed(project_root):
    synthetic_shapes_dataset(project_root, n=300)
    a = J.train_judge("shapes", TINY, progress=False)
    b = J.train_judge("shapes", TINY, progress=False)
    for k, v in a.net.state_dict().items():
        assert torch.equal(v, b.net.state_dict()[k]), k
    assert a.accuracy == b.accuracy
    c = J.train_judge("shapes", replace(TINY, seed=1), progress=False)
    assert not torch.equal(a.net.fc.weight, c.net.fc.weight)


def test_cache_is_reused_and_retrained_when_dataset_config_or_file_changes(project_root, monkeypatch):
    synthetic_shapes_dataset(project_root, n=300)
    calls = []
    real_train = J.train_judge
    monkeypatch.setattr(J, "train_judge", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    images, _ = val_images_and_rows()

    first = J.load_or_train_judge("shapes", TINY, progress=False)
    assert len(calls) == 1 and J.judge_path("shapes").exists()
    J._MEMORY.clear()
    loaded = J.load_or_train_judge("shapes", progress=False)  # from data/shapes/judge.pt
    assert len(calls) == 1
    assert loaded.accuracy == first.accuracy and loaded.fingerprint == first.fingerprint
    np.testing.assert_array_equal(loaded.features(images), first.features(images))

    J.load_or_train_judge("shapes", replace(TINY, epochs=2), progress=False)  # another config asked for
    assert len(calls) == 2
    synthetic_shapes_dataset(project_root, n=300, seed=1)  # the dataset was rebuilt
    J.load_or_train_judge("shapes", progress=False)
    assert len(calls) == 3
    J._MEMORY.clear()
    J.judge_path("shapes").write_bytes(b"not a torch file")  # a corrupt cache
    assert J.load_or_train_judge("shapes", progress=False).accuracy
    assert len(calls) == 4


def test_judge_needs_a_val_split(project_root):
    synthetic_shapes_dataset(project_root, n=60, val_every=10**6)
    with pytest.raises(J.JudgeError, match="VAL split"):
        J.train_judge("shapes", TINY, progress=False)
