"""Datasets with alpha: the mask of transparent PNGs kept through prepare and build as channel 4 of images.npy
(binary, cropped and resized with the colours), the RGB still the composite that RGB datasets hold, and the
composers (procedural, LPC) writing RGBA portraits on request with the colours they draw without it."""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from heroportraits.cli.data import add_lpc, add_procedural
from heroportraits.data import procedural as P
from heroportraits.data import procedural_parts as pp
from heroportraits.data.build import build_dataset
from heroportraits.data.dataset import DatasetError, has_alpha, limit_images, load_dataset, read_images, read_meta
from heroportraits.data.images import (
    flatten_alpha,
    has_transparency,
    load_image,
    load_image_rgba,
    make_grid,
    nearest_upscale,
    save_png,
    to_resolution,
)
from heroportraits.data.prepare import prepare_dataset, read_prepare_meta

BACKGROUND = (10, 20, 30)
NATIVE = 16
YY, XX = np.mgrid[:NATIVE, :NATIVE] + 0.5


def disc_rgba(rng: np.random.Generator, radius: float) -> np.ndarray:
    """(16, 16, 4) native pixel art: a disc of random colours on a transparent ground whose RGB is junk
    (magenta), with one half-transparent pixel either side of the 128 threshold inside the disc."""
    inside = (XX - 8) ** 2 + (YY - 8) ** 2 <= radius**2
    rgba = np.zeros((NATIVE, NATIVE, 4), np.uint8)
    rgba[..., :3] = (255, 0, 255)
    rgba[inside, :3] = rng.integers(0, 256, (int(inside.sum()), 3))
    rgba[inside, 3] = 255
    rgba[8, 8, 3], rgba[8, 9, 3] = 200, 100  # -> figure, background once binary
    return rgba


def write_rgba_folder(folder: Path, n: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """n PNGs with labels.csv: transparent discs (every other one stored 2x upscaled), one fully opaque RGBA
    and one JPEG. Returns file -> the native RGBA each one shows (alpha 255 where the file has none)."""
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    natives, rows = {}, []
    for i in range(n):
        native = disc_rgba(rng, radius=4.0 + (i % 4))
        rel = f"img/{i:02d}.png"
        if i == n - 2:  # fully opaque, still an RGBA file
            native[..., 3] = 255
        if i == n - 1:  # a JPEG has no alpha: flat colour blocks survive its compression well enough
            native = np.dstack(
                [nearest_upscale(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), 4), np.full((16, 16), 255, np.uint8)]
            )
            rel = f"img/{i:02d}.jpg"
            Image.fromarray(nearest_upscale(native[..., :3], 4)).save(folder / rel, quality=98)
        else:
            Image.fromarray(nearest_upscale(native, 2 if i % 2 else 1), "RGBA").save(folder / rel)
        natives[rel] = native
        rows.append({"file": rel, "kind": ["round", "wide"][i % 2]})
    with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["file", "kind"])
        w.writeheader()
        w.writerows(rows)
    return natives


@pytest.fixture
def alpha_dataset(project_root, tmp_path):
    natives = write_rgba_folder(tmp_path / "in")
    prepared = prepare_dataset(tmp_path / "in", "rgba", attributes="kind", background=BACKGROUND, progress=False)
    build_dataset("rgba", val_fraction=0.25, progress=False, plot=False)
    return natives, prepared


