"""Multi-GPU and multi-node training with torch.distributed (DDP), kept out of the loop.

    torchrun --nproc_per_node 4 -m heroportraits train --preset resnet_full_gpu ...
    torchrun --nnodes 2 --node_rank R --master_addr HOST --nproc_per_node 8 -m heroportraits train ...

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them every helper here is a
no-op, so a plain `python -m heroportraits train` is the world-size-1 special case.
Each rank draws batches from its own shard of the in-memory dataset with its own
noise stream; `train.batch_size` is the global batch (batch_size / world_size per
rank). DDP averages gradients, and buffers are broadcast from rank 0 after every step,
so all ranks keep identical networks. Rank 0 alone writes samples, checkpoints,
metrics and evaluations; every rank reads the checkpoint on resume (the run folder must
be on a filesystem all nodes share) and restores its own random stream from it.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from heroportraits.errors import HeroError

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
RENDEZVOUS_VARS = ("MASTER_ADDR", "MASTER_PORT")  # where the ranks meet: torchrun sets them with the others
# How long a rank waits in a collective for the others. Generous: rank 0 alone trains the
# evaluation judge (once per dataset), writes sample grids and checkpoints while the others wait.
TIMEOUT = timedelta(minutes=30)
# torch >= 2.12 renamed broadcast_buffers to forward_sync_buffers (both still sync once at init).
_NO_FORWARD_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else {"broadcast_buffers": False}
)


class DistributedError(HeroError):
    """A half-set launcher environment or a device the ranks cannot share."""


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0  # global rank, 0..world_size-1
    world_size: int = 1  # processes in the job (all nodes)
    local_rank: int = 0  # rank on this node: picks the GPU
    backend: str = ""  # "nccl" (CUDA) or "gloo" (CPU); "" when not distributed

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and shows progress."""
        return self.rank == 0


def detect() -> DistInfo:
    """Read the launcher's environment (torchrun / torch.distributed.run / SLURM wrappers that set it)."""
    present = [v for v in ENV_VARS if v in os.environ]
    if not present:
        return DistInfo()
    if len(present) != len(ENV_VARS):
        missing = sorted(set(ENV_VARS) - set(present))
        raise DistributedError(
            f"distributed environment is incomplete: {present} set but {missing} missing. "
            f"Launch with `torchrun --nproc_per_node N -m heroportraits train ...`, or unset {present}."
        )
    try:
        rank, world, local = (int(os.environ[v]) for v in ENV_VARS)
    except ValueError:
        shown = ", ".join(f"{v}={os.environ[v]!r}" for v in ENV_VARS)
        raise DistributedError(f"distributed environment {shown}: each must be a whole number") from None
    if not 0 <= rank < world:
        raise DistributedError(f"RANK={rank} is outside 0..WORLD_SIZE-1 (WORLD_SIZE={world})")
    unset = [v for v in RENDEZVOUS_VARS if v not in os.environ]
    if world > 1 and unset and not dist.is_initialized():
        raise DistributedError(
            f"distributed environment is incomplete: RANK, WORLD_SIZE and LOCAL_RANK are set but {unset} are not, so "
            f"the ranks cannot meet. Launch with `torchrun --nproc_per_node N -m heroportraits train ...`, or unset "
            f"{list(ENV_VARS)}."
        )
    return DistInfo(rank, world, local)


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[tuple[DistInfo, torch.device]]:
    """Join the process group (if launched by torchrun) for the block, and leave it afterwards.

    Yields (info, this rank's device). CUDA: one GPU per process (cuda:LOCAL_RANK), NCCL;
    CPU: gloo. Outside torchrun, (DistInfo(), device) and nothing else. The group is left
    (after a barrier) only if this block joined it, so a caller that holds a group across
    several runs (a test, a notebook looping over train()) keeps it, while a notebook calling
    train() once under torchrun does not leave it open.
    """
    info = detect()
    if not info.enabled:
        yield info, device
        return
    info, device = _rank_device(info, device)
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group(info.backend, timeout=TIMEOUT)
    try:
        yield info, device
        if owned:
            dist.barrier()  # every rank done; a rank that raised skips this and leaves at once
    finally:
        if owned and dist.is_initialized():
            dist.destroy_process_group()


