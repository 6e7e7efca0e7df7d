"""Gradient penalties on the discriminator, chosen independently of the loss (config group `penalty`).

  gp (Gulrajani et al. 2017): weight * mean (||grad_x t(x_hat)|| - 1)^2,
      x_hat = eps * real + (1 - eps) * fake, one eps ~ U[0, 1] per sample; default weight 10.
  r1 (Mescheder et al. 2018): weight * mean ||grad_x t(x_real)||^2; default weight 5 as in
      RenyiGAN's code (Mescheder's gamma/2 convention is weight = gamma/2).
  r1r2 (R3GAN, Huang et al. NeurIPS 2024): weight * (mean ||grad_x t(x_real)||^2
      + mean ||grad_x t(x_fake)||^2), R3GAN's (gamma/2)(R1 + R2) with weight = gamma/2; default
      weight 0.025 (gamma = 0.05, R3GAN's CIFAR-10 preset).
Norms are over all non-batch dims, of the gradient of the raw logit t. create_graph=True so the
penalty backpropagates into D's parameters.

A penalty is called as penalty(D, real, fake, generator=None, batch_dims=1) -> scalar. For an
ensemble whose D maps [K, B, ...] to [K, B], pass batch_dims=2: the per-replica means are summed,
as the trainer sums losses over replicas. Each replica needs its own input rows: if D broadcast one
[B, ...] batch to [K, B] outputs, the gradient of the summed logits would mix replicas. With
batch_dims=2, `generator` may be a list of K generators, one per replica: replica i then draws
exactly what a single run seeded like it draws.

r1 and r1r2 take a `schedule` (config `penalty.schedule`, default null = constant weight):
{kind: cosine, end: <final weight>, steps: <N>} moves the weight from `weight` to `end` over the
first N steps (generator iterations) on a cosine, then holds it, as R3GAN decays gamma
(gan_bench/schedules.py). The trainer calls `penalty.at_step(step)` once a step: a pure function of
the step, so a resumed run is bit-identical to one never interrupted.

Every penalty takes `every` (config `+penalty.every=N`, default 1): lazy regularization (StyleGAN2's
rule), the penalty on every N-th D step only, with its weight times N so its average pull is the
same; `lazy(d_step)` is that decision. N = 1 is every step, with the weight as given (bit for bit).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from gan_bench.errors import UserError
from gan_bench.losses.base import parse_number
from gan_bench.schedules import Cosine, check_keys, parse_steps


def _input_grads(D, x: torch.Tensor, batch_dims: int) -> torch.Tensor:
    """grad_x of D's logits, flattened to [*batch, features]; graph kept for the backward pass."""
    t = D(x)
    if t.ndim == batch_dims + 1 and t.shape[-1] == 1:
        t = t.squeeze(-1)
    if t.shape != x.shape[:batch_dims]:
        raise ValueError(f"penalty: D maps input {tuple(x.shape)} to {tuple(t.shape)}, expected "
                         f"{tuple(x.shape[:batch_dims])} (one logit per sample, batch_dims={batch_dims})")
    (g,) = torch.autograd.grad(t.sum(), x, create_graph=True)
    return g.flatten(batch_dims)


class _Lazy:
    """every: apply on every N-th D step (counted from 0), scaled by N."""

    def lazy(self, d_step: int):
        if self.every == 1:
            return self
        return dataclasses.replace(self, weight=self.weight * self.every) if d_step % self.every == 0 else None


@dataclass(frozen=True)
class GradientPenalty(_Lazy):
    weight: float = 10.0
    every: int = 1

    def at_step(self, step: int):
        return self

    def __call__(self, D, real, fake, generator=None, batch_dims: int = 1):
        shape = real.shape[:batch_dims]
        if isinstance(generator, (list, tuple)):  # one stream per replica (leading dim)
            if batch_dims != 2 or len(generator) != shape[0]:
                raise ValueError(f"penalty: {len(generator)} generators for input {tuple(real.shape)} "
                                 f"with batch_dims={batch_dims}: give one per replica and batch_dims=2")
            eps = torch.stack([torch.rand(shape[1:], generator=g, device=real.device, dtype=real.dtype)
                               for g in generator])
        else:
            eps = torch.rand(shape, generator=generator, device=real.device, dtype=real.dtype)
        eps = eps.reshape(*shape, *([1] * (real.ndim - batch_dims)))
        x = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
        norms = _input_grads(D, x, batch_dims).norm(dim=-1)
        return self.weight * (norms - 1).square().mean(-1).sum()


