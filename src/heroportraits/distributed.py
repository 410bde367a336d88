"""Multi-GPU and multi-node training with torch.distributed (DDP), kept out of the loop.

    torchrun --nproc_per_node 4 -m heroportraits train --preset resnet_full_gpu ...
    torchrun --nnodes 2 --node_rank R --master_addr HOST --nproc_per_node 8 -m heroportraits train ...

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them every helper here is a
no-op, so a plain `python -m heroportraits train` is the world-size-1 special case.
Each rank draws batches from its own shard of the in-memory dataset with its own
noise stream; DDP averages gradients so all ranks keep identical weights. Rank 0
alone writes samples, checkpoints and metrics; every rank reads the checkpoint on resume.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
# torch >= 2.12 renamed broadcast_buffers to forward_sync_buffers (both still sync once at init).
_NO_FORWARD_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else {"broadcast_buffers": False}
)


class DistributedError(ValueError):
    """A half-set launcher environment or a device the ranks cannot share."""


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0            # global rank, 0..world_size-1
    world_size: int = 1      # processes in the job (all nodes)
    local_rank: int = 0      # rank on this node: picks the GPU
    backend: str = ""        # "nccl" (CUDA) or "gloo" (CPU); "" when not distributed

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
    rank, world, local = (int(os.environ[v]) for v in ENV_VARS)
    if not 0 <= rank < world:
        raise DistributedError(f"RANK={rank} is outside 0..WORLD_SIZE-1 (WORLD_SIZE={world})")
    return DistInfo(rank, world, local)


def setup(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group (if launched by torchrun) and pick this rank's device.

    CUDA: one GPU per process (cuda:LOCAL_RANK), NCCL. CPU: gloo. Returns the info and
    the device this rank trains on; a no-op outside torchrun.
    """
    info = detect()
    if not info.enabled:
        return info, device
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
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return DistInfo(info.rank, info.world_size, info.local_rank, backend), device


def shard_indices(n: int, info: DistInfo) -> torch.Tensor:
    """This rank's rows of an n-row dataset: a strided (round-robin) disjoint shard.

    Strided rather than contiguous so that every shard sees the whole label mix even
    when the file is sorted by class.
    """
    if n < info.world_size:
        raise DistributedError(f"dataset has {n} training images, fewer than the {info.world_size} ranks")
    return torch.arange(info.rank, n, info.world_size)


def rank_seed(seed: int, info: DistInfo) -> int:
    """Different batch/noise stream per rank, same as `seed` on rank 0 (single-process runs unchanged)."""
    return seed + 1_000_003 * info.rank


def wrap(module: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """DDP around a network, or the network itself when not distributed.

    No buffer sync on forward: buffers (batch-norm running stats, spectral-norm power
    iteration vectors) stay per rank. Broadcasting them on every forward would (a)
    overwrite the in-place power-iteration update that spectral norm makes during the
    forward and (b) mutate tensors that R1's double backward still needs. Parameters,
    the only thing gradients change, are kept identical by the gradient all-reduce.
    """
    if not info.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, **_NO_FORWARD_BUFFER_SYNC)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain network inside a DDP wrapper (for state_dicts, EMA and the regularisation phases)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


@torch.no_grad()
def sync_buffers(module: nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers to every rank (before a checkpoint, so all ranks hold the saved state)."""
    if info.enabled:
        for b in unwrap(module).buffers():
            dist.broadcast(b, src=0)


def mean_over_ranks(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average a small tensor of metrics across ranks (for logging); identity when not distributed."""
    if not info.enabled:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / info.world_size


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    """Wait for every rank, then leave the process group (call once at the end of training)."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
