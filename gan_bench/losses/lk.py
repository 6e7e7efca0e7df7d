"""Least k-th order GAN (Bhatia, Paul, Alajaji, Gharesifard, Burlina; Neural Computation 2021).

LSGAN's discriminator in the 0-1 coding of `lsgan` (fake label a = 0, real label b = 1, generator
target c = 1) and the k-th order absolute error as the generator loss, k >= 1:
    D: 1/2 mean (D_r - 1)^2 + 1/2 mean D_f^2        G lk: mean |D_f - 1|^k        G slk: mean |D_f - 1|^k - 1
D(x) is the raw output t (output: raw, as `lsgan`) or sigmoid(t) (output: sigmoid, as the authors'
code, whose D ends in a sigmoid); there every power is taken in log space:
    (1 - D)^k = exp(-k softplus(t)),  D^2 = exp(-2 softplus(-t)).
k = 2 is LSGAN's generator times 2 (no 1/2 in front of the k-th order loss). slk is the shifted
LkGAN (SLkGAN) of Veiner, Alajaji, Gharesifard (Entropy 2024): the same gradients, the value moved
so that it is -E L_k(0, D_f) for the CPE loss L_k(1, y) = 1 - y^k (see lalpha.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gan_bench.losses.base import Loss, expm1, log_1md, log_d, parse_choice, parse_number

VARIANTS = ("lk", "slk")
OUTPUTS = ("raw", "sigmoid")


def parse_k(k) -> float:
    """The order k of the least k-th order loss: k >= 1 (Bhatia et al.'s domain)."""
    return parse_number("loss.k", k, low=1.0, example="2")


@dataclass(frozen=True, repr=False)
class LkGAN(Loss):
    k: float = 2.0
    variant: str = "lk"
    output: str = "raw"
    name = "lkgan"

    @property
    def logistic(self):
        return self.output == "sigmoid"

    @property
    def logit_scale(self):
        # sigmoid: D* = p/(p + q), i.e. t* = log(p/q). raw: t* = p/(p + q) itself, not a log-ratio.
        return 1.0 if self.output == "sigmoid" else None

    def d_loss(self, real_logits, fake_logits):
        if self.output == "sigmoid":
            # (D_r - 1)^2 = (1 - D_r)^2 = exp(2 log(1 - D_r)),  D_f^2 = exp(2 log D_f)
            return 0.5 * torch.exp(2 * log_1md(real_logits)).mean(-1) + 0.5 * torch.exp(2 * log_d(fake_logits)).mean(-1)
        return 0.5 * (real_logits - 1).square().mean(-1) + 0.5 * fake_logits.square().mean(-1)

    def g_loss(self, fake_logits, real_logits=None):
        shift = self.variant == "slk"
        if self.output == "sigmoid":
            x = self.k * log_1md(fake_logits)                       # |D_f - 1|^k = (1 - D_f)^k = exp(x)
            return (expm1(x) if shift else torch.exp(x)).mean(-1)
        g = (fake_logits - 1).abs().pow(self.k).mean(-1)
        return g - 1 if shift else g


def build_lkgan(k=2.0, variant: str = "lk", output: str = "raw") -> LkGAN:
    return LkGAN(parse_k(k), parse_choice("loss.variant", variant, VARIANTS),
                 parse_choice("loss.output", output, OUTPUTS))
