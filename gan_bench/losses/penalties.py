"""Gradient penalties on the discriminator, chosen independently of the loss (config group `penalty`).

  gp (Gulrajani et al. 2017): weight * mean (||grad_x t(x_hat)|| - 1)^2,
      x_hat = eps * real + (1 - eps) * fake, one eps ~ U[0, 1] per sample; default weight 10.
  r1 (Mescheder et al. 2018): weight * mean ||grad_x t(x_real)||^2; default weight 5 as in
      RenyiGAN's code (Mescheder's gamma/2 convention is weight = gamma/2).
Norms are over all non-batch dims, of the gradient of the raw logit t. create_graph=True so the
penalty backpropagates into D's parameters.

A penalty is called as penalty(D, real, fake, generator=None, batch_dims=1) -> scalar. For an
ensemble whose D maps [K, B, ...] to [K, B], pass batch_dims=2: the per-replica means are summed,
as the trainer sums losses over replicas. Each replica needs its own input rows: if D broadcast one
[B, ...] batch to [K, B] outputs, the gradient of the summed logits would mix replicas. With
batch_dims=2, `generator` may be a list of K generators, one per replica: replica i then draws
exactly what a single run seeded like it draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gan_bench.errors import UserError
from gan_bench.losses.base import parse_number


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


@dataclass(frozen=True)
class GradientPenalty:
    weight: float = 10.0

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


@dataclass(frozen=True)
class R1Penalty:
    weight: float = 5.0

    def __call__(self, D, real, fake=None, generator=None, batch_dims: int = 1):
        x = real.detach().requires_grad_(True)
        sq = _input_grads(D, x, batch_dims).square().sum(-1)
        return self.weight * sq.mean(-1).sum()


PENALTIES = {"none": None, "gp": GradientPenalty, "r1": R1Penalty}


def make_penalty(name: str, weight=None):
    """The penalty callable for `name`, or None for 'none' (the trainer then skips it)."""
    if name not in PENALTIES:
        raise UserError(f"unknown penalty {name!r}: choose one of {', '.join(PENALTIES)} (penalty=<name>)")
    cls = PENALTIES[name]
    if cls is None:
        return None
    if weight is None:
        return cls()
    return cls(parse_number("penalty.weight", weight, low=0.0, example=str(cls.weight)))
