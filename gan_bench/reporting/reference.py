"""Published numbers (gan_bench/reference/*.csv, package data) and how runs map onto them.

A group maps to a reference row through its resolved config, never its directory name:
loss.name=alpha with loss.generator=saturating|ns is the objective of that name at
(loss.alpha_d, loss.alpha_g); loss.name=lsgan (non-saturating) is `lsgan_ns`; R3GAN's rows:
loss=bce (ns) is `gan` and loss=rsgan (variant sgan) `rpgan`, each followed by `_r1` or `_r1r2`
with that penalty, and loss=wgan penalty=gp is `wgan_gp`. Sources: gan_bench/reference/README.md.
"""

import csv
import io
import math
from dataclasses import dataclass
from importlib import resources

from gan_bench.errors import UserError
from gan_bench.reporting.groups import RATE_METRICS, Group, Mixed, completed_values, rate_of
from gan_bench.reporting.stats import Estimate, mean_ci

# name -> (csv file, value of its `source` column, dataset the protocol uses, what it is)
COMPARISONS = {
    "isit23-table1": ("isit23_ring.csv", "table1", "ring",
                      "ISIT'23 Table I: success %, saturating (alpha_D, alpha_G)-GAN, 8-Gaussian ring"),
    "isit23-table2": ("isit23_ring.csv", "table2", "ring",
                      "ISIT'23 Table II: failure %, saturating (alpha_D, alpha_G)-GAN, 8-Gaussian ring"),
    "isit23-table3": ("isit23_ring.csv", "table3", "ring",
                      "ISIT'23 Table III: success %, non-saturating (alpha_D, alpha_G)-GAN, ring"),
    "isit23-fig2b": ("isit23_ring.csv", "fig2b", "ring",
                     "ISIT'23 Fig. 2(b): success and failure %, saturating, alpha_D 0.2-0.4, alpha_G 1"),
    "isit23-lsgan": ("isit23_ring.csv", "text", "ring",
                     "ISIT'23 text: LSGAN (non-saturating) baseline success %, 8-Gaussian ring"),
    "isit23-table6": ("isit23_stacked_mnist.csv", "table6", "stacked",
                      "ISIT'23 Table VI: mean modes of 1000, non-saturating, Stacked MNIST, lr 1e-3"),
    "isit23-table7": ("isit23_stacked_mnist.csv", "table7", "stacked",
                      "ISIT'23 Table VII: mean modes of 1000, non-saturating, Stacked MNIST, lr 5e-4"),
    "r3gan-table1": ("r3gan_stacked_mnist.csv", "table1", "stacked",
                     "R3GAN Table 1: modes of 1000 and KL to uniform, {GAN, RpGAN} x {R1, R1 + R2}, Stacked "
                     "MNIST (fail: diverged early)"),
    "r3gan-table3": ("r3gan_stacked_mnist.csv", "table3", "stacked",
                     "R3GAN Table 3: modes of 1000 and KL to uniform, Stacked MNIST, as the paper quotes each method"),
}

# The CSVs' metric names -> the metric in result.json it is compared with (`modes` and `kl` of a
# Stacked MNIST run are smnist_modes<count> and smnist_modes<count>_kl: measure() maps them).
MEASURED = {"success": "success", "failure": "failure", "mean_modes_of_1000": "modes", "modes": "modes",
            "kl": "kl"}


@dataclass(frozen=True)
class RefRow:
    objective: str
    alpha_d: float | None  # None: the row has no alpha (a baseline)
    alpha_g: float | None
    metric: str  # measured metric name (MEASURED values)
    value: float  # percent for rates, a count for modes; nan where the paper reports a failure
    seeds: int | None  # None: the paper does not say
    model: str = ""  # the paper's name for the row, where it has one (R3GAN's tables)
    text: str = ""  # the published value as printed ("fail", "0.0781"); "" = print `value`

    @property
    def failed(self) -> bool:
        return self.text == "fail"


@dataclass(frozen=True)
class Comparison:
    name: str
    description: str
    dataset: str  # substring of dataset._target_ that the protocol needs
    rows: tuple[RefRow, ...]

    @property
    def metrics(self) -> list[str]:
        return sorted({r.metric for r in self.rows})


