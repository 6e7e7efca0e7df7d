"""Pool seeds into groups (same overrides except the seed) and compute each group's statistics.

Counting rules (docs/report.md explains why):
- rates (success, failure, FID collapse) are over the seeds that ended: completed seeds with the
  metric plus diverged seeds, and a diverged seed counts as a failed trial (success 0, failure 1,
  collapsed 1): its generator has no finite samples, so it covers no mode;
- continuous metrics (hq, modes, FID, ...) are over completed seeds only: a diverged seed has no value;
- failed (crashed) and incomplete seeds are counted and shown, never in a statistic.
- values whose metric fingerprints differ are never pooled: the cell becomes `mixed` and a note
  names the fingerprints (see fingerprint_notes).
"""

import statistics
from collections import Counter
from dataclasses import dataclass, field

from gan_bench.metrics import DENSITY1D_TARGETS, DIVERGED_AS, TOY_KEYS
from gan_bench.reporting.runs import Run, SeedResult, normalize_value
from gan_bench.reporting.stats import Estimate, MeanStd, mean_std, rate

# Overrides that never define a group: the seed is what groups pool over, the rest change where
# or how a run prints, not what it computes (the same keys Hydra leaves out of override_dirname).
NOT_GROUPING = {"seed", "train.device", "train.progress", "search.metric"}

RATE_METRICS = tuple(DIVERGED_AS)  # success and failure: reported as rates over seeds

# 2-D toy runs always report these, so an all-diverged toy group still gets its 0% success. The
# 1-D sets (also in data/toy.py) report no success or failure: theirs are density metrics.
TOY_METRICS = set(TOY_KEYS)


def is_grouping_key(key: str, ignore: set[str]) -> bool:
    return key not in NOT_GROUPING and not key.startswith("hydra.") and key not in ignore


@dataclass
class Group:
    key: tuple[tuple[str, str], ...]  # every grouping key, "" where this group did not set it
    runs: list[Run] = field(default_factory=list)
    seeds: list[SeedResult] = field(default_factory=list)
    metrics: set[str] = field(default_factory=set)  # what this group's runs measure

    @property
    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.key if v != "") or "(no overrides)"

    def value(self, key: str) -> str | None:
        """The group's value for KEY: its override, else the (first run's) resolved config."""
        v = dict(self.key).get(key, "")
        if v != "":
            return v
        c = self.runs[0].select(key)
        return None if c is None or not isinstance(c, (int, float, str, bool)) else normalize_value(c)

    def counts(self) -> Counter:
        return Counter(s.status for s in self.seeds)

    @property
    def dataset(self) -> str | None:
        return self.runs[0].select("dataset._target_")


def sort_token(v: str):
    if v == "":
        return (0, 0.0, "")
    try:
        return (1, float(v), "")
    except ValueError:
        return (2, 0.0, v)


def group_runs(runs: list[Run], ignore: set[str] = frozenset()) -> list[Group]:
    keys = sorted({k for r in runs for k in r.overrides if is_grouping_key(k, ignore)})
    groups: dict[tuple, Group] = {}
    for r in runs:
        key = tuple((k, r.overrides.get(k, "")) for k in keys)
        g = groups.setdefault(key, Group(key))
        g.runs.append(r)
        g.seeds.extend(r.seeds)
    out = sorted(groups.values(), key=lambda g: [sort_token(v) for _, v in g.key])
    _assign_metrics(out)
    return out


def _assign_metrics(groups: list[Group]) -> None:
    # A group's metrics are those its completed seeds report; a group with none completed borrows
    # them from groups on the same dataset, so its diverged seeds still count in its rates.
    by_dataset: dict[str | None, set[str]] = {}
    for g in groups:
        g.metrics = {m for s in g.seeds if s.status == "completed" for m in s.metrics
                     if s.value(m) is not None}  # numbers only (non-finite ones are written as strings)
        if ".toy." in str(g.dataset) and g.dataset not in DENSITY1D_TARGETS:
            g.metrics |= TOY_METRICS
        by_dataset.setdefault(g.dataset, set()).update(g.metrics)
    for g in groups:
        if not g.metrics:
            g.metrics = set(by_dataset.get(g.dataset, set()))


