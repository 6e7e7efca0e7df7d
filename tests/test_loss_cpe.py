"""`cpe`: one class probability estimation loss per player (Welfert, Kurri, Otstot, Sankar; JSAIT'24).

Hand values are worked out with `math` in probability space (D = sigmoid(t), the losses as the
papers write them); the divergences at the optimal D are checked on two discrete distributions
against their textbook closed forms (Jensen-Shannon, triangular discrimination, squared
Hellinger, Arimoto), and the symmetric ones against u f(1/u) = f(u).
"""

import math
import warnings

import pytest
import torch
from hydra.utils import instantiate
from test_loss_optimal_d import log_ratio, one_thread, train_d  # noqa: F401 (one_thread: autouse fixture)

from gan_bench.errors import UserError
from gan_bench.losses import ConvergenceRegionWarning, make_loss
from gan_bench.losses.cpe import CPE_LOSSES, cpe_loss
from gan_bench.losses.diagnostics import f_alpha_ns, f_alpha_saturating
from gan_bench.train import train

INF = float("inf")
REAL = [0.3, -1.2, 2.0]
FAKE = [-0.5, 1.1, 0.4, -2.5]
AD, AG = 0.4, 3.0


def sig(t):
    return 1 / (1 + math.exp(-t))


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs)


def build(name="cpe", **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceRegionWarning)
        return make_loss(name, **params)


# The losses of the probability p a classifier gives to the true label, as the papers write them.
PAPER = {
    "log": lambda p, a: -math.log(p),
    "alpha": lambda p, a: 1 - p if a == INF else a / (a - 1) * (1 - p ** ((a - 1) / a)),
    "squared": lambda p, a: (1 - p) ** 2,
    "exponential": lambda p, a: math.sqrt((1 - p) / p),
}


def paper_loss(name, y, d, a):
    return PAPER[name](d if y == 1 else 1 - d, a)


# ---------------------------------------------------------------- values

@pytest.mark.parametrize("loss_d", CPE_LOSSES)
@pytest.mark.parametrize("loss_g", CPE_LOSSES)
def test_values_and_gradients_by_hand(loss_d, loss_g):
    r = torch.tensor(REAL, dtype=torch.float64)
    f = torch.tensor(FAKE, dtype=torch.float64, requires_grad=True)
    d = mean(paper_loss(loss_d, 1, sig(t), AD) for t in REAL) + mean(paper_loss(loss_d, 0, sig(t), AD) for t in FAKE)
    for gen, g in (("ns", mean(paper_loss(loss_g, 1, sig(t), AG) for t in FAKE)),
                   ("saturating", -mean(paper_loss(loss_g, 0, sig(t), AG) for t in FAKE))):
        loss = build(loss_d=loss_d, loss_g=loss_g, alpha_d=AD, alpha_g=AG, generator=gen)
        assert float(loss.d_loss(r, f.detach())) == pytest.approx(d, rel=1e-12)
        value = loss.g_loss(f)
        assert float(value.detach()) == pytest.approx(g, rel=1e-12)
        # Gradient against a central difference of the hand formula.
        h, sign = 1e-6, 1 if gen == "ns" else -1
        y = 1 if gen == "ns" else 0
        num = [sign * (paper_loss(loss_g, y, sig(t + h), AG) - paper_loss(loss_g, y, sig(t - h), AG))
               / (2 * h) / len(FAKE) for t in FAKE]
        assert torch.autograd.grad(value, f)[0].tolist() == pytest.approx(num, rel=1e-6)


def test_exponential_and_squared_in_logit_form():
    # sqrt((1 - D)/D) = exp(-t/2) and (1 - D)^2 = exp(-2 softplus(t)): no overflow of 1/D near D = 0.
    t = torch.tensor([-30.0, 0.0, 30.0], dtype=torch.float64)
    torch.testing.assert_close(cpe_loss("exponential", t, 1), torch.exp(-t / 2), rtol=1e-15, atol=0)
    torch.testing.assert_close(cpe_loss("exponential", t, 0), torch.exp(t / 2), rtol=1e-15, atol=0)
    torch.testing.assert_close(cpe_loss("squared", t, 1), torch.sigmoid(-t) ** 2, rtol=1e-12, atol=0)


