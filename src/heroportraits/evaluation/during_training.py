"""Scores while a run trains: what `train()` calls every `train.eval_every` steps for eval.jsonl and best.pt.

Training knows nothing of judges or samplers (imports point down the pipeline), so whoever wants a run scored
while it trains hands `train()` a scorer: the `train` verb, the study runner and notebook 03 pass a
`TrainTimeScorer`. It draws `train.eval_samples` portraits from the checkpoint being written, conditions
from the training label mix, seed 0 (so successive evaluations differ only by the weights), and scores FD and
conditional accuracy with the dataset's judge (`scores.quick_fd`).

What it draws is a stated choice: G's portraits in the run's colours (the `draw` section's quantisation and
merge) without D's guidance (no best-of, no refinement; `DrawOptions.unguided`), as the sample grids written
while training show them. So train-time FD and the choice of best.pt follow the generator itself, at one G pass
a portrait; `evaluate` scores the run's full default drawing.
"""

from __future__ import annotations

import torch

from heroportraits.evaluation.masks import split_alpha
from heroportraits.evaluation.scores import quick_fd, reference
from heroportraits.sampling.sampler import Sampler
from heroportraits.training.config import Config


class TrainTimeScorer:
    """FD and conditional accuracy of a run's EMA generator while it trains (see the module docstring)."""

    def __init__(self, dataset: str):
        self.dataset = str(dataset)

    def prepare(self, progress: bool = True) -> None:
        """Load (or train once and cache) the dataset's judge and embed its VAL split before the progress bar
        starts, so the first evaluation does not stall it; fails early if the dataset has no VAL split."""
        with torch.random.fork_rng(devices=[]):  # training a judge reseeds the global RNG
            reference(self.dataset, progress=progress)

    def __call__(self, state: dict, n: int, device: torch.device | str = "cpu") -> dict:
        """Scores of n portraits from the checkpoint dict `state` -> a flat dict (fd, cond_acc, cond_acc_<a>,
        n, drawing) that appends to eval.jsonl."""
        drawing = Config.from_dict(state["config"]).draw.unguided()
        sampler = Sampler(state, device, drawing)
        images, rows = sampler.generate(n, seed=0, open_attributes="mix")
        images = split_alpha(images)[0]  # an RGBA model's colours (its mask is scored by `evaluate`)
        return {**quick_fd(images, rows, self.dataset, n=n), "drawing": sampler.describe_drawing()}
