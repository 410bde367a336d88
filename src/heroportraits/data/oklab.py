"""sRGB <-> OKLab (Ottosson 2020), in numpy (and sRGB -> OKLab in torch, for G's palette merge):
the perceptual space palettes are clustered in.

OKLab is nearly uniform: equal Euclidean steps look like equal colour differences, which
RGB distances are not (a step in dark blues reads larger than the same step in greens).
Colour differences are reported as dE = 100 x the OKLab distance, so lightness spans
0-100 as in CIELAB and about 2 is a just noticeable difference.
"""

from __future__ import annotations

import numpy as np
import torch

# Linear sRGB -> LMS cone responses, and cube-rooted LMS -> Lab (Ottosson's published matrices).
_RGB_TO_LMS = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_LMS_TO_LAB = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)
# The way back is the inverse of each step (exact up to float rounding).
_LMS_TO_RGB = np.linalg.inv(_RGB_TO_LMS)
_LAB_TO_LMS = np.linalg.inv(_LMS_TO_LAB)

DELTA_E_SCALE = 100.0  # dE = 100 x OKLab distance


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB values in [0, 1] -> linear light (the sRGB transfer curve undone)."""
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.abs(c) ** (1 / 2.4) - 0.055)


def rgb_to_oklab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 sRGB (0-255) -> (..., 3) float64 OKLab (L in [0, 1], a and b about +-0.4)."""
    lms = srgb_to_linear(np.asarray(rgb, np.float64) / 255.0) @ _RGB_TO_LMS.T
    return np.cbrt(lms) @ _LMS_TO_LAB.T


def oklab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """(..., 3) OKLab -> (..., 3) uint8 sRGB, out-of-gamut colours clipped to the cube."""
    lms = (np.asarray(lab, np.float64) @ _LAB_TO_LMS.T) ** 3
    rgb = linear_to_srgb(np.clip(lms @ _LMS_TO_RGB.T, 0.0, 1.0))
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def delta_e(rgb_a: np.ndarray, rgb_b: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 colours -> (...) dE between them (100 x OKLab distance)."""
    return DELTA_E_SCALE * np.linalg.norm(rgb_to_oklab(rgb_a) - rgb_to_oklab(rgb_b), axis=-1)


def unit_rgb_to_oklab(rgb: torch.Tensor) -> torch.Tensor:
    """rgb_to_oklab in torch, for colours inside a network: (..., 3) sRGB in [0, 1] -> (..., 3) OKLab."""
    c = rgb.clamp(0.0, 1.0)
    linear = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    lms = linear @ torch.as_tensor(_RGB_TO_LMS.T, dtype=c.dtype, device=c.device)
    return lms.clamp_min(0.0).pow(1.0 / 3.0) @ torch.as_tensor(_LMS_TO_LAB.T, dtype=c.dtype, device=c.device)
