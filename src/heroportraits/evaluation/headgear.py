"""Does the class change the headgear? A judge of head items, and what it reads off the same noise.

    python -m heroportraits headgear artifacts_gan/checkpoints/RUN [--noises 300]

Issue 11 asks that, with the same noise, grids that change the class change the headgear; a class
judge alone cannot say so, since a model can name the class by its colours and collars and leave
the head as the noise drew it. The LPC composer records each portrait's head item
(`data/sources/<name>/labels.csv`, column `headgear`), so a second judge learns the item's kind
from the image (`HEADGEAR_KINDS`, on the dataset's TRAIN split, measured on VAL) and reads it off
generated portraits: the same noise under every class, the other attributes as the training mix
drew them. Each score stands beside what real portraits give:
  * **class from headgear**: the class named by the head item alone (the real portraits' most
    likely class for that kind), right how often: real VAL gives the ceiling, 1/C is chance;
  * **changes with class**: the share of noises whose head item is not the same under every class;
    for real portraits, the chance that one portrait drawn from each class does not share one kind;
  * **distance**: total variation between each class's kinds on generated and real portraits;
and the share of portraits read as bare-headed (a model that draws no head items).
The judge's readings are used on both sides, so its errors count on both.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from heroportraits.data.attributes import Vocabulary
from heroportraits.data.dataset import PortraitData, dataset_fingerprint, load_dataset, read_labels_csv, read_meta
from heroportraits.data.images import make_grid
from heroportraits.errors import HeroError
from heroportraits.evaluation.judge import (
    Judge,
    JudgeConfig,
    JudgeError,
    cache_judge,
    load_judge,
    train_judge_on,
)
from heroportraits.evaluation.masks import split_alpha
from heroportraits.paths import dataset_dir, project_root
from heroportraits.sampling.sampler import Drawing, Sampler

HEADGEAR = "headgear"
HEADGEAR_KINDS = ("bare", "bandana", "cap", "helmet", "chain hood", "cloth hood", "tiara")
BARE = HEADGEAR_KINDS.index("bare")
HEADGEAR_JUDGE_FILE = "headgear_judge.pt"
CLASS = "hero_class"


class HeadgearError(HeroError):
    """A dataset with no record of its head items, or a model without a class to change."""


def headgear_kind(item: str) -> str:
    """The kind of one LPC head item path ('head/helms/male/metal_helm_male.png#tint=red' -> 'helmet')."""
    item = item.strip()
    if item in ("", "none"):
        return "bare"
    parts = item.split("#")[0].split("/")
    folder = parts[1] if len(parts) > 1 and parts[0] == "head" else parts[0]
    if folder.startswith("hoods"):
        return "chain hood" if "chain" in parts[-1] else "cloth hood"
    for kind, prefix in (("bandana", "bandanas"), ("cap", "caps"), ("helmet", "helms"), ("tiara", "tiaras")):
        if folder.startswith(prefix):
            return kind
    raise HeadgearError(f"head item {item!r} is of no known kind {list(HEADGEAR_KINDS)}; add its folder here")


def _source_labels(name: str) -> dict[str, str]:
    """file -> head item, from the labels.csv of the folder the dataset was prepared from."""
    folder = dataset_dir(name)
    meta = read_meta(folder)
    source = meta.get("source", {}).get("input_dir")
    path = (project_root() / source / "labels.csv") if source else None
    if path is None or not path.exists():
        raise HeadgearError(
            f"{folder}: no source labels.csv with a {HEADGEAR!r} column (dataset.json source.input_dir "
            f"{source!r}); headgear is read on datasets the LPC composer made (`python -m heroportraits lpc`)"
        )
    rows = read_labels_csv(path)
    if not rows or HEADGEAR not in rows[0]:
        raise HeadgearError(f"{path} has no {HEADGEAR!r} column; compose the data with `python -m heroportraits lpc`")
    return {r["file"]: str(r[HEADGEAR]) for r in rows}


def headgear_split(name: str, split: str) -> PortraitData:
    """One split of the dataset labelled with its head items' kinds (vocabulary {'headgear': KINDS})."""
    data = load_dataset(name, split)
    items = _source_labels(name)
    missing = [f for f in data.files if f not in items]
    if missing:
        raise HeadgearError(f"{len(missing)} {split} portraits (e.g. {missing[0]}) have no head item in the source")
    vocab = Vocabulary({HEADGEAR: list(HEADGEAR_KINDS)})
    kinds = torch.tensor([[HEADGEAR_KINDS.index(headgear_kind(items[f]))] for f in data.files], dtype=torch.long)
    return PortraitData(data.images, kinds, vocab, data.meta, data.files)


def headgear_judge(name: str, cfg: JudgeConfig | None = None, retrain: bool = False, progress: bool = True) -> Judge:
    """The dataset's judge of head items: cached as data/<name>/headgear_judge.pt, retrained when the
    dataset changed or another `cfg` is asked for (None: any cached one)."""
    path = dataset_dir(name) / HEADGEAR_JUDGE_FILE
    if path.exists() and not retrain:
        try:
            judge = load_judge(path)
            if judge.fingerprint == dataset_fingerprint(name) and cfg in (None, judge.config):
                return judge
        except JudgeError:
            pass
    train, val = headgear_split(name, "train"), headgear_split(name, "val")
    judge = train_judge_on(train, val, cfg or JudgeConfig(), name, progress)
    cache_judge(judge, path)
    return judge


