"""Checkpoints: one dict of state_dicts and plain data, loaded with weights_only=True.

Everything needed to resume exactly is inside: G, D, G_ema, both optimisers, the
step, RNG states, the resolved config and the dataset's vocabulary and label mix.
Never pickled modules, so a checkpoint loads after the code changes.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import torch

from heroportraits.errors import HeroError
from heroportraits.paths import free_space

CHECKPOINT_FORMAT = 1


class CheckpointError(HeroError):
    """A missing, unreadable or incompatible checkpoint."""


NETWORKS = ("G", "D", "G_ema")  # the state_dicts of a checkpoint that hold weights
RUN_CHECKPOINTS = ("last.pt", "previous.pt", "best.pt")  # what a run folder holds, newest save first


def save_checkpoint(state: dict, path: str | Path, keep_previous: str | Path | None = None) -> Path:
    """Write `state` to `path` so that `path` is always a whole checkpoint: into path.tmp, flushed
    to disk, then renamed over it. With `keep_previous`, the checkpoint `path` held until now is
    kept there (previous.pt beside last.pt), so one bad save never leaves no good checkpoint.

    Refuses non-finite weights (a diverged run). A failed write (disk full, even mid-file; no permission)
    removes path.tmp, leaves `path` as it was, and raises one CheckpointError with the free space.
    """
    path = Path(path)
    bad = nonfinite_weights(state)
    if bad:
        raise CheckpointError(f"refusing to write {path}: non-finite weights in {', '.join(bad[:3])}")
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:  # a file object: torch reports its write errors as OSError
            torch.save({"format": CHECKPOINT_FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous is not None and path.exists():
            _keep_copy(path, Path(keep_previous))
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch reports a write cut short mid-file as RuntimeError
        tmp.unlink(missing_ok=True)
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0][:200]
        raise CheckpointError(
            f"could not write checkpoint {path}: {why}; {free_space(path)}: free some space or make the folder "
            "writable, then run again"
        ) from None
    return path


def _keep_copy(path: Path, previous: Path) -> None:
    """previous <- the file at `path` now, atomically (a hard link where the filesystem has them)."""
    tmp = previous.with_suffix(previous.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:
        shutil.copyfile(path, tmp)
    os.replace(tmp, previous)


def nonfinite_weights(state: dict) -> list[str]:
    """Names of the network tensors (G, D, G_ema) holding NaN or infinity; [] for a healthy state.
    One host sync for all tensors, so it is cheap enough for every checkpoint."""
    tensors = [(f"{net}.{k}", v) for net in NETWORKS for k, v in state.get(net, {}).items() if v.is_floating_point()]
    if not tensors or torch.stack([torch.isfinite(v).all() for _, v in tensors]).all():
        return []
    return [name for name, v in tensors if not torch.isfinite(v).all()]


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
    message would suggest weights_only=False, which runs arbitrary code: never do that), a
    dict that lacks what this project writes, or non-finite weights (a diverged run: sample,
    evaluate, export and resume all load through here, so none of them runs one).
    """
    path = resolve_checkpoint_path(path)
    try:
        state, failure = torch.load(path, map_location=map_location, weights_only=True), None
    except Exception as e:  # truncated file, random bytes, a pickle of arbitrary objects...
        state, failure = None, type(e).__name__
    if failure:  # raised outside the handler, so no traceback carries torch's advice either
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is truncated, corrupt or not a PyTorch file ({failure}). "
            f"{_fallback(path, 'or train again (--no-resume)')}"
        )
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise not_ours(path, f"no format {CHECKPOINT_FORMAT} marker")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise not_ours(path, f"it has no {', '.join(missing)}")
    bad = nonfinite_weights(state)
    if bad:
        raise CheckpointError(
            f"{path} holds non-finite weights ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}): the run "
            f"diverged before it was saved. {_fallback(path, 'or train again with lower learning rates')}"
        )
    return state


def _fallback(path: Path, otherwise: str) -> str:
    """Where to go instead of a checkpoint that cannot be used: the other checkpoints beside it."""
    others = [p for p in (path.parent / n for n in RUN_CHECKPOINTS) if p.exists() and p != path]
    if others:
        return f"Use {' or '.join(str(p) for p in others)} instead, {otherwise}."
    return f"No other checkpoint is beside it: {otherwise}."


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


def check_vocabulary(saved_vocab: dict, vocab: dict, path) -> None:
    """Refuse to resume a run on a dataset with other attributes or values."""
    if saved_vocab != vocab:
        raise CheckpointError(
            f"checkpoint {path} was trained on attributes {saved_vocab}, but this dataset has {vocab}. "
            f"Resume on the same dataset, or start a new run with --run NEW_NAME."
        )
