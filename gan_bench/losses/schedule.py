"""Alpha schedules: an order alpha that moves during training (config key `loss.schedule`).

    schedule: null                       # fixed alpha (default)
    schedule: {kind: linear, start: 0.5} # ramp 0.5 -> the configured alpha over the whole run
    schedule: {kind: linear, start: 0.5, end: 1.0, until: 0.5, player: d}
    schedule: {kind: step, start: 0.5, at: 0.25}

Keys: kind (linear | step), start (alpha at step 0), end (default null = the configured alpha,
i.e. alpha_d / alpha_g / alpha), player (both | d | g; alpha loss only: which order moves),
until (linear: fraction of the run where the ramp reaches `end`, default 1.0, then holds),
at (step: fraction of the run where alpha jumps from `start` to `end`, default 0.5).
Fractions are of total_steps, so a schedule survives a change of train.steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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


_KINDS = {
    "linear": lambda s, f: s.start + (s.end - s.start) * min(1.0, f / s.until),
    "step": lambda s, f: s.start if f < s.at else s.end,
}
_KEYS = {"linear": {"kind", "start", "end", "player", "until"},
         "step": {"kind", "start", "end", "player", "at"}}


def parse_schedule(spec, configured: dict[str, float], *, finite: bool = False) -> dict:
    """Schedules keyed like `configured` ({'d': alpha_d, 'g': alpha_g} or {'alpha': alpha}).

    Returns {key: AlphaSchedule or None}. `finite`: the family needs finite alpha (renyi, renyigan).
    """
    out = dict.fromkeys(configured)
    if spec is None:
        return out
    if not isinstance(spec, Mapping):
        raise UserError(f"loss.schedule must be null or a mapping, got {spec!r}: "
                        "pass e.g. 'loss.schedule={kind:linear,start:0.5}'")
    spec = dict(spec)
    kind = parse_choice("loss.schedule.kind", spec.get("kind"), tuple(_KINDS))
    unknown = set(spec) - _KEYS[kind]
    if unknown:
        raise UserError(f"loss.schedule has unknown keys {sorted(unknown)} for kind={kind}: "
                        f"use {', '.join(sorted(_KEYS[kind]))}")
    players = ("both",) + (tuple(configured) if len(configured) > 1 else ())
    player = parse_choice("loss.schedule.player", spec.get("player", "both"), players)
    if "start" not in spec:
        raise UserError("loss.schedule needs a start alpha: pass e.g. 'loss.schedule={kind:linear,start:0.5}'")
    start = parse_alpha("loss.schedule.start", spec["start"], finite=finite)
    end = None if spec.get("end") is None else parse_alpha("loss.schedule.end", spec["end"], finite=finite)
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
