"""Multi-process training (DDP) on CPU with gloo: sharding, identical weights, rank-0-only files, resume.

The two-process tests run the package's own `train()` in two spawned processes (or the
CLI under torchrun), on localhost only. Spies wrap public functions inside each worker
to record what that rank drew, built and wrote; the parent compares the ranks.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp

from heroportraits.data.dataset import load_dataset
from heroportraits.training import distributed
from heroportraits.training.checkpoint import load_checkpoint
from heroportraits.training.distributed import DistInfo, DistributedError

# Regularisers that need care under DDP: lazy R1 (double backward through D), LeCam and
# ADA (statistics averaged over ranks), batch-norm in D (buffers), augmentation.
# Only a hang detector (a collective one rank never joins), not a speed test: 240 s was once exceeded
# on a 2-core VM that ran the whole suite at half speed, so the limit is generous.
HANG_S = 600
OVERRIDES = {
    "train.r1_gamma": 1.0,
    "train.r1_every": 2,
    "train.lecam_weight": 0.1,
    "train.ada_target": 0.6,
    "train.ada_interval": 2,
    "train.augment": "color,translation",
    "train.eval_every": 3,
    "train.eval_samples": 20,
}


# ---------------------------------------------------------------- helpers without processes
def test_detect_reads_the_launcher_environment(monkeypatch):
    for v in distributed.ENV_VARS:
        monkeypatch.delenv(v, raising=False)
    assert distributed.detect() == DistInfo() and not DistInfo().enabled
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(DistributedError, match="LOCAL_RANK"):
        distributed.detect()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    for v in distributed.RENDEZVOUS_VARS:
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(DistributedError, match="MASTER_ADDR"):  # where the ranks would meet: torchrun sets it
        distributed.detect()
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert distributed.detect() == DistInfo(rank=1, world_size=2, local_rank=1)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(DistributedError, match="RANK=2"):
        distributed.detect()


def test_shards_are_disjoint_cover_the_data_and_keep_the_label_mix():
    world = 3
    shards = [distributed.shard_indices(100, DistInfo(r, world)) for r in range(world)]
    assert sorted(torch.cat(shards).tolist()) == list(range(100))
    assert sorted(len(s) for s in shards) == [33, 33, 34]
    assert torch.equal(shards[1], distributed.shard_indices(100, DistInfo(1, world)))  # same on every call
    # An interleaved file (m, f, m, f, ...) must not give one rank a single gender.
    gender = torch.arange(100) % 2
    two = [distributed.shard_indices(100, DistInfo(r, 2)) for r in range(2)]
    assert all(0.3 < gender[s].float().mean() < 0.7 for s in two)
    with pytest.raises(DistributedError, match="fewer than"):
        distributed.shard_indices(1, DistInfo(0, 2))


def test_batch_is_global_and_seeds_differ_per_rank():
    assert distributed.per_rank_batch(16, DistInfo(1, 2)) == 8
    assert distributed.per_rank_batch(16, DistInfo()) == 16
    with pytest.raises(DistributedError, match="train.batch_size=15"):
        distributed.per_rank_batch(15, DistInfo(0, 2))
    assert distributed.rank_seed(7, DistInfo()) == 7  # single-process runs keep their seed
    assert distributed.rank_seed(7, DistInfo(1, 2)) != 7


# ---------------------------------------------------------------- two processes
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_free_ports() -> tuple[int, int]:
    ports = (_free_port(), _free_port())
    return ports if ports[0] != ports[1] else _two_free_ports()


def _digest(state_dict: dict) -> str:
    h = hashlib.sha256()
    for k, v in sorted(state_dict.items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _worker(rank: int, world: int, ports: tuple[int, int], root: str, out: str) -> None:
    """One rank: three train() calls (straight 6 steps; 3 steps, then resumed to 6) in one process
    group, with spies; then a fourth that opens and closes its own group."""
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(ports[0]),
        HEROPORTRAITS_ROOT=root,
    )
    torch.set_num_threads(1)
    from heroportraits.data import dataset
    from heroportraits.evaluation.during_training import TrainTimeScorer
    from heroportraits.training import loop, run_files, trainer
    from heroportraits.training.presets import resolve_config

    calls: list[dict] = []
    batch, setup_training, step = dataset.PortraitData.batch, loop.setup_training, trainer.Trainer.step
    save_ckpt, save_grid = run_files.save_checkpoint, run_files.save_grid_figure

    def spy_batch(self, idx):
        calls[-1]["drawn"] += [self.files[i] for i in idx.tolist()]
        return batch(self, idx)

    def spy_setup(*args, **kwargs):
        s = setup_training(*args, **kwargs)
        calls[-1].update(shard=list(s.shard.files), setup=s)
        return s

    def spy_step(self, next_batch, bare=False):
        calls[-1]["iterations"].append(self.iteration)
        return step(self, next_batch, bare)

    def spy_write(save, path_arg: int):
        def wrapped(*args, **kwargs):
            calls[-1]["writes"].append(os.path.basename(str(args[path_arg])))
            return save(*args, **kwargs)

        return wrapped

    dataset.PortraitData.batch, loop.setup_training, trainer.Trainer.step = spy_batch, spy_setup, spy_step
    run_files.save_checkpoint, run_files.save_grid_figure = spy_write(save_ckpt, 1), spy_write(save_grid, 2)

    # One process group for the three runs: train() joins the group only if none is open (and
    # then leaves it when done), so here it keeps this one.
    with distributed.process_group(torch.device("cpu")):
        for run, steps in (("straight", 6), ("resumed", 3), ("resumed", 6)):
            calls.append({"run": run, "drawn": [], "iterations": [], "writes": []})
            cfg = resolve_config("smoke", {**OVERRIDES, "train.steps": steps})
            result = loop.train(cfg, "toy", run, progress=False, scorer=TrainTimeScorer("toy"))
            s = calls[-1].pop("setup")
            calls[-1].update(
                step=result.step,
                batch=len(s.next_batch()[0]),
                G=_digest(distributed.unwrap(s.trainer.G).state_dict()),
                D=_digest(distributed.unwrap(s.trainer.D).state_dict()),
                G_ema=_digest(s.trainer.G_ema.state_dict()),
            )
        kept = torch.distributed.is_initialized()  # train() left the group it did not open
    # A notebook calling train() under torchrun: train() opens the group and closes it again. A fresh
    # rendezvous port: on the old one, a fast rank could reach the other's store before it is closed.
    os.environ["MASTER_PORT"] = str(ports[1])
    calls.append({"run": "again", "drawn": [], "iterations": [], "writes": []})
    cfg = resolve_config("smoke", {**OVERRIDES, "train.steps": 6})
    loop.train(cfg, "toy", "straight", progress=False, scorer=TrainTimeScorer("toy"))
    calls[-1].update(kept=kept, closed=not torch.distributed.is_initialized())
    calls[-1].pop("setup")
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(calls, f)


@pytest.fixture
def trained_judge(toy_dataset):
    """The toy set's judge, trained briefly and cached in data/toy/judge.pt for rank 0 to load."""
    from heroportraits.evaluation.judge import JudgeConfig, load_or_train_judge

    load_or_train_judge(toy_dataset, JudgeConfig(epochs=2), progress=False)
    return toy_dataset