# -------------------------------------------------------------- images
def test_reading_keeps_alpha_and_resizing_never_premultiplies(tmp_path):
    rgba = disc_rgba(np.random.default_rng(1), 5.0)
    save_png(rgba, tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").mode == "RGBA"
    back = load_image_rgba(tmp_path / "a.png")
    assert back.shape == (16, 16, 4) and np.array_equal(back, rgba) and has_transparency(back)
    assert np.array_equal(load_image(tmp_path / "a.png", BACKGROUND), flatten_alpha(rgba, BACKGROUND))
    Image.fromarray(rgba[..., :3]).convert("RGB").save(tmp_path / "b.jpg")
    assert load_image_rgba(tmp_path / "b.jpg")[..., 3].min() == 255 and not has_transparency(
        load_image_rgba(tmp_path / "b.jpg")
    )
    # Shrinking (box) works on the colours and the mask apart: PIL's RGBA resize would darken the colours
    big = np.random.default_rng(2).integers(0, 256, (100, 100, 4), dtype=np.uint8)
    small, _ = to_resolution(big, 64)
    assert small.shape == (64, 64, 4)
    assert np.array_equal(small[..., :3], to_resolution(big[..., :3], 64)[0])
    grid = make_grid(np.stack([rgba, rgba]), nrow=2)
    assert grid.shape[-1] == 4 and grid[0, 0, 3] == 255  # padding is opaque


# -------------------------------------------------------------- prepare and build
def test_prepare_and_build_keep_a_binary_mask_of_the_source_shape(alpha_dataset, project_root):
    natives, prepared = alpha_dataset
    meta = read_prepare_meta("rgba")
    assert meta["alpha"] == {"kept": True, "images_with_alpha": 10}
    assert prepared.n_alpha == 10 and "alpha kept: 10 of 12 images have transparency" in prepared.summary()
    images = np.load(project_root / "data/rgba/images.npy")
    assert images.shape[1:] == (64, 64, 4) and set(np.unique(images[..., 3])) <= {0, 255}
    assert read_meta("rgba")["alpha"] is True
    with open(project_root / "data/rgba/labels.csv", encoding="utf-8") as f:
        files = [r["file"] for r in csv.DictReader(f)]
    assert len(files) == 12
    for img, rel in zip(images, files):
        native = natives[rel]
        mask = nearest_upscale(np.where(native[..., 3:] >= 128, 255, 0).astype(np.uint8), 4)[..., 0]
        assert np.array_equal(img[..., 3], mask), rel  # the disc survives the 2x storage and the resize to 64
        if rel.endswith(".png"):  # the RGB is the composite over the background, as an RGB dataset holds
            assert np.array_equal(img[..., :3], nearest_upscale(flatten_alpha(native, BACKGROUND), 4)), rel
    # The colours are what every reader sees by default
    rgb = read_images(project_root / "data/rgba/images.npy")
    assert rgb.shape[-1] == 3 and np.array_equal(rgb, images[..., :3])
    assert has_alpha(read_images(project_root / "data/rgba/images.npy", alpha=True))


def test_an_rgb_folder_still_gives_three_channels_and_no_alpha(project_root, tmp_path):
    natives = write_rgba_folder(tmp_path / "in")
    for rel, native in natives.items():  # the same folder, every image opaque RGB
        if rel.endswith(".png"):
            Image.fromarray(flatten_alpha(native, BACKGROUND)).save(tmp_path / "in" / rel)
    res = prepare_dataset(tmp_path / "in", "rgb", attributes="kind", progress=False)
    build_dataset("rgb", val_fraction=0.25, progress=False, plot=False)
    assert res.n_alpha == 0 and "alpha" not in res.summary()
    assert read_prepare_meta("rgb")["alpha"] == {"kept": False, "images_with_alpha": 0}
    assert np.load(project_root / "data/rgb/prepared/images.npy").shape[1:] == (64, 64, 3)
    assert np.load(project_root / "data/rgb/images.npy").shape[1:] == (64, 64, 3)
    assert read_meta("rgb")["alpha"] is False
    data = load_dataset("rgb", split=None)
    assert data.alpha is None and data.images.shape[1] == 3
    with pytest.raises(DatasetError, match="rgb has no alpha: model.alpha needs portraits with transparency") as e:
        data.with_alpha_channel()
    assert "\n" not in str(e.value)


def test_portrait_data_carries_the_mask(alpha_dataset):
    data = load_dataset("rgba", split=None)
    n = len(data)
    assert data.images.shape == (n, 3, 64, 64) and data.alpha.shape == (n, 1, 64, 64)
    assert data.alpha.dtype == torch.uint8 and set(data.alpha.unique().tolist()) == {0, 255}
    rgba = data.with_alpha_channel()
    assert rgba.images.shape == (n, 4, 64, 64) and rgba.alpha is None
    assert torch.equal(rgba.images[:, 3:], data.alpha) and torch.equal(rgba.images[:, :3], data.images)
    x, y = rgba.batch(torch.tensor([0, 1]))
    assert x.shape == (2, 4, 64, 64) and x.min() >= -1 and x.max() <= 1 and y.shape[0] == 2
    assert data.to("cpu").alpha is not None
    few = limit_images(data, 4)
    assert len(few) == 4 and few.alpha.shape == (4, 1, 64, 64)
    index = [data.files.index(f) for f in few.files]
    assert torch.equal(few.alpha, data.alpha[index]) and torch.equal(few.images, data.images[index])
    train = load_dataset("rgba", "train")
    assert train.alpha.shape[0] == len(train)


def test_read_images_names_both_shapes(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((2, 8, 8, 2), np.uint8))
    with pytest.raises(DatasetError, match=r"\(N, H, W, 3 or 4\)"):
        read_images(tmp_path / "bad.npy")


# -------------------------------------------------------------- procedural
def test_the_canvas_figure_is_everything_painted_after_the_background():
    cv = pp.Canvas((0, 0, 0))
    cv.background(np.zeros((pp.N, pp.N), int), [(50, 60, 70)])
    assert not cv.figure.any()
    disc = cv.shape(pp.ellipse(16, 16, 5, 5), ((1, 1, 1), (2, 2, 2), (3, 3, 3)))
    cv.decal(pp.px((0, 0)), (9, 9, 9))  # a decal on the backdrop is painted too
    assert np.array_equal(cv.figure, disc | pp.px((0, 0)))


def test_procedural_alpha_is_the_backdrop_and_the_colours_do_not_change():
    plain, rows = P.generate_portraits(8, seed=5, progress=False, workers=1)
    rgba, rows_a = P.generate_portraits(8, seed=5, progress=False, workers=1, alpha=True)
    assert rgba.shape == (8, 64, 64, 4) and rows == rows_a
    assert np.array_equal(rgba[..., :3], plain)  # the same draws, the same colours
    a = rgba[..., 3]
    assert set(np.unique(a)) == {0, 255}
    assert (a[:, :2, :2] == 0).all() and (a[:, :2, -2:] == 0).all()  # the top corners are backdrop
    assert (a[:, 28:32, 30:34] == 255).all()  # the middle of the face is the figure
    for img in rgba:  # where alpha is 0 only the backdrop's ramp shows: at most 3 colours
        assert len(np.unique(img[img[..., 3] == 0, :3], axis=0)) <= 3
    native, _ = P.draw_portrait_with_variant(np.random.default_rng(0), "feminine", "mage", "cool", alpha=True)
    assert native.shape == (32, 32, 4)


def test_procedural_folder_with_alpha_builds_an_rgba_dataset(project_root, tmp_path):
    parser = argparse.ArgumentParser()
    add_procedural(parser.add_subparsers())
    args = parser.parse_args(
        ["procedural", "--n", "12", "--seed", "2", "--out", str(tmp_path / "src"), "--alpha", "--quiet"]
    )
    args.func(args)
    out = tmp_path / "src"
    assert json.loads((out / "source.json").read_text())["alpha"] is True
    with Image.open(out / "images" / "00000.png") as im:
        assert im.mode == "RGBA"
    assert parser.parse_args(["procedural"]).alpha is False
    prepared = prepare_dataset(out, "proc", progress=False)
    assert prepared.n_alpha == 12
    build_dataset("proc", val_fraction=0.25, progress=False, plot=False)
    data = load_dataset("proc", split=None)
    assert data.alpha is not None and data.with_alpha_channel().images.shape == (len(data), 4, 64, 64)
    background = data.alpha.expand_as(data.images) == 0
    assert (data.images[background] == 0).all()  # flattened onto prepare's background (black)


# -------------------------------------------------------------- LPC
REPO = Path(__file__).resolve().parents[1]
ART_CANDIDATES = [Path(p) for p in [os.environ.get("HEROPORTRAITS_LPC_ART")] if p] + [
    REPO.parent / "shared" / "lpc-art"
]
ART_DIR = next((p for p in ART_CANDIDATES if (p / "body" / "male").is_dir()), None)


@pytest.mark.skipif(ART_DIR is None, reason="LPC art not found at $HEROPORTRAITS_LPC_ART or <repo>/../shared/lpc-art")
def test_lpc_alpha_is_the_union_of_the_layers():
    from heroportraits.data.lpc import Background, Layer, LPCArt, RecipeChoice, compose_portrait

    art = LPCArt(ART_DIR)
    body, hair = Layer("body/male/light.png"), Layer("hair/male/xlong/redhead.png")
    choice = RecipeChoice(
        "warrior", "male", "t", {"hair": [hair], "body": [body]}, background=Background((90, 90, 90), (40, 40, 40))
    )
    plain, rgba = compose_portrait(art, choice), compose_portrait(art, choice, alpha=True)
    assert rgba.shape == (64, 64, 4) and np.array_equal(rgba[..., :3], plain)
    union = (np.round(art.crop(body)[..., 3] * 255) >= 128) | (np.round(art.crop(hair)[..., 3] * 255) >= 128)
    assert np.array_equal(rgba[..., 3], nearest_upscale(np.where(union, 255, 0).astype(np.uint8)[..., None], 2)[..., 0])
    assert rgba[0, 0, 3] == 0 and 0 < (rgba[..., 3] == 255).mean() < 1
    parser = argparse.ArgumentParser()
    add_lpc(parser.add_subparsers())
    assert parser.parse_args(["lpc", "--art", str(ART_DIR), "--alpha"]).alpha is True
