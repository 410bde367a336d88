"""Scores of the masks an RGBA model draws (model.alpha): is the alpha pixel art's, and is the figure's shape a
real one?

An RGBA portrait's colours are the portrait over its background, scored by every other score as they are; its
mask is scored here against the dataset's real masks: the share of the portrait the figure covers, and how close
each drawn mask is to its nearest real one (IoU), with the same read of real VAL masks against TRAIN as the floor.
"""

from __future__ import annotations

import numpy as np
import torch

from heroportraits.data.dataset import load_dataset
from heroportraits.evaluation.scores import EvaluationError
from heroportraits.sampling.transparency import is_clean


def split_alpha(images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, H, W, 3 or 4) uint8 -> (the colours (N, H, W, 3), the alpha (N, H, W) or None for RGB portraits)."""
    if images.shape[-1] == 4:
        return images[..., :3], images[..., 3]
    return images, None


def real_masks(dataset: str, split: str) -> tuple[np.ndarray, int]:
    """A split's masks, (N, H, W) bool (True = the figure), and the dataset's native pixel size; one line when the
    dataset has no alpha."""
    data = load_dataset(dataset, split)
    if data.alpha is None:
        raise EvaluationError(
            f"dataset {dataset!r} has no alpha, so an RGBA model's masks have nothing to be scored against; "
            "evaluate against the dataset the model was trained on (--dataset)"
        )
    return data.alpha[:, 0].numpy() > 127, data.native_scale


def clean_share(masks: np.ndarray, native_scale: int) -> float:
    """The share of masks that `sample --transparent` would call a clean cut (sampling/transparency.is_clean, on
    the native grid): the RGB models' flood fill and an RGBA model's own alpha, read by one rule."""
    k = max(1, native_scale)
    return float(np.mean([is_clean(~m[::k, ::k]) for m in masks])) if len(masks) else 0.0


def nearest_iou(masks: np.ndarray, reference: np.ndarray, batch: int = 512) -> np.ndarray:
    """Each mask's IoU with its nearest reference mask: masks (N, H, W) bool, reference (M, H, W) bool -> (N,).
    Two empty masks agree (IoU 1)."""
    ref = torch.from_numpy(reference.reshape(len(reference), -1)).float()
    ref_area = ref.sum(1)
    best = []
    for i in range(0, len(masks), batch):
        m = torch.from_numpy(masks[i : i + batch].reshape(-1, ref.shape[1])).float()
        inter = m @ ref.T
        union = m.sum(1, keepdim=True) + ref_area[None] - inter
        best.append(torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter)).max(1).values)
    return torch.cat(best).numpy() if best else np.zeros(0)


def mask_scores(alpha: np.ndarray, dataset: str) -> dict:
    """alpha (N, H, W) uint8 of drawn portraits -> their mask scores beside real VAL's (the floor):
    binary (share of alpha values that are 0 or 255), figure_share (mean share of opaque pixels) and
    nearest_iou (mean IoU of each mask with its nearest real TRAIN mask) and clean (the share `sample
    --transparent` would call clean cuts)."""
    (train, k), (val, _) = real_masks(dataset, "train"), real_masks(dataset, "val")
    drawn = alpha > 127
    return {
        "binary": float(np.isin(alpha, (0, 255)).mean()),
        "figure_share": {"generated": float(drawn.mean()), "real": float(val.mean())},
        "clean": {"generated": clean_share(drawn, k), "real": clean_share(val, k)},
        "nearest_iou": {
            "generated": float(nearest_iou(drawn, train).mean()),
            "real": float(nearest_iou(val, train).mean()),
        },
    }
