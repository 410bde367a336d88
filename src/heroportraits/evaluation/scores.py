"""The scores: generated portraits (uint8 arrays with their label rows) against a dataset's real VAL split.

Every feature-space score uses the dataset's own judge (judge.py) against the real VAL split. The floor
(`floor`) scores n real TRAIN images the same way, so a reader knows what "perfect" looks like at this
sample size (FD and KID are biased by n). `quick_fd` is the cheap subset that training logs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from heroportraits.data.attributes import Vocabulary
from heroportraits.data.dataset import load_dataset
from heroportraits.data.face_regions import FaceBox, face_box
from heroportraits.data.palette_labels import agreement, label_palette, rules_reading
from heroportraits.errors import HeroError
from heroportraits.evaluation import metrics as M
from heroportraits.evaluation.judge import Judge, load_or_train_judge
from heroportraits.paths import dataset_dir, write_json

MIN_IMAGES = 10  # fewer generated images than this: no evaluation (FD needs a covariance)


MIN_CLASS = 10  # fewer samples of one attribute value than this: no intra-class FD


MEMO_PERCENTILE = 1.0  # flag generated images nearer to TRAIN than this percentile of VAL->TRAIN


MEMO_SPACE = "pixels: RMS difference per channel value (0-255)"


class EvaluationError(HeroError):
    """Images or labels that cannot be evaluated; the message names the fix."""


# ---------------------------------------------------------------- the real side, cached per process
@dataclass
class Reference:
    """The real data a dataset's scores are measured against, embedded once per process."""

    name: str
    judge: Judge
    native_scale: int
    val_images: np.ndarray  # (V, H, W, 3) uint8
    val_labels: np.ndarray  # (V, A) value indices
    val_feats: np.ndarray  # (V, D) judge features
    val_mu: np.ndarray  # (D,)
    val_sigma: np.ndarray  # (D, D)
    train_images: np.ndarray  # (T, H, W, 3) uint8
    train_labels: np.ndarray  # (T, A)
    face: FaceBox | None = None  # where the dataset's faces are (data/face_regions.py), if its source knows
    palette_rules: dict = field(default_factory=dict)  # how the palette rules read this dataset (rules_reading)
    _cache: dict = field(default_factory=dict)

    @property
    def vocab(self) -> Vocabulary:
        return self.judge.vocab

    def val_to_train(self) -> tuple[np.ndarray, np.ndarray]:
        """Nearest TRAIN image (index, pixel distance) of every VAL image: the memorisation yardstick."""
        if "v2t" not in self._cache:
            self._cache["v2t"] = M.nearest_neighbours(self.val_images, self.train_images)
        return self._cache["v2t"]

    def pixel_art(self) -> dict[str, float]:
        if "pixel" not in self._cache:
            self._cache["pixel"] = _pixel_art_means(self.val_images, self.native_scale)
        return self._cache["pixel"]

    def patterns(self, region: str) -> np.ndarray:
        """VAL's neighbourhood patterns over the whole portrait or the face ("whole" / "face")."""
        if ("patterns", region) not in self._cache:
            self._cache["patterns", region] = _patterns(self.val_images, self.native_scale, self.region(region))
        return self._cache["patterns", region]

    def region(self, name: str) -> FaceBox | None:
        return self.face if name == "face" else None

    def face_features(self) -> tuple[np.ndarray, np.ndarray]:
        """Judge features of VAL with everything outside the face box grey, and their mean and covariance."""
        if "face_feats" not in self._cache:
            feats, _ = self.judge.embed(face_only(self.val_images, self.face))
            self._cache["face_feats"] = M.gaussian_stats(feats)
        return self._cache["face_feats"]


_REFERENCES: dict[tuple, Reference] = {}


def reference(dataset_name: str | Path, progress: bool = True) -> Reference:
    """The dataset's judge, VAL features and TRAIN images; built once per process."""
    judge = load_or_train_judge(dataset_name, progress=progress)
    key = (str(dataset_dir(dataset_name).resolve()), judge.fingerprint, id(judge))
    if key not in _REFERENCES:
        train, val = load_dataset(dataset_name, "train"), load_dataset(dataset_name, "val")
        val_images = val.images.permute(0, 2, 3, 1).numpy()
        val_feats, _ = judge.embed(val_images)
        _REFERENCES[key] = Reference(
            str(dataset_name),
            judge,
            val.native_scale,
            val_images,
            val.labels.numpy(),
            val_feats,
            *M.gaussian_stats(val_feats),
            train.images.permute(0, 2, 3, 1).numpy(),
            train.labels.numpy(),
            face_box(val.meta),
            rules_reading(val.meta),
        )
    return _REFERENCES[key]


