"""The interactive sampler of notebook 03: pick attributes, seed and count, see the grid, save it.

`sampler_panel(sampler, save_dir)` builds the ipywidgets box: one dropdown per attribute the
model is conditioned on (with "any"), the seed, the count, for a model whose D has the classifier the
refinement steps (selection.py; 0 = G's own portraits), the grid (redrawn on every change) and a button
that saves the portraits shown. The drawing and the saving are plain functions
(`render_choices`, `save_shown`) so they are tested without a browser; `show_sampler` falls back
to one static grid where ipywidgets is not installed.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from heroportraits.data.attributes import UNSPECIFIED
from heroportraits.data.images import make_grid, nearest_upscale
from heroportraits.errors import HeroError
from heroportraits.sampling.portraits import save_portraits
from heroportraits.sampling.sampler import Sampler

MAX_COUNT = 64  # portraits a grid shows at most
ZOOM = 2  # the grid is shown at 2x (64 px portraits are small on a screen)
MAX_REFINE = 10  # the refinement slider's top (the demo refines 7 steps)


@dataclass
class Shown:
    """What the panel shows: the portraits, their label rows, and the grid image made of them."""

    images: np.ndarray  # (n, 64, 64, 3) uint8
    rows: list[dict[str, str]]
    grid: np.ndarray  # (H, W, 3) uint8, zoomed
    choices: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    refine: int = 0  # the refinement steps they were drawn with


def attribute_choices(sampler: Sampler) -> dict[str, list[str]]:
    """The dropdowns: each conditioning attribute's values, "any" first."""
    return {name: [UNSPECIFIED, *values] for name, values in sampler.cvocab.attributes.items()}


def render_choices(
    sampler: Sampler,
    choices: dict[str, str],
    seed: int = 0,
    count: int = 16,
    refine: int | None = None,
    palette: str | None = None,
) -> Shown:
    """The portraits for the panel's choices ({attribute: value or "any"}). "any" leaves the attribute
    open, as `sample` does (training mix, or unspecified for a model trained with attribute dropout).
    `refine` draws them with that many refinement steps, `palette` in the user's palette (a palette file or
    "#rrggbb,..."; "" = none) (None = the sampler's own); the sampler keeps its own settings after."""
    count = max(1, min(int(count), MAX_COUNT))
    conditions = {k: v for k, v in choices.items() if v != UNSPECIFIED}
    with sampler.drawn_with(sampler.drawing.changed(refine_steps=refine, palette=palette)) as drawing:
        images, rows = sampler.generate(count, conditions, seed=int(seed))
    steps = drawing.refine_steps
    grid = nearest_upscale(make_grid(images, nrow=math.ceil(math.sqrt(count))), ZOOM)
    return Shown(images, rows, grid, dict(choices), int(seed), steps)


def save_shown(shown: Shown, save_dir: str | Path, names: list[str]) -> Path:
    """Write the shown portraits + labels.csv into the next free `save_dir/picked_NNN/`, so a
    second click never overwrites the first."""
    save_dir = Path(save_dir)
    taken = {p.name for p in save_dir.glob("picked_*")} if save_dir.exists() else set()
    number = next(i for i in range(len(taken) + 1) if f"picked_{i:03d}" not in taken)
    return save_portraits(shown.images, shown.rows, save_dir / f"picked_{number:03d}", names)


def png_bytes(img: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="PNG")
    return buffer.getvalue()


def sampler_panel(sampler: Sampler, save_dir: str | Path, count: int = 16, seed: int = 0):
    """The ipywidgets box (needs ipywidgets): controls on top, the grid, the save button and its status."""
    import ipywidgets as w

    dropdowns = {
        n: w.Dropdown(options=v, value=UNSPECIFIED, description=n) for n, v in attribute_choices(sampler).items()
    }
    seed_box = w.IntText(value=seed, description="seed")
    count_slider = w.IntSlider(value=count, min=1, max=MAX_COUNT, description="count")
    numbers = [seed_box, count_slider]
    refine_slider = None
    if sampler.config.model.d_classify > 0:  # refinement needs D's classifier
        steps = sampler.drawing.refine_steps
        refine_slider = w.IntSlider(value=steps, min=0, max=max(MAX_REFINE, steps), description="refine")
        numbers.append(refine_slider)
    palette_box = w.Text(value=sampler.drawing.palette, description="palette", placeholder="file or #rrggbb,...")
    picture, status = w.Image(format="png"), w.Label()
    save = w.Button(description="save these", icon="save")
    state: dict[str, Shown] = {}

    def redraw(_change=None) -> None:
        choices = {n: d.value for n, d in dropdowns.items()}
        refine = refine_slider.value if refine_slider is not None else None
        try:
            shown = render_choices(sampler, choices, seed_box.value, count_slider.value, refine, palette_box.value)
        except HeroError as e:  # a palette file still being typed, or one that is no palette: said, not raised
            status.value = str(e)
            return
        state["shown"], status.value = shown, ""
        picture.value = png_bytes(shown.grid)

    def on_save(_button) -> None:
        folder = save_shown(state["shown"], save_dir, sampler.vocab.names)
        status.value = f"saved {len(state['shown'].images)} portraits to {folder}"

    for control in (*dropdowns.values(), *numbers, palette_box):
        control.observe(redraw, names="value")
    save.on_click(on_save)
    redraw()
    box = w.VBox([w.HBox(list(dropdowns.values())), w.HBox([*numbers, palette_box]), picture, w.HBox([save, status])])
    box.state = state  # the portraits shown, for callers and tests
    return box


def show_sampler(sampler: Sampler, save_dir: str | Path, count: int = 16, seed: int = 0):
    """Display the interactive panel, or without ipywidgets one static grid of open choices."""
    from IPython.display import Image as IPImage
    from IPython.display import display

    try:
        panel = sampler_panel(sampler, save_dir, count, seed)
    except ImportError:
        shown = render_choices(sampler, {}, seed, count)
        print("ipywidgets is not installed (pip install ipywidgets): one static grid instead")
        display(IPImage(data=png_bytes(shown.grid)))
        return shown
    display(panel)
    return panel
