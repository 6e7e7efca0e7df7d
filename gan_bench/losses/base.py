"""What every loss shares: the Loss interface, log-space sigmoids, parameter checks.

Logits t are raw discriminator outputs (positive = real), shape [B] or [K, B] for K replicas.
Every reduction is over the last dim only, so a [K, B] input gives one value per replica.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from gan_bench.errors import UserError

# Below this |beta| the beta -> 0 (alpha = 1) limit is used, as docs/losses.md prescribes.
BETA_EPS = 1e-6


def log_d(t: torch.Tensor) -> torch.Tensor:
    """log D = log sigmoid(t), exact for every t (no clamp, no epsilon)."""
    return -F.softplus(-t)


def log_1md(t: torch.Tensor) -> torch.Tensor:
    """log(1 - D) = log sigmoid(-t)."""
    return -F.softplus(t)


def beta_of(alpha: float) -> float:
    """beta = 1 - 1/alpha; alpha = inf gives beta = 1."""
    return 1.0 - 1.0 / alpha


def log_power_mean(x: torch.Tensor, beta: float, weights: torch.Tensor | None = None) -> torch.Tensor:
    """(1/beta) log sum_i w_i exp(beta x_i) over the last dim (w sums to 1, uniform if None).

    The beta -> 0 limit is sum_i w_i x_i, used when |beta| < BETA_EPS. Renyi-type losses are this
    function of log-probabilities.
    """
    n = x.shape[-1]
    w = weights if weights is not None else x.new_full((n,), 1.0 / n)
    if abs(beta) < BETA_EPS:
        return (w * x).sum(-1)
    z = beta * x
    # logsumexp never overflows, but its rounding error (~eps * |log w|) is divided by beta, which
    # ruins float32 near alpha = 1. There log1p(sum w expm1(z)) keeps relative precision; use it on
    # rows where every |z| <= 1 (no overflow, no cancellation of expm1 -> -1).
    lse = torch.logsumexp(z + w.log(), dim=-1)
    near = z.abs().amax(-1) <= 1.0
    # Zeros in the rows that take the other branch keep that branch's gradient finite under where().
    z_near = torch.where(near.unsqueeze(-1), z, torch.zeros_like(z))
    l1p = torch.log1p((w * torch.expm1(z_near)).sum(-1))
    return torch.where(near, l1p, lse) / beta


class Loss:
    """A GAN objective as pure functions of discriminator logits.

    Subclasses are frozen dataclasses holding hyperparameters; `name` is the registry name.
    """

    name = "loss"
    needs_real_for_g = False    # g_loss uses real logits: the trainer passes D's logits on real data
    logit_scale = None          # t* = logit_scale * log(p/q) at the optimal D; None: not a log-ratio
    logistic = False            # D(x) = sigmoid(t) is a probability (used by `beyond`)

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def at_step(self, step: int, total_steps: int) -> "Loss":
        return self

    def __repr__(self) -> str:
        fields = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                  if getattr(self, f.name) is not None] if dataclasses.is_dataclass(self) else []
        return f"{self.name}({', '.join(fields)})"


def require_real(loss: Loss, real_logits):
    if real_logits is None:
        raise ValueError(f"{loss!r}.g_loss needs real_logits (needs_real_for_g is True): "
                         "pass D's logits on a real minibatch")
    return real_logits


def same_shape(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what} pairs real and fake samples one to one: shapes {tuple(a.shape)} "
                         f"and {tuple(b.shape)} differ; use equal batch sizes")


# ---------------------------------------------------------------- parameter checks (UserError)

def parse_alpha(key: str, value, *, finite: bool = False, zero: bool = False, where: str = "") -> float:
    """A positive order alpha; "inf"/"Infinity" strings and float('inf') are accepted unless finite.

    zero: alpha = 0 is accepted too, for the families whose formula is defined there (renyigan).
    """
    try:
        a = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        a = math.nan
    ok = (a >= 0 if zero else a > 0) and (math.isfinite(a) or not finite)  # NaN fails both
    if not ok:
        sign = "non-negative" if zero else "positive"
        what = f"a finite {sign} number" if finite else f"a {sign} number or inf"
        raise UserError(f"{key} must be {what}{where}, got {value!r}: pass e.g. {key}=0.5")
    return a


def parse_choice(key: str, value, choices) -> str:
    if value not in choices:
        raise UserError(f"{key} must be one of {', '.join(choices)}, got {value!r}: "
                        f"pass e.g. {key}={next(iter(choices))}")
    return value


def parse_number(key: str, value, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, example="1.0") -> float:
    """A finite real number in [low, high] (low excluded if low_open)."""
    try:
        x = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        x = math.nan
    ok = math.isfinite(x) and (low is None or (x > low if low_open else x >= low)) \
        and (high is None or x <= high)
    if not ok:
        lo = "" if low is None else (f" > {low}" if low_open else f" >= {low}")
        hi = "" if high is None else f" <= {high}"
        rng = f"{lo}{' and' if lo and hi else ''}{hi}"
        raise UserError(f"{key} must be a finite number{rng}, got {value!r}: pass e.g. {key}={example}")
    return x


class _Expm1(torch.autograd.Function):
    """expm1 whose gradient is exp(x) itself. torch's expm1 backward takes exp(x) as result + 1,
    which has no relative precision left where exp(x) is below the float epsilon (float32: 6e-8):
    there (1 - D)^k - 1 would train with a gradient off by up to 100%. Twice differentiable."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.expm1(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.exp(x)


def expm1(x: torch.Tensor) -> torch.Tensor:
    """exp(x) - 1, precise in value (near x = 0) and in gradient (for x << 0)."""
    return _Expm1.apply(x)
