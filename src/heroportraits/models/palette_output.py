"""G's output layer: RGB through tanh, or palette-indexed pixels (`model.output="palette"`).

In palette mode G's last convolution gives K logits per pixel instead of 3 colour channels,
and every pixel is one of K palette colours: pixel art's flat colour, crisp by construction.
The palette is either drawn per portrait (`palette_source="portrait"`: a small head maps z
and the labels to K colours, as an artist picks a palette per piece; each slot's logits let
G use the slot as a role such as outline or skin, whose colour varies from portrait to
portrait) or fixed (`"dataset"`: the train pixels clustered in OKLab, data/palette_quantise.py,
held as a buffer so checkpoints carry it and sampling needs no dataset).

Training needs a gradient through the choice, so in train mode D sees a relaxation
(`palette_mix`): "soft" = softmax(logits / tau) x palette; "straight" = the argmax colour
forward, the soft mix's gradient backward (straight-through); "gumbel" = Gumbel-softmax at
tau. tau is a buffer the Trainer sets every step from train.tau_* (`palette_tau`), so it
is in every checkpoint. In eval mode (the EMA generator, `sample`, evaluation, export)
every pixel is its argmax colour, so a portrait holds at most K exact colours.

Merging (`draw.palette_merge`, eval mode only, so any trained palette model can use it): G often
spends several slots on near-identical colours and neighbouring pixels flip between them,
which reads as speckle and doubles the colour count. With palette_merge = dE > 0, each slot
within dE (100 x OKLab distance) of a more used slot takes that slot's colour, so a portrait
holds its distinct colours only (docs/log/2026-12-02-palette-merge.md).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from heroportraits.data.attributes import Vocabulary
from heroportraits.data.oklab import DELTA_E_SCALE, unit_rgb_to_oklab
from heroportraits.data.palette_files import read_palette
from heroportraits.errors import HeroError
from heroportraits.models.colour_quantise import cluster_colours
from heroportraits.models.conditioning import AttributeEmbedding
from heroportraits.models.config import DrawOptions, ModelConfig


class PaletteConfigError(HeroError):
    """A palette model asked for without what it needs (e.g. a dataset palette)."""


class RGBOutput(nn.Module):
    """The plain output: 3 channels squashed to [-1, 1] by tanh (a GAN's G), or clamped to it (squash=False: a
    flow model's sampler, whose last step already lands in the data's range). No parameters (old checkpoints
    load). In eval mode, with `colours` > 0 (draw.rgb_colours), each portrait is quantised to that many colours
    of its own (models/colour_quantise.py).

    With `alpha` (model.alpha) a 4th channel is the figure's mask: soft while training (D sees what G draws), and
    in eval mode binary, -1 or 1 by its sign, on the grid G works on (the native grid): pixel art's alpha. The
    colours are quantised without it."""

    def __init__(self, colours: int = 0, merge: float = 0.0, squash: bool = True, alpha: bool = False):
        super().__init__()
        self.colours, self.merge, self.squash, self.alpha = int(colours), float(merge), squash, alpha
        self.channels = 4 if alpha else 3
        self.user_palette: torch.Tensor | None = None  # (P, 3) in [-1, 1]: draw.palette, set by draw_in_colours
        self.dither = False

    def forward(self, h: torch.Tensor, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        image = torch.tanh(h) if self.squash else h.clamp(-1.0, 1.0)
        if self.training:
            return image
        rgb, mask = image[:, :3], image[:, 3:]
        if self.colours > 0:
            colours, index = cluster_colours(rgb, self.colours)
            if self.merge > 0:
                colours = merge_close_colours(colours, index, self.merge)
            rgb = in_user_palette(colours, index, self.user_palette, self.dither).to(image.dtype)
        if not self.alpha:
            return rgb
        return torch.cat([rgb, torch.where(mask > 0, 1.0, -1.0).to(image.dtype)], dim=1)


class PaletteOutput(nn.Module):
    """K logits per pixel + a palette -> image.   logits: (N, K, H, W) -> (N, 3, H, W) in [-1, 1]."""

    def __init__(self, cfg: ModelConfig, vocab: Vocabulary, palette: torch.Tensor | None = None):
        super().__init__()
        self.mix, self.source = cfg.palette_mix, cfg.palette_source
        self.merge = 0.0  # dE under which sampling merges slots (draw.palette_merge, set by draw_in_colours); 0 = off
        self.user_palette: torch.Tensor | None = None  # (P, 3) in [-1, 1]: draw.palette, set by draw_in_colours
        self.dither = False
        self.generator: torch.Generator | None = None  # Gumbel noise stream; the Trainer sets its own
        # Refinement (selection.py) sets it: eval mode then draws the argmax colours unmerged, with the soft
        # mix's gradient (straight-through), so the noise's gradient reaches the per-pixel choices too
        self.differentiable = False
        self.register_buffer("tau", torch.tensor(1.0))  # softmax temperature, set by the Trainer each step
        if self.source == "dataset":
            if palette is None:
                raise PaletteConfigError(
                    "model.palette_source=dataset needs the dataset's palette "
                    "(`python -m heroportraits palette NAME --k K`)"
                )
            colours = torch.as_tensor(palette, dtype=torch.float32).reshape(-1, 3) / 127.5 - 1.0  # (K, 3)
            self.register_buffer("palette", colours)
            self.channels = len(colours)
        else:
            self.channels = cfg.palette_k
            self.embed = AttributeEmbedding(vocab, cfg.embed_dim)
            hidden = max(64, 2 * cfg.g_width)
            self.head = nn.Sequential(
                nn.Linear(cfg.z_dim + self.embed.out_dim, hidden),
                nn.ReLU(),
                nn.Linear(hidden, 3 * self.channels),
            )

    def colours(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The palette of each portrait: (N, K, 3) float32 in [-1, 1]."""
        if self.source == "dataset":
            return self.palette.float().expand(z.shape[0], -1, -1)
        h = torch.cat([z, self.embed(labels)], dim=1)
        return torch.tanh(self.head(h).float()).unflatten(1, (self.channels, 3))

    def forward(self, logits: torch.Tensor, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        colours = self.colours(z, labels)  # (N, K, 3)
        logits = logits.float()  # softmax and the mix in float32, also under bf16 autocast
        if not self.training and not self.differentiable:
            index = logits.argmax(dim=1)
            if self.merge > 0:
                colours = merge_close_colours(colours, index, self.merge)
            return in_user_palette(colours, index, self.user_palette, self.dither)
        if self.mix == "gumbel" and self.training:  # + Gumbel(0, 1) noise: the softmax becomes a relaxed sample
            u = torch.rand(logits.shape, generator=self.generator, device=logits.device, dtype=logits.dtype)
            logits = logits - torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))
        weights = torch.softmax(logits / self.tau, dim=1)  # (N, K, H, W), sums to 1 over K
        if self.mix != "straight" and self.training:
            return torch.einsum("nkhw,nkc->nchw", weights, colours)
        # Straight-through: forward exactly the argmax colours (the colours' gradient through them);
        # the logits' gradient is the soft mix's.
        soft = torch.einsum("nkhw,nkc->nchw", weights, colours.detach())
        return pick_colours(logits.argmax(dim=1), colours) + (soft - soft.detach())


