"""CPE-loss GANs and their dual objectives (Welfert, Kurri, Otstot, Sankar; JSAIT 2024).

A class probability estimation (CPE) loss l(y, D) scores the probability D = sigmoid(t) that the
discriminator gives to the label y (1 real, 0 fake). Its value function is
    V_l(G, D) = -E_p l(1, D(x)) - E_q l(0, D(x)).
Each player has its own loss: D maximizes V_{l_D}; G minimizes V_{l_G} (saturating: its fake term
-E_q l_G(0, D)) or E_q l_G(1, D) (ns). Every loss here is symmetric, l(0, t) = l(1, -t), and is
written as a function of the logit t in log space:
    log          l(1, t) = -log D                 = softplus(-t)
    alpha        l(1, t) = a/(a-1) (1 - D^(1-1/a)) (Sypherd et al.; order alpha_d for D, alpha_g for G)
    squared      l(1, t) = (1 - D)^2              = exp(-2 softplus(t))      (Brier)
    exponential  l(1, t) = sqrt((1 - D)/D)        = exp(-t/2)                (boosting)
The optimal D of l_D is t* = s log u (u = p/q) with s = alpha_d for alpha and 1 for the others,
which are proper (D* = p/(p+q)). At D* the generator's objective is E_q f(u) + const, with f from
`f_at_optimum`; docs/losses.md has each f in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gan_bench.errors import UserError
from gan_bench.losses.base import Loss, parse_alpha, parse_choice
from gan_bench.losses.logistic import GENERATORS, alpha_loss_real, warn_outside_region
from gan_bench.losses.schedule import AlphaSchedule, parse_schedule, scheduled_alphas

# l(1, t) of each loss, elementwise; `a` is the player's order (used by alpha only).
PARTIAL = {
    "log": lambda t, a: F.softplus(-t),
    "alpha": alpha_loss_real,
    "squared": lambda t, a: torch.exp(-2 * F.softplus(t)),
    "exponential": lambda t, a: torch.exp(-t / 2),
}
CPE_LOSSES = tuple(PARTIAL)


def cpe_loss(name: str, t: torch.Tensor, label: int, alpha: float | None = None) -> torch.Tensor:
    """l(label, t) of the CPE loss `name`, elementwise (label 1: real, 0: fake)."""
    return PARTIAL[name](t if label == 1 else -t, alpha)


@dataclass(frozen=True, repr=False)
class CPE(Loss):
    loss_d: str = "log"
    loss_g: str = "log"
    alpha_d: float | None = None   # None where that player's loss is not alpha
    alpha_g: float | None = None
    generator: str = "ns"
    schedule_d: AlphaSchedule | None = None
    schedule_g: AlphaSchedule | None = None
    name = "cpe"
    logistic = True

    @property
    def logit_scale(self):
        if self.loss_d != "alpha":
            return 1.0
        return self.alpha_d if self.alpha_d != float("inf") else None  # aD = inf: D* is an indicator

    def d_loss(self, real_logits, fake_logits):
        return (cpe_loss(self.loss_d, real_logits, 1, self.alpha_d).mean(-1)
                + cpe_loss(self.loss_d, fake_logits, 0, self.alpha_d).mean(-1))

    def g_loss(self, fake_logits, real_logits=None):
        if self.generator == "saturating":
            return -cpe_loss(self.loss_g, fake_logits, 0, self.alpha_g).mean(-1)
        return cpe_loss(self.loss_g, fake_logits, 1, self.alpha_g).mean(-1)

    def at_step(self, step, total_steps):
        return scheduled_alphas(self, step, total_steps)

    def f_at_optimum(self, log_u: torch.Tensor) -> torch.Tensor:
        """f(u), from log u, with the generator's objective at D* of l_D equal to E_q f(u) + const.

        saturating: V_{l_G}(G, D*) = E_q[-u l_G(1, t*) - l_G(0, t*)], written with f(1) = f'(1) = 0:
            f(u) = (1 + u) l_G(1, 0) - u l_G(1, t*) - l_G(1, -t*),   const = -2 l_G(1, 0);
        ns: E_q l_G(1, t*), with f(u) = l_G(1, t*) - l_G(1, 0),      const = l_G(1, 0).
        With t* = s log u and l_G symmetric, the saturating f is symmetric: u f(1/u) = f(u).
        """
        s = self.logit_scale
        if s is None:
            raise ValueError("f_at_optimum needs a finite alpha_d: at alpha_d = inf D* is not a log-ratio")
        t = s * log_u
        l0 = float(cpe_loss(self.loss_g, torch.zeros((), dtype=torch.float64), 1, self.alpha_g))
        if self.generator == "ns":
            return cpe_loss(self.loss_g, t, 1, self.alpha_g) - l0
        u = log_u.exp()
        return (1 + u) * l0 - u * cpe_loss(self.loss_g, t, 1, self.alpha_g) - cpe_loss(self.loss_g, t, 0, self.alpha_g)

    def value_at_half(self) -> float:
        """The constant in f_at_optimum: the generator's objective at P_g = P_r (D* = 1/2)."""
        l0 = float(cpe_loss(self.loss_g, torch.zeros((), dtype=torch.float64), 1, self.alpha_g))
        return l0 if self.generator == "ns" else -2 * l0


def build_cpe(loss_d: str = "log", loss_g: str = "log", alpha_d=1.0, alpha_g=1.0,
              generator: str = "ns", schedule=None) -> CPE:
    loss_d = parse_choice("loss.loss_d", loss_d, CPE_LOSSES)
    loss_g = parse_choice("loss.loss_g", loss_g, CPE_LOSSES)
    a_d = parse_alpha("alpha_d", alpha_d) if loss_d == "alpha" else None
    a_g = parse_alpha("alpha_g", alpha_g) if loss_g == "alpha" else None
    generator = parse_choice("loss.generator", generator, GENERATORS)
    ordered = {k: a for k, a in (("d", a_d), ("g", a_g)) if a is not None}
    if schedule is not None and not ordered:
        raise UserError("loss.schedule moves an alpha, but neither loss_d nor loss_g is alpha: "
                        "set loss.loss_d=alpha or loss.loss_g=alpha, or loss.schedule=null")
    sched = parse_schedule(schedule, ordered)
    loss = CPE(loss_d, loss_g, a_d, a_g, generator, sched.get("d"), sched.get("g"))
    # The (alpha_D, alpha_G) convergence regions cover pairs of alpha-losses (log is alpha = 1).
    if {loss_d, loss_g} <= {"alpha", "log"}:
        ends = [loss.at_step(0, 1), loss.at_step(1, 1)]
        for pair in dict.fromkeys((1.0 if x.alpha_d is None else x.alpha_d,
                                   1.0 if x.alpha_g is None else x.alpha_g) for x in ends):
            warn_outside_region(*pair, generator)
    return loss

