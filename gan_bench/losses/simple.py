"""Losses on the raw discriminator output t (not a probability, not a log-ratio).

lsgan (Mao et al., 0-1 coding): D 1/2 mean (t_r - 1)^2 + 1/2 mean t_f^2;  G ns 1/2 mean (t_f - 1)^2,
    G saturating -1/2 mean t_f^2 (minus D's fake term: SankarLab's --ls_gan without --non_saturating)
hinge (Lim & Ye; Miyato et al.): D mean relu(1 - t_r) + mean relu(1 + t_f);  G -mean t_f
wgan (Arjovsky et al.): D mean t_f - mean t_r;  G -mean t_f  (Lipschitz via penalty=gp, Gulrajani et al.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from gan_bench.losses.base import Loss, parse_choice

_LSGAN_G = {
    # The minimax form: G maximizes D's fake term. Unbounded below (|t_f| -> inf); it is what
    # SankarLab's code trains with --ls_gan and no --non_saturating (-LSLoss(D(G(z)), 0)).
    "saturating": lambda f: -0.5 * f.square().mean(-1),
    "ns": lambda f: 0.5 * (f - 1).square().mean(-1),   # Mao et al.: fakes coded as real (target 1)
}


@dataclass(frozen=True, repr=False)
class LSGAN(Loss):
    generator: str = "ns"
    name = "lsgan"

    def d_loss(self, real_logits, fake_logits):
        return 0.5 * (real_logits - 1).square().mean(-1) + 0.5 * fake_logits.square().mean(-1)

    def g_loss(self, fake_logits, real_logits=None):
        return _LSGAN_G[self.generator](fake_logits)


def build_lsgan(generator: str = "ns") -> LSGAN:
    return LSGAN(parse_choice("loss.generator", generator, tuple(_LSGAN_G)))


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
