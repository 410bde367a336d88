"""`python -m heroportraits study SPEC`: train and evaluate every run of a study, then tabulate.

    python -m heroportraits study palette                    # a built-in spec, studies/palette.toml
    python -m heroportraits study mine.toml --shard 0/2      # every other run; shard 1/2 runs the rest
    python -m heroportraits study palette --budget minutes=20 --device cuda   # longer runs, own folder
    python -m heroportraits study palette --merge            # tables from runs/ gathered from shards
    python -m heroportraits study palette --smoke            # 4 steps a run, into palette-smoke/
    python -m heroportraits study mine.toml --seeds 0        # a one-seed screen of every variant first,
    python -m heroportraits study mine.toml --variants a,b   # then the other seeds of the ones that matter

A run is one variant with one seed. train() keeps its checkpoints in
artifacts_gan/checkpoints/study-<name>/<variant>-s<seed>/ and resumes their last.pt; the
study keeps its record of the run in artifacts_gan/studies/<name>/runs/<variant>-s<seed>/:
    run.json       the resolved config and budget (a run started under another spec is refused)
    segments.json  the steps training (re)started from: wall time is counted across restarts
    trained.json   training is done (steps, minutes, the step it resumed from)
    result.json    the evaluation, written last: the run is finished when it exists
    eval.jsonl, metrics.csv   copies of train-time FD and losses; samples.npy, the comparison strip; grid.png
Runs are independent, so shards may run on other processes, GPUs or machines; copy their
runs/ folders into one study folder and every table comes out as from one process. Once
every run has its result.json: results.csv, summary.csv, floor.csv, bars.png,
fd_vs_time.png (against steps for a step budget) and samples.png in artifacts_gan/studies/<name>/.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from heroportraits.errors import HeroError
from heroportraits.evaluation.during_training import TrainTimeScorer
from heroportraits.evaluation.evaluate import evaluate_sampler
from heroportraits.evaluation.masks import split_alpha
from heroportraits.evaluation.scores import floor, reference
from heroportraits.evaluation.tone import palette_tone
from heroportraits.paths import checkpoints_dir, studies_dir, write_json
from heroportraits.progress import progress_bar
from heroportraits.sampling.export import exported_bytes
from heroportraits.sampling.portraits import write_grid
from heroportraits.sampling.sampler import Sampler
from heroportraits.study import tables as T
from heroportraits.study.figures import plot_curves, plot_metric_bars, save_comparison_grid
from heroportraits.study.spec import Spec, StudyError, Variant, load_spec, parse_budget
from heroportraits.training.checkpoint import load_checkpoint
from heroportraits.training.config import Config
from heroportraits.training.figures import read_metric_file
from heroportraits.training.loop import train

GRID_COLUMNS = 10  # portraits per run in the side-by-side comparison
GRID_SEED = 1234  # their noise: the same in every run (for equal z sizes)
EVAL_SEED = 0  # noise and conditions of the evaluation samples


@dataclass(frozen=True)
class Run:
    variant: Variant
    seed: int
    index: int  # position in the spec's grid (variant-major); --shard splits the selected runs by position

    @property
    def id(self) -> str:
        return f"{self.variant.name}-s{self.seed}"


class Study:
    """A spec's runs and where each of them lives."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.folder = studies_dir() / spec.name
        self.runs = [Run(v, s, i) for i, (v, s) in enumerate((v, s) for v in spec.variants for s in spec.seeds)]

    def run_dir(self, run: Run) -> Path:
        return self.folder / "runs" / run.id

    def train_name(self, run: Run) -> str:
        """train()'s run name: checkpoints and samples under study-<name>/<run id>."""
        return f"study-{self.spec.name}/{run.id}"

    def checkpoint_dir(self, run: Run) -> Path:
        return checkpoints_dir() / self.train_name(run)

    def status(self, run: Run) -> str:
        folder = self.run_dir(run)
        if (folder / "result.json").exists():
            return "finished"
        if (folder / "trained.json").exists():
            return "trained"
        return "interrupted" if (self.checkpoint_dir(run) / "last.pt").exists() else "new"

    def missing(self) -> list[Run]:
        return [r for r in self.runs if self.status(r) != "finished"]


