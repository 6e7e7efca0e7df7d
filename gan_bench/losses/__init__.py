"""GAN objectives as pure functions of discriminator logits, chosen by name (config group `loss`).

    loss = make_loss("alpha", alpha_d=0.3, alpha_g=1.0)
    loss.d_loss(real_logits, fake_logits)  # batch mean; [K, B] logits give shape [K]
    loss.g_loss(fake_logits, real_logits if loss.needs_real_for_g else None)

Formulas: docs/losses.md.
"""

from __future__ import annotations

import inspect

from gan_bench.errors import UserError
from gan_bench.losses.base import Loss
from gan_bench.losses.beyond import build_beyond
from gan_bench.losses.cpe import build_cpe
from gan_bench.losses.custom import build_custom
from gan_bench.losses.diagnostics import divergence_estimates, f_alpha_ns, f_alpha_saturating, saturation_fraction
from gan_bench.losses.fgan import build_fgan
from gan_bench.losses.lalpha import build_lalpha
from gan_bench.losses.lk import build_lkgan
from gan_bench.losses.logistic import ConvergenceRegionWarning, build_alpha, build_bce
from gan_bench.losses.penalties import make_penalty
from gan_bench.losses.relativistic import build_ragan, build_rsgan
from gan_bench.losses.renyi import build_renyi, build_renyigan
from gan_bench.losses.simple import WGAN, Hinge, build_lsgan

# Hydra option name -> builder(**params) -> Loss. Builders validate and raise UserError.
REGISTRY = {
    "bce": build_bce,
    "alpha": build_alpha,
    "renyi": build_renyi,
    "renyigan": build_renyigan,
    "lsgan": build_lsgan,
    "hinge": Hinge,
    "wgan": WGAN,
    "fgan": build_fgan,
    "beyond": build_beyond,
    "rsgan": build_rsgan,
    "ragan": build_ragan,
    "cpe": build_cpe,
    "lkgan": build_lkgan,
    "lalpha": build_lalpha,
    "custom": build_custom,  # a researcher's own, from outside gan-bench (losses/custom.py)
}
# Families whose formula is defined at alpha = 0 (renyigan: 1/(alpha-1) log mean (1 - D)^(alpha-1));
# everywhere else alpha <= 0 is an error.
ALPHA_ZERO_OK = ("renyigan",)
LOSSES = tuple(REGISTRY)


def make_loss(name: str, **params) -> Loss:
    """The loss registered as `name`, built from its config keys."""
    if name not in REGISTRY:
        raise UserError(f"unknown loss {name!r}: choose one of {', '.join(LOSSES)} (loss=<name>)")
    build = REGISTRY[name]
    accepted = inspect.signature(build).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        valid = ", ".join(accepted) or "none"
        raise UserError(f"loss={name} has no parameter {', '.join(unknown)}: its parameters are {valid}")
    return build(**params)


__all__ = ["Loss", "LOSSES", "REGISTRY", "ALPHA_ZERO_OK", "make_loss", "make_penalty", "divergence_estimates",
           "saturation_fraction", "f_alpha_saturating", "f_alpha_ns", "ConvergenceRegionWarning"]
