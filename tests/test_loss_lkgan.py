"""loss=lkgan (Bhatia, Paul, Alajaji, Gharesifard, Burlina; Neural Computation 2021) and its shifted
variant SLkGAN, against the authors' code re-derived here in probability space with `math`:

- renyigan-lkgan/LkGAN, lkgan_static.py, GAN.dis_loss / GAN.gen_loss: D ends in a sigmoid, D loss
  1/2 (mean (D_r - beta)^2 + mean (D_f - alpha)^2), G loss mean |D_f - gamma|^k, with the labels of
  its "version" (README table): version 3 is (alpha, beta, gamma) = (0, 1, 1).
- justin-veiner/MASc, lkgan.py, LkGAN.dis_loss_lk / gen_loss_lk / gen_loss_lk_shifted (no --l1):
  1/2 (mean (D_r - 1)^2 + mean D_f^2), mean |D_f - 1|^k, and mean |D_f - 1|^k - 1.
"""

import math

import pytest
import torch

from gan_bench.errors import UserError
from gan_bench.losses import make_loss
from gan_bench.train import train

REAL, FAKE = [0.3, -1.2, 2.0, 4.5], [-0.5, 1.1, 0.4, -3.0]
KS = [1.0, 1.5, 2.0, 3.0, 7.5]


def sig(t):
    return 1 / (1 + math.exp(-t))


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs)


def t64(xs, grad=False):
    return torch.tensor(xs, dtype=torch.float64, requires_grad=grad)


# ---------------------------------------------------------------- the authors' formulas

def lkgan_repo_dis(real, fake, alpha, beta):
    """lkgan_static.py GAN.dis_loss on the sigmoid outputs (alpha: fake label, beta: real label)."""
    return 0.5 * (mean((sig(t) - beta) ** 2 for t in real) + mean((sig(t) - alpha) ** 2 for t in fake))


def lkgan_repo_gen(fake, gamma, k):
    """lkgan_static.py GAN.gen_loss: mean |D(G(z)) - gamma|^k."""
    return mean(abs(sig(t) - gamma) ** k for t in fake)


def masc_dis_lk(real, fake):
    """MASc lkgan.py LkGAN.dis_loss_lk without the R1 term (gp off)."""
    return 0.5 * (mean((sig(t) - 1) ** 2 for t in real) + mean(sig(t) ** 2 for t in fake))


def masc_gen_lk(fake, k, shifted):
    """MASc lkgan.py LkGAN.gen_loss_lk, and gen_loss_lk_shifted (= gen_loss_lk - 1) without --l1."""
    g = mean(abs(sig(t) - 1) ** k for t in fake)
    return g - 1 if shifted else g


@pytest.mark.parametrize("k", KS)
def test_sigmoid_output_is_the_authors_code(k):
    r, f = t64(REAL), t64(FAKE)
    lk = make_loss("lkgan", k=k, output="sigmoid")
    slk = make_loss("lkgan", k=k, variant="slk", output="sigmoid")
    d = float(lk.d_loss(r, f))
    assert d == pytest.approx(lkgan_repo_dis(REAL, FAKE, alpha=0, beta=1), rel=1e-13)   # their version 3
    assert d == pytest.approx(masc_dis_lk(REAL, FAKE), rel=1e-13)
    assert float(slk.d_loss(r, f)) == d
    assert float(lk.g_loss(f)) == pytest.approx(lkgan_repo_gen(FAKE, gamma=1, k=k), rel=1e-13)
    assert float(lk.g_loss(f)) == pytest.approx(masc_gen_lk(FAKE, k, shifted=False), rel=1e-13)
    assert float(slk.g_loss(f)) == pytest.approx(masc_gen_lk(FAKE, k, shifted=True), rel=1e-13)


@pytest.mark.parametrize("k", [1.5, 2.0, 3.0])
def test_sigmoid_output_gradients(k):
    # d/dt mean (1 - sigmoid(t))^k = -k (1 - D)^k D / N; D loss: d/dt_r = -(1 - D_r)^2 D_r / N_r,
    # d/dt_f = D_f^2 (1 - D_f) / N_f.
    r, f = t64(REAL, grad=True), t64(FAKE, grad=True)
    loss = make_loss("lkgan", k=k, variant="slk", output="sigmoid")
    (gg,) = torch.autograd.grad(loss.g_loss(f), f)
    assert gg.tolist() == pytest.approx([-k * (1 - sig(t)) ** k * sig(t) / len(FAKE) for t in FAKE], rel=1e-12)
    gr, gf = torch.autograd.grad(loss.d_loss(r, f), (r, f))
    assert gr.tolist() == pytest.approx([-(1 - sig(t)) ** 2 * sig(t) / len(REAL) for t in REAL], rel=1e-12)
    assert gf.tolist() == pytest.approx([sig(t) ** 2 * (1 - sig(t)) / len(FAKE) for t in FAKE], rel=1e-12)


