"""L_alpha-GAN (Veiner, Alajaji, Gharesifard, "A unifying generator loss function for GANs",
Entropy 2024, arXiv 2308.07233).

The classical (BCE) discriminator and a generator built from a symmetric CPE loss L, L(0, y) = L(1, 1 - y):
the generator minimizes -E_p L(1, D(x)) - E_q L(0, D(G(z))), whose generator-dependent part is
    G: -mean L(0, D_f).
At the optimal D* = p/(p + q) that objective is 2 J_f(P_r, P_g) - 2 L(1, 1/2), with the Jensen-f
divergence J_f(P, Q) = 1/2 D_f(P || M) + 1/2 D_f(Q || M), M = (P + Q)/2, f(u) = -u L(1, u/2) (up to
a + b u). `family` chooses L (D = sigmoid(t), computed from logits in log space):
    alpha: alpha-loss, L(1, y) = alpha/(alpha - 1) (1 - y^(1 - 1/alpha)), alpha in (0, inf]:
           G = mean expm1(-beta softplus(t_f))/beta, beta = 1 - 1/alpha. This is the saturating
           (alpha_D, alpha_G)-GAN with alpha_D = 1, alpha_G = alpha; alpha = 1 (beta -> 0) is the vanilla
           minimax generator -mean softplus(t_f) = mean log(1 - D_f); alpha = inf is 1 - D (k = 1 below).
    k:     L_k(1, y) = 1 - y^k, k >= 1: G = mean expm1(-k softplus(t_f)) = mean (1 - D_f)^k - 1, the
           shifted LkGAN (SLkGAN); k = 2 is LSGAN's generator (on D = sigmoid(t)) times 2, minus 1.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch.nn.functional as F

from gan_bench.losses.base import BETA_EPS, Loss, beta_of, expm1, log_1md, parse_alpha, parse_choice
from gan_bench.losses.lk import parse_k
from gan_bench.losses.logistic import ConvergenceRegionWarning

FAMILIES = ("alpha", "k")


@dataclass(frozen=True, repr=False)
class LAlpha(Loss):
    family: str = "alpha"
    alpha: float = 1.0
    k: float = 2.0
    name = "lalpha"
    logit_scale = 1.0  # D is BCE: t* = log(p/q)
    logistic = True

    def d_loss(self, real_logits, fake_logits):
        return F.softplus(-real_logits).mean(-1) + F.softplus(fake_logits).mean(-1)

    def g_loss(self, fake_logits, real_logits=None):
        if self.family == "k":
            return expm1(self.k * log_1md(fake_logits)).mean(-1)          # (1 - D_f)^k - 1
        # -L_alpha(0, D_f) = ((1 - D_f)^beta - 1)/beta: the value of loss=alpha's -l_alpha(0, t), with
        # a gradient -(1 - D_f)^beta D_f that keeps float32 precision as D_f -> 1.
        beta = beta_of(self.alpha)
        if abs(beta) < BETA_EPS:
            return -F.softplus(fake_logits).mean(-1)
        return (expm1(beta * log_1md(fake_logits)) / beta).mean(-1)


def build_lalpha(family: str = "alpha", alpha=1.0, k=2.0) -> LAlpha:
    family = parse_choice("loss.family", family, FAMILIES)
    a = parse_alpha("alpha", alpha, where=" for loss=lalpha")
    kk = parse_k(k)
    if family == "alpha" and a <= 0.5:
        # f(u) = -u L_alpha(1, u/2) has f'' = 2^(-beta) (1 + beta) u^(beta - 1): convex only for
        # alpha >= 1/2 (linear at 1/2, where the objective at D* no longer depends on G). The
        # (1, alpha)-GAN's proven region says the same: alpha_G > alpha_D/(alpha_D + 1) = 1/2.
        warnings.warn(f"loss=lalpha with alpha = {a:g} <= 1/2: the generator's objective at the optimal D "
                      "is not a divergence there (f_alpha is not strictly convex); training anyway",
                      ConvergenceRegionWarning, stacklevel=3)
    return LAlpha(family, a, kk)
