"""Metric functions: plain numpy/scipy in, numbers out. No models, no files.

Feature-space metrics take feature arrays (N, D) (the judge's, see judge.py):
    frechet_distance / fd_from_features   Heusel et al. 2017, with an eigen-decomposition
                                          matrix square root that is stable for the
                                          rank-deficient covariances small samples give
    kid                                   unbiased MMD^2, cubic polynomial kernel
                                          (Binkowski et al. 2018), mean/std over subsets
    precision_recall                      k-NN manifolds (Kynkaanniemi et al. 2019)
    density_coverage                      (Naeem et al. 2020)
Pixel-art metrics take uint8 images (N, H, W, 3): colour count, native-grid block
uniformity, edge sharpness, and the detail score on the native grid (which neighbours share each pixel's
colour: `neighbourhood_patterns`, `pattern_distance`, `isolated_share`). `nearest_neighbours` serves the
memorisation check.
"""

from __future__ import annotations

import numpy as np
import torch


# ---------------------------------------------------------------- Fréchet distance
def gaussian_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D)."""
    feats = np.asarray(feats, np.float64)
    if feats.ndim != 2 or len(feats) < 2:
        raise ValueError(f"need at least 2 feature vectors shaped (N, D), got {feats.shape}")
    return feats.mean(0), np.cov(feats, rowvar=False)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix; tiny negative eigenvalues (round-off) clipped to 0."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2).

    With R = sqrt(S) (symmetric, from an eigen-decomposition), S1 S2 is similar to
    (R1 R2)(R1 R2)^T, so tr((S1 S2)^1/2) is the sum of the singular values of R1 R2.
    No square root of a non-symmetric product (scipy.linalg.sqrtm returns complex or
    NaN values when S1 or S2 is singular: fewer samples than dimensions, dead units),
    and no square root of its tiny eigenvalues either, which would turn round-off of
    1e-16 into errors of 1e-8 per null direction.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(s1).astype(np.float64), np.atleast_2d(s2).astype(np.float64)
    tr_covmean = np.linalg.svd(_psd_sqrt(s1) @ _psd_sqrt(s2), compute_uv=False).sum()
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)
    return max(d, 0.0)


def fd_from_features(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


# ---------------------------------------------------------------- KID
def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / D + 1)^3, the kernel KID uses."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between samples x (m, D) and y (n, D): diagonal terms left out."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()
    )


def kid_subset_size(n_fake: int, n_real: int, cap: int = 1000) -> int:
    """1000 as usual, but at most half the smaller set, so that subsets differ and the std means something."""
    return max(2, min(cap, min(n_fake, n_real) // 2))


def kid(
    fake: np.ndarray, real: np.ndarray, n_subsets: int = 100, subset_size: int | None = None, seed: int = 0
) -> tuple[float, float]:
    """KID: mean and std of unbiased MMD^2 over random subsets (without replacement within one).

    Unbiased, so it can be slightly negative when both samples come from one distribution.
    `subset_size` defaults to `kid_subset_size`.
    """
    fake, real = np.asarray(fake, np.float64), np.asarray(real, np.float64)
    size = min(subset_size or kid_subset_size(len(fake), len(real)), len(fake), len(real))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples on each side, got {len(fake)} and {len(real)}")
    rng = np.random.default_rng(seed)
    vals = [
        mmd2_unbiased(
            fake[rng.choice(len(fake), size, replace=False)], real[rng.choice(len(real), size, replace=False)]
        )
        for _ in range(n_subsets)
    ]
    return float(np.mean(vals)), float(np.std(vals))


# ---------------------------------------------------------------- k-NN manifolds
def pairwise_distances(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Euclidean distances (len(a), len(b)), float64 via the Gram trick, chunked over `a`."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    bb = (b * b).sum(1)
    out = np.empty((len(a), len(b)))
    for i in range(0, len(a), chunk):
        x = a[i : i + chunk]
        d2 = (x * x).sum(1)[:, None] + bb[None, :] - 2 * x @ b.T
        out[i : i + chunk] = np.sqrt(np.clip(d2, 0, None))
    return out


def knn_radii(feats: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest neighbour in the same set (itself excluded)."""
    if len(feats) <= k:
        raise ValueError(f"k={k} nearest neighbours need more than {k} samples, got {len(feats)}")
    d = pairwise_distances(feats, feats)
    # Column 0 of the sorted row is the point itself (distance 0).
    return np.partition(d, k, axis=1)[:, k]


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Precision: share of fake samples inside the real k-NN manifold; recall: the converse."""
    r_real, r_fake = knn_radii(real, k), knn_radii(fake, k)
    d = pairwise_distances(fake, real)  # (n_fake, n_real)
    precision = float((d <= r_real[None, :]).any(1).mean())
    recall = float((d.T <= r_fake[None, :]).any(1).mean())
    return precision, recall


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density: mean count of real k-NN balls holding each fake sample / k (~1 for matching
    distributions, can exceed 1); coverage: share of real samples whose ball holds a fake one."""
    r_real = knn_radii(real, k)
    inside = pairwise_distances(fake, real) <= r_real[None, :]  # (n_fake, n_real)
    return float(inside.sum(0).sum() / (k * len(fake))), float(inside.any(0).mean())


