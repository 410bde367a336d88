"""Progress bars that suit where the output goes: every bar in the package comes from here.

On a terminal: tqdm's live bar. In Jupyter: tqdm's notebook bar. Anywhere else (CI, `nohup`, a
cluster job's log, a pipe) a live bar is thousands of carriage-return updates in the log, so the
bar prints one plain line each time it passes another `PERCENT_STEP` percent (and when it ends),
or after `QUIET_SECONDS` without a line (a minutes budget caps the steps far beyond what it reaches).
HEROPORTRAITS_PROGRESS=bar|lines overrides the choice.

A training run with a time limit gets a TrainingBar over its budget (time or steps, whichever
runs out first), not over its step cap: a minutes budget's cap is far out of reach.
"""

from __future__ import annotations

import math
import os
import sys
import time

from tqdm import tqdm as tqdm_text
from tqdm.auto import tqdm as tqdm_auto

PERCENT_STEP = 5  # a plain line each time progress passes another 5 %: at most ~21 lines a bar
UNKNOWN_TOTAL_SECONDS = 30.0  # bars without a total: a line every 30 s
QUIET_SECONDS = 60.0  # a bar whose percentage barely moves (a minutes budget's huge step cap): a line a minute
LINE_FORMAT = "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
BUDGET_FORMAT = "{desc}: {percentage:3.0f}% of the budget [{elapsed}<{remaining}{postfix}]"
BUDGET_UNITS = 1000  # a budget bar counts thousandths of its budget
ENV = "HEROPORTRAITS_PROGRESS"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where tqdm draws a widget, not carriage returns)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def progress_mode(stream=None) -> str:
    """ "bar" when a person watches a live bar (terminal, notebook), else "lines"."""
    forced = os.environ.get(ENV, "").strip().lower()
    if forced in ("bar", "lines"):
        return forced
    stream = sys.stderr if stream is None else stream
    is_tty = getattr(stream, "isatty", lambda: False)()
    return "bar" if is_tty or in_notebook() else "lines"


class LineProgress(tqdm_text):
    """tqdm that writes whole lines, never '\\r': one each time progress passes another
    `percent_step` percent, and a last one when it closes if the end was not printed yet."""

    def __init__(self, *args, percent_step: float = PERCENT_STEP, **kwargs):
        self._percent_step = percent_step
        self._next_percent = 0.0  # print when progress reaches this
        self._printed_n = None  # n at the last printed line
        self._printed_at = time.monotonic()  # when it was printed
        kwargs.setdefault("bar_format", LINE_FORMAT)
        kwargs.setdefault("dynamic_ncols", False)
        # display() decides when to print, so tqdm must call it on every update; without a total
        # there are no percentages and time decides.
        total = kwargs.get("total")
        if total is None and args and hasattr(args[0], "__len__"):
            total = len(args[0])
        kwargs["mininterval"] = 0 if total else UNKNOWN_TOTAL_SECONDS
        kwargs["miniters"] = 1 if total else 0
        super().__init__(*args, **kwargs)
        self.sp = None  # no status printer: tqdm's own close() then writes no '\r' or blank line

    def display(self, msg=None, pos=None) -> bool:
        if self.total:
            percent = 100.0 * self.n / self.total
            quiet_for = time.monotonic() - self._printed_at
            if self.n == self._printed_n or (percent < self._next_percent and quiet_for < QUIET_SECONDS):
                return True
            self._next_percent = (math.floor(percent / self._percent_step) + 1) * self._percent_step
        self._write_line()
        return True

    def _write_line(self) -> None:
        self._printed_n, self._printed_at = self.n, time.monotonic()
        self.fp.write(self.format_meter(**self.format_dict) + "\n")
        self.fp.flush()

    def close(self) -> None:
        if not getattr(self, "disable", True) and self.n != self._printed_n:
            self._write_line()  # e.g. a run stopped early by its time limit: say where it stopped
        super().close()


def progress_bar(iterable=None, **kwargs):
    """`tqdm(iterable, **kwargs)`, as a live bar or as plain lines (see the module docstring)."""
    if progress_mode(kwargs.get("file")) == "bar":
        return tqdm_auto(iterable, **kwargs)
    return LineProgress(iterable, **kwargs)


class TrainingBar:
    """A training run's bar. Without a time limit: over its steps. With one (train.max_minutes): over
    its budget, the larger of the share of time and the share of steps used, with the step in the
    postfix; a bar over the step cap alone would sit at 0 % with an ETA of years (studies cap a minutes
    budget at 10^8 steps)."""

    def __init__(self, steps: int, minutes: float, step: int, desc: str, disable: bool = False):
        self.steps, self.seconds, self.step = steps, minutes * 60, step
        self.start = time.monotonic()
        if self.seconds > 0:
            kwargs = dict(total=BUDGET_UNITS, bar_format=BUDGET_FORMAT, unit="")
            self.bar = progress_bar(desc=desc, disable=disable, **kwargs)
        else:
            self.bar = progress_bar(total=steps, initial=step, desc=desc, disable=disable, unit="step")

    def update(self, step: int) -> None:
        """The run is at `step` now."""
        if self.seconds > 0:
            used = max((time.monotonic() - self.start) / self.seconds, step / max(self.steps, 1))
            self.bar.update(min(used, 1.0) * BUDGET_UNITS - self.bar.n)
        else:
            self.bar.update(step - self.step)
        self.step = step

    def set_postfix(self, values: dict) -> None:
        self.bar.set_postfix({"step": self.step, **values} if self.seconds > 0 else values)

    def __enter__(self) -> TrainingBar:
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()
