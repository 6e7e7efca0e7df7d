"""The 1-D density metrics (gan_bench/metrics/density1d.py) against closed forms and independent
computations on Gaussians; the 1-D data sets and their refusals of bad settings.

Tolerances for estimates from samples are about 4 standard deviations plus the bias that
scripts/density1d_error.py measures over 20 sample seeds (docs/metrics.md has its table; at 20,000
samples the spread is its 10,000 column's / sqrt(2)); every such test also checks that the value
a wrong formula gives (a swapped direction, the mirror-image D_NS) lies outside them.
"""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from gan_bench.errors import UserError
from gan_bench.metrics import density1d_keys
from gan_bench.metrics.density1d import (
    bandwidth,
    density_metrics,
    divergences,
    kde_bins,
    kde_divergences,
    log_mixture,
    quadrature,
    w1_to_mixture,
)

N = 20000
ONE = ([0.0], [1.0], [1.0])  # p = N(0, 1)
MIXTURE = ([-2.0, 2.0], [0.5, 0.5], [0.75, 0.25])  # conf/dataset/mixture1d.yaml


def kl_gauss(m1, s1, m2, s2):
    return math.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5


def quad(f, lo=-15.0, hi=15.0):
    return integrate.quad(f, lo, hi, limit=400, epsabs=1e-13, epsrel=1e-11)[0]


def exact_js_dns(p, q):
    """JS and D_NS = 2 KL(m || p) by quadrature on the exact densities (scipy frozen normals)."""
    m = lambda x: 0.5 * (p.pdf(x) + q.pdf(x))
    js = 0.5 * quad(lambda x: p.pdf(x) * math.log(p.pdf(x) / m(x))) + \
        0.5 * quad(lambda x: q.pdf(x) * math.log(q.pdf(x) / m(x)))
    return js, 2 * quad(lambda x: m(x) * math.log(m(x) / p.pdf(x)))


def exact_divergences(mp, sp, mq, sq):
    """divergences() fed the exact log q: p's quadrature for E_p, q's own for E_q (no sampling)."""
    nodes_p, wp = quadrature(np.array([mp]), np.array([sp]), np.array([1.0]), h=sp)
    nodes_q, wq = quadrature(np.array([mq]), np.array([sq]), np.array([1.0]), h=sq)
    lp = lambda x: log_mixture(x, np.array([mp]), np.array([sp]), np.array([1.0]))
    lq = lambda x: log_mixture(x, np.array([mq]), np.array([sq]), np.array([1.0]))
    return divergences(lp(nodes_p), lq(nodes_p), wp, lp(nodes_q), lq(nodes_q), wq)


# --- the formulas, with exact densities: agreement to quadrature precision -----------------------

@pytest.mark.parametrize("mq, sq", [(0.5, 1.2), (1.0, 2.0), (-0.3, 0.6)])
def test_formulas_match_closed_forms_and_quadrature(mq, sq):
    d = exact_divergences(0.0, 1.0, mq, sq)
    assert d["kl_data_model"] == pytest.approx(kl_gauss(0, 1, mq, sq), abs=1e-9)
    assert d["kl_model_data"] == pytest.approx(kl_gauss(mq, sq, 0, 1), abs=1e-9)
    js, d_ns = exact_js_dns(stats.norm(0, 1), stats.norm(mq, sq))
    assert d["js"] == pytest.approx(js, abs=1e-9) and d["d_ns"] == pytest.approx(d_ns, abs=1e-9)