# ---------------------------------------------------------------- conditioning
def conditional_accuracy(
    pred: np.ndarray, target: np.ndarray, names: list[str], unspecified: list[int] | None = None
) -> dict:
    """Per-attribute and joint agreement of predicted (N, A) with target (N, A) value indices.

    Entries where the target is "unspecified" (index `unspecified[a]`) are left out of
    that attribute's accuracy; the joint score counts only rows with every attribute given.
    """
    pred, target = np.asarray(pred), np.asarray(target)
    given = np.ones_like(target, bool) if unspecified is None else target < np.asarray(unspecified)[None, :]
    right = pred == target
    out = {}
    for i, n in enumerate(names):
        out[n] = float(right[given[:, i], i].mean()) if given[:, i].any() else None
    full = given.all(1)
    out["joint"] = float(right[full].all(1).mean()) if full.any() else None
    return out


# ---------------------------------------------------------------- pixel art
def distinct_colours(images: np.ndarray) -> np.ndarray:
    """Number of distinct RGB colours in each image (N,). Pixel art has few; blur/noise makes many."""
    x = np.asarray(images, np.uint8).reshape(len(images), -1, 3).astype(np.int32)
    codes = np.sort((x[..., 0] << 16) | (x[..., 1] << 8) | x[..., 2], axis=1)  # (N, H*W)
    return 1 + (np.diff(codes, axis=1) != 0).sum(1)


