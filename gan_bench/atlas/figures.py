"""The atlas's PNGs: per-seed strip plots per task, a heatmap of ranks (objective x task) and the
critical-difference diagram of a tier (scikit-posthocs draws it). Written only by the report."""

import math
from pathlib import Path

import numpy as np

from gan_bench import atomic


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "gan-bench"  # pictures regenerate alike
    return plt


def _save(fig, path: Path) -> Path:
    atomic.write_bytes(path, lambda f: fig.savefig(f, format="png", dpi=110, metadata={"Software": None}))
    _plt().close(fig)
    return path


def strip_plot(t, path: Path) -> Path:
    """Every evaluation seed's score per objective (best ranked on top); diverged seeds as x at the edge."""
    plt = _plt()
    res = t.results
    fig, ax = plt.subplots(figsize=(7.5, 1.0 + 0.24 * max(len(res), 1)))
    finite = [v for r in res for v in r.eval.values]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    log = lo > 0 and hi / lo > 100  # a few runaway seeds would squeeze the rest into one column
    if log:
        ax.set_xscale("log")
        edge = hi * 1.5 if t.info.direction == "min" else lo / 1.5
    else:
        edge = hi + 0.05 * (hi - lo or 1) if t.info.direction == "min" else lo - 0.05 * (hi - lo or 1)
    rng = np.random.default_rng(0)
    for y, r in enumerate(reversed(res)):
        vals = [v for v in (r.eval.oriented)]
        xs = [(v if t.info.direction == "max" else -v) if math.isfinite(v) else None for v in vals]
        ok = [x for x in xs if x is not None]
        jitter = rng.uniform(-0.18, 0.18, size=len(xs))
        ax.scatter(ok, y + jitter[: len(ok)], s=12, color="tab:blue", alpha=0.7)
        bad = len(xs) - len(ok)
        if bad:
            ax.scatter([edge] * bad, y + jitter[len(ok):], s=20, marker="x", color="tab:red")
        if ok:
            ax.plot([np.mean(ok)] * 2, [y - 0.3, y + 0.3], color="black", lw=1.5)
    ax.set_yticks(range(len(res)), [r.objective for r in reversed(res)], fontsize=7)
    ax.set_xlabel(f"{t.info.score} ({'higher' if t.info.direction == 'max' else 'lower'} is better"
                  f"{', log scale' if log else ''}); bar: mean of finite seeds; x: diverged")
    ax.set_title(f"{t.info.name}: evaluation seeds at each objective's selected lr", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def rank_heatmap(tier, path: Path) -> Path:
    plt = _plt()
    objs, tasks = tier.objectives, tier.tasks
    data = np.array([[tier.task_rank.get((o, t), np.nan) for t in tasks] for o in objs])
    fig, ax = plt.subplots(figsize=(2.2 + 1.1 * len(tasks), 1.0 + 0.24 * len(objs)))
    im = ax.imshow(data, cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_yticks(range(len(objs)), [f"{o} ({tier.mean_rank[o]:.1f})" for o in objs], fontsize=7)
    for i in range(len(objs)):
        for j in range(len(tasks)):
            if np.isfinite(data[i, j]):
                ax.text(j, i, f"{data[i, j]:.1f}", ha="center", va="center", fontsize=6,
                        color="white" if data[i, j] > np.nanmean(data) else "black")
    fig.colorbar(im, ax=ax, label="mean rank on the task (1 = best)")
    ax.set_title(f"tier {tier.tier}: rank per task (label: mean over tasks)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def cd_diagram(tier, path: Path) -> Path:
    import pandas as pd
    import scikit_posthocs as sp

    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 1.5 + 0.2 * len(tier.objectives)))
    sp.critical_difference_diagram(pd.Series(tier.mean_rank), tier.nemenyi, ax=ax,
                                   label_props={"fontsize": 7})
    ax.set_title(f"tier {tier.tier}: mean rank over {tier.blocks} blocks; bars join objectives the Nemenyi "
                 "test does not separate (0.05)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