def test_d_ns_is_the_f_divergence_of_losses_md():
    """D_NS = integral of q f_NS(p / q), f_NS(u) = (1 + u) log((1 + u) / (2u)) (docs/losses.md),
    = 2 KL(m || p); and not 2 KL(m || q), its mirror image."""
    p, q = stats.norm(0, 1), stats.norm(1.0, 2.0)
    f_ns = lambda u: (1 + u) * math.log((1 + u) / (2 * u))
    as_f = quad(lambda x: q.pdf(x) * f_ns(p.pdf(x) / q.pdf(x)), -12, 14)
    d = exact_divergences(0.0, 1.0, 1.0, 2.0)["d_ns"]
    assert d == pytest.approx(as_f, abs=1e-8)
    m = lambda x: 0.5 * (p.pdf(x) + q.pdf(x))
    mirror = 2 * quad(lambda x: m(x) * math.log(m(x) / q.pdf(x)), -12, 14)
    assert abs(d - mirror) > 0.1


def test_all_divergences_are_zero_for_q_equal_p():
    d = exact_divergences(0.3, 0.7, 0.3, 0.7)
    assert all(abs(v) < 1e-12 for v in d.values()), d


# --- the estimator on samples ---------------------------------------------------------------------

@pytest.mark.parametrize("mq, sq, tol_pq, tol_qp", [(0.5, 1.2, 0.02, 0.03), (1.0, 2.0, 0.035, 0.11)])
def test_kl_both_directions_from_samples(mq, sq, tol_pq, tol_qp):
    """At 20k samples (the script): (0.5, 1.2) std 0.004 / 0.006, bias 0.003; (1, 2) std
    0.007 / 0.022, bias 0.006 / 0.003. The closed form of the other direction lies outside."""
    r = density_metrics(np.random.default_rng(0).normal(mq, sq, N), *ONE)
    pq, qp = kl_gauss(0, 1, mq, sq), kl_gauss(mq, sq, 0, 1)
    assert abs(r["kl_data_model"] - pq) < tol_pq and abs(r["kl_model_data"] - qp) < tol_qp
    assert abs(r["kl_data_model"] - qp) > tol_pq and abs(r["kl_model_data"] - pq) > tol_qp


def test_js_and_d_ns_from_samples():
    """20k samples of q = N(0.5, 1.2): std 0.0011 (js) and 0.0039 (d_ns), bias < 0.002. The
    mirror image 2 KL(m || q) is 0.052 against D_NS = 0.098."""
    r = density_metrics(np.random.default_rng(1).normal(0.5, 1.2, N), *ONE)
    p, q = stats.norm(0, 1), stats.norm(0.5, 1.2)
    js, d_ns = exact_js_dns(p, q)
    assert abs(r["js"] - js) < 0.005 and abs(r["d_ns"] - d_ns) < 0.018
    m = lambda x: 0.5 * (p.pdf(x) + q.pdf(x))
    mirror = 2 * quad(lambda x: m(x) * math.log(m(x) / q.pdf(x)))  # 2 KL(m || q): the wrong reference
    assert abs(r["d_ns"] - mirror) > 0.018


def test_perfect_samples_read_near_zero():
    """The estimator's floor at 10k samples (the script): at most 0.0013 + 0.0003 for gauss1d."""
    x = np.random.default_rng(2).normal(0, 1, 10000)
    r = density_metrics(x, *ONE)
    assert all(-0.003 < r[k] < 0.005 for k in ("kl_data_model", "kl_model_data", "js", "d_ns")), r
    assert r["mode_mass_0"] == 1.0 and r["modes_dropped"] == 0


def test_kde_matches_a_direct_unbinned_kde():
    """Rounding the samples to h/5 steps and the trapezoid quadrature change nothing that matters:
    KL(p || q) and KL(q || p) of the plain KDE (every sample its own kernel, scipy.quad for E_p)
    within 5e-4 (at most 3e-4 over sample seeds 0-4), where the estimate spreads by ~0.01 at 2,000
    samples: the rounding's error is noise of its own, shrinking like 1/sqrt(N) too."""
    x = np.random.default_rng(3).normal(0.5, 1.2, 2000)
    h = bandwidth(x, 0.0)
    q = lambda t: stats.norm.pdf((t - x) / h).mean() / h
    pq = quad(lambda t: stats.norm.pdf(t) * (stats.norm.logpdf(t) - math.log(q(t))), -10, 10)
    qp = float(np.mean([math.log(q(t)) - stats.norm.logpdf(t) for t in x]))
    r = kde_divergences(x, *(np.array(v) for v in ONE))
    assert r["kl_data_model"] == pytest.approx(pq, abs=5e-4)
    assert r["kl_model_data"] == pytest.approx(qp, abs=5e-4)


