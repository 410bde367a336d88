"""Offline evaluation: is a set of generated portraits good, and how far from perfect?

    python -m heroportraits evaluate artifacts_gan/checkpoints/demo/last.pt --n 2000
    python -m heroportraits evaluate --images samples/ --dataset procedural

Every feature-space score uses the dataset's own judge (judge.py) against the real
VAL split; the judge's VAL accuracy is printed beside the scores that depend on it.
The floor (`floor`) scores n real TRAIN images the same way, so a reader knows what
"perfect" looks like at this sample size (FD and KID are biased by n).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from heroportraits.data.attributes import Vocabulary
from heroportraits.data.dataset import load_dataset, read_labels_csv
from heroportraits.data.images import load_image, to_resolution
from heroportraits.errors import HeroError
from heroportraits.evaluation import metrics as M
from heroportraits.evaluation.figures import plot_nearest_neighbours
from heroportraits.evaluation.judge import Judge, describe_accuracy, load_or_train_judge
from heroportraits.paths import dataset_dir, required_file, write_json

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
    precision, recall = M.precision_recall(ref.val_feats, feats, k=k)
    density, coverage = M.density_coverage(ref.val_feats, feats, k=k_dc)
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
        "intra_fd": _intra_class_fd(feats, core["preds"], core["labels"], ref),
        "pixel_art": {
            "native_scale": ref.native_scale,
            **{m: {"generated": pixel[m], "real": real_pixel[m]} for m in pixel},
        },
        "memorisation": _memorisation(images, ref) if memorisation else None,
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
    if key not in stored["entries"]:
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


# ---------------------------------------------------------------- folders
def read_image_folder(folder: str | Path, resolution: int = 64) -> tuple[np.ndarray, list[dict]]:
    """A folder of PNGs + labels.csv (`file` + attribute columns) -> (images (N, R, R, 3), rows)."""
    folder = Path(folder)
    how = f"it needs a `file` column and one per attribute (`python -m heroportraits sample CHECKPOINT --out {folder}`)"
    labels_path = required_file(folder / "labels.csv", EvaluationError, how)
    rows = read_labels_csv(labels_path)
    if not rows or "file" not in rows[0]:
        raise EvaluationError(f"{labels_path} needs a `file` column and at least one row")
    images = []
    for r in rows:
        path = folder / r["file"]
        if not path.exists():
            raise EvaluationError(f"{labels_path} lists {r['file']!r} but {path} does not exist")
        img = load_image(path)
        images.append(img if img.shape[:2] == (resolution, resolution) else to_resolution(img, resolution)[0])
    return np.stack(images), [{k: v for k, v in r.items() if k != "file"} for r in rows]


# ---------------------------------------------------------------- reporting
def _f(x, fmt: str = "{:.3f}") -> str:
    return "-" if x is None else fmt.format(x)


def _get(d, *path):
    """d[path[0]][path[1]]..., or None where any step is missing (e.g. no floor)."""
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _scaled(x, factor: float = 1e3):
    return None if x is None else x * factor


# Section titles of the text table, by the `group` column of metrics_frame.
GROUP_TITLES = {
    "distribution": None,
    "conditional accuracy": "conditional accuracy (judge prediction = condition)",
    "pixel art": "pixel-art fidelity (native scale {k}; floor = real TRAIN)",
    "memorisation": "memorisation (nearest TRAIN image; {space}; floor = VAL vs TRAIN)",
}


def _row(group: str, metric: str, gen, flo, note: str = "", fmt: str = "{:.3f}") -> tuple:
    return group, metric, gen, flo, note, fmt


def _metric_rows(results: dict, floor: dict | None) -> list[tuple]:
    """(group, metric, generated, floor, note, format) for every score but the per-value ones."""
    fl = floor or {}
    return _feature_rows(results, fl) + _pixel_art_rows(results, fl) + _memorisation_rows(results, fl)


def _feature_rows(results: dict, fl: dict) -> list[tuple]:
    """Scores in the judge's feature space: distribution distances and conditional accuracy."""
    j, kid, d = results["judge"], results["kid"], "distribution"
    rows = [
        _row(d, "FD (judge features)  lower=better", results["fd"], fl.get("fd"),
             f"judge joint acc {j['joint_accuracy']:.3f}", "{:.2f}"),
        _row(d, "KID x1000  lower=better", kid["mean"] * 1e3, _scaled(_get(fl, "kid", "mean")),
             f"{kid['subsets']} subsets of {kid['subset_size']}", "{:.2f}"),
        _row(d, "KID x1000 std", kid["std"] * 1e3, _scaled(_get(fl, "kid", "std")), "across subsets", "{:.2f}"),
        _row(d, f"precision (k={results['k']})  fidelity", results["precision"], fl.get("precision")),
        _row(d, f"recall (k={results['k']})  diversity", results["recall"], fl.get("recall")),
        _row(d, f"density (k={results['k_dc']})", results["density"], fl.get("density"), "~1 for matching sets"),
        _row(d, f"coverage (k={results['k_dc']})", results["coverage"], fl.get("coverage")),
    ]  # fmt: skip
    for a, v in results["cond_acc"].items():
        note = f"judge VAL acc {j['accuracy'].get(a, j['joint_accuracy']):.3f}"
        rows.append(_row("conditional accuracy", a, v, _get(fl, "cond_acc", a), note))
    return rows


