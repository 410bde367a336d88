"""The training loop: `train()`, one function read top to bottom.

    python -m heroportraits train --dataset procedural --preset cpu --run demo
    torchrun --nproc_per_node 4 -m heroportraits train --preset resnet_full_gpu --run-name big

Each iteration is `Trainer.step` (trainer.py); the pieces of a run are built by
`setup.setup_training`; the run's files (checkpoints, metrics, sample grids, evaluations;
see run_files.py) are written by rank 0. Re-running the same command resumes from last.pt.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from heroportraits.data.dataset import batch_warning, dataset_fingerprint, load_dataset
from heroportraits.progress import TrainingBar
from heroportraits.training import distributed
from heroportraits.training.checkpoint import foreign_weights
from heroportraits.training.config import Config, ConfigError, TrainConfig, validate_config
from heroportraits.training.distributed import DistInfo
from heroportraits.training.guards import StopSignals, check_logged
from heroportraits.training.run_files import RunFiles, RunScorer
from heroportraits.training.setup import resolve_device, restore, resume_checkpoint, setup_training


@dataclass
class TrainResult:
    run: str
    checkpoint: Path  # last.pt
    samples: Path  # folder of sample grids
    step: int
    seconds: float
    best: dict | None = None  # {"fd", "step"} of best.pt, the lowest train-time FD (eval_every > 0; rank 0)
    stopped_by: str | None = None  # "SIGINT" / "SIGTERM": stopped early by that signal, checkpoint written


def train(
    cfg: Config,
    dataset: str,
    run: str,
    resume: bool = True,
    progress: bool = True,
    scorer: RunScorer | None = None,
) -> TrainResult:
    """Train `run` on `dataset`, resuming its newest readable checkpoint unless resume=False, which sets the
    run's earlier files aside (in the run folder) and starts from step 0. With train.eval_every > 0,
    `scorer` scores the EMA generator every eval_every steps (eval.jsonl, best.pt): pass
    `evaluation.during_training.TrainTimeScorer(dataset)`, as the train verb does.

    Launched by torchrun, this process is one rank: it joins the process group for the run
    (and leaves it after), trains on its shard of the data and only rank 0 writes files.
    """
    validate_config(cfg)
    tc = cfg.train
    if tc.eval_every > 0 and scorer is None:
        raise ConfigError(
            f"train.eval_every={tc.eval_every} scores the run while it trains, so train() needs a scorer: pass "
            f"scorer=TrainTimeScorer({str(dataset)!r}) (heroportraits.evaluation.during_training), or set "
            "train.eval_every=0"
        )
    with distributed.process_group(resolve_device(tc.device)) as (info, device):
        # ---- data (the whole train split in memory), models, Trainer, this rank's batch sampler
        warning = batch_warning(tc.batch_size, dataset)
        if warning and info.is_main:
            print(warning, file=sys.stderr)  # in a notebook too, not only from the CLI
        data = load_dataset(dataset, "train")
        s = setup_training(cfg, data, device, info)
        s.dataset_fingerprint = dataset_fingerprint(dataset)  # a resume on other data is refused
        files = RunFiles(run, cfg, dataset, s, data.labels, scorer)  # + the fixed sample grid
        del data  # the loop needs only this rank's shard, already on the device
        trainer = s.trainer

        # ---- resume: every rank reads the run's newest readable checkpoint (networks, optimisers, ADA p /
        # LeCam anchors, its RNG, step); a fresh start sets an earlier run's files aside, never deletes them
        found = resume_checkpoint(files.dir, device, info) if resume else files.set_aside()
        if found is not None:
            path, state = found
            with foreign_weights(path):
                files.best = restore(s, state, cfg, path, dataset)
        start_step = step = trainer.iteration
        files.open(step, progress)  # rank 0: folders, config.json, logs cut back to `step`; the judge

        # ---- the loop; SIGINT / SIGTERM only flag a stop, the current step finishes
        show, interrupted = progress and info.is_main, False
        bar = TrainingBar(tc.steps, tc.max_minutes, step, desc=f"train {run}", disable=not show)
        with StopSignals() as signals, bar:
            while step < tc.steps:
                # ---- one iteration: D phase(s), G phase, EMA, ADA (see Trainer.step)
                stats = trainer.step(s.next_batch)
                step = trainer.iteration
                bar.update(step)

                # ---- logging (the only host sync): losses averaged over ranks, appended by rank 0;
                # a non-finite one stops the run before anything else is written (guards.py)
                logged = step % tc.log_every == 0 or step == tc.steps
                if logged:
                    check_logged(step, files.log(step, stats, trainer.noise_std(step - 1)), tc, files.last)
                    bar.set_postfix(files.postfix)
                interrupted = signals.requested(logged, info)
                out_of_time = _out_of_time(tc, files.start, logged, info)
                last = step == tc.steps or out_of_time

                # ---- samples, evaluation (eval.jsonl, best.pt) and checkpoints, written by rank 0;
                # an interrupted run only checkpoints
                do_eval = tc.eval_every > 0 and (step % tc.eval_every == 0 or last) and not interrupted
                do_checkpoint = step % tc.checkpoint_every == 0 or last or interrupted
                rng_states = distributed.all_gather(s.gen.get_state(), info) if do_eval or do_checkpoint else []
                if (step % tc.sample_every == 0 or last) and not interrupted:
                    files.write_samples(step)
                if do_eval:
                    bar.set_postfix(files.evaluate(step, rng_states))
                if do_checkpoint:
                    files.save(files.last, rng_states)
                if out_of_time or interrupted:
                    break
        files.close(trained=step > start_step)  # losses.png
        distributed.barrier(info)  # the other ranks return once rank 0's files are written
        stopped_by = signals.name if interrupted and step < tc.steps else None
    return TrainResult(run, files.last, files.sample_dir, step, time.time() - files.start, files.best, stopped_by)


def _out_of_time(tc: TrainConfig, start: float, logged: bool, info: DistInfo) -> bool:
    """train.max_minutes is up. Ranks stop together: under torchrun they compare clocks at log steps."""
    out = tc.max_minutes > 0 and time.time() - start > tc.max_minutes * 60
    if info.enabled and tc.max_minutes > 0:
        out = logged and distributed.any_rank(out, info)
    return out