def test_bandwidth_is_silverman_per_mode():
    x = np.random.default_rng(4).normal(0, 3.0, 4000)
    iqr = np.subtract(*np.percentile(x, [75, 25]))
    assert bandwidth(x, 0.0) == pytest.approx(0.9 * min(x.std(ddof=1), iqr / 1.34) * 4000 ** -0.2)
    assert bandwidth(np.zeros(100), 0.5) == 0.5  # collapsed: the floor
    # Each data mode's samples get their own: two modes of std 0.5 and 0.1, not one bandwidth
    # from the spread between them.
    y = np.r_[np.random.default_rng(5).normal(-2, 0.5, 3000), np.random.default_rng(6).normal(2, 0.1, 1000)]
    _, _, hs = kde_bins(y, np.array([-2.0, 2.0]), 1e-3)
    assert sorted(set(hs)) == [bandwidth(y[y > 0], 0.0), bandwidth(y[y < 0], 0.0)]
    assert max(hs) < 0.1


def test_atoms_get_the_floor_and_the_rest_its_own_bandwidth():
    """30% of the samples exactly at -2 (dead ReLUs' constant output) beside a spread: a floor-wide
    kernel holding all of them, and Silverman's for the others as if the atom were not there.
    Exact ties of a few samples (float32 outputs) are no atom."""
    rest = np.r_[np.random.default_rng(16).normal(-2, 0.4, 7000), [-1.25, -1.25, -1.25]]  # all nearest -2
    x = np.r_[np.full(3000, -2.0), rest]
    centres, counts, hs = kde_bins(x, np.array([-2.0, 2.0]), 1e-3)
    atom = centres == -2.0
    assert counts[atom].tolist() == [3000] and hs[atom].tolist() == [1e-3]
    assert set(hs[~atom]) == {bandwidth(rest, 1e-3)}


# --- W1 ------------------------------------------------------------------------------------------

def test_w1_equal_stds_is_the_mean_shift():
    """W1(N(0.7, 1), N(0, 1)) = 0.7; the empirical W1 of 20k samples spreads by ~0.01."""
    r = density_metrics(np.random.default_rng(5).normal(0.7, 1.0, N), *ONE)
    assert r["w1"] == pytest.approx(0.7, abs=0.03)


def test_w1_matches_scipy_on_a_large_sample_of_p():
    x = np.random.default_rng(6).normal(0.5, 1.2, 5000)
    k = np.random.default_rng(7).choice(2, 400000, p=MIXTURE[2])
    big = np.array(MIXTURE[0])[k] + 0.5 * np.random.default_rng(8).standard_normal(400000)
    ours = w1_to_mixture(x, *(np.array(v) for v in MIXTURE))
    assert ours == pytest.approx(stats.wasserstein_distance(x, big), abs=0.01)


@pytest.mark.parametrize("xs", [[0.3], [5.0], [-0.4, 0.9], [-2.5, -2.4, 1.0, 1.0, 3.5]])
def test_w1_is_exact_on_few_samples(xs):
    """integral |F_n - F_p| by scipy.quad, F_n's jumps and p's median as breakpoints."""
    mu, sd, w = (np.array(v) for v in MIXTURE)
    xs = np.array(xs)
    f_p = lambda t: float(stats.norm.cdf((t - mu) / sd) @ w)
    f_n = lambda t: np.searchsorted(np.sort(xs), t, side="right") / len(xs)
    cuts = sorted({-12.0, 12.0, *xs.tolist(), *mu.tolist()})
    ref = sum(integrate.quad(lambda t: abs(f_n(t) - f_p(t)), a, b, limit=200, epsabs=1e-13)[0]
              for a, b in zip(cuts[:-1], cuts[1:]))
    assert w1_to_mixture(xs, mu, sd, w) == pytest.approx(ref, abs=1e-9)
    if len(xs) == 1:  # one sample: E_p |X - x|
        z = (xs[0] - mu) / sd
        e = float(((xs[0] - mu) * (2 * stats.norm.cdf(z) - 1) + 2 * sd * stats.norm.pdf(z)) @ w)
        assert w1_to_mixture(xs, mu, sd, w) == pytest.approx(e, abs=1e-12)