def _pixel_art_rows(results: dict, fl: dict) -> list[tuple]:
    px, k = results["pixel_art"], results["pixel_art"]["native_scale"]
    names = {
        "distinct_colours": ("distinct colours / image", "{:.1f}"),
        "block_uniformity": (f"one-colour {k}x{k} blocks", "{:.3f}"),
        "edge_sharpness": ("edge sharpness (top-10% step)", "{:.1f}"),
        "sharp_transitions": ("sharp share of colour steps", "{:.3f}"),
    }
    return [
        _row("pixel art", label, px[m]["generated"], _get(fl, "pixel_art", m, "generated"),
             f"real VAL {_f(px[m]['real'], fmt)}", fmt)
        for m, (label, fmt) in names.items()
    ]  # fmt: skip


def _memorisation_rows(results: dict, fl: dict) -> list[tuple]:
    mem = results.get("memorisation")
    if not mem:
        return []
    flagged = f"flagged (<= VAL p{mem['threshold_percentile']:g} = {mem['threshold']:.2f})"
    return [
        _row("memorisation", "median nearest-neighbour distance", mem["median_nn"], mem["val_median_nn"],
             "larger = further from TRAIN", "{:.2f}"),
        _row("memorisation", flagged, mem["flagged_share"], _get(fl, "memorisation", "flagged_share"),
             f"{mem['flagged']} images; exact copies are distance 0", "{:.1%}"),
    ]  # fmt: skip


def metrics_frame(results: dict, floor: dict | None = None) -> pd.DataFrame:
    """One row per score: group, generated, floor (real TRAIN scored the same way; NaN without one), note.
    Indexed by the metric's label; the per-value scores are in `per_value_frame`."""
    rows = _metric_rows(results, floor)
    frame = pd.DataFrame([r[:5] for r in rows], columns=["group", "metric", "generated", "floor", "note"])
    return frame.set_index("metric").astype({"generated": float, "floor": float})


def per_value_frame(results: dict, floor: dict | None = None) -> pd.DataFrame:
    """One row per (attribute, value): how many generated / real VAL images have it, intra-class FD
    (generated vs real VAL with that value) and the share the judge reads as that value, with floors."""
    records = []
    for a, values in results["intra_fd"].items():
        for value, r in values.items():
            fl = _get(floor or {}, "intra_fd", a, value) or {}
            records.append(
                {
                    "attribute": a,
                    "value": value,
                    "n": r["n"],
                    "n_real": r["n_real"],
                    "fd": r["fd"],
                    "fd_floor": fl.get("fd"),
                    "cond_acc": r.get("cond_acc"),
                    "cond_acc_floor": fl.get("cond_acc"),
                    "judge_acc": results["judge"]["accuracy"].get(a),
                }
            )
    frame = pd.DataFrame.from_records(records).set_index(["attribute", "value"])
    return frame.astype({c: float for c in ("fd", "fd_floor", "cond_acc", "cond_acc_floor", "judge_acc")})


