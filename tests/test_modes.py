"""Toy mode metrics on hand-built sample sets, against values worked out by hand."""

import math

import pytest
import torch

from gan_bench.data.toy import grid, ring
from gan_bench.metrics.modes import mode_metrics

STD = 0.01


@pytest.fixture(scope="module")
def means():
    return ring(n_train=10, n_test=10).info["means"]


def uniform_divs(counts):
    m = len(counts)
    p = [(c + 1) / (sum(counts) + m) for c in counts]
    u = 1 / m
    kl = sum(pi * math.log(pi / u) for pi in p)
    rkl = sum(u * math.log(u / pi) for pi in p)
    js = sum(0.5 * pi * math.log(pi / (0.5 * (pi + u))) + 0.5 * u * math.log(u / (0.5 * (pi + u))) for pi in p)
    tv = 0.5 * sum(abs(pi - u) for pi in p)
    return kl, rkl, js, tv


def check_divs(m, counts):
    kl, rkl, js, tv = uniform_divs(counts)
    assert m["kl"] == pytest.approx(kl, abs=1e-12)
    assert m["rkl"] == pytest.approx(rkl, abs=1e-12)
    assert m["js"] == pytest.approx(js, abs=1e-12)
    assert m["tv"] == pytest.approx(tv, abs=1e-12)


def test_all_modes_exactly_on_means(means):
    samples = means.repeat(10, 1)  # 10 samples on every mean
    m = mode_metrics(samples, means, STD)
    assert (m["modes"], m["success"], m["failure"], m["hq"]) == (8, 1.0, 0.0, 1.0)
    check_divs(m, [10] * 8)
    assert m["kl"] == pytest.approx(0.0, abs=1e-12) and m["tv"] == pytest.approx(0.0, abs=1e-12)


def test_one_mode(means):
    samples = means[3] + torch.tensor([[0.02, 0.0], [0.0, -0.029], [0.0, 0.0]])  # all within 3 std
    m = mode_metrics(samples, means, STD)
    assert (m["modes"], m["success"], m["failure"], m["hq"]) == (1, 0.0, 0.0, 1.0)
    check_divs(m, [0, 0, 0, 3, 0, 0, 0, 0])


def test_none_covered_off_mode_samples(means):
    # Just outside 3 std of mode 0 (nearest assignment is still mode 0), and the origin (nearest: ties
    # broken towards the lowest index).
    samples = torch.tensor([[1.031, 0.0], [1.0, 0.04], [0.0, 0.0]])
    m = mode_metrics(samples, means, STD)
    assert (m["modes"], m["success"], m["failure"], m["hq"]) == (0, 0.0, 1.0, 0.0)
    assert sum(1 for _ in samples) == 3


def test_mixed_quality_and_boundary(means):
    on = means[[0, 1, 2]]
    off = means[[5]] * 1.5            # far from every mean: low quality, assigned to mode 5
    edge = means[[6]] + torch.tensor([[0.0299, 0.0]])  # inside 3 std
    samples = torch.cat([on, off, edge])
    m = mode_metrics(samples, means, STD)
    assert m["modes"] == 4 and m["hq"] == pytest.approx(4 / 5)
    check_divs(m, [1, 1, 1, 0, 0, 1, 1, 0])


def test_nonfinite_samples_count_as_low_quality(means):
    samples = torch.cat([means, torch.full((8, 2), float("nan"))])
    m = mode_metrics(samples, means, STD)
    assert m["modes"] == 8 and m["hq"] == pytest.approx(0.5)


def test_toy_datasets_shapes_and_modes():
    r = ring(n_train=5000, n_test=100, seed=1)
    assert r.train.shape == (5000, 2) and r.test.shape == (100, 2) and r.kind == "toy"
    assert torch.allclose(r.info["means"].norm(dim=1), torch.ones(8))
    assert mode_metrics(r.train, r.info["means"], r.info["std"])["success"] == 1.0
    assert torch.equal(ring(n_train=50, seed=1).train, ring(n_train=50, seed=1).train)  # fixed by dataset seed
    g = grid(n_train=20000, n_test=10)
    assert g.info["means"].shape == (25, 2) and float(g.info["means"].max()) == 4.0
    m = mode_metrics(g.train, g.info["means"], g.info["std"])
    # In 2-D, P(|N(0, I)| <= 3) = 1 - exp(-9/2) = 0.9889: real data is not all "high quality".
    assert m["modes"] == 25 and m["hq"] == pytest.approx(1 - math.exp(-4.5), abs=0.005)
