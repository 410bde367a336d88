"""Where bf16 is worth using: training's autocast (`train.amp`) and the drawing's passes (`draw.bf16`) both ask.

oneDNN computes bf16 natively on a CPU with AVX512-BF16 or AMX and emulates it elsewhere (in general slower than
float32), so bf16 is used only where it is native and float32 everywhere else: the same switch runs on any machine.
"""

from __future__ import annotations

import contextlib

import torch


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 natively: CUDA, or a CPU with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, so looked up defensively
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def bf16_autocast(device: torch.device, on: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on `device` when `on` and the device computes bf16 natively; a no-op context otherwise (no
    autocast region at all, so an exported graph holds none)."""
    if on and native_bf16(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