def format_table(results: dict, floor: dict | None = None) -> str:
    """A plain-text table of metrics_frame and per_value_frame: generated | floor | note."""
    j = results["judge"]
    lines = [
        f"Evaluation of {results['n']} images against dataset {results['dataset']!r} (real VAL n={results['n_val']})",
        f"Feature space: judge penultimate layer ({j['feature_dim']}-d). "
        f"Judge VAL accuracy: {describe_accuracy(j['accuracy'], j['joint_accuracy'])}",
        "",
        f"{'metric':<36}{'generated':>16}{'floor':>16}   note",
        "-" * 88,
    ]
    titles = {
        g: t and t.format(k=results["pixel_art"]["native_scale"], space=_get(results, "memorisation", "space"))
        for g, t in GROUP_TITLES.items()
    }
    group = "distribution"
    for g, metric, gen, flo, note, fmt in _metric_rows(results, floor):
        if g != group:
            if group == "conditional accuracy":  # per-value FD goes between conditioning and pixel art
                lines += _per_value_lines(results, floor)
            group = g
            lines.append(titles[g])
        label = metric if g == "distribution" else f"  {metric}"
        lines.append(f"{label:<36}{_f(gen, fmt):>16}{_f(flo, fmt):>16}   {note}")
    if floor:
        lines.append(f"floor: {floor['n']} real TRAIN images with their true labels, scored the same way")
    return "\n".join(lines)


def _per_value_lines(results: dict, floor: dict | None) -> list[str]:
    lines = ["intra-class FD (generated with value vs real VAL with value)"]
    for (a, value), r in per_value_frame(results, floor).iterrows():
        note = f"n={r['n']:.0f} vs {r['n_real']:.0f} real; judge {a} acc {r['judge_acc']:.3f}"
        fd, fd_floor = (None if np.isnan(x) else x for x in (r["fd"], r["fd_floor"]))
        lines.append(f"{'  ' + a + '=' + value:<36}{_f(fd, '{:.2f}'):>16}{_f(fd_floor, '{:.2f}'):>16}   {note}")
    return lines


# ---------------------------------------------------------------- a checkpoint, end to end
@dataclass
class Evaluation:
    """What `evaluate_checkpoint` / the CLI produce: scores, floor, the images scored and where they went."""

    results: dict
    floor: dict | None
    images: np.ndarray  # (N, H, W, 3) uint8, the images that were scored
    json_path: Path | None = None
    nn_path: Path | None = None
    seconds: dict = field(
        default_factory=dict
    )  # judge (training it, the first time), reference, generate, scores, floor

    def table(self) -> str:
        return format_table(self.results, self.floor)

    def metrics(self) -> pd.DataFrame:
        """Every score beside its floor (see metrics_frame)."""
        return metrics_frame(self.results, self.floor)

    def per_value(self) -> pd.DataFrame:
        """Scores per attribute value (see per_value_frame)."""
        return per_value_frame(self.results, self.floor)


def _score(
    images, rows, dataset: str, source: dict, n_subsets: int, seed: int, with_floor: bool, seconds: dict, progress: bool
) -> Evaluation:
    """Scores and floor; `source` says what was scored (a checkpoint and step, or a folder)."""
    t = time.time()
    results = {**source, **evaluate_images(images, rows, dataset, n_subsets=n_subsets, seed=seed, progress=progress)}
    seconds["scores"] = round(time.time() - t, 2)
    t = time.time()
    fl = floor(dataset, len(images), n_subsets=n_subsets, seed=seed, progress=progress) if with_floor else None
    seconds["floor"] = round(time.time() - t, 2)
    results["seconds"] = seconds
    return Evaluation(results, fl, images, seconds=seconds)


