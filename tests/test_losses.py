"""The loss library: registry, the identities of docs/losses.md, shapes, finiteness, schedules.

Hand-computed values per family: test_loss_values.py. Optimal discriminators: test_loss_optimal_d.py.
"""

import math
import warnings

import pytest
import torch

from gan_bench.errors import UserError
from gan_bench.losses import LOSSES, ConvergenceRegionWarning, Loss, make_loss

INF = float("inf")
ALPHAS = [0.2, 0.5, 1.0, 2.0, 10.0, INF]
FINITE_ALPHAS = [a for a in ALPHAS if math.isfinite(a)]


def configs():
    """(name, params) for every family and every discrete option, alphas across [0.2, inf]."""
    out = [("bce", {"generator": g}) for g in ("saturating", "ns")]
    out += [("alpha", {"alpha_d": ad, "alpha_g": ag, "generator": g})
            for ad in ALPHAS for ag in ALPHAS for g in ("saturating", "ns")]
    out += [("renyi", {"alpha": a, "generator": g}) for a in FINITE_ALPHAS for g in ("saturating", "ns")]
    out += [("renyigan", {"alpha": a, "variant": v}) for a in FINITE_ALPHAS for v in ("plain", "l1")]
    out += [("lsgan", {}), ("hinge", {}), ("wgan", {})]
    out += [("fgan", {"divergence": d, "generator": g})
            for d in ("kl", "rkl", "pearson", "hellinger", "js", "gan") for g in ("saturating", "ns")]
    out += [("beyond", {"distance": d, "form": f, "target": t})
            for d in ("l2", "l1", "huber", "logl2", "logl1") for f in ("E_d", "d_E") for t in ("real", "label")]
    out += [("beyond", {"discriminator": "alpha", "discriminator_params": {"alpha_d": 0.2}, "distance": "logl2"}),
            ("beyond", {"discriminator": "wgan", "distance": "huber", "form": "d_E"})]
    out += [(n, {"variant": v}) for n in ("rsgan", "ragan") for v in ("sgan", "lsgan", "hinge")]
    return out


def build(name, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceRegionWarning)
        return make_loss(name, **params)


def losses_and_grads(loss, real, fake):
    real, fake = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    d = loss.d_loss(real, fake)
    gd = torch.autograd.grad(d.sum(), (real, fake))
    real_g = real.detach().clone().requires_grad_(True)
    g = loss.g_loss(fake, real_g if loss.needs_real_for_g else None)
    gg = torch.autograd.grad(g.sum(), (fake,))
    return d.detach(), g.detach(), gd, gg


# ---------------------------------------------------------------- registry and errors

def test_registry_names():
    assert LOSSES == ("bce", "alpha", "renyi", "renyigan", "lsgan", "hinge", "wgan", "fgan", "beyond",
                      "rsgan", "ragan", "cpe", "lkgan", "lalpha", "custom")
    for name in (n for n in LOSSES if n != "custom"):  # custom needs a builder: test_loss_custom
        loss = make_loss(name)
        assert isinstance(loss, Loss) and repr(loss).startswith(f"{name}(")


def test_unknown_name_lists_valid_ones():
    with pytest.raises(UserError, match="unknown loss 'nope'.*bce, alpha, renyi"):
        make_loss("nope")


@pytest.mark.parametrize("key,bad", [("alpha_d", "abc"), ("alpha_d", 0), ("alpha_g", -1.0),
                                     ("alpha_g", float("nan")), ("alpha_d", None), ("alpha_d", True)])
def test_bad_alpha_is_one_line_user_error(key, bad):
    with pytest.raises(UserError) as e:
        make_loss("alpha", **{key: bad})
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{key} must be a positive number or inf, got {bad!r}")
    assert f"pass e.g. {key}=0.5" in msg


@pytest.mark.parametrize("spelling", ["inf", "Infinity", "+inf", INF, "1e400"])
def test_alpha_accepts_inf_spellings(spelling):
    loss = build("alpha", alpha_d=spelling, alpha_g=spelling)
    assert loss.alpha_d == INF and loss.alpha_g == INF and loss.logit_scale is None


def test_renyi_needs_finite_alpha():
    for name in ("renyi", "renyigan"):
        with pytest.raises(UserError, match="alpha must be a finite (positive|non-negative) number"):
            make_loss(name, alpha="inf")