def block_uniformity(images: np.ndarray, k: int, tolerance: int = 8) -> np.ndarray:
    """Share of k x k blocks on the native grid that are one colour (channel spread <= tolerance), (N,).

    For k = 1 every block is trivially uniform, so the score is 1 and says nothing.
    """
    x = np.asarray(images).astype(np.int16)
    n, h, w, c = x.shape
    if h % k or w % k:
        raise ValueError(f"image size {h}x{w} is not a multiple of the native pixel scale {k}")
    blocks = x.reshape(n, h // k, k, w // k, k, c)
    spread = (blocks.max(axis=(2, 4)) - blocks.min(axis=(2, 4))).max(-1)  # (N, h/k, w/k)
    return (spread <= tolerance).mean(axis=(1, 2))


def _neighbour_diffs(images: np.ndarray) -> np.ndarray:
    """Max-over-channels absolute difference of horizontal and vertical neighbours, (N, P)."""
    x = np.asarray(images).astype(np.int16)
    dx = np.abs(np.diff(x, axis=2)).max(-1).reshape(len(x), -1)
    dy = np.abs(np.diff(x, axis=1)).max(-1).reshape(len(x), -1)
    return np.concatenate([dx, dy], axis=1)


def edge_sharpness(images: np.ndarray, top: float = 0.1) -> np.ndarray:
    """Mean of the top `top` share of neighbour differences per image (0-255), (N,).

    Blur spreads one strong step over several weak ones, which lowers it.
    """
    d = _neighbour_diffs(images)
    m = max(1, int(round(d.shape[1] * top)))
    return np.sort(d, axis=1)[:, -m:].mean(1)


def sharp_transition_ratio(images: np.ndarray, flat: int = 4, sharp: int = 32) -> np.ndarray:
    """Among neighbour pairs that differ at all (> `flat`), the share that differ strongly
    (> `sharp`), (N,). Pixel art changes colour in one step; blur and noise add soft steps."""
    d = _neighbour_diffs(images)
    changed = (d > flat).sum(1)
    return np.where(changed > 0, (d > sharp).sum(1) / np.maximum(changed, 1), 1.0)


# ---------------------------------------------------------------- detail on the native grid
# The 8 neighbours of a pixel, in the order of their bits in its neighbourhood pattern.
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def native_pixels(images: np.ndarray, k: int) -> np.ndarray:
    """(N, H, W, 3) images drawn on a k x k native grid -> (N, H/k, W/k) one int32 colour code a native pixel."""
    x = np.asarray(images, np.uint8)[:, ::k, ::k].astype(np.int32)
    return (x[..., 0] << 16) | (x[..., 1] << 8) | x[..., 2]


def neighbourhood_patterns(codes: np.ndarray) -> np.ndarray:
    """(N, h, w) colour codes -> (N, h-2, w-2) 8-bit patterns: for each inner pixel, which of its 8 neighbours have
    exactly its colour. Flat areas give 255, edges the shape of the edge, and a pixel no neighbour shares (a
    speckle: noise, dither, a blur's in-between colour) gives 0."""
    n, h, w = codes.shape
    centre = codes[:, 1:-1, 1:-1]
    patterns = np.zeros(centre.shape, np.int64)
    for bit, (dy, dx) in enumerate(NEIGHBOURS):
        patterns |= (codes[:, 1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx] == centre).astype(np.int64) << bit
    return patterns


def pattern_histogram(patterns: np.ndarray) -> np.ndarray:
    """The share of each of the 256 neighbourhood patterns over a set of images, (256,)."""
    counts = np.bincount(np.asarray(patterns).ravel(), minlength=256).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def pattern_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance between two pattern histograms (256,): 0 for the same local structure, 1 for
    none in common. A speckled face moves the mass from flat and edge patterns to 0 and cannot pass."""
    return float(0.5 * np.abs(np.asarray(a) - np.asarray(b)).sum())


def isolated_share(patterns: np.ndarray) -> np.ndarray:
    """Share of each image's inner native pixels that no neighbour shares a colour with (pattern 0), (N,)."""
    return (np.asarray(patterns) == 0).reshape(len(patterns), -1).mean(1)


# ---------------------------------------------------------------- memorisation
def _sq_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact summed squared difference of paired flat uint8 rows (N, P) -> (N,) int64 (int32 maths: P*255^2 < 2^31)."""
    d = a.astype(np.int32) - b.astype(np.int32)
    return np.einsum("ij,ij->i", d, d, dtype=np.int64)


def nearest_neighbours(
    query: np.ndarray, reference: np.ndarray, chunk: int = 512, candidates: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """For each query image, the index of its nearest reference image and their RMS pixel distance.

    The `candidates` nearest by one float32 matmul (fast, but squared distances of
    ~1e8 carry round-off of ~1e2) are re-ranked by exact distances, so an exact copy
    always wins over a near-duplicate and comes out at exactly 0.
    query (N, H, W, 3), reference (M, H, W, 3) uint8 -> (index (N,), distance (N,))
    """
    ref_flat = np.ascontiguousarray(reference, np.uint8).reshape(len(reference), -1)  # (M, P)
    q_all = np.ascontiguousarray(query, np.uint8).reshape(len(query), -1)  # (N, P)
    ref = torch.from_numpy(ref_flat).float()
    ref_sq = (ref * ref).sum(1)  # (M,)
    c = min(candidates, len(ref_flat))
    idx, dist = np.empty(len(query), np.int64), np.empty(len(query))
    for i in range(0, len(query), chunk):
        q_np = q_all[i : i + chunk]  # (B, P) uint8
        q = torch.from_numpy(q_np).float()
        d2 = ref_sq[None, :] - 2 * q @ ref.T  # (B, M); ||q||^2 is constant per row
        cand = d2.topk(c, dim=1, largest=False).indices.numpy()  # (B, c)
        exact = np.stack([_sq_distance(q_np, ref_flat[cand[:, j]]) for j in range(c)], 1)  # (B, c) int64, exact
        best = exact.argmin(1)  # first minimum: ties go to the float32 order
        idx[i : i + chunk] = cand[np.arange(len(cand)), best]
        dist[i : i + chunk] = np.sqrt(exact[np.arange(len(cand)), best] / q_all.shape[1])
    return idx, dist