# ---------------------------------------------------------------- labels
def encode_rows(rows: list[dict], vocab: Vocabulary) -> np.ndarray:
    """Label rows (attribute -> value; extra keys such as 'file' ignored) -> (N, A) indices."""
    return np.array([vocab.encode({n: str(r.get(n, "any")) for n in vocab.names}) for r in rows], np.int64).reshape(
        len(rows), len(vocab.names)
    )


def _check_images(images: np.ndarray, rows: list[dict], ref: Reference) -> np.ndarray:
    images = np.asarray(images)
    res = ref.val_images.shape[1]
    if images.ndim != 4 or images.shape[1:] != (res, res, 3) or images.dtype != np.uint8:
        raise EvaluationError(
            f"expected uint8 images shaped (N, {res}, {res}, 3) like dataset {ref.name!r}, "
            f"got {images.dtype} {images.shape}"
        )
    if len(rows) != len(images):
        raise EvaluationError(f"{len(rows)} label rows for {len(images)} images")
    if len(images) < MIN_IMAGES:
        raise EvaluationError(f"need at least {MIN_IMAGES} images to evaluate, got {len(images)}")
    return images


# ---------------------------------------------------------------- the scores
def _pixel_art_means(images: np.ndarray, k: int) -> dict[str, float]:
    return {
        "distinct_colours": float(M.distinct_colours(images).mean()),
        "block_uniformity": float(M.block_uniformity(images, k).mean()) if k > 1 else None,
        "edge_sharpness": float(M.edge_sharpness(images).mean()),
        "sharp_transitions": float(M.sharp_transition_ratio(images).mean()),
    }


def _patterns(images: np.ndarray, k: int, box: FaceBox | None = None) -> np.ndarray:
    """Neighbourhood patterns of every inner native pixel of the images, or of their `box` region alone."""
    if box is not None:
        x0, y0, x1, y1 = box
        images = images[:, y0:y1, x0:x1]
    return M.neighbourhood_patterns(M.native_pixels(images, k))


def face_only(images: np.ndarray, box: FaceBox) -> np.ndarray:
    """The images with everything outside the face box mid-grey: what the judge sees for the face's FD."""
    x0, y0, x1, y1 = box
    out = np.full_like(images, 128)
    out[:, y0:y1, x0:x1] = images[:, y0:y1, x0:x1]
    return out


def _detail(images: np.ndarray, ref: Reference) -> dict:
    """The detail score on the native grid: how far the generated neighbourhood patterns (which of a pixel's 8
    neighbours share its colour) are from real VAL's (total variation, 0 = the same local structure), and the
    share of isolated native pixels (a colour no neighbour has: speckle); for the whole portrait and, where the
    dataset knows its faces, the face alone, with the face's FD (judge features, outside the face grey)."""
    out = {}
    for region in ("whole", "face") if ref.face is not None else ("whole",):
        generated, real = _patterns(images, ref.native_scale, ref.region(region)), ref.patterns(region)
        out[region] = {
            "pattern_distance": M.pattern_distance(M.pattern_histogram(generated), M.pattern_histogram(real)),
            "isolated_share": {
                "generated": float(M.isolated_share(generated).mean()),
                "real": float(M.isolated_share(real).mean()),
            },
        }
    if ref.face is not None:
        feats, _ = ref.judge.embed(face_only(images, ref.face))
        out["face"]["fd"] = M.frechet_distance(*M.gaussian_stats(feats), *ref.face_features())
        out["face"]["box"] = list(ref.face)
    return out


def _palette_by_rules(images: np.ndarray, labels: np.ndarray, ref: Reference) -> dict | None:
    """The asked palette against the palette the labelling rules read from each portrait (rows that ask one).

    Where the dataset's palette labels are the rules' reading, this is the quantity the judge's palette
    accuracy estimates, without the judge's own error (its ceiling below 1); where labels were given, the
    floor (real TRAIN read the same way) says how far the rules agree with them."""
    if "palette" not in ref.vocab.names:
        return None
    a, values = ref.vocab.names.index("palette"), ref.vocab.attributes["palette"]
    asked = np.flatnonzero(labels[:, a] < ref.vocab.unspecified_index("palette"))
    backdrop = tuple(ref.palette_rules.get("backdrop", (0, 0, 0)))
    read = [label_palette(images[i], backdrop) for i in asked]
    result = agreement([values[labels[i, a]] for i in asked], read, values).to_json()
    return {**result, "labels_by_rules": bool(ref.palette_rules.get("labels_by_rules"))}


