"""--reach 'METRIC<=VALUE' (or >=): how many steps each group's seeds take to get there.

A seed's reach step is the first evaluated step (metrics.jsonl, read by history.py) whose value
meets the condition. Counting rules (docs/report.md explains why):
- counted: the seeds that ended, i.e. completed seeds with at least one evaluation of the metric,
  and every diverged seed;
- a diverged seed counts as never reaching, even when it got there before diverging: the run ends
  without a usable generator, and an objective must not look faster the more often it blows up;
- failed and incomplete seeds are left out (a crash says nothing about the objective; a run still
  going may get there yet), as in every statistic of the report;
- a non-finite value (nan, inf) never meets a condition: it is a broken evaluation, not a number;
- the mean and its t-interval are over the seeds that reached, so they read together with the
  reached count; the median over all counted seeds, with never = ∞, compares groups fairly when
  some seeds never get there.
"""

import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from gan_bench.errors import UserError
from gan_bench.reporting.groups import Group
from gan_bench.reporting.history import RunHistory, seed_series
from gan_bench.reporting.render import Column, Table
from gan_bench.reporting.stats import Estimate, mean_ci
from gan_bench.reporting.tables import fixed_keys, key_cells, key_columns, shown_keys

_SPEC = re.compile(r"\s*([^<>=!\s]+)\s*(<=|>=)\s*(\S+)\s*")


@dataclass(frozen=True)
class Condition:
    metric: str
    op: str  # "<=" or ">="
    value: float

    def met(self, x: float) -> bool:
        if not math.isfinite(x):
            return False
        return x <= self.value if self.op == "<=" else x >= self.value

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


def parse_spec(spec: str) -> Condition:
    m = _SPEC.fullmatch(spec)
    if m is None:
        raise UserError(f"--reach needs METRIC<=VALUE or METRIC>=VALUE, got '{spec}' (bounds are "
                        "inclusive: a single < or > is not accepted): e.g. --reach 'w1<=0.1'")
    metric, op, text = m.groups()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value):
        raise UserError(f"--reach {spec}: '{text}' is not a number: e.g. --reach '{metric}{op}0.1'")
    return Condition(metric, op, value)


def first_reach(series: list[tuple[int, float]], cond: Condition) -> int | None:
    """The first step whose value meets the condition; None when none does."""
    return next((step for step, v in series if cond.met(v)), None)


@dataclass
class Reach:
    """One group's seeds against one condition."""

    reached: list[int] = field(default_factory=list)  # reach steps of the seeds that got there
    never: int = 0  # counted seeds that did not, diverged ones included
    diverged: int = 0  # of them, diverged
    diverged_after_reaching: int = 0  # diverged seeds that had met the condition before
    left_out: int = 0  # failed or incomplete seeds
    unevaluated: int = 0  # completed seeds with no evaluation of the metric
    last_step: int | None = None  # the last step any counted seed was evaluated at

    @property
    def n(self) -> int:
        return len(self.reached) + self.never

    def mean(self) -> Estimate | None:
        return mean_ci([float(s) for s in self.reached], digits=0) if self.reached else None

    def median(self) -> "Steps | None":
        return Steps(statistics.median(self.reached)) if self.reached else None

    def median_all(self) -> "Steps | None":
        # Never = ∞: the median is finite exactly when fewer than half the seeds never got there.
        if not self.n:
            return None
        return Steps(statistics.median(self.reached + [math.inf] * self.never), self.last_step)


def group_reach(g: Group, histories: dict[Path, RunHistory], cond: Condition) -> Reach:
    r = Reach()
    for seed in g.seeds:
        if seed.status not in ("completed", "diverged"):
            r.left_out += 1
            continue
        series = seed_series(histories, seed, cond.metric)
        if series:
            r.last_step = max(r.last_step or 0, series[-1][0])
        step = first_reach(series, cond)
        if seed.status == "diverged":
            r.never += 1
            r.diverged += 1
            r.diverged_after_reaching += step is not None
        elif not series:
            r.unevaluated += 1
        elif step is None:
            r.never += 1
        else:
            r.reached.append(step)
    return r


def _steps_text(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


@dataclass(frozen=True)
class Steps:
    """A step count; ∞ (never) prints as `> last step`: not within the steps the seeds were run for."""

    value: float
    last_step: int | None = None

    def text(self, latex: bool = False) -> str:
        if math.isfinite(self.value):
            return _steps_text(self.value)
        if self.last_step is None:
            return "never"
        return f"{'$>$' if latex else '>'} {self.last_step}"

    def fields(self) -> list:
        return [float(self.value) if math.isfinite(self.value) else "inf",
                "" if self.last_step is None else self.last_step]


@dataclass(frozen=True)
class Pair:
    """Two counts in one cell, e.g. `7/10` or `3 (1)`; csv gets them as two fields."""

    a: int
    b: int
    pattern: str

    def text(self, latex: bool = False) -> str:
        return self.pattern.format(self.a, self.b)

    def fields(self) -> list:
        return [self.a, self.b]


def reach_table(groups: list[Group], histories: dict[Path, RunHistory], cond: Condition,
                compact: bool = True) -> tuple[Table, list[Reach]]:
    """One row per group; csv (compact=False) has no titles, so each row names its condition."""
    cols = key_columns(groups, compact) + ([] if compact else [Column("condition", ["condition"], text=True)])
    cols += [
        Column("reached", ["reached", "n"]),
        Column("never (diverged)", ["never", "never_diverged"]),
        Column("mean step [95% CI]", ["mean_step", "mean_step_lo", "mean_step_hi"]),
        Column("median step", ["median_step"]),
        Column("median, never = ∞", ["median_all", "last_step"]),
    ]
    fixed = fixed_keys(groups, compact)
    title = f"Steps to reach {cond} (first evaluated step per seed)" + (f" (every group: {fixed})" if fixed else "")
    t = Table(title, cols)
    shown = shown_keys(groups, compact)
    results = []
    for g in groups:
        r = group_reach(g, histories, cond)
        results.append(r)
        t.rows.append(key_cells(g, shown) + ([] if compact else [str(cond)])
                      + [Pair(len(r.reached), r.n, "{}/{}"), Pair(r.never, r.diverged, "{} ({})"),
                         r.mean(), r.median(), r.median_all()])
    return t, results


def reach_notes(cond: Condition, results: list[Reach]) -> list[str]:
    """What the table's counts leave out or count specially, summed over groups."""
    total = {k: sum(getattr(r, k) for r in results)
             for k in ("diverged", "diverged_after_reaching", "left_out", "unevaluated")}
    notes = []
    if total["diverged"]:
        before = total["diverged_after_reaching"]
        notes.append(f"reach {cond}: {total['diverged']} diverged seed(s) counted as never reaching it "
                     "(a diverged run ends without a usable generator)"
                     + (f"; {before} of them had reached it before diverging" if before else ""))
    if total["left_out"]:
        notes.append(f"reach {cond}: {total['left_out']} failed or incomplete seed(s) left out (a crash "
                     "says nothing about the objective; a seed still running may get there yet)")
    if total["unevaluated"]:
        notes.append(f"reach {cond}: {total['unevaluated']} completed seed(s) have no evaluation of "
                     f"{cond.metric} in metrics.jsonl; left out")
    return notes
