"""What every picture shares, whatever stage draws it: saving a figure, and showing pixels crisp.

Each stage draws its own pictures beside its code (data.figures, training.figures, evaluation.figures,
study.figures); these helpers keep them alike. Pixels are always shown with nearest-neighbour
interpolation, so pixel art stays crisp.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from heroportraits.errors import HeroError


class DrawingError(HeroError):
    """A file with nothing to draw, or without the column asked for."""


def save_figure(fig, path: str | Path | None, dpi: int = 100):
    """Save `fig` to `path` (making its folder) when given. A saved pyplot figure is closed,
    so a notebook does not show it twice; the figure is returned either way."""
    if path is not None:
        import matplotlib.pyplot as plt

        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=dpi)
        finally:
            plt.close(fig)
    return fig


def show_image(ax, image: np.ndarray, title: str = "", fontsize: int = 7) -> None:
    """One portrait on an axis, pixels crisp, no frame."""
    ax.imshow(image, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=fontsize)


def plain_text(draw):
    """A figure function whose text is drawn as written. Labels come from the data, and matplotlib reads `$...$`
    as maths: a class named `$mage_$` would fail to draw."""

    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return drawn
