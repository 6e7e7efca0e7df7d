"""Renyi-type objectives.

renyi: alpha-GAN by Renyi cross entropy (Ding, Qiao, Xu, Ke, Zhang). With beta = 1 - 1/alpha,
    V = (1/beta) log( 1/2 mean_r D(t_r)^beta + 1/2 mean_f (1 - D(t_f))^beta ),
D maximizes V, G minimizes V (saturating, the paper's). alpha -> 1: V = 1/2 (mean log D_r + mean log(1-D_f)).
Optimal D as for alpha-loss: t* = alpha log(p/q).

renyigan: Renyi generator loss (Bhatia, Paul, Alajaji, Gharesifard, Burlina). D is BCE;
    G = 1/(alpha-1) log mean (1 - D_f)^(alpha-1)    (exponent alpha-1, not (alpha-1)/alpha),
defined for every alpha >= 0 (alpha = 0: -log mean 1/(1 - D_f), where their varying-alpha runs
start). alpha = 1: the limit mean log(1 - D_f) by default (alpha_one: limit); their static script
runs the ns generator -mean log D_f there instead (alpha_one: ns). Variant l1: |G + log 2|.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gan_bench.errors import UserError
from gan_bench.losses.base import Loss, beta_of, log_1md, log_d, log_power_mean, parse_alpha, parse_choice, require_real
from gan_bench.losses.schedule import AlphaSchedule, parse_schedule


class _AlphaScheduled:
    """at_step for single-order families holding `alpha` and `schedule`."""

    def at_step(self, step, total_steps):
        if self.schedule is None:
            return self
        return dataclasses.replace(self, alpha=self.schedule(step, total_steps))


# ---------------------------------------------------------------- renyi

def renyi_value(real_logits: torch.Tensor, fake_logits: torch.Tensor, alpha: float) -> torch.Tensor:
    """V over the last dim; real and fake may have different batch sizes (weights 1/(2 m))."""
    m_r, m_f = real_logits.shape[-1], fake_logits.shape[-1]
    x = torch.cat([log_d(real_logits), log_1md(fake_logits)], dim=-1)
    w = torch.cat([x.new_full((m_r,), 0.5 / m_r), x.new_full((m_f,), 0.5 / m_f)])
    return log_power_mean(x, beta_of(alpha), w)


_RENYI_G = {
    # The paper's generator minimizes V itself: the real term only rescales the gradient (1/S).
    "saturating": lambda loss, f, r: renyi_value(require_real(loss, r), f, loss.alpha),
    # Extension, not in the paper: the fake batch labelled real, -(1/beta) log mean D_f^beta
    # (alpha = 1: the ns BCE generator, mean softplus(-t_f)).
    "ns": lambda loss, f, r: -log_power_mean(log_d(f), beta_of(loss.alpha)),
}


@dataclass(frozen=True, repr=False)
class Renyi(_AlphaScheduled, Loss):
    alpha: float = 1.0
    generator: str = "saturating"
    schedule: AlphaSchedule | None = None
    name = "renyi"
    logistic = True

    @property
    def logit_scale(self):
        return self.alpha

    @property
    def needs_real_for_g(self):
        return self.generator == "saturating"

    def d_loss(self, real_logits, fake_logits):
        return -renyi_value(real_logits, fake_logits, self.alpha)

    def g_loss(self, fake_logits, real_logits=None):
        return _RENYI_G[self.generator](self, fake_logits, real_logits)


def build_renyi(alpha=1.0, generator: str = "saturating", schedule=None) -> Renyi:
    where = " for loss=renyi (use loss=alpha for alpha=inf)"
    a = parse_alpha("alpha", alpha, finite=True, where=where)
    generator = parse_choice("loss.generator", generator, tuple(_RENYI_G))
    return Renyi(a, generator, parse_schedule(schedule, {"alpha": a}, finite=True)["alpha"])


# ---------------------------------------------------------------- renyigan

_RENYIGAN_G = {
    "plain": lambda g: g,
    "l1": lambda g: (g + math.log(2)).abs(),  # |G + log 2|: zero at D = 1/2, the equilibrium value
}
ALPHA_ONE = ("limit", "ns")


@dataclass(frozen=True, repr=False)
class RenyiGAN(_AlphaScheduled, Loss):
    alpha: float = 1.0
    variant: str = "plain"
    schedule: AlphaSchedule | None = None
    alpha_one: str = "limit"
    name = "renyigan"
    logit_scale = 1.0  # D is BCE
    logistic = True

    def d_loss(self, real_logits, fake_logits):
        return F.softplus(-real_logits).mean(-1) + F.softplus(fake_logits).mean(-1)

    def g_loss(self, fake_logits, real_logits=None):
        if self.alpha == 1.0 and self.alpha_one == "ns":
            # renyigan_static_alpha.py at alpha = 1 trains DCGAN: the ns generator -mean log D_f.
            return F.softplus(-fake_logits).mean(-1)
        # 1/(alpha-1) log mean exp((alpha-1) log(1-D_f)): a power mean of order alpha-1.
        return _RENYIGAN_G[self.variant](log_power_mean(log_1md(fake_logits), self.alpha - 1.0))


def build_renyigan(alpha=1.0, variant: str = "plain", schedule=None, alpha_one: str = "limit") -> RenyiGAN:
    a = parse_alpha("alpha", alpha, finite=True, zero=True, where=" for loss=renyigan")
    variant = parse_choice("loss.variant", variant, tuple(_RENYIGAN_G))
    alpha_one = parse_choice("loss.alpha_one", alpha_one, ALPHA_ONE)
    if alpha_one == "ns" and variant == "l1":
        raise UserError("loss.alpha_one=ns is the static script's plain generator at alpha = 1; with "
                        "variant=l1 that script uses the limit |mean log(1 - D_f) + log 2|: "
                        "use loss.alpha_one=limit")
    sched = parse_schedule(schedule, {"alpha": a}, finite=True, zero=True)["alpha"]
    return RenyiGAN(a, variant, sched, alpha_one)
