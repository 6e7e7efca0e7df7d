"""Generator losses beyond divergence minimization (Jolicoeur-Martineau 2018).

Any discriminator loss; the generator minimizes a distance between D's outputs on fakes and a
target: 5 distances x 2 forms x 2 targets = 20 generator losses.
  C = sigmoid(t) when D is logistic (bce, alpha, renyi, renyigan, fgan/gan), else the raw output t.
  distance d(a, b): l2 (a-b)^2 | l1 |a-b| | huber sqrt((a-b)^2+1) - 1 | logl2 (log a - log b)^2 |
                    logl1 |log a - log b|   (log forms need a logistic D: log C = -softplus(-t))
  form: E_d = mean_i d(target_i, C_f_i);  d_E = d(mean target, mean C_f)
  target: real = D's outputs on a fresh real minibatch;  label = the constant yhat
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from gan_bench.errors import UserError
from gan_bench.losses.base import Loss, log_d, parse_choice, parse_number, require_real, same_shape

# Distances act on "views" of C: identity for the plain forms, log C for the log forms, so the
# log forms never take the log of a probability (log C = log sigmoid(t) is computed from t).
DISTANCES = {
    "l2": lambda a, b: (a - b).square(),
    "l1": lambda a, b: (a - b).abs(),
    "huber": lambda a, b: torch.sqrt((a - b).square() + 1) - 1,
    "logl2": lambda a, b: (a - b).square(),
    "logl1": lambda a, b: (a - b).abs(),
}
LOG_DISTANCES = ("logl2", "logl1")
FORMS = ("E_d", "d_E")
TARGETS = ("real", "label")


def _mean_log(logc: torch.Tensor) -> torch.Tensor:
    """log of mean C over the last dim, from log C."""
    return torch.logsumexp(logc, dim=-1) - math.log(logc.shape[-1])


@dataclass(frozen=True, repr=False)
class Beyond(Loss):
    discriminator: Loss
    distance: str = "l2"
    form: str = "E_d"
    target: str = "real"
    yhat: float = 1.0
    name = "beyond"

    @property
    def needs_real_for_g(self):
        return self.target == "real"

    @property
    def logit_scale(self):
        return self.discriminator.logit_scale

    @property
    def logistic(self):
        return self.discriminator.logistic

    def d_loss(self, real_logits, fake_logits):
        return self.discriminator.d_loss(real_logits, fake_logits)

    def g_loss(self, fake_logits, real_logits=None):
        log_view = self.distance in LOG_DISTANCES
        view = log_d if log_view else (torch.sigmoid if self.logistic else (lambda t: t))
        c_f = view(fake_logits)
        if self.target == "real":
            real_logits = require_real(self, real_logits)
            if self.form == "E_d":
                same_shape(real_logits, fake_logits, "beyond with form=E_d and target=real")
            c_r = view(real_logits)
        else:
            c_r = torch.full_like(c_f, math.log(self.yhat) if log_view else self.yhat)
        d = DISTANCES[self.distance]
        if self.form == "E_d":
            return d(c_r, c_f).mean(-1)
        pool = _mean_log if log_view else (lambda c: c.mean(-1))
        return d(pool(c_r), pool(c_f))

    def at_step(self, step, total_steps):
        inner = self.discriminator.at_step(step, total_steps)
        return self if inner is self.discriminator else dataclasses.replace(self, discriminator=inner)


def build_beyond(discriminator: str = "bce", discriminator_params=None, distance: str = "l2",
                 form: str = "E_d", target: str = "real", yhat=1.0) -> Beyond:
    from gan_bench.losses import make_loss  # the registry imports this module

    if discriminator == "beyond":
        raise UserError("loss.discriminator cannot be beyond itself: pass e.g. loss.discriminator=bce")
    d = make_loss(discriminator, **dict(discriminator_params or {}))
    distance = parse_choice("loss.distance", distance, tuple(DISTANCES))
    form = parse_choice("loss.form", form, FORMS)
    target = parse_choice("loss.target", target, TARGETS)
    log_view = distance in LOG_DISTANCES
    if log_view and not d.logistic:
        raise UserError(f"loss.distance={distance} needs a logistic discriminator (bce, alpha, renyi, "
                        f"renyigan, fgan with divergence=gan), got {discriminator}: use loss.distance=l2")
    yhat = parse_number("loss.yhat", yhat, low=0.0 if log_view else None, low_open=True, example="1.0")
    return Beyond(d, distance, form, target, yhat)
