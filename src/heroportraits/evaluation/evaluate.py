"""Offline evaluation end to end: a checkpoint (drawn as asked) or a folder of portraits, scored beside the
floor, written as <stem>.eval.json and a figure of the closest pairs.

    python -m heroportraits evaluate artifacts_gan/checkpoints/demo/last.pt --n 2000
    python -m heroportraits evaluate --images samples/ --dataset procedural

The scores themselves are scores.py's; the tables report.py's.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from heroportraits.data.dataset import read_labels_csv
from heroportraits.data.images import load_image, load_image_rgba, to_resolution
from heroportraits.evaluation.figures import plot_nearest_neighbours
from heroportraits.evaluation.judge import load_or_train_judge
from heroportraits.evaluation.masks import mask_scores, split_alpha
from heroportraits.evaluation.report import format_table, metrics_frame, per_value_frame
from heroportraits.evaluation.scores import EvaluationError, evaluate_images, floor, reference
from heroportraits.paths import required_file
from heroportraits.sampling.sampler import Drawing, Sampler
from heroportraits.training.checkpoint import resolve_checkpoint_path


# ---------------------------------------------------------------- folders
def read_image_folder(folder: str | Path, resolution: int = 64, alpha: bool = False) -> tuple[np.ndarray, list[dict]]:
    """A folder of PNGs + labels.csv (`file` + attribute columns) -> (images (N, R, R, 3), rows).

    `alpha` (the dataset has masks): (N, R, R, 4), each PNG's colours as stored and its alpha (255 where it has
    none), so an RGBA model's `sample` folder scores as its checkpoint does, masks included."""
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
        img = load_image_rgba(path) if alpha else load_image(path)
        images.append(img if img.shape[:2] == (resolution, resolution) else to_resolution(img, resolution)[0])
    return np.stack(images), [{k: v for k, v in r.items() if k != "file"} for r in rows]


# ---------------------------------------------------------------- a checkpoint, end to end
@dataclass
class Evaluation:
    """What `evaluate_checkpoint` / the CLI produce: scores, floor, the images scored and where they went."""

    results: dict
    floor: dict | None
    images: np.ndarray  # (N, H, W, 3) uint8, the images that were scored
    rows: list[dict]  # the label rows they were drawn under (attribute -> value)
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


def score(
    images, rows, dataset: str, source: dict, n_subsets: int, seed: int, with_floor: bool, seconds: dict, progress: bool
) -> Evaluation:
    """Scores and floor; `source` says what was scored (a checkpoint, its step and drawing, or a folder).
    RGBA portraits: the colours are scored as any portrait's, the mask apart (results["mask"])."""
    t = time.time()
    images, alpha = split_alpha(images)
    results = {**source, **evaluate_images(images, rows, dataset, n_subsets=n_subsets, seed=seed, progress=progress)}
    if alpha is not None:
        results["mask"] = mask_scores(alpha, dataset)
    seconds["scores"] = round(time.time() - t, 2)
    t = time.time()
    fl = floor(dataset, len(images), n_subsets=n_subsets, seed=seed, progress=progress) if with_floor else None
    seconds["floor"] = round(time.time() - t, 2)
    results["seconds"] = seconds
    return Evaluation(results, fl, images, rows, seconds=seconds)


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


def ready_judge(dataset: str, retrain: bool, progress: bool) -> dict:
    """Load (or train, first time) the dataset's judge and embed VAL; seconds each took."""
    t = time.time()
    load_or_train_judge(dataset, retrain=retrain, progress=progress)
    t2 = time.time()
    reference(dataset, progress=progress)
    return {"judge": round(t2 - t, 2), "reference": round(time.time() - t2, 2)}


def evaluate_sampler(
    sampler: Sampler,
    n: int = 2000,
    seed: int = 0,
    n_subsets: int = 100,
    with_floor: bool = True,
    dataset: str | None = None,
    retrain_judge: bool = False,
    progress: bool = True,
    source: dict | None = None,
) -> Evaluation:
    """Draw n portraits as `sampler` draws them and score them: conditions from the training label mix (never
    "unspecified", so conditioning is measured even for models trained with attribute dropout). The results
    record the drawing they scored (`drawing`) beside `source` (what was scored) and the step."""
    dataset = dataset or sampler.dataset_name
    seconds = ready_judge(dataset, retrain_judge, progress)
    t = time.time()
    images, rows = sampler.generate(n, seed=seed, open_attributes="mix")
    seconds["generate"] = round(time.time() - t, 2)
    source = {**(source or {}), "step": sampler.step, "drawing": sampler.drawing.record()}
    if sampler.last_palette_check is not None:  # what the palette check redrew (sampling/palette_check.py)
        source["palette_check"] = sampler.last_palette_check
    ev = score(images, rows, dataset, source, n_subsets, seed, with_floor, seconds, progress)
    if sampler.drawing.palette:  # what the user's palette costs: the same noise drawn without it, scored alike
        with sampler.drawn_with(sampler.drawing.changed(palette="", dither=False)):
            plain, _ = sampler.generate(n, seed=seed, open_attributes="mix")
        without = evaluate_images(
            split_alpha(plain)[0], rows, dataset, n_subsets=n_subsets, seed=seed, memorisation=False, progress=False
        )
        ev.results["without_palette"] = {k: without[k] for k in PALETTE_COST_KEYS}
    return ev


# The scores `evaluate` gives again without the user's palette, so its cost can be read (results["without_palette"]).
PALETTE_COST_KEYS = ("fd", "precision", "recall", "cond_acc", "pixel_art", "detail")


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
    draw: Drawing = None,
) -> Evaluation:
    """Draw n portraits from a checkpoint's EMA generator and score them (the `evaluate` verb).

    `draw`: how the portraits are drawn (None = the run's default drawing, what `sample` draws; a
    DrawOptions, or a mapping of the fields to change; sampling/sampler.py). With `write`, saves
    `<stem>.eval.json` and `<stem>.nn.png` (closest pairs) next to the checkpoint (a file
    that cannot be written is named in a warning; the returned scores are complete).
    """
    ckpt = resolve_checkpoint_path(checkpoint)
    sampler = Sampler.from_checkpoint(ckpt, device, draw)
    ev = evaluate_sampler(
        sampler, n, seed, n_subsets, with_floor, dataset, retrain_judge, progress, {"checkpoint": str(ckpt)}
    )
    for problem in write_evaluation(ev, *checkpoint_outputs(ckpt)) if write else []:
        print(f"warning: could not write {problem}")
    return ev
