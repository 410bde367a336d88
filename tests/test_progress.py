"""Progress bars: plain lines every few percent when stderr is not a terminal."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

from heroportraits import progress
from heroportraits.progress import LineProgress, progress_bar, progress_mode


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_mode_follows_the_stream_and_the_environment(monkeypatch):
    monkeypatch.delenv("HEROPORTRAITS_PROGRESS", raising=False)
    assert progress_mode(FakeTerminal()) == "bar"
    assert progress_mode(io.StringIO()) == "lines"
    monkeypatch.setenv("HEROPORTRAITS_PROGRESS", "lines")
    assert progress_mode(FakeTerminal()) == "lines"
    monkeypatch.setenv("HEROPORTRAITS_PROGRESS", "bar")
    assert progress_mode(io.StringIO()) == "bar"


def test_line_progress_prints_one_line_per_five_percent_and_no_carriage_returns(monkeypatch):
    monkeypatch.delenv("HEROPORTRAITS_PROGRESS", raising=False)
    log = io.StringIO()
    bar = progress_bar(total=1000, desc="train", unit="step", file=log)
    assert isinstance(bar, LineProgress)
    for i in range(1000):
        bar.update(1)
        if i % 10 == 0:
            bar.set_postfix(loss=f"{i / 1000:.2f}")  # refreshes, but must not add lines
    bar.close()
    text = log.getvalue()
    assert "\r" not in text
    percents = [int(m) for m in re.findall(r"train:\s+(\d+)%", text)]
    assert percents == list(range(0, 101, 5))  # 0 %, every 5 %, and 100 % once
    assert "1000/1000" in text.splitlines()[-1]


def test_line_progress_says_where_a_stopped_bar_ended():
    log = io.StringIO()
    bar = LineProgress(total=100, desc="train", file=log)
    for _ in range(7):
        bar.update(1)
    bar.close()  # stopped early (e.g. a time limit): the last line says 7/100
    lines = log.getvalue().splitlines()
    assert [ln.split("%")[0] for ln in lines] == ["train:   0", "train:   5", "train:   7"]
    assert lines[-1].startswith("train:   7% 7/100")


def test_line_progress_prints_after_a_quiet_minute_when_the_percentage_stalls(monkeypatch):
    """A minutes budget runs under a step cap of 10^8: its percentage never moves, a line still comes."""
    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    log = io.StringIO()
    bar = LineProgress(total=100_000_000, desc="train", file=log)
    for _ in range(10):  # 10 steps within the quiet minute: no new line
        clock[0] += 1.0
        bar.update(1)
    assert len(log.getvalue().splitlines()) == 1
    clock[0] += progress.QUIET_SECONDS
    bar.update(1)
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and " 11/100000000 " in lines[-1]


def test_cli_log_to_a_pipe_has_plain_lines_only(tmp_path):
    """A CLI verb run as under nohup or CI: stderr is a pipe, so no carriage-return updates."""
    env = {k: v for k, v in os.environ.items() if k != "HEROPORTRAITS_PROGRESS"}
    env["MPLBACKEND"] = "Agg"
    cmd = [sys.executable, "-m", "heroportraits", "procedural", "--n", "400", "--out", str(tmp_path / "p")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    lines = [ln for ln in done.stderr.splitlines() if "%" in ln]
    assert any(ln.startswith("drawing portraits: 100% 400/400") for ln in lines)
    assert any(ln.startswith("writing PNG files: 100% 400/400") for ln in lines)
    assert len(lines) <= 2 * 21  # two bars, at most 0 %, 5 %, ..., 100 % each


def test_a_time_limited_run_shows_its_budget_not_its_step_cap(monkeypatch):
    """With train.max_minutes the bar follows the budget (time or steps, whichever runs out first)."""
    monkeypatch.setenv("HEROPORTRAITS_PROGRESS", "lines")
    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    with progress.TrainingBar(steps=100_000_000, minutes=10, step=0, desc="train") as bar:
        for step in range(1, 301):  # 300 steps in 3 of 10 minutes
            clock[0] += 0.6
            bar.update(step)
        bar.set_postfix({"d": "0.5"})
    lines = log.getvalue().splitlines()
    assert lines[-1].startswith("train:  30% of the budget [") and "step=300, d=0.5" in lines[-1]
    assert "100000000" not in log.getvalue()
    log.truncate(0), log.seek(0)
    with progress.TrainingBar(steps=200, minutes=10, step=0, desc="train") as bar:  # the steps run out first
        clock[0] += 1.0
        bar.update(100)
    assert log.getvalue().splitlines()[-1].startswith("train:  50% of the budget")
    log.truncate(0), log.seek(0)
    with progress.TrainingBar(steps=40, minutes=0, step=10, desc="train") as bar:  # no time limit: steps
        bar.update(40)
    assert "40/40" in log.getvalue().splitlines()[-1]
