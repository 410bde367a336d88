"""Draw portraits from a checkpoint: individual PNGs + labels.csv, or a grid.

    python -m heroportraits sample artifacts_gan/checkpoints/demo/last.pt --n 2000 --out out/
    python -m heroportraits sample RUN_DIR --set hero_class=mage --n 64 --grid --out mages.png
    python -m heroportraits sample RUN_DIR --interpolate palette=warm:cool --out warm_cool.png  (walks.py)

Conditions are drawn from the training label mix unless fixed with --set; samples
always come from the EMA generator. A model trained with attribute dropout
(`train.attr_dropout > 0`) learned what "unspecified" means, so by default it leaves the
attributes you do not fix unspecified (labels.csv then says `any` for them) and lets the
generator pick them; `--open mix` draws them from the training mix instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from heroportraits.data.attributes import UNSPECIFIED, LabelError, Vocabulary
from heroportraits.data.images import tensor_to_uint8
from heroportraits.errors import HeroError
from heroportraits.models import build_generator, build_models, conditioning_vocab, upscale_to_output
from heroportraits.models.palette_output import set_palette_merge, set_rgb_colours
from heroportraits.sampling.selection import best_noise, refine_noise
from heroportraits.training.checkpoint import foreign_weights, load_checkpoint, resolve_checkpoint_path
from heroportraits.training.config import Config

OPEN_MODES = ("mix", "unspecified")


class Sampler:
    """An EMA generator loaded from a checkpoint, with its vocabulary and label mix.

    `open_attributes` says what happens to attributes the caller leaves open: "mix"
    draws them from the training label mix, "unspecified" passes the unspecified index
    (only meaningful for models trained with attribute dropout, and their default).
    """

    def __init__(
        self,
        state: dict,
        device="cpu",
        palette_merge: float | None = None,
        rgb_colours: int | None = None,
        best_of: int | None = None,
        refine: int | None = None,
        refine_realness: float | None = None,
        refine_head: float | None = None,
    ):
        self.device = torch.device(device)
        self.config = Config.from_dict(state["config"])
        self.vocab = Vocabulary.from_json(state["vocab"])
        self.cvocab = conditioning_vocab(self.config.model, self.vocab)
        ds = state["dataset"]
        self.dataset_name = ds["name"]
        self.native_scale = int(ds["native_scale"])
        self.resolution = int(ds["resolution"])
        self.step = int(state["step"])
        # Building G draws its (soon overwritten) initial weights from the global RNG: fork it, so
        # loading a sampler, as evaluation while training does, leaves a run's random streams alone.
        with torch.random.fork_rng(devices=[]):
            self.G = build_generator(self.config.model, self.vocab, int(ds["network_resolution"]), ds.get("palette"))
        self.G.load_state_dict(state["G_ema"])
        self.G.to(self.device).eval()
        # Sampling choices: they override the checkpoint's model.rgb_colours / model.palette_merge.
        if rgb_colours is not None:
            self.set_rgb_colours(rgb_colours)
        if palette_merge is not None:
            self.set_palette_merge(palette_merge)
        # D is built only for D-guided sampling (selection.py): best of R, refinement
        self._state, self.D, self.best_of, self.refine = state, None, 1, 0
        self.set_best_of(self.config.model.best_of if best_of is None else best_of)
        self.set_refine(self.config.model.refine_steps if refine is None else refine, refine_realness, refine_head)
        self._mix_rows = torch.tensor(ds["label_mix"]["rows"], dtype=torch.long)  # (M, A) full-vocab indices
        self._mix_p = torch.tensor(ds["label_mix"]["counts"], dtype=torch.float)
        self.attr_dropout = float(self.config.train.attr_dropout)
        self.default_open = "unspecified" if self.attr_dropout > 0 else "mix"

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device="cpu",
        palette_merge: float | None = None,
        rgb_colours: int | None = None,
        best_of: int | None = None,
        refine: int | None = None,
        refine_realness: float | None = None,
        refine_head: float | None = None,
    ) -> Sampler:
        path = resolve_checkpoint_path(path)
        state = load_checkpoint(path, map_location="cpu")
        with foreign_weights(path):
            return cls(state, device, palette_merge, rgb_colours, best_of, refine, refine_realness, refine_head)

    def set_best_of(self, candidates: int) -> None:
        """Draw `candidates` portraits for each one asked and keep the one D's classifier reads most surely as
        its conditions (1 = off; selection.py). Needs a D with the auxiliary classifier (model.d_classify)."""
        if candidates < 1:
            raise SampleError(f"best of {candidates}: at least 1 candidate a portrait (1 = off)")
        if candidates > 1:
            self._build_discriminator(f"best of {candidates}", "rank candidates", "--best-of")
        self.best_of = self.config.model.best_of = int(candidates)

    def set_refine(self, steps: int, realness: float | None = None, head: float | None = None) -> None:
        """Move each portrait's noise `steps` steps up D's classifier's log-likelihood of its conditions (plus
        `realness` x D's score and `head` x its head classifier's log-likelihood; None = model.refine_realness /
        model.refine_head) before drawing it (0 = off; selection.py). Needs a D with the auxiliary classifier
        (model.d_classify), and for `head` > 0 the head classifier (model.d_head_classify)."""
        if steps < 0:
            raise SampleError(f"refine {steps}: a number of steps >= 0 (0 = off)")
        if realness is not None:
            if realness < 0:
                raise SampleError(f"refine realness {realness:g}: a weight >= 0 (0 = D's classifier alone)")
            if steps == 0:
                raise SampleError(f"refine realness {realness:g}: refinement is off (0 steps); add --refine T (5, say)")
            self.config.model.refine_realness = float(realness)
        if head is not None:
            if head < 0:
                raise SampleError(f"refine head {head:g}: a weight >= 0 (0 = off)")
            if head > 0 and steps == 0:
                raise SampleError(f"refine head {head:g}: refinement is off (0 steps); add --refine T (5, say)")
            if head > 0 and self.config.model.d_head_classify <= 0:
                raise SampleError(
                    f"refine head {head:g}: this model's D has no head classifier (trained with "
                    "model.d_head_classify=0); leave --refine-head out"
                )
            self.config.model.refine_head = float(head)
        if steps > 0:
            self._build_discriminator(f"refine {steps}", "guide the noise", "--refine")
        self.refine = self.config.model.refine_steps = int(steps)

    def guidance_settings(self) -> dict:
        """How D guides this sampler's portraits, for records (evaluations): best of R, refinement steps and,
        when it refines, its rate and realness weight."""
        m = self.config.model
        settings = {"best_of": self.best_of, "refine_steps": self.refine}
        if self.refine > 0:
            settings.update(refine_rate=m.refine_rate, refine_realness=m.refine_realness)
            if m.refine_head > 0:
                settings.update(refine_head=m.refine_head)
        return settings

    def _build_discriminator(self, what: str, purpose: str, flag: str) -> None:
        """D from the checkpoint, for D-guided sampling; refused in one line if it has no classifier."""
        if self.D is not None:
            return
        if self.config.model.d_classify <= 0:
            raise SampleError(
                f"{what}: this model's D has no classifier to {purpose} (model.d_classify=0); leave {flag} out"
            )
        if "D" not in self._state:
            raise SampleError(f"{what}: this checkpoint holds no D to {purpose}")
        with torch.random.fork_rng(devices=[]):  # as for G: building D leaves the caller's random streams
            _, D = build_models(self.config.model, self.vocab, int(self._state["dataset"]["network_resolution"]))
        D.load_state_dict(self._state["D"])
        self.D = D.to(self.device).eval()

    def set_rgb_colours(self, colours: int) -> None:
        """Quantise each RGB portrait to at most `colours` of its own (0 = off; models/colour_quantise.py)."""
        if colours < 0 or colours == 1:
            raise SampleError(f"rgb colours {colours}: at least 2 colours a portrait (0 = off)")
        if self.config.model.output != "rgb" and colours > 0:
            raise SampleError(
                f"rgb colours {colours}: this model draws from a palette already (model.output="
                f"{self.config.model.output}, at most {self.config.model.palette_k} colours); leave it out"
            )
        set_rgb_colours(self.G, colours)
        self.config.model.rgb_colours = int(colours)
        if colours == 0 and self.config.model.palette_merge > 0 and self.config.model.output == "rgb":
            self.set_palette_merge(0.0)  # nothing left to merge

    def set_palette_merge(self, delta_e: float) -> None:
        """Merge each portrait's palette colours closer than `delta_e` dE (0 = off; models/palette_output.py)."""
        if delta_e < 0:
            raise SampleError(f"palette merge {delta_e:g}: a colour distance (dE) is >= 0 (0 = off)")
        if not set_palette_merge(self.G, delta_e) and delta_e > 0:
            raise SampleError(
                f"palette merge {delta_e:g}: this model draws RGB (model.output={self.config.model.output}) "
                "with no palette to merge; quantise its portraits first (--rgb-colours K) or leave the merge out"
            )
        self.config.model.palette_merge = float(delta_e)

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
        fixed = {n: self.vocab.encode_value(n, v) for n, v in conditions.items() if v != UNSPECIFIED}
        if mode == "unspecified":
            rows = torch.tensor([self.vocab.unspecified_index(a) for a in self.vocab.names], dtype=torch.long)
            rows = rows.repeat(n, 1)
            for name, idx in fixed.items():
                rows[:, self.vocab.names.index(name)] = idx
            return rows
        keep = torch.ones(len(self._mix_rows), dtype=torch.bool)
        for name, idx in fixed.items():
            keep &= self._mix_rows[:, self.vocab.names.index(name)] == idx
        g = torch.Generator().manual_seed(seed)
        if keep.any():
            pick = torch.multinomial(self._mix_p * keep, n, replacement=True, generator=g)
            return self._mix_rows[pick]
        # A combination never seen in training: fix it, draw the rest independently.
        rows = self._mix_rows[torch.multinomial(self._mix_p, n, replacement=True, generator=g)].clone()
        for name, idx in fixed.items():
            rows[:, self.vocab.names.index(name)] = idx
        return rows

    @torch.no_grad()
    def render(self, z: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Noise (N, z_dim) and conditions in the conditioning vocabulary's attribute order -> (N, 64, 64, 3)
        uint8. labels: (N, A) indices, or (N, A, K) float weights over each attribute's rows (see
        models.soft_labels), which walks between attribute values use."""
        out = []
        for i in range(0, len(z), batch_size):
            x = self.G(z[i : i + batch_size].to(self.device), labels[i : i + batch_size].to(self.device))
            out.append(tensor_to_uint8(upscale_to_output(x, self.resolution)))
        return np.concatenate(out) if out else np.zeros((0, self.resolution, self.resolution, 3), np.uint8)

    def noise(self, n: int, seed: int = 0) -> torch.Tensor:
        """(n, z_dim) standard-normal noise, a function of (n, seed): torch draws another stream for
        other sizes, so noise(1, s) is not the first row of noise(5, s)."""
        return torch.randn(n, self.config.model.z_dim, generator=torch.Generator().manual_seed(seed))

    def generate_from_labels(self, labels: torch.Tensor, seed: int = 0, batch_size: int = 256) -> np.ndarray:
        """(N, A) full-vocab label indices -> (N, 64, 64, 3) uint8 images."""
        cols = [self.vocab.names.index(n) for n in self.cvocab.names]
        labels = labels[:, cols]
        if self.best_of == 1:
            z = self.noise(len(labels), seed).to(self.device)
        else:
            candidates = self.noise(len(labels) * self.best_of, seed).view(self.best_of, len(labels), -1)
            z = best_noise(self.G, self.D, candidates.to(self.device), labels.to(self.device), batch_size)
        return self._refined_render(z, labels, batch_size)

    def generate_from_noise(self, z: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Given noise (N, z_dim) and (N, A) full-vocab label indices -> (N, 64, 64, 3) uint8, refined as
        configured. Best of R is not applied: it would pick other noise, and callers of this want theirs
        (the same noise under every class, headgear.py)."""
        cols = [self.vocab.names.index(n) for n in self.cvocab.names]
        return self._refined_render(z.to(self.device), labels[:, cols], batch_size)

    def _refined_render(self, z: torch.Tensor, labels: torch.Tensor, batch_size: int) -> np.ndarray:
        if self.refine > 0:
            m = self.config.model
            y = labels.to(self.device)
            z = refine_noise(
                self.G, self.D, z, y, self.refine, m.refine_rate, m.refine_realness, batch_size, m.refine_head
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


def most_common_labels(rows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Each attribute's most frequent value over the training images (not over the distinct
    label rows), as train() picks for its grid. rows: (M, A) distinct label rows, counts: (M,)."""
    if rows.shape[1] == 0:
        return rows.new_zeros(0)
    return torch.stack([torch.bincount(rows[:, a], weights=counts.float()).argmax() for a in range(rows.shape[1])])


class SampleError(HeroError):
    """An output folder that would mix new portraits with old ones."""