def test_their_version_2_as_run_is_version_3_mirrored():
    # lkgan_static.py builds GAN(..., int(alpha), int(beta), int(gamma), ...): version 2's
    # (1, 0, 0.5) runs as (1, 0, 0), and that is version 3's (0, 1, 1) with D -> 1 - D, i.e. t -> -t.
    k = 2.5
    assert (int(1), int(0), int(0.5)) == (1, 0, 0) and (int(0.6), int(0.4), int(0.5)) == (0, 0, 0)
    mirrored = [-t for t in REAL], [-t for t in FAKE]
    loss = make_loss("lkgan", k=k, output="sigmoid")
    assert float(loss.d_loss(t64(REAL), t64(FAKE))) == pytest.approx(
        lkgan_repo_dis(*mirrored, alpha=1, beta=0), rel=1e-13)
    assert float(loss.g_loss(t64(FAKE))) == pytest.approx(lkgan_repo_gen(mirrored[1], gamma=0, k=k), rel=1e-13)


# ---------------------------------------------------------------- raw output (the default)

@pytest.mark.parametrize("k", KS)
def test_raw_output_closed_form(k):
    r, f = t64(REAL), t64(FAKE, grad=True)
    loss = make_loss("lkgan", k=k)
    assert (loss.output, loss.variant) == ("raw", "lk")
    assert float(loss.d_loss(r, f.detach())) == pytest.approx(
        0.5 * mean((t - 1) ** 2 for t in REAL) + 0.5 * mean(t ** 2 for t in FAKE), rel=1e-13)
    g = loss.g_loss(f)
    assert float(g.detach()) == pytest.approx(mean(abs(t - 1) ** k for t in FAKE), rel=1e-13)
    grad = [k * abs(t - 1) ** (k - 1) * math.copysign(1, t - 1) / len(FAKE) for t in FAKE]
    assert torch.autograd.grad(g, f)[0].tolist() == pytest.approx(grad, rel=1e-12)


@pytest.mark.parametrize("output", ["raw", "sigmoid"])
def test_k2_is_lsgan_times_two(output):
    # LkGAN has no 1/2 in front of its generator loss: k = 2 is 2x LSGAN's (Mao, 0-1 coding) G.
    r, f = t64(REAL), t64(FAKE, grad=True)
    loss, lsgan = make_loss("lkgan", k=2, output=output), make_loss("lsgan")
    x_r, x_f = (r, f) if output == "raw" else (torch.sigmoid(r), torch.sigmoid(f))
    torch.testing.assert_close(loss.d_loss(r, f), lsgan.d_loss(x_r, x_f), rtol=1e-14, atol=0)
    g, g_ls = loss.g_loss(f), 2 * lsgan.g_loss(x_f)
    torch.testing.assert_close(g, g_ls, rtol=1e-14, atol=0)
    torch.testing.assert_close(torch.autograd.grad(g, f)[0], torch.autograd.grad(g_ls, f)[0], rtol=1e-13, atol=0)


@pytest.mark.parametrize("output", ["raw", "sigmoid"])
def test_slk_is_lk_minus_one_with_the_same_gradients(output):
    f = t64(FAKE, grad=True)
    for k in KS:
        lk, slk = make_loss("lkgan", k=k, output=output), make_loss("lkgan", k=k, variant="slk", output=output)
        a, b = lk.g_loss(f), slk.g_loss(f)
        torch.testing.assert_close(b, a - 1, rtol=0, atol=1e-15)
        torch.testing.assert_close(torch.autograd.grad(a, f)[0], torch.autograd.grad(b, f)[0], rtol=0, atol=0)


@pytest.mark.parametrize("k", [1.0, 2.0, 3.0])
def test_value_at_equilibrium(k):
    # D = 1/2 on every sample (raw t = 1/2, or logit 0): G lk = 2^-k, slk = 2^-k - 1 (MASc's
    # equil_point); the D loss is 1/4.
    for output, t in (("raw", 0.5), ("sigmoid", 0.0)):
        x = torch.full((5,), t, dtype=torch.float64)
        lk = make_loss("lkgan", k=k, output=output)
        assert float(lk.g_loss(x)) == pytest.approx(2 ** -k, rel=1e-14)
        assert float(make_loss("lkgan", k=k, variant="slk", output=output).g_loss(x)) == pytest.approx(2 ** -k - 1)
        assert float(lk.d_loss(x, x)) == pytest.approx(0.25, rel=1e-14)


