"""The report's tables: one row per group, and the comparison with published numbers."""

import math

from gan_bench.errors import UserError
from gan_bench.reporting import groups as G
from gan_bench.reporting.groups import Group, Mixed
from gan_bench.reporting.reference import Comparison, inside, measure, rows_for
from gan_bench.reporting.render import Column, Table

COUNTS = ("completed", "diverged", "failed", "incomplete")


def shown_keys(groups: list[Group], compact: bool = True) -> list[int]:
    """Key columns worth a column: those that differ between groups. A sweep's fixed overrides
    (experiment=..., train.steps=...) go to the title instead; one group shows all its keys, and
    so does a machine-read table (compact=False, csv)."""
    n = len(groups[0].key)
    varying = [i for i in range(n) if len({g.key[i][1] for g in groups}) > 1]
    return varying if compact and varying and len(groups) > 1 else list(range(n))


def fixed_keys(groups: list[Group], compact: bool = True) -> str:
    shown = set(shown_keys(groups, compact))
    return ", ".join(f"{k}={v}" for i, (k, v) in enumerate(groups[0].key) if i not in shown and v != "")


def key_columns(groups: list[Group], compact: bool = True) -> list[Column]:
    return [Column(groups[0].key[i][0], [groups[0].key[i][0]], text=True) for i in shown_keys(groups, compact)]


def key_cells(g: Group, shown: list[int]) -> list:
    # An empty value means the group ran with the config default for that key.
    return [g.key[i][1] if g.key[i][1] != "" else None for i in shown]


def _title(text: str, groups: list[Group], compact: bool) -> str:
    fixed = fixed_keys(groups, compact)
    return f"{text} (every group: {fixed})" if fixed else text


# The toy metrics in the order the report has always shown them; every other metric follows in the
# order the runs computed it (result.json's order, e.g. eval.final_metrics' order for image runs).
SHOWN_FIRST = ("success", "failure", "hq", "modes", "kl", "rkl", "js", "tv")


def metric_names(groups: list[Group]) -> list[str]:
    """Every numeric metric some group reports, in the order the table shows them."""
    seen: dict[str, None] = {}
    for g in groups:
        for s in g.seeds:
            seen.update((m, None) for m in s.metrics if m in g.metrics)
        seen.update((m, None) for m in sorted(g.metrics))  # borrowed ones no seed of g recorded
    first = [m for m in SHOWN_FIRST if m in seen]
    return first + [m for m in seen if m not in first]


def choose_metrics(groups: list[Group], names: list[str]) -> list[str]:
    """`--metrics a,b`: each name a metric key, or the family of keys it starts (prdc10k_train ->
    prdc10k_train_precision, ..._recall, ...). UserError for a name no run reports."""
    known, out = metric_names(groups), []
    for name in names:
        keys = [name] if name in known else [k for k in known if k.startswith(name + "_")]
        if not keys:
            raise UserError(f"no run reports metric '{name}': choose --metrics from "
                            f"{', '.join(known) or '(none: no run has completed)'}")
        out += [k for k in keys if k not in out]
    return out


def digits_for(groups: list[Group], metric: str) -> int:
    """Decimals for a metric's column: 2 from 10 up (FID, modes of 1000), 3 from 0.1 up (hq,
    covered modes of 8), else 3 significant digits of the column's largest value (KID, KL)."""
    top = 0.0
    for g in groups:
        vals = G.completed_values(g, metric)
        if isinstance(vals, list):  # Mixed cells print no number
            top = max([top] + [abs(v) for v in vals if math.isfinite(v)])
    if top >= 10:
        return 2
    if top >= 0.1 or top == 0:
        return 3
    return min(8, 2 - math.floor(math.log10(top)))