def write_evaluation(ev: Evaluation, out_json: Path, out_png: Path) -> list[str]:
    """The scores as JSON and the closest pairs as a figure. Each file that cannot be written (a
    read-only folder, a full disk) is skipped and named in the returned list; the scores stay in `ev`."""
    problems = []
    try:
        out_json.write_text(json.dumps({"results": ev.results, "floor": ev.floor}, indent=1))
        ev.json_path = out_json
    except OSError as e:
        problems.append(f"{out_json} ({e.strerror or e})")
    try:
        train_images = reference(ev.results["dataset"], progress=False).train_images
        plot_nearest_neighbours(ev.images, train_images, ev.results["memorisation"], out_png)
        ev.nn_path = out_png
    except OSError as e:
        problems.append(f"{out_png} ({e.strerror or e})")
    return problems


def checkpoint_outputs(checkpoint: Path) -> tuple[Path, Path]:
    """Where a checkpoint's evaluation goes: <stem>.eval.json and <stem>.nn.png beside it."""
    return checkpoint.with_name(checkpoint.stem + ".eval.json"), checkpoint.with_name(checkpoint.stem + ".nn.png")


def _ready_judge(dataset: str, retrain: bool, progress: bool) -> dict:
    """Load (or train, first time) the dataset's judge and embed VAL; seconds each took."""
    t = time.time()
    load_or_train_judge(dataset, retrain=retrain, progress=progress)
    t2 = time.time()
    reference(dataset, progress=progress)
    return {"judge": round(t2 - t, 2), "reference": round(time.time() - t2, 2)}


def evaluate_checkpoint(
    checkpoint: str | Path,
    n: int = 2000,
    seed: int = 0,
    n_subsets: int = 100,
    with_floor: bool = True,
    dataset: str | None = None,
    device: str = "cpu",
    write: bool = True,
    retrain_judge: bool = False,
    progress: bool = True,
    palette_merge: float | None = None,
    rgb_colours: int | None = None,
    best_of: int | None = None,
    refine: int | None = None,
    refine_realness: float | None = None,
    refine_head: float | None = None,
) -> Evaluation:
    """Draw n portraits from a checkpoint's EMA generator and score them (the `evaluate` verb).

    Conditions follow the training label mix (never "unspecified"), so conditioning is
    measured even for models trained with attribute dropout. With `write`, saves
    `<stem>.eval.json` and `<stem>.nn.png` (closest pairs) next to the checkpoint (a file
    that cannot be written is named in a warning; the returned scores are complete).
    `palette_merge` and `rgb_colours` override the model's model.palette_merge / model.rgb_colours
    (None = the model's own); `best_of` > 1 keeps the best of that many candidates a portrait, `refine` > 0 moves
    each portrait's noise that many steps as D's classifier asks, with `refine_realness` x D's score and
    `refine_head` x its head classifier beside it (selection.py; None = the model's own).
    """
    from heroportraits.models.palette_output import colour_settings
    from heroportraits.sampling.sampler import Sampler
    from heroportraits.training.checkpoint import resolve_checkpoint_path

    ckpt = resolve_checkpoint_path(checkpoint)
    sampler = Sampler.from_checkpoint(
        ckpt, device, palette_merge, rgb_colours, best_of, refine, refine_realness, refine_head
    )
    dataset = dataset or sampler.dataset_name
    seconds = _ready_judge(dataset, retrain_judge, progress)
    t = time.time()
    images, rows = sampler.generate(n, seed=seed, open_attributes="mix")
    seconds["generate"] = round(time.time() - t, 2)
    source = {"checkpoint": str(ckpt), "step": sampler.step}
    # what the scores were drawn with
    source.update(colour_settings(sampler.config.model), **sampler.guidance_settings())
    ev = _score(images, rows, dataset, source, n_subsets, seed, with_floor, seconds, progress)
    for problem in write_evaluation(ev, *checkpoint_outputs(ckpt)) if write else []:
        print(f"warning: could not write {problem}")
    return ev