def _float(s: str) -> float | None:
    return float(s) if s.strip() else None


def load(name: str) -> Comparison:
    if name not in COMPARISONS:
        raise UserError(f"unknown --compare '{name}': choose one of "
                        f"{', '.join(COMPARISONS)}")
    fname, source, dataset, desc = COMPARISONS[name]
    text = resources.files("gan_bench").joinpath("reference").joinpath(fname).read_text()
    rows = []
    for r in csv.DictReader(io.StringIO(text)):
        if r["source"] != source:
            continue
        value = r.get("value_pct") or r.get("value")
        failed = value.strip() == "fail"
        text = value.strip() if "model" in r else ""  # R3GAN's rows print as published
        rows.append(RefRow(r["objective"], _float(r["alpha_d"]), _float(r["alpha_g"]),
                           MEASURED[r["metric"]], math.nan if failed else float(value),
                           int(r["seeds"]) if r["seeds"].strip() else None, r.get("model") or "", text))
    if not rows:  # a COMPARISONS entry without data is a packaging bug, not a user error
        raise RuntimeError(f"{fname} has no rows with source={source}")
    return Comparison(name, desc, dataset, tuple(rows))


def objective_of(g: Group) -> tuple[str | None, float | None, float | None]:
    """(objective, alpha_d, alpha_g) of a group, from its first run's resolved config."""
    run = g.runs[0]
    name = run.select("loss.name") or g.value("loss")
    gen = run.select("loss.generator")
    penalty = run.select("penalty.name")
    if name == "alpha" and gen in ("saturating", "ns"):
        obj = gen
    elif name == "lsgan" and gen in (None, "ns"):
        obj = "lsgan_ns"
    elif (name == "bce" and gen in (None, "ns")) or (name == "rsgan" and run.select("loss.variant") in (None, "sgan")):
        base = "gan" if name == "bce" else "rpgan"
        return (base if penalty in (None, "none") else f"{base}_{penalty}"), None, None
    elif name == "wgan" and penalty == "gp":
        return "wgan_gp", None, None
    else:
        return None, None, None
    return obj, _num(run.select("loss.alpha_d"), run.select("alpha_d")), \
        _num(run.select("loss.alpha_g"), run.select("alpha_g"))


def _num(*candidates) -> float | None:
    for c in candidates:
        try:
            return float(c)
        except (TypeError, ValueError):
            continue
    return None


def _same(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and math.isclose(a, b, abs_tol=1e-9)


def rows_for(g: Group, comp: Comparison, metric: str | None = None) -> list[RefRow]:
    """Reference rows this group measures (optionally only those of one metric)."""
    target = g.dataset
    if target is not None and comp.dataset not in str(target).lower():
        return []  # same objective on another dataset: not the published experiment
    obj, ad, ag = objective_of(g)
    return [r for r in comp.rows if r.objective == obj and (metric is None or r.metric == metric)
            and (r.alpha_d is None or (_same(r.alpha_d, ad) and _same(r.alpha_g, ag)))]


def modes_metric(metrics: set[str]) -> str | None:
    """The covered-modes metric: `modes` (toy) or the image metric `smnist_modes<count>`."""
    if "modes" in metrics:
        return "modes"
    named = sorted(m for m in metrics if m.startswith("smnist_modes") and not m.endswith("_kl"))
    return named[0] if named else None


def measure(g: Group, metric: str) -> Estimate | Mixed | None:
    """The measured value with its 95% interval: Wilson for rates, Student t for means."""
    if metric in ("modes", "kl") and (named := modes_metric(g.metrics)) and named != "modes":
        metric = named if metric == "modes" else f"{named}_kl"  # Stacked MNIST's names
    if metric in RATE_METRICS:
        return rate_of(g, metric)
    vals = completed_values(g, metric)
    if isinstance(vals, Mixed) or not vals:
        return vals or None
    return mean_ci(vals, digits=3 if metric == "hq" or metric.endswith("kl") else 1)


def inside(est, ref: RefRow) -> bool | None:
    return est.contains(ref.value) if isinstance(est, Estimate) else None
