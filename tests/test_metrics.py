"""Metric functions: closed forms on synthetic features, then the properties the issue asks
for on real images embedded by a small judge (FD grows with damage, KID is unbiased,
precision and recall fail in their own ways)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from conftest import make_project_root, synthetic_shapes_dataset
from scipy.ndimage import gaussian_filter

from heroportraits.data.dataset import load_dataset
from heroportraits.data.images import nearest_upscale
from heroportraits.evaluation import metrics as M
from heroportraits.evaluation.judge import JudgeConfig, load_or_train_judge

# Small enough to train in seconds, good enough for meaningful features (shape ~0.9, colour ~1.0 on VAL).
TEST_JUDGE = JudgeConfig(width=8, feature_dim=64, epochs=6, batch_size=64)


def gaussian(n, d, seed, shift=0.0):
    return np.random.default_rng(seed).standard_normal((n, d)) + shift


# ---------------------------------------------------------------- Fréchet distance
def test_fd_is_zero_for_a_sample_against_itself_and_equals_the_mean_shift_for_a_translated_copy():
    x = gaussian(500, 16, 0)
    assert M.fd_from_features(x, x) == pytest.approx(0.0, abs=1e-9)
    shift = np.linspace(-1, 1, 16)
    assert M.fd_from_features(x, x + shift) == pytest.approx((shift**2).sum(), rel=1e-9)
    assert M.fd_from_features(x, gaussian(500, 16, 1)) < 0.2 * M.fd_from_features(x, gaussian(500, 16, 1, 0.5))


def test_fd_agrees_with_scipy_sqrtm_when_covariances_are_well_conditioned():
    x, y = gaussian(400, 8, 0), gaussian(400, 8, 1) @ np.diag(np.linspace(0.5, 2, 8)) + 0.3
    (m1, s1), (m2, s2) = M.gaussian_stats(x), M.gaussian_stats(y)
    ref = ((m1 - m2) ** 2).sum() + np.trace(s1 + s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
    assert M.frechet_distance(m1, s1, m2, s2) == pytest.approx(ref, rel=1e-8)


def test_fd_is_stable_for_rank_deficient_covariances():
    # Singular diagonal covariances (dead units): the closed form is sum (sqrt a - sqrt b)^2.
    a = np.array([4.0, 1.0, 0.0, 0.0, 2.0])
    b = np.array([1.0, 0.0, 0.0, 9.0, 2.0])
    mu = np.zeros(5)
    expected = ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert M.frechet_distance(mu, np.diag(a), mu, np.diag(b)) == pytest.approx(expected, abs=1e-9)
    # Fewer samples than dimensions (rank <= 9 in 64-d), plus units that never fire.
    x = gaussian(10, 64, 2)
    x[:, :8] = 0.0
    y = gaussian(10, 64, 3)
    for d in (M.fd_from_features(x, x), M.fd_from_features(x, x + 0.5), M.fd_from_features(x, y)):
        assert np.isfinite(d) and isinstance(d, float) and d >= 0
    assert M.fd_from_features(x, x) == pytest.approx(0.0, abs=1e-8)
    assert M.fd_from_features(x, x + 0.5) == pytest.approx(64 * 0.25, rel=1e-10)  # scipy.linalg.sqrtm: ~1e-7, complex
    assert M.fd_from_features(x, y) == pytest.approx(M.fd_from_features(y, x), rel=1e-8)
    assert M.fd_from_features(3 * x, 3 * y) == pytest.approx(9 * M.fd_from_features(x, y), rel=1e-8)


# ---------------------------------------------------------------- KID
def test_mmd2_estimator_is_unbiased_where_the_plug_in_estimate_is_not():
    """Over many independent pairs of small samples from one distribution, the unbiased
    MMD^2 averages to 0; the plug-in (V-statistic) average is clearly positive."""
    rng = np.random.default_rng(0)
    unbiased, plug_in = [], []
    for _ in range(400):
        x, y = rng.standard_normal((20, 8)), rng.standard_normal((20, 8))
        unbiased.append(M.mmd2_unbiased(x, y))
        kxx, kyy, kxy = M._poly_kernel(x, x), M._poly_kernel(y, y), M._poly_kernel(x, y)
        plug_in.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    se = np.std(unbiased) / np.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < 3 * se
    assert np.mean(plug_in) > 10 * se


def test_kid_separates_distributions_and_reports_its_subset_spread():
    x, y, z = gaussian(400, 16, 0), gaussian(400, 16, 1), gaussian(400, 16, 2, 0.5)
    same_mean, same_std = M.kid(x, y, n_subsets=50)
    diff_mean, diff_std = M.kid(x, z, n_subsets=50)
    assert abs(same_mean) < 3 * same_std + 1e-3
    assert diff_mean > 10 * max(abs(same_mean), diff_std)
    assert M.kid(x, z, n_subsets=50, seed=3) == M.kid(x, z, n_subsets=50, seed=3)  # deterministic
    assert M.kid_subset_size(2000, 760) == 380 and M.kid_subset_size(5000, 5000) == 1000


# ---------------------------------------------------------------- pixel art
def blocky_images(n=6, seed=0):
    """(n, 64, 64, 3) images made of 2x2 one-colour blocks from a 4-colour palette."""
    rng = np.random.default_rng(seed)
    palette = np.array([[20, 20, 30], [200, 60, 40], [60, 160, 90], [240, 230, 200]], np.uint8)
    native = palette[rng.integers(0, 4, (n, 32, 32))]
    return np.stack([nearest_upscale(im, 2) for im in native])


def blur(images, sigma):
    if sigma == 0:
        return images.copy()
    out = [gaussian_filter(im.astype(np.float64), (sigma, sigma, 0)) for im in images]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def colour_noise(images, std, seed=0):
    noise = np.random.default_rng(seed).standard_normal(images.shape)  # the same noise, scaled
    return np.clip(np.round(images + std * noise), 0, 255).astype(np.uint8)


def test_pixel_art_metrics_see_palette_grid_and_blur():
    x = blocky_images()
    assert (M.distinct_colours(x) <= 4).all()
    assert (M.block_uniformity(x, 2) == 1.0).all()
    blurred = blur(x, 1.0)
    assert (M.distinct_colours(blurred) > 20).all()
    assert (M.block_uniformity(blurred, 2) < 0.5).all()
    assert (M.edge_sharpness(blurred) < 0.7 * M.edge_sharpness(x)).all()
    assert (M.sharp_transition_ratio(blurred) < M.sharp_transition_ratio(x)).all()
    with pytest.raises(ValueError, match="native pixel scale 3"):
        M.block_uniformity(x, 3)


def test_nearest_neighbours_finds_exact_copies_even_beside_near_duplicates():
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 256, (300, 64, 64, 3), dtype=np.uint8)
    near = reference[7].copy()
    near[0, 0, 0] ^= 1  # one channel value off by one
    reference = np.concatenate([near[None], reference])  # the near-duplicate comes first
    query = reference[[8, 100, 300]]  # exact copies of originals 7, 99, 299
    idx, dist = M.nearest_neighbours(query, reference, chunk=2)
    assert idx.tolist() == [8, 100, 300]
    assert dist.tolist() == [0.0, 0.0, 0.0]
    idx, dist = M.nearest_neighbours(near[None], reference[1:])
    assert idx.tolist() == [7] and 0 < dist[0] < 0.01


# ---------------------------------------------------------------- on images, through a judge
@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """The shapes dataset, its small judge, and uint8 TRAIN/VAL images with VAL features."""
    root = make_project_root(tmp_path_factory.mktemp("metrics"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEROPORTRAITS_ROOT", str(root))
        synthetic_shapes_dataset(root)
        judge = load_or_train_judge("shapes", TEST_JUDGE, progress=False)
        train = load_dataset("shapes", "train").images.permute(0, 2, 3, 1).numpy()[:200]
        val = load_dataset("shapes", "val").images.permute(0, 2, 3, 1).numpy()
        yield {"judge": judge, "train": train, "val": val, "val_feats": judge.features(val)}


def fd_to_val(shapes, images):
    return M.fd_from_features(shapes["judge"].features(images), shapes["val_feats"])


def test_fd_of_real_val_against_itself_is_zero_and_train_vs_val_is_small(shapes):
    assert M.fd_from_features(shapes["val_feats"], shapes["val_feats"]) == pytest.approx(0.0, abs=1e-8)
    real = fd_to_val(shapes, shapes["train"])
    assert real < 0.5 * fd_to_val(shapes, blur(shapes["train"], 1.0))
    assert real < 0.5 * fd_to_val(shapes, colour_noise(shapes["train"], 32))


@pytest.mark.parametrize("damage, strengths", [(blur, [0, 0.75, 1.5, 2.5]), (colour_noise, [0, 16, 32, 64])])
def test_fd_grows_monotonically_with_damage(shapes, damage, strengths):
    fds = [fd_to_val(shapes, damage(shapes["train"], s)) for s in strengths]
    assert all(a < b for a, b in zip(fds, fds[1:])), f"{damage.__name__}: FD {fds} not increasing with {strengths}"


def test_kid_is_about_zero_between_random_halves_of_val_and_clearly_positive_after_blur(shapes):
    f, rng = shapes["val_feats"], np.random.default_rng(0)
    halves = []
    for _ in range(10):  # random splits: in expectation the same distribution
        p = rng.permutation(len(f))
        halves.append(M.kid(f[p[::2]], f[p[1::2]], n_subsets=50)[0])
    se = np.std(halves) / np.sqrt(len(halves))
    assert abs(np.mean(halves)) < 3 * se
    blurred, _ = M.kid(shapes["judge"].features(blur(shapes["train"], 2.5)), f, n_subsets=50)
    assert blurred > 5 * (abs(np.mean(halves)) + se)


def test_precision_drops_off_manifold_and_recall_drops_for_a_collapsed_set(shapes):
    real, train_feats = shapes["val_feats"], shapes["judge"].features(shapes["train"])
    p_real, r_real = M.precision_recall(real, train_feats)
    d_real, c_real = M.density_coverage(real, train_feats)
    assert p_real > 0.8 and r_real > 0.8 and c_real > 0.8

    off = shapes["judge"].features(colour_noise(shapes["train"], 64))  # shapes still there, colours off
    p_off, _ = M.precision_recall(real, off)
    d_off, _ = M.density_coverage(real, off)
    assert p_off < p_real - 0.3 and d_off < 0.5 * d_real

    # One realistic image repeated: the TRAIN image nearest to some VAL image.
    one = train_feats[M.pairwise_distances(train_feats, real).min(1).argmin()]
    collapsed = np.repeat(one[None], len(train_feats), 0)
    p_col, r_col = M.precision_recall(real, collapsed)
    _, c_col = M.density_coverage(real, collapsed)
    assert p_col == 1.0  # fidelity is fine ...
    assert r_col < 0.05 and c_col < 0.05  # ... diversity is gone
