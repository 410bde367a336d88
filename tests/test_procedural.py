"""The built-in procedural dataset: determinism, pixel-art format, labels that show."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from heroportraits.data import procedural as P
from heroportraits.data.attributes import DEFAULT_SCHEMA, LabelError
from heroportraits.data.dataset import read_labels_csv
from heroportraits.data.images import detect_pixel_scale, load_image
from heroportraits.paths import preview_path


@pytest.fixture(scope="module")
def sample():
    """1200 portraits shared by the statistical tests (~2 s)."""
    return P.generate_portraits(1200, seed=123, progress=False)


def _label_ids(rows, attr):
    values = DEFAULT_SCHEMA[attr]
    return np.array([values.index(r[attr]) for r in rows])


def _features(images):
    # Native grid (every other pixel of the 2x upscale) in [0, 1]: (N, 32*32*3).
    x = images[:, ::2, ::2].reshape(len(images), -1).astype(np.float32) / 255.0
    return x


def _logistic_accuracy(x, y, n_train, steps=250, lr=0.5, l2=1e-3):
    """Softmax regression by plain gradient descent; accuracy on the held-out rest."""
    k = int(y.max()) + 1
    mu, sd = x[:n_train].mean(0), x[:n_train].std(0) + 0.05
    z = (x - mu) / sd
    w, b = np.zeros((z.shape[1], k), np.float32), np.zeros(k, np.float32)
    onehot = np.eye(k, dtype=np.float32)[y[:n_train]]
    for _ in range(steps):
        s = z[:n_train] @ w + b
        p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / n_train
        w -= lr * (z[:n_train].T @ g + l2 * w)
        b -= lr * g.sum(0)
    return float(((z[n_train:] @ w + b).argmax(1) == y[n_train:]).mean())


def test_drawing_processes_do_not_change_the_portraits():
    """Each image has its own Generator: one process or several (forked, in chunks) give the same bytes."""
    one, rows_one = P.generate_portraits(30, seed=4, progress=False, workers=1)
    two, rows_two = P.generate_portraits(30, seed=4, progress=False, workers=2)
    assert one.tobytes() == two.tobytes() and rows_one == rows_two
    assert P.drawing_workers(7600) >= 1 and P.drawing_workers(50) == 1


def test_same_seed_same_bytes_other_seed_differs():
    a, rows_a = P.generate_portraits(6, seed=5, progress=False)
    b, rows_b = P.generate_portraits(6, seed=5, progress=False)
    c, _ = P.generate_portraits(6, seed=6, progress=False)
    assert a.tobytes() == b.tobytes() and rows_a == rows_b
    assert a.tobytes() != c.tobytes()


def test_any_portrait_regenerates_alone():
    images, rows = P.generate_portraits(5, seed=9, progress=False)
    img, row = P.portrait_at(3, seed=9)
    assert np.array_equal(img, images[3]) and row == rows[3]
    rng1, rng2 = np.random.default_rng(1), np.random.default_rng(1)
    assert np.array_equal(
        P.draw_portrait(rng1, "feminine", "mage", "cool"), P.draw_portrait(rng2, "feminine", "mage", "cool")
    )


def test_shape_dtype_pixel_scale_and_colour_count(sample):
    images, rows = sample
    assert images.shape == (1200, 64, 64, 3) and images.dtype == np.uint8
    assert len(rows) == 1200 and all({"gender", "hero_class", "palette"} <= set(r) for r in rows)
    for img in images[:200]:
        assert detect_pixel_scale(img) == 2
        assert len(np.unique(img.reshape(-1, 3), axis=0)) <= P.MAX_COLOURS
    native = P.draw_portrait(np.random.default_rng(0), "masculine", "warrior", "dark")
    assert native.shape == (32, 32, 3) and native.dtype == np.uint8


def test_labels_roughly_uniform_and_independent(sample):
    _, rows = sample
    for attr, values in DEFAULT_SCHEMA.items():
        counts = collections.Counter(r[attr] for r in rows)
        expected = len(rows) / len(values)
        assert set(counts) == set(values)
        assert all(abs(counts[v] - expected) < 0.25 * expected for v in values), counts
    # Independence: every (class, palette) cell is populated near 1200/20 = 60.
    cells = collections.Counter((r["hero_class"], r["palette"]) for r in rows)
    assert len(cells) == 20 and min(cells.values()) > 30


def test_weights_change_the_label_mix():
    _, rows = P.generate_portraits(40, seed=1, progress=False, weights={"hero_class": {"mage": 1.0}})
    assert {r["hero_class"] for r in rows} == {"mage"}
    with pytest.raises(LabelError):
        P.generate_portraits(2, weights={"hero_class": {"paladin": 1.0}})
    with pytest.raises(LabelError):
        P.draw_portrait(np.random.default_rng(0), "masculine", "bard", "warm")


def test_classes_differ_measurably(sample):
    images, rows = sample
    x, y = _features(images), _label_ids(rows, "hero_class")
    means = np.stack([x[y == k].mean(0) for k in range(4)])
    gaps = [np.abs(means[i] - means[j]).mean() for i in range(4) for j in range(i + 1, 4)]
    assert min(gaps) > 0.02  # mean images of any two classes differ
    # Nearest class centroid on held-out portraits: chance is 0.25.
    train, test = slice(0, 900), slice(900, None)
    cents = np.stack([x[train][y[train] == k].mean(0) for k in range(4)])
    pred = ((x[test][:, None, :] - cents[None]) ** 2).sum(-1).argmin(1)
    assert (pred == y[test]).mean() > 0.55


def test_gender_cues_informative_not_a_marker(sample):
    images, rows = sample
    acc = _logistic_accuracy(_features(images), _label_ids(rows, "gender"), n_train=900)
    assert acc > 0.68  # chance is 0.5; measured ~0.8
    # Statistical cues: each one overlaps between genders.
    t = {g: [P.sample_traits(np.random.default_rng([7, i]), g) for i in range(300)] for g in ("masculine", "feminine")}
    beard = {g: np.mean([x.beard != "none" for x in t[g]]) for g in t}
    long_hair = {
        g: np.mean([x.hair in ("long", "braids", "bob", "ponytail_l", "ponytail_r", "bun") for x in t[g]]) for g in t
    }
    earrings = {g: np.mean([x.earrings > 0 for x in t[g]]) for g in t}
    assert beard["masculine"] > 0.4 and beard["feminine"] == 0
    assert 0.1 < long_hair["masculine"] < 0.5 < long_hair["feminine"] < 0.99
    assert 0.05 < earrings["masculine"] < earrings["feminine"] < 0.9


def test_folder_writer_round_trips(tmp_path):
    out = P.write_procedural_folder(tmp_path / "proc", n=7, seed=2, progress=False)
    images, rows = P.generate_portraits(7, seed=2, progress=False)
    labels = read_labels_csv(out / "labels.csv")
    assert list(labels[0]) == ["file", "gender", "hero_class", "palette"]
    assert len(labels) == 7 and len(list((out / "images").glob("*.png"))) == 7
    for i, row in enumerate(labels):
        assert row["file"] == f"images/{i:05d}.png"
        assert np.array_equal(load_image(out / row["file"]), images[i])
        assert all(row[a] == rows[i][a] for a in DEFAULT_SCHEMA)
    assert load_image(preview_path(out)).shape[0] > 200
    assert not (out / "preview.png").exists()  # beside the folder, so prepare never reads it


def test_cli_writes_to_project_data_dir(tmp_path, monkeypatch):
    from heroportraits.cli import main

    monkeypatch.setenv("HEROPORTRAITS_ROOT", str(tmp_path))
    assert main(["procedural", "--n", "3", "--seed", "1", "--quiet"]) == 0
    out = tmp_path / "data" / "sources" / "procedural"
    assert len(read_labels_csv(out / "labels.csv")) == 3 and preview_path(out).exists()