def parse_shard(text: str) -> tuple[int, int]:
    """`i/n` -> (i, n): this process runs the runs whose grid index is i modulo n."""
    try:
        i, n = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise StudyError(f"--shard {text!r}: expected i/n, e.g. --shard 0/2 and --shard 1/2") from None
    if not 0 <= i < n:
        raise StudyError(f"--shard {text!r}: need 0 <= i < n (shards are numbered from 0)")
    return i, n


# ---------------------------------------------------------------- wall time across restarts
def _logged_seconds(metrics_csv: Path) -> list[tuple[int, float]]:
    """(step, seconds since that process started) of every metrics.csv row."""
    if not metrics_csv.exists():
        return []
    m = read_metric_file(metrics_csv)
    if not {"step", "seconds"} <= set(m.columns):  # header only: nothing logged yet
        return []
    m = m.dropna(subset=["step", "seconds"])
    return [(int(step), float(seconds)) for step, seconds in zip(m["step"], m["seconds"])]


def training_seconds(rows: list[tuple[int, float]], starts: list[int], upto: int) -> float:
    """Training wall time up to step `upto` of a run that (re)started at the steps `starts`.

    Each process counts seconds from its own start, and a resumed run drops the rows after its
    checkpoint, so the rows in (start_j, start_j+1] are process j's: their last `seconds` is
    what it took from one restart to the next. Time spent after the last checkpoint by a
    killed process is not counted (that training was thrown away).
    """
    bounds = sorted({s for s in starts if s < upto} | {0}) + [upto]
    return sum(max((t for step, t in rows if a < step <= b), default=0.0) for a, b in zip(bounds[:-1], bounds[1:]))


# ---------------------------------------------------------------- one run
def _record(spec: Spec, run: Run, cfg: Config) -> dict:
    config = cfg.to_dict()
    config["train"].pop("device")  # where it runs does not change what it is
    record = {"study": spec.name, "variant": run.variant.name, "seed": run.seed, "dataset": spec.dataset}
    record.update(n=spec.n, budget=dataclasses.asdict(spec.budget), config=config)
    return json.loads(json.dumps(record))  # tuples -> lists, as read back


def _as_saved_now(record: dict) -> dict:
    """A run.json as this version writes it: an older one's config read the way checkpoints are read (its
    drawing fields, once model fields, in the draw section), so upgrading never refuses an unchanged run."""
    config = Config.from_dict(record["config"]).to_dict()
    config["train"].pop("device")
    return json.loads(json.dumps({**record, "config": config}))


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _check_record(path: Path, record: dict, run: Run, study: Study) -> None:
    """A run started under another spec (config, budget, n, dataset) is refused, never mixed in."""
    if path.exists():
        old = _as_saved_now(json.loads(path.read_text()))
        if old != record:
            a, b = _flat(old), _flat(record)
            diffs = [
                f"{k}: {a.get(k)!r} then, {b.get(k)!r} now" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
            ]
            raise StudyError(
                f"run {run.id} of study {study.spec.name!r} was started with another spec ({'; '.join(diffs[:3])}). "
                f"Restore the spec, give the study another --name, or delete {study.run_dir(run)} and "
                f"{study.checkpoint_dir(run)} to redo it"
            )
    else:
        write_json(path, record)


def _train(study: Study, run: Run, cfg, progress: bool) -> None:
    """Train (or resume) one run within its budget and write trained.json."""
    folder, ckpt_dir = study.run_dir(run), study.checkpoint_dir(run)
    last = ckpt_dir / "last.pt"
    start = int(load_checkpoint(last)["step"]) if last.exists() else 0
    seg_path = folder / "segments.json"
    starts = sorted(set(json.loads(seg_path.read_text()) if seg_path.exists() else []) | {start})
    write_json(seg_path, starts)
    before = training_seconds(_logged_seconds(ckpt_dir / "metrics.csv"), starts, start)
    step = start
    minutes = study.spec.budget.minutes
    if minutes is None or before < minutes * 60:
        if minutes is not None:  # a resumed run gets what is left of its wall time, not all of it again
            cfg.train.max_minutes = minutes - before / 60
        scorer = TrainTimeScorer(study.spec.dataset) if cfg.train.eval_every > 0 else None
        result = train(cfg, study.spec.dataset, study.train_name(run), resume=True, progress=progress, scorer=scorer)
        if result.stopped_by:  # Ctrl-C / SIGTERM: train() checkpointed; the run is not done
            raise StudyError(
                f"run {run.id} stopped by {result.stopped_by} at step {result.step} (checkpoint written); "
                f"re-run the same command to resume the study"
            )
        step = result.step
    seconds = training_seconds(_logged_seconds(ckpt_dir / "metrics.csv"), starts, step)
    write_json(folder / "trained.json", {"step": step, "resumed_from": start, "minutes": seconds / 60})


