"""loss=lalpha: the L_alpha-GAN of Veiner, Alajaji, Gharesifard (Entropy 2024) — BCE discriminator,
generator -E L(0, D(G(z))) for the symmetric CPE loss L of `family` — its special cases, the Jensen-f
divergence it minimizes at the optimal D, and the authors' code (justin-veiner/MASc), re-derived here
in probability space with `math`:

- alphagan.py, AlphaGAN.gen_loss_alpha: alpha_g/(alpha_g - 1) (mean (1 - D_f)^((alpha_g - 1)/alpha_g) - 2);
  AlphaGAN.dis_loss_vanilla: BCE(1, D_r) + BCE(0, D_f) (keras, from probabilities).
- lkgan.py, LkGAN.gen_loss_lk_shifted (no --l1): mean |D_f - 1|^k - 1, with dis_loss_vanilla (the
  default --loss_type vanilla).
"""

import math
import warnings

import pytest
import torch
from test_loss_lkgan import mean, sig, t64  # probability-space helpers shared with the LkGAN tests

from gan_bench.errors import UserError
from gan_bench.losses import ConvergenceRegionWarning, make_loss
from gan_bench.train import train

INF = float("inf")
REAL, FAKE = [0.3, -1.2, 2.0, 4.5], [-0.5, 1.1, 0.4, -3.0, 2.2]




def build(**params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceRegionWarning)
        return make_loss("lalpha", **params)


def value_and_grad(loss, fake):
    f = t64(fake, grad=True)
    g = loss.g_loss(f)
    return float(g.detach()), torch.autograd.grad(g, f)[0]


# ---------------------------------------------------------------- the CPE losses L(1, y), by hand

def cpe_alpha(y, alpha):
    """alpha-loss of labelling y real: alpha/(alpha - 1) (1 - y^(1 - 1/alpha)); -log y at 1, 1 - y at inf."""
    if alpha == 1:
        return -math.log(y)
    if alpha == INF:
        return 1 - y
    return alpha / (alpha - 1) * (1 - y ** (1 - 1 / alpha))


def cpe_k(y, k):
    return 1 - y ** k


def family_L(params):
    if params.get("family", "alpha") == "k":
        return lambda y: cpe_k(y, params["k"])
    return lambda y: cpe_alpha(y, params["alpha"])


# ---------------------------------------------------------------- definitions and special cases

@pytest.mark.parametrize("params", [{"alpha": a} for a in (0.6, 1.0, 2.0, 10.0, INF)]
                         + [{"family": "k", "k": k} for k in (1.0, 2.0, 7.5)], ids=str)
def test_generator_is_minus_L_of_fake_label(params):
    # G = -mean L(0, D_f) = -mean L(1, 1 - D_f); D = BCE.
    loss, L = build(**params), family_L(params)
    assert float(loss.g_loss(t64(FAKE))) == pytest.approx(-mean(L(1 - sig(t)) for t in FAKE), rel=1e-12)
    d = mean(-math.log(sig(t)) for t in REAL) + mean(-math.log(1 - sig(t)) for t in FAKE)
    assert float(loss.d_loss(t64(REAL), t64(FAKE))) == pytest.approx(d, rel=1e-13)


@pytest.mark.parametrize("alpha", [0.6, 1.0, 1.5, 3.0, 10.0, INF])
def test_family_alpha_is_the_saturating_alpha_d_1_gan(alpha):
    # The paper's (alpha_D, alpha_G)-GAN with alpha_D = 1: loss=alpha alpha_d=1 alpha_g=alpha
    # generator=saturating. D: bit for bit (values and gradients); G: the same value bit for bit and
    # the same gradient to rounding (lalpha takes it as exp(.) directly, see the float32 test below).
    ours, theirs = build(alpha=alpha), make_loss("alpha", alpha_d=1, alpha_g=alpha, generator="saturating")
    for other in (theirs, make_loss("bce")):
        r, f = t64(REAL, grad=True), t64(FAKE, grad=True)
        a, b = ours.d_loss(r, f), other.d_loss(r, f)
        assert torch.equal(a, b)
        assert all(torch.equal(x, y) for x, y in zip(torch.autograd.grad(a, (r, f)), torch.autograd.grad(b, (r, f))))
    va, ga = value_and_grad(ours, FAKE)
    vb, gb = value_and_grad(theirs, FAKE)
    assert va == vb
    torch.testing.assert_close(ga, gb, rtol=1e-12, atol=0)


