"""Gradient penalties against closed forms: a linear D has grad_x t = w everywhere, a quadratic
D t(x) = 1/2 ||x||^2 has grad_x t = x, so the expected values are known by hand."""

import math

import pytest
import torch

from gan_bench.errors import UserError
from gan_bench.losses import make_penalty

W = [0.5, -1.0, 0.25, 2.0, 0.0, -0.75, 1.5, 0.1, -0.3, 0.6, 0.2, -0.4, 0.9, -1.1, 0.05, 0.3, -0.2, 0.7]
NORM_W = math.sqrt(sum(w * w for w in W))


class LinearD(torch.nn.Module):
    """t(x) = <w, x> + b on image-shaped input [B, 2, 3, 3]."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(W, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.tensor(0.3, dtype=torch.float64))

    def forward(self, x):
        return x.flatten(1) @ self.w + self.b


def images(seed, b=5):
    return torch.randn(b, 2, 3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_defaults_and_none():
    assert make_penalty("none") is None
    assert make_penalty("gp").weight == 10.0 and make_penalty("r1").weight == 5.0
    with pytest.raises(UserError, match="unknown penalty 'l2': choose one of none, gp, r1"):
        make_penalty("l2")
    with pytest.raises(UserError, match="penalty.weight must be a finite number >= 0.0"):
        make_penalty("gp", weight=-1)


def test_gp_linear_d_value_and_backprop():
    D = LinearD()
    pen = make_penalty("gp", weight=10)(D, images(0), images(1), torch.Generator().manual_seed(0))
    assert float(pen.detach()) == pytest.approx(10 * (NORM_W - 1) ** 2, rel=1e-12)
    pen.backward()
    # d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||
    expected = [20 * (NORM_W - 1) * w / NORM_W for w in W]
    torch.testing.assert_close(D.w.grad, torch.tensor(expected, dtype=torch.float64))


def test_r1_linear_d_value_and_backprop():
    D = LinearD()
    pen = make_penalty("r1", weight=5)(D, images(0), images(1))
    assert float(pen.detach()) == pytest.approx(5 * NORM_W ** 2, rel=1e-12)
    pen.backward()
    torch.testing.assert_close(D.w.grad, torch.tensor([10 * w for w in W], dtype=torch.float64))


def test_gp_one_coefficient_per_sample_norm_over_all_dims():
    D = lambda x: 0.5 * x.flatten(1).square().sum(1)  # grad_x t = x
    real, fake = images(2), images(3)
    pen = make_penalty("gp", weight=2.0)(D, real, fake, torch.Generator().manual_seed(7))
    eps = torch.rand(5, generator=torch.Generator().manual_seed(7), dtype=torch.float64).tolist()
    terms = []
    for i in range(5):
        x_hat = [eps[i] * r + (1 - eps[i]) * f for r, f in zip(real[i].flatten().tolist(), fake[i].flatten().tolist())]
        terms.append((math.sqrt(sum(v * v for v in x_hat)) - 1) ** 2)
    assert float(pen.detach()) == pytest.approx(2.0 * sum(terms) / 5, rel=1e-12)


def test_ensemble_batch_dims():
    # K replicas, D maps [K, B, d] -> [K, B] with its own w_k: the per-replica means are summed.
    Wk = torch.tensor([[0.6, 0.8], [3.0, 4.0], [0.0, 0.5]], dtype=torch.float64, requires_grad=True)
    D = lambda x: torch.einsum("kbd,kd->kb", x, Wk)
    g = torch.Generator().manual_seed(0)
    real = torch.randn(3, 4, 2, generator=g, dtype=torch.float64)
    fake = torch.randn(3, 4, 2, generator=g, dtype=torch.float64)
    norms = [1.0, 5.0, 0.5]
    gp = make_penalty("gp", weight=1)(D, real, fake, g, batch_dims=2)
    r1 = make_penalty("r1", weight=1)(D, real, fake, batch_dims=2)
    assert float(gp.detach()) == pytest.approx(sum((n - 1) ** 2 for n in norms))
    assert float(r1.detach()) == pytest.approx(sum(n ** 2 for n in norms))
    (gp + r1).backward()
    assert Wk.grad is not None and torch.isfinite(Wk.grad).all()


def test_gp_one_stream_per_replica_matches_each_single_call():
    # Replica k of an ensemble draws its interpolation coefficients from its own generator, so its
    # term equals the penalty a single run with that generator computes on its own batch.
    D1 = lambda x: 0.5 * x.flatten(1).square().sum(1)
    DK = lambda x: 0.5 * x.flatten(2).square().sum(2)
    real, fake = torch.stack([images(10 + k) for k in range(3)]), torch.stack([images(20 + k) for k in range(3)])
    gens = [torch.Generator().manual_seed(100 + k) for k in range(3)]
    pen = make_penalty("gp", weight=1.0)(DK, real, fake, gens, batch_dims=2)
    singles = [make_penalty("gp", weight=1.0)(D1, real[k], fake[k], torch.Generator().manual_seed(100 + k))
               for k in range(3)]
    assert float(pen.detach()) == pytest.approx(float(sum(singles).detach()), rel=1e-12)
    with pytest.raises(ValueError, match="one per replica"):
        make_penalty("gp")(DK, real, fake, gens[:2], batch_dims=2)


def test_d_with_trailing_unit_dim_and_shape_errors():
    D = LinearD()
    pen = make_penalty("r1", weight=1)(lambda x: D(x)[:, None], images(0), images(1))
    assert float(pen.detach()) == pytest.approx(NORM_W ** 2)
    with pytest.raises(ValueError, match="one logit per sample"):
        make_penalty("r1")(lambda x: D(x).sum(), images(0), images(1))


def test_penalty_reaches_mlp_parameters_float32():
    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    for name in ("gp", "r1"):
        D.zero_grad()
        make_penalty(name)(D, real, fake, torch.Generator().manual_seed(1)).backward()
        # With a smooth activation every parameter but the last bias shapes grad_x t.
        for p in (D[0].weight, D[0].bias, D[2].weight):
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
