"""The memory layout of networks and their batches: channels-last (NHWC) where a setting asks for it.

oneDNN's convolutions on a CPU run faster on NHWC tensors; the values are the same in either layout, so a switch
(`train.channels_last`, `draw.channels_last`) only chooses speed. One function names the choice for every caller.
"""

from __future__ import annotations

import torch


def memory_layout(channels_last: bool) -> torch.memory_format:
    """torch.channels_last when asked, the plain (contiguous) layout otherwise."""
    return torch.channels_last if channels_last else torch.contiguous_format