@pytest.mark.parametrize("output", ["raw", "sigmoid"])
def test_optimal_discriminator(output):
    # The D integrand at x is q (u l_r(t) + l_f(t)); it is stationary at D* = p/(p + q) = u/(1 + u):
    # raw t* = u/(1 + u), sigmoid t* = log u (logit_scale 1).
    loss = make_loss("lkgan", output=output)
    assert loss.logit_scale == (1.0 if output == "sigmoid" else None) and loss.logistic == (output == "sigmoid")
    for u in (0.05, 0.4, 1.0, 3.0, 20.0):
        t = torch.tensor([u / (1 + u) if output == "raw" else math.log(u)], dtype=torch.float64)
        real, fake = t.clone().requires_grad_(True), t.clone().requires_grad_(True)
        gr, gf = torch.autograd.grad(loss.d_loss(real, fake), (real, fake))
        assert float(u * gr + gf) == pytest.approx(0.0, abs=1e-14)


# ---------------------------------------------------------------- float32, ensembles, bad values

def all_configs():
    return [{"k": k, "variant": v, "output": o} for k in KS for v in ("lk", "slk") for o in ("raw", "sigmoid")]


@pytest.mark.parametrize("params", all_configs(), ids=str)
def test_finite_values_and_grads_float32(params):
    loss = make_loss("lkgan", **params)
    grid = torch.linspace(-15, 15, 31)
    for real, fake in ((grid, grid.flip(0)), (grid, grid), (torch.full((31,), 15.0), torch.full((31,), -15.0))):
        r, f = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
        d, g = loss.d_loss(r, f), loss.g_loss(f)
        gd = torch.autograd.grad(d, (r, f))
        (gg,) = torch.autograd.grad(g, f)
        for x in (d, g, *gd, gg):
            assert x.dtype == torch.float32 and torch.isfinite(x).all(), (params, x)


def test_sigmoid_output_float32_keeps_precision_at_large_logits():
    # (1 - D)^k from exp(-k softplus(t)): float32 agrees with float64 where 1 - sigmoid(t) would round.
    t = torch.tensor([-20.0, -8.0, 0.0, 8.0, 15.0, 20.0], dtype=torch.float64)
    loss = make_loss("lkgan", k=2.5, output="sigmoid")
    for x in (t, -t):
        f32, f64 = x.float().requires_grad_(True), x.clone().requires_grad_(True)
        g32, g64 = loss.g_loss(f32[None].T), loss.g_loss(f64[None].T)   # [6, 1]: one value per logit
        torch.testing.assert_close(g32.double(), g64.detach(), rtol=1e-5, atol=0)
        torch.testing.assert_close(torch.autograd.grad(g32.sum(), f32)[0].double(),
                                   torch.autograd.grad(g64.sum(), f64)[0], rtol=1e-5, atol=0)


@pytest.mark.parametrize("params", all_configs()[::3], ids=str)
def test_ensemble_shape_is_per_replica(params):
    loss = make_loss("lkgan", **params)
    g = torch.Generator().manual_seed(1)
    real = 3 * torch.randn(4, 6, generator=g, dtype=torch.float64)
    fake = 3 * torch.randn(4, 6, generator=g, dtype=torch.float64)
    d, gl = loss.d_loss(real, fake), loss.g_loss(fake)
    assert d.shape == (4,) and gl.shape == (4,)
    for k in range(4):
        torch.testing.assert_close(d[k], loss.d_loss(real[k], fake[k]), rtol=1e-14, atol=0)
        torch.testing.assert_close(gl[k], loss.g_loss(fake[k]), rtol=1e-14, atol=0)


@pytest.mark.parametrize("bad", [0.5, 0, -2, "abc", float("nan"), float("inf"), None, True])
def test_bad_k_is_one_line_user_error(bad):
    for name in ("lkgan", "lalpha"):
        with pytest.raises(UserError) as e:
            make_loss(name, k=bad)
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith(f"loss.k must be a finite number >= 1.0, got {bad!r}")
        assert msg.endswith("pass e.g. loss.k=2")


def test_bad_options():
    with pytest.raises(UserError, match="loss.variant must be one of lk, slk, got 'l1'"):
        make_loss("lkgan", variant="l1")
    with pytest.raises(UserError, match="loss.output must be one of raw, sigmoid, got 'tanh'"):
        make_loss("lkgan", output="tanh")
    with pytest.raises(UserError, match="loss=lkgan has no parameter alpha"):
        make_loss("lkgan", alpha=2)
    assert not make_loss("lkgan").needs_real_for_g and make_loss("lkgan", k=1).k == 1.0
    assert repr(make_loss("lkgan", k=3)) == "lkgan(k=3.0, variant='lk', output='raw')"


def test_config_keys_and_a_short_run(cfg_factory):
    from hydra.utils import instantiate
    cfg = cfg_factory("loss=lkgan", "loss.k=1.5", "loss.variant=slk", "loss.output=sigmoid",
                      "train.steps=2", "train.log_every=1")
    loss = instantiate(cfg.loss)
    assert (loss.k, loss.variant, loss.output) == (1.5, "slk", "sigmoid")
    result = train(cfg)
    assert result["status"] == "completed" and result["step"] == 2, result
