"""The atlas's statistics, pure functions of results rows (no files, no pictures).

- A seed's score is *oriented* so that larger is better (a `min` score is negated); a diverged seed,
  or one without a finite score, is worse than every finite one (-inf): its generator is broken.
- Learning rate: per (task, objective), the lr whose selection seeds have the best median oriented
  score; ties go to the best mean of the finite ones, then to fewer diverged, then to the smaller lr.
  The evaluation seeds never take part, so their scores at that lr carry no selection bias.
- Ranks: within a block (task, evaluation seed), rank 1 is the best objective, ties share their mean
  rank (scipy.stats.rankdata). The Friedman test (scipy.stats.friedmanchisquare) and the Nemenyi
  post-hoc test (scikit-posthocs) take the blocks of every task; the pairwise tests against a
  baseline are exact sign tests over blocks (scipy.stats.binomtest: wins against losses, ties
  dropped, scale-free across tasks), Holm-corrected over the objectives (statsmodels).
- Means carry a percentile-bootstrap interval over the finite seeds (gan_bench.reporting.stats), which
  stays inside the range of the data.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from gan_bench.reporting.stats import bootstrap_mean


def oriented(seed: dict, direction: str) -> float:
    v = seed.get("score")
    if seed.get("status") == "diverged" or v is None or not math.isfinite(v):
        return -math.inf
    return v if direction == "max" else -v


@dataclass
class Summary:
    """One (task, objective, lr) over one set of seeds."""

    lr: float
    seeds: list[int]
    values: list[float]  # the score of the seeds that did not diverge (finite)
    oriented: list[float]  # every seed, -inf for diverged
    diverged: int
    successes: int | None  # seeds with success = 1 where the runs report it
    reach: list[int | None]  # steps-to-reach per seed (None: never)
    metrics: dict[str, list[float]] = field(default_factory=dict)  # other metrics of the finite seeds

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    def interval(self) -> tuple[float, float] | None:
        return bootstrap_mean(self.values) if len(self.values) >= 2 else None

    @property
    def median_oriented(self) -> float:
        return float(np.median(self.oriented))

    @property
    def reached(self) -> int:
        return sum(r is not None for r in self.reach)

    @property
    def median_reach(self) -> float | None:
        """Median steps-to-reach with `never` as +inf (None when half or more never reach)."""
        steps = sorted(math.inf if r is None else r for r in self.reach)
        m = float(np.median(steps)) if steps else math.inf
        return None if math.isinf(m) else m


def summarize(row: dict, part: str) -> Summary:
    """`part`: "select" (the first row["select"] seeds) or "eval" (the rest)."""
    k = row["select"]
    seeds = row["seeds"][:k] if part == "select" else row["seeds"][k:]
    ok = [s for s in seeds if oriented(s, row["direction"]) > -math.inf]
    has_success = all("success" in (s.get("metrics") or {}) for s in seeds) and bool(seeds)
    return Summary(
        lr=row["lr"], seeds=[s["seed"] for s in seeds], values=[s["score"] for s in ok],
        oriented=[oriented(s, row["direction"]) for s in seeds], diverged=sum(s["status"] == "diverged" for s in seeds),
        successes=sum(s["status"] != "diverged" and (s["metrics"].get("success") or 0) >= 1 for s in seeds)
        if has_success else None,
        reach=[s.get("reach_step") for s in seeds],
        metrics={m: [s["metrics"][m] for s in ok if s["metrics"].get(m) is not None] for m in row.get("metrics", [])})


def select_lr(rows: list[dict]) -> float:
    """The lr chosen on the selection seeds of one (task, objective)'s rows (rule in the module doc)."""
    def key(row):
        s = summarize(row, "select")
        finite = [v for v in s.oriented if v > -math.inf]
        return (s.median_oriented, float(np.mean(finite)) if finite else -math.inf, -s.diverged, -row["lr"])
    return max(rows, key=key)["lr"]


def block_ranks(matrix: np.ndarray) -> np.ndarray:
    """Ranks within each block (row) of oriented scores [blocks, objectives]: 1 = best, ties averaged."""
    from scipy.stats import rankdata

    return rankdata(-np.asarray(matrix, dtype=float), axis=1)


def friedman(matrix: np.ndarray) -> tuple[float, float]:
    """Friedman's chi-square and its p-value over blocks (rows) of oriented scores [blocks, objectives]."""
    from scipy.stats import friedmanchisquare

    m = np.asarray(matrix, dtype=float)
    # scipy ranks each block itself; -inf (diverged) ranks below every finite score, as intended.
    res = friedmanchisquare(*m.T)
    return float(res.statistic), float(res.pvalue)


def nemenyi(matrix: np.ndarray, names: list[str]):
    """The Nemenyi post-hoc p-values (DataFrame, objectives x objectives) for the CD diagram."""
    import pandas as pd
    import scikit_posthocs as sp

    ranks = block_ranks(matrix)  # the post-hoc test works on ranks; -inf cannot enter it as a value
    p = sp.posthoc_nemenyi_friedman(pd.DataFrame(-ranks, columns=names))
    return p


@dataclass
class SignTest:
    wins: int
    losses: int
    ties: int
    p: float
    p_holm: float | None = None


def sign_test(a: np.ndarray, b: np.ndarray) -> SignTest:
    """Exact two-sided sign test of paired oriented scores a against b (ties, e.g. both diverged, dropped)."""
    from scipy.stats import binomtest

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    wins, losses = int(np.sum(a > b)), int(np.sum(a < b))
    ties = len(a) - wins - losses
    p = 1.0 if wins + losses == 0 else float(binomtest(wins, wins + losses, 0.5).pvalue)
    return SignTest(wins, losses, ties, p)


def holm(tests: list[SignTest]) -> list[SignTest]:
    from statsmodels.stats.multitest import multipletests

    if not tests:
        return tests
    adjusted = multipletests([t.p for t in tests], method="holm")[1]
    for t, q in zip(tests, adjusted):
        t.p_holm = float(q)
    return tests


def smallest_sign_gap(n: int, alpha: float = 0.05, comparisons: int = 1) -> int | None:
    """The fewest blocks, all won by one side (no losses), that a two-sided sign test over n paired
    blocks needs to reach p < alpha / comparisons (Holm's first, strictest threshold); None if n blocks
    cannot."""
    for d in range(1, n + 1):
        if 2 * 0.5 ** d < alpha / comparisons:
            return d
    return None


def smallest_rate_gap(n: int, alpha: float = 0.05) -> int | None:
    """The smallest gap k (in seeds of n) between two success counts, n of n against n - k of n on
    independent seeds, that Fisher's exact test (two-sided) puts below alpha; None if none can."""
    from scipy.stats import fisher_exact

    for k in range(1, n + 1):
        if fisher_exact([[n, 0], [n - k, k]])[1] < alpha:
            return k
    return None