@pytest.mark.parametrize("ad,ag", [(0.3, 3.0), (2.0, 0.6), (INF, 0.5), (0.5, INF), (1.0, 1.0), (1.0, 4.0)])
@pytest.mark.parametrize("gen", ["saturating", "ns"])
def test_alpha_instances_equal_loss_alpha(ad, ag, gen):
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(2, 7, generator=g, dtype=torch.float64) * 4
    ref, got = build("alpha", alpha_d=ad, alpha_g=ag, generator=gen), \
        build(loss_d="alpha", loss_g="alpha", alpha_d=ad, alpha_g=ag, generator=gen)
    assert got.logit_scale == ref.logit_scale
    for a, b in zip(_values_and_grads(got, real, fake), _values_and_grads(ref, real, fake)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_log_is_alpha_one_and_bce():
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(2, 6, generator=g, dtype=torch.float64) * 4
    for gen in ("saturating", "ns"):
        bce = _values_and_grads(make_loss("bce", generator=gen), real, fake)
        for got in (build(generator=gen), build(loss_d="alpha", loss_g="log", alpha_d=1.0, generator=gen)):
            for a, b in zip(_values_and_grads(got, real, fake), bce):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
    a = _values_and_grads(build(loss_d="alpha", loss_g="log", alpha_d=0.3), real, fake)
    b = _values_and_grads(build("alpha", alpha_d=0.3, alpha_g=1.0), real, fake)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def _values_and_grads(loss, real, fake):
    r, f = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    d = loss.d_loss(r, f)
    gr, gf = torch.autograd.grad(d, (r, f))
    f2 = fake.clone().requires_grad_(True)
    g = loss.g_loss(f2)
    (gg,) = torch.autograd.grad(g, (f2,))
    return d.detach(), g.detach(), gr, gf, gg


def test_schedules_and_warnings_follow_loss_alpha():
    spec = {"kind": "linear", "start": 0.5, "player": "d"}
    a = build("alpha", alpha_d=1.0, alpha_g=2.0, schedule=spec)
    c = build(loss_d="alpha", loss_g="alpha", alpha_d=1.0, alpha_g=2.0, schedule=spec)
    for s in (0, 30, 100):
        c_s, a_s = c.at_step(s, 100), a.at_step(s, 100)
        assert (c_s.alpha_d, c_s.alpha_g) == (a_s.alpha_d, a_s.alpha_g)
    with pytest.warns(ConvergenceRegionWarning, match=r"\(2, 2\)"):
        make_loss("cpe", loss_d="alpha", loss_g="alpha", alpha_d=2, alpha_g=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceRegionWarning)  # the regions are for alpha-losses only
        make_loss("cpe", loss_d="squared", loss_g="exponential", generator="saturating")


# ---------------------------------------------------------------- the optimal discriminator

@pytest.mark.parametrize("loss_d,alpha_d", [("log", None), ("alpha", 0.5), ("alpha", 2.0), ("squared", None),
                                            ("exponential", None)], ids=str)
def test_trained_discriminator_reaches_the_optimum(loss_d, alpha_d):
    # t* = alpha_d log(p/q) for alpha-loss, log(p/q) for the proper losses (D* = p/(p+q)).
    loss = build(loss_d=loss_d, alpha_d=alpha_d or 1.0)
    scale = alpha_d if loss_d == "alpha" else 1.0
    assert loss.logit_scale == scale
    t = train_d(loss)
    x = torch.linspace(-1.5, 2.0, 15, dtype=torch.float64)
    err = (t(x) - scale * log_ratio(x)).abs().max()
    assert float(err) < 0.03 * max(1.0, scale), (loss, float(err))


@pytest.mark.parametrize("loss_d", CPE_LOSSES)
def test_optimum_is_stationary_pointwise(loss_d):
    # The D loss integrand at x is q (u l(1, t) + l(0, t)); its derivative vanishes at t* = s log u.
    loss = build(loss_d=loss_d, alpha_d=AG)
    for u in (0.05, 0.4, 1.0, 3.0, 20.0):
        t = torch.tensor([loss.logit_scale * math.log(u)], dtype=torch.float64)
        real, fake = t.clone().requires_grad_(True), t.clone().requires_grad_(True)
        gr, gf = torch.autograd.grad(loss.d_loss(real, fake), (real, fake))
        assert float(u * gr + gf) == pytest.approx(0.0, abs=1e-10 * (abs(float(u * gr)) + abs(float(gf))) + 1e-14)


# ---------------------------------------------------------------- divergences at the optimum

P = [0.5, 0.3, 0.15, 0.05]
Q = [0.1, 0.3, 0.35, 0.25]
COUNTS_P, COUNTS_Q = [10, 6, 3, 1], [2, 6, 7, 5]   # P and Q as batches of 20 samples


def optimal_batches(scale, dtype=torch.float64):
    """D* logits t* = scale log(p/q) on a real batch distributed as P and a fake one as Q."""
    t = [scale * math.log(p / q) for p, q in zip(P, Q)]
    real = torch.tensor([ti for ti, n in zip(t, COUNTS_P) for _ in range(n)], dtype=dtype)
    fake = torch.tensor([ti for ti, n in zip(t, COUNTS_Q) for _ in range(n)], dtype=dtype)
    return real, fake


def js(p, q):
    m = [(a + b) / 2 for a, b in zip(p, q)]
    return 0.5 * sum(a * math.log(a / c) for a, c in zip(p, m)) + 0.5 * sum(b * math.log(b / c) for b, c in zip(q, m))


def arimoto(p, q, a):
    f = lambda u: a / (a - 1) * ((1 + u ** a) ** (1 / a) - 2 ** (1 / a - 1) * (1 + u))
    return sum(qi * f(pi / qi) for pi, qi in zip(P, Q))


# V(D*) = divergence + constant, as docs/losses.md states them.
NAMED = {
    "log": lambda a: 2 * js(P, Q) - math.log(4),                                            # Jensen-Shannon
    "squared": lambda a: 0.25 * sum((p - q) ** 2 / (p + q) for p, q in zip(P, Q)) - 0.5,     # triangular discr.
    "exponential": lambda a: sum((math.sqrt(p) - math.sqrt(q)) ** 2 for p, q in zip(P, Q)) - 2,  # squared Hellinger
    "alpha": lambda a: arimoto(P, Q, a) + a / (a - 1) * (2 ** (1 / a) - 2),                 # Arimoto
}


@pytest.mark.parametrize("loss_d,alpha", [("log", 1.0), ("squared", 1.0), ("exponential", 1.0),
                                          ("alpha", 0.5), ("alpha", 2.0), ("alpha", 5.0)], ids=str)
def test_value_at_the_optimum_is_the_named_divergence(loss_d, alpha):
    loss = build(loss_d=loss_d, loss_g=loss_d, alpha_d=alpha, alpha_g=alpha, generator="saturating")
    real, fake = optimal_batches(loss.logit_scale)
    v = -float(loss.d_loss(real, fake))
    assert v == pytest.approx(NAMED[loss_d](alpha), rel=1e-12)
    # ... and is what f_at_optimum says: E_q f(u) + value_at_half.
    log_u = torch.tensor([math.log(p / q) for p, q in zip(P, Q)], dtype=torch.float64)
    e_q_f = float((torch.tensor(Q, dtype=torch.float64) * loss.f_at_optimum(log_u)).sum())
    assert v == pytest.approx(e_q_f + loss.value_at_half(), rel=1e-12)
    # D* is the best D: any other logits do worse.
    for shift in (-0.3, 0.3):
        assert -float(loss.d_loss(real + shift, fake + shift)) < v


CLOSED_F = {  # f(u) with f(1) = f'(1) = 0
    "log": lambda u: u * math.log(2 * u / (1 + u)) + math.log(2 / (1 + u)),
    "squared": lambda u: (u - 1) ** 2 / (4 * (u + 1)),
    "exponential": lambda u: (math.sqrt(u) - 1) ** 2,
    "alpha": lambda u, a=AG: a / (a - 1) * ((1 + u ** a) ** (1 / a) - 2 ** (1 / a - 1) * (1 + u)),
}
U = [0.01, 0.2, 0.5, 1.0, 1.7, 4.0, 30.0]


@pytest.mark.parametrize("name", CPE_LOSSES)
def test_f_at_optimum_closed_forms(name):
    loss = build(loss_d=name, loss_g=name, alpha_d=AG, alpha_g=AG, generator="saturating")
    got = loss.f_at_optimum(torch.tensor([math.log(u) for u in U], dtype=torch.float64)).tolist()
    assert got == pytest.approx([CLOSED_F[name](u) for u in U], rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("loss_d", CPE_LOSSES)
@pytest.mark.parametrize("loss_g", CPE_LOSSES)
def test_saturating_pairs_induce_symmetric_divergences(loss_d, loss_g):
    # Symmetric losses and t*(1/u) = -t*(u): u f(1/u) = f(u), i.e. D_f(P||Q) = D_f(Q||P).
    loss = build(loss_d=loss_d, loss_g=loss_g, alpha_d=AD, alpha_g=AG, generator="saturating")
    log_u = torch.tensor([math.log(u) for u in U], dtype=torch.float64)
    f, f_inv = loss.f_at_optimum(log_u), loss.f_at_optimum(-log_u)
    torch.testing.assert_close(log_u.exp() * f_inv, f, rtol=1e-10, atol=1e-14)
    assert abs(float(loss.f_at_optimum(torch.zeros(1, dtype=torch.float64)))) < 1e-15
    # The generator's objective at D* of l_D, from the losses themselves: V_{l_G}(G, D*) = E_q f + const.
    real, fake = optimal_batches(loss.logit_scale)
    v_g = -float(build(loss_d=loss_g, alpha_d=AG).d_loss(real, fake))  # V_{l_G} at the logits of D*_{l_D}
    log_pq = torch.tensor([math.log(p / q) for p, q in zip(P, Q)], dtype=torch.float64)
    e_q_f = float((torch.tensor(Q, dtype=torch.float64) * loss.f_at_optimum(log_pq)).sum())
    assert v_g == pytest.approx(e_q_f + loss.value_at_half(), rel=1e-12)


@pytest.mark.parametrize("ad,ag", [(0.4, 3.0), (2.0, 1.5), (0.7, 0.6)])
def test_alpha_pairs_match_the_alpha_gan_theory(ad, ag):
    log_u = torch.tensor([math.log(u) for u in U], dtype=torch.float64)
    sat = build(loss_d="alpha", loss_g="alpha", alpha_d=ad, alpha_g=ag, generator="saturating").f_at_optimum(log_u)
    # f_alpha_saturating is normalized otherwise: the two differ by an affine a + b u (same E_q up to a constant).
    diff = sat - f_alpha_saturating(log_u, ad, ag)
    u = log_u.exp()
    b = (diff[-1] - diff[0]) / (u[-1] - u[0])
    torch.testing.assert_close(diff, diff[0] + b * (u - u[0]), rtol=0, atol=1e-10)
    ns = build(loss_d="alpha", loss_g="alpha", alpha_d=ad, alpha_g=ag, generator="ns").f_at_optimum(log_u)
    torch.testing.assert_close(ns, f_alpha_ns(log_u, ad, ag), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["log", "squared", "exponential"])
def test_the_correspondence_runs_back_from_f_to_the_loss(name):
    # The converse: from f, the conditional Bayes risk L(eta) = L(1/2) - (1 - eta) f(eta/(1 - eta)),
    # and Savage's representation of the proper loss with that risk, l(1, eta) = L + (1 - eta) L'.
    loss = build(loss_d=name, loss_g=name, generator="saturating")
    l_half = loss.value_at_half() / -2
    eta = torch.tensor([0.05, 0.3, 0.5, 0.8, 0.97], dtype=torch.float64, requires_grad=True)
    risk = l_half - (1 - eta) * loss.f_at_optimum(torch.log(eta / (1 - eta)))
    (dr,) = torch.autograd.grad(risk.sum(), eta)
    recovered = (risk + (1 - eta) * dr).detach()
    torch.testing.assert_close(recovered, cpe_loss(name, torch.logit(eta.detach()), 1), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- numerics, shapes, errors, configs

PAIRS = [(d, g, gen) for d in CPE_LOSSES for g in CPE_LOSSES for gen in ("saturating", "ns")]


@pytest.mark.parametrize("loss_d,loss_g,gen", PAIRS, ids=str)
def test_finite_float32_and_per_replica(loss_d, loss_g, gen):
    loss = build(loss_d=loss_d, loss_g=loss_g, alpha_d=0.2, alpha_g=INF, generator=gen)
    grid = torch.linspace(-15, 15, 31)
    for real, fake in ((grid, grid.flip(0)), (torch.full((31,), -15.0), torch.full((31,), 15.0))):
        vals = _values_and_grads(loss, real, fake)
        assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in vals), loss
    real, fake = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    d, g = loss.d_loss(real, fake), loss.g_loss(fake)
    assert d.shape == g.shape == (3,)
    for k in range(3):
        torch.testing.assert_close(d[k], loss.d_loss(real[k], fake[k]), rtol=1e-14, atol=0)


def test_d_loss_at_one_half():
    # 2 l(1, 0): 2 log 2, 2 a/(a-1) (1 - 2^(1/a - 1)), 1/2, 2 (docs/losses.md).
    expected = {"log": 2 * math.log(2), "alpha": 2 * AG / (AG - 1) * (1 - 2 ** (1 / AG - 1)),
                "squared": 0.5, "exponential": 2.0}
    z = torch.zeros(3, dtype=torch.float64)
    for name, value in expected.items():
        assert float(build(loss_d=name, alpha_d=AG).d_loss(z, z)) == pytest.approx(value, rel=1e-14)


def test_errors_and_repr():
    with pytest.raises(UserError, match="loss.loss_d must be one of log, alpha, squared, exponential"):
        make_loss("cpe", loss_d="hinge")
    with pytest.raises(UserError, match="neither loss_d nor loss_g is alpha"):
        make_loss("cpe", schedule={"kind": "linear", "start": 0.5})
    with pytest.raises(ValueError, match="finite alpha_d"):
        build(loss_d="alpha", alpha_d=INF).f_at_optimum(torch.zeros(1))
    assert repr(make_loss("cpe", loss_d="squared")) == "cpe(loss_d='squared', loss_g='log', generator='ns')"
    assert build(loss_d="alpha", alpha_d=INF).logit_scale is None


def test_config_composes(cfg_factory):
    loss = instantiate(cfg_factory("loss=cpe", "loss.loss_d=alpha", "alpha_d=0.3", "loss.loss_g=exponential").loss)
    got = (loss.loss_d, loss.alpha_d, loss.loss_g, loss.alpha_g, loss.generator)
    assert got == ("alpha", 0.3, "exponential", None, "ns")
    assert loss.logit_scale == 0.3


@pytest.mark.parametrize("overrides", [
    ("loss.loss_d=squared", "loss.loss_g=exponential"),
    ("loss.loss_d=exponential", "loss.loss_g=alpha", "alpha_g=0.6", "loss.generator=saturating"),
    ("loss.loss_d=alpha", "alpha_d=0.5", "loss.loss_g=squared"),
], ids=["squared-exponential", "exponential-alpha-sat", "alpha-squared"])
def test_cpe_trains_two_steps(cfg_factory, overrides):
    result = train(cfg_factory("loss=cpe", *overrides, "train.steps=2", "train.log_every=1"))
    assert result["status"] == "completed" and result["step"] == 2, result