@pytest.mark.parametrize("params", [{"alpha": a} for a in (0.6, 1.5, 3.0, INF)] + [{"family": "k", "k": 3.0}], ids=str)
def test_float32_gradient_keeps_precision_as_d_goes_to_one(params):
    # d/dt -L(0, D) = -(1 - D)^beta D (k: -k (1 - D)^k D): float32 matches float64 to 1e-5 up to t = 20,
    # where (1 - D)^beta is far below float32's epsilon (torch's expm1 backward, result + 1, loses it).
    loss = build(**params)
    t = torch.tensor([-15.0, 0.0, 5.0, 10.0, 13.0, 15.0, 20.0], dtype=torch.float64)
    x32, x64 = t.float().requires_grad_(True), t.clone().requires_grad_(True)
    g32, g64 = loss.g_loss(x32[:, None]), loss.g_loss(x64[:, None])
    torch.testing.assert_close(g32.double(), g64.detach(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(torch.autograd.grad(g32.sum(), x32)[0].double(),
                               torch.autograd.grad(g64.sum(), x64)[0], rtol=1e-5, atol=0)


def test_gradient_is_twice_differentiable():
    f = t64(FAKE, grad=True)
    for params in ({"alpha": 3.0}, {"family": "k", "k": 2.5}):
        (g,) = torch.autograd.grad(build(**params).g_loss(f), f, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), f)
        assert torch.isfinite(h).all()
    # and the second derivative is the right one: central differences of the first.
    eps, loss = 1e-6, build(family="k", k=2.0)
    grad = lambda x: torch.autograd.grad(loss.g_loss(x), x)[0]  # noqa: E731
    (g,) = torch.autograd.grad(loss.g_loss(f), f, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), f)
    fd = (grad(t64([t + eps for t in FAKE], grad=True)) - grad(t64([t - eps for t in FAKE], grad=True))) / (2 * eps)
    torch.testing.assert_close(h, fd, rtol=1e-6, atol=1e-9)


def test_alpha_one_is_vanilla_minimax():
    # alpha = 1: -L_1(0, D_f) = log(1 - D_f): the minimax VanillaGAN generator, i.e. bce's saturating G.
    v, g = value_and_grad(make_loss("lalpha", alpha=1), FAKE)
    vb, gb = value_and_grad(make_loss("bce", generator="saturating"), FAKE)
    assert v == vb and torch.equal(g, gb)
    assert v == pytest.approx(mean(math.log(1 - sig(t)) for t in FAKE), rel=1e-13)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("delta", [1e-4, -1e-4])
def test_continuous_at_alpha_one(dtype, delta):
    f = torch.linspace(-15, 15, 13, dtype=dtype)
    a, b = f.clone().requires_grad_(True), f.clone().requires_grad_(True)
    ga, gb = make_loss("lalpha", alpha=1).g_loss(a), make_loss("lalpha", alpha=1 + delta).g_loss(b)
    torch.testing.assert_close(gb, ga, rtol=2e-3, atol=1e-6)
    torch.testing.assert_close(torch.autograd.grad(gb, b)[0], torch.autograd.grad(ga, a)[0], rtol=2e-3, atol=1e-6)


def test_alpha_inf_is_slkgan_k1():
    # alpha = inf: L(1, y) = 1 - y = L_1(1, y): G = -mean D_f = mean (1 - D_f) - 1.
    v, g = value_and_grad(make_loss("lalpha", alpha=INF), FAKE)
    vk, gk = value_and_grad(make_loss("lalpha", family="k", k=1), FAKE)
    assert v == pytest.approx(vk, rel=1e-14) and v == pytest.approx(-mean(sig(t) for t in FAKE), rel=1e-13)
    torch.testing.assert_close(g, gk, rtol=1e-14, atol=0)


def test_alpha_half_closed_form():
    # alpha = 1/2 (beta = -1): L(1, y) = 1/y - 1, so G = -mean (1/(1 - D_f) - 1) = -mean exp(t_f).
    v, g = value_and_grad(build(alpha=0.5), FAKE)
    assert v == pytest.approx(-mean(math.exp(t) for t in FAKE), rel=1e-13)
    assert g.tolist() == pytest.approx([-math.exp(t) / len(FAKE) for t in FAKE], rel=1e-12)


