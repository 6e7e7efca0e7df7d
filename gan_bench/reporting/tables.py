"""The report's tables: one row per group, and the comparison with published numbers."""

from gan_bench.reporting import groups as G
from gan_bench.reporting.groups import Group, Mixed
from gan_bench.reporting.reference import Comparison, inside, measure, modes_metric, rows_for
from gan_bench.reporting.render import Column, Table
from gan_bench.reporting.stats import MeanStd

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


def _mean(g: Group, metric: str):
    m = G.mean_of(g, metric)
    return m.mean if isinstance(m, MeanStd) else m


def fid_metrics(groups: list[Group]) -> list[str]:
    return sorted({m for g in groups for m in g.metrics if m.startswith("fid")})


def main_table(groups: list[Group], collapse_fid: float, compact: bool = True) -> Table:
    present = set().union(*(g.metrics for g in groups))
    cols = key_columns(groups, compact) + [Column("n", ["n"])] + [Column(c, [c]) for c in COUNTS]
    # (column, cell function) pairs, only for metrics some run reports.
    spec = []
    for m in G.RATE_METRICS:
        if m in present:
            spec.append((Column(f"{m} % [95% CI]", [f"{m}_pct", f"{m}_lo", f"{m}_hi"]),
                         lambda g, m=m: G.rate_of(g, m)))
    if "hq" in present:
        spec.append((Column("hq mean ± std", ["hq_mean", "hq_std"]), lambda g: G.mean_of(g, "hq")))
    modes = modes_metric(present)
    if modes is not None:
        spec.append((Column(f"{modes} mean", [f"{modes}_mean"]), lambda g: _mean(g, modes)))
    for m in fid_metrics(groups):
        spec += [
            (Column(f"{m} mean", [f"{m}_mean"]), lambda g, m=m: _mean(g, m)),
            (Column(f"{m} median", [f"{m}_median"]), lambda g, m=m: G.median_of(g, m)),
            (Column(f"{m} > {collapse_fid:g} % [95% CI]",
                    [f"{m}_collapse_pct", f"{m}_collapse_lo", f"{m}_collapse_hi"]),
             lambda g, m=m: G.collapse_of(g, m, collapse_fid)),
        ]
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
            est = measure(g, ref.metric)
            flag = inside(est, ref)
            n = None if est is None or isinstance(est, Mixed) else est.n
            t.rows.append(key_cells(g, shown) + [ref.metric, est, n, ref.value, ref.seeds,
                                          None if flag is None else ("yes" if flag else "no")])
    notes = []
    if not t.rows:
        notes.append(f"{comp.name}: no group matches a published cell (the mapping reads loss.name, "
                     "loss.generator, loss.alpha_d, loss.alpha_g and dataset from .hydra/config.yaml)")
    elif len(matched) < len(comp.rows):
        notes.append(f"{comp.name}: {len(matched)} of {len(comp.rows)} published cells measured")
    return t, notes