def test_bad_options():
    with pytest.raises(UserError, match="loss=bce has no parameter alpha: its parameters are generator"):
        make_loss("bce", alpha=0.5)
    with pytest.raises(UserError, match="loss.generator must be one of saturating, ns"):
        make_loss("alpha", generator="minimax")
    with pytest.raises(UserError, match="loss.divergence must be one of kl, rkl"):
        make_loss("fgan", divergence="tv")
    with pytest.raises(UserError, match="needs a logistic discriminator"):
        make_loss("beyond", discriminator="wgan", distance="logl1")
    with pytest.raises(UserError, match="unknown loss 'nope'"):
        make_loss("beyond", discriminator="nope")
    with pytest.raises(UserError, match="loss.variant must be one of plain, l1"):
        make_loss("renyigan", variant="l2")


@pytest.mark.parametrize("ad,ag,gen,warns", [
    (0.3, 1.0, "saturating", False), (0.3, 0.2, "saturating", True),   # aG > aD/(aD+1) = 0.23
    (3.0, 2.0, "saturating", False), (3.0, 1.0, "saturating", True), (3.0, 4.0, "saturating", True),
    (0.5, 2.0, "ns", False), (2.0, 2.0, "ns", True), (INF, INF, "ns", True), (1.0, 1.0, "ns", False),
])
def test_convergence_region_warns_not_refuses(ad, ag, gen, warns):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        loss = make_loss("alpha", alpha_d=ad, alpha_g=ag, generator=gen)
    hits = [x for x in w if issubclass(x.category, ConvergenceRegionWarning)]
    assert bool(hits) == warns and loss.alpha_d == ad
    if warns:
        assert f"({ad:g}, {ag:g})" in str(hits[0].message) and gen in str(hits[0].message)


def test_needs_real_for_g_flags():
    assert not make_loss("bce").needs_real_for_g and not make_loss("alpha").needs_real_for_g
    assert make_loss("renyi").needs_real_for_g and not make_loss("renyi", generator="ns").needs_real_for_g
    assert make_loss("beyond").needs_real_for_g and not make_loss("beyond", target="label").needs_real_for_g
    assert make_loss("rsgan").needs_real_for_g and make_loss("ragan").needs_real_for_g
    with pytest.raises(ValueError, match="needs real_logits"):
        make_loss("ragan").g_loss(torch.zeros(3))


def test_logit_scales():
    assert make_loss("bce").logit_scale == 1 and make_loss("renyigan", alpha=3).logit_scale == 1
    assert make_loss("alpha", alpha_d=0.3).logit_scale == 0.3 and make_loss("renyi", alpha=2).logit_scale == 2
    assert make_loss("fgan", divergence="hellinger").logit_scale == 0.5
    for name in ("lsgan", "hinge", "wgan", "rsgan", "ragan"):
        assert make_loss(name).logit_scale is None


# ------------------------------------------------------------ identities of docs/losses.md

def _logits(dtype=torch.float64, lo=-5.0, hi=5.0):
    g = torch.Generator().manual_seed(0)
    real = lo + (hi - lo) * torch.rand(7, generator=g, dtype=dtype)
    fake = lo + (hi - lo) * torch.rand(5, generator=g, dtype=dtype)
    return real, fake


def _close(a, b, rtol, atol=0.0):
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=rtol, atol=atol)


