"""build: duplicates removed and listed, stratified deterministic split, a loadable dataset.json."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from heroportraits import cli
from heroportraits.data.build import (
    build_dataset,
    joint_crosstab,
    label_counts,
    near_duplicates,
    read_build_report,
    stratified_split,
)
from heroportraits.data.dataset import load_dataset, read_labels_csv, read_meta
from heroportraits.data.figures import plot_counts
from heroportraits.data.images import nearest_upscale
from heroportraits.data.prepare import prepare_dataset


def art(rng) -> np.ndarray:
    return nearest_upscale(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), 4)


def write_folder(folder, images: list[np.ndarray], labels: list[dict]) -> None:
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (img, lab) in enumerate(zip(images, labels)):
        Image.fromarray(img).save(folder / "img" / f"{i:03d}.png")
        rows.append({"file": f"img/{i:03d}.png", **lab})
    with open(folder / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_exact_and_near_duplicates_are_removed_and_listed(project_root, tmp_path):
    rng = np.random.default_rng(0)
    images = [art(rng) for _ in range(10)]
    images.append(images[2].copy())  # 10: exact copy of 2
    noisy = np.clip(images[5].astype(int) + rng.integers(-3, 4, images[5].shape), 0, 255).astype(np.uint8)
    images.append(noisy)  # 11: near copy of 5
    shifted = images[7].copy()
    shifted[:8, :8] = 255 - shifted[:8, :8]  # 12: a corner changed a lot
    images.append(shifted)
    labels = [{"hero_class": "mage" if i % 2 else "rogue"} for i in range(len(images))]
    labels[10] = {"hero_class": "mage"}  # conflicting label for the copy
    write_folder(tmp_path / "in", images, labels)
    prepare_dataset(tmp_path / "in", "dups", auto_palette=False, progress=False)
    res = build_dataset("dups", val_fraction=0.25, progress=False, plot=False)

    assert (res.n_exact_duplicates, res.n_near_duplicates, res.n_kept) == (1, 1, 11)
    report = read_build_report("dups").set_index("file").to_dict("index")
    assert len(report) == 13  # every prepared image listed
    assert report["img/010.png"]["reason"] == "exact_duplicate"
    assert report["img/010.png"]["duplicate_of"] == "img/002.png"
    assert "labels differ" in report["img/010.png"]["note"]
    assert report["img/011.png"]["reason"] == "near_duplicate"
    assert report["img/011.png"]["duplicate_of"] == "img/005.png"
    assert 0 < float(report["img/011.png"]["distance"]) < 4
    assert report["img/012.png"]["status"] == "kept"
    data = load_dataset("dups", split=None)
    assert "img/010.png" not in data.files and len(data) == 11
    assert read_meta("dups")["removed"] == {"exact_duplicates": 1, "near_duplicates": 1}


def test_near_duplicates_are_found_among_thousands():
    """Every pair of 3,000 images is compared (in blocks): the one near copy is found, nothing else."""
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (3000, 16, 16, 3), dtype=np.uint8)
    images = nearest_upscale(base, 4)  # (3000, 64, 64, 3)
    images[2999] = np.clip(images[17].astype(int) + 2, 0, 255)  # last is a near copy of 17
    dup_of, dist = near_duplicates(images, threshold=4.0)
    assert np.flatnonzero(dup_of >= 0).tolist() == [2999] and dup_of[2999] == 17
    assert dist[2999] == pytest.approx(2.0, abs=0.1)


def test_split_is_stratified_and_deterministic():
    rng = np.random.default_rng(0)
    keys = [("a", str(k)) for k in rng.integers(0, 6, 500)] + [("rare", "x")] * 2 + [("single", "y")]
    split = stratified_split(keys, 0.2, seed=3)
    assert (split == stratified_split(keys, 0.2, seed=3)).all()  # same seed, same split
    assert (split != stratified_split(keys, 0.2, seed=4)).any()  # another seed differs
    assert (split == "val").sum() == round(0.2 * len(keys))
    for k in set(keys):
        idx = [i for i, key in enumerate(keys) if key == k]
        n_val = sum(split[i] == "val" for i in idx)
        if len(idx) >= 2:
            assert n_val < len(idx)  # at least one train image
        assert abs(n_val - 0.2 * len(idx)) <= 1  # its share of val, +-1
    assert split[keys.index(("single", "y"))] == "train"
    # Where val's share would take a cell's last image, the cell keeps it in train instead.
    small = [(f"pair{i}",) for i in range(20) for _ in range(2)] + [(f"one{i}",) for i in range(10)]
    split = stratified_split(small, 0.5, seed=0)
    assert list(split[40:]) == ["train"] * 10
    assert all(sorted(split[2 * i : 2 * i + 2]) == ["train", "val"] for i in range(20))


def test_dataset_json_and_counts_plot(project_root, tmp_path):
    rng = np.random.default_rng(2)
    labels = [{"species": ["orc", "elf"][i % 2], "weapon": ["bow", "axe", "staff"][i % 3]} for i in range(36)]
    write_folder(tmp_path / "in", [art(rng) for _ in labels], labels)
    prepare_dataset(tmp_path / "in", "final", attributes="species,weapon", progress=False)
    res = build_dataset("final", val_fraction=0.2, seed=1, progress=False)
    meta = read_meta("final")
    assert meta["attributes"] == {"species": ["elf", "orc"], "weapon": ["axe", "bow", "staff"]}
    assert meta["splits"] == {"train": 29, "val": 7} == res.splits
    assert meta["counts"]["per_attribute"]["species"] == {"elf": 18, "orc": 18}
    assert sum(j["count"] for j in meta["counts"]["joint"]) == 36 and len(meta["counts"]["joint"]) == 6
    assert meta["native_scale"] == 4
    assert meta["source"]["kind"] == "folder" and meta["source"]["input_dir"]
    assert meta["parameters"]["val_fraction"] == 0.2 and meta["parameters"]["seed"] == 1
    assert "created_at" in meta
    train = load_dataset("final", "train")
    # How TRAIN uses colour, measured on the native grid: what draw.adapt_colours fits the drawing to
    native = train.images.permute(0, 2, 3, 1).numpy()[:, ::4, ::4].reshape(29, -1, 3)
    counts = [len(np.unique(im, axis=0)) for im in native]
    assert meta["colours"]["n"] == 29 and meta["colours"]["per_portrait"]["max"] == max(counts)
    assert meta["colours"]["budget"] == int(np.ceil(np.percentile(counts, 95)))
    assert len(train) == 29 and train.images.shape[1:] == (3, 64, 64) and train.native_scale == 4
    assert (project_root / "data/final/counts.png").exists()
    # The tables the notebook shows, as DataFrames
    counts = label_counts("final")
    assert list(counts.columns) == ["train", "val", "total"] and counts.index.names == ["attribute", "value"]
    assert counts.loc[("species", "elf"), "total"] == 18 and counts["val"].groupby("attribute").sum().tolist() == [7, 7]
    joint = joint_crosstab("final")  # species x weapon
    assert list(joint.columns) == ["axe", "bow", "staff"] and list(joint.index) == ["elf", "orc"]
    assert joint.to_numpy().sum() == 36 and (joint.to_numpy() == 6).all()
    assert joint_crosstab("final", split="val").to_numpy().sum() == 7
    assert joint_crosstab("final", columns="species").shape == (3, 2)
    assert (read_build_report("final")["status"] == "kept").sum() == 36
    fig = plot_counts("final")
    assert len(fig.axes) == 3  # one per attribute + joint
    # The CLI verb builds the same dataset; another seed gives another split of the same images.
    before = read_labels_csv(project_root / "data/final/labels.csv")
    assert cli.main(["build", "final", "--val-fraction", "0.2", "--seed", "2"]) == 0
    after = read_labels_csv(project_root / "data/final/labels.csv")
    assert [r["file"] for r in after] == [r["file"] for r in before]
    assert [r["split"] for r in after] != [r["split"] for r in before]
    assert read_meta("final")["parameters"]["seed"] == 2
    assert cli.main(["build", "never_prepared"]) == 2  # clear error, no traceback


def test_package_csvs_keep_text_and_bad_files_get_a_clear_error(tmp_path):
    from heroportraits.data.dataset import DatasetError, read_table, write_labels_csv

    path = tmp_path / "labels.csv"
    write_labels_csv(path, [{"file": "a.png", "n": 64, "x": "NA"}, {"file": "b.png", "extra": 1}], ["file", "n", "x"])
    assert path.read_text().splitlines() == ["file,n,x", "a.png,64,NA", "b.png,,"]  # 64, not 64.0
    assert read_table(path).to_dict("records")[0] == {"file": "a.png", "n": "64", "x": "NA"}  # "NA" stays a label
    (tmp_path / "empty.csv").write_text("")
    assert read_table(tmp_path / "empty.csv").empty
    (tmp_path / "bad.csv").write_text('file,x\n"a.png,1\n')  # an unclosed quote
    with pytest.raises(DatasetError, match="bad.csv"):
        read_table(tmp_path / "bad.csv")
