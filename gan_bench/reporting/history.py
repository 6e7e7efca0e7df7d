"""metrics.jsonl: every seed's value of a metric at each evaluated step, for --reach and --curves.

The trainer appends one JSON object per evaluation, `{"step": 500, "w1": 0.31, ...}`, with
`"replica": i, "seed": s` added in an ensemble (train.ensemble=K); `gan-bench evaluate` appends
more at the last step. How this module reads them:
- each run's file is read once, and only the metrics asked for are kept (a sweep has thousands);
- an ensemble's lines belong to the seed of their "replica"; a single run's lines have none;
- a step evaluated twice (a resumed run redoes an evaluation a kill cut short): the last line that
  has the metric wins;
- a diverged seed's values from its divergence step on are dropped: they measure a broken model
  (the trainer evaluates it once more), and the main table ignores them too;
- a line that is not a JSON object with an integer step (e.g. cut short by a kill) is skipped,
  with one note per file.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from gan_bench.errors import UserError
from gan_bench.reporting.groups import Group
from gan_bench.reporting.runs import SeedResult

# Keys of a metrics.jsonl line that describe the evaluation rather than measure anything.
NOT_METRICS = {"step", "replica", "seed", "source", "fingerprints"}

Series = dict[int, float]  # step -> value; non-finite values are float nan/inf


@dataclass
class RunHistory:
    series: dict[tuple[int | None, str], Series] = field(default_factory=dict)  # (replica, metric)
    keys: set[str] = field(default_factory=set)  # every numeric key the file has, for error messages


def _number(v) -> float | None:
    # Non-finite values are written as the strings "nan"/"inf"; float() reads them back.
    if isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _integer(v) -> int | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer():
        return None
    return int(v)


def _parse(line: str) -> tuple[int, int | None, dict] | None:
    """(step, replica, record) of one line; replica None for a single run; None when malformed."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    if not isinstance(rec, dict) or (step := _integer(rec.get("step"))) is None:
        return None
    if "replica" not in rec:
        return step, None, rec
    replica = _integer(rec["replica"])
    return None if replica is None else (step, replica, rec)


def read_history(run_dir: Path, metrics: set[str], notes: list[str]) -> RunHistory:
    """One run's metrics.jsonl: the series of each (replica, metric) in `metrics`."""
    hist = RunHistory()
    path = Path(run_dir) / "metrics.jsonl"
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return hist  # no evaluation yet
    except (OSError, UnicodeDecodeError) as e:
        notes.append(f"{path}: unreadable ({e.__class__.__name__}); its evaluations left out")
        return hist
    bad = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parsed = _parse(line)
        if parsed is None:
            bad.append(i)
            continue
        step, replica, rec = parsed
        for key, raw in rec.items():
            v = None if key in NOT_METRICS else _number(raw)
            if v is None:
                continue
            hist.keys.add(key)
            if key in metrics:
                hist.series.setdefault((replica, key), {})[step] = v  # later lines overwrite
    if bad:
        notes.append(f"{path}: {len(bad)} malformed line(s) skipped (first: line {bad[0]}; a line "
                     "needs a JSON object with an integer step)")
    return hist


def load(groups: list[Group], metrics: set[str], notes: list[str]) -> dict[Path, RunHistory]:
    """Every run's history, keyed by run directory (SeedResult.run_dir), each file read once."""
    return {run.path: read_history(run.path, metrics, notes) for g in groups for run in g.runs}


def seed_series(histories: dict[Path, RunHistory], seed: SeedResult, metric: str) -> list[tuple[int, float]]:
    """(step, value) pairs of one seed, by step; for a diverged seed only those before it diverged."""
    hist = histories.get(seed.run_dir)
    series = hist.series.get((seed.replica, metric), {}) if hist else {}
    cut = seed.diverged_at if seed.status == "diverged" else None
    return sorted((s, v) for s, v in series.items() if cut is None or s < cut)


def check_metrics(option: str, names: list[str], histories: dict[Path, RunHistory]) -> None:
    """UserError for a metric no run's metrics.jsonl has, naming those they do have."""
    known = set().union(*(h.keys for h in histories.values()))
    for name in names:
        if name not in known:
            raise UserError(f"{option}: no run's metrics.jsonl has metric '{name}': choose from "
                            f"{', '.join(sorted(known)) or '(none: no run has evaluated yet)'}")
