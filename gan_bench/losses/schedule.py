"""Alpha schedules: an order alpha that moves during training (config key `loss.schedule`).

    schedule: null                       # fixed alpha (default)
    schedule: {kind: linear, start: 0.5} # ramp 0.5 -> the configured alpha over the whole run
    schedule: {kind: linear, start: 0.5, end: 1.0, until: 0.5, player: d}
    schedule: {kind: step, start: 0.5, at: 0.25}

    schedule: {kind: triangle, low: 0, high: 3, skip: [1], epochs: 250}   # RenyiGAN's varying alpha

Keys: kind (linear | step | triangle), start (alpha at step 0), end (default null = the configured
alpha, i.e. alpha_d / alpha_g / alpha), player (both | d | g; alpha loss only: which order moves),
until (linear: fraction of the run where the ramp reaches `end`, default 1.0, then holds),
at (step: fraction of the run where alpha jumps from `start` to `end`, default 0.5).
Fractions are of total_steps, so a schedule survives a change of train.steps.

triangle (Bhatia et al.'s renyigan_varying_alpha.py): alpha walks the grid low, low + delta, ...,
high (values in `skip` left out) one value per epoch, up then down, bouncing at both ends; the
configured alpha is not used. `epochs` is the run's length in epochs (set it to train.epochs): with
train.epochs = E the run has E * ceil(N / batch) steps and epoch k is exactly steps
[k ceil(N / batch), (k + 1) ceil(N / batch)), so alpha changes at the epoch boundaries.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gan_bench.errors import UserError
from gan_bench.losses.base import parse_alpha, parse_choice, parse_number


@dataclass(frozen=True)
class AlphaSchedule:
    kind: str
    start: float
    end: float
    until: float = 1.0
    at: float = 0.5

    def __call__(self, step: int, total_steps: int) -> float:
        frac = min(1.0, max(0.0, step / total_steps)) if total_steps > 0 else 1.0
        return _KINDS[self.kind](self, frac)

    def __repr__(self) -> str:
        tail = f"until={self.until}" if self.kind == "linear" else f"at={self.at}"
        return f"{self.kind}({self.start} -> {self.end}, {tail})"


@dataclass(frozen=True)
class TriangleSchedule:
    """alpha = values[i] at epoch k, i bouncing 0, 1, ..., n-1, n-2, ..., 0, 1, ... (period 2(n-1))."""
    values: tuple[float, ...]
    epochs: int

    def __call__(self, step: int, total_steps: int) -> float:
        k = step * self.epochs // total_steps if total_steps > 0 else 0  # integers: exact boundaries
        period = 2 * (len(self.values) - 1)
        i = k % period
        return self.values[i if i < len(self.values) else period - i]

    def __repr__(self) -> str:
        return f"triangle({self.values[0]} <-> {self.values[-1]}, {len(self.values)} values, epochs={self.epochs})"


_KINDS = {
    "linear": lambda s, f: s.start + (s.end - s.start) * min(1.0, f / s.until),
    "step": lambda s, f: s.start if f < s.at else s.end,
}
_KEYS = {"linear": {"kind", "start", "end", "player", "until"},
         "step": {"kind", "start", "end", "player", "at"},
         "triangle": {"kind", "low", "high", "delta", "skip", "epochs", "player"}}


def _triangle(spec: dict, zero: bool) -> TriangleSchedule:
    low = parse_alpha("loss.schedule.low", spec.get("low"), finite=True, zero=zero)
    high = parse_alpha("loss.schedule.high", spec.get("high"), finite=True, zero=zero)
    delta = parse_number("loss.schedule.delta", spec.get("delta", 0.1), low=0.0, low_open=True, example="0.1")
    n = round((high - low) / delta)
    if not high > low or abs(low + n * delta - high) > 1e-9 * max(1.0, high):
        raise UserError(f"loss.schedule needs low < high with high - low a whole number of deltas, got "
                        f"low={low:g}, high={high:g}, delta={delta:g}: e.g. low=0, high=0.9, delta=0.1")
    # Rounded so the grid reads 0.3, not 0.30000000000000004 (the authors round to one decimal).
    grid = [round(low + j * delta, 12) for j in range(n + 1)]
    skip = spec.get("skip") or []
    if isinstance(skip, (str, bytes)) or not isinstance(skip, Sequence):
        raise UserError(f"loss.schedule.skip must be a list of alphas, got {skip!r}: e.g. skip=[1]")
    for x in skip:
        v = parse_number("loss.schedule.skip", x, example="[1]")
        if not any(abs(v - g) <= 1e-9 * max(1.0, abs(g)) for g in grid):
            raise UserError(f"loss.schedule.skip value {x!r} is not on the grid {grid[0]:g}, "
                            f"{grid[1]:g}, ..., {grid[-1]:g}: skip only values the walk would take")
    values = tuple(g for g in grid if not any(abs(float(x) - g) <= 1e-9 * max(1.0, abs(g)) for x in skip))
    if len(values) < 2:
        raise UserError("loss.schedule skips all but one value of the triangle: skip fewer or widen low..high")
    epochs = spec.get("epochs")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs <= 0:
        raise UserError(f"loss.schedule.epochs must be the run's length in epochs (a positive integer, "
                        f"train.epochs), got {epochs!r}: e.g. epochs=250")
    return TriangleSchedule(values, epochs)


def parse_schedule(spec, configured: dict[str, float], *, finite: bool = False, zero: bool = False) -> dict:
    """Schedules keyed like `configured` ({'d': alpha_d, 'g': alpha_g} or {'alpha': alpha}).

    Returns {key: schedule or None}. `finite`: the family needs finite alpha (renyi, renyigan);
    `zero`: it is defined at alpha = 0 (renyigan).
    """
    out = dict.fromkeys(configured)
    if spec is None:
        return out
    if not isinstance(spec, Mapping):
        raise UserError(f"loss.schedule must be null or a mapping, got {spec!r}: "
                        "pass e.g. 'loss.schedule={kind:linear,start:0.5}'")
    spec = dict(spec)
    kind = parse_choice("loss.schedule.kind", spec.get("kind"), tuple(_KEYS))
    unknown = set(spec) - _KEYS[kind]
    if unknown:
        raise UserError(f"loss.schedule has unknown keys {sorted(unknown)} for kind={kind}: "
                        f"use {', '.join(sorted(_KEYS[kind]))}")
    players = ("both",) + (tuple(configured) if len(configured) > 1 else ())
    player = parse_choice("loss.schedule.player", spec.get("player", "both"), players)
    if kind == "triangle":
        tri = _triangle(spec, zero)
        out.update(dict.fromkeys(configured if player == "both" else (player,), tri))
        return out
    if "start" not in spec:
        raise UserError("loss.schedule needs a start alpha: pass e.g. 'loss.schedule={kind:linear,start:0.5}'")
    start = parse_alpha("loss.schedule.start", spec["start"], finite=finite, zero=zero)
    end = None if spec.get("end") is None else parse_alpha("loss.schedule.end", spec["end"], finite=finite, zero=zero)
    until = parse_number("loss.schedule.until", spec.get("until", 1.0), low=0.0, high=1.0,
                         low_open=True, example="0.5")
    at = parse_number("loss.schedule.at", spec.get("at", 0.5), low=0.0, high=1.0, example="0.5")
    for key in configured if player == "both" else (player,):
        stop = configured[key] if end is None else end
        if kind == "linear" and not (math.isfinite(start) and math.isfinite(stop)):
            raise UserError("a linear alpha schedule needs finite start and end alphas: "
                            "use loss.schedule.kind=step or finite values")
        out[key] = AlphaSchedule(kind, start, stop, until, at)
    return out


def scheduled_alphas(loss, step: int, total_steps: int):
    """`loss` with alpha_d / alpha_g moved by its schedule_d / schedule_g (either may be None):
    the at_step of every loss family with scheduled alphas."""
    if loss.schedule_d is None and loss.schedule_g is None:
        return loss
    return dataclasses.replace(
        loss,
        alpha_d=loss.schedule_d(step, total_steps) if loss.schedule_d else loss.alpha_d,
        alpha_g=loss.schedule_g(step, total_steps) if loss.schedule_g else loss.alpha_g)
