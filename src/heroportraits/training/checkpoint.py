"""Checkpoints: one dict of state_dicts and plain data, loaded with weights_only=True.

Everything needed to resume exactly is inside: G, D, G_ema, both optimisers, the
step, RNG states, the resolved config and the dataset's vocabulary and label mix.
Never pickled modules, so a checkpoint loads after the code changes.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import torch

from heroportraits.errors import HeroError

CHECKPOINT_FORMAT = 1


class CheckpointError(HeroError):
    """A missing, unreadable or incompatible checkpoint."""


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write atomically (temp file + rename) so an interrupted save never corrupts `last.pt`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
    os.replace(tmp, path)
    return path


def resolve_checkpoint_path(path: str | Path) -> Path:
    """Accept a checkpoint file or a run folder (then its last.pt)."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.exists():
        raise CheckpointError(
            f"no checkpoint at {path}. Train one first (`python -m heroportraits train ...`) "
            f"or pass a file from artifacts_gan/checkpoints/<run>/."
        )
    return path


REQUIRED_KEYS = ("step", "config", "vocab", "dataset", "G_ema")  # what sample, evaluate and resume read


def not_ours(path: str | Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"{path} is not a checkpoint of this project, or of another version ({why}); pass a last.pt "
        f"from artifacts_gan/checkpoints/<run>/ or train again"
    )


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """The checkpoint dict at `path` (a file or a run folder), loaded with weights_only=True.

    Anything else is one CheckpointError naming the file: a file torch cannot read (its own
    message would suggest weights_only=False, which runs arbitrary code: never do that), or a
    dict that lacks what this project writes.
    """
    path = resolve_checkpoint_path(path)
    try:
        state, failure = torch.load(path, map_location=map_location, weights_only=True), None
    except Exception as e:  # truncated file, random bytes, a pickle of arbitrary objects...
        state, failure = None, type(e).__name__
    if failure:  # raised outside the handler, so no traceback carries torch's advice either
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is truncated, corrupt or not a PyTorch file ({failure})"
        )
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise not_ours(path, f"no format {CHECKPOINT_FORMAT} marker")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise not_ours(path, f"it has no {', '.join(missing)}")
    return state


@contextmanager
def foreign_weights(path: str | Path):
    """Inside: weights that do not fit the networks the checkpoint's own config builds (other
    tensor shapes or names) become one CheckpointError naming the file, not a size-mismatch trace."""
    try:
        yield
    except HeroError:
        raise
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        raise not_ours(path, f"its weights do not fit its config: {str(e).splitlines()[0][:160]}") from e


def check_compatible(saved_model_cfg: dict, model_cfg: dict, saved_vocab: dict, vocab: dict, path) -> None:
    """Refuse to resume a run with another architecture or another dataset vocabulary."""
    diffs = [
        f"model.{k}: checkpoint {saved_model_cfg.get(k)!r} vs now {v!r}"
        for k, v in model_cfg.items()
        if saved_model_cfg.get(k) != v
    ]
    if diffs:
        raise CheckpointError(
            f"checkpoint {path} was made with another model config ({'; '.join(diffs)}). "
            f"Use the same preset/overrides to resume, or start a new run with --run NEW_NAME."
        )
    if saved_vocab != vocab:
        raise CheckpointError(
            f"checkpoint {path} was trained on attributes {saved_vocab}, but this dataset has {vocab}. "
            f"Resume on the same dataset, or start a new run with --run NEW_NAME."
        )