def _rank_device(info: DistInfo, device: torch.device) -> tuple[DistInfo, torch.device]:
    """This rank's device and backend: cuda:LOCAL_RANK with NCCL, or the CPU with gloo."""
    if device.type == "cuda":
        if info.local_rank >= torch.cuda.device_count():
            raise DistributedError(
                f"LOCAL_RANK={info.local_rank} but this node has {torch.cuda.device_count()} GPU(s); "
                f"use --nproc_per_node <= {torch.cuda.device_count()}"
            )
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise DistributedError(f"distributed training supports cuda and cpu devices, not {device}")
    return DistInfo(info.rank, info.world_size, info.local_rank, backend), device


def shard_indices(n: int, info: DistInfo, seed: int = 0) -> torch.Tensor:
    """This rank's rows of an n-row dataset: a disjoint shard, the shards together cover all rows.

    Rows are dealt out in a seeded random order (the same on every rank), not in file
    order: a file sorted by class, or interleaved (m, f, m, f, ...), would otherwise give
    a rank only some of the label mix. Returned sorted, (ceil or floor of n / world,).
    """
    if n < info.world_size:
        raise DistributedError(f"dataset has {n} training images, fewer than the {info.world_size} ranks")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[info.rank :: info.world_size].sort().values


def per_rank_batch(batch_size: int, info: DistInfo) -> int:
    """`train.batch_size` is the global batch: each rank draws batch_size / world_size images,
    so a preset's learning rates, EMA half-life and ADA speed mean the same on any number of GPUs."""
    if batch_size % info.world_size:
        fit = batch_size // info.world_size * info.world_size or info.world_size
        raise DistributedError(
            f"train.batch_size={batch_size} is the global batch, split evenly over {info.world_size} ranks; "
            f"use a multiple of {info.world_size} (e.g. --set train.batch_size={fit})"
        )
    return batch_size // info.world_size


def rank_seed(seed: int, info: DistInfo) -> int:
    """Different batch/noise stream per rank, same as `seed` on rank 0 (single-process runs unchanged)."""
    return seed + 1_000_003 * info.rank


def wrap(module: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """DDP around a network, or the network itself when not distributed.

    DDP all-reduces (averages) the gradients in backward, so the optimiser steps keep the
    parameters identical on every rank. Its per-forward buffer broadcast is off: the
    Trainer runs some forwards through the plain module (G under no_grad in the D phase,
    D in the G phase), which that broadcast would not cover, and D runs 2-3 times per
    step. Instead `sync_buffers` broadcasts every buffer once per step, coalesced, at the
    step's end, where rank 0's checkpoint then describes every rank. Initial parameters
    and buffers are still broadcast from rank 0 when the wrapper is built.
    """
    if not info.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, **_NO_FORWARD_BUFFER_SYNC)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain network inside a DDP and/or torch.compile wrapper: for state_dicts, the EMA
    copy and parameter counts, which must not see the wrappers' key prefixes."""
    module = without_ddp(module)
    return getattr(module, "_orig_mod", module)


def without_ddp(module: nn.Module) -> nn.Module:
    """The network without its DDP wrapper but still compiled (train.compile): for forwards whose
    backward must not all-reduce gradients (G under no_grad in the D phase, D in the G phase),
    at compiled speed. `unwrap` would also drop the compiled graph, which is why both exist."""
    return module.module if isinstance(module, DistributedDataParallel) else module


@torch.no_grad()
def sync_buffers(module: nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (batch-norm statistics, spectral-norm vectors) to every rank.

    Called after every training step, so all ranks hold the same networks and a checkpoint
    resumes them exactly. One broadcast per dtype (the buffers flattened together).
    """
    if not info.enabled:
        return
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for b in unwrap(module).buffers():
        by_dtype.setdefault(b.dtype, []).append(b)
    for bufs in by_dtype.values():
        flat = torch.cat([b.reshape(-1) for b in bufs])
        dist.broadcast(flat, src=0)
        for b, src in zip(bufs, flat.split([b.numel() for b in bufs])):
            b.copy_(src.view_as(b))


def mean_over_ranks(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average a small tensor of metrics across ranks (for logging); identity when not distributed."""
    if not info.enabled:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / info.world_size


def all_gather(obj, info: DistInfo) -> list:
    """Every rank's `obj` (picklable: a generator state, a flag), in rank order; [obj] when not distributed."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank if it is true on any (e.g. one rank ran out of time: all stop together)."""
    return any(all_gather(bool(flag), info))


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()