def comparison_labels(vocab) -> torch.Tensor:
    """GRID_COLUMNS conditions, the same for every run: attribute a takes value (column mod its size). (K, A)"""
    return torch.tensor([[k % size for size in vocab.sizes] for k in range(GRID_COLUMNS)], dtype=torch.long)


def evaluate_run(checkpoint: Path, dataset: str, n: int, device: str = "cpu") -> tuple[dict, Sampler]:
    """Every score (evaluate_sampler, no floor) and the palette tone (tone.palette_tone) of n portraits drawn as
    the run draws by default, conditions from the training mix, with how fast they were drawn
    (results["speed"]["drawn_per_s"]); also the sampler."""
    sampler = Sampler.from_checkpoint(checkpoint, device)
    ev = evaluate_sampler(sampler, n, EVAL_SEED, with_floor=False, dataset=dataset, progress=False)
    ev.results["palette"] = palette_tone(ev.images, ev.rows, dataset)
    ev.results["speed"] = {"drawn_per_s": len(ev.images) / max(ev.seconds["generate"], 1e-3)}
    return ev.results, sampler


def export_megabytes(checkpoint: Path) -> float:
    """The size of the file `export` writes for the run (TorchScript, made in memory: ONNX holds the same weights),
    in MB."""
    return len(exported_bytes(Sampler.from_checkpoint(checkpoint), "torchscript")) / 2**20


def run_one(study: Study, run: Run, device: str | None = None, progress: bool = True) -> dict:
    """Train (resuming), evaluate and record one run; returns its result.json content."""
    spec = study.spec
    cfg = spec.config(run.variant, run.seed)
    if device:
        cfg.train.device = device
    folder, ckpt_dir = study.run_dir(run), study.checkpoint_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    _check_record(folder / "run.json", _record(spec, run, cfg), run, study)
    if not (folder / "trained.json").exists():
        _train(study, run, cfg, progress)
    trained = json.loads((folder / "trained.json").read_text())

    t = time.time()
    results, sampler = evaluate_run(ckpt_dir / "last.pt", spec.dataset, spec.n, device or "cpu")
    seconds = time.time() - t
    for log in ("eval.jsonl", "metrics.csv"):  # the curves, readable where runs/ is merged without checkpoints
        if (ckpt_dir / log).exists():
            shutil.copyfile(ckpt_dir / log, folder / log)
    steps = max(int(trained["step"]), 1)
    results["speed"]["step_ms"] = trained["minutes"] * 60e3 / steps  # training wall time a step, evaluations included
    results["speed"]["export_mb"] = export_megabytes(ckpt_dir / "last.pt")
    strip = comparison_labels(sampler.vocab)
    np.save(folder / "samples.npy", split_alpha(sampler.generate_from_labels(strip, seed=GRID_SEED))[0])  # the colours
    write_grid(sampler, folder / "grid.png", seed=GRID_SEED)
    result = {
        "study": spec.name,
        "variant": run.variant.name,
        "seed": run.seed,
        "run": run.id,
        "preset": run.variant.preset,
        "dataset": spec.dataset,
        "budget": spec.budget.tag(),
        "n": spec.n,
        "steps": trained["step"],
        "train_minutes": round(trained["minutes"], 3),
        "evaluate_seconds": round(seconds, 2),
        "strip_conditions": ["/".join(sampler.vocab.decode(row).values()) for row in strip.tolist()],
        "metrics": T.flat_metrics(results),
        "evaluation": results,
    }
    write_json(folder / "result.json", result)  # last: from now on the run counts as finished
    return result


# ---------------------------------------------------------------- the study
@dataclass
class StudyOutcome:
    folder: Path
    finished: int  # runs of the whole spec with a result
    total: int
    tables: bool  # results.csv and the rest were written


