"""Distilling a flow run into a few-step drawing (rectified flow's reflow, Liu et al. 2023).

A flow model drawn in few steps cuts corners: its paths from noise to portrait curve, so two Euler steps land far
from where sixteen do. Reflow straightens them. The teacher (`train.teacher`, a flow run of the same model settings)
draws `train.teacher_pairs` portraits once, at the start, with its own best drawing (Heun steps and guidance, as
`train.teacher_*` say); the student starts from the teacher's weights and learns the straight path from each noise
to the portrait the teacher drew from it (flow_trainer.FlowTrainer with paired batches). On straight paths a few
Euler steps with no guidance (one pass each) draw what the teacher's guided many-pass drawing draws.

The pairs are drawn again, identically, whenever the run starts or resumes (seeded by train.seed and the rank), so
a checkpoint stays what it is for every family: networks, optimiser, RNG, step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from heroportraits.data.attributes import Vocabulary
from heroportraits.errors import HeroError
from heroportraits.models import build_generator
from heroportraits.models.config import DrawOptions, is_flow
from heroportraits.models.flow import GuidanceError, guidance_plan
from heroportraits.models.layout import memory_layout
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
    try:  # refused as the student's setting, the one the user gave, before it becomes the teacher's drawing
        guidance_plan(
            drawing.guidance_on, vocab.names, drawing.guidance, "train.teacher_guidance_on", "--teacher-guidance-on"
        )
    except GuidanceError as e:
        raise TeacherError(str(e)) from None
    teacher.use_drawing(drawing)
    layout = memory_layout(cfg.draw.channels_last)  # the run's drawing layout
    return teacher.to(memory_format=layout).eval().requires_grad_(False)


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
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(noise (n, z), portraits (n, C, R, R), labels (n, A)): `n` portraits the teacher draws, each from its noise,
    under labels drawn from `label_pool` (the training rows' labels), each attribute left open ("unspecified") with
    probability `attr_dropout`, as the teacher learnt, so the student can leave attributes open too."""
    device = label_pool.device
    gen = torch.Generator(device=device).manual_seed(seed)
    open_index = torch.tensor(unspecified, device=device, dtype=torch.long)
    noises, portraits, labels = [], [], []
    bar = progress_bar(total=n, desc="teacher draws the pairs", unit="portrait", disable=not show)
    with bar:
        for start in range(0, n, PAIR_BATCH):
            b = min(PAIR_BATCH, n - start)
            y = label_pool[torch.randint(len(label_pool), (b,), generator=gen, device=device)]
            if attr_dropout > 0 and y.shape[1] > 0:
                drop = torch.rand(y.shape, generator=gen, device=device) < attr_dropout
                y = torch.where(drop, open_index.expand_as(y), y)
            z = torch.randn(b, teacher.z_dim, generator=gen, device=device)
            noises.append(z)
            portraits.append(teacher(z, y).float())
            labels.append(y)
            bar.update(b)
    return torch.cat(noises), torch.cat(portraits), torch.cat(labels)


def pair_sampler(
    pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    batch_size: int,
    generator: torch.Generator,
    channels_last: bool = False,
) -> Callable[[], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """A callable drawing random batches of the teacher's pairs: (portraits, labels, noise), what
    FlowTrainer.step takes for a distillation (setup.batch_sampler's batches, plus each portrait's noise)."""
    noise, portraits, labels = pairs
    layout = memory_layout(channels_last)

    def next_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(portraits), (batch_size,), generator=generator, device=portraits.device)
        return portraits[idx].contiguous(memory_format=layout), labels[idx], noise[idx]

    return next_batch
