"""Distilling a flow run into a few-step drawing (rectified flow's reflow, Liu et al. 2023).

A flow model drawn in few steps cuts corners: its paths from noise to portrait curve, so two Euler steps land far
from where sixteen do. Reflow straightens them. The teacher (`train.teacher`, a flow run of the same model settings)
draws `train.teacher_pairs` portraits once, at the start, with its own best drawing (Heun steps and guidance, as
`train.teacher_*` say); the student starts from the teacher's weights and learns the straight path from each noise
to the portrait the teacher drew from it (flow_trainer.FlowTrainer with paired batches). On straight paths a few
Euler steps with no guidance (one pass each) draw what the teacher's guided many-pass drawing draws.

With `train.teacher_palette_check` N, pairs whose portrait the palette rules read off its asked palette are drawn
again from new noise, up to N times, as the palette check redraws a drawing (models/palette_check.py): the student
learns paths that end in the asked palette, so a checked drawing of it redraws fewer portraits.

The pairs are drawn again, identically, whenever the run starts or resumes (seeded by train.seed and the rank), so
a checkpoint stays what it is for every family: networks, optimiser, RNG, step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from heroportraits.data.attributes import Vocabulary
from heroportraits.data.palette_labels import palette_check_refusal
from heroportraits.errors import HeroError
from heroportraits.models import build_generator, to_pixels
from heroportraits.models.config import DrawOptions, is_flow
from heroportraits.models.flow import GuidanceError
from heroportraits.models.palette_check import redraw_off_palette, round_seed
from heroportraits.progress import progress_bar
from heroportraits.training.checkpoint import (
    check_vocabulary,
    foreign_weights,
    load_checkpoint,
    resolve_checkpoint_path,
)
from heroportraits.training.config import Config
from heroportraits.training.distributed import unwrap

PAIR_BATCH = 256  # portraits the teacher draws at once


class TeacherError(HeroError):
    """A teacher that cannot teach this run: not a flow model, other model settings, other attributes."""


@dataclass(frozen=True)
class PairCheck:
    """How the teacher's pairs are checked (train.teacher_palette_check): read as a Sampler reads its portraits,
    at the output size and one pixel a native cell, by the rules that labelled the data's palettes."""

    rounds: int  # redraws at most
    column: int  # the palette's column among the conditioning attributes
    values: list[str]  # the palette values, in the vocabulary's order
    backdrop: tuple[int, int, int]  # what the rules read as background
    resolution: int  # the output size the portraits are read at

    @classmethod
    def of_run(cls, rounds: int, dataset: str, rules: dict, cvocab, resolution: int) -> PairCheck | None:
        """The check a run asks for, None for none; refused in one line where the palette check would be."""
        if not rounds:
            return None
        setting = ("train.teacher_palette_check", "--teacher-palette-check")
        refusal = palette_check_refusal(rounds, dataset, rules, "palette" in cvocab.names, setting)
        if refusal:
            raise TeacherError(refusal)
        values = list(cvocab.attributes["palette"])
        return cls(rounds, cvocab.names.index("palette"), values, tuple(rules["backdrop"]), resolution)


def load_teacher(cfg: Config, vocab: Vocabulary, resolution: int, device: torch.device, palette=None) -> nn.Module:
    """The teacher's EMA network on `device`, drawing as train.teacher_* say (raw portraits: no quantisation).

    Refused in one line when the checkpoint is no flow model, was trained with other model settings (the student
    starts from its weights), on other attributes, or on another grid, or cannot be guided (no attribute dropout)."""
    tc = cfg.train
    path = resolve_checkpoint_path(tc.teacher)
    state = load_checkpoint(path, map_location=device)
    taught = Config.from_dict(state["config"])
    if not is_flow(taught.model):
        raise TeacherError(f"train.teacher {path}: model.arch={taught.model.arch} is a GAN; a teacher is a flow run")
    differ = [k for k, v in vars(taught.model).items() if getattr(cfg.model, k) != v]
    if differ:
        shown = "; ".join(
            f"model.{k}: {getattr(taught.model, k)!r} there, {getattr(cfg.model, k)!r} here" for k in differ
        )
        raise TeacherError(
            f"train.teacher {path} has other model settings ({shown}): the student starts from its weights, so "
            f"distil with the teacher's (the `distil` verb copies them)"
        )
    check_vocabulary(state["vocab"], vocab.to_json(), path)
    if int(state["dataset"]["network_resolution"]) != resolution:
        raise TeacherError(
            f"train.teacher {path} draws on a {state['dataset']['network_resolution']}-pixel grid, this data on "
            f"{resolution}: distil on the dataset it was trained on ({state['dataset']['name']!r})"
        )
    if tc.teacher_guidance != 1.0 and taught.train.attr_dropout <= 0:
        raise TeacherError(
            f"train.teacher {path} was trained without attribute dropout, so it has no unconditional velocity to "
            f"guide with: set train.teacher_guidance=1"
        )
    teacher = build_generator(cfg.model, vocab, resolution, palette).to(device)
    with foreign_weights(path):
        teacher.load_state_dict(state["G_ema"])
    guided = tc.teacher_guidance != 1.0
    drawing = DrawOptions(
        flow_steps=tc.teacher_steps,
        flow_solver="heun",
        guidance=tc.teacher_guidance,
        guidance_until=tc.teacher_guidance_until if guided else 1.0,
        guidance_on=tc.teacher_guidance_on if guided else "",
        bf16=tc.amp,
    )
    try:
        teacher.use_drawing(drawing)
    except GuidanceError as e:  # named as the student's setting, not the drawing's
        said = str(e).replace("draw.guidance_on", "train.teacher_guidance_on", 1)
        raise TeacherError(said.replace("(--guidance-on)", "(--teacher-guidance-on)", 1)) from None
    return teacher.eval().requires_grad_(False)