def select_runs(study: Study, variants: list[str] | None = None, seeds: list[int] | None = None) -> list[Run]:
    """The runs of these variants and seeds (None = all): a screen at one seed, then more seeds of a few."""
    for name in variants or []:
        if name not in {v.name for v in study.spec.variants}:
            known = ", ".join(v.name for v in study.spec.variants)
            raise StudyError(f"--variants: study {study.spec.name!r} has no variant {name!r}; it has {known}")
    for seed in seeds or []:
        if seed not in study.spec.seeds:
            raise StudyError(f"--seeds: study {study.spec.name!r} has no seed {seed}; its seeds are {study.spec.seeds}")
    return [
        r for r in study.runs if (variants is None or r.variant.name in variants) and (seeds is None or r.seed in seeds)
    ]


def run_study(
    spec: Spec,
    shard: tuple[int, int] = (0, 1),
    device: str | None = None,
    progress: bool = True,
    variants: list[str] | None = None,
    seeds: list[int] | None = None,
):
    """Run this shard's unfinished runs (skipping finished ones), then the tables once all runs are in.
    `variants` / `seeds` narrow the runs first; the shard then splits what is left (every I-th of them)."""
    study = Study(spec)
    selected = select_runs(study, variants, seeds)
    mine = [r for i, r in enumerate(selected) if i % shard[1] == shard[0]]
    todo = [r for r in mine if study.status(r) != "finished"]
    if todo:
        with torch.random.fork_rng(devices=[]):  # the judge, trained once per dataset, before the bar starts
            reference(spec.dataset, progress=progress)
    bar = progress_bar(
        total=len(mine), initial=len(mine) - len(todo), unit="run", desc=f"study {spec.name}", disable=not progress
    )
    for run in todo:
        bar.set_postfix_str(run.id)
        run_one(study, run, device, progress)
        bar.update(1)
    bar.close()
    missing = study.missing()
    if not missing:
        write_tables(study, progress)
    elif progress:
        print(
            f"{len(study.runs) - len(missing)} of {len(study.runs)} runs finished; the tables are written when "
            f"the other shards' runs/ are in {study.folder / 'runs'} (or `study ... --merge --partial`)"
        )
    return StudyOutcome(study.folder, len(study.runs) - len(missing), len(study.runs), not missing)


def merge_study(spec: Spec, partial: bool = False, progress: bool = True) -> StudyOutcome:
    """The tables from the runs/ present (e.g. copied from the machines of each shard)."""
    study = Study(spec)
    missing = study.missing()
    if missing and not partial:
        raise StudyError(
            f"study {spec.name!r} misses {len(missing)} run(s) ({', '.join(r.id for r in missing[:5])}"
            f"{', ...' if len(missing) > 5 else ''}): copy their folders into {study.folder / 'runs'}, run the "
            f"missing shards, or pass --partial to tabulate the finished runs only"
        )
    if len(missing) == len(study.runs):
        raise StudyError(f"study {spec.name!r} has no finished run in {study.folder / 'runs'} yet")
    write_tables(study, progress)
    return StudyOutcome(study.folder, len(study.runs) - len(missing), len(study.runs), True)


def results_frame(study: Study) -> pd.DataFrame:
    """One row per finished run, in the spec's order (so every shard layout gives the same table)."""
    records = []
    for run in study.runs:
        path = study.run_dir(run) / "result.json"
        if path.exists():
            r = json.loads(path.read_text())
            records.append({**{k: r[k] for k in T.ID_COLUMNS}, **r["metrics"]})
    return pd.DataFrame(records)


