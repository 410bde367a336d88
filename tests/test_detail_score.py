"""The detail score: which neighbours share each native pixel's colour. Real pixel art passes; the same
portraits with their native pixels jittered a few levels (speckle, dither) or blurred do not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from heroportraits.data.procedural import portrait_at
from heroportraits.evaluation import metrics as M

K = 2  # the built-in portraits: 32x32 native pixels shown at 64x64


def portraits(n: int, seed: int) -> np.ndarray:
    """n built-in portraits at 64x64 (N, 64, 64, 3) uint8: real pixel art, drawn by the project's own source."""
    return np.stack([portrait_at(i, seed)[0] for i in range(n)])


def jittered(images: np.ndarray, levels: int, seed: int = 0) -> np.ndarray:
    """Each native pixel's channels moved by up to +-`levels` (the whole 2x2 block alike): speckle at the pixel
    level that a colour count or FD barely sees."""
    native = images[:, ::K, ::K].astype(int)
    noise = np.random.default_rng(seed).integers(-levels, levels + 1, native.shape)
    return np.repeat(np.repeat(np.clip(native + noise, 0, 255), K, 1), K, 2).astype(np.uint8)


def blurred(images: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    return np.clip(gaussian_filter(images.astype(float), (0, sigma, sigma, 0)), 0, 255).round().astype(np.uint8)


def histogram(images: np.ndarray) -> np.ndarray:
    return M.pattern_histogram(M.neighbourhood_patterns(M.native_pixels(images, K)))


@pytest.fixture(scope="module")
def real():
    return portraits(120, seed=0), portraits(120, seed=1)


def test_patterns_name_the_neighbours_that_share_the_centre_colour():
    codes = np.zeros((1, 3, 3), np.int32)
    assert M.neighbourhood_patterns(codes).tolist() == [[[255]]]  # flat: all 8 share it
    codes[0, 1, 1] = 7
    assert M.neighbourhood_patterns(codes).tolist() == [[[0]]]  # a speckle: none does
    codes[0, 0, 1] = 7  # the pixel above (bit 1) shares it
    assert M.neighbourhood_patterns(codes).tolist() == [[[2]]]
    assert M.isolated_share(M.neighbourhood_patterns(codes)).tolist() == [0.0]


def test_the_score_separates_real_portraits_from_jittered_and_blurred_ones(real):
    a, b = real
    floor = M.pattern_distance(histogram(a), histogram(b))  # real against real: other portraits, same art
    jitter = M.pattern_distance(histogram(a), histogram(jittered(b, levels=3)))
    blur = M.pattern_distance(histogram(a), histogram(blurred(b)))
    assert floor < 0.05, floor
    assert jitter > 10 * floor and blur > 10 * floor, (floor, jitter, blur)
    # Isolated pixels: rare in the art, almost everywhere once jittered.
    iso_real = M.isolated_share(M.neighbourhood_patterns(M.native_pixels(b, K))).mean()
    iso_jitter = M.isolated_share(M.neighbourhood_patterns(M.native_pixels(jittered(b, 3), K))).mean()
    assert iso_real < 0.1 and iso_jitter > 0.8, (iso_real, iso_jitter)


def test_a_lighter_jitter_scores_between_real_and_a_heavier_one(real):
    a, b = real
    distances = [M.pattern_distance(histogram(a), histogram(jittered(b, levels, seed=2))) for levels in (0, 1, 4)]
    assert distances[0] < distances[1] < distances[2], distances