def metric_columns(groups: list[Group], metrics: list[str], collapse_fid: float) -> list[tuple]:
    """(column, cell function) pairs: a rate with its Wilson interval, else mean ± std over completed
    seeds, and for FID also the median and the collapse rate."""
    spec = []
    for m in metrics:
        if m in G.RATE_METRICS:
            spec.append((Column(f"{m} % [95% CI]", [f"{m}_pct", f"{m}_lo", f"{m}_hi"]),
                         lambda g, m=m: G.rate_of(g, m)))
            continue
        d = digits_for(groups, m)
        spec.append((Column(f"{m} mean ± std", [f"{m}_mean", f"{m}_std"]),
                     lambda g, m=m, d=d: G.mean_of(g, m, d)))
        if m.startswith("fid"):
            spec += [
                (Column(f"{m} median", [f"{m}_median"], digits=d), lambda g, m=m: G.median_of(g, m)),
                (Column(f"{m} > {collapse_fid:g} % [95% CI]",
                        [f"{m}_collapse_pct", f"{m}_collapse_lo", f"{m}_collapse_hi"]),
                 lambda g, m=m: G.collapse_of(g, m, collapse_fid)),
            ]
    return spec


def main_table(groups: list[Group], collapse_fid: float, compact: bool = True,
               metrics: list[str] | None = None) -> Table:
    """One row per group: seed counts, then a column per metric (every one some run reports, or
    `metrics` in that order)."""
    cols = key_columns(groups, compact) + [Column("n", ["n"])] + [Column(c, [c]) for c in COUNTS]
    spec = metric_columns(groups, metric_names(groups) if metrics is None else metrics, collapse_fid)
    t = Table(_title("Runs by group (seeds pooled)", groups, compact), cols + [c for c, _ in spec])
    shown = shown_keys(groups, compact)
    for g in groups:
        counts = g.counts()
        t.rows.append(key_cells(g, shown) + [len(g.seeds)] + [counts[c] for c in COUNTS]
                      + [fn(g) for _, fn in spec])
    return t


def compare_table(groups: list[Group], comp: Comparison, compact: bool = True) -> tuple[Table, list[str]]:
    cols = key_columns(groups, compact) + [
        Column("metric", ["metric"], text=True),
        Column("measured [95% CI]", ["measured", "measured_lo", "measured_hi"]),
        Column("n", ["n"]),
        Column("published", ["published"], digits=1),
        Column("published seeds", ["published_seeds"]),
        Column("inside 95% CI", ["inside"], text=True),
    ]
    t = Table(_title(f"Compared with {comp.name}: {comp.description}", groups, compact), cols)
    shown = shown_keys(groups, compact)
    matched = set()
    for g in groups:
        for ref in rows_for(g, comp):
            matched.add(ref)
            metric = f"{ref.metric} ({ref.model})" if ref.model else ref.metric
            if ref.failed:  # the paper's "fail": how many of ours diverged is the comparison
                div = sum(s.status == "diverged" for s in g.seeds)
                t.rows.append(key_cells(g, shown) + [metric, f"diverged {div}/{len(g.seeds)}", len(g.seeds),
                                                     "fail", ref.seeds, None])
                continue
            est = measure(g, ref.metric)
            flag = inside(est, ref)
            n = None if est is None or isinstance(est, Mixed) else est.n
            t.rows.append(key_cells(g, shown) + [metric, est, n, ref.text or ref.value, ref.seeds,
                                                 None if flag is None else ("yes" if flag else "no")])
    notes = []
    if not t.rows:
        notes.append(f"{comp.name}: no group matches a published cell (the mapping reads loss.name, "
                     "loss.generator, loss.alpha_d, loss.alpha_g and dataset from .hydra/config.yaml)")
    elif len(matched) < len(comp.rows):
        notes.append(f"{comp.name}: {len(matched)} of {len(comp.rows)} published cells measured")
    unmapped = [r for r in comp.rows if not r.objective]
    if unmapped:  # methods gan-bench has no counterpart of (R3GAN's Table 3): printed for reference
        by_model: dict[str, list[str]] = {}
        for r in unmapped:
            by_model.setdefault(r.model, []).append(f"{r.metric} {r.text or r.value}")
        notes.append(f"{comp.name}, published without a gan-bench counterpart: "
                     + "; ".join(f"{m} {', '.join(v)}" for m, v in by_model.items()))
    return t, notes