def _curves(study: Study) -> dict[str, list[tuple[list[float], list[float]]]]:
    """Train-time FD per run, from runs/<id>/eval.jsonl: against cumulative training minutes for a minutes
    budget, against steps for a step budget (whose runs may share a machine, which changes their minutes)."""
    by_steps = not study.spec.budget.minutes
    curves: dict[str, list] = {}
    for run in study.runs:
        folder = study.run_dir(run)
        if not (folder / "eval.jsonl").exists() or not (folder / "result.json").exists():
            continue
        rows = [json.loads(line) for line in (folder / "eval.jsonl").read_text().splitlines() if line.strip()]
        if by_steps:
            curves.setdefault(run.variant.name, []).append(([r["step"] for r in rows], [r["fd"] for r in rows]))
            continue
        starts = json.loads((folder / "segments.json").read_text()) if (folder / "segments.json").exists() else [0]
        logged = _logged_seconds(folder / "metrics.csv")
        x = []
        for r in rows:
            restart = max([s for s in starts if s < r["step"]], default=0)
            x.append((training_seconds(logged, starts, restart) + r["seconds"]) / 60)
        curves.setdefault(run.variant.name, []).append((x, [r["fd"] for r in rows]))
    return curves


def write_tables(study: Study, progress: bool = True) -> Path:
    """results.csv, summary.csv, floor.csv and the figures of a study's finished runs."""
    spec, folder = study.spec, study.folder
    results = results_frame(study)
    results.to_csv(folder / "results.csv", index=False)
    order = [v.name for v in spec.variants]
    summary = T.summarise(results, spec.baseline, order)
    summary.to_csv(folder / "summary.csv", index=False)
    try:
        pd.DataFrame([T.flat_metrics(floor(spec.dataset, spec.n, progress=False))]).to_csv(
            folder / "floor.csv", index=False
        )
    except HeroError as e:  # e.g. merging on a machine without the dataset
        print(f"floor.csv not written: {e}")
    metrics = [m for m in spec.metrics if m in results.columns]
    values = {m: {v: results.loc[results["variant"] == v, m].tolist() for v in order} for m in metrics}
    title = f"{spec.name}: mean ± std over seeds ({spec.budget.describe()})"
    plot_metric_bars(values, folder / "bars.png", baseline=spec.baseline, title=title)
    xlabel = "wall time (minutes)" if spec.budget.minutes else "generator steps"
    plot_curves(_curves(study), folder / "fd_vs_time.png", xlabel=xlabel, title=f"{spec.name}: train-time FD")
    finished = [run for run in study.runs if (study.run_dir(run) / "samples.npy").exists()]
    strips = [(run.id, np.load(study.run_dir(run) / "samples.npy")) for run in finished]
    if strips and len({s.shape for _, s in strips}) == 1:
        columns = json.loads((study.run_dir(finished[0]) / "result.json").read_text()).get("strip_conditions")
        title = f"{spec.name}: the same noise and condition in each column"
        save_comparison_grid(strips, folder / "samples.png", columns, title=title)
    if progress:
        print(T.main_table(summary, metrics).to_string())
        print(f"wrote {folder}/results.csv, summary.csv and figures")
    return folder


# ---------------------------------------------------------------- CLI
def prepare_spec(
    spec: str | Path | Spec,
    dataset: str | None = None,
    budget: str | None = None,
    smoke: bool = False,
    name: str | None = None,
) -> Spec:
    """A spec as the CLI and notebook 04 use it: loaded, then --dataset, --budget, --smoke, --name."""
    s = spec if isinstance(spec, Spec) else load_spec(spec)
    if dataset:
        s = dataclasses.replace(s, dataset=dataset)
    if budget:
        s = s.with_budget(parse_budget(budget))
    if smoke:
        s = s.smoke()
    if name:
        s = dataclasses.replace(s, name=name)
    s.check()
    return s


def describe(spec: Spec, variants: list[str] | None = None, seeds: list[int] | None = None) -> str:
    """The plan: every run, its budget and whether it is finished (--dry-run); runs outside
    --variants / --seeds are marked so."""
    study = Study(spec)
    selected = {r.id for r in select_runs(study, variants, seeds)}
    lines = [
        f"study {spec.name!r} ({spec.source}): {len(spec.variants)} variants x {len(spec.seeds)} seeds = "
        f"{len(study.runs)} runs on {spec.dataset!r}, {spec.budget.describe()}, {spec.n} portraits per evaluation",
        f"folder {study.folder}; baseline {spec.baseline!r}",
    ]
    for run in study.runs:
        sets = " ".join(run.variant.overrides) or "(preset as is)"
        state = study.status(run) if run.id in selected else "not selected"
        lines.append(f"  [{run.index:3d}] {run.id:<24} {state:<12} --preset {run.variant.preset} {sets}")
    return "\n".join(lines)