@pytest.mark.parametrize("k", [1.0, 2.0, 3.0, 7.5])
def test_family_k_is_slkgan(k):
    # MASc lkgan.py gen_loss_lk_shifted with --loss_type vanilla: mean |D_f - 1|^k - 1, BCE D.
    loss = make_loss("lalpha", family="k", k=k)
    v, g = value_and_grad(loss, FAKE)
    assert v == pytest.approx(mean(abs(sig(t) - 1) ** k for t in FAKE) - 1, rel=1e-13)
    assert g.tolist() == pytest.approx([-k * (1 - sig(t)) ** k * sig(t) / len(FAKE) for t in FAKE], rel=1e-12)
    # ... which is lkgan's slk generator on the sigmoid output (lkgan keeps LSGAN's D).
    vl, gl = value_and_grad(make_loss("lkgan", k=k, variant="slk", output="sigmoid"), FAKE)
    assert v == vl and torch.equal(g, gl)


def test_k2_is_lsgan_generator():
    # k = 2: mean (1 - D_f)^2 - 1 = 2 x LSGAN's (Mao, 0-1 coding) G on D = sigmoid(t), minus 1.
    f = t64(FAKE, grad=True)
    g = make_loss("lalpha", family="k", k=2).g_loss(f)
    g_ls = 2 * make_loss("lsgan").g_loss(torch.sigmoid(f)) - 1
    torch.testing.assert_close(g, g_ls, rtol=1e-14, atol=0)
    torch.testing.assert_close(torch.autograd.grad(g, f)[0], torch.autograd.grad(g_ls, f)[0], rtol=1e-13, atol=0)


@pytest.mark.parametrize("alpha", [0.6, 2.0, 3.0, 10.0])
def test_alpha_against_masc_gen_loss_alpha(alpha):
    # AlphaGAN.gen_loss_alpha = alpha/(alpha - 1) (mean (1 - D_f)^beta - 2): ours is that plus
    # alpha/(alpha - 1) (it keeps -2, the constants of both players' terms; ours is -L(0, D_f)).
    beta = (alpha - 1) / alpha
    masc = alpha / (alpha - 1) * (mean((1 - sig(t)) ** beta for t in FAKE) - 2)
    masc_grad = [-alpha / (alpha - 1) * beta * (1 - sig(t)) ** beta * sig(t) / len(FAKE) for t in FAKE]
    v, g = value_and_grad(build(alpha=alpha), FAKE)
    assert v == pytest.approx(masc + alpha / (alpha - 1), rel=1e-12)
    assert g.tolist() == pytest.approx(masc_grad, rel=1e-12)
    # AlphaGAN.dis_loss_vanilla (gp off), BCE from probabilities (keras clips them to [1e-7, 1 - 1e-7]:
    # no clip binds at these logits).
    d = mean(-math.log(sig(t)) for t in REAL) + mean(-math.log(1 - sig(t)) for t in FAKE)
    assert float(build(alpha=alpha).d_loss(t64(REAL), t64(FAKE))) == pytest.approx(d, rel=1e-13)


# ---------------------------------------------------------------- the Jensen-f divergence at D*

P = [0.1, 0.2, 0.3, 0.25, 0.15]
Q = [0.3, 0.05, 0.2, 0.15, 0.3]


def jensen_f(p, q, f):
    """J_f(P, Q) = 1/2 D_f(P || M) + 1/2 D_f(Q || M), M = (P + Q)/2, in probability space."""
    m = [(a + b) / 2 for a, b in zip(p, q)]
    return 0.5 * sum(mi * f(a / mi) for a, mi in zip(p, m)) + 0.5 * sum(mi * f(b / mi) for b, mi in zip(q, m))


def objective_at_optimal_d(loss, L, p, q):
    """-E_p L(1, D*) - E_q L(0, D*) with D* = p/(p + q): the real term by hand, the fake term from
    g_loss evaluated one logit per replica ([n, 1] -> [n])."""
    t_star = torch.tensor([[math.log(a / b)] for a, b in zip(p, q)], dtype=torch.float64)
    fake_term = float((torch.tensor(q, dtype=torch.float64) * loss.g_loss(t_star)).sum())
    return -sum(a * L(a / (a + b)) for a, b in zip(p, q)) + fake_term


@pytest.mark.parametrize("params", [{"alpha": a} for a in (0.6, 1.0, 2.0, 10.0, INF)]
                         + [{"family": "k", "k": k} for k in (1.0, 2.0, 7.5)], ids=str)
