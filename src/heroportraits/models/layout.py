"""The memory layout of networks and their batches: channels-last (NHWC) where a setting asks for it.

The values are the same in either layout, so a switch (`train.channels_last`, `draw.channels_last`) only chooses
speed: oneDNN drew a flow model's portraits 1.35-1.55x faster in NHWC on a 2-core Xeon (docs/results.md 4g), while a
flow training step gained nothing (4). One function names the choice for every caller.
"""

from __future__ import annotations

import torch


def memory_layout(channels_last: bool) -> torch.memory_format:
    """torch.channels_last when asked, the plain (contiguous) layout otherwise."""
    return torch.channels_last if channels_last else torch.contiguous_format
