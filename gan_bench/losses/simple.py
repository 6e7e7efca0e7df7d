"""Losses on the raw discriminator output t (not a probability, not a log-ratio).

lsgan (Mao et al., 0-1 coding): D 1/2 mean (t_r - 1)^2 + 1/2 mean t_f^2;  G 1/2 mean (t_f - 1)^2
hinge (Lim & Ye; Miyato et al.): D mean relu(1 - t_r) + mean relu(1 + t_f);  G -mean t_f
wgan (Arjovsky et al.): D mean t_f - mean t_r;  G -mean t_f  (Lipschitz via penalty=gp, Gulrajani et al.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from gan_bench.losses.base import Loss


@dataclass(frozen=True, repr=False)
class LSGAN(Loss):
    name = "lsgan"

    def d_loss(self, real_logits, fake_logits):
        return 0.5 * (real_logits - 1).square().mean(-1) + 0.5 * fake_logits.square().mean(-1)

    def g_loss(self, fake_logits, real_logits=None):
        return 0.5 * (fake_logits - 1).square().mean(-1)


@dataclass(frozen=True, repr=False)
class Hinge(Loss):
    name = "hinge"

    def d_loss(self, real_logits, fake_logits):
        return F.relu(1 - real_logits).mean(-1) + F.relu(1 + fake_logits).mean(-1)

    def g_loss(self, fake_logits, real_logits=None):
        return -fake_logits.mean(-1)


@dataclass(frozen=True, repr=False)
class WGAN(Loss):
    name = "wgan"

    def d_loss(self, real_logits, fake_logits):
        return fake_logits.mean(-1) - real_logits.mean(-1)

    def g_loss(self, fake_logits, real_logits=None):
        return -fake_logits.mean(-1)
