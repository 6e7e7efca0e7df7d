"""Generator losses beyond divergence minimization (Jolicoeur-Martineau 2018).

Any discriminator loss; the generator minimizes a distance between D's outputs on fakes and a
target: 5 distances x 2 forms x 2 targets = 20 generator losses.
  C = sigmoid(t) when D is logistic (bce, alpha, renyi, renyigan, fgan/gan, cpe), else the raw output t.
  distance d(a, b): l2 (a-b)^2 | l1 |a-b| | huber sqrt((a-b)^2+1) - 1 | logl2 (log a - log b)^2 |
                    logl1 |log a - log b|   (log forms need a logistic D: log C = -softplus(-t))
  form: E_d = mean_i d(target_i, C_f_i);  d_E = d(mean target, mean C_f), where for the log
        distances "mean" is the mean of log C (the authors' loss_G 15, 16, 19, 20);
        d_E_logmean (extension, log distances only) = d(log mean target, log mean C_f)
  target: real = D's outputs on a fresh real minibatch;  label = the constant yhat

Precision: a probability C is carried with its complement 1 - C, each computed from its own log
(exp(-softplus(-t)), exp(-softplus(t))), and a - b is taken from the complements where a + b > 1.
torch.sigmoid would round 1 - C near 1 (float32: 17% off at t = 15, zero from t ~ 17), and with it
the gradient, which every distance here multiplies by 1 - C.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from gan_bench.errors import UserError
from gan_bench.losses.base import Loss, log_1md, log_d, parse_choice, parse_number, require_real, same_shape

# Distances as functions of the difference of the two sides (of C, or of log C for the log forms).
DISTANCES = {
    "l2": torch.square,
    "l1": torch.abs,
    # sqrt(x^2 + 1) - 1 without the cancellation that rounds it to 0 in float32 for |x| < 3e-4
    "huber": lambda x: x.square() / (torch.sqrt(x.square() + 1) + 1),
    "logl2": torch.square,
    "logl1": torch.abs,
}
LOG_DISTANCES = ("logl2", "logl1")
FORMS = ("E_d", "d_E", "d_E_logmean")
TARGETS = ("real", "label")


def _log_mean_exp(x: torch.Tensor) -> torch.Tensor:
    """log of mean C over the last dim, from log C."""
    return torch.logsumexp(x, dim=-1) - math.log(x.shape[-1])


def _prob(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, 1 - C) for C = sigmoid(t), each from its log, so neither rounds away the other's tail."""
    return torch.exp(log_d(t)), torch.exp(log_1md(t))


def _prob_diff(a, b) -> torch.Tensor:
    """a - b for probabilities given as (C, 1 - C): near 1 the complements hold the digits."""
    return torch.where(a[0] + b[0] > 1, b[1] - a[1], a[0] - b[0])


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
        real = self.target == "real"
        if real:
            real_logits = require_real(self, real_logits)
            if self.form == "E_d":
                same_shape(real_logits, fake_logits, "beyond with form=E_d and target=real")
        pooled = self.form != "E_d"
        if self.distance in LOG_DISTANCES:
            f = log_d(fake_logits)
            r = log_d(real_logits) if real else torch.full_like(f, math.log(self.yhat))
            if pooled:
                pool = _log_mean_exp if self.form == "d_E_logmean" else (lambda x: x.mean(-1))
                r, f = pool(r), pool(f)
            diff = r - f
        elif self.logistic:
            f = _prob(fake_logits)
            r = _prob(real_logits) if real else (torch.full_like(f[0], self.yhat),
                                                 torch.full_like(f[0], 1 - self.yhat))
            if pooled:
                r, f = tuple(x.mean(-1) for x in r), tuple(x.mean(-1) for x in f)
            diff = _prob_diff(r, f)
        else:
            f = fake_logits
            r = real_logits if real else torch.full_like(f, self.yhat)
            diff = r.mean(-1) - f.mean(-1) if pooled else r - f
        d = DISTANCES[self.distance](diff)
        return d if pooled else d.mean(-1)

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
    if form == "d_E_logmean" and not log_view:
        raise UserError(f"loss.form=d_E_logmean (the log of the mean of C) needs a log distance, got "
                        f"loss.distance={distance}: use loss.form=d_E or loss.distance=logl2|logl1")
    if log_view and not d.logistic:
        raise UserError(f"loss.distance={distance} needs a logistic discriminator (bce, alpha, renyi, "
                        f"renyigan, cpe, fgan with divergence=gan), got {discriminator}: use loss.distance=l2")
    yhat = parse_number("loss.yhat", yhat, low=0.0 if log_view else None, low_open=True, example="1.0")
    return Beyond(d, distance, form, target, yhat)
