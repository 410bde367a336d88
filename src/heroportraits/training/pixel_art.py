"""The training side of the pixel-art switches (docs/pixelart.md): the palette output's temperature
and Gumbel stream, the self-supervised D's quarter, and the dataset palette the reals are held to.

The Trainer calls these few functions so that its step stays readable; each is stateless or
keeps its state where checkpoints already look (G's `out.tau` buffer, the Trainer's step).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from heroportraits.data.dataset import PortraitData
from heroportraits.data.palette_quantise import apply_palette, dataset_palette
from heroportraits.models.palette_output import PaletteOutput, palette_outputs, palette_tau
from heroportraits.training.config import Config, ModelConfig, TrainConfig

QUARTERS = 4  # the self-supervised D rebuilds one quarter of each real image per D update


def palette_layers(G: nn.Module, generator: torch.Generator) -> list[PaletteOutput]:
    """G's palette output layers (none for RGB), drawing their Gumbel noise from `generator`, the
    Trainer's stream, so a resumed run draws the same noise."""
    layers = palette_outputs(G)
    for layer in layers:
        layer.generator = generator
    return layers


def tau(tc: TrainConfig, iteration: int) -> float:
    """The palette softmax temperature for training step `iteration` (train.tau_*)."""
    return palette_tau(iteration, tc.tau_steps or tc.steps, tc.tau_start, tc.tau_end, tc.tau_schedule)


def recon_part(mc: ModelConfig, d_update: int) -> int | None:
    """Which quarter D's decoders rebuild on its `d_update`-th update (cycling: each quarter equally
    often, no random draw, so no host sync on a GPU), or None with the decoders off."""
    return d_update % QUARTERS if mc.d_recon > 0 else None


def training_palette(cfg: Config, data: PortraitData) -> np.ndarray | None:
    """The dataset palette (K', 3) uint8 G draws from, when the config asks for one; else None."""
    mc = cfg.model
    if mc.output != "palette" or mc.palette_source != "dataset":
        return None
    return dataset_palette(data.meta, mc.palette_k, str(data.meta.get("name", "the dataset")))


def quantise_reals(data: PortraitData, palette: np.ndarray | None) -> PortraitData:
    """The split with every pixel moved to its nearest palette colour (OKLab), so D never tells real
    from fake by a colour G cannot draw. Unchanged without a palette."""
    if palette is None:
        return data
    pixels = data.images.permute(0, 2, 3, 1).cpu().numpy()  # (N, H, W, 3) uint8
    held = torch.from_numpy(apply_palette(pixels, palette)).permute(0, 3, 1, 2).contiguous()
    return PortraitData(held.to(data.images.device), data.labels, data.vocab, data.meta, data.files)