class _Scheduled(_Lazy):
    """at_step for penalties whose weight may follow a schedule (r1, r1r2)."""

    def at_step(self, step: int):
        if self.schedule is None:
            return self
        return dataclasses.replace(self, weight=self.schedule(step))


def _squared_grad_norms(D, x, batch_dims: int) -> torch.Tensor:
    """Mean over the batch of ||grad_x t(x)||^2, per replica: shape x.shape[:batch_dims - 1]."""
    x = x.detach().requires_grad_(True)
    return _input_grads(D, x, batch_dims).square().sum(-1).mean(-1)


@dataclass(frozen=True)
class R1Penalty(_Scheduled):
    weight: float = 5.0
    schedule: Cosine | None = None
    every: int = 1

    def __call__(self, D, real, fake=None, generator=None, batch_dims: int = 1):
        return self.weight * _squared_grad_norms(D, real, batch_dims).sum()


@dataclass(frozen=True)
class R1R2Penalty(_Scheduled):
    """R3GAN's zero-centred penalties on both sides. Two forward passes of D (real, then fake), not
    one on the concatenation, so a BatchNorm D would at least not mix real with fake rows."""
    weight: float = 0.025
    schedule: Cosine | None = None
    every: int = 1

    def __call__(self, D, real, fake, generator=None, batch_dims: int = 1):
        return self.weight * (_squared_grad_norms(D, real, batch_dims)
                              + _squared_grad_norms(D, fake, batch_dims)).sum()


PENALTIES = {"none": None, "gp": GradientPenalty, "r1": R1Penalty, "r1r2": R1R2Penalty}


def _schedule(name: str, spec, start: float) -> Cosine | None:
    if spec is None:
        return None
    if name not in ("r1", "r1r2"):
        raise UserError(f"penalty.schedule is for penalty=r1|r1r2, not penalty={name}: "
                        "leave it null or choose penalty=r1r2")
    spec = check_keys("penalty.schedule", spec, {"kind", "end", "steps"}, "{kind:cosine,end:0.1,steps:10000}")
    if "end" not in spec or "steps" not in spec:
        raise UserError("penalty.schedule needs end (the final weight) and steps: "
                        "pass e.g. 'penalty.schedule={kind:cosine,end:0.1,steps:10000}'")
    end = parse_number("penalty.schedule.end", spec["end"], low=0.0, example="0.1")
    return Cosine(start, end, parse_steps("penalty.schedule.steps", spec["steps"]))


def _every(every) -> int:
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise UserError(f"penalty.every must be a positive integer (1: every D step; N: every N-th, weight "
                        f"times N), got {every!r}: pass e.g. +penalty.every=4")
    return every


def make_penalty(name: str, weight=None, schedule=None, every=1):
    """The penalty callable for `name`, or None for 'none' (the trainer then skips it)."""
    if name not in PENALTIES:
        raise UserError(f"unknown penalty {name!r}: choose one of {', '.join(PENALTIES)} (penalty=<name>)")
    cls = PENALTIES[name]
    if cls is None:
        if schedule is not None or every != 1:
            raise UserError("penalty.schedule and penalty.every need a penalty: choose penalty=r1, r1r2 or gp")
        return None
    w = cls.weight if weight is None else parse_number("penalty.weight", weight, low=0.0, example=str(cls.weight))
    sched, n = _schedule(name, schedule, w), _every(every)
    return cls(w, every=n) if sched is None else cls(w, sched, every=n)
