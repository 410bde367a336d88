"""prepare: every input accounted for, labels from CSV / folders / overrides, crisp resizing."""

from __future__ import annotations

import csv
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from heroportraits import cli
from heroportraits.data.attributes import DEFAULT_SCHEMA
from heroportraits.data.build import build_dataset
from heroportraits.data.curation import OverrideError, review_grids
from heroportraits.data.dataset import load_dataset, read_labels_csv
from heroportraits.data.images import nearest_upscale
from heroportraits.data.prepare import PrepareError, prepare_dataset, read_prepare_meta, read_report


def random_art(rng, native: int = 16, scale: int = 4) -> np.ndarray:
    """Noisy pixel art on a native grid, upscaled by nearest: distinct and never blank."""
    return nearest_upscale(rng.integers(0, 256, (native, native, 3), dtype=np.uint8), scale)


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    return path


def labelled_folder(folder: Path, schema: dict[str, list[str]], n: int = 24, seed: int = 0, extra=None) -> list[dict]:
    """n images under folder/img/ with labels.csv cycling through every schema value."""
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        rel = f"img/{i:03d}.png"
        Image.fromarray(random_art(rng)).save(folder / rel)
        row = {"file": rel}
        for j, (attr, values) in enumerate(schema.items()):
            row[attr] = values[(i // (j + 1)) % len(values)]
        rows.append({**row, **(extra or {})})
    write_csv(folder / "labels.csv", rows)
    return rows


def decoded_labels(name: str) -> dict[str, dict[str, str]]:
    data = load_dataset(name, split=None)
    return {f: data.vocab.decode(lab.tolist()) for f, lab in zip(data.files, data.labels)}


@pytest.mark.parametrize(
    "schema,kwargs",
    [
        (DEFAULT_SCHEMA, {"auto_palette": False}),
        ({"species": ["orc", "elf", "dwarf"], "weapon": ["bow", "axe"]}, {"attributes": ["species", "weapon"]}),
    ],
    ids=["default-schema", "custom-schema"],
)
def test_csv_labels_round_trip_to_final_dataset(project_root, tmp_path, schema, kwargs):
    # An extra column is only ignored when `attributes` picks the columns; by default all are used.
    extra = {"notes": "ignored column"} if "attributes" in kwargs else None
    rows = labelled_folder(tmp_path / "in", schema, n=30, extra=extra)
    res = prepare_dataset(tmp_path / "in", "rt", progress=False, **kwargs)
    assert res.n_accepted == 30 and res.n_rejected == 0
    assert list(res.attributes) == list(schema)  # no palette added, no notes column
    if schema is DEFAULT_SCHEMA:
        assert res.attributes == DEFAULT_SCHEMA  # canonical order kept
    else:
        assert all(res.attributes[a] == sorted(v) for a, v in schema.items())
    build_dataset("rt", val_fraction=0.2, seed=0, progress=False, plot=False)
    got = decoded_labels("rt")
    assert got == {r["file"]: {a: r[a] for a in schema} for r in rows}


def test_subfolder_labels_and_auto_palette(project_root, tmp_path):
    rng = np.random.default_rng(1)
    for cls in ("mage", "rogue"):
        for i in range(3):
            (tmp_path / "in" / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(random_art(rng)).save(tmp_path / "in" / cls / f"{i}.png")
    res = prepare_dataset(tmp_path / "in", "folders", progress=False)
    assert res.label_source == "folders" and res.auto_attributes == ["palette"]
    assert list(res.attributes) == ["hero_class", "palette"]
    assert res.attributes["hero_class"] == ["mage", "rogue"]  # canonical order, only seen values
    labels = {r["file"]: r for r in read_labels_csv(res.paths["labels"])}
    assert labels["rogue/2.png"]["hero_class"] == "rogue"
    assert set(r["palette"] for r in labels.values()) <= set(DEFAULT_SCHEMA["palette"])

    # Two levels: named by --attributes, palette automatic on top.
    nested = tmp_path / "nested"
    for g, c in [("feminine", "mage"), ("masculine", "warrior")]:
        (nested / g / c).mkdir(parents=True)
        Image.fromarray(random_art(rng)).save(nested / g / c / "a.png")
    res = prepare_dataset(nested, "nested", attributes="gender,hero_class,palette", progress=False)
    labels = {r["file"]: r for r in read_labels_csv(res.paths["labels"])}
    assert labels["feminine/mage/a.png"]["gender"] == "feminine"
    assert labels["masculine/warrior/a.png"]["hero_class"] == "warrior"
    with pytest.raises(PrepareError, match="--attributes"):
        prepare_dataset(nested, "nested2", progress=False)


def test_every_input_is_accounted_for(project_root, tmp_path):
    rows = labelled_folder(tmp_path / "in", {"gender": ["masculine", "feminine"], "hero_class": ["mage", "rogue"]}, n=8)
    folder = tmp_path / "in"
    (folder / "img" / "corrupt.png").write_bytes(b"not a png at all")
    Image.fromarray(np.full((8, 8, 3), 50, np.uint8)).save(folder / "img" / "tiny.png")
    Image.fromarray(random_art(np.random.default_rng(5))).save(folder / "img" / "nolabel.png")
    rows[1]["hero_class"] = "bard"  # value not allowed
    rows[2]["gender"] = ""  # empty value
    rows += [
        {"file": "img/corrupt.png", "gender": "masculine", "hero_class": "mage"},
        {"file": "img/tiny.png", "gender": "masculine", "hero_class": "mage"},
        {"file": "img/gone.png", "gender": "feminine", "hero_class": "rogue"},  # label without image
        {"file": "img/003.png", "gender": "feminine", "hero_class": "rogue"},  # second row for a file
    ]
    write_csv(folder / "labels.csv", rows)
    res = prepare_dataset(folder, "acct", values={"hero_class": ["mage", "rogue"]}, auto_palette=False, progress=False)
    report = {r["file"]: r for r in read_report("acct").to_dict("records")}
    n_image_files = 8 + 3
    # + label row w/o image + duplicate row + labels.csv itself (skipped: not an image)
    assert len(read_report("acct")) == n_image_files + 1 + 1 + 1
    assert report["labels.csv"]["status"] == "skipped" and report["labels.csv"]["reason"] == "not_an_image"
    assert res.n_skipped == 1
    assert report["img/corrupt.png"]["reason"] == "unreadable"
    assert report["img/tiny.png"]["reason"] == "too_small"
    assert report["img/nolabel.png"]["reason"] == "unlabelled"
    assert report["img/001.png"]["reason"] == "bad_label" and "bard" in report["img/001.png"]["detail"]
    assert report["img/002.png"]["reason"] == "bad_label" and "empty gender" in report["img/002.png"]["detail"]
    assert report["img/gone.png"]["reason"] == "missing_image"
    frame = read_report("acct")  # a DataFrame of text columns
    assert list(frame.columns[:4]) == ["file", "status", "reason", "detail"]
    assert frame.loc[frame["file"] == "img/003.png", "reason"].tolist() == ["", "duplicate_label_row"]
    assert (frame["status"] == "rejected").sum() == res.n_rejected == 7
    table = res.table()  # where the files went, as the notebook shows it
    assert table.loc["accepted", "count"] == 6 and table.loc["rejected: bad_label", "count"] == 2
    assert table.loc["rejected: missing_image", "meaning"].startswith("a label row")
    assert res.n_accepted == 6 and res.n_files == n_image_files
    assert res.rejected == {
        "unreadable": 1,
        "too_small": 1,
        "unlabelled": 1,
        "bad_label": 2,
        "missing_image": 1,
        "duplicate_label_row": 1,
    }
    assert len(np.load(res.paths["images"])) == len(read_labels_csv(res.paths["labels"])) == 6
    assert "bad_label" in res.summary()


def test_nothing_accepted_is_an_error_that_points_at_the_report(project_root, tmp_path):
    labelled_folder(tmp_path / "in", {"hero_class": ["mage"]}, n=3)
    write_csv(tmp_path / "in" / "labels.csv", [{"file": "elsewhere.png", "hero_class": "mage"}])
    with pytest.raises(PrepareError, match="report.csv"):
        prepare_dataset(tmp_path / "in", "none", progress=False)
    assert read_report("none")["reason"].tolist() == ["unlabelled"] * 3 + ["not_an_image", "missing_image"]
    assert not (project_root / "data/none/prepared/images.npy").exists()


def test_overrides_relabel_and_exclude(project_root, tmp_path):
    labelled_folder(tmp_path / "in", {"hero_class": ["mage", "rogue"]}, n=6)
    ovr = write_csv(
        tmp_path / "ovr.csv",
        [
            {"file": "img/000.png", "action": "relabel", "attribute": "hero_class", "value": "rogue", "note": ""},
            {"file": "img/001.png", "action": "exclude", "attribute": "", "value": "", "note": "blurry"},
            {"file": "img/002.png", "action": "relabel", "attribute": "palette", "value": "dark", "note": ""},
        ],
    )
    prepare_dataset(tmp_path / "in", "ovr", overrides_csv=ovr, progress=False)
    labels = {r["file"]: r for r in read_labels_csv(project_root / "data/ovr/prepared/labels.csv")}
    report = {r["file"]: r for r in read_report("ovr").to_dict("records")}
    assert labels["img/000.png"]["hero_class"] == "rogue"  # was mage
    assert labels["img/002.png"]["palette"] == "dark"  # overrides the automatic palette
    assert "img/001.png" not in labels
    assert report["img/001.png"]["reason"] == "excluded_by_override" and report["img/001.png"]["detail"] == "blurry"
    assert read_prepare_meta("ovr")["counts"]["rejected"] == {"excluded_by_override": 1}

    bad = write_csv(tmp_path / "bad.csv", [{"file": "img/nope.png", "action": "exclude", "attribute": "", "value": ""}])
    with pytest.raises(OverrideError, match="img/nope.png"):
        prepare_dataset(tmp_path / "in", "ovr", overrides_csv=bad, progress=False)
    bad = write_csv(
        tmp_path / "bad2.csv", [{"file": "img/000.png", "action": "relabel", "attribute": "size", "value": "x"}]
    )
    with pytest.raises(OverrideError, match="size"):
        prepare_dataset(tmp_path / "in", "ovr", overrides_csv=bad, progress=False)


def test_pixel_art_resize_is_crisp_and_alpha_flattened_with_its_mask_kept(project_root, tmp_path):
    rng = np.random.default_rng(3)
    native = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    folder = tmp_path / "in" / "mage"
    folder.mkdir(parents=True)
    Image.fromarray(nearest_upscale(native, 3)).save(folder / "x3.png")  # 48x48
    rgba = np.concatenate([native, np.full((16, 16, 1), 255, np.uint8)], -1)
    rgba[:4, :, 3] = 0  # transparent top rows
    Image.fromarray(nearest_upscale(rgba, 2), "RGBA").save(folder / "alpha.png")
    Image.fromarray(nearest_upscale(native, 2)).save(folder / "x2.jpg", quality=95, subsampling=0)  # 32x32, lossy
    res = prepare_dataset(tmp_path / "in", "crisp", background=(10, 20, 30), auto_palette=False, progress=False)
    stored = np.load(res.paths["images"])
    assert stored.shape[-1] == 4  # one source had alpha: the masks are kept, as channel 4
    images, masks = stored[..., :3], stored[..., 3]
    files = [r["file"] for r in read_labels_csv(res.paths["labels"])]
    expected = nearest_upscale(native, 4)
    np.testing.assert_array_equal(images[files.index("mage/x3.png")], expected)
    assert (masks[files.index("mage/x3.png")] == 255).all()  # an opaque source: all figure
    flat = images[files.index("mage/alpha.png")]
    assert (flat[:16] == (10, 20, 30)).all()  # transparency -> background
    np.testing.assert_array_equal(flat[16:], expected[16:])
    mask = masks[files.index("mage/alpha.png")]
    assert (mask[:16] == 0).all() and (mask[16:] == 255).all()  # the transparent rows, x4
    jpg = images[files.index("mage/x2.jpg")].astype(int)
    assert np.abs(jpg - expected).mean() < 8  # detected the x2 grid despite JPEG noise
    assert res.native_scale == 4 and read_prepare_meta("crisp")["native_scale"] == 4
    assert read_report("crisp").set_index("file").loc["mage/x3.png", "scale"] == "4"


def test_auto_palette_agreement_is_measured(project_root, tmp_path):
    # Sprites on a transparent backdrop whose given palette is obvious from the figure's colour.
    colours = {"warm": (230, 90, 30), "cool": (40, 110, 230), "dark": (45, 40, 60), "neutral": (205, 200, 190)}
    (tmp_path / "in").mkdir()
    rows, rng = [], np.random.default_rng(0)
    for i in range(12):
        pal = list(colours)[i % 4]
        img = np.zeros((32, 32, 4), np.uint8)
        img[6:28, 8:24, :3] = np.clip(np.array(colours[pal]) + rng.integers(-6, 7, (22, 16, 3)), 0, 255)
        img[6:28, 8:24, 3] = 255
        Image.fromarray(img, "RGBA").save(tmp_path / "in" / f"{i}.png")
        rows.append({"file": f"{i}.png", "hero_class": "mage", "palette": "warm" if i == 1 else pal})
    write_csv(tmp_path / "in" / "labels.csv", rows)
    res = prepare_dataset(tmp_path / "in", "agree", auto_palette=True, progress=False)
    agr = res.palette_agreement
    assert agr is not None and agr.n == 12
    assert agr.accuracy == pytest.approx(11 / 12)  # only the deliberately wrong given label disagrees
    i_warm, i_cool = agr.values.index("warm"), agr.values.index("cool")
    assert agr.confusion[i_warm][i_cool] == 1
    assert read_prepare_meta("agree")["palette_agreement"]["accuracy"] == pytest.approx(11 / 12)
    report = read_report("agree").set_index("file").to_dict("index")
    assert report["1.png"]["palette"] == "cool" and report["1.png"]["palette_given"] == "warm"
    assert "palette agreement" in res.summary()
    # Without auto_palette the given column is used as is.
    res = prepare_dataset(tmp_path / "in", "given", progress=False)
    assert res.palette_agreement is None and res.auto_attributes == []


def test_review_grids_and_cli(project_root, tmp_path, capsys):
    labelled_folder(tmp_path / "in", {"hero_class": ["mage", "rogue"]}, n=6)
    rc = cli.main(["prepare", "--input", str(tmp_path / "in"), "--name", "viacli", "--no-auto-palette"])
    assert rc == 0 and "accepted" in capsys.readouterr().out
    meta = json.loads((project_root / "data/viacli/prepared/prepare.json").read_text())
    assert meta["attributes"] == {"hero_class": ["mage", "rogue"]} and meta["source"]["kind"] == "folder"
    paths = review_grids("viacli", "hero_class")
    assert [p.name for p in paths] == ["hero_class=mage.png", "hero_class=rogue.png"]
    assert all(p.exists() and p.parent == project_root / "data/viacli/prepared/review" for p in paths)
    # A bad input is a one-line error, not a traceback.
    rc = cli.main(["prepare", "--input", str(tmp_path / "missing"), "--name", "x"])
    assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_default_input_never_deletes_a_folder_it_did_not_make(project_root):
    from heroportraits.data.prepare import default_input

    theirs = project_root / "data" / "sources" / "procedural"
    (theirs / "images").mkdir(parents=True)
    (theirs / "images" / "mine.png").write_bytes(b"a user's file")
    folder, source = default_input(n=3, seed=1, progress=False)
    assert (theirs / "images" / "mine.png").read_bytes() == b"a user's file"  # untouched
    assert folder == project_root / "data" / "sources" / "procedural_n3_seed1"
    assert source == {"kind": "procedural", "n": 3, "seed": 1}
    assert len(read_labels_csv(folder / "labels.csv")) == 3
    stamp = (folder / "images").stat().st_mtime_ns
    assert default_input(n=3, seed=1, progress=False)[0] == folder  # reused, not redrawn
    assert (folder / "images").stat().st_mtime_ns == stamp
    (folder / "images" / "extra.png").write_bytes(b"another user's file")
    with pytest.raises(PrepareError, match="hold other files"):
        default_input(n=3, seed=1, progress=False)
    assert (folder / "images" / "extra.png").exists()


def png_bomb(path: Path, side: int = 20000) -> Path:
    """A decompression bomb: a valid 1-bit PNG of side x side black pixels, in a file of ~60 KB
    (written row by row, so the test never holds the 400-megapixel image)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z, row = zlib.compressobj(9), b"\0" * (1 + (side + 7) // 8)
    parts = [z.compress(row) for _ in range(side)] + [z.flush()]
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")
    )
    assert path.stat().st_size < 200_000
    return path


def png16(path: Path, values: np.ndarray) -> Path:
    """A 16-bit greyscale PNG (values 0..65535)."""
    Image.fromarray(values.astype(np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I;16")
    return path


def test_every_path_under_the_input_appears_with_a_true_reason(project_root, tmp_path):
    folder = tmp_path / "in"
    labelled_folder(folder, {"hero_class": ["mage", "rogue"]}, n=4)
    img = folder / "img"
    (img / "dangling.png").symlink_to(img / "nowhere.png")
    (img / "loop_a.png").symlink_to(img / "loop_b.png")
    (img / "loop_b.png").symlink_to(img / "loop_a.png")
    (img / "folder.png").mkdir()
    Image.fromarray(random_art(np.random.default_rng(1))).save(img / "scan.tiff")
    (img / "notes.txt").write_text("not an image")
    png_bomb(img / "bomb.png")
    rows = read_labels_csv(folder / "labels.csv")
    rows += [{"file": f"img/{n}", "hero_class": "mage"} for n in ("bomb.png", "scan.tiff", "dangling.png")]
    write_csv(folder / "labels.csv", rows)
    res = prepare_dataset(folder, "paths", auto_palette=False, progress=False)
    report = {r["file"]: r for r in read_report("paths").to_dict("records")}
    expected = {
        "img/dangling.png": ("rejected", "broken_link", "does not exist"),
        "img/loop_a.png": ("rejected", "broken_link", "loop"),
        "img/loop_b.png": ("rejected", "broken_link", "loop"),
        "img/folder.png": ("rejected", "not_a_file", "folder"),
        "img/scan.tiff": ("rejected", "unsupported_type", "convert it to PNG"),
        "img/notes.txt": ("skipped", "not_an_image", ""),
        "img/bomb.png": ("rejected", "too_large", "400000000 pixels"),
        "labels.csv": ("skipped", "not_an_image", ""),
    }
    for path, (status, reason, detail) in expected.items():
        assert (report[path]["status"], report[path]["reason"]) == (status, reason), path
        assert detail in report[path]["detail"], path
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.name != "img"}
    assert set(report) == on_disk  # every path, once (label rows for them add no second row)
    assert res.n_accepted == 4 and res.rejected["too_large"] == 1


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    from heroportraits.data.images import load_image

    ramp = np.repeat(np.linspace(0, 65535, 64)[None, :], 64, axis=0)  # black -> white, left to right
    img = load_image(png16(tmp_path / "ramp.png", ramp))
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert img[0, 0, 0] == 0 and img[0, -1, 0] == 255
    np.testing.assert_allclose(img[0, :, 0], np.round(ramp[0] / 257), atol=1)  # a ramp, not a silhouette
    assert len(np.unique(img)) > 32


def test_sixteen_bit_pixel_art_is_accepted_at_its_true_scale(project_root, tmp_path):
    rng = np.random.default_rng(3)
    (tmp_path / "in" / "mage").mkdir(parents=True)
    for i in range(3):  # 16x16 native art stored x4, in 16-bit greyscale
        png16(tmp_path / "in" / "mage" / f"{i}.png", nearest_upscale(rng.integers(0, 65536, (16, 16, 1)), 4)[..., 0])
    res = prepare_dataset(tmp_path / "in", "grey16", auto_palette=False, progress=False)
    assert res.n_accepted == 3 and res.native_scale == 4
    report = read_report("grey16")
    assert (report.loc[report["status"] == "accepted", "scale"] == "4").all()


def test_jpeg_exif_orientation_is_applied(tmp_path):
    from heroportraits.data.images import load_image

    art = np.zeros((32, 64, 3), np.uint8)
    art[:, :32] = (250, 250, 250)  # wide: white left half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(art).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    img = load_image(tmp_path / "rotated.jpg")
    assert img.shape[:2] == (64, 32)  # displayed upright: tall
    assert img[:28].mean() > 200 and img[36:].mean() < 50  # the white half is now on top


@pytest.mark.parametrize(
    "content,expect",
    [
        ("file,hero_class\nimg/000.png,mage\u00e9\n".encode("latin-1"), "not a UTF-8 text CSV"),
        ("file,hero_class\nimg/000.png,mage\n".encode("utf-16"), "it is UTF-16"),
        (bytes(range(256)) * 4, "not a UTF-8 text CSV"),
        (b"file,hero_class,hero_class\nimg/000.png,mage,rogue\n", "names column(s) ['hero_class'] more than once"),
    ],
    ids=["latin-1", "utf-16", "binary", "repeated-column"],
)
def test_bad_label_files_name_the_file(project_root, tmp_path, content, expect):
    labelled_folder(tmp_path / "in", {"hero_class": ["mage"]}, n=2)
    bad = tmp_path / "labels_bad.csv"
    bad.write_bytes(content)
    with pytest.raises(PrepareError, match=re.escape(expect)) as e:
        prepare_dataset(tmp_path / "in", "badcsv", labels_csv=bad, progress=False)
    assert str(bad) in str(e.value)


def test_labels_option_given_a_folder_is_a_clear_error(project_root, tmp_path, capsys):
    labelled_folder(tmp_path / "in", {"hero_class": ["mage"]}, n=2)
    argv = ["prepare", "--input", str(tmp_path / "in"), "--name", "x", "--labels", str(tmp_path / "in")]
    assert cli.main(argv) == 2
    assert f"labels file {tmp_path / 'in'} is a folder" in capsys.readouterr().err


def test_value_slips_are_accepted_but_flagged(project_root, tmp_path, capsys):
    rows = labelled_folder(tmp_path / "in", {"gender": ["masculine", "feminine"], "hero_class": ["mage"]}, n=12)
    rows[0]["gender"] = "MASCULINE"  # a case-only twin of masculine
    rows[1]["hero_class"] = "mgae"  # a typo with one image
    write_csv(tmp_path / "in" / "labels.csv", rows)
    assert cli.main(["prepare", "--input", str(tmp_path / "in"), "--name", "slips", "--no-auto-palette"]) == 0
    out = capsys.readouterr().out
    assert "gender: masculine 5, feminine 6, MASCULINE 1" in out or "MASCULINE 1" in out  # every value, counted
    assert "check: gender values 'MASCULINE' (1), 'masculine' (5) differ only in case" in out
    assert "check: hero_class='mgae' has only 1 image(s)" in out
    assert "check: gender='MASCULINE' has only 1 image(s)" in out
    assert read_prepare_meta("slips")["checks"] and read_prepare_meta("slips")["counts"]["accepted"] == 12
    # With the allowed values given, the slips are bad labels instead, and no check is needed.
    values = {"gender": ["masculine", "feminine"], "hero_class": ["mage"]}
    res = prepare_dataset(tmp_path / "in", "slips2", values=values, auto_palette=False, progress=False)
    assert res.rejected == {"bad_label": 2} and res.checks == []


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    from heroportraits.data.images import MAX_PIXELS, ImageTooLarge, load_image

    side = int(MAX_PIXELS**0.5) + 1  # just over our limit, under PIL's own bomb check
    with pytest.raises(ImageTooLarge, match=f"is {side}x{side}: more than"):
        load_image(png_bomb(tmp_path / "big.png", side))
