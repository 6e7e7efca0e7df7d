"""`beyond` as its authors compute it (AlexiaJM/GANsBeyondDivergenceMin, loss_G 1-20), and the
float32 precision of its probability forms at large logits.

Values and gradients are worked out by hand with `math` from the authors' formulas, in probability
space (C = D(x) = sigmoid(t), log C = log of that number), not from the library's log-space forms.
"""

import math

import pytest
import torch

from gan_bench.errors import UserError
from gan_bench.losses import make_loss

REAL = [0.3, -1.2, 2.0, 4.5]
FAKE = [-0.5, 1.1, 0.4, -3.0]
YHAT = 0.9


def sig(t):
    return 1 / (1 + math.exp(-t))


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs)


def g_and_grad(loss, real, fake, dtype=torch.float64):
    """G loss and its gradient in the fake logits (and in the real ones, where the loss reads them)."""
    r = torch.tensor(real, dtype=dtype, requires_grad=True)
    f = torch.tensor(fake, dtype=dtype, requires_grad=True)
    g = loss.g_loss(f, r if loss.needs_real_for_g else None)
    gf, gr = torch.autograd.grad(g, (f, r), allow_unused=True)
    return g.detach(), gf, gr


# ---------------------------------------------------------------- the d(E) log forms (loss_G 15, 16, 19, 20)

def authors_d_e(distance, target):
    """loss_G 15/16 (logL2) and 19/20 (logL1): d(mean log C_r, mean log C_f), the label target
    putting log yhat in place of mean log C_r. Returns (value, dG/dt_f, dG/dt_r) by hand:
    d log C / dt = 1 - C, so d(mean log C)/dt_i = (1 - C_i)/N."""
    m_f = mean(math.log(sig(t)) for t in FAKE)
    m_r = mean(math.log(sig(t)) for t in REAL) if target == "real" else math.log(YHAT)
    x = m_r - m_f
    value, slope = (x * x, 2 * x) if distance == "logl2" else (abs(x), math.copysign(1.0, x))
    d_f = [-slope * (1 - sig(t)) / len(FAKE) for t in FAKE]
    d_r = [slope * (1 - sig(t)) / len(REAL) for t in REAL] if target == "real" else None
    return value, d_f, d_r


@pytest.mark.parametrize("distance", ["logl2", "logl1"])
@pytest.mark.parametrize("target", ["real", "label"])
def test_log_d_e_is_the_distance_of_mean_logs(distance, target):
    loss = make_loss("beyond", distance=distance, form="d_E", target=target, yhat=YHAT)
    g, gf, gr = g_and_grad(loss, REAL, FAKE)
    value, d_f, d_r = authors_d_e(distance, target)
    assert float(g) == pytest.approx(value, rel=1e-12)
    assert gf.tolist() == pytest.approx(d_f, rel=1e-12)
    if target == "real":
        assert gr.tolist() == pytest.approx(d_r, rel=1e-12)


def test_the_log_of_mean_form_differs_and_is_the_named_extension():
    # The form gan-bench used to compute for loss_G 15: (log mean C_r - log mean C_f)^2.
    # On the kind of batch (some fakes rejected hard) the two are far apart.
    real, fake = [3.0, 2.5, 4.0, 1.0], [-6.0, -0.5, -4.0, 0.5]
    authors = (mean(math.log(sig(t)) for t in real) - mean(math.log(sig(t)) for t in fake)) ** 2
    log_of_mean = (math.log(mean(sig(t) for t in real)) - math.log(mean(sig(t) for t in fake))) ** 2
    assert authors > 2 * log_of_mean  # not a rounding matter
    for form, expected in (("d_E", authors), ("d_E_logmean", log_of_mean)):
        loss = make_loss("beyond", distance="logl2", form=form)
        g, _, _ = g_and_grad(loss, real, fake)
        assert float(g) == pytest.approx(expected, rel=1e-12), form
    lab = make_loss("beyond", distance="logl1", form="d_E_logmean", target="label", yhat=YHAT)
    g, _, _ = g_and_grad(lab, REAL, FAKE)
    assert float(g) == pytest.approx(abs(math.log(YHAT) - math.log(mean(sig(t) for t in FAKE))), rel=1e-12)


def test_d_e_logmean_needs_a_log_distance():
    with pytest.raises(UserError, match="loss.form=d_E_logmean .* needs a log distance"):
        make_loss("beyond", distance="l2", form="d_E_logmean")
    with pytest.raises(UserError, match="loss.form must be one of E_d, d_E, d_E_logmean"):
        make_loss("beyond", form="dE")


# ---------------------------------------------------------------- all twenty, by the authors' numbering

DIST = {
    "l2": lambda x: x * x,
    "l1": abs,
    "huber": lambda x: math.sqrt(x * x + 1) - 1,
    "logl2": lambda x: x * x,
    "logl1": abs,
}
# loss_G k = 1 + 4 * (distance index) + 2 * (form is d_E) + (target is label)
NUMBERED = [(1 + 4 * i + 2 * j + k, d, f, t) for i, d in enumerate(DIST) for j, f in enumerate(("E_d", "d_E"))
            for k, t in enumerate(("real", "label"))]


