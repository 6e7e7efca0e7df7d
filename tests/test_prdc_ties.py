"""PRDC on exact ties (issue 11): identical sets score exactly 1, in any order and across chunks;
the strict `<` of Naeem et al. on lattice ties, by hand and against their `prdc` package."""

import numpy as np
import pytest
import torch

from gan_bench.metrics.prdc import prdc, pure_sqdist

ONES = {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}


@pytest.fixture(scope="module")
def feats():
    """float32, like network features (on these the pre-issue-11 code gave density 1.001)."""
    return np.random.default_rng(0).normal(size=(600, 2048)).astype(np.float32)


def test_identical_sets_score_exactly_one(feats):
    assert prdc(feats, feats, chunk=256) == ONES
    # A set is unordered: shuffled, the fakes are the same set (pairs now sit elsewhere in
    # every matrix product; the decisions must not notice).
    perm = np.random.default_rng(1).permutation(len(feats))
    assert prdc(feats[perm], feats, chunk=100) == ONES
    assert prdc(feats, feats[perm], chunk=600) == ONES


def test_memorized_fakes_plus_outliers(feats):
    # Fakes: the reals (shuffled) plus 50 points far away. Exactly: precision and density =
    # 600/650 (each copy sits in its own ball and in k - 1 others; the k-th neighbour is on the
    # sphere), recall = coverage = 1.
    rng = np.random.default_rng(2)
    fake = np.concatenate([feats[rng.permutation(600)], feats[:50] + 100])
    got = prdc(fake, feats, chunk=128)
    assert got == {"precision": 600 / 650, "recall": 1.0, "density": 600 / 650, "coverage": 1.0}


def test_collapsed_generator():
    # Every fake is the same real point x_0: fake radii are 0 (k + 1 copies), so no real is in a
    # fake ball; the real balls that hold x_0 hold all 12 fakes.
    rng = np.random.default_rng(3)
    real = rng.normal(size=(40, 16))
    got = prdc(np.repeat(real[:1], 12, 0), real)
    r = np.sort(np.linalg.norm(real[:, None] - real[None], axis=2), axis=1)[:, 5]
    holds_x0 = int((np.linalg.norm(real - real[0], axis=1) < r).sum())
    assert holds_x0 >= 1
    assert got == {"precision": 1.0, "recall": 0.0, "density": pytest.approx(holds_x0 / 5, abs=1e-15),
                   "coverage": pytest.approx(holds_x0 / 40, abs=1e-15)}


# -- exact lattice ties -------------------------------------------------------------------------

# Reals: the 3 x 3 grid {0,1,2}^2. With k = 2 every real radius is exactly 1.
GRID = [(i, j) for i in range(3) for j in range(3)]
# Fakes: on a real, on another, on (3, 0) at distance exactly 1 from (2, 0) (on the sphere: out),
# half-way between (0,0) and (1,0), and two copies of (2, 2) (fake radius of each: sqrt 2).
FAKES = [(0, 0), (1, 1), (3, 0), (0.5, 0), (2, 2), (2, 2)]
# By hand, k = 2:
#   precision: all but (3, 0)                                                     = 5/6
#   density:   containments 1 + 1 + 0 + 2 + 1 + 1 = 6, over k M = 12               = 1/2
#   coverage:  balls of (0,0), (1,0), (1,1), (2,2) hold a fake; (2,0), (0,1), (0,2), (1,2),
#              (2,1) have theirs only on the sphere                                = 4/9
#   recall:    fake radii: (0,0) sqrt2, (1,1) sqrt2, (3,0) sqrt5, (0.5,0) sqrt1.25, (2,2) sqrt2;
#              every real is strictly inside one, except (0,2): at sqrt2 from (1,1), on its sphere = 8/9
BY_HAND = {"precision": 5 / 6, "recall": 8 / 9, "density": 1 / 2, "coverage": 4 / 9}


def embed(points, d=32, offset=1000.0):
    """2-D points in the first two of d coordinates, all shifted by a large offset: the matrix
    products cancel ~1e6 against distances ~1, and every value is still an exact binary fraction."""
    x = np.full((len(points), d), offset)
    x[:, :2] += np.asarray(points, dtype=np.float64)
    return x


def test_lattice_ties_strict_by_hand():
    assert prdc(embed(FAKES), embed(GRID), k=2) == BY_HAND
    assert prdc(embed(FAKES), embed(GRID), k=2, chunk=4) == BY_HAND


def test_lattice_ties_match_the_prdc_package():
    prdc_ref = pytest.importorskip("prdc")  # Naeem et al.'s package (the `test` extra)
    real, fake = embed(GRID, offset=0.0), embed(FAKES, offset=0.0)
    ref = prdc_ref.compute_prdc(real_features=real, fake_features=fake, nearest_k=2)
    assert {k: float(v) for k, v in ref.items()} == BY_HAND
    # And on a generic case without ties, the same numbers.
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(60, 8)), rng.normal(size=(50, 8)) * 1.3 + 0.2
    ref = prdc_ref.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    assert prdc(fake, real) == {k: pytest.approx(float(v), abs=1e-12) for k, v in ref.items()}


def test_pure_sqdist_is_a_function_of_the_pair():
    rng = np.random.default_rng(5)
    a, b = torch.from_numpy(rng.normal(size=(7, 37))), torch.from_numpy(rng.normal(size=(7, 37)))
    one = pure_sqdist(a, b)
    assert torch.equal(pure_sqdist(a[3:4], b[3:4])[0], one[3])   # alone or in a batch: same bits
    assert torch.equal(pure_sqdist(b, a), one)                    # symmetric
    np.testing.assert_allclose(one.numpy(), ((a - b) ** 2).sum(1).numpy(), rtol=1e-14)
