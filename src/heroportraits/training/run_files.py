"""The files of one training run, written by rank 0 only:

    artifacts_gan/checkpoints/<run>/  last.pt (and previous.pt, the one before it), config.json,
                                      metrics.csv, losses.png; with train.eval_every > 0 also
                                      eval.jsonl and best.pt
    artifacts_gan/samples/<run>/      step_XXXXXX.png grids of the EMA generator, latest.png

`RunFiles` opens them (cutting the logs back to a resumed step), appends a metrics row,
draws the fixed sample grid, has the EMA generator scored for eval.jsonl / best.pt and saves
checkpoints, so that `train()` reads as the loop alone. The scoring is the caller's (a `RunScorer`,
e.g. evaluation.during_training.TrainTimeScorer): training does not know how portraits are judged.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import torch

from heroportraits.errors import HeroError
from heroportraits.models import to_pixels
from heroportraits.paths import checkpoints_dir, free_space, samples_dir, write_json
from heroportraits.training import distributed
from heroportraits.training.checkpoint import RUN_CHECKPOINTS, nonfinite_weights, save_checkpoint
from heroportraits.training.config import Config
from heroportraits.training.figures import fixed_noise, grid_layout, plot_losses, save_grid_figure
from heroportraits.training.guards import diverged
from heroportraits.training.setup import TrainingSetup, checkpoint_state


def metric_columns(stats: tuple[str, ...]) -> list[str]:
    """metrics.csv's header for a trainer's stats (the GAN's losses and D's outputs; a flow model's loss)."""
    return ["step", "seconds", "images_per_s", *stats, "noise_std"]


# A run's own files: what a fresh start (resume=False) sets aside rather than deletes.
EARLIER_FILES = (*RUN_CHECKPOINTS, "eval.jsonl", "metrics.csv", "config.json", "losses.png")


class RunFilesError(HeroError):
    """A run folder that cannot be written."""


class RunScorer(Protocol):
    """What scores a run while it trains (train.eval_every > 0): given before the first step, called with the
    checkpoint dict being written; the scores it returns (with "fd") go to eval.jsonl, the lowest FD to best.pt."""

    def prepare(self, progress: bool) -> None: ...

    def __call__(self, state: dict, n: int, device: torch.device) -> dict: ...


class RunFiles:
    """One run's folders and files. Every method may be called on every rank: the collective
    parts (averaging the logged losses) run everywhere, the writing on rank 0 only.

    `labels` are the train split's labels: the sample grid holds each attribute at its most
    common value except the ones the grid lays out, with the same noise at every sample step.
    """

    def __init__(
        self, run: str, cfg: Config, dataset: str, s: TrainingSetup, labels: torch.Tensor, scorer: RunScorer | None
    ):
        self.run, self.cfg, self.dataset, self.s, self.scorer = run, cfg, str(dataset), s, scorer
        self.main = s.info.is_main
        self.dir, self.sample_dir = checkpoints_dir() / run, samples_dir() / run
        self.last, self.best_path, self.previous = self.dir / "last.pt", self.dir / "best.pt", self.dir / "previous.pt"
        self.metrics, self.evals = self.dir / "metrics.csv", self.dir / "eval.jsonl"
        self.best: dict | None = None  # {"fd", "step"}: lowest train-time FD so far (restored on resume)
        self.postfix: dict[str, str] = {}  # what the progress bar shows: losses, FD
        common = torch.mode(labels[:, s.cond_cols.cpu()], dim=0).values.tolist()
        self.layout = grid_layout(s.cvocab, default_labels=common)
        self.stats = tuple(s.trainer.stats)  # what each step reports: metrics.csv's columns
        self.columns = metric_columns(self.stats)
        self.grid_z = fixed_noise(self.layout, s.trainer.z_dim).to(s.device)  # (cells, Z)
        self.grid_y = self.layout.labels.to(s.device)  # (cells, A')
        self.start = self.window = time.time()  # run start; start of the current images/s window
        self.failed: set[str] = set()  # side outputs already reported as unwritable

    def open(self, step: int, progress: bool = True) -> None:
        """Before the first step: partial checkpoints of a killed save removed, folders checked writable (on
        every rank's word); at a fresh start the resolved config written (a resumed run's config.json is written
        with its next checkpoint, so it always holds the settings of the checkpoint beside it); metrics and
        evaluations cut back to `step` (a resumed run logs the steps after its checkpoint again); the judge
        ready when evaluating."""
        if self.best is not None:
            self.postfix["best_fd"] = f"{self.best['fd']:.2f}"
        if self.main:  # first: on a full disk, the space a killed save left is what the next one needs
            for tmp in sorted(self.dir.glob("*.pt.tmp")):
                tmp.unlink()
                print(f"removed {tmp}: a partial checkpoint left by a run stopped while saving", file=sys.stderr)
        problem = self._unwritable() if self.main else None
        problem = next((p for p in distributed.all_gather(problem, self.s.info) if p), None)
        if problem:
            raise RunFilesError(problem)
        if not self.main:
            return
        if step == 0:
            write_json(self.dir / "config.json", self.cfg.to_dict())
            self.evals.unlink(missing_ok=True)  # an unfinished start's evaluations: their steps are trained again
        if step == 0 or not self.metrics.exists():
            with open(self.metrics, "w", newline="") as f:
                csv.writer(f).writerow(self.columns)
        match_metric_columns(self.metrics, self.columns)
        for path in (self.metrics, self.evals):
            drop_rows_after(path, step)
        if self.cfg.train.eval_every > 0:  # before the progress bar starts
            self.scorer.prepare(progress)

    def _unwritable(self) -> str | None:
        """Why the run's folders cannot be written (made if missing), or None: found before the first step."""
        for folder in (self.dir, self.sample_dir):
            probe = folder / f".write-test-{os.getpid()}"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                probe.write_bytes(b"ok")
            except OSError as e:
                return (
                    f"cannot write to the run folder {folder}: {e.strerror or e} ({free_space(folder)}). Make it a "
                    f"writable folder with free space, or pick another run name (--run) or project root "
                    f"(HEROPORTRAITS_ROOT)"
                )
            finally:
                with contextlib.suppress(OSError):
                    probe.unlink(missing_ok=True)
        return None

    def set_aside(self) -> None:
        """A fresh start (resume=False) in a folder that holds an earlier run: its checkpoints and logs move into
        RUN/earlier-<time>/ first (rank 0), so that starting again never deletes a checkpoint. Returns None:
        there is nothing to resume."""
        present = [self.dir / name for name in EARLIER_FILES if (self.dir / name).exists()] if self.main else []
        if present:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            keep = next(
                self.dir / name
                for name in (f"earlier-{stamp}", *(f"earlier-{stamp}-{i}" for i in range(1, 100)))
                if not (self.dir / name).exists()
            )
            try:
                keep.mkdir(parents=True)
                for path in present:
                    os.replace(path, keep / path.name)
            except OSError as e:
                raise RunFilesError(f"cannot set the earlier run's files aside in {keep}: {e.strerror or e}") from None
            print(f"starting {self.run} again from step 0: its earlier files are in {keep}", file=sys.stderr)
        distributed.barrier(self.s.info)
        return None

    @contextlib.contextmanager
    def side_output(self, what: str) -> Iterator[None]:
        """A file the run writes beside its checkpoints (a grid, a log row, a plot): one that cannot be written (a
        full disk) is reported once and skipped, and training goes on; only a checkpoint that cannot be saved
        stops the run (training.checkpoint)."""
        try:
            yield
        except OSError as e:
            if what not in self.failed:
                self.failed.add(what)
                print(f"warning: could not write {what} ({e.strerror or e}); training goes on", file=sys.stderr)

    def log(self, step: int, stats: dict[str, torch.Tensor], noise_std: float) -> dict[str, float]:
        """Average the step's stats over ranks (the loop's only host sync), append a metrics row;
        returns the averages (self.postfix, the progress bar's text, follows them)."""
        now = time.time()
        ips = self.cfg.train.log_every * self.cfg.train.batch_size / max(now - self.window, 1e-9)
        self.window = now
        means = distributed.mean_over_ranks(torch.stack([stats[k].float() for k in self.stats]), self.s.info)
        values = {k: round(v, 5) for k, v in zip(self.stats, means.tolist())}
        if self.main:
            row = [step, round(now - self.start, 2), round(ips, 1), *(values[k] for k in self.stats)]
            with self.side_output(str(self.metrics)), open(self.metrics, "a", newline="") as f:
                csv.writer(f).writerow([*row, round(noise_std, 5)])
        if "d_loss" in values:
            self.postfix.update(d=f"{values['d_loss']:.3f}", g=f"{values['g_loss']:.3f}")
        else:
            self.postfix.update({k: f"{values[k]:.3f}" for k in self.stats[:1]})
        return values

    def write_samples(self, step: int) -> Path | None:
        """The EMA generator's grid at `step` -> step_XXXXXX.png and latest.png."""
        if not self.main:
            return None
        with torch.no_grad():
            images = to_pixels(self.s.trainer.G_ema(self.grid_z, self.grid_y), self.s.out_res).cpu().numpy()
        title = f"{self.run}  step {step}"
        path = self.sample_dir / f"step_{step:06d}.png"
        with self.side_output(f"the sample grids in {self.sample_dir}"):
            save_grid_figure(images, self.layout, path, title)
            (self.sample_dir / "latest.png").write_bytes(path.read_bytes())
            return path
        return None

    def evaluate(self, step: int, rng_states: list) -> dict[str, str]:
        """FD of G_ema now -> a row of eval.jsonl; best.pt (= last.pt's content) when the lowest yet.
        Its time is kept out of the next images/s. Returns the progress bar's postfix."""
        state = self._finite_state(step, rng_states)
        if not self.main:
            return self.postfix
        t0 = time.time()
        result = self.scorer(state, self.cfg.train.eval_samples, self.s.device)
        is_best = self.best is None or result["fd"] < self.best["fd"]
        if is_best:
            self.best = {"fd": result["fd"], "step": step}
            self.save(self.best_path, rng_states)
        row = {"step": step, "seconds": round(time.time() - self.start, 2), **result, "best": is_best}
        with self.side_output(str(self.evals)), open(self.evals, "a") as f:
            f.write(json.dumps(row) + "\n")
        self.window += time.time() - t0
        self.postfix.update(fd=f"{result['fd']:.2f}", best_fd=f"{self.best['fd']:.2f}")
        return self.postfix

    def save(self, path: Path, rng_states: list) -> None:
        """The run's checkpoint (every rank's random stream in `rng_states`) -> path, atomically;
        last.pt's previous content moves to previous.pt. Non-finite weights stop the run instead."""
        state = self._finite_state(self.s.trainer.iteration, rng_states)
        if self.main:
            save_checkpoint(state, path, keep_previous=self.previous if path == self.last else None)
            if path == self.last:  # the settings of the checkpoint beside it, resumed with other ones or not
                with self.side_output(str(self.dir / "config.json")):
                    write_json(self.dir / "config.json", state["config"])

    def _finite_state(self, step: int, rng_states: list) -> dict:
        """The checkpoint dict, checked on every rank (they hold the same weights, so all stop together)."""
        state = checkpoint_state(self.s, self.cfg, self.dataset, self.best, rng_states)
        bad = nonfinite_weights(state)
        if bad:
            raise diverged(step, f"the weights ({', '.join(bad[:3])}) are", self.cfg.train, self.last)
        return state

    def close(self, trained: bool) -> None:
        """A grid even when there was nothing to train (the run was done); losses.png."""
        if not self.main:
            return
        if not trained:
            self.write_samples(self.s.trainer.iteration)
        with self.side_output(str(self.dir / "losses.png")):
            plot_losses(self.metrics, self.dir / "losses.png")


def match_metric_columns(path: Path, columns: list[str]) -> None:
    """A metrics CSV written by an older version (other columns) is rewritten under today's `columns`,
    each value kept under its name and new columns left empty, so a resumed run appends aligned rows."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] == columns:
        return
    old = rows[0]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows[1:]:
            values = dict(zip(old, row))
            writer.writerow([values.get(c, "") for c in columns])


def drop_rows_after(path: Path, step: int) -> None:
    """Cut a metrics CSV / eval JSONL back to `step`: rows a stopped run logged after its last
    checkpoint would otherwise appear twice once the resumed run logs those steps again."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    if path.suffix == ".jsonl":
        keep = [ln for ln in lines if ln.strip() and json.loads(ln)["step"] <= step]
    else:
        keep = lines[:1] + [ln for ln in lines[1:] if ln.strip() and int(ln.split(",", 1)[0]) <= step]
    if keep != lines:
        path.write_text("".join(keep))
