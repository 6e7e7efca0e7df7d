"""Relativistic discriminators (Jolicoeur-Martineau, "The relativistic discriminator", ICLR 2019).

D estimates how much more real a real sample is than a fake one. With f1 from the variant
(sgan: softplus(-y) = -log sigmoid(y); lsgan: (y - 1)^2; hinge: relu(1 - y)) and raw outputs C:
  rsgan  D: mean f1(C_r - C_f)   (pairs real i with fake i)        G: mean f1(C_f - C_r)
  ragan  D: mean f1(C_r - mean C_f) + mean f1(mean C_r - C_f)
         G: mean f1(C_f - mean C_r) + mean f1(mean C_f - C_r)
sgan gives RSGAN / RaSGAN, lsgan RaLSGAN, hinge RaHingeGAN. Both players see real and fake outputs,
so the generator step needs D's outputs on a real minibatch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from gan_bench.losses.base import Loss, parse_choice, require_real, same_shape

F1 = {
    "sgan": lambda y: F.softplus(-y),
    "lsgan": lambda y: (y - 1).square(),
    "hinge": lambda y: F.relu(1 - y),
}


@dataclass(frozen=True, repr=False)
class RSGAN(Loss):
    variant: str = "sgan"
    name = "rsgan"
    needs_real_for_g = True

    def d_loss(self, real_logits, fake_logits):
        same_shape(real_logits, fake_logits, "rsgan")
        return F1[self.variant](real_logits - fake_logits).mean(-1)

    def g_loss(self, fake_logits, real_logits=None):
        real_logits = require_real(self, real_logits)
        same_shape(real_logits, fake_logits, "rsgan")
        return F1[self.variant](fake_logits - real_logits).mean(-1)


def _ra(f1, a, b):
    """mean f1(a - mean b) + mean f1(mean a - b): a is the side labelled 'more real'."""
    return f1(a - b.mean(-1, keepdim=True)).mean(-1) + f1(a.mean(-1, keepdim=True) - b).mean(-1)


@dataclass(frozen=True, repr=False)
class RaGAN(Loss):
    variant: str = "sgan"
    name = "ragan"
    needs_real_for_g = True

    def d_loss(self, real_logits, fake_logits):
        return _ra(F1[self.variant], real_logits, fake_logits)

    def g_loss(self, fake_logits, real_logits=None):
        return _ra(F1[self.variant], fake_logits, require_real(self, real_logits))


def build_rsgan(variant: str = "sgan") -> RSGAN:
    return RSGAN(parse_choice("loss.variant", variant, tuple(F1)))


def build_ragan(variant: str = "sgan") -> RaGAN:
    return RaGAN(parse_choice("loss.variant", variant, tuple(F1)))
