"""Latent walks: a strip PNG and an animated GIF of the generator moving between two points.

    python -m heroportraits sample RUN --interpolate seed=0:1:2:0 --set hero_class=mage --out walk.png
    python -m heroportraits sample RUN --interpolate palette=warm:cool --seed 3 --out warm_cool.png

`seed=A:B:...` walks the noise from seed A's to seed B's (and on) under one fixed condition, by
spherical interpolation: a Gaussian z in many dimensions lives near a sphere, and the straight
line between two such points cuts inside it (its middle is ~30% shorter), where the generator
saw no noise in training. `ATTR=V1:V2:...` keeps the noise and walks the condition: the one-hot
weights of the two values are mixed linearly, which moves every embedding the generator reads
(concat tables, conditional batch-norm gains and biases) along the straight line between the
two values' embeddings (models.conditioning.lookup). The first and last frames of a walk are the
portraits `sample` draws for its endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from heroportraits.data.attributes import LabelError
from heroportraits.data.images import make_grid, nearest_upscale, save_png
from heroportraits.models.conditioning import soft_labels
from heroportraits.paths import output_file, writing
from heroportraits.sampling.sampler import Sampler

NOISE_WALK = "seed"  # `--interpolate seed=0:1` walks the noise; any other name is an attribute


class WalkError(LabelError):
    """A `--interpolate` spec that cannot be walked."""


@dataclass
class Walk:
    """What to walk: the noise between seeds (`what == "seed"`), or attribute `what` between values."""

    what: str
    stops: list[str]
    frames: int = 8  # frames per segment, both ends included (segments share their ends)


def parse_walk(spec: str, frames: int = 8) -> Walk:
    """ "seed=0:1:2" or "palette=warm:cool" -> Walk."""
    what, sep, rest = spec.partition("=")
    stops = [s.strip() for s in rest.split(":")] if sep else []
    if not what.strip() or len(stops) < 2 or not all(stops):
        raise WalkError(f"--interpolate expects ATTR=A:B[:C...] or seed=S1:S2[:S3...], got {spec!r}")
    if what.strip() == NOISE_WALK and not all(s.lstrip("-").isdigit() for s in stops):
        raise WalkError(f"seed walks take integer seeds, e.g. seed=0:1; got {spec!r}")
    if frames < 2:
        raise WalkError(f"a walk needs at least 2 frames per segment, got --frames {frames}")
    return Walk(what.strip(), stops, frames)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between vectors a and b (D,) at fractions t (T,) -> (T, D).

    Follows the great circle between the two directions while the norm moves linearly from |a|
    to |b|, so every point looks like a Gaussian sample of that size. t = 0 and 1 give a and b.
    Nearly parallel vectors (no well-defined circle) fall back to the straight line.
    """
    t = t[:, None].to(a.dtype)
    na, nb = a.norm(), b.norm()
    cos = torch.dot(a / na, b / nb).clamp(-1, 1)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:
        return (1 - t) * a + t * b  # exact at t = 0 and 1
    direction = (torch.sin((1 - t) * omega) * (a / na) + torch.sin(t * omega) * (b / nb)) / torch.sin(omega)
    out = direction * ((1 - t) * na + t * nb)  # a unit direction on the arc, scaled to the interpolated norm
    ends = t[:, 0] == 0, t[:, 0] == 1
    out[ends[0]], out[ends[1]] = a, b  # exactly, not up to rounding: a walk starts and ends on plain samples
    return out


def _fractions(frames: int) -> torch.Tensor:
    return torch.linspace(0, 1, frames, dtype=torch.float64)


def walk_inputs(
    sampler: Sampler,
    walk: Walk,
    conditions: dict[str, str] | None = None,
    seed: int = 0,
    open_attributes: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The walk's noise (F, z_dim) and condition weights (F, A, K) in the conditioning vocabulary."""
    conditions = dict(conditions or {})
    cols = sampler.cond_cols
    if walk.what == NOISE_WALK:
        row = sampler.draw_conditions(1, conditions, seed, open_attributes)[:, cols]  # (1, A)
        seeds = [int(s) for s in walk.stops]
        segments = [
            slerp(sampler.noise(1, a)[0].double(), sampler.noise(1, b)[0].double(), _fractions(walk.frames))
            for a, b in zip(seeds[:-1], seeds[1:])
        ]
        z = _join(segments).float()
        return z, soft_labels(row, sampler.cvocab.sizes).expand(len(z), -1, -1)
    if walk.what not in sampler.cvocab.attributes:
        raise WalkError(
            f"cannot walk {walk.what!r}: this model is conditioned on {sampler.cvocab.names} "
            f"(or walk the noise: seed=0:1)"
        )
    if walk.what in conditions:
        raise WalkError(f"{walk.what!r} is both walked and fixed by --set; drop one of them")
    # The other attributes: one draw under the first stop, kept for the whole walk.
    base = sampler.draw_conditions(1, {**conditions, walk.what: walk.stops[0]}, seed, open_attributes)
    a = sampler.vocab.names.index(walk.what)
    rows = base.repeat(len(walk.stops), 1)
    rows[:, a] = torch.tensor([sampler.vocab.encode_value(walk.what, v) for v in walk.stops])
    weights = soft_labels(rows[:, cols], sampler.cvocab.sizes).double()  # (stops, A, K)
    t = _fractions(walk.frames)[:, None, None]
    segments = [(1 - t) * u + t * v for u, v in zip(weights[:-1], weights[1:])]
    w = _join(segments).float()
    return sampler.noise(1, seed).expand(len(w), -1), w


def _join(segments: list[torch.Tensor]) -> torch.Tensor:
    """Consecutive segments share their ends: keep each end once."""
    return torch.cat([segments[0], *(s[1:] for s in segments[1:])])


def walk_frames(sampler: Sampler, walk: Walk, conditions=None, seed: int = 0, open_attributes=None) -> np.ndarray:
    """(F, 64, 64, 3) uint8 frames of the walk: G's portrait of each noise on the path. D-guided sampling
    (refinement, best-of) is left out: it moves or swaps each noise on its own, so the frames would jump."""
    z, weights = walk_inputs(sampler, walk, conditions, seed, open_attributes)
    return sampler.render(z, weights)


def save_walk(frames: np.ndarray, out: str | Path, duration_ms: int = 120, zoom: int = 4) -> tuple[Path, Path]:
    """Write the frames as one strip (out, .png) and an animated GIF beside it, zoomed x`zoom`.

    GIF keeps up to 256 colours per frame, plenty for pixel art; identical consecutive frames are
    merged into one held longer (Pillow), so the total duration stays frames x duration_ms.
    """
    out = Path(out)
    strip = save_png(make_grid(frames, nrow=len(frames)), out.with_suffix(".png"))
    big = [Image.fromarray(nearest_upscale(f, zoom)) for f in frames]
    gif = out.with_suffix(".gif")
    big[0].save(gif, save_all=True, append_images=big[1:], duration=duration_ms, loop=0, optimize=False)
    return strip, gif


def write_walk(
    sampler: Sampler, spec: str, out: str | Path, frames: int = 8, conditions=None, seed: int = 0, open_attributes=None
) -> tuple[Path, Path]:
    """Parse `spec`, draw the walk, write strip + GIF."""
    walk = parse_walk(spec, frames)
    out = output_file(out, "walk")
    frames = walk_frames(sampler, walk, conditions, seed, open_attributes)
    with writing(out, "walk", WalkError):
        return save_walk(frames, out)
