"""Small, dependency-free statistics for the report (formulas in docs/report.md)."""

import math
import statistics
from dataclasses import dataclass

# Two-sided 95%: the normal quantile at 0.975 (scipy.stats.norm.ppf(0.975)).
Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials, as fractions.

    Chosen over the normal (Wald) interval because sweeps often sit at 0% or 100% with few seeds,
    where Wald collapses to a zero-width interval.
    """
    if n <= 0:
        raise ValueError("wilson interval needs n > 0")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # Clamp away float noise so 0/n gives exactly 0 and n/n exactly 1.
    return max(0.0, centre - half), min(1.0, centre + half)


def t_quantile_975(dof: int) -> float:
    # scipy is a dependency anyway; imported here so the rest of the report does not pay for it.
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


@dataclass(frozen=True)
class Estimate:
    """A value with an optional 95% interval, printed as `v [lo, hi]` (`v` when there is none)."""

    value: float
    lo: float | None = None
    hi: float | None = None
    digits: int = 1
    k: int | None = None  # successes, for rates
    n: int | None = None  # seeds behind the value

    def text(self, latex: bool = False) -> str:
        d = self.digits
        if self.lo is None or self.hi is None:
            return f"{self.value:.{d}f}"
        return f"{self.value:.{d}f} [{self.lo:.{d}f}, {self.hi:.{d}f}]"

    def fields(self) -> list:
        return [_num(self.value), _num(self.lo), _num(self.hi)]

    def contains(self, x: float) -> bool | None:
        if self.lo is None or self.hi is None:
            return None
        return self.lo <= x <= self.hi


@dataclass(frozen=True)
class MeanStd:
    """Mean ± sample standard deviation (ddof=1); a single value has no spread and prints alone."""

    mean: float
    std: float | None
    n: int
    digits: int = 3

    def text(self, latex: bool = False) -> str:
        d = self.digits
        if self.std is None:
            return f"{self.mean:.{d}f}"
        pm = " $\\pm$ " if latex else " ± "
        return f"{self.mean:.{d}f}{pm}{self.std:.{d}f}"

    def fields(self) -> list:
        return [_num(self.mean), _num(self.std)]


def rate(k: int, n: int) -> Estimate:
    """A proportion in percent with its Wilson 95% interval."""
    lo, hi = wilson(k, n)
    return Estimate(100.0 * k / n, 100.0 * lo, 100.0 * hi, digits=1, k=k, n=n)


def mean_std(values: list[float], digits: int = 3) -> MeanStd:
    std = statistics.stdev(values) if len(values) > 1 else None
    return MeanStd(statistics.fmean(values), std, len(values), digits)


def mean_ci(values: list[float], digits: int = 1) -> Estimate:
    """Mean with a Student-t 95% interval (no interval for a single value)."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return Estimate(m, digits=digits, n=len(values))
    half = t_quantile_975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return Estimate(m, m - half, m + half, digits=digits, n=len(values))


def _num(x: float | None):
    # csv cells: full precision is noise; 6 significant digits keeps every printed digit exact.
    return "" if x is None else float(f"{x:.6g}")


def bootstrap_mean(values, level: float = 0.95, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean: the middle `level` of the means of `resamples`
    resamples with replacement (fixed seed, so a report regenerates to the same digits).

    Used wherever a score has a range (counts, rates, distances): every resampled mean lies between
    the smallest and largest value, so the interval never leaves the range of the data, where a
    t-interval of a few seeds reaches below 0 or above 1. The price: with very few values it is
    narrower than the uncertainty (two seeds give at most their own span).
    """
    import numpy as np

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_mean needs at least one value")
    means = x[np.random.default_rng(seed).integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    # Clamp float noise: the mean of identical values is that value exactly.
    return max(float(lo), float(x.min())), min(float(hi), float(x.max()))
