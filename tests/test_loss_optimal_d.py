"""A discriminator trained alone on two fixed 1-D Gaussians reaches t* = logit_scale * log(p/q).

For Gaussians log(p/q) is quadratic in x, so the model t(x) = a x^2 + b x + c can be exact. The
"samples" are quantiles F^-1((i + 1/2)/n), whose means approximate expectations far better than
random draws, so the fit is checked tightly without a large batch.
"""

import math

import pytest
import torch

from gan_bench.losses import make_loss

MU_P, SD_P = 0.0, 1.0   # data
MU_Q, SD_Q = 1.0, 1.5   # model


@pytest.fixture(autouse=True)
def one_thread():
    # Vectors of 1000 elements: waking a second intra-op thread costs more than it saves, and on a
    # busy 2-core machine each wake-up can take milliseconds.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def log_ratio(x):
    return (math.log(SD_Q / SD_P) - (x - MU_P) ** 2 / (2 * SD_P ** 2) + (x - MU_Q) ** 2 / (2 * SD_Q ** 2))


def train_d(loss, n=1000, iters=100):
    """Fit t(x) = a x^2 + b x + c by minimizing loss.d_loss with damped Newton steps
    (Levenberg-Marquardt: 3 parameters, exact Hessian, no torch.optim import)."""
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    real, fake = MU_P + SD_P * torch.special.ndtri(u), MU_Q + SD_Q * torch.special.ndtri(u)
    t = lambda th, x: th[0] * x ** 2 + th[1] * x + th[2]
    objective = lambda th: loss.d_loss(t(th, real), t(th, fake))
    theta, lam = torch.zeros(3, dtype=torch.float64), 1e-3
    value = objective(theta)
    for _ in range(iters):
        grad = torch.autograd.functional.jacobian(objective, theta)
        hess = torch.autograd.functional.hessian(objective, theta)
        if grad.abs().max() < 1e-10:
            break
        for _ in range(30):  # raise the damping until the step helps; none helps: converged
            step = torch.linalg.solve(hess + lam * torch.eye(3, dtype=torch.float64), grad)
            new_value = objective(theta - step)
            if new_value < value:
                theta, value, lam = theta - step, new_value, lam / 3
                break
            lam *= 3
        else:
            break
    return lambda x: t(theta, x)


@pytest.mark.parametrize("name,params", [
    ("bce", {}), ("alpha", {"alpha_d": 0.5}), ("alpha", {"alpha_d": 2.0}),
    ("renyi", {"alpha": 0.5}), ("renyi", {"alpha": 2.0}), ("fgan", {"divergence": "hellinger"}),
], ids=str)
def test_trained_discriminator_reaches_scaled_log_ratio(name, params):
    loss = make_loss(name, **params)
    t = train_d(loss)
    x = torch.linspace(-1.5, 2.0, 15, dtype=torch.float64)  # where both densities have mass
    err = (t(x) - loss.logit_scale * log_ratio(x)).abs().max()
    assert float(err) < 0.03 * max(1.0, loss.logit_scale), (loss, float(err))