@pytest.mark.parametrize("k,distance,form,target", NUMBERED, ids=[f"loss_G{n[0]}" for n in NUMBERED])
def test_every_authors_loss(k, distance, form, target):
    log = distance.startswith("log")
    view = (lambda t: math.log(sig(t))) if log else sig
    tgt = math.log(YHAT) if log else YHAT
    c_f = [view(t) for t in FAKE]
    c_r = [view(t) for t in REAL] if target == "real" else [tgt] * len(FAKE)
    dist = DIST[distance]
    expected = mean(dist(a - b) for a, b in zip(c_r, c_f)) if form == "E_d" else dist(mean(c_r) - mean(c_f))
    loss = make_loss("beyond", distance=distance, form=form, target=target, yhat=YHAT)
    assert float(g_and_grad(loss, REAL, FAKE)[0]) == pytest.approx(expected, rel=1e-12, abs=1e-15), k


# ---------------------------------------------------------------- float32 at large logits

# Confident reals against fakes that D mostly accepts, one rejected hard: every C(1 - C) factor is
# tiny, and no real/fake pair (nor the two means) agrees to float32 precision, so the exact
# gradient is a well-conditioned function of the logits that float32 can match to 1e-5.
LARGE_R = [20.0, 15.0, 18.5, 16.0, 19.0, 15.5]
LARGE_F = [15.0, 20.0, 17.0, -20.0, 18.0, 16.5]
ALL_FORMS = [(d, f, t) for d in DIST for f in ("E_d", "d_E") for t in ("real", "label")]
ALL_FORMS += [(d, "d_E_logmean", t) for d in ("logl2", "logl1") for t in ("real", "label")]


def naive_float64(distance, form, target, real, fake, yhat):
    """The authors' formulas in float64 with torch.sigmoid / torch.log: exact enough here
    (1 - sigmoid(20) keeps 8 digits in float64), an independent reference."""
    log = distance.startswith("log")
    view = (lambda t: torch.log(torch.sigmoid(t))) if log else torch.sigmoid
    c_f = view(fake)
    c_r = view(real) if target == "real" else torch.full_like(c_f, math.log(yhat) if log else yhat)
    d = {"l2": torch.square, "l1": torch.abs, "huber": lambda x: torch.sqrt(x * x + 1) - 1,
         "logl2": torch.square, "logl1": torch.abs}[distance]
    if form == "E_d":
        return d(c_r - c_f).mean()
    if form == "d_E_logmean":
        return d(torch.log(c_r.exp().mean()) - torch.log(c_f.exp().mean()))
    return d(c_r.mean() - c_f.mean())


@pytest.mark.parametrize("distance,form,target", ALL_FORMS, ids=str)
@pytest.mark.parametrize("yhat", [1.0, 0.9])
def test_float32_gradients_at_large_logits(distance, form, target, yhat):
    # torch.sigmoid's float32 gradient is 17% off at t = 15 and 0 from t ~ 17 (docs/losses.md).
    loss = make_loss("beyond", distance=distance, form=form, target=target, yhat=yhat)
    g32, gf32, gr32 = g_and_grad(loss, LARGE_R, LARGE_F, torch.float32)
    r = torch.tensor(LARGE_R, dtype=torch.float64, requires_grad=True)
    f = torch.tensor(LARGE_F, dtype=torch.float64, requires_grad=True)
    ref = naive_float64(distance, form, target, r, f, yhat)
    rf, rr = torch.autograd.grad(ref, (f, r), allow_unused=True)
    assert gf32.dtype == torch.float32 and (gf32 != 0).all()
    torch.testing.assert_close(gf32.double(), rf, rtol=1e-5, atol=0)
    if target == "real":
        torch.testing.assert_close(gr32.double(), rr, rtol=1e-5, atol=0)
    torch.testing.assert_close(g32.double(), ref.detach(), rtol=1e-5, atol=0)


def test_float32_huber_value_of_a_tiny_difference():
    # sqrt(x^2 + 1) - 1 rounds to 0 in float32 for |x| < 3e-4; x^2 / (sqrt(x^2 + 1) + 1) does not.
    loss = make_loss("beyond", distance="huber", target="label", yhat=1.0)
    x = 1 - sig(12.0)
    got = float(loss.g_loss(torch.tensor([12.0])))
    assert got == pytest.approx(math.sqrt(x * x + 1) - 1 if x > 1e-4 else x * x / 2, rel=1e-5) and got > 0


def test_raw_output_discriminator_is_untouched():
    # A non-logistic D: C is the raw output, differences taken directly.
    loss = make_loss("beyond", discriminator="lsgan", distance="l2", form="d_E", target="real")
    g, gf, _ = g_and_grad(loss, REAL, FAKE)
    assert float(g) == pytest.approx((mean(REAL) - mean(FAKE)) ** 2, rel=1e-12)
    assert gf.tolist() == pytest.approx([-2 * (mean(REAL) - mean(FAKE)) / len(FAKE)] * len(FAKE), rel=1e-12)


@pytest.mark.parametrize("distance,form", [("l2", "E_d"), ("l2", "d_E"), ("logl1", "E_d"), ("logl1", "d_E"),
                                           ("logl1", "d_E_logmean")])
def test_per_replica_rows(distance, form):
    # [K, B] logits: one loss per replica, each equal to that replica's own batch.
    loss = make_loss("beyond", distance=distance, form=form)
    g = torch.Generator().manual_seed(3)
    real, fake = 6 * torch.randn(2, 4, 5, generator=g, dtype=torch.float64)
    out = loss.g_loss(fake, real)
    assert out.shape == (4,)
    for k in range(4):
        torch.testing.assert_close(out[k], loss.g_loss(fake[k], real[k]), rtol=1e-14, atol=0)
