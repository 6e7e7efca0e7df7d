"""The tasks and tiers of the atlas (tasks.yaml): what a cell trains, what scores a seed, the
threshold of steps-to-reach, the learning-rate grid and the seeds."""

import math
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from gan_bench.errors import UserError
from gan_bench.reporting.reach import Condition, parse_spec

DIRECTIONS = ("max", "min")


def score_keys(score: str) -> tuple[str, ...]:
    """`modes+hq` -> ("modes", "hq"): a score may be the sum of final metrics. A count plus a fraction
    in [0, 1) orders seeds by the count first and the fraction among equal counts."""
    return tuple(k.strip() for k in str(score).split("+"))


def score_value(metrics: dict, score: str) -> float | None:
    """A seed's score from its final metrics; None when one of its keys is missing or not a number."""
    total = 0.0
    for k in score_keys(score):
        try:
            total += float(metrics[k])
        except (KeyError, TypeError, ValueError):
            return None
    return total


@dataclass(frozen=True)
class Task:
    name: str
    tier: str
    overrides: tuple[str, ...]
    score: str  # the primary per-seed score: a key of the runs' final metrics, or keys joined by + (a sum)
    direction: str  # max | min
    metrics: tuple[str, ...]  # shown beside the score
    reach: Condition  # the quality threshold of steps-to-reach
    lrs: tuple[float, ...]
    select: int  # seeds S..S+select-1 choose the lr
    eval: int  # the next `eval` seeds score it

    @property
    def seeds(self) -> int:
        return self.select + self.eval

    @property
    def keys(self) -> tuple[str, ...]:
        return (*score_keys(self.score), *self.metrics)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "max" else a < b


@dataclass(frozen=True)
class Tasks:
    tasks: dict[str, Task]
    tiers: dict[str, tuple[str, ...]]
    objectives: dict[str, tuple[str, ...] | None]  # a tier's default objectives; None = all

    def choose(self, tier: str | None, names: list[str] | None) -> list[Task]:
        if tier is not None and tier not in self.tiers:
            raise UserError(f"unknown tier '{tier}': choose one of {', '.join(self.tiers)}")
        pool = self.tiers[tier] if tier is not None else tuple(self.tasks)
        if names is None:
            return [self.tasks[n] for n in pool]
        unknown = [n for n in names if n not in pool]
        if unknown:
            raise UserError(f"unknown task {', '.join(unknown)}" + (f" in tier {tier}" if tier else "")
                            + f": choose from {', '.join(pool)}")
        return [self.tasks[n] for n in dict.fromkeys(names)]


def _fail(where: str, msg: str):
    raise UserError(f"{where}: {msg}")


def _task(name: str, d, where: str) -> Task:
    w = f"{where}: task '{name}'"
    if not isinstance(d, dict):
        _fail(w, "needs a mapping of tier, overrides, score, direction, reach, lrs, seeds")
    for key in ("tier", "overrides", "score", "direction", "reach", "lrs", "seeds"):
        if d.get(key) in (None, "", []):
            _fail(w, f"has no {key}" + (" (the primary per-seed score, a final metric key)" if key == "score" else ""))
    if d["direction"] not in DIRECTIONS:
        _fail(w, f"direction must be max or min, got {d['direction']!r}")
    lrs = d["lrs"] if isinstance(d["lrs"], list) else [d["lrs"]]
    try:
        lrs = tuple(float(x) for x in lrs)
    except (TypeError, ValueError):
        _fail(w, f"lrs must be numbers, got {d['lrs']!r}")
    if not all(math.isfinite(x) and x > 0 for x in lrs) or len(set(lrs)) != len(lrs):
        _fail(w, f"lrs must be distinct positive numbers, got {list(lrs)}")
    seeds = d["seeds"]
    if not isinstance(seeds, dict) or not all(isinstance(seeds.get(k), int) and seeds[k] > 0
                                              for k in ("select", "eval")):
        _fail(w, f"seeds must be {{select: N, eval: M}} with positive integers, got {seeds!r}")
    reach = parse_spec(str(d["reach"]))
    overrides = tuple(shlex.split(str(d["overrides"])))
    return Task(name, str(d["tier"]), overrides, str(d["score"]), d["direction"],
                tuple(str(m) for m in d.get("metrics") or ()), reach, tuple(sorted(lrs)),
                seeds["select"], seeds["eval"])


def load(path=None) -> Tasks:
    path = Path(path) if isinstance(path, str) else path
    where = f"tasks file {path}" if path else "tasks"
    try:
        data = yaml.safe_load((path or resources.files("gan_bench.atlas") / "tasks.yaml").read_text())
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"cannot read the {where}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict) or not data["tasks"]:
        _fail(where, "needs a mapping `tasks:` of NAME: {tier, overrides, score, direction, reach, lrs, seeds}")
    tasks = {str(n): _task(str(n), d, where) for n, d in data["tasks"].items()}
    tiers = {}
    for tier in dict.fromkeys(t.tier for t in tasks.values()):
        tiers[tier] = tuple(n for n, t in tasks.items() if t.tier == tier)
    objectives = {}
    for tier, names in (data.get("objectives") or {}).items():
        objectives[str(tier)] = None if names in (None, "all") else tuple(str(n) for n in names)
    return Tasks(tasks, tiers, objectives)