def _memorisation_summary(dist: np.ndarray, ref: Reference, space: str = MEMO_SPACE) -> dict:
    """How many of these nearest-TRAIN distances fall at or below VAL's p1 distance to TRAIN."""
    _, val_dist = ref.val_to_train()
    threshold = float(np.percentile(val_dist, MEMO_PERCENTILE))
    flagged = np.flatnonzero(dist <= threshold)  # <=: exact copies flagged even at threshold 0
    return {
        "space": space,
        "threshold": threshold,
        "threshold_percentile": MEMO_PERCENTILE,
        "flagged": int(len(flagged)),
        "flagged_share": float(len(flagged) / len(dist)),
        "flagged_indices": flagged[:1000].tolist(),
        "median_nn": float(np.median(dist)),
        "val_median_nn": float(np.median(val_dist)),
    }


def _memorisation(images: np.ndarray, ref: Reference, n_closest: int = 16) -> dict:
    idx, dist = M.nearest_neighbours(images, ref.train_images)
    order = np.argsort(dist, kind="stable")[:n_closest]
    return {
        **_memorisation_summary(dist, ref),
        "closest": [{"index": int(i), "train_index": int(idx[i]), "distance": float(dist[i])} for i in order],
    }


def _fd_and_conditioning(images: np.ndarray, label_rows: list[dict], ref: Reference) -> dict:
    """The two scores every evaluation starts from (FD against VAL, the judge's conditional
    accuracy), plus the features, predictions and labels the other scores reuse."""
    images = _check_images(images, label_rows, ref)
    labels = encode_rows(label_rows, ref.vocab)  # (N, A)
    feats, preds = ref.judge.embed(images)  # (N, D), (N, A)
    unspecified = [ref.vocab.unspecified_index(n) for n in ref.vocab.names]
    return {
        "images": images,
        "labels": labels,
        "feats": feats,
        "preds": preds,
        "fd": M.frechet_distance(*M.gaussian_stats(feats), ref.val_mu, ref.val_sigma),
        "cond_acc": M.conditional_accuracy(preds, labels, ref.vocab.names, unspecified),
    }


def _intra_class_fd(
    feats: np.ndarray, preds: np.ndarray, labels: np.ndarray, ref: Reference
) -> dict[str, dict[str, dict]]:
    """Per attribute value: FD of the generated images with it against real VAL images with it, and
    the share of those generated images the judge reads as that value (conditional accuracy per value)."""
    intra: dict[str, dict[str, dict]] = {}
    for a, name in enumerate(ref.vocab.names):
        intra[name] = {}
        for v, value in enumerate(ref.vocab.attributes[name]):
            mine = labels[:, a] == v
            fake, real = feats[mine], ref.val_feats[ref.val_labels[:, a] == v]
            ok = len(fake) >= MIN_CLASS and len(real) >= MIN_CLASS
            intra[name][value] = {
                "fd": M.fd_from_features(fake, real) if ok else None,
                "n": int(len(fake)),
                "n_real": int(len(real)),
                "cond_acc": float((preds[mine, a] == v).mean()) if mine.any() else None,
            }
    return intra


