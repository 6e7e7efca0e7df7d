"""Divergence diagnostics against direct float64 math in probability space, exact identities on a
discrete pair of distributions, and the (alpha_D, alpha_G) f-divergences against the losses."""

import math

import pytest
import torch

from gan_bench.losses import divergence_estimates, f_alpha_ns, f_alpha_saturating, make_loss, saturation_fraction
from gan_bench.losses.logistic import alpha_loss_fake, alpha_loss_real

F_OF_U = {  # f(u), u = p/q, written directly
    "kl": lambda u: u * math.log(u),
    "rkl": lambda u: -math.log(u),
    "js": lambda u: 0.5 * (u * math.log(2 * u / (1 + u)) + math.log(2 / (1 + u))),
    "hellinger2": lambda u: (math.sqrt(u) - 1) ** 2,
    "pearson": lambda u: (u - 1) ** 2,
    "softened_rkl": lambda u: (1 + u) * math.log((1 + u) / (2 * u)),
}


@pytest.mark.parametrize("scale", [1.0, 0.5, 2.0])
def test_plug_in_matches_probability_space(scale):
    t = 6 * torch.rand(50, generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 3
    est = divergence_estimates(t, scale)
    assert set(est) == set(F_OF_U)
    for key, f in F_OF_U.items():
        expected = sum(f(math.exp(x / scale)) for x in t.tolist()) / len(t)
        assert float(est[key]) == pytest.approx(expected, rel=1e-10, abs=1e-12), key


def test_exact_on_discrete_distributions():
    # q uniform on 6 points, logits t_i = scale log(p_i/q_i): the mean over the 6 points is E_q f(u).
    p = torch.tensor([0.05, 0.1, 0.15, 0.2, 0.2, 0.3], dtype=torch.float64)
    q = torch.full((6,), 1 / 6, dtype=torch.float64)
    est = divergence_estimates(0.7 * torch.log(p / q), logit_scale=0.7)
    P, Q = p.tolist(), q.tolist()
    M = [(a + b) / 2 for a, b in zip(P, Q)]
    kl = lambda a, b: sum(x * math.log(x / y) for x, y in zip(a, b))
    expected = {
        "kl": kl(P, Q), "rkl": kl(Q, P), "js": 0.5 * kl(P, M) + 0.5 * kl(Q, M),
        "hellinger2": sum((math.sqrt(a) - math.sqrt(b)) ** 2 for a, b in zip(P, Q)),
        "pearson": sum((a - b) ** 2 / b for a, b in zip(P, Q)),
        "softened_rkl": 2 * kl(M, P),  # Shannon et al.: D_NS = 2 KL((p+q)/2 || p)
    }
    for key, value in expected.items():
        assert float(est[key]) == pytest.approx(value, rel=1e-12), key


def test_ns_bce_generator_follows_softened_rkl():
    # At D* (t = log p/q, held fixed), the gradient of E_q[-log D] in q equals that of D_NS(p || q).
    p = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    theta = torch.tensor([0.3, -0.2, 0.5, 0.1], dtype=torch.float64, requires_grad=True)
    q = torch.softmax(theta, 0)
    t_star = torch.log(p / q).detach()
    bce = make_loss("bce", generator="ns")
    g_loss = sum(q[i] * bce.g_loss(t_star[i:i + 1]) for i in range(4))
    (grad_g,) = torch.autograd.grad(g_loss, theta)
    q = torch.softmax(theta, 0)
    d_ns = ((p + q) * torch.log((p + q) / (2 * p))).sum()
    (grad_ns,) = torch.autograd.grad(d_ns, theta)
    torch.testing.assert_close(grad_g, grad_ns, rtol=1e-12, atol=1e-14)


def test_shapes_and_stability():
    t = torch.linspace(-80, 80, 33).reshape(3, 11)  # float32, extreme logits
    est = divergence_estimates(t, 1.0)
    for key, v in est.items():
        assert v.shape == (3,) and v.dtype == torch.float64 and torch.isfinite(v).all(), key
    # Samples D calls certainly fake (u -> 0) stay finite in every estimate, even at log u = -700.
    far = divergence_estimates(torch.tensor([-700.0, -30.0], dtype=torch.float64), 1.0)
    assert all(torch.isfinite(v) for v in far.values())
    assert float(far["softened_rkl"]) == pytest.approx(365 - math.log(2), rel=1e-9)  # ~ -log u - log 2
    with pytest.raises(ValueError, match="logit_scale"):
        divergence_estimates(t, None)


def test_saturation_fraction():
    # logit(0.01) = -4.595: D(G(z)) < 0.01 for the first two of each row.
    t = torch.tensor([[-9.0, -4.7, -4.5, 3.0], [-4.0, 0.0, 1.0, 2.0]])
    torch.testing.assert_close(saturation_fraction(t), torch.tensor([0.5, 0.0]))
    assert float(saturation_fraction(t[0], threshold=0.5)) == 0.75


@pytest.mark.parametrize("ad,ag", [(0.5, 0.7), (1.0, 2.0), (3.0, 2.0), (2.0, math.inf), (0.3, 1.05), (0.2, 0.25)])
def test_alpha_gan_f_divergences_match_the_losses(ad, ag):
    # At D*, t* = aD log u. The saturating generator's value E_q[u (-l(1,t*)) + (-l(0,t*))] and the
    # ns one's E_q[l(1, t*)] equal the f-divergences of docs/losses.md plus a constant; pointwise the
    # saturating integrand also differs by (u - 1)/beta, which has mean zero under q. f(1) = 0.
    log_u = torch.linspace(-4, 4, 41, dtype=torch.float64)
    t = ad * log_u
    beta = 1 - 1 / ag
    sat = log_u.exp() * -alpha_loss_real(t, ag) - alpha_loss_fake(t, ag)
    ns = alpha_loss_real(t, ag)
    torch.testing.assert_close(sat - f_alpha_saturating(log_u, ad, ag),
                               (2 ** (1 / ag) - 1 - log_u.exp()) / beta, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ns - f_alpha_ns(log_u, ad, ag),
                               torch.full_like(log_u, (1 - 2 ** (-beta)) / beta), rtol=1e-6, atol=1e-6)
    zero = torch.zeros(1, dtype=torch.float64)
    assert abs(float(f_alpha_saturating(zero, ad, ag))) < 1e-6 and abs(float(f_alpha_ns(zero, ad, ag))) < 1e-12


def test_alpha_ns_f_at_alpha_g_one_is_the_limit():
    log_u = torch.linspace(-3, 3, 13, dtype=torch.float64)
    torch.testing.assert_close(f_alpha_ns(log_u, 2.0, 1.0), f_alpha_ns(log_u, 2.0, 1.0 + 1e-7), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="singular"):
        f_alpha_saturating(log_u, 2.0, 1.0)
