"""--curves METRIC[,METRIC]: each metric against step, one line per group, as a PNG per metric.

A group's line is the mean over its seeds at every step some seed evaluated, with a shaded 95%
percentile-bootstrap interval across seeds (reporting/stats.bootstrap_mean; a step where one seed has
a value gets the mean only). Not the t-interval: curves are distances, rates and counts, and a
t-band of a few seeds reaches below 0 (W1 down to -5 with two seeds); a bootstrap band stays within
the values measured. Every seed's values count, whatever its status:
a value at a step is a measurement whether or not the run later ended; a diverged seed's values
stop where it diverged (history.py), so the seeds behind a point can shrink along the line, and
the legend says how many diverged. Non-finite values are left out with a note.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gan_bench import atomic
from gan_bench.errors import UserError
from gan_bench.reporting.groups import Group
from gan_bench.reporting.history import RunHistory, seed_series
from gan_bench.reporting.stats import bootstrap_mean
from gan_bench.reporting.tables import fixed_keys, shown_keys

# Groups differ by line style and marker as well as colour, so a grey print still tells them apart.
STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LOG_SPAN = 100.0  # a positive metric spanning more than 2 decades gets a log y-axis


def parse_names(text: str) -> list[str]:
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise UserError(f"--curves needs metric names, got '{text}': e.g. --curves w1,kl_data_model")
    return names


@dataclass
class Curve:
    steps: np.ndarray  # every step some seed has a finite value at
    mean: np.ndarray
    lo: np.ndarray  # 95% bootstrap interval; nan where fewer than two seeds have a value
    hi: np.ndarray
    n: np.ndarray  # seeds behind each point
    seeds: int  # seeds with any finite value
    diverged: int  # of them, diverged
    dropped: int  # non-finite values left out


def group_curve(g: Group, histories: dict[Path, RunHistory], metric: str) -> Curve | None:
    """The group's mean and band per step; None when no seed has a finite value."""
    per_seed, diverged, dropped = [], 0, 0
    for seed in g.seeds:
        series = seed_series(histories, seed, metric)
        kept = {s: v for s, v in series if np.isfinite(v)}
        dropped += len(series) - len(kept)
        if kept:
            per_seed.append(kept)
            diverged += seed.status == "diverged"
    if not per_seed:
        return None
    steps = np.array(sorted(set().union(*per_seed)))
    column = {s: j for j, s in enumerate(steps)}
    values = np.full((len(per_seed), len(steps)), np.nan)  # seeds x steps, nan where not evaluated
    for i, kept in enumerate(per_seed):
        for s, v in kept.items():
            values[i, column[s]] = v
    n = np.sum(~np.isnan(values), axis=0)
    mean = np.nanmean(values, axis=0)
    lo, hi = np.full(len(steps), np.nan), np.full(len(steps), np.nan)
    for j in np.flatnonzero(n >= 2):
        col = values[:, j]
        lo[j], hi[j] = bootstrap_mean(col[~np.isnan(col)])
    return Curve(steps, mean, lo, hi, n, len(per_seed), diverged, dropped)


def log_scale(curves: list[Curve]) -> bool:
    """Whether the means are all positive and span more than LOG_SPAN (about 2 decades)."""
    means = np.concatenate([c.mean for c in curves])
    return bool(means.min() > 0 and means.max() / means.min() > LOG_SPAN)


def legend_labels(groups: list[Group]) -> list[str]:
    # Only the keys that differ between groups: the rest are in the title.
    if len(groups) == 1:
        return [groups[0].label]
    shown = shown_keys(groups)
    return [",".join(f"{g.key[i][0]}={g.key[i][1] or 'default'}" for i in shown) for g in groups]


def plot(labelled: list[tuple[str, Curve]], metric: str, subtitle: str, path: Path) -> Path:
    # Figure + Agg canvas directly, as pivot.heatmap: no pyplot, no global backend state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    log = log_scale([c for _, c in labelled])
    fig = Figure(figsize=(8, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = [f"C{i % 10}" for i in range(len(labelled))]
    for i, (label, c) in enumerate(labelled):
        lo = c.lo
        if log:
            # A band reaching zero or below runs off the bottom of a log axis rather than vanishing.
            lo = np.where(lo > 0, lo, np.nanmin(c.mean) / 1e3)
        # A thin edge in the line's colour keeps overlapping bands apart where tints blur in print.
        ax.fill_between(c.steps, lo, c.hi, facecolor=to_rgba(colours[i], 0.15),
                        edgecolor=to_rgba(colours[i], 0.6), linewidth=0.6)
        extra = f", {c.diverged} diverged" if c.diverged else ""
        ax.plot(c.steps, c.mean, color=colours[i], linestyle=STYLES[i % len(STYLES)],
                marker=MARKERS[i % len(MARKERS)], markevery=max(1, len(c.steps) // 12), markersize=5,
                label=f"{label} ({c.seeds} seeds{extra})")
    if log:
        ax.set_yscale("log")
        means = np.concatenate([c.mean for _, c in labelled])
        tops = np.concatenate([np.where(np.isnan(c.hi), c.mean, c.hi) for _, c in labelled])
        ax.set_ylim(means.min() / 2, tops.max() * 2)  # the clipped band ends at the axis
    ax.set_xlabel("step")
    ax.set_ylabel(metric + (" (log scale)" if log else ""))
    ax.set_title(f"{metric} against step{' (log y-axis)' if log else ''}: mean over seeds, "
                 f"shaded 95% bootstrap interval" + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def write(groups: list[Group], histories: dict[Path, RunHistory], metric: str, out_dir: Path,
          notes: list[str]) -> Path | None:
    """curves_<metric>.png in out_dir, with notes for groups left out and values dropped."""
    labelled, missing, dropped = [], [], 0
    for g, label in zip(groups, legend_labels(groups)):
        c = group_curve(g, histories, metric)
        if c is None:
            missing.append(label)
            continue
        labelled.append((label, c))
        dropped += c.dropped
    if dropped:
        notes.append(f"curves {metric}: {dropped} non-finite value(s) left out of the means")
    if missing:
        notes.append(f"curves {metric}: no finite values for {', '.join(missing)}; not drawn")
    if not labelled:
        return None
    fixed = fixed_keys(groups)
    path = out_dir / f"curves_{re.sub(r'[^A-Za-z0-9._=,-]+', '_', metric)}.png"
    write_csv(labelled, path.with_suffix(".csv"))
    return plot(labelled, metric, f"every group: {fixed}" if fixed else "", path)


def write_csv(labelled: list[tuple[str, Curve]], path: Path) -> Path:
    """The numbers behind the picture, one row per group and step (docs quote them from here):
    group, step, seeds with a value, mean, 95% interval (empty where one seed has a value)."""
    import csv
    import io

    cell = lambda x: "" if np.isnan(x) else f"{x:.6g}"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["group", "step", "n", "mean", "lo", "hi"])
    for label, c in labelled:
        w.writerows([label, int(s), int(k), cell(m), cell(lo), cell(hi)]
                    for s, k, m, lo, hi in zip(c.steps, c.n, c.mean, c.lo, c.hi))
    atomic.write_text(path, buf.getvalue())
    return path
