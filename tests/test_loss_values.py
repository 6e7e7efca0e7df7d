"""Each family against values worked out independently with `math`, in probability space, in the
papers' own notation (D = sigmoid(t), powers and logs of probabilities), not the library's log-space forms."""

import math
import warnings

import pytest
import torch

from gan_bench.losses import ConvergenceRegionWarning, make_loss

REAL = [0.3, -1.2, 2.0]
FAKE = [-0.5, 1.1, 0.4]
FAKE2 = [-0.5, 1.1]  # a different batch size where the family allows it


def sig(t):
    return 1 / (1 + math.exp(-t))


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs)


def check(loss, real, fake, d_expected, g_expected):
    r, f = torch.tensor(real, dtype=torch.float64), torch.tensor(fake, dtype=torch.float64)
    assert float(loss.d_loss(r, f)) == pytest.approx(d_expected, rel=1e-6, abs=1e-6)
    assert float(loss.g_loss(f, r if loss.needs_real_for_g else None)) == pytest.approx(g_expected, rel=1e-6, abs=1e-6)


def build(name, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceRegionWarning)
        return make_loss(name, **params)


# ---------------------------------------------------------------- bce

def test_bce():
    d = mean(-math.log(sig(t)) for t in REAL) + mean(-math.log(1 - sig(t)) for t in FAKE2)
    check(make_loss("bce", generator="ns"), REAL, FAKE2, d, mean(-math.log(sig(t)) for t in FAKE2))
    check(make_loss("bce", generator="saturating"), REAL, FAKE2, d, mean(math.log(1 - sig(t)) for t in FAKE2))


# ---------------------------------------------------------------- alpha

def alpha_loss(y, p, a):
    """Sypherd et al.'s alpha-loss of the probability p assigned to label y: a/(a-1) (1 - p^((a-1)/a))."""
    q = p if y == 1 else 1 - p
    if a == math.inf:
        return 1 - q
    return a / (a - 1) * (1 - q ** ((a - 1) / a))


@pytest.mark.parametrize("ad,ag", [(0.3, 3.0), (2.0, 0.6), (math.inf, 0.5), (0.5, math.inf)])
def test_alpha(ad, ag):
    d = mean(alpha_loss(1, sig(t), ad) for t in REAL) + mean(alpha_loss(0, sig(t), ad) for t in FAKE2)
    check(build("alpha", alpha_d=ad, alpha_g=ag, generator="ns"), REAL, FAKE2, d,
          mean(alpha_loss(1, sig(t), ag) for t in FAKE2))
    check(build("alpha", alpha_d=ad, alpha_g=ag, generator="saturating"), REAL, FAKE2, d,
          -mean(alpha_loss(0, sig(t), ag) for t in FAKE2))


# ---------------------------------------------------------------- renyi, renyigan

@pytest.mark.parametrize("a", [0.3, 0.5, 3.0])
def test_renyi(a):
    b = (a - 1) / a
    v = 1 / b * math.log(0.5 * mean(sig(t) ** b for t in REAL) + 0.5 * mean((1 - sig(t)) ** b for t in FAKE2))
    check(make_loss("renyi", alpha=a), REAL, FAKE2, -v, v)
    ns = -1 / b * math.log(mean(sig(t) ** b for t in FAKE2))
    check(make_loss("renyi", alpha=a, generator="ns"), REAL, FAKE2, -v, ns)


@pytest.mark.parametrize("a", [0.5, 3.0])
def test_renyigan(a):
    d = mean(-math.log(sig(t)) for t in REAL) + mean(-math.log(1 - sig(t)) for t in FAKE2)
    g = 1 / (a - 1) * math.log(mean((1 - sig(t)) ** (a - 1) for t in FAKE2))
    check(make_loss("renyigan", alpha=a), REAL, FAKE2, d, g)
    check(make_loss("renyigan", alpha=a, variant="l1"), REAL, FAKE2, d, abs(g + math.log(2)))
    check(make_loss("renyigan", alpha=1), REAL, FAKE2, d, mean(math.log(1 - sig(t)) for t in FAKE2))


