"""What stops a run early without losing work: divergence and SIGINT / SIGTERM.

Divergence is checked where the loop already reads numbers on the host (the logged losses
at log steps, the weights before a checkpoint), so it costs no extra GPU sync; a diverged
run stops with one message and never writes its non-finite state. A signal lets the
current step finish; the loop then writes a checkpoint and stops (see loop.train).
"""

from __future__ import annotations

import math
import signal
import threading
from pathlib import Path

from heroportraits.errors import HeroError
from heroportraits.training.config import TrainConfig
from heroportraits.training.distributed import DistInfo, all_gather

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DivergedError(HeroError):
    """The losses or weights went non-finite: the run stops before saving them."""


def diverged(step: int, what: str, tc: TrainConfig, last: Path) -> DivergedError:
    """The one message of a diverged run: where, the likely cause, and what is left to resume."""
    kept = f"{last} (saved before, finite) is kept" if last.exists() else "no checkpoint was written"
    return DivergedError(
        f"training diverged at step {step}: {what} not finite. Likely cause: learning rates too high "
        f"(train.g_lr={tc.g_lr}, train.d_lr={tc.d_lr}); lower them with --set train.g_lr=... --set "
        f"train.d_lr=... (resuming with new rates is allowed) or add R1 (train.r1_gamma). Nothing non-finite "
        f"was saved: {kept}"
    )


def check_logged(step: int, values: dict[str, float], tc: TrainConfig, last: Path) -> None:
    """Raise DivergedError if a logged loss / statistic (averaged over ranks, so every rank agrees) is NaN or inf."""
    bad = [f"{k}={v}" for k, v in values.items() if not math.isfinite(v)]
    if bad:
        raise diverged(step, ", ".join(bad) + (" is" if len(bad) == 1 else " are"), tc, last)


class StopSignals:
    """While active, SIGINT (Ctrl-C) and SIGTERM (timeout, Slurm, Kubernetes) only note the
    signal; `requested()` tells the loop to checkpoint and stop after the current step. A second
    signal stops at once (KeyboardInterrupt). Handlers can only be set from the main thread;
    elsewhere (a worker thread) signals keep their usual behaviour."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._note) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def _note(self, signum: int, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping without a checkpoint")
        self.signum = signum

    def requested(self, logged: bool, info: DistInfo) -> bool:
        """Whether to stop now: every step in one process; under torchrun, ranks agree at log steps."""
        if not info.enabled or not logged:
            return self.signum is not None and not info.enabled
        seen = [s for s in all_gather(self.signum, info) if s is not None]
        self.signum = self.signum or (seen[0] if seen else None)  # a rank the signal missed stops as well
        return bool(seen)

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name
