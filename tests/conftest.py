"""Shared fixtures: an isolated project root per test session, and tiny datasets in it."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
import torch

from heroportraits.data.attributes import DEFAULT_SCHEMA, Vocabulary
from heroportraits.data.dataset import write_dataset
from heroportraits.data.images import nearest_upscale


@pytest.fixture
def one_thread():
    """Tiny networks run faster on one thread, and do not fight other processes for the 2 cores
    (two threads on a busy CPU made some model tests 100x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_project_root(path):
    (path / "data").mkdir(parents=True, exist_ok=True)
    (path / "artifacts_gan" / "samples").mkdir(parents=True, exist_ok=True)
    (path / "artifacts_gan" / "checkpoints").mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def shared_project_root(tmp_path_factory, name: str):
    """A project root that paths.project_root() resolves to for a whole module (module-scoped fixtures)."""
    root = make_project_root(tmp_path_factory.mktemp(name))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEROPORTRAITS_ROOT", str(root))
        yield root


@pytest.fixture
def project_root(tmp_path, monkeypatch):
    """A fresh project root (data/, artifacts_gan/) that paths.project_root() resolves to."""
    root = make_project_root(tmp_path / "project")
    monkeypatch.setenv("HEROPORTRAITS_ROOT", str(root))
    return root


def synthetic_blocks_dataset(root, name="toy", n=96, seed=0, alpha=False):
    """A tiny final dataset with exact labels: colour = palette, shape = class, a stripe = gender.

    Drawn on a 32x32 grid and upscaled x2, like the real data. With `alpha`, RGBA: the class's block and the
    stripe are the figure (255), the rest the background (0).
    """
    rng = np.random.default_rng(seed)
    vocab = Vocabulary(DEFAULT_SCHEMA)
    colours = {
        "warm": (220, 80, 40),
        "cool": (40, 90, 220),
        "dark": (30, 30, 40),
        "neutral": (200, 200, 195),
        "muted": (130, 120, 140),
    }
    images, rows = [], []
    for i in range(n):
        g = vocab.attributes["gender"][i % 2]
        c = vocab.attributes["hero_class"][(i // 2) % 4]
        p = vocab.attributes["palette"][(i // 8) % 5]
        img = np.zeros((32, 32, 3), np.uint8) + np.array(colours[p], np.uint8)
        k = vocab.attributes["hero_class"].index(c)
        img[8 + 2 * k : 20 + 2 * k, 8:24] = (250, 250, 250) if k % 2 else (10, 10, 10)
        figure = np.zeros((32, 32), bool)
        figure[8 + 2 * k : 20 + 2 * k, 8:24] = True
        if g == "feminine":
            img[:, 2:4] = (255, 0, 255)
            figure[:, 2:4] = True
        img = np.clip(img.astype(int) + rng.integers(-6, 7, size=(1, 1, 3)), 0, 255).astype(np.uint8)
        if alpha:
            img = np.dstack([img, np.where(figure, 255, 0).astype(np.uint8)])
        images.append(nearest_upscale(img, 2))
        rows.append(
            {
                "file": f"toy/{i:04d}.png",
                "gender": g,
                "hero_class": c,
                "palette": p,
                "split": "val" if i % 8 == 7 else "train",
            }
        )
    meta = {
        "name": name,
        "native_scale": 2,
        "source": {"kind": "synthetic-test"},
        "splits": {"train": sum(r["split"] == "train" for r in rows), "val": sum(r["split"] == "val" for r in rows)},
    }
    return write_dataset(root / "data" / name, np.stack(images), rows, vocab, meta)


@pytest.fixture
def toy_dataset(project_root):
    synthetic_blocks_dataset(project_root)
    return "toy"


def synthetic_shapes_dataset(root, name="shapes", n=1000, seed=0, val_every=5, source=None):
    """A final dataset with real intra-class variety, for judge/metric tests: attribute `shape`
    (square, ring, cross) and `colour` (red, green, blue, yellow), at random positions and
    sizes on a two-tone background. Drawn on a 32x32 grid, upscaled x2 (native_scale 2)."""
    rng = np.random.default_rng(seed)
    shapes = ["square", "ring", "cross"]
    colours = {"red": (200, 40, 40), "green": (40, 170, 60), "blue": (50, 70, 210), "yellow": (220, 200, 40)}
    yy, xx = np.mgrid[:32, :32]
    images, rows = [], []
    for i in range(n):
        s, c = shapes[i % 3], list(colours)[(i // 3) % 4]
        img = np.zeros((32, 32, 3), np.uint8) + rng.integers(10, 90, 3).astype(np.uint8)
        img[yy > rng.integers(18, 30)] = rng.integers(60, 140, 3)  # ground line
        cy, cx, r = *rng.integers(10, 22, 2), rng.integers(5, 10)
        if s == "square":
            m = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
        elif s == "ring":
            m = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) & ((yy - cy) ** 2 + (xx - cx) ** 2 > (r - 3) ** 2)
        else:
            m = ((abs(yy - cy) <= r) & (abs(xx - cx) <= 1)) | ((abs(xx - cx) <= r) & (abs(yy - cy) <= 1))
        img[m] = np.clip(np.array(colours[c]) + rng.integers(-30, 31, 3), 0, 255)
        images.append(nearest_upscale(img, 2))
        rows.append(
            {
                "file": f"{name}/{i:05d}.png",
                "shape": s,
                "colour": c,
                "split": "val" if i % val_every == val_every - 1 else "train",
            }
        )
    vocab = Vocabulary({"shape": shapes, "colour": list(colours)})
    meta = {"name": name, "native_scale": 2, "source": source or {"kind": "synthetic-test"}}
    return write_dataset(root / "data" / name, np.stack(images), rows, vocab, meta)


@pytest.fixture(scope="session")
def smoke_checkpoint(tmp_path_factory):
    """Factory: a checkpoint of a 2-step smoke run on the toy dataset, per set of overrides,
    trained once per test session (in its own project root) and shared by the tests that only read it."""
    from heroportraits.training.loop import train
    from heroportraits.training.presets import resolve_config

    root = make_project_root(tmp_path_factory.mktemp("smoke_ckpt"))
    synthetic_blocks_dataset(root)
    made: dict[str, object] = {}

    def make(**overrides):
        key = repr(sorted(overrides.items()))
        if key not in made:
            cfg = resolve_config("smoke", {"train.steps": 2, "train.ema_start": 0, **overrides})
            threads = torch.get_num_threads()
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("HEROPORTRAITS_ROOT", str(root))
                torch.set_num_threads(1)
                try:
                    made[key] = train(cfg, "toy", f"run{len(made)}", progress=False).checkpoint
                finally:
                    torch.set_num_threads(threads)
        return made[key]

    return make