def pick_colours(index: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """index (N, H, W) into colours (N, K, 3) -> image (N, 3, H, W): each pixel its palette colour."""
    n, h, w = index.shape
    flat = index.reshape(n, 1, h * w).expand(n, 3, h * w)  # (N, 3, HW)
    return torch.gather(colours.transpose(1, 2), 2, flat).reshape(n, 3, h, w)


def slots_by_use(index: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each portrait's pixel count per slot (N, K) and its slots most used first (N, K), ties to the lower slot:
    unique keys, so no stable sort (which ONNX lacks) is needed. index (N, H, W) of slots 0..k-1."""
    usage = torch.zeros(index.shape[0], k, device=index.device).scatter_add_(
        1, index.flatten(1), torch.ones(index.flatten(1).shape, device=index.device)
    )
    order = torch.argsort(usage * k + torch.arange(k - 1, -1, -1, device=index.device), dim=1, descending=True)
    return usage, order


def merge_close_colours(colours: torch.Tensor, index: torch.Tensor, delta_e: float) -> torch.Tensor:
    """Each slot takes the colour of the nearest more-used slot within `delta_e` (dE) of it, if any.

    Slots are visited from most to least used (pixels of `index`); a slot either stays (its colour is
    kept) or takes a kept slot's colour, so no colour moves further than delta_e and merged colours
    are palette colours. colours (N, K, 3) in [-1, 1], index (N, H, W) -> colours (N, K, 3).
    """
    n, k, _ = colours.shape
    lab = unit_rgb_to_oklab((colours.float() + 1.0) / 2.0)  # (N, K, 3)
    dist = DELTA_E_SCALE * ((lab[:, :, None] - lab[:, None]) ** 2).sum(-1).sqrt()  # (N, K, K)
    _, order = slots_by_use(index, k)
    rows = torch.arange(n, device=index.device)
    target = torch.arange(k, device=index.device).repeat(n, 1)  # (N, K) the slot whose colour each slot takes
    kept = torch.zeros(n, k, dtype=torch.bool, device=index.device)
    for rank in range(k):
        slot = order[:, rank]  # (N,)
        d = dist[rows, slot].masked_fill(~kept, float("inf"))  # (N, K) to the kept slots so far
        nearest = d.argmin(dim=1)
        merge = d[rows, nearest] <= delta_e
        target[rows, slot] = torch.where(merge, nearest, slot)
        kept[rows, slot] = ~merge
    return torch.gather(colours, 1, target.unsqueeze(-1).expand(-1, -1, 3))


PALETTE_SLACK = 1.2  # a portrait colour may take a free palette colour up to 1.2x its nearest one's distance ...
PALETTE_SLACK_DE = 2.0  # ... plus 2 dE, so that distinct colours stay distinct where the palette allows
BAYER_4 = torch.tensor([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], dtype=torch.float32) / 16


def in_user_palette(
    colours: torch.Tensor, index: torch.Tensor, palette: torch.Tensor | None, dither: bool = False
) -> torch.Tensor:
    """A portrait's colours (N, K, 3) in [-1, 1] and its pixels' slots (N, H, W) -> the image (N, 3, H, W), in the
    user's palette (P, 3) when one is given (draw.palette): each colour assigned a palette colour by
    `assign_palette`, or with `dither` each pixel ordered-dithered between the two palette colours nearest its own.
    Without a palette: the colours as they are."""
    if palette is None:
        return pick_colours(index, colours)
    palette = palette.to(colours.device, torch.float32)
    if dither:
        return dither_to_palette(pick_colours(index, colours), palette)
    return pick_colours(index, assign_palette(colours, index, palette))


def unit_delta_e(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dE between colours a (..., A, 3) and b (B, 3) in [-1, 1] -> (..., A, B)."""
    lab_a, lab_b = unit_rgb_to_oklab((a.float() + 1.0) / 2.0), unit_rgb_to_oklab((b.float() + 1.0) / 2.0)
    return DELTA_E_SCALE * ((lab_a[..., :, None, :] - lab_b) ** 2).sum(-1).clamp_min(0).sqrt()


def assign_palette(colours: torch.Tensor, index: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Each portrait colour -> a palette colour, most used colour first: the nearest palette colour no other colour
    of the portrait has taken, if it is within PALETTE_SLACK x the nearest one's distance + PALETTE_SLACK_DE, else
    the nearest (shared). So a portrait's three skin tones land on three palette tones where the palette has them,
    a palette that holds the portrait's colours changes nothing, and slots merged into one colour stay one.
    colours (N, K, 3), index (N, H, W), palette (P, 3), all colours in [-1, 1] -> (N, K, 3)."""
    n, k, _ = colours.shape
    d = unit_delta_e(colours, palette)  # (N, K, P)
    nearest = d.min(dim=2).values  # (N, K)
    usage, order = slots_by_use(index, k)
    same = (colours[:, :, None] == colours[:, None]).all(-1)  # (N, K, K): slots holding one colour (merged)
    rows = torch.arange(n, device=index.device)
    taken = torch.zeros(n, palette.shape[0], dtype=torch.bool, device=index.device)
    done = torch.zeros(n, k, dtype=torch.bool, device=index.device)
    choice = torch.zeros(n, k, dtype=torch.long, device=index.device)
    for rank in range(k):
        slot = order[:, rank]
        dist = d[rows, slot]  # (N, P)
        free = dist.masked_fill(taken, float("inf")).argmin(dim=1)
        ok = dist[rows, free] <= PALETTE_SLACK * nearest[rows, slot] + PALETTE_SLACK_DE
        pick = torch.where(ok, free, dist.argmin(dim=1))
        twin = same[rows, slot] & done  # an earlier slot with exactly this colour: the same palette colour
        pick = torch.where(twin.any(dim=1), choice[rows, twin.float().argmax(dim=1)], pick)
        choice[rows, slot] = pick
        used = usage[rows, slot] > 0
        taken[rows, pick] = taken[rows, pick] | used
        done[rows, slot] = True
    return palette[choice]


def dither_to_palette(image: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Ordered dithering: each pixel of image (N, 3, H, W) in [-1, 1] takes the second-nearest of its two nearest
    palette colours where the Bayer 4x4 threshold is below its share of the way between them, else the nearest."""
    n, _, h, w = image.shape
    d = unit_delta_e(image.permute(0, 2, 3, 1), palette)  # (N, H, W, P)
    two = d.topk(2, dim=-1, largest=False)
    share = two.values[..., 0] / (two.values.sum(-1) + 1e-6)  # 0 (on the nearest) to 0.5 (half way)
    threshold = BAYER_4.to(image.device).repeat((h + 3) // 4, (w + 3) // 4)[:h, :w]
    pick = torch.where(share > threshold, two.indices[..., 1], two.indices[..., 0])  # (N, H, W)
    return palette[pick].permute(0, 3, 1, 2)


def image_output(cfg: ModelConfig, vocab: Vocabulary, palette: torch.Tensor | None = None) -> nn.Module:
    """The output layer `model.output` names; its `channels` is what G's last conv must produce."""
    if cfg.output == "palette":
        return PaletteOutput(cfg, vocab, palette)
    return RGBOutput(alpha=cfg.alpha)


def palette_tau(step: int, total: int, start: float, end: float, schedule: str = "exp") -> float:
    """The temperature at `step` of a schedule from `start` (step 0) to `end` (step `total` and after):
    "exp" moves geometrically (equal ratios per step, as temperatures are felt), "linear" evenly."""
    t = min(max(step / max(total, 1), 0.0), 1.0)
    if schedule == "linear":
        return start + (end - start) * t
    return math.exp(math.log(start) + (math.log(end) - math.log(start)) * t)


def palette_outputs(module: nn.Module) -> list[PaletteOutput]:
    """Every palette output layer inside a network (empty for RGB models)."""
    return [m for m in module.modules() if isinstance(m, PaletteOutput)]


def set_tau(module: nn.Module, tau: float) -> None:
    """Write the temperature into every palette output of `module` (a buffer: checkpoints keep it)."""
    for out in palette_outputs(module):
        out.tau.fill_(tau)


def set_palette_merge(module: nn.Module, delta_e: float) -> int:
    """Sample `module` with palette colours merged under `delta_e` (0 = off); returns how many output layers
    took it: palette outputs, and RGB outputs whose samples are quantised (draw.rgb_colours > 0)."""
    layers = palette_outputs(module) + [out for out in rgb_outputs(module) if out.colours > 0]
    for out in layers:
        out.merge = float(delta_e)
    return len(layers)


def rgb_outputs(module: nn.Module) -> list[RGBOutput]:
    """Every RGB output layer inside a network (empty for palette models)."""
    return [m for m in module.modules() if isinstance(m, RGBOutput)]


def set_rgb_colours(module: nn.Module, colours: int) -> int:
    """Sample `module`'s RGB output quantised to `colours` per portrait (0 = off); returns how many RGB
    outputs took it (0 for palette models)."""
    layers = rgb_outputs(module)
    for out in layers:
        out.colours = int(colours)
    return len(layers)


def draw_in_colours(G: nn.Module, draw: DrawOptions) -> None:
    """G's eval-mode output in `draw`'s colours: each RGB portrait quantised to draw.rgb_colours, colours merged
    under draw.palette_merge, then put in the user's palette (draw.palette) (training, in train mode, never sees
    any). A G with its own sampler (the flow family's `use_drawing`) takes the rest of `draw` too: steps, solver,
    guidance."""
    set_rgb_colours(G, draw.rgb_colours)
    set_palette_merge(G, draw.palette_merge)
    palette = None
    if draw.palette:
        palette = torch.as_tensor(read_palette(draw.palette), dtype=torch.float32) / 127.5 - 1.0
    for out in palette_outputs(G) + rgb_outputs(G):
        out.user_palette, out.dither = palette, draw.dither
    for module in G.modules():
        if hasattr(module, "use_drawing"):
            module.use_drawing(draw)


def colour_record(cfg: ModelConfig, draw: DrawOptions) -> dict:
    """The colour options a model's portraits are drawn with, for records (exported files): a palette model's
    merge; an RGB model's quantisation and merge when it quantises; the user's palette (its colours, a constant of
    an exported graph) when one is given; nothing otherwise."""
    record = {}
    if cfg.output == "palette":
        record = {"palette_merge": draw.palette_merge}
    elif draw.rgb_colours > 0:
        record = {"rgb_colours": draw.rgb_colours, "palette_merge": draw.palette_merge}
    if draw.palette:
        hexes = ["#" + "".join(f"{v:02x}" for v in c) for c in read_palette(draw.palette).tolist()]
        record.update(user_palette=hexes, dither=draw.dither)
    return record