# ---------------------------------------------------------------- scores
def kind_shares(kinds: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, K) share of each kind within each class."""
    table = np.zeros((n_classes, len(HEADGEAR_KINDS)))
    np.add.at(table, (classes, kinds), 1.0)
    return table / np.maximum(table.sum(1, keepdims=True), 1.0)


def headgear_scores(fake_kinds: np.ndarray, real_kinds: np.ndarray, real_classes: np.ndarray) -> dict:
    """fake_kinds (N, C): the kind read off noise i under class c; real_kinds / real_classes (M,): real portraits.

    Returns each score for the model and for real portraits (see the module docstring) and each
    class's kind shares on both sides."""
    n, n_classes = fake_kinds.shape
    real = kind_shares(real_kinds, real_classes, n_classes)  # (C, K)
    fake = kind_shares(fake_kinds.reshape(-1), np.tile(np.arange(n_classes), n), n_classes)
    prior = np.bincount(real_classes, minlength=n_classes) / len(real_classes)
    names = (real * prior[:, None]).argmax(0)  # the class each kind names: argmax_c p(c | kind)
    same_all = (real.prod(0)).sum()  # one real portrait from each class, all of one kind
    return {
        "class_from_headgear": {
            "model": float((names[fake_kinds] == np.arange(n_classes)[None, :]).mean()),
            "real": float((names[real_kinds] == real_classes).mean()),
            "chance": float(prior.max()),
        },
        "changes_with_class": {
            "model": float((fake_kinds != fake_kinds[:, :1]).any(1).mean()),
            "real": float(1.0 - same_all),
        },
        "pairs_differ": {
            "model": float(np.mean([(fake_kinds[:, a] != fake_kinds[:, b]).mean() for a, b in _pairs(n_classes)])),
            "real": float(np.mean([1.0 - real[a] @ real[b] for a, b in _pairs(n_classes)])),
        },
        "distance": {"model": float(0.5 * np.abs(fake - real).sum(1).mean()), "real": 0.0},
        "bare": {"model": float((fake_kinds == BARE).mean()), "real": float((real_kinds == BARE).mean())},
        "shares": {"model": fake.tolist(), "real": real.tolist()},
    }


def _pairs(n: int) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(n), 2))


def scores_frame(scores: dict) -> pd.DataFrame:
    """The scores as a table: model, real portraits, chance."""
    rows = [
        ("class named by the headgear alone", scores["class_from_headgear"]),
        ("noises whose headgear changes with the class", scores["changes_with_class"]),
        ("class pairs whose headgear differs", scores["pairs_differ"]),
        ("distance of each class's kinds from real (TV)", scores["distance"]),
        ("portraits read as bare-headed", scores["bare"]),
    ]
    return pd.DataFrame(
        [{"score": s, "model": d["model"], "real": d["real"], "chance": d.get("chance", np.nan)} for s, d in rows]
    ).set_index("score")


def shares_frame(scores: dict, classes: list[str], side: str = "model") -> pd.DataFrame:
    """Each class's kind shares on one side ('model' or 'real')."""
    return pd.DataFrame(scores["shares"][side], index=classes, columns=list(HEADGEAR_KINDS))


# ---------------------------------------------------------------- a model
def same_noise_under_classes(sampler, n_noises: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """(N, C, 64, 64, 3) portraits: noise i under every class, its other attributes from the training mix."""
    if CLASS not in sampler.cvocab.names:
        raise HeadgearError(f"this model is not conditioned on {CLASS!r}; there is no class to change")
    classes = sampler.vocab.attributes[CLASS]
    col = sampler.vocab.names.index(CLASS)
    rows = sampler.draw_conditions(n_noises, seed=seed)  # (N, A)
    z = sampler.noise(n_noises, seed)
    labels = rows.repeat_interleave(len(classes), 0)
    labels[:, col] = torch.arange(len(classes)).repeat(n_noises)
    images = split_alpha(sampler.generate_from_noise(z.repeat_interleave(len(classes), 0), labels))[0]
    return images.reshape(n_noises, len(classes), *images.shape[1:]), classes


def evaluate_headgear(
    checkpoint: str | Path, n_noises: int = 300, seed: int = 0, progress: bool = True, draw: Drawing = None
) -> dict:
    """The scores of a checkpoint against its dataset's real VAL portraits, and the portraits read. `draw`: how
    the portraits are drawn (None = the run's default drawing; a DrawOptions or a mapping of fields to change,
    e.g. {"refine_steps": 5}); best of R does not apply (each noise is kept under every class)."""
    sampler = Sampler.from_checkpoint(checkpoint, draw=draw)
    judge = headgear_judge(sampler.dataset_name, progress=progress)
    images, classes = same_noise_under_classes(sampler, n_noises, seed)
    fake = judge.predict(images.reshape(-1, *images.shape[2:]))[:, 0].reshape(n_noises, len(classes))
    val = load_dataset(sampler.dataset_name, "val")
    real_kinds = judge.predict(val.images)[:, 0]
    real_classes = val.labels[:, val.vocab.names.index(CLASS)].numpy()
    scores = headgear_scores(fake, real_kinds, real_classes)
    scores.update(
        classes=classes,
        n_noises=n_noises,
        seed=seed,
        judge_accuracy=judge.accuracy[HEADGEAR],
        drawing=sampler.drawing.changed(best_of=1, palette_check=0).record(),  # what it applies: each noise kept
        step=sampler.step,
    )
    return {"scores": scores, "images": images, "kinds": fake}


def same_noise_grid(images: np.ndarray, rows: int = 8) -> np.ndarray:
    """The first `rows` noises, one per row, each class a column."""
    n, c = images.shape[:2]
    return make_grid(images[: min(rows, n)].reshape(-1, *images.shape[2:]), nrow=c)