def test_generator_objective_at_optimal_d_is_a_jensen_f_divergence(params):
    # 2 J_f(P_r, P_g) - 2 L(1, 1/2) with f(u) = -u L(1, u/2) + u L(1, 1/2) (so f(1) = 0): zero
    # divergence at P_g = P_r, positive elsewhere.
    loss, L = build(**params), family_L(params)
    f = lambda u: -u * L(u / 2) + u * L(0.5)  # noqa: E731
    value = objective_at_optimal_d(loss, L, P, Q)
    assert value == pytest.approx(2 * jensen_f(P, Q, f) - 2 * L(0.5), rel=1e-12)
    assert jensen_f(P, Q, f) > 1e-4 and jensen_f(P, P, f) == pytest.approx(0, abs=1e-15)
    assert objective_at_optimal_d(loss, L, P, P) == pytest.approx(-2 * L(0.5), rel=1e-12)


def test_alpha_one_at_optimal_d_is_jensen_shannon():
    # VanillaGAN: 2 JS(P_r, P_g) - log 4, with JS from two KLs to the mixture.
    m = [(a + b) / 2 for a, b in zip(P, Q)]
    js = 0.5 * sum(a * math.log(a / c) for a, c in zip(P, m)) + 0.5 * sum(b * math.log(b / c) for b, c in zip(Q, m))
    value = objective_at_optimal_d(make_loss("lalpha", alpha=1), lambda y: -math.log(y), P, Q)
    assert value == pytest.approx(2 * js - math.log(4), rel=1e-12)


# ---------------------------------------------------------------- float32, ensembles, bad values

CONFIGS = [{"alpha": a} for a in (0.2, 0.5, 1.0, 2.0, 10.0, INF)] + [{"family": "k", "k": k} for k in (1.0, 2.0, 7.5)]


@pytest.mark.parametrize("params", CONFIGS, ids=str)
def test_finite_values_and_grads_float32(params):
    loss = build(**params)
    grid = torch.linspace(-15, 15, 31)
    for real, fake in ((grid, grid.flip(0)), (torch.full((31,), 15.0), torch.full((31,), -15.0)),
                       (torch.full((31,), -15.0), torch.full((31,), 15.0))):
        r, f = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
        d, g = loss.d_loss(r, f), loss.g_loss(f)
        for x in (d, g, *torch.autograd.grad(d, (r, f)), *torch.autograd.grad(g, f)):
            assert x.dtype == torch.float32 and torch.isfinite(x).all(), (params, x)


@pytest.mark.parametrize("params", CONFIGS, ids=str)
def test_ensemble_shape_is_per_replica(params):
    loss = build(**params)
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    fake = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    d, g = loss.d_loss(real, fake), loss.g_loss(fake)
    assert d.shape == (4,) and g.shape == (4,)
    for k in range(4):
        torch.testing.assert_close(d[k], loss.d_loss(real[k], fake[k]), rtol=1e-14, atol=0)
        torch.testing.assert_close(g[k], loss.g_loss(fake[k]), rtol=1e-14, atol=0)


@pytest.mark.parametrize("bad", [0, -1.0, "abc", float("nan"), None, True])
def test_bad_alpha_is_one_line_user_error(bad):
    with pytest.raises(UserError) as e:
        make_loss("lalpha", alpha=bad)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"alpha must be a positive number or inf for loss=lalpha, got {bad!r}")


def test_alpha_at_or_below_half_warns_not_refuses():
    for a in (0.5, 0.3):
        with pytest.warns(ConvergenceRegionWarning, match=f"alpha = {a:g} <= 1/2"):
            assert make_loss("lalpha", alpha=a).alpha == a
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_loss("lalpha", alpha=0.6)
        make_loss("lalpha", family="k", alpha=0.3)  # alpha is not read by family=k


def test_bad_options_and_flags():
    with pytest.raises(UserError, match="loss.family must be one of alpha, k, got 'beta'"):
        make_loss("lalpha", family="beta")
    loss = make_loss("lalpha")
    assert (loss.family, loss.alpha, loss.k) == ("alpha", 1.0, 2.0)
    assert loss.logit_scale == 1.0 and loss.logistic and not loss.needs_real_for_g


def test_config_follows_alpha_g_and_trains(cfg_factory):
    from hydra.utils import instantiate
    assert instantiate(cfg_factory("loss=lalpha", "alpha=3").loss).alpha == 3.0
    assert instantiate(cfg_factory("loss=lalpha", "alpha=3", "alpha_g=inf").loss).alpha == INF
    cfg = cfg_factory("loss=lalpha", "loss.family=k", "loss.k=2", "train.steps=2", "train.log_every=1")
    assert instantiate(cfg.loss).family == "k"
    result = train(cfg)
    assert result["status"] == "completed" and result["step"] == 2, result
