"""Cosine schedules of hyperparameters over training steps (R3GAN's `cosine_decay_with_warmup`
without the warmup): value(s) = start + (end - start) * (1 - cos(pi * s / steps)) / 2 for s < steps,
then `end`. A pure function of the step counter (generator iterations), so a resumed run sets the
same values as one never interrupted. Shared by `penalty.schedule` (the penalty weight) and
`optim.schedule` (learning rates and Adam's beta2)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gan_bench.errors import UserError


@dataclass(frozen=True)
class Cosine:
    start: float
    end: float
    steps: int

    def __call__(self, step: int) -> float:
        if step >= self.steps:
            return self.end
        return self.start + (self.end - self.start) * 0.5 * (1.0 - math.cos(math.pi * step / self.steps))


def parse_steps(key: str, v) -> int:
    """A schedule's length: a positive integer number of steps (generator iterations)."""
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise UserError(f"{key} must be a positive integer (the steps the schedule takes to reach its end), "
                        f"got {v!r}: pass e.g. {key}=10000")
    return v


def check_keys(key: str, spec, allowed: set[str], example: str) -> dict:
    """spec as a dict with kind=cosine and only `allowed` keys, or one line saying what is wrong."""
    from collections.abc import Mapping

    if not isinstance(spec, Mapping):
        raise UserError(f"{key} must be null (constant) or a mapping, got {spec!r}: pass e.g. '{key}={example}'")
    spec = dict(spec)
    if spec.get("kind") != "cosine":
        raise UserError(f"{key}.kind must be cosine, got {spec.get('kind')!r}: pass e.g. '{key}={example}'")
    unknown = set(spec) - allowed
    if unknown:
        raise UserError(f"{key} has unknown keys {sorted(unknown)}: use {', '.join(sorted(allowed))}")
    return spec