def start_from_teacher(trainer, teacher: nn.Module) -> None:
    """The student's network and its EMA copy become the teacher's (the optimiser starts afresh)."""
    weights = teacher.state_dict()
    unwrap(trainer.G).load_state_dict(weights)
    trainer.G_ema.load_state_dict(weights)


@torch.no_grad()
def draw_pairs(
    teacher: nn.Module,
    label_pool: torch.Tensor,
    n: int,
    seed: int,
    attr_dropout: float,
    unspecified: list[int],
    show: bool = True,
    check: PairCheck | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(noise (n, z), portraits (n, C, R, R), labels (n, A)): `n` portraits the teacher draws, each from its noise,
    under labels drawn from `label_pool` (the training rows' labels), each attribute left open ("unspecified") with
    probability `attr_dropout`, as the teacher learnt, so the student can leave attributes open too. With `check`,
    off-palette portraits are drawn again from new noise of a stream of their own (so the labels and the pairs on
    their palette are those drawn without it; each pair keeps the noise that drew its portrait)."""
    device = label_pool.device
    gen = torch.Generator(device=device).manual_seed(seed)
    open_index = torch.tensor(unspecified, device=device, dtype=torch.long)
    noises, portraits, labels = [], [], []
    redrawn, redraws = 0, torch.Generator(device=device).manual_seed(round_seed(seed, 1))  # apart from the pairs'
    bar = progress_bar(total=n, desc="teacher draws the pairs", unit="portrait", disable=not show)
    with bar:
        for start in range(0, n, PAIR_BATCH):
            b = min(PAIR_BATCH, n - start)
            y = label_pool[torch.randint(len(label_pool), (b,), generator=gen, device=device)]
            if attr_dropout > 0 and y.shape[1] > 0:
                drop = torch.rand(y.shape, generator=gen, device=device) < attr_dropout
                y = torch.where(drop, open_index.expand_as(y), y)
            z = torch.randn(b, teacher.z_dim, generator=gen, device=device)
            x = teacher(z, y).float()
            if check is not None:
                redrawn += _redraw_off_palette_pairs(teacher, z, x, y, check, redraws)
                bar.set_postfix(redrawn=f"{redrawn / (start + b):.2f}")
            noises.append(z)
            portraits.append(x)
            labels.append(y)
            bar.update(b)
    return torch.cat(noises), torch.cat(portraits), torch.cat(labels)


def _redraw_off_palette_pairs(
    teacher: nn.Module, z: torch.Tensor, x: torch.Tensor, y: torch.Tensor, check: PairCheck, gen: torch.Generator
) -> int:
    """Draws the off-palette rows of one batch (noise `z`, portraits `x`) again in place, from new noise of `gen`;
    returns the portraits redrawn, every round counted."""
    cell = max(1, check.resolution // x.shape[-1])

    def redraw(_round: int, rows: np.ndarray) -> np.ndarray:
        pick = torch.from_numpy(rows).to(x.device)
        z[pick] = torch.randn(len(rows), teacher.z_dim, generator=gen, device=x.device)
        x[pick] = teacher(z[pick], y[pick]).float()
        return to_pixels(x[pick], check.resolution).cpu().numpy()

    asked = y[:, check.column].cpu().numpy()
    pixels = to_pixels(x, check.resolution).cpu().numpy()
    _, record = redraw_off_palette(pixels, asked, check.values, check.backdrop, check.rounds, redraw, cell)
    return sum(record["redrawn"])


def pair_sampler(
    pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    batch_size: int,
    generator: torch.Generator,
    channels_last: bool = False,
) -> Callable[[], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """A callable drawing random batches of the teacher's pairs: (portraits, labels, noise), what
    FlowTrainer.step takes for a distillation (setup.batch_sampler's batches, plus each portrait's noise)."""
    noise, portraits, labels = pairs
    layout = torch.channels_last if channels_last else torch.contiguous_format

    def next_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(portraits), (batch_size,), generator=generator, device=portraits.device)
        return portraits[idx].contiguous(memory_format=layout), labels[idx], noise[idx]

    return next_batch
