"""What a model is (`ModelConfig`: the networks, built by `build_models`) and how its portraits are drawn by
default (`DrawOptions`: sampling-time aids that never change training).

Both travel in every checkpoint (the run's config), so a checkpoint alone rebuilds G and draws as its run
intended; `sample`, `evaluate`, `export`, `headgear`, the widget and studies take other drawing options
without touching the model. Ranges and the checks between fields live with the other config checks
(training/config.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from heroportraits.data.colour_stats import drawing_budget
from heroportraits.errors import HeroError


class ConfigError(HeroError):
    """An unknown preset, or an override that does not name a config field or has a value it cannot take."""


@dataclass
class ModelConfig:
    arch: str = "dcgan"  # the networks: GANs "dcgan" (Radford 2016), "resnet" (SNGAN/BigGAN residual blocks) or
    # "style" (StyleGAN2's generator, Karras 2020, against the DCGAN D);
    # "unet": the flow family (conditional flow matching, models/flow.py), a velocity U-Net and no D
    z_dim: int = 128  # latent size
    g_width: int = 64  # generator channels at the highest resolution (x2 per halving, capped at x8)
    d_width: int = 64  # discriminator channels at the highest resolution (x2 per halving, capped at x8)
    embed_dim: int = 16  # size of each attribute's learned embedding (concat conditioning)
    g_cond: str = (
        "concat"  # G conditioning: "concat" (embeddings joined to z), "cbn" (conditional batch-norm), "concat+cbn"
    )
    d_cond: str = (
        "concat"  # D conditioning: "concat" (embedding maps after layer 1) or "projection" (Miyato & Koyama 2018)
    )
    use_palette: bool = True  # condition on the palette attribute (the study's key switch); OFF = no palette parameters
    native_grid: bool = True  # generate/judge on the dataset's native pixel grid, upscale by nearest
    g_spectral_norm: bool = False  # spectral normalisation of G's conv/linear weights (BigGAN)
    d_spectral_norm: bool = False  # spectral normalisation of D's weights (Miyato 2018); replaces D's batch-norm
    d_mbstd: int = 0  # minibatch-stddev group size (Karras 2018): D sees how varied a group is; 0 = off
    output: str = "rgb"  # G's last layer: "rgb" (3 channels through tanh) or "palette" (K logits per native
    # pixel, each pixel one colour of a palette: at most K exact colours per portrait; docs/pixelart.md)
    palette_k: int = 32  # palette output: colours per palette (K)
    palette_source: str = "portrait"  # palette output: "portrait" (G draws K colours per portrait from z and the
    # labels) or "dataset" (one palette clustered from the train pixels: `python -m heroportraits palette NAME --k K`)
    palette_mix: str = "soft"  # palette output, training only: the image D sees is "soft" (softmax(logits / tau)
    # mix of the colours), "straight" (argmax colour, gradient of the soft mix) or "gumbel" (Gumbel-softmax at tau)
    g_sle: bool = False  # skip-layer excitation in G (FastGAN, Liu 2021): each feature map of >= 16 px is gated
    # channel-wise by G's map at 1/4 its size
    d_recon: float = 0.0  # self-supervised D (FastGAN): weight of the L1 loss of small decoders that rebuild each
    # real image (downscaled x2) and a random quarter of it from D's 4x4 and 8x8 features; 0 = off (no decoders)
    d_classify: float = 0.0  # auxiliary classifier (AC-GAN, Odena 2017): D also names each real portrait's
    # attributes from its last features, and G is pushed to draw portraits D names as their conditions; the
    # weight of both cross-entropies; 0 = off (no heads)
    d_head_classify: float = 0.0  # D's head classifier (models/head_classifier.py): names head_attribute from the
    # top head_rows of the portrait alone, so G has to show it on the head (headgear); the weight of both
    # cross-entropies; 0 = off
    head_attribute: str = "hero_class"  # the attribute the head classifier names
    head_rows: float = 0.5  # the share of the rows, from the top, the head classifier sees
    head_fake: bool = False  # the head classifier also names fakes as one more value, "fake" (C+1 classes), so
    # G cannot satisfy it with top-half cues that are no head item
    flow_blocks: int = 2  # the flow family (arch "unet"): residual blocks per resolution of the U-Net
    alpha: bool = False  # draw RGBA: a 4th channel, the figure's mask, generated with the colours and binary on
    # the native grid when drawing (0 background, 255 figure); needs a dataset with alpha (images.npy RGBA) and
    # the RGB output. The RGB channels stay the portrait over its background, so every score reads them unchanged


@dataclass(frozen=True)
class DrawOptions:
    """How portraits are drawn from a trained G. None of these changes training: a run keeps its preset's as its
    default drawing (config section `draw`), and any verb may draw otherwise. All off = G's own portraits."""

    rgb_colours: int = 0  # RGB output: each portrait's pixels clustered (k-means in OKLab) into at most this many
    # colours of its own, each pixel drawn in its cluster's mean colour (models/colour_quantise.py); 0 = off
    palette_merge: float = 0.0  # palette output (or RGB output quantised by rgb_colours): a portrait's colours
    # within this dE (100 x OKLab distance) of a more used one take its colour, so near-identical colours stop
    # speckling; 0 = off
    best_of: int = 1  # draw this many candidates a portrait and keep the one D's auxiliary classifier
    # (model.d_classify) reads most surely as the asked attributes (sampling/selection.py); 1 = off
    refine_steps: int = 0  # move each portrait's noise this many steps up D's classifier's log-likelihood of its
    # conditions (plus refine_realness x D's score), its length kept (sampling/selection.py); 0 = off
    refine_rate: float = 0.05  # each refinement step moves the noise by this share of its length
    refine_realness: float = 0.05  # weight of D's realness score beside the classifier's log-likelihood in
    # refinement (0 = the classifier alone)
    refine_head: float = 0.0  # weight of D's head classifier's log-likelihood (model.d_head_classify) beside the
    # classifier's in refinement, so the head moves towards the class too; 0 = off
    bf16: bool = False  # the drawing's network passes in bf16 (autocast) where the hardware computes bf16
    # natively (CUDA, a CPU with AVX512-BF16 / AMX; models/precision.py), float32 elsewhere: a GAN's refinement
    # (G's and D's passes; the portrait of the refined noise is drawn in float32), a flow model's solver (each
    # velocity pass; the steps add up in float32). Exported files draw in float32
    adapt_colours: bool = False  # RGB output: quantise to the dataset's own colour budget instead of rgb_colours:
    # with no merge as many colours as its median portrait holds (measured at build, data/colour_stats.py); with
    # palette_merge the smallest budget whose merged portraits of this model hold as many colours as the data's do
    # (counted by the sampler, sampling/colour_budget.py). A colour flag given explicitly turns it off
    palette: str = ""  # draw in the user's palette: a .hex / .gpl / swatch image file, or #rrggbb,#rrggbb,...; each
    # portrait's own colours are assigned to the palette's in OKLab, distinct ones kept distinct where the palette
    # allows (models/palette_output.py); "" = off. Needs the portrait's own colours (rgb_colours or palette output)
    dither: bool = False  # with a palette: ordered (Bayer 4x4) dithering between each pixel's two nearest palette
    # colours instead of one colour per portrait colour
    flow_steps: int = 16  # the flow family: steps of the solver from noise to portrait (each one or two passes)
    flow_solver: str = "heun"  # the flow family: "euler" (one pass a step) or "heun" (two, second order)
    guidance: float = 1.0  # the flow family: classifier-free guidance scale; 1 = the conditional velocity alone,
    # > 1 pushes each portrait towards its labels (needs train.attr_dropout > 0), 0 = unconditional
    guidance_from: float = 0.0  # the flow family: guidance only on the solver's passes whose time t (0 = noise,
    guidance_until: float = 1.0  # 1 = portrait) lies in [guidance_from, guidance_until); the others are one
    # conditional pass (a guidance interval, Kynkaanniemi et al. 2024): guidance where it sets the attributes
    # (early, at high noise); the late passes, which draw the detail, unguided cost half the time
    guidance_on: str = ""  # the flow family: the attributes guidance pushes, comma-separated ("palette"); the
    # others stay as asked in both of its passes, so they are drawn as the conditional model draws them. "" = all.
    # With a scale per entry ("hero_class=1.5,palette=2") each is guided at its own (one more pass per attribute)
    palette_check: int = 0  # redraw (new noise) each portrait whose palette, read by the rules that labelled the
    # dataset's palettes (data/palette_labels.py), is not the asked one, up to this many times; only for data whose
    # palette labels are the rules' reading (LPC, folders without a palette column); 0 = off
    channels_last: bool = False  # the flow family: the velocity network's weights in channels-last (NHWC) memory
    # while drawing, the layout oneDNN and cuDNN convolve fastest: the same portraits up to float rounding, 1.4x
    # faster on a 2-core Xeon (docs/log/2026-12-07-channels-last-drawing.md); exported files hold the plain layout

    @property
    def guided(self) -> bool:
        """Whether drawing needs D (best of R, refinement): ~R or ~3T times the passes of G alone."""
        return self.best_of > 1 or self.refine_steps > 0

    def unguided(self) -> DrawOptions:
        """The same colours without D's guidance or the palette check: what G alone draws (sample grids while
        training, train-time evaluation, exported files)."""
        return dataclasses.replace(self, best_of=1, refine_steps=0, palette_check=0)

    def changed(self, **changes) -> DrawOptions:
        """These options with some fields changed (None = keep). Turning an RGB model's quantisation off leaves
        nothing to merge, so the merge goes with it unless it is given too."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if changes.get("rgb_colours") == 0 and self.rgb_colours > 0 and "palette_merge" not in changes:
            changes["palette_merge"] = 0.0
        if {"rgb_colours", "palette_merge"} & set(changes) and "adapt_colours" not in changes:
            changes["adapt_colours"] = False  # colours given explicitly are the ones drawn
        return dataclasses.replace(self, **changes)

    def fitted(self, colours: dict | None, palette_model: bool = False) -> DrawOptions:
        """With adapt_colours, an RGB model's quantisation set to the colour budget of a dataset's statistics
        (`colours`: its data/colour_stats.colour_statistics, kept in dataset.json and in checkpoints; merged, the
        95th percentile, which a Sampler replaces by the budget counted on the model's portraits). Unchanged
        otherwise: a palette model (it draws its palette), or statistics unknown (an older checkpoint)."""
        if not self.adapt_colours or not colours or palette_model:
            return self
        return dataclasses.replace(self, rgb_colours=drawing_budget(colours, merged=self.palette_merge > 0))

    def record(self) -> dict:
        """Every option, for the files that say how their portraits were drawn (evaluations, headgear scores)."""
        return dataclasses.asdict(self)

    def describe(self, flow: bool = False, bf16_native: bool = True) -> str:
        """The options in words, for output lines and logs: "32 colours a portrait merged at 7 dE, refined 7
        steps by D (realness 0.025)"; "as G draws them" when all are off. flow=True (a flow model) names the
        solver first: "16 Heun steps, guidance 2, 32 colours a portrait". bf16_native=False (a device without
        native bf16) says the bf16 passes fall back to float32, as models/precision.py runs them."""
        parts = []
        precision = "bf16" if bf16_native else "float32 (bf16 asked, not native here)"
        if flow:
            guided = f", guidance {self.guidance:g}" if self.guidance != 1 else ""
            if guided and self.guidance_on:
                guided += f" on {self.guidance_on}"
            if guided and (self.guidance_from, self.guidance_until) != (0.0, 1.0):
                guided += f" for t in [{self.guidance_from:g}, {self.guidance_until:g})"
            bf16 = f" in {precision}" if self.bf16 else ""
            layout = ", channels-last" if self.channels_last else ""
            parts.append(f"{self.flow_steps} {self.flow_solver.capitalize()} steps{bf16}{layout}{guided}")
        if self.rgb_colours:
            parts.append(f"{self.rgb_colours} colours a portrait{' (from the data)' if self.adapt_colours else ''}")
        if self.palette_merge:
            parts.append(f"{'merged' if self.rgb_colours else 'colours merged'} at {self.palette_merge:g} dE")
        if self.palette:
            shown = self.palette if len(self.palette) <= 40 else "..." + self.palette[-37:]
            parts.append(f"in the palette {shown}{' dithered' if self.dither else ''}")
        if self.best_of > 1:
            parts.append(f"best of {self.best_of} by D's classifier")
        if self.palette_check:
            parts.append(f"off-palette portraits redrawn up to {self.palette_check} times")
        if self.refine_steps:
            head = f", head {self.refine_head:g}" if self.refine_head else ""
            bf16 = f", {precision}" if self.bf16 else ""
            parts.append(
                f"refined {self.refine_steps} steps by D (rate {self.refine_rate:g}, realness "
                f"{self.refine_realness:g}{head}{bf16})"
            )
        return ", ".join(parts).replace("portrait, merged", "portrait merged") or "as G draws them"


DRAW_FIELDS = tuple(f.name for f in dataclasses.fields(DrawOptions))
# Names for every ModelConfig field that takes a name; the networks index their implementations with them.
MODEL_CHOICES = {
    "model.arch": ("dcgan", "resnet", "style", "unet"),
    "model.g_cond": ("concat", "cbn", "concat+cbn"),
    "model.d_cond": ("concat", "projection"),
    "model.output": ("rgb", "palette"),
    "model.palette_source": ("portrait", "dataset"),
    "model.palette_mix": ("soft", "straight", "gumbel"),
}


FLOW_ARCHS = ("unet",)  # the architectures of the flow family; the others are GANs
# how a flow model draws; a GAN has none of these
FLOW_DRAW_FIELDS = (
    "flow_steps",
    "flow_solver",
    "guidance",
    "guidance_from",
    "guidance_until",
    "guidance_on",
    "channels_last",
)
FLOW_SOLVERS = ("euler", "heun")


def image_channels(m: ModelConfig) -> int:
    """Channels of the images G draws and D reads: RGB, or RGBA with model.alpha."""
    return 4 if m.alpha else 3


def is_flow(m: ModelConfig) -> bool:
    """Whether the model is of the flow family (a velocity network and its sampler, no discriminator)."""
    return m.arch in FLOW_ARCHS


def check_model_choices(m: ModelConfig) -> None:
    """Every name field of a ModelConfig; also called by build_models, which a notebook may call with a
    ModelConfig it built by hand (a typo would silently drop the conditioning)."""
    for key, allowed in MODEL_CHOICES.items():
        value = getattr(m, key.partition(".")[2])
        if value not in allowed:
            raise ConfigError(f"{key}={value!r} is not one of {list(allowed)}")
