"""FID where the covariances are near-singular or rank-deficient (issue 11), in 2048-d, against
the exact value computed from the features themselves: QR of the centred features, X - mean = Q R,
so S = R^T R / (n - 1) and tr((S1 S2)^(1/2)) = sum of singular values of R1 R2^T / sqrt((n1-1)(n2-1)).
Neither S1 S2 nor a matrix square root is ever formed."""

import numpy as np
import pytest

from gan_bench.metrics.fid import feature_stats, frechet_distance, sqrt_factor

pytestmark = pytest.mark.usefixtures("one_thread")
D = 2048


def exact_fid(x1, x2) -> float:
    r1, r2 = (np.linalg.qr(x - x.mean(0), mode="r") for x in (x1, x2))
    n1, n2 = len(x1), len(x2)
    tr_sqrt = np.linalg.svd(r1 @ r2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    diff = x1.mean(0) - x2.mean(0)
    return float(diff @ diff + (r1 ** 2).sum() / (n1 - 1) + (r2 ** 2).sum() / (n2 - 1) - 2 * tr_sqrt)


def fid(x1, x2) -> float:
    return frechet_distance(*feature_stats(x1), *feature_stats(x2))


@pytest.fixture(scope="module")
def near_singular():
    """Issue 11's structure: 64 strong and 448 weak directions (variance ratio 3.6e7) of a random
    512-d subspace of R^2048; the second set has other variances and a shifted mean."""
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.normal(size=(D, 512)))[0]
    strong, weak = np.sqrt(3500.0), np.sqrt(3500.0) / 6000
    x1 = (rng.normal(size=(1000, 512)) * np.r_[np.full(64, strong), np.full(448, weak)]) @ q.T
    x2 = (rng.normal(size=(900, 512)) * np.r_[np.full(64, strong * 0.9), np.full(448, weak * 1.5)]) @ q.T + 0.01
    return x1, x2, q


def test_near_singular_equals_exact(near_singular):
    x1, x2, q = near_singular
    (mu1, s1), (mu2, s2) = feature_stats(x1), feature_stats(x2)
    w = np.linalg.eigvalsh(q.T @ s1 @ q)  # the spectrum on the 512-d span
    assert w[-1] / w[0] > 1e7  # as ill-conditioned as the case: the test means something
    exact = exact_fid(x1, x2)
    # Scaled down, the same data is the same problem: the relative error must not depend on scale.
    for c in (1.0, 0.05):
        assert frechet_distance(c * mu1, c * c * s1, c * mu2, c * c * s2) == pytest.approx(c * c * exact, rel=1e-6)


def test_identical_near_singular_sets_give_zero(near_singular):
    x1 = near_singular[0]
    mu, s = feature_stats(x1)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-9  # tr(S) here is 2.2e5


def test_rank_deficient_equals_exact():
    # Fewer samples than dimensions, correlated features: ranks 299 and 499 in 2048-d.
    rng = np.random.default_rng(1)
    mix = rng.normal(size=(D, D)) / 40 + np.outer(np.ones(D), rng.normal(size=D)) / 15
    x1 = rng.normal(size=(300, D)) @ mix
    x2 = (rng.normal(size=(500, D)) * np.linspace(0.2, 2, D)) @ mix + 0.1
    s1 = feature_stats(x1)[1]
    assert sqrt_factor(s1).shape == (D, 299)  # the numerical rank is the sample rank
    assert fid(x1, x2) == pytest.approx(exact_fid(x1, x2), rel=1e-6)


def test_sqrt_factor_reproduces_sigma():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 64)) @ rng.normal(size=(64, 64))
    s = feature_stats(x)[1]
    b = sqrt_factor(s)
    assert b.shape == (64, 39)
    np.testing.assert_allclose(b @ b.T, s, atol=1e-12 * np.abs(s).max())


def test_non_finite_statistics_give_nan():
    mu, s = np.zeros(3), np.eye(3)
    assert np.isnan(frechet_distance(mu, s, mu, np.full((3, 3), np.nan)))


@pytest.mark.slow
def test_full_rank_near_singular_equals_exact():
    # 2100 samples: full rank in 2048-d, 64 strong and 1984 weak directions (~8 s).
    rng = np.random.default_rng(3)
    std = np.r_[np.full(64, 60.0), np.full(D - 64, 0.01)]
    q = np.linalg.qr(rng.normal(size=(D, D)))[0]
    x1, x2 = ((rng.normal(size=(2100, D)) * std * f) @ q.T for f in (1.0, 1.2))
    assert fid(x1, x2) == pytest.approx(exact_fid(x1, x2), rel=1e-6)
    mu, s = feature_stats(x1)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-9 * np.trace(s)