@pytest.mark.parametrize("gen", ["saturating", "ns"])
def test_alpha_one_is_bce_values_and_grads(gen):
    real, fake = _logits()
    ref = losses_and_grads(make_loss("bce", generator=gen), real, fake)
    got = losses_and_grads(make_loss("alpha", alpha_d=1, alpha_g=1, generator=gen), real, fake)
    _close(got[:2], ref[:2], rtol=0, atol=0)
    _close(got[2] + got[3], ref[2] + ref[3], rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("delta", [1e-4, -1e-4])
@pytest.mark.parametrize("gen", ["saturating", "ns"])
def test_alpha_continuous_at_one(dtype, delta, gen):
    real, fake = _logits(dtype)
    ref = losses_and_grads(make_loss("bce", generator=gen), real, fake)
    got = losses_and_grads(build("alpha", alpha_d=1 + delta, alpha_g=1 + delta, generator=gen), real, fake)
    _close(got[:2] + got[2] + got[3], ref[:2] + ref[2] + ref[3], rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("gen", ["saturating", "ns"])
def test_alpha_inf_closed_form(gen):
    # alpha = inf (beta = 1): l(1, t) = 1 - D, l(0, t) = D.
    real, fake = _logits()
    d = lambda r, f: (1 - torch.sigmoid(r)).mean() + torch.sigmoid(f).mean()
    g = {"ns": lambda f: (1 - torch.sigmoid(f)).mean(), "saturating": lambda f: -torch.sigmoid(f).mean()}[gen]
    _check_closed_form(build("alpha", alpha_d=INF, alpha_g=INF, generator=gen), d, g, real, fake)


@pytest.mark.parametrize("gen", ["saturating", "ns"])
def test_alpha_half_closed_form(gen):
    # alpha = 1/2 (beta = -1): l(1, t) = 1/D - 1 = exp(-t), l(0, t) = exp(t).
    real, fake = _logits()
    d = lambda r, f: torch.exp(-r).mean() + torch.exp(f).mean()
    g = {"ns": lambda f: torch.exp(-f).mean(), "saturating": lambda f: -torch.exp(f).mean()}[gen]
    _check_closed_form(build("alpha", alpha_d=0.5, alpha_g=0.5, generator=gen), d, g, real, fake)


def _check_closed_form(loss, d, g, real, fake):
    got = losses_and_grads(loss, real, fake)
    r, f = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    dv = d(r, f)
    gd = torch.autograd.grad(dv, (r, f))
    f2 = fake.clone().requires_grad_(True)
    gv = g(f2)
    gg = torch.autograd.grad(gv, (f2,))
    _close((got[0], got[1]) + got[2] + got[3], (dv.detach(), gv.detach()) + gd + gg, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.2, 0.5, 1.0, 2.0, 10.0, INF])
def test_alpha_value_at_half(alpha):
    # V at D = 1/2 is alpha/(alpha-1) (2^(1/alpha) - 2); the D loss there is its negative.
    value = {1.0: -2 * math.log(2), INF: -1.0}.get(alpha)
    if value is None:
        value = alpha / (alpha - 1) * (2 ** (1 / alpha) - 2)
    d = build("alpha", alpha_d=alpha, alpha_g=1).d_loss(torch.zeros(4, dtype=torch.float64),
                                                         torch.zeros(3, dtype=torch.float64))
    assert float(d) == pytest.approx(-value, rel=1e-12)


@pytest.mark.parametrize("alpha", [0.2, 0.5, 1.0, 2.0, 10.0])
def test_renyi_value_is_minus_log2_at_half(alpha):
    loss = make_loss("renyi", alpha=alpha)
    for dtype in (torch.float32, torch.float64):
        real, fake = torch.zeros(6, dtype=dtype), torch.zeros(4, dtype=dtype)
        assert float(loss.d_loss(real, fake)) == pytest.approx(math.log(2), rel=1e-6)
        assert float(loss.g_loss(fake, real)) == pytest.approx(-math.log(2), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("delta", [1e-4, -1e-4])
def test_renyi_continuous_at_one(dtype, delta):
    for gen in ("saturating", "ns"):
        real, fake = _logits(dtype)
        ref = losses_and_grads(make_loss("renyi", alpha=1.0, generator=gen), real, fake)
        got = losses_and_grads(make_loss("renyi", alpha=1 + delta, generator=gen), real, fake)
        _close(got[:2] + got[2] + got[3], ref[:2] + ref[2] + ref[3], rtol=2e-3, atol=1e-6)
    real, fake = _logits(dtype)
    ref = losses_and_grads(make_loss("renyigan", alpha=1.0), real, fake)
    got = losses_and_grads(make_loss("renyigan", alpha=1 + delta), real, fake)
    _close(got[:2] + got[2] + got[3], ref[:2] + ref[2] + ref[3], rtol=2e-3, atol=1e-6)


def test_renyi_alpha_one_branch():
    # alpha = 1: V = 1/2 (mean log D_r + mean log(1 - D_f)).
    real, fake = _logits()
    v = 0.5 * (torch.nn.functional.logsigmoid(real).mean() + torch.nn.functional.logsigmoid(-fake).mean())
    torch.testing.assert_close(make_loss("renyi", alpha=1).d_loss(real, fake), -v, rtol=1e-14, atol=0)


@pytest.mark.parametrize("alpha", [1 + 1e-4, 1 - 3e-3, 0.7, 1.5])
def test_renyi_float32_matches_float64(alpha):
    # Near alpha = 1 a plain logsumexp divided by beta loses float32 precision; the library must not.
    real, fake = _logits(torch.float64, -15, 15)
    for name in ("renyi", "renyigan"):
        loss = make_loss(name, alpha=alpha)
        r64, f64 = loss.d_loss(real, fake), loss.g_loss(fake, real)
        r32, f32 = loss.d_loss(real.float(), fake.float()), loss.g_loss(fake.float(), real.float())
        assert float(r32) == pytest.approx(float(r64), rel=1e-5)
        assert float(f32) == pytest.approx(float(f64), rel=1e-5)


@pytest.mark.parametrize("name,params", configs(), ids=lambda x: str(x))
def test_finite_values_and_grads_float32(name, params):
    # docs/losses.md: finite values and gradients for float32 logits in [-15, 15], alpha in [0.2, inf].
    loss = build(name, **params)
    grid = torch.linspace(-15, 15, 31)
    for real, fake in ((grid, grid.flip(0)), (grid, grid), (torch.full((31,), 15.0), torch.full((31,), -15.0)),
                       (torch.full((31,), -15.0), torch.full((31,), 15.0))):
        d, g, gd, gg = losses_and_grads(loss, real, fake)
        for x in (d, g) + gd + gg:
            assert x.dtype == torch.float32 and torch.isfinite(x).all(), (loss, real[0], fake[0])


@pytest.mark.parametrize("name,params", configs(), ids=lambda x: str(x))
def test_ensemble_shape_is_per_replica(name, params):
    loss = build(name, **params)
    g = torch.Generator().manual_seed(1)
    real = torch.randn(4, 6, generator=g, dtype=torch.float64)
    fake = torch.randn(4, 6, generator=g, dtype=torch.float64)
    d, gl = loss.d_loss(real, fake), loss.g_loss(fake, real)
    assert d.shape == (4,) and gl.shape == (4,)
    for k in range(4):
        torch.testing.assert_close(d[k], loss.d_loss(real[k], fake[k]), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(gl[k], loss.g_loss(fake[k], real[k]), rtol=1e-12, atol=1e-12)


def _stationarity_cases():
    out = [("bce", {}), ("renyigan", {"alpha": 3.0})]
    out += [("alpha", {"alpha_d": a}) for a in (0.2, 0.5, 2.0, 10.0)]
    out += [("renyi", {"alpha": a}) for a in (0.2, 0.5, 2.0, 10.0)]
    out += [("fgan", {"divergence": d}) for d in ("rkl", "hellinger", "js", "gan")]
    out += [("beyond", {"discriminator": "alpha", "discriminator_params": {"alpha_d": 3.0}})]
    return out


@pytest.mark.parametrize("name,params", _stationarity_cases(), ids=lambda x: str(x))
def test_logit_scale_is_the_pointwise_optimum(name, params):
    # The D loss integrand at x is q (u l_r(t) + l_f(t)); its derivative vanishes at t* = logit_scale log u.
    loss = build(name, **params)
    for u in (0.05, 0.4, 1.0, 3.0, 20.0):
        t = torch.tensor([loss.logit_scale * math.log(u)], dtype=torch.float64)
        real, fake = t.clone().requires_grad_(True), t.clone().requires_grad_(True)
        gr, gf = torch.autograd.grad(loss.d_loss(real, fake), (real, fake))
        assert float(u * gr + gf) == pytest.approx(0.0, abs=1e-10 * (abs(float(u * gr)) + abs(float(gf))) + 1e-14)


def test_fgan_kl_and_pearson_optimum():
    # No logit_scale: the optimal outputs are v* = f'(u) = 1 + log u (KL) and 2(u - 1) (Pearson).
    for div, vstar in (("kl", lambda u: 1 + math.log(u)), ("pearson", lambda u: 2 * (u - 1))):
        loss = make_loss("fgan", divergence=div)
        for u in (0.2, 1.0, 4.0):
            t = torch.tensor([vstar(u)], dtype=torch.float64)
            real, fake = t.clone().requires_grad_(True), t.clone().requires_grad_(True)
            gr, gf = torch.autograd.grad(loss.d_loss(real, fake), (real, fake))
            assert float(u * gr + gf) == pytest.approx(0.0, abs=1e-12)


def test_fgan_gan_is_bce():
    real, fake = _logits()
    for gen in ("saturating", "ns"):
        a = losses_and_grads(make_loss("fgan", divergence="gan", generator=gen), real, fake)
        b = losses_and_grads(make_loss("bce", generator=gen), real, fake)
        _close(a[:2] + a[2] + a[3], b[:2] + b[2] + b[3], rtol=1e-14, atol=1e-14)


def test_alpha_overflow_for_small_alpha_is_the_math():
    # alpha < 1: l(1, t) ~ exp(|beta| |t|); huge logits overflow float32 to inf (a divergence), never NaN.
    d = make_loss("alpha", alpha_d=0.2, alpha_g=1).d_loss(torch.tensor([-100.0]), torch.tensor([0.0]))
    assert torch.isinf(d).all()


# ---------------------------------------------------------------- schedules

def test_no_schedule_at_step_is_self():
    loss = make_loss("alpha", alpha_d=0.5, alpha_g=0.5)
    assert loss.at_step(10, 100) is loss
    assert make_loss("renyi", alpha=0.5).at_step(3, 10).alpha == 0.5


def test_linear_schedule_both_players_to_configured_alpha():
    loss = make_loss("alpha", alpha_d=1.0, alpha_g=2.0, schedule={"kind": "linear", "start": 0.5})
    assert (loss.at_step(0, 100).alpha_d, loss.at_step(0, 100).alpha_g) == (0.5, 0.5)
    assert (loss.at_step(50, 100).alpha_d, loss.at_step(50, 100).alpha_g) == (0.75, 1.25)
    assert (loss.at_step(100, 100).alpha_d, loss.at_step(100, 100).alpha_g) == (1.0, 2.0)
    assert loss.at_step(50, 100).at_step(100, 100).alpha_d == 1.0  # a scheduled copy keeps its schedule


def test_linear_schedule_until_and_player():
    loss = make_loss("alpha", alpha_d=0.3, alpha_g=1.0,
                     schedule={"kind": "linear", "start": 1.0, "end": 0.5, "until": 0.5, "player": "d"})
    assert [loss.at_step(s, 100).alpha_d for s in (0, 25, 50, 75, 100)] == [1.0, 0.75, 0.5, 0.5, 0.5]
    assert {loss.at_step(s, 100).alpha_g for s in (0, 50, 100)} == {1.0}


def test_step_schedule_and_renyi():
    loss = make_loss("renyi", alpha=1.0, schedule={"kind": "step", "start": 0.5, "at": 0.25})
    assert [loss.at_step(s, 100).alpha for s in (0, 24, 25, 50, 100)] == [0.5, 0.5, 1.0, 1.0, 1.0]
    g = build("alpha", alpha_d=1.0, alpha_g=INF, schedule={"kind": "step", "start": 2.0, "player": "g"})
    assert [g.at_step(s, 10).alpha_g for s in (0, 4, 5, 10)] == [2.0, 2.0, INF, INF]
    b = make_loss("beyond", discriminator="alpha",
                  discriminator_params={"alpha_d": 1.0, "schedule": {"kind": "linear", "start": 0.5}})
    assert b.at_step(50, 100).discriminator.alpha_d == 0.75 and b.at_step(50, 100).logit_scale == 0.75


@pytest.mark.parametrize("spec,match", [
    ({"kind": "cosine", "start": 0.5}, "loss.schedule.kind must be one of linear, step"),
    ({"kind": "linear"}, "needs a start alpha"),
    ({"kind": "linear", "start": 0.5, "at": 0.3}, "unknown keys \\['at'\\]"),
    ({"kind": "linear", "start": "inf"}, "linear alpha schedule needs finite"),
    ({"kind": "step", "start": 0.0}, "loss.schedule.start must be a positive number"),
    ({"kind": "linear", "start": 0.5, "until": 0}, "loss.schedule.until must be a finite number > 0.0"),
    ("linear", "loss.schedule must be null or a mapping"),
])
def test_bad_schedules(spec, match):
    with pytest.raises(UserError, match=match):
        make_loss("alpha", schedule=spec)


def test_renyi_schedule_has_no_player():
    with pytest.raises(UserError, match="loss.schedule.player must be one of both, got 'd'"):
        make_loss("renyi", schedule={"kind": "step", "start": 0.5, "player": "d"})
