"""Divergence diagnostics from discriminator logits (Shannon, Poole et al. 2020).

With a log-ratio discriminator t ~ logit_scale * log u (u = p/q), the plug-in estimate of an
f-divergence D_f(p || q) = E_q f(u) is the mean over fakes of f(exp(t_f / logit_scale)).
Every f is written as a function of l = log u, with softplus / expm1 instead of exp where that
avoids overflow; the math runs in float64 on detached logits (a diagnostic, not a loss).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG2 = math.log(2)

# f(u) as functions of l = log u.
F_OF_LOG_U = {
    "kl": lambda l: l.exp() * l,                                            # u log u
    "rkl": lambda l: -l,                                                    # -log u
    # 1/2 [u log(2u/(1+u)) + log(2/(1+u))], with log(2u/(1+u)) = log 2 - softplus(-l)
    "js": lambda l: 0.5 * (l.exp() * (LOG2 - F.softplus(-l)) + LOG2 - F.softplus(l)),
    "hellinger2": lambda l: torch.expm1(l / 2).square(),                    # (sqrt(u) - 1)^2
    "pearson": lambda l: torch.expm1(l).square(),                           # (u - 1)^2
    # f_NS(u) = (1+u) log((1+u)/(2u)) = exp(softplus(l)) * (softplus(-l) - log 2)
    "softened_rkl": lambda l: F.softplus(l).exp() * (F.softplus(-l) - LOG2),
}


def divergence_estimates(fake_logits: torch.Tensor, logit_scale: float) -> dict[str, torch.Tensor]:
    """Plug-in estimates over fakes of kl, rkl, js, hellinger2, pearson, softened_rkl.

    Means over the last dim: scalars for [B] logits, shape [K] for [K, B]. Float64, no gradient.
    """
    if logit_scale is None or not logit_scale > 0 or math.isinf(logit_scale):
        raise ValueError(f"divergence estimates need a log-ratio discriminator (finite logit_scale > 0), "
                         f"got logit_scale={logit_scale!r}")
    log_u = fake_logits.detach().double() / logit_scale
    return {k: f(log_u).mean(-1) for k, f in F_OF_LOG_U.items()}


def saturation_fraction(fake_logits: torch.Tensor, threshold: float = 0.01) -> torch.Tensor:
    """Fraction of fakes with D(G(z)) = sigmoid(t) < threshold (mean over the last dim)."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    return (fake_logits.detach() < math.log(threshold / (1 - threshold))).float().mean(-1)


# ---------------------------------------------------------------- (alpha_D, alpha_G)-GAN theory

def f_alpha_saturating(log_u: torch.Tensor, alpha_d: float, alpha_g: float) -> torch.Tensor:
    """f of the symmetric divergence the saturating (alpha_D, alpha_G) generator minimizes at D*:
    aG/(aG-1) * ((u (u^aD)^(1-1/aG) + 1) / (u^aD + 1)^(1-1/aG) - 2^(1/aG)).
    Singular at alpha_g = 1 (the vanilla-type generator): there (u-1)/beta terms diverge."""
    beta = 1.0 - 1.0 / alpha_g
    if beta == 0:
        raise ValueError("f_alpha_saturating is singular at alpha_g = 1")
    s = F.softplus(alpha_d * log_u)  # log(u^aD + 1)
    num = torch.exp(log_u + alpha_d * beta * log_u - beta * s) + torch.exp(-beta * s)
    return (num - 2.0 ** (1.0 / alpha_g)) / beta


def f_alpha_ns(log_u: torch.Tensor, alpha_d: float, alpha_g: float) -> torch.Tensor:
    """f of the asymmetric divergence the ns (alpha_D, alpha_G) generator minimizes at D*:
    aG/(aG-1) * (2^(1/aG - 1) - u^(aD(1-1/aG)) / (u^aD + 1)^(1-1/aG)); alpha_g = 1 is its limit
    softplus(-aD log u) - log 2."""
    beta = 1.0 - 1.0 / alpha_g
    c = alpha_d * log_u - F.softplus(alpha_d * log_u)  # log D* = log(u^aD / (u^aD + 1))
    if beta == 0:
        return -c - LOG2
    # (2^-beta - exp(beta c)) / beta, via expm1 so it stays accurate near alpha_g = 1
    return (math.expm1(-beta * LOG2) - torch.expm1(beta * c)) / beta