def test_two_ranks_shard_data_agree_on_weights_and_resume_exactly(trained_judge, project_root, tmp_path):
    out = tmp_path / "ranks"
    out.mkdir()
    ctx = mp.start_processes(
        _worker, args=(2, _two_free_ports(), str(project_root), str(out)), nprocs=2, join=False, start_method="spawn"
    )
    deadline = time.time() + HANG_S
    while not ctx.join(timeout=5):
        if time.time() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"two-process training did not finish in {HANG_S} s (a collective one rank never joined?)")
    r0, r1 = (json.loads((out / f"rank{r}.json").read_text()) for r in range(2))
    for again in (r0.pop(), r1.pop()):  # nothing left to train; the group opened by train() is closed
        assert again["kept"] and again["closed"] and again["iterations"] == []
    train_files = load_dataset("toy", "train").files

    for a, b in zip(r0, r1):
        # Each rank drew only from its own shard; the shards split the train split between them.
        assert a["drawn"] and set(a["drawn"]) <= set(a["shard"]) and set(b["drawn"]) <= set(b["shard"])
        assert not set(a["shard"]) & set(b["shard"]) and sorted(a["shard"] + b["shard"]) == sorted(train_files)
        assert a["batch"] == b["batch"] == 8  # smoke's global batch 16 over 2 ranks
        # DDP + the per-step buffer broadcast: identical networks on both ranks.
        assert (a["G"], a["D"], a["G_ema"]) == (b["G"], b["D"], b["G_ema"])
        # Only rank 0 wrote checkpoints and grids.
        assert a["writes"] and b["writes"] == []
    straight, first, resumed = r0
    assert straight["writes"].count("last.pt") == 2 and "best.pt" in straight["writes"]
    assert resumed["iterations"] == [3, 4, 5] and r1[2]["iterations"] == [3, 4, 5]

    # What rank 0 saved is what both ranks hold; the resumed run equals the straight one.
    ckpt = project_root / "artifacts_gan" / "checkpoints"
    a, b = load_checkpoint(ckpt / "straight" / "last.pt"), load_checkpoint(ckpt / "resumed" / "last.pt")
    assert a["step"] == b["step"] == 6
    assert _digest(a["G"]) == straight["G"] == resumed["G"] == r1[2]["G"]
    for net in ("G", "D", "G_ema"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs after a two-rank resume"
    assert len(a["rng"]["ranks"]) == 2 and not torch.equal(*a["rng"]["ranks"])  # a noise stream per rank
    for x, y in zip(a["rng"]["ranks"], b["rng"]["ranks"]):
        assert torch.equal(x, y)

    # Evaluations: one row per evaluation step (rank 0 only), identical across the resume.
    rows = [json.loads(ln) for ln in (ckpt / "straight" / "eval.jsonl").read_text().splitlines()]
    rows_resumed = [json.loads(ln) for ln in (ckpt / "resumed" / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [r["step"] for r in rows_resumed] == [3, 6]
    assert [r["fd"] for r in rows] == pytest.approx([r["fd"] for r in rows_resumed], rel=1e-9)


TORCHRUN_MODELS = {  # the GAN with spectral norm, projection D and conditional batch-norm (buffers and
    # parametrisations under DDP), and the flow family (its G called for the velocity through DDP's wrapper)
    "resnet_sn_cbn": [
        "model.arch=resnet",
        "model.g_cond=cbn",
        "model.d_cond=projection",
        "model.d_spectral_norm=true",
        "train.r1_gamma=0.2",
    ],
    "flow": ["model.arch=unet", "train.attr_dropout=0.1", "draw.flow_steps=2"],
}


@pytest.mark.parametrize("model", list(TORCHRUN_MODELS))
def test_torchrun_cli_trains_two_ranks(model, toy_dataset, project_root):
    """The real launcher: `torch.distributed.run -m heroportraits train`."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "heroportraits",
        "train",
        "--dataset",
        toy_dataset,
        "--preset",
        "smoke",
        "--run-name",
        "cli",
        *[item for field in TORCHRUN_MODELS[model] for item in ("--set", field)],
    ]
    env = {**os.environ, "HEROPORTRAITS_ROOT": str(project_root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count('"run": "cli"') == 1  # the result is printed by rank 0 only
    state = load_checkpoint(project_root / "artifacts_gan" / "checkpoints" / "cli" / "last.pt")
    assert state["step"] == 6 and len(state["rng"]["ranks"]) == 2
    assert (project_root / "artifacts_gan" / "samples" / "cli" / "step_000006.png").exists()