def evaluate_images(
    images: np.ndarray,
    label_rows: list[dict],
    dataset_name: str,
    n_subsets: int = 100,
    seed: int = 0,
    k: int = 3,
    k_dc: int = 5,
    memorisation: bool = True,
    progress: bool = True,
) -> dict:
    """Every score for uint8 images (N, H, W, 3) conditioned on `label_rows`, against real VAL."""
    if n_subsets < 1:
        raise EvaluationError(f"n_subsets={n_subsets}: KID needs at least one subset (100 is typical)")
    ref = reference(dataset_name, progress=progress)
    core = _fd_and_conditioning(images, label_rows, ref)
    images, feats, judge = core["images"], core["feats"], ref.judge
    kid_mean, kid_std = M.kid(feats, ref.val_feats, n_subsets=n_subsets, seed=seed)
    precision = recall = density = coverage = None
    notes = []
    if len(ref.val_feats) > max(k, k_dc):  # k-NN radii need more real portraits than neighbours
        precision, recall = M.precision_recall(ref.val_feats, feats, k=k)
        density, coverage = M.density_coverage(ref.val_feats, feats, k=k_dc)
    else:
        notes.append(
            f"precision, recall, density and coverage need more than {max(k, k_dc)} real VAL portraits "
            f"(k-NN with k={k} and {k_dc}); {dataset_name!r} has {len(ref.val_feats)}: build it with more images"
        )
        if progress:
            print(f"note: {notes[-1]}")
    pixel = _pixel_art_means(images, ref.native_scale)
    real_pixel = ref.pixel_art()
    return {
        "dataset": str(dataset_name),
        "n": int(len(images)),
        "n_val": int(len(ref.val_feats)),
        "seed": seed,
        "judge": {
            "feature_dim": judge.feature_dim,
            "accuracy": dict(judge.accuracy),
            "joint_accuracy": judge.joint_accuracy,
            "fingerprint": judge.fingerprint,
        },
        "fd": core["fd"],
        "kid": {
            "mean": kid_mean,
            "std": kid_std,
            "subsets": n_subsets,
            "subset_size": M.kid_subset_size(len(feats), len(ref.val_feats)),
        },
        "precision": precision,
        "recall": recall,
        "density": density,
        "coverage": coverage,
        "k": k,
        "k_dc": k_dc,
        "cond_acc": core["cond_acc"],
        "palette_rules": _palette_by_rules(images, core["labels"], ref),
        "intra_fd": _intra_class_fd(feats, core["preds"], core["labels"], ref),
        "pixel_art": {
            "native_scale": ref.native_scale,
            **{m: {"generated": pixel[m], "real": real_pixel[m]} for m in pixel},
        },
        "detail": _detail(images, ref),
        "memorisation": _memorisation(images, ref) if memorisation else None,
        "notes": notes,
    }


# ---------------------------------------------------------------- the floor
_FLOORS: dict[tuple, dict] = {}


FLOOR_FILE = "judge_floor.json"


def floor(dataset_name: str, n: int, n_subsets: int = 100, seed: int = 0, k: int = 3, progress: bool = True) -> dict:
    """Every score for n real TRAIN images (with their true labels) against VAL: "perfect" at this n.

    Memorisation is the exception: TRAIN images are their own nearest neighbours, so the
    floor there is VAL against TRAIN (by construction ~1% flagged). Cached in memory and
    in `data/<name>/judge_floor.json`, keyed by the judge and the arguments.
    """
    ref = reference(dataset_name, progress=progress)
    n = min(n, len(ref.train_images))
    key = f"n={n},subsets={n_subsets},seed={seed},k={k}"
    stamp = f"{ref.judge.fingerprint}:{json.dumps(asdict(ref.judge.config), sort_keys=True)}:{ref.judge.accuracy}"
    mem_key = (str(dataset_dir(dataset_name).resolve()), stamp, key)
    if mem_key in _FLOORS:
        return _FLOORS[mem_key]
    path = dataset_dir(dataset_name) / FLOOR_FILE
    stored = json.loads(path.read_text()) if path.exists() else {}
    if stored.get("judge") != stamp:
        stored = {"judge": stamp, "entries": {}}
    if not {"detail", "palette_rules"} <= set(stored["entries"].get(key, {})):  # absent, or from before a score
        pick = np.sort(np.random.default_rng(seed).choice(len(ref.train_images), n, replace=False))
        rows = [ref.vocab.decode(r) for r in ref.train_labels[pick]]
        result = evaluate_images(
            ref.train_images[pick], rows, dataset_name, n_subsets, seed, k, memorisation=False, progress=progress
        )
        _, val_dist = ref.val_to_train()
        result["memorisation"] = _memorisation_summary(val_dist, ref, MEMO_SPACE + " (VAL images against TRAIN)")
        stored["entries"][key] = result
        try:
            write_json(path, stored)
        except OSError:
            pass  # a read-only dataset folder: keep the in-memory copy only
    _FLOORS[mem_key] = stored["entries"][key]
    return _FLOORS[mem_key]


# ---------------------------------------------------------------- during training
def quick_fd(images: np.ndarray, label_rows: list[dict], dataset_name: str, n: int = 500) -> dict:
    """FD and conditional accuracy on the first n images, in seconds: for logging while training.

    Flat keys (fd, cond_acc = joint, cond_acc_<attribute>) so the dict appends to a CSV/JSONL.
    FD on 500 samples is biased upwards; compare runs at the same n, not with `evaluate`.
    """
    ref = reference(dataset_name, progress=False)
    core = _fd_and_conditioning(np.asarray(images)[:n], list(label_rows)[:n], ref)
    acc = core["cond_acc"]
    return {
        "n": int(len(core["images"])),
        "fd": core["fd"],
        "cond_acc": acc["joint"],
        **{f"cond_acc_{a}": acc[a] for a in ref.vocab.names},
    }
