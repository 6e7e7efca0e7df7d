"""Logistic-discriminator losses: vanilla GAN (bce) and alpha-loss (alpha, (alpha_D, alpha_G)-GANs).

alpha-loss (Kurri, Welfert, Otstot, Sankar), beta = 1 - 1/alpha, D = sigmoid(t):
    l_a(1, t) = (1 - D^beta)/beta = -expm1(-beta * softplus(-t)) / beta,   l_a(0, t) = l_a(1, -t)
alpha = 1 is BCE, alpha = inf gives 1 - D, alpha = 1/2 gives exp(-t).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gan_bench.losses.base import BETA_EPS, Loss, beta_of, expm1, parse_alpha, parse_choice
from gan_bench.losses.schedule import AlphaSchedule, parse_schedule, scheduled_alphas

GENERATORS = ("saturating", "ns")


class ConvergenceRegionWarning(UserWarning):
    """(alpha_D, alpha_G) outside the region where convergence to P_g = P_r is proven."""


def alpha_loss_real(t: torch.Tensor, alpha: float) -> torch.Tensor:
    """l_alpha(1, t): loss of labelling a sample real, elementwise."""
    beta = beta_of(alpha)
    if abs(beta) < BETA_EPS:
        return F.softplus(-t)
    # expm1 keeps precision for small beta (continuity at alpha = 1), base.expm1 also in the gradient
    # where D^beta is tiny; for alpha < 1 this grows like exp(|beta| |t|) as t -> -inf. That
    # overflow is the math, recorded by the trainer as divergence.
    return -expm1(-beta * F.softplus(-t)) / beta


def alpha_loss_fake(t: torch.Tensor, alpha: float) -> torch.Tensor:
    """l_alpha(0, t) = l_alpha(1, -t): loss of labelling a sample fake."""
    return alpha_loss_real(-t, alpha)


def proven_region(alpha_d: float, alpha_g: float, generator: str) -> bool:
    """Whether the (alpha_D, alpha_G)-GAN is proven to recover P_g = P_r (docs/losses.md)."""
    if generator == "ns":
        return 1.0 / alpha_d + 1.0 / alpha_g > 1.0  # aD + aG > aD*aG, written to accept inf
    return ((alpha_d <= 1 and alpha_g > alpha_d / (alpha_d + 1))
            or (alpha_d > 1 and alpha_d / 2 < alpha_g <= alpha_d))


_REGION_TEXT = {
    "saturating": "(alpha_d <= 1 and alpha_g > alpha_d/(alpha_d+1)) or "
                  "(alpha_d > 1 and alpha_d/2 < alpha_g <= alpha_d)",
    "ns": "alpha_d + alpha_g > alpha_d*alpha_g",
}


def warn_outside_region(alpha_d: float, alpha_g: float, generator: str) -> None:
    if not proven_region(alpha_d, alpha_g, generator):
        warnings.warn(f"(alpha_d, alpha_g) = ({alpha_d:g}, {alpha_g:g}) is outside the region where the "
                      f"{generator} (alpha_D, alpha_G)-GAN provably recovers P_g = P_r: "
                      f"{_REGION_TEXT[generator]}; training anyway", ConvergenceRegionWarning, stacklevel=4)


# ---------------------------------------------------------------- bce

_BCE_G = {
    "saturating": lambda f: -F.softplus(f).mean(-1),  # minimax: minimize log(1 - D(G(z)))
    "ns": lambda f: F.softplus(-f).mean(-1),          # maximize log D(G(z)): strong early gradients
}


@dataclass(frozen=True, repr=False)
class BCE(Loss):
    generator: str = "ns"
    name = "bce"
    logit_scale = 1.0
    logistic = True

    def d_loss(self, real_logits, fake_logits):
        return F.softplus(-real_logits).mean(-1) + F.softplus(fake_logits).mean(-1)

    def g_loss(self, fake_logits, real_logits=None):
        return _BCE_G[self.generator](fake_logits)


def build_bce(generator: str = "ns") -> BCE:
    return BCE(parse_choice("loss.generator", generator, GENERATORS))


# ---------------------------------------------------------------- alpha

_ALPHA_G = {
    "saturating": lambda f, a: -alpha_loss_fake(f, a).mean(-1),
    "ns": lambda f, a: alpha_loss_real(f, a).mean(-1),
}


@dataclass(frozen=True, repr=False)
class AlphaLoss(Loss):
    alpha_d: float = 1.0
    alpha_g: float = 1.0
    generator: str = "ns"
    schedule_d: AlphaSchedule | None = None
    schedule_g: AlphaSchedule | None = None
    name = "alpha"
    logistic = True

    @property
    def logit_scale(self):
        # D* = p^aD / (p^aD + q^aD); at aD = inf D* is an indicator, not a log-ratio estimate.
        return self.alpha_d if self.alpha_d != float("inf") else None

    def d_loss(self, real_logits, fake_logits):
        return alpha_loss_real(real_logits, self.alpha_d).mean(-1) + alpha_loss_fake(fake_logits, self.alpha_d).mean(-1)

    def g_loss(self, fake_logits, real_logits=None):
        return _ALPHA_G[self.generator](fake_logits, self.alpha_g)

    def at_step(self, step, total_steps):
        return scheduled_alphas(self, step, total_steps)


def build_alpha(alpha_d=1.0, alpha_g=1.0, generator: str = "ns", schedule=None) -> AlphaLoss:
    a_d, a_g = parse_alpha("alpha_d", alpha_d), parse_alpha("alpha_g", alpha_g)
    generator = parse_choice("loss.generator", generator, GENERATORS)
    sched = parse_schedule(schedule, {"d": a_d, "g": a_g})
    loss = AlphaLoss(a_d, a_g, generator, sched["d"], sched["g"])
    # Warn where the run starts and where it ends (the same pair without a schedule).
    ends = [loss.at_step(0, 1), loss.at_step(1, 1)]
    for pair in dict.fromkeys((x.alpha_d, x.alpha_g) for x in ends):
        warn_outside_region(*pair, generator)
    return loss