# --- modes ---------------------------------------------------------------------------------------

def test_mode_mass_and_dropped_modes():
    x = np.concatenate([np.full(300, -2.1), np.full(100, 1.9), np.full(10, np.nan)])
    r = density_metrics(x, *MIXTURE)
    assert r["mode_mass_0"] == 300 / 410 and r["mode_mass_1"] == 100 / 410 and r["nonfinite"] == 10 / 410
    assert r["modes_dropped"] == 0
    # Dropped: mass below 0.1 of the true weight (0.025 for the 0.25 mode).
    assert density_metrics(np.r_[np.full(98, -2.0), np.full(2, 2.0)], *MIXTURE)["modes_dropped"] == 1
    assert density_metrics(np.r_[np.full(97, -2.0), np.full(3, 2.0)], *MIXTURE)["modes_dropped"] == 0
    assert set(r) == set(density1d_keys(2))


def test_mode_mass_of_a_sampled_mixture():
    k = np.random.default_rng(9).choice(2, N, p=MIXTURE[2])
    x = np.array(MIXTURE[0])[k] + 0.5 * np.random.default_rng(10).standard_normal(N)
    r = density_metrics(x, *MIXTURE)
    assert r["mode_mass_0"] == pytest.approx(0.75, abs=0.015)  # binomial std 0.003
    assert r["mode_mass_0"] + r["mode_mass_1"] == 1.0


# --- invariances ---------------------------------------------------------------------------------

def test_scale_shift_and_order_invariance():
    x = np.random.default_rng(11).normal(0.5, 1.2, 5000)
    base = density_metrics(x, *ONE)
    scaled = density_metrics(2.5 * x, [0.0], [2.5], [1.0])
    shifted = density_metrics(x + 3.7, [3.7], [1.0], [1.0])
    shuffled = density_metrics(np.random.default_rng(12).permutation(x), *ONE)
    for k in ("kl_data_model", "kl_model_data", "js", "d_ns"):
        assert scaled[k] == pytest.approx(base[k], abs=1e-12)
        assert shifted[k] == pytest.approx(base[k], abs=5e-4)  # the rounding grid stays: its noise, as above
    assert scaled["w1"] == pytest.approx(2.5 * base["w1"], rel=1e-12)
    assert shifted["w1"] == pytest.approx(base["w1"], abs=1e-9)
    assert shuffled == base


def test_component_order_does_not_matter():
    x = np.random.default_rng(13).normal(-1.5, 1.0, 5000)
    a = density_metrics(x, *MIXTURE)
    b = density_metrics(x, *(v[::-1] for v in MIXTURE))
    for k in ("kl_data_model", "kl_model_data", "js", "d_ns", "w1"):
        assert b[k] == pytest.approx(a[k], abs=1e-12)
    assert (b["mode_mass_0"], b["mode_mass_1"]) == (a["mode_mass_1"], a["mode_mass_0"])


# --- what training produces: collapse, far samples, NaN ------------------------------------------

@pytest.mark.parametrize("x", [np.zeros(5000), np.full(5000, -2.0), np.full(5000, 1e6), np.full(5000, 3e38),
                               np.r_[np.zeros(4990), np.full(10, 1e30)], np.linspace(-1e3, 1e3, 2000)])