# ---------------------------------------------------------------- lsgan, hinge, wgan

def test_lsgan_hinge_wgan():
    check(make_loss("lsgan"), REAL, FAKE2,
          0.5 * mean((t - 1) ** 2 for t in REAL) + 0.5 * mean(t ** 2 for t in FAKE2),
          0.5 * mean((t - 1) ** 2 for t in FAKE2))
    check(make_loss("hinge"), REAL, FAKE2,
          mean(max(0, 1 - t) for t in REAL) + mean(max(0, 1 + t) for t in FAKE2), -mean(FAKE2))
    check(make_loss("wgan"), REAL, FAKE2, mean(FAKE2) - mean(REAL), -mean(FAKE2))


# ---------------------------------------------------------------- fgan (Nowozin et al. Table 2 and 6)

FGAN_TABLE = {  # divergence: (activation g(v), conjugate f*(s)), as printed in the paper
    "kl": (lambda v: v, lambda s: math.exp(s - 1)),
    "rkl": (lambda v: -math.exp(-v), lambda s: -1 - math.log(-s)),
    "pearson": (lambda v: v, lambda s: s * s / 4 + s),
    "hellinger": (lambda v: 1 - math.exp(-v), lambda s: s / (1 - s)),
    "js": (lambda v: math.log(2) - math.log(1 + math.exp(-v)), lambda s: -math.log(2 - math.exp(s))),
    "gan": (lambda v: -math.log(1 + math.exp(-v)), lambda s: -math.log(1 - math.exp(s))),
}


@pytest.mark.parametrize("div", list(FGAN_TABLE))
def test_fgan(div):
    g, fstar = FGAN_TABLE[div]
    d = -mean(g(t) for t in REAL) + mean(fstar(g(t)) for t in FAKE2)
    check(make_loss("fgan", divergence=div, generator="saturating"), REAL, FAKE2, d,
          -mean(fstar(g(t)) for t in FAKE2))
    check(make_loss("fgan", divergence=div, generator="ns"), REAL, FAKE2, d, -mean(g(t) for t in FAKE2))


# ---------------------------------------------------------------- beyond

DIST = {
    "l2": lambda a, b: (a - b) ** 2,
    "l1": lambda a, b: abs(a - b),
    "huber": lambda a, b: math.sqrt((a - b) ** 2 + 1) - 1,
    "logl2": lambda a, b: (math.log(a) - math.log(b)) ** 2,
    "logl1": lambda a, b: abs(math.log(a) - math.log(b)),
}


@pytest.mark.parametrize("distance", list(DIST))
@pytest.mark.parametrize("form", ["E_d", "d_E"])
@pytest.mark.parametrize("target", ["real", "label"])
def test_beyond_with_logistic_d(distance, form, target):
    yhat = 0.9
    c_f = [sig(t) for t in FAKE]
    c_r = [sig(t) for t in REAL] if target == "real" else [yhat] * len(FAKE)
    dist = DIST[distance]
    if form == "E_d":
        g = mean(dist(a, b) for a, b in zip(c_r, c_f))
    elif distance.startswith("log"):  # the authors' loss_G 15, 16, 19, 20: the mean of log C
        g = dist(math.exp(mean(math.log(c) for c in c_r)), math.exp(mean(math.log(c) for c in c_f)))
    else:
        g = dist(mean(c_r), mean(c_f))
    bce_d = mean(-math.log(sig(t)) for t in REAL) + mean(-math.log(1 - sig(t)) for t in FAKE)
    check(make_loss("beyond", distance=distance, form=form, target=target, yhat=yhat), REAL, FAKE, bce_d, g)


