"""f-GAN: variational f-divergence minimization (Nowozin, Cseke, Tomioka 2016).

D maximizes E_p[g(t)] - E_q[f*(g(t))] with output activation g and convex conjugate f*.
G minimizes -E_q[f*(g(t_f))] (saturating) or -E_q[g(t_f)] (ns, the paper's practical choice).
Each f*(g(v)) is written in closed form so nothing overflows or takes the log of a non-positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from gan_bench.losses.base import Loss, parse_choice
from gan_bench.losses.logistic import GENERATORS

LOG2 = math.log(2)


class Divergence(NamedTuple):
    g: Callable            # output activation g(v)
    fstar_g: Callable      # f*(g(v))
    logit_scale: float | None  # v* = g^-1(f'(u)) = logit_scale * log u, None if not of that form


DIVERGENCES = {
    # KL: g = v, f*(s) = exp(s - 1); v* = 1 + log u (shifted, so no logit_scale)
    "kl": Divergence(lambda v: v, lambda v: torch.exp(v - 1), None),
    # reverse KL: g = -exp(-v), f*(s) = -1 - log(-s)  =>  f*(g(v)) = v - 1; v* = log u
    "rkl": Divergence(lambda v: -torch.exp(-v), lambda v: v - 1, 1.0),
    # Pearson chi2: g = v, f*(s) = s^2/4 + s; v* = 2(u - 1)
    "pearson": Divergence(lambda v: v, lambda v: v.square() / 4 + v, None),
    # squared Hellinger: g = 1 - exp(-v), f*(s) = s/(1 - s)  =>  exp(v) - 1; v* = log(u)/2
    "hellinger": Divergence(lambda v: -torch.expm1(-v), torch.expm1, 0.5),
    # Jensen-Shannon: g = log 2 - softplus(-v), f*(s) = -log(2 - exp(s))  =>  softplus(v) - log 2
    "js": Divergence(lambda v: LOG2 - F.softplus(-v), lambda v: F.softplus(v) - LOG2, 1.0),
    # GAN: g = -softplus(-v), f*(s) = -log(1 - exp(s))  =>  softplus(v): exactly bce
    "gan": Divergence(lambda v: -F.softplus(-v), F.softplus, 1.0),
}

_G = {
    "saturating": lambda div, f: -div.fstar_g(f).mean(-1),
    "ns": lambda div, f: -div.g(f).mean(-1),
}


@dataclass(frozen=True, repr=False)
class FGAN(Loss):
    divergence: str = "kl"
    generator: str = "ns"
    name = "fgan"

    @property
    def logit_scale(self):
        return DIVERGENCES[self.divergence].logit_scale

    @property
    def logistic(self):
        return self.divergence == "gan"  # g(v) = log sigmoid(v): D = sigmoid(v)

    def d_loss(self, real_logits, fake_logits):
        div = DIVERGENCES[self.divergence]
        return -div.g(real_logits).mean(-1) + div.fstar_g(fake_logits).mean(-1)

    def g_loss(self, fake_logits, real_logits=None):
        return _G[self.generator](DIVERGENCES[self.divergence], fake_logits)


def build_fgan(divergence: str = "kl", generator: str = "ns") -> FGAN:
    return FGAN(parse_choice("loss.divergence", divergence, tuple(DIVERGENCES)),
                parse_choice("loss.generator", generator, GENERATORS))