def test_degenerate_samples_give_finite_numbers(x):
    r = density_metrics(x, *MIXTURE)
    assert all(math.isfinite(v) for v in r.values()), r
    assert 0 <= r["js"] <= math.log(2) + 1e-12


def test_collapse_reads_as_a_large_divergence():
    r = density_metrics(np.full(5000, -2.0), *MIXTURE)  # all on the big mode's mean
    assert r["kl_data_model"] > 1e3 and r["modes_dropped"] == 1


def test_non_finite_samples_are_dropped_and_counted():
    x = np.random.default_rng(14).normal(0, 1, 4000)
    clean = density_metrics(x, *ONE)
    dirty = density_metrics(np.r_[x, [np.nan, np.inf, -np.inf, np.nan]], *ONE)
    assert dirty["nonfinite"] == 4 / 4004 and dirty["mode_mass_0"] == 4000 / 4004
    assert {k: dirty[k] for k in ("kl_data_model", "js", "w1")} == {k: clean[k] for k in ("kl_data_model", "js", "w1")}
    none = density_metrics(np.full(10, np.nan), *MIXTURE)
    assert math.isnan(none["kl_data_model"]) and math.isnan(none["w1"])
    assert none["nonfinite"] == 1.0 and none["modes_dropped"] == 2


def test_shapes():
    x = np.random.default_rng(15).normal(0, 1, 1000)
    assert density_metrics(x[:, None], *ONE) == density_metrics(x, *ONE)
    with pytest.raises(ValueError):
        density_metrics(np.zeros((10, 2)), *ONE)


# --- the data sets -------------------------------------------------------------------------------

def test_data_sets_build_with_their_density(cfg_factory):
    from gan_bench.training.setup import build

    for name, mix in (("gauss1d", ONE), ("mixture1d", MIXTURE)):
        cfg = cfg_factory(f"dataset={name}")
        data = build(cfg.dataset)
        assert data.kind == "toy" and data.train.shape == (2000, 1) and data.test.shape == (500, 1)
        assert data.train.dtype.is_floating_point and data.train.dtype == data.test.dtype
        assert data.info["mixture1d"] == dict(zip(("means", "stds", "weights"), mix))
        assert (cfg.model.latent_dim, cfg.model.discriminator.in_dim, list(cfg.model.generator.out_dim)) == (1, 1, [1])
        again = build(cfg.dataset)
        assert (again.train == data.train).all()  # the dataset seed fixes the data
    # The weights are respected: 75% of the default mixture near -2.
    assert (data.train < 0).float().mean().item() == pytest.approx(0.75, abs=0.03)


@pytest.mark.parametrize("overrides, words", [
    (["dataset=gauss1d", "dataset.std=-1"], ["dataset.std=-1.0", "positive"]),
    (["dataset=gauss1d", "dataset.std=0"], ["dataset.std=0.0", "positive"]),
    (["dataset=gauss1d", "dataset.mean=abc"], ["dataset.mean='abc'", "finite number"]),
    (["dataset=mixture1d", "dataset.weights=[0.5,0.6]"], ["sums to 1.1", "must sum to 1"]),
    (["dataset=mixture1d", "dataset.weights=[1.2,-0.2]"], ["dataset.weights=[1.2, -0.2]", "positive"]),
    (["dataset=mixture1d", "dataset.stds=[0.5]"], ["lengths 2, 1 and 2", "one std and one weight per mean"]),
    (["dataset=mixture1d", "dataset.means=[]", "dataset.stds=[]", "dataset.weights=[]"], ["empty"]),
    (["dataset=mixture1d", "dataset.stds=[0.5,-1]"], ["dataset.stds=[0.5, -1.0]", "positive"]),
    (["dataset=gauss1d", "dataset.shape=[2]"], ["dataset.shape", "[1]"]),
])
def test_bad_settings_are_one_line(cfg_factory, overrides, words):
    from gan_bench.training.setup import build

    with pytest.raises(UserError) as e:
        build(cfg_factory(*overrides).dataset)
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
