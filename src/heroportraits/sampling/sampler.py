"""A trained checkpoint as a portrait source: its EMA generator, vocabulary and label mix, and how it draws.

    sampler = Sampler.from_checkpoint("artifacts_gan/checkpoints/demo")        # the run's default drawing
    sampler = Sampler.from_checkpoint(path, draw={"refine_steps": 0})           # the same without refinement
    sampler = Sampler.from_checkpoint(path, draw=DrawOptions())                 # G's own portraits
    images, rows = sampler.generate(16, {"hero_class": "mage"})   # (16, 64, 64, 3), or RGBA (4) with model.alpha

Conditions are drawn from the training label mix unless fixed; samples always come from the EMA
generator. A model trained with attribute dropout (`train.attr_dropout > 0`) learned what "unspecified"
means, so by default it leaves the attributes the caller does not fix unspecified (rows then say `any`)
and lets the generator pick them; `open_attributes="mix"` draws them from the training mix instead.

How portraits are drawn (`DrawOptions`: per-portrait quantisation, merged colours, best of R,
refinement by D's classifier, the palette check) is the sampler's, never the model's: a checkpoint keeps
its run's default drawing (`config.draw`), and `draw` replaces it (a DrawOptions) or changes some of its
fields (a mapping, e.g. what the command line's flags gave).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch

from heroportraits.data.attributes import UNSPECIFIED, LabelError, Vocabulary
from heroportraits.data.dataset import read_meta
from heroportraits.data.palette_labels import palette_check_refusal, rules_reading
from heroportraits.errors import HeroError
from heroportraits.models import build_generator, build_models, conditioning_vocab, to_pixels
from heroportraits.models.config import FLOW_DRAW_FIELDS, DrawOptions, is_flow
from heroportraits.models.layout import memory_layout
from heroportraits.models.palette_output import draw_in_colours
from heroportraits.models.precision import native_bf16
from heroportraits.sampling.colour_budget import COUNTED_PORTRAITS, counted_budget
from heroportraits.sampling.palette_check import redraw_off_palette, round_seed
from heroportraits.sampling.selection import best_noise, refine_noise
from heroportraits.training.checkpoint import foreign_weights, load_checkpoint, resolve_checkpoint_path
from heroportraits.training.config import Config, check_drawing
from heroportraits.training.setup import resolve_device

OPEN_MODES = ("mix", "unspecified")
Drawing = DrawOptions | Mapping[str, object] | None  # exactly these / the run's with these changed / the run's


class SampleError(HeroError):
    """A checkpoint that cannot draw as asked, or an output folder that would mix new portraits with old ones."""


class Sampler:
    """An EMA generator loaded from a checkpoint, with its vocabulary, label mix and drawing options.

    `open_attributes` says what happens to attributes the caller leaves open: "mix"
    draws them from the training label mix, "unspecified" passes the unspecified index
    (only meaningful for models trained with attribute dropout, and their default).
    """

    def __init__(self, state: dict, device="cpu", draw: Drawing = None):
        self.device = resolve_device(device)
        self.config = Config.from_dict(state["config"])
        self.run_drawing = self.config.draw  # the run's default drawing, kept in its checkpoint
        self.vocab = Vocabulary.from_json(state["vocab"])
        self.cvocab = conditioning_vocab(self.config.model, self.vocab)
        self.cond_cols = self.vocab.columns(self.cvocab.names)  # full label rows -> the conditioning attributes
        ds = state["dataset"]
        self.dataset_name = ds["name"]
        self.native_scale = int(ds["native_scale"])
        self.colours = ds.get("colours")  # the data's colour use (None in checkpoints from before it was kept)
        self.resolution = int(ds["resolution"])
        native = int(ds["network_resolution"])  # G's grid; its portraits are upscaled from it by whole pixels
        self.native_cell = self.resolution // native if self.resolution % native == 0 else 1
        self.step = int(state["step"])
        # Building G draws its (soon overwritten) initial weights from the global RNG: fork it, so
        # loading a sampler, as evaluation while training does, leaves a run's random streams alone.
        with torch.random.fork_rng(devices=[]):
            self.G = build_generator(self.config.model, self.vocab, int(ds["network_resolution"]), ds.get("palette"))
        self.G.load_state_dict(state["G_ema"])
        self.z_dim = int(self.G.z_dim)  # a GAN's latent size; a flow model's starting image, flat
        self.G.to(self.device).eval()
        self._state, self.D = state, None  # D is built only for D-guided drawing (selection.py)
        self._mix_rows = torch.tensor(ds["label_mix"]["rows"], dtype=torch.long)  # (M, A) full-vocab indices
        self._mix_p = torch.tensor(ds["label_mix"]["counts"], dtype=torch.float)
        self.draws_alpha = bool(self.config.model.alpha)  # RGBA portraits: the colours and the figure's mask
        self.attr_dropout = float(self.config.train.attr_dropout)
        self.default_open = "unspecified" if self.attr_dropout > 0 else "mix"
        self._counted: dict[tuple, int] = {}  # merged adapted budgets counted so far, by how G draws
        self.palette_rules = ds.get("palette_rules") or _rules_of_local_dataset(self.dataset_name)
        self.last_palette_check: dict | None = None  # what the last drawing's palette check redrew
        self.drawing = DrawOptions()
        self.use(draw)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device="cpu", draw: Drawing = None) -> Sampler:
        resolve_device(device)  # a device this machine lacks is named as such, not as a foreign checkpoint
        path = resolve_checkpoint_path(path)
        state = load_checkpoint(path, map_location="cpu")
        with foreign_weights(path):
            return cls(state, device, draw)

    def use(self, draw: Drawing = None) -> DrawOptions:
        """Draw from now on with `draw`: None = the run's default drawing; a DrawOptions = exactly these; a
        mapping = the run's default with these fields changed (None values ignored). Options this model cannot
        draw with are refused in one line (training.config.check_drawing). Returns the options in use."""
        given: tuple[str, ...] = ()
        if draw is None:
            options = self.run_drawing
        elif isinstance(draw, DrawOptions):
            options = draw
        else:
            changes = {k: v for k, v in draw.items() if v is not None}
            options, given = self.run_drawing.changed(**changes), tuple(changes)
        options = options.fitted(self.colours, palette_model=self.config.model.output == "palette")
        options = check_drawing(options, self.config.model, given, self.config.train.attr_dropout)
        if options.adapt_colours and not self.colours:  # no colour use known (an older checkpoint): the run's budget
            options = dataclasses.replace(options, adapt_colours=False)
        counted = self.colours and "per_portrait" in self.colours  # older statistics: the 95th percentile
        if counted and options.adapt_colours and options.palette_merge > 0 and options.rgb_colours > 0:
            options = dataclasses.replace(options, rgb_colours=self._counted_budget(options))
        if options.guided:
            self._build_discriminator()
        refusal = palette_check_refusal(
            options.palette_check, self.dataset_name, self.palette_rules, "palette" in self.cvocab.names
        )
        if refusal:  # the check only where it draws the data's own palettes: the rules made the labels
            raise SampleError(refusal)
        draw_in_colours(self.G, options)
        self.G.to(memory_format=memory_layout(options.channels_last))
        self.drawing = options
        return options

    def _counted_budget(self, options: DrawOptions) -> int:
        """A merged adapted drawing's budget (sampling/colour_budget.py): counted once on COUNTED_PORTRAITS of
        G's own portraits (seed 0, the training mix), drawn as `options` draws them before their colours."""
        key = (options.palette_merge, options.bf16, *(getattr(options, f) for f in FLOW_DRAW_FIELDS))
        if key not in self._counted:
            plain = dataclasses.replace(options, rgb_colours=0, palette_merge=0.0, palette="", dither=False)
            draw_in_colours(self.G, plain)
            labels = self.draw_conditions(COUNTED_PORTRAITS, seed=0, open_attributes="mix")[:, self.cond_cols]
            with torch.no_grad():
                raw = self.G(self.noise(COUNTED_PORTRAITS, 0).to(self.device), labels.to(self.device))
            target = float(self.colours["per_portrait"]["mean"])
            self._counted[key] = counted_budget(raw.cpu(), target, options.palette_merge)
        return self._counted[key]

    def describe_drawing(self) -> str:
        """The drawing in use, in words (a flow model's solver first; bf16 named only where this device computes it)."""
        return self.drawing.describe(flow=is_flow(self.config.model), bf16_native=native_bf16(self.device))

    @contextlib.contextmanager
    def drawn_with(self, draw: Drawing) -> Iterator[DrawOptions]:
        """Draw with `draw` inside, with this sampler's own options again after (the widget's slider)."""
        own = self.drawing
        try:
            yield self.use(draw)
        finally:
            self.use(own)

    def _build_discriminator(self) -> None:
        """D from the checkpoint, for D-guided drawing (check_drawing has made sure it has a classifier)."""
        if self.D is not None:
            return
        if "D" not in self._state:
            raise SampleError("this checkpoint holds no D to guide its portraits; draw without --best-of / --refine")
        with torch.random.fork_rng(devices=[]):  # as for G: building D leaves the caller's random streams
            _, D = build_models(self.config.model, self.vocab, int(self._state["dataset"]["network_resolution"]))
        D.load_state_dict(self._state["D"])
        self.D = D.to(self.device).eval()

    def _open_mode(self, open_attributes: str | None) -> str:
        mode = open_attributes or self.default_open
        if mode not in OPEN_MODES:
            raise LabelError(f"open_attributes must be one of {list(OPEN_MODES)}, got {mode!r}")
        if mode == "unspecified" and self.attr_dropout <= 0:
            raise LabelError(
                "this model was trained without attribute dropout (train.attr_dropout=0), so it never learned "
                "'unspecified'; leave open attributes to the training mix (--open mix)"
            )
        return mode

    def draw_conditions(
        self, n: int, conditions: dict[str, str] | None = None, seed: int = 0, open_attributes: str | None = None
    ) -> torch.Tensor:
        """(n, A) label indices: fixed attributes as given, the rest open.

        "mix": open attributes are drawn jointly from the training rows that match the
        fixed ones, which keeps their correlations (e.g. fewer feminine cavalry if the
        data had fewer). "unspecified": open attributes get the unspecified index.
        """
        mode = self._open_mode(open_attributes)
        conditions = dict(conditions or {})
        for name, _value in conditions.items():
            if name not in self.vocab.attributes:
                raise LabelError(f"unknown attribute {name!r}; this model knows {self.vocab.names}")
            if name not in self.cvocab.attributes:
                raise LabelError(f"this model was trained without {name!r} conditioning (e.g. palette OFF)")
        fixed = {
            self.vocab.names.index(n): self.vocab.encode_value(n, v) for n, v in conditions.items() if v != UNSPECIFIED
        }
        if mode == "unspecified":
            rows = torch.tensor([self.vocab.unspecified_index(a) for a in self.vocab.names], dtype=torch.long)
            rows = rows.repeat(n, 1)
            for col, idx in fixed.items():
                rows[:, col] = idx
            return rows
        keep = torch.ones(len(self._mix_rows), dtype=torch.bool)
        for col, idx in fixed.items():
            keep &= self._mix_rows[:, col] == idx
        g = torch.Generator().manual_seed(seed)
        if keep.any():
            pick = torch.multinomial(self._mix_p * keep, n, replacement=True, generator=g)
            return self._mix_rows[pick]
        # A combination never seen in training: fix it, draw the rest independently.
        rows = self._mix_rows[torch.multinomial(self._mix_p, n, replacement=True, generator=g)].clone()
        for col, idx in fixed.items():
            rows[:, col] = idx
        return rows

    @torch.no_grad()
    def render(self, z: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Noise (N, z_dim) and conditions in the conditioning vocabulary's attribute order -> (N, 64, 64, 3)
        uint8 (RGBA, (N, 64, 64, 4), for a model that draws alpha: the RGB is the portrait over its background, the
        alpha 0 or 255 on whole native pixels), as G draws them in this sampler's colours (no guidance). labels:
        (N, A) indices, or (N, A, K) float weights over each attribute's rows (see models.soft_labels), which walks
        between attribute values use."""
        out = []
        for i in range(0, len(z), batch_size):
            x = self.G(z[i : i + batch_size].to(self.device), labels[i : i + batch_size].to(self.device))
            out.append(to_pixels(x, self.resolution).cpu().numpy())
        channels = 4 if self.draws_alpha else 3
        return np.concatenate(out) if out else np.zeros((0, self.resolution, self.resolution, channels), np.uint8)

    def noise(self, n: int, seed: int = 0) -> torch.Tensor:
        """(n, z_dim) standard-normal noise, a function of (n, seed): torch draws another stream for
        other sizes, so noise(1, s) is not the first row of noise(5, s)."""
        return torch.randn(n, self.z_dim, generator=torch.Generator().manual_seed(seed))

    def generate_from_labels(self, labels: torch.Tensor, seed: int = 0, batch_size: int = 256) -> np.ndarray:
        """(N, A) full-vocab label indices -> (N, 64, 64, 3) uint8 images, drawn as this sampler draws."""
        labels = labels[:, self.cond_cols]
        self.last_palette_check = None
        best_of = self.drawing.best_of
        if best_of == 1:
            z = self.noise(len(labels), seed).to(self.device)
        else:
            candidates = self.noise(len(labels) * best_of, seed).view(best_of, len(labels), -1)
            z = best_noise(self.G, self.D, candidates.to(self.device), labels.to(self.device), batch_size)
        images = self._refined_render(z, labels, batch_size)
        return self._palette_checked(images, labels, seed, batch_size) if self.drawing.palette_check else images

    def _palette_checked(self, images: np.ndarray, labels: torch.Tensor, seed: int, batch_size: int) -> np.ndarray:
        """The portraits with the off-palette ones redrawn from new noise (sampling/palette_check.py); the rows
        redrawn each round go to `last_palette_check`. Best of R picks among the first noises only."""

        def redraw(round_: int, rows: np.ndarray) -> np.ndarray:
            pick = torch.from_numpy(rows)
            z = self.noise(len(labels), round_seed(seed, round_))[pick]
            return self._refined_render(z.to(self.device), labels[pick], batch_size)

        column = self.cvocab.names.index("palette")
        images, self.last_palette_check = redraw_off_palette(
            images,
            labels[:, column].cpu().numpy(),
            self.cvocab.attributes["palette"],
            self.palette_rules["backdrop"],
            self.drawing.palette_check,
            redraw,
            self.native_cell,
        )
        return images

    def generate_from_noise(self, z: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Given noise (N, z_dim) and (N, A) full-vocab label indices -> (N, 64, 64, 3) uint8, refined as
        this sampler draws. Best of R and the palette check are not applied: they would pick other noise, and
        callers of this want theirs (the same noise under every class, headgear.py)."""
        return self._refined_render(z.to(self.device), labels[:, self.cond_cols], batch_size)

    def _refined_render(self, z: torch.Tensor, labels: torch.Tensor, batch_size: int) -> np.ndarray:
        d = self.drawing
        if d.refine_steps > 0:
            y = labels.to(self.device)
            z = refine_noise(
                self.G,
                self.D,
                z,
                y,
                d.refine_steps,
                d.refine_rate,
                d.refine_realness,
                batch_size,
                d.refine_head,
                d.bf16,
            )
        return self.render(z, labels, batch_size)

    def generate(
        self,
        n: int,
        conditions: dict[str, str] | None = None,
        seed: int = 0,
        batch_size: int = 256,
        open_attributes: str | None = None,
    ):
        """n portraits -> (images uint8 (n, 64, 64, 3), label rows [{attribute: value or "any"}])."""
        labels = self.draw_conditions(n, conditions, seed, open_attributes)
        images = self.generate_from_labels(labels, seed, batch_size)
        return images, [self.vocab.decode(r) for r in labels.tolist()]


def _rules_of_local_dataset(name: str) -> dict | None:
    """How the rules read the run's dataset, from its dataset.json here (checkpoints older than that record)."""
    try:
        return rules_reading(read_meta(name))
    except HeroError:
        return None


def most_common_labels(rows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Each attribute's most frequent value over the training images (not over the distinct
    label rows), as train() picks for its grid. rows: (M, A) distinct label rows, counts: (M,)."""
    if rows.shape[1] == 0:
        return rows.new_zeros(0)
    return torch.stack([torch.bincount(rows[:, a], weights=counts.float()).argmax() for a in range(rows.shape[1])])
