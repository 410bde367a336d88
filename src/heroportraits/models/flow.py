"""The flow family: conditional flow matching on the native grid (`model.arch=unet`).

A U-Net learns the velocity that carries Gaussian noise to a portrait along straight lines (rectified flow,
Liu et al. 2022; flow matching, Lipman et al. 2022): with x_t = (1 - t) noise + t data, it is trained to
predict data - noise at x_t, and sampling integrates dx/dt = v(x, t, labels) from t = 0 (noise) to 1 with a
few Euler or Heun steps. Every attribute conditions it; trained with attribute dropout it also learns the
unconditional velocity, so classifier-free guidance (Ho & Salimans 2022) can push each portrait towards its
labels (v_uncond + w (v_cond - v_uncond)), and attributes can be left open (`any`) as with the GAN.

`FlowGenerator` is the family's G: `forward(z, labels)` draws portraits from noise z (N, 3 * R * R) with the
drawing it was given (steps, solver, guidance, and the same per-portrait colour quantisation as the GAN), so
the sampler, the grids written while training, walks and exported files use it exactly as they use a GAN's
G; `forward(x, labels, t)` is the velocity the training step fits (`flow_matching_loss`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from heroportraits.data.attributes import Vocabulary
from heroportraits.errors import HeroError
from heroportraits.models.conditioning import AttributeEmbedding
from heroportraits.models.config import FLOW_SOLVERS, DrawOptions, ModelConfig, image_channels
from heroportraits.models.palette_output import RGBOutput
from heroportraits.models.precision import bf16_autocast


class GuidanceError(HeroError):
    """A drawing that guides an attribute the model does not have."""


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """t (N,) in [0, 1] -> (N, dim) sinusoids at geometric frequencies (Vaswani et al. 2017)."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm, SiLU, conv, then the step's embedding as a scale and shift (adaptive norm), SiLU, conv; plus
    the input. The last conv starts at zero, so a new block starts as the identity."""

    def __init__(self, cin: int, cout: int, emb_dim: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(min(8, cin), cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(min(8, cout), cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.conv2.weight), nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.conv2(F.silu(self.norm2(h) * (1 + scale) + shift))
        return self.skip(x) + h


class Attention(nn.Module):
    """Self-attention over the positions of a small feature map (the lowest resolutions), with a residual."""

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.norm, self.heads = nn.GroupNorm(min(8, channels), channels), heads
        self.qkv, self.proj = nn.Conv2d(channels, 3 * channels, 1), nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight), nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class VelocityUNet(nn.Module):
    """(x_t (N, C, R, R), t (N,), labels (N, A)) -> velocity (N, C, R, R); C = 3, or 4 with model.alpha.

    Widths g_width x (1, 2, 4, 4, ...) from R down to 8x8 (each level then costs about the same),
    `flow_blocks` residual blocks a level, attention at 8x8 and below; the time and the attribute
    embeddings are summed into the one embedding every block reads."""

    def __init__(self, cfg: ModelConfig, vocab: Vocabulary, resolution: int):
        super().__init__()
        levels = max(1, int(math.log2(resolution // 8)) + 1)  # 32 -> 32, 16, 8
        widths = [cfg.g_width * min(2**i, 4) for i in range(levels)]  # channels double as the side halves
        emb_dim = 4 * cfg.g_width
        self.time_dim = cfg.g_width
        self.time_mlp = nn.Sequential(nn.Linear(self.time_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.embed = AttributeEmbedding(vocab, cfg.embed_dim)
        self.label_proj = nn.Linear(max(self.embed.out_dim, 1), emb_dim)
        self.stem = nn.Conv2d(image_channels(cfg), widths[0], 3, padding=1)
        self.down, self.up = nn.ModuleList(), nn.ModuleList()
        skips, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(cfg.flow_blocks):
                blocks.append(ResBlock(cin, w, emb_dim))
                cin = w
                skips.append(w)
            attn = Attention(w) if resolution >> i <= 8 else nn.Identity()
            down = nn.Conv2d(w, w, 3, stride=2, padding=1) if i < len(widths) - 1 else nn.Identity()
            self.down.append(nn.ModuleDict({"blocks": blocks, "attn": attn, "down": down}))
        self.mid = nn.ModuleList([ResBlock(cin, cin, emb_dim), Attention(cin), ResBlock(cin, cin, emb_dim)])
        for i, w in reversed(list(enumerate(widths))):
            blocks = nn.ModuleList()
            for _ in range(cfg.flow_blocks):
                blocks.append(ResBlock(cin + skips.pop(), w, emb_dim))
                cin = w
            attn = Attention(w) if resolution >> i <= 8 else nn.Identity()
            up = nn.Conv2d(w, w, 3, padding=1) if i > 0 else nn.Identity()
            self.up.append(nn.ModuleDict({"blocks": blocks, "attn": attn, "up": up}))
        out = nn.Conv2d(cin, image_channels(cfg), 3, padding=1)
        self.head = nn.Sequential(nn.GroupNorm(min(8, cin), cin), nn.SiLU(), out)
        nn.init.zeros_(self.head[-1].weight), nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb = self.time_mlp(time_embedding(t, self.time_dim))
        if self.embed.out_dim:
            emb = emb + self.label_proj(self.embed(labels))
        h, skips = self.stem(x), []
        for level in self.down:
            for block in level["blocks"]:
                h = level["attn"](block(h, emb))
                skips.append(h)
            h = level["down"](h)
        h = self.mid[2](self.mid[1](self.mid[0](h, emb)), emb)
        for level in self.up:
            for block in level["blocks"]:
                h = level["attn"](block(torch.cat([h, skips.pop()], dim=1), emb))
            if not isinstance(level["up"], nn.Identity):
                h = level["up"](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.head(h)


def guidance_plan(
    spec: str, attributes: list[str], scale: float, option: str = "draw.guidance_on", flag: str = "--guidance-on"
) -> tuple[list[bool], list[float] | None]:
    """draw.guidance_on (or the option that sets it, named in refusals) as one flag per attribute (all where it is
    empty) and, where any entry gives its own scale (`hero_class=1.5,palette=2`; an entry without one takes
    `scale`), the scales of the guided attributes in vocabulary order. A name the model lacks, or a scale that is
    no number, is refused."""
    entries = [e.strip() for e in spec.split(",") if e.strip()]
    scales: dict[str, float] = {}
    for entry in entries:
        name, _, given = (s.strip() for s in entry.partition("="))
        if name not in attributes:
            raise GuidanceError(
                f"{option}={spec!r} ({flag}): this model has no attribute {name!r}; name some of {attributes}, "
                "comma-separated (each with =SCALE to guide it at its own), or leave it empty"
            )
        try:
            scales[name] = float(given) if given else scale
        except ValueError:
            raise GuidanceError(f"{option}={spec!r} ({flag}): {given!r} is no scale; write {name}=1.5, say") from None
    guided = [not entries or n in scales for n in attributes]
    own = any("=" in e for e in entries)
    return guided, [scales[n] for n in attributes if n in scales] if own else None


class FlowGenerator(nn.Module):
    """The flow family's G: the velocity network, and the sampler that draws portraits with it.

    forward(z (N, C * R * R), labels) -> portraits (N, C, R, R) in [-1, 1]: `steps` steps of `solver` from the
        noise z at t = 0 to t = 1, guided with scale `guidance` (1 = the conditional velocity alone) on the passes
        whose t lies in [guidance_from, guidance_until), then the run's colours (per-portrait quantisation, as the
        GAN's RGB output in eval mode).
    forward(x, labels, t (N,)) -> the velocity at x_t: what training fits (through DDP's wrapper under torchrun).
    labels: (N, A) indices, or (N, A, K) weights (walks between attribute values)."""

    def __init__(self, cfg: ModelConfig, vocab: Vocabulary, resolution: int, palette: torch.Tensor | None = None):
        super().__init__()
        self.resolution, self.channels = resolution, image_channels(cfg)
        self.z_dim = self.channels * resolution * resolution  # the sampler's noise is the starting image
        self.net = VelocityUNet(cfg, vocab, resolution)
        self.out = RGBOutput(squash=False, alpha=cfg.alpha)  # clamped to [-1, 1]; quantised when drawing asks
        self.unspecified = list(vocab.sizes)  # each attribute's "any" index: the unconditional labels
        self.attributes = list(vocab.names)
        self.steps, self.solver, self.guidance, self.bf16 = 16, "heun", 1.0, False
        self.guidance_from, self.guidance_until = 0.0, 1.0
        self.guided_attributes = [True] * len(self.attributes)  # which attributes guidance pushes
        self.attribute_scales: list[float] | None = None  # a scale per guided attribute (compositional), or joint
        self.use_drawing(DrawOptions())

    def use_drawing(self, draw: DrawOptions) -> None:
        """Draw with `draw`'s steps, solver, guidance and its interval, and precision
        (models.palette_output.draw_in_colours calls it)."""
        if draw.flow_solver not in FLOW_SOLVERS:
            raise ValueError(f"flow solver {draw.flow_solver!r} is not one of {list(FLOW_SOLVERS)}")
        self.steps, self.solver, self.guidance = int(draw.flow_steps), draw.flow_solver, float(draw.guidance)
        self.guidance_from, self.guidance_until = float(draw.guidance_from), float(draw.guidance_until)
        self.guided_attributes, self.attribute_scales = guidance_plan(draw.guidance_on, self.attributes, self.guidance)
        self.bf16 = bool(draw.bf16)

    def forward(self, z: torch.Tensor, labels: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        if t is not None:
            return self.net(z, t, labels)
        x = z.reshape(-1, self.channels, self.resolution, self.resolution)
        uncond = self._unconditional(labels) if self.guidance != 1.0 else None
        dt = 1.0 / self.steps
        ones = torch.ones_like(x[:, 0, 0, 0])  # (N,): the batch stays symbolic in an exported graph
        for i in range(self.steps):
            t0 = ones * (i * dt)
            v = self._velocity(x, t0, labels, self._guided(i * dt, uncond))
            if self.solver == "heun" and i < self.steps - 1:  # Heun: average the slopes at both ends of the step
                v = 0.5 * (v + self._velocity(x + dt * v, t0 + dt, labels, self._guided((i + 1) * dt, uncond)))
            x = x + dt * v
        return self.out(x, z, labels)

    def _guided(self, t: float, uncond: torch.Tensor | None) -> torch.Tensor | None:
        """The unconditional labels where guidance applies at time t (inside the guidance interval), else None."""
        return uncond if self.guidance_from <= t < self.guidance_until else None

    def _velocity(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor, uncond: torch.Tensor | None):
        """The (guided) velocity: with guidance w, v_uncond + w (v_cond - v_uncond); with a scale per attribute
        (compositional guidance, Liu et al. 2022), v_cond + sum_a (w_a - 1) (v_cond - v_{cond with a open}); all
        passes in one batch. With `bf16` the network's pass runs under bf16 autocast where native; the velocity
        returned is float32."""
        n = x.shape[0]
        if uncond is not None:
            k = 1 + uncond.shape[0] // n
            x, t, labels = torch.cat([x] * k), torch.cat([t] * k), torch.cat([labels, uncond])
        with bf16_autocast(x.device, self.bf16):
            v = self.net(x, t, labels)
        v = v.float() if self.bf16 else v
        if uncond is None:
            return v
        cond = v[:n]
        if self.attribute_scales is None:
            free = v[n:]
            return free + self.guidance * (cond - free)
        for i, w in enumerate(self.attribute_scales):
            v_open = v[n * (i + 1) : n * (i + 2)]
            cond = cond + (w - 1.0) * (v[:n] - v_open)
        return cond

    def _unconditional(self, labels: torch.Tensor) -> torch.Tensor:
        """The labels guidance pushes away from: every guided attribute "unspecified", the others as asked
        (with a scale per attribute, one such set per guided attribute, stacked); shaped like `labels` (indices, or
        one-hot weights for soft labels)."""
        soft = labels.is_floating_point()
        index = torch.zeros_like(labels[..., 0] if soft else labels, dtype=torch.long)
        index = index + torch.tensor(self.unspecified, device=labels.device, dtype=torch.long)  # (N, A)
        free = F.one_hot(index, labels.shape[-1]).to(labels.dtype) if soft else index
        if self.attribute_scales is not None:  # compositional: one set of labels per guided attribute, stacked
            masks = [[j == a for j in range(len(self.attributes))] for a, g in enumerate(self.guided_attributes) if g]
        elif all(self.guided_attributes):
            return free
        else:
            masks = [self.guided_attributes]
        opened = []
        for mask in masks:
            m = torch.tensor(mask, device=labels.device)
            opened.append(torch.where(m[:, None] if soft else m, free, labels))
        return torch.cat(opened)


def flow_matching_loss(
    G: nn.Module,
    data: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    noise: torch.Tensor | None = None,
    times: int = 0,
) -> torch.Tensor:
    """The rectified-flow objective on a batch: x_t = (1 - t) noise + t data at a uniform t, and the mean squared
    error of G's velocity there against data - noise. data: (N, 3, R, R) in [-1, 1], labels (N, A). `noise`:
    each portrait's own starting image (a teacher's pairs, which straighten the paths: reflow), else fresh.
    `times` K > 0: t only among 0, 1/K, ..., (K-1)/K, the times a K-step Euler drawing evaluates G at."""
    if noise is None:
        noise = torch.randn(data.shape, generator=generator, device=data.device, dtype=data.dtype)
    noise = noise.reshape(data.shape)
    if times > 0:
        t = torch.randint(times, (data.shape[0],), generator=generator, device=data.device).to(data.dtype) / times
    else:
        t = torch.rand(data.shape[0], generator=generator, device=data.device, dtype=data.dtype)
    x_t = (1 - t[:, None, None, None]) * noise + t[:, None, None, None] * data
    v = G(x_t, labels, t)
    return F.mse_loss(v.float(), (data - noise).float())
