"""The evaluation verbs: evaluate and headgear."""

from __future__ import annotations

import argparse
from pathlib import Path

from heroportraits.cli import options
from heroportraits.data.dataset import read_meta
from heroportraits.data.images import save_png
from heroportraits.evaluation import evaluate
from heroportraits.evaluation.headgear import evaluate_headgear, same_noise_grid, scores_frame, shares_frame
from heroportraits.evaluation.scores import MIN_IMAGES, EvaluationError
from heroportraits.paths import write_json
from heroportraits.training.checkpoint import resolve_checkpoint_path
from heroportraits.training.config import DRAW_FLAGS


def add_evaluate(sub) -> None:
    p = options.add_verb(sub, "evaluate", _run_evaluate)
    p.add_argument("checkpoint", nargs="?", help="checkpoint file or run folder (uses its last.pt)")
    p.add_argument("--images", metavar="DIR", help="evaluate a folder of PNGs + labels.csv instead of a checkpoint")
    p.add_argument("--dataset", help="dataset name or path (default: the checkpoint's; required with --images)")
    options.add_count(p, "--n", 2000, "samples to draw from the checkpoint", low=MIN_IMAGES)
    options.add_seed(p, "noise, condition and KID-subset seed")
    options.add_count(p, "--subsets", 100, "KID subsets")
    p.add_argument("--no-floor", action="store_true", help="skip the real TRAIN vs VAL floor")
    p.add_argument("--retrain-judge", action="store_true", help="retrain the judge even if a valid cache exists")
    options.add_drawing_options(p)
    options.add_device(p)


def _run_evaluate(args: argparse.Namespace) -> None:
    """Score a checkpoint or a folder of portraits (FD, KID, precision/recall, conditioning, pixel art, memorisation).

    Score generated portraits against the dataset's real VAL split in the feature space of a judge trained on
    its TRAIN split (cached as data/<name>/judge.pt), beside the floor (real TRAIN vs VAL). Prints the table,
    then writes <checkpoint stem>.eval.json and .nn.png next to the checkpoint, or eval.json and
    nearest_neighbours.png into --images DIR.
    """
    if bool(args.checkpoint) == bool(args.images):
        raise EvaluationError("give either a CHECKPOINT or --images DIR (not both)")
    for name in options.drawing_changes(args) if args.images else ():
        raise EvaluationError(
            f"{DRAW_FLAGS[name]} changes how a checkpoint draws; a folder of --images is scored as it is"
        )
    if args.images:
        if not args.dataset:
            raise EvaluationError("--images needs --dataset NAME (the dataset the images should resemble)")
        folder = Path(args.images)
        # Read the folder before anything slow, so a missing labels.csv fails in a second, not after judge training.
        meta = read_meta(args.dataset)
        images, rows = evaluate.read_image_folder(folder, int(meta["resolution"]), alpha=bool(meta.get("alpha")))
        seconds = evaluate.ready_judge(args.dataset, args.retrain_judge, True)
        source = {"images": str(folder)}
        ev = evaluate.score(
            images, rows, args.dataset, source, args.subsets, args.seed, not args.no_floor, seconds, True
        )
        outputs = (folder / "eval.json", folder / "nearest_neighbours.png")
    else:
        ev = evaluate.evaluate_checkpoint(
            args.checkpoint,
            args.n,
            args.seed,
            args.subsets,
            not args.no_floor,
            args.dataset,
            args.device,
            write=False,
            retrain_judge=args.retrain_judge,
            draw=options.drawing_changes(args),
        )
        outputs = evaluate.checkpoint_outputs(Path(ev.results["checkpoint"]))
    # The table first: a folder that cannot be written must not cost the scores.
    print(ev.table())
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in ev.seconds.items()))
    problems = evaluate.write_evaluation(ev, *outputs)
    written = [str(p) for p in (ev.json_path, ev.nn_path) if p is not None]
    if written:
        print(f"wrote {' and '.join(written)}")
    for problem in problems:
        print(f"could not write {problem}; the table above is the whole result")


def add_headgear(sub) -> None:
    p = options.add_verb(sub, "headgear", _run_headgear)
    p.add_argument("checkpoint", help="a run folder or .pt file")
    p.add_argument(
        "--noises", type=options.at_least(1), default=300, help="noises, each drawn under every class (default 300)"
    )
    options.add_drawing_options(p, best_of=False)  # each noise is kept under every class: best of R does not apply
    options.add_seed(p, "noise and conditions")
    options.add_quiet(p)


def _run_headgear(args: argparse.Namespace) -> None:
    """Does the class change the headgear? (LPC data).

    Draw the same noise under every class and read each portrait's head item with a judge trained on the
    dataset's recorded head items (LPC composer data only); writes headgear.json and a same-noise grid
    headgear.png (rows: noises, columns: classes) beside the checkpoint.
    """
    path = resolve_checkpoint_path(args.checkpoint)
    result = evaluate_headgear(
        path, args.noises, args.seed, progress=not args.quiet, draw=options.drawing_changes(args)
    )
    scores = result["scores"]
    out = path.parent / "headgear.json"
    write_json(out, scores)
    save_png(same_noise_grid(result["images"]), path.parent / "headgear.png")
    print(f"headgear judge accuracy on VAL: {scores['judge_accuracy']:.3f}")
    print(scores_frame(scores).round(3).to_string())
    print("kinds per class (model):")
    print(shares_frame(scores, scores["classes"]).round(2).to_string())
    print(f"wrote {out} and {path.parent / 'headgear.png'}")


def add_verbs(sub) -> None:
    add_evaluate(sub)
    add_headgear(sub)