def test_beyond_with_raw_output_d():
    # A non-logistic D (wgan): C is the raw output.
    loss = make_loss("beyond", discriminator="wgan", distance="huber", form="d_E", target="real")
    check(loss, REAL, FAKE, mean(FAKE) - mean(REAL), math.sqrt((mean(REAL) - mean(FAKE)) ** 2 + 1) - 1)
    loss = make_loss("beyond", discriminator="lsgan", distance="l1", form="E_d", target="label", yhat=2.0)
    check(loss, REAL, FAKE, 0.5 * mean((t - 1) ** 2 for t in REAL) + 0.5 * mean(t ** 2 for t in FAKE),
          mean(abs(2.0 - t) for t in FAKE))


def test_beyond_with_alpha_d():
    loss = build("beyond", discriminator="alpha", discriminator_params={"alpha_d": 0.4}, distance="logl2")
    d = mean(alpha_loss(1, sig(t), 0.4) for t in REAL) + mean(alpha_loss(0, sig(t), 0.4) for t in FAKE)
    g = mean((math.log(sig(r)) - math.log(sig(f))) ** 2 for r, f in zip(REAL, FAKE))
    check(loss, REAL, FAKE, d, g)


# ---------------------------------------------------------------- relativistic

F1 = {
    "sgan": lambda y: -math.log(sig(y)),
    "lsgan": lambda y: (y - 1) ** 2,
    "hinge": lambda y: max(0, 1 - y),
}


@pytest.mark.parametrize("variant", list(F1))
def test_rsgan(variant):
    f1 = F1[variant]
    check(make_loss("rsgan", variant=variant), REAL, FAKE,
          mean(f1(r - f) for r, f in zip(REAL, FAKE)), mean(f1(f - r) for r, f in zip(REAL, FAKE)))


def test_ragan_papers_forms():
    mr, mf = mean(REAL), mean(FAKE2)
    # RaSGAN: D -E log(sigmoid(C_r - E C_f)) - E log(1 - sigmoid(C_f - E C_r)); G swaps real and fake.
    d = mean(-math.log(sig(r - mf)) for r in REAL) + mean(-math.log(1 - sig(f - mr)) for f in FAKE2)
    g = mean(-math.log(sig(f - mr)) for f in FAKE2) + mean(-math.log(1 - sig(r - mf)) for r in REAL)
    check(make_loss("ragan", variant="sgan"), REAL, FAKE2, d, g)
    # RaLSGAN: D E(C_r - E C_f - 1)^2 + E(C_f - E C_r + 1)^2
    d = mean((r - mf - 1) ** 2 for r in REAL) + mean((f - mr + 1) ** 2 for f in FAKE2)
    g = mean((f - mr - 1) ** 2 for f in FAKE2) + mean((r - mf + 1) ** 2 for r in REAL)
    check(make_loss("ragan", variant="lsgan"), REAL, FAKE2, d, g)
    # RaHingeGAN: D E max(0, 1 - (C_r - E C_f)) + E max(0, 1 + (C_f - E C_r))
    d = mean(max(0, 1 - (r - mf)) for r in REAL) + mean(max(0, 1 + (f - mr)) for f in FAKE2)
    g = mean(max(0, 1 - (f - mr)) for f in FAKE2) + mean(max(0, 1 + (r - mf)) for r in REAL)
    check(make_loss("ragan", variant="hinge"), REAL, FAKE2, d, g)


@pytest.mark.parametrize("alpha", [3.0, 10.0, float("inf")])
def test_alpha_generator_gradient_keeps_float32_precision_where_fakes_fool_d(alpha):
    """l_alpha(0, t) = -expm1(-beta softplus(t)) / beta: torch's expm1 backward computed exp(x) as
    result + 1, which is 0 in float32 once exp(x) < 6e-8, so the saturating generator's gradient
    at t = 20 came out 100% off (losses.base.expm1 takes exp(x) itself)."""
    loss = make_loss("alpha", alpha_d=1.0, alpha_g=alpha, generator="saturating")
    t = torch.tensor([[5.0, 10.0, 15.0, 20.0]])
    grads = []
    for dtype in (torch.float32, torch.float64):
        x = t.to(dtype).clone().requires_grad_(True)
        loss.g_loss(x).sum().backward()
        grads.append(x.grad.double())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=0)