@dataclass(frozen=True)
class Mixed:
    """A cell whose seeds were measured with different fingerprints: not pooled."""

    metric: str

    def text(self, latex: bool = False) -> str:
        return "mixed"

    def fields(self) -> list:
        return ["mixed"]


def completed_values(g: Group, metric: str) -> list[float] | Mixed:
    vals, fps = [], set()
    for s in g.seeds:
        v = s.value(metric) if s.status == "completed" else None
        if v is not None:
            vals.append(v)
            fps.add(s.fingerprint(metric))
    return Mixed(metric) if len(fps) > 1 else vals


def rate_of(g: Group, metric: str) -> Estimate | Mixed | None:
    """success/failure in percent with the Wilson interval; diverged seeds count (DIVERGED_AS)."""
    if metric not in g.metrics:
        return None
    vals = completed_values(g, metric)
    if isinstance(vals, Mixed):
        return vals
    hits = [v >= 0.5 for v in vals] + [DIVERGED_AS[metric] >= 0.5] * g.counts()["diverged"]
    return rate(sum(hits), len(hits)) if hits else None


def collapse_of(g: Group, metric: str, threshold: float) -> Estimate | Mixed | None:
    """% of ended seeds with FID above the threshold; a diverged seed counts as collapsed."""
    if metric not in g.metrics:
        return None
    vals = completed_values(g, metric)
    if isinstance(vals, Mixed):
        return vals
    hits = [v > threshold for v in vals] + [True] * g.counts()["diverged"]
    return rate(sum(hits), len(hits)) if hits else None


def mean_of(g: Group, metric: str, digits: int = 3) -> MeanStd | Mixed | None:
    vals = completed_values(g, metric)
    if isinstance(vals, Mixed) or not vals:
        return vals or None
    return mean_std(vals, digits)


def median_of(g: Group, metric: str) -> float | Mixed | None:
    vals = completed_values(g, metric)
    if isinstance(vals, Mixed) or not vals:
        return vals or None
    return statistics.median(vals)


def fingerprint_notes(groups: list[Group]) -> list[str]:
    """Notes for every group whose seeds disagree on a metric's fingerprint (those cells print
    `mixed`), and for metrics whose fingerprint differs between groups (rows measured differently).

    Metrics sharing one fingerprint (the mode metrics) are named together in one note.
    """
    notes, across = [], {}
    for g in groups:
        clash: dict[tuple, list[str]] = {}
        for m in sorted(g.metrics):
            fps = Counter(s.fingerprint(m) for s in g.seeds
                          if s.status == "completed" and s.value(m) is not None)
            if len(fps) > 1:
                clash.setdefault(tuple(sorted(fps.items(), key=str)), []).append(m)
            elif fps:  # mixed groups have their own note; compare clean groups only
                across.setdefault(m, set()).update(fps)
        for fps, metrics in clash.items():
            parts = ", ".join(f"{fp or 'none recorded'} ({n} seeds)" for fp, n in fps)
            notes.append(f"group {g.label}: {', '.join(metrics)} measured with different "
                         f"fingerprints [{parts}]; not pooled (shown as 'mixed'): re-evaluate the "
                         "older runs, or report them in separate calls")
    shared: dict[tuple, list[str]] = {}
    for m, fps in sorted(across.items()):
        if len(fps) > 1:
            shared.setdefault(tuple(sorted(fps, key=str)), []).append(m)
    for fps, metrics in shared.items():
        notes.append(f"{', '.join(metrics)}: groups use {len(fps)} different fingerprints "
                     f"({', '.join(str(f) for f in fps)}): rows measured differently are not "
                     "comparable")
    return notes
