"""`gan-bench atlas report`: atlas.md, its CSVs and PNGs, regenerated from the results file alone
(plus an optional hand-written reading, included verbatim), the same bytes every time."""

import csv
import io
import math
from pathlib import Path

from gan_bench import atomic
from gan_bench.atlas import figures, stats
from gan_bench.atlas.analysis import BASELINE, TaskResults, TierResults, analyse, latest

FILES = "atlas"  # the CSVs and PNGs go to <out>/atlas/, beside atlas.md


def num(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "–"
    if not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}" if abs(x) < 10 ** digits else f"{x:.0f}"


def estimate(s: stats.Summary) -> str:
    iv = s.interval()
    return num(s.mean) + (f" [{num(iv[0])}, {num(iv[1])}]" if iv else "")


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    atomic.write_text(path, buf.getvalue())


def _reach(s: stats.Summary) -> str:
    med = s.median_reach
    return f"{s.reached}/{s.n}" + (f", median {med:.0f}" if med is not None else "")


def task_section(t: TaskResults, files: Path, rel: str) -> str:
    i = t.info
    extra = [m for m in i.metrics if m != "success"]  # success has its own column
    header = ["rank", "objective", "lr", f"{i.score} ({i.direction}) mean [95%]", "success", "diverged",
              f"reached {i.reach}", *[f"{m} mean" for m in extra]]
    rows, csv_rows = [], []
    for r in t.results:
        e = r.eval
        succ = f"{e.successes}/{e.n}" if e.successes is not None else "–"
        means = [num(float(sum(v) / len(v))) if (v := e.metrics.get(m)) else "–" for m in extra]
        rows.append([f"{r.rank:.2f}", f"`{r.objective}`", f"{r.lr:g}", estimate(e), succ, f"{e.diverged}/{e.n}",
                     _reach(e), *means])
        iv = e.interval() or (None, None)
        csv_rows.append([i.name, r.objective, r.overrides, r.lr, f"{r.rank:.4f}", _c(e.mean), _c(iv[0]), _c(iv[1]),
                         e.successes if e.successes is not None else "", e.diverged, e.n, e.reached,
                         _c(e.median_reach), *[_c(float(sum(v) / len(v))) if (v := e.metrics.get(m)) else ""
                                               for m in extra]])
    _csv(files / f"task_{i.name}.csv", ["task", "objective", "overrides", "lr", "mean_rank", "mean", "lo", "hi",
                                        "successes", "diverged", "seeds", "reached", "median_reach_step",
                                        *extra], csv_rows)
    strip = figures.strip_plot(t, files / f"strip_{i.name}.png")
    sens_rows, sens_csv = [], []
    for r in sorted(t.results, key=lambda r: r.objective):
        cells = []
        for lr in i.lrs:
            s = r.sensitivity[lr]
            med = s.median_oriented
            med = med if i.direction == "max" or not math.isfinite(med) else -med
            cells.append(f"{num(med)}" + (f" ({s.diverged} div.)" if s.diverged else "")
                         + (" *" if lr == r.lr else ""))
            sens_csv.append([i.name, r.objective, lr, _c(med), _c(s.mean), s.diverged, s.n, int(lr == r.lr)])
        sens_rows.append([f"`{r.objective}`", *cells])
    _csv(files / f"sensitivity_{i.name}.csv", ["task", "objective", "lr", "median_score", "mean_finite",
                                               "diverged", "seeds", "selected"], sens_csv)
    left = "".join(f"\n- `{o}`: {why}" for o, why in sorted(t.incomplete.items()))
    return "\n".join([
        f"### Task `{i.name}`",
        "",
        f"Budget: `{i.overrides}`; score `{i.score}` ({'higher' if i.direction == 'max' else 'lower'} is better); "
        f"steps-to-reach `{i.reach}`; lr grid {', '.join(f'{x:g}' for x in i.lrs)}; seeds: the first {i.select} "
        f"of each cell choose the lr, the next {i.eval} ({_seeds(t.eval_seeds)}) score it. {t.cells} cells, "
        f"{t.wall / 3600:.2f} h of jobs.",
        "",
        "Objectives by mean rank over the evaluation seeds (rank 1 best in each seed, ties shared; a diverged "
        "seed ranks last). Mean over the seeds that did not diverge, with its 95% percentile-bootstrap interval; "
        "`success` counts seeds with every mode covered; `reached`: seeds that met the threshold at an "
        "evaluation, and the median step over all seeds where at least half did.",
        "",
        table(header, rows),
        "",
        f"![per-seed scores on {i.name}]({rel}/{strip.name})",
        "",
        f"Sensitivity: the median `{i.score}` of the {i.select} selection seeds at each lr (* the lr selected; "
        "div.: selection seeds that diverged; a median of -inf or inf means half or more diverged).",
        "",
        table(["objective", *[f"lr {x:g}" for x in i.lrs]], sens_rows),
        *(["", "Left out:" + left] if left else []),
        "",
    ])


def _seeds(seeds: list[int]) -> str:
    if seeds and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds))


def _c(x):
    return "" if x is None or not math.isfinite(x) else float(f"{x:.6g}")


def tier_section(tier: TierResults, tasks: list[TaskResults], files: Path, rel: str) -> str:
    if len(tier.objectives) < 2:
        return f"## Tier `{tier.tier}`\n\nFewer than two objectives are complete on every task of the tier.\n"
    n_obj = len(tier.objectives)
    fried = tier.friedman
    lines = [f"## Tier `{tier.tier}`", "",
             f"{n_obj} objectives complete on its {len(tier.tasks)} task(s) ({', '.join(tier.tasks)}): "
             f"{tier.blocks} (task, seed) blocks."]
    if fried:
        lines += ["", f"Friedman test of equal mean ranks over the blocks: chi-square {fried[0]:.1f} "
                      f"({n_obj - 1} degrees of freedom), p = {fried[1]:.2g}."]
    heat = figures.rank_heatmap(tier, files / f"ranks_{tier.tier}.png")
    cd = figures.cd_diagram(tier, files / f"cd_{tier.tier}.png") if tier.nemenyi is not None else None
    header = ["mean rank", "objective", *[f"rank on {t}" for t in tier.tasks],
              f"sign test vs `{BASELINE}` (W/T/L)", "p", "p (Holm)"]
    rows, csv_rows = [], []
    for o in tier.objectives:
        st = tier.tests.get(o)
        per_task = [f"{tier.task_rank[(o, t)]:.2f}" for t in tier.tasks]
        test = [f"{st.wins}/{st.ties}/{st.losses}", f"{st.p:.2g}", f"{st.p_holm:.2g}"] if st else ["–", "–", "–"]
        rows.append([f"{tier.mean_rank[o]:.2f}", f"`{o}`", *per_task, *test])
        csv_rows.append([tier.tier, o, f"{tier.mean_rank[o]:.4f}", *[f"{tier.task_rank[(o, t)]:.4f}"
                                                                      for t in tier.tasks],
                         *([st.wins, st.ties, st.losses, _c(st.p), _c(st.p_holm)] if st else [""] * 5)])
    _csv(files / f"ranks_{tier.tier}.csv", ["tier", "objective", "mean_rank", *[f"rank_{t}" for t in tier.tasks],
                                            "wins", "ties", "losses", "p", "p_holm"], csv_rows)
    lines += ["", table(header, rows), "", f"![ranks by task]({rel}/{heat.name})"]
    if cd is not None:
        lines += ["", "Critical-difference diagram (scikit-posthocs; Nemenyi post-hoc test at 0.05): objectives "
                      "joined by a bar are not resolved from each other.", "",
                  f"![critical differences]({rel}/{cd.name})"]
    lines += ["", resolution(tier, tasks), ""]
    return "\n".join(lines)


def resolution(tier: TierResults, tasks: list[TaskResults]) -> str:
    """What the seeds can resolve, and what they did."""
    n = len(tasks[0].eval_seeds) if tasks else 0
    m = max(len(tier.tests), 1)
    one = stats.smallest_sign_gap(n)
    held = stats.smallest_sign_gap(n, comparisons=m)
    rate = stats.smallest_rate_gap(n)
    across = stats.smallest_sign_gap(tier.blocks, comparisons=m)
    sig = sorted(o for o, t in tier.tests.items() if t.p_holm is not None and t.p_holm < 0.05)
    better = [o for o in sig if tier.tests[o].wins > tier.tests[o].losses]
    worse = [o for o in sig if tier.tests[o].wins < tier.tests[o].losses]
    text = [f"What {n} evaluation seeds resolve: on one task a sign test needs {one} of {n} seeds won and none lost "
            f"for p < 0.05" + (f", and {held} for the strictest Holm threshold over {m} comparisons" if held else
                               f"; no outcome of {n} seeds passes the strictest Holm threshold over {m} comparisons")
            + (f". Two success rates on independent seeds differ at p < 0.05 (Fisher's exact test) only from a "
               f"gap of {rate} of {n} seeds ({100 * rate / n:.0f} points) up" if rate else "")
            + f". Across the tier's {tier.blocks} blocks the strictest Holm threshold needs "
            + (f"{across} blocks won without a loss." if across else "more blocks than there are."),
            "",
            f"Against `{BASELINE}` after Holm's correction: "
            + (f"better: {', '.join(f'`{o}`' for o in better) or 'none'}; worse: "
               f"{', '.join(f'`{o}`' for o in worse) or 'none'}; every other difference is not resolved by these "
               "seeds." if tier.tests else f"`{BASELINE}` is not complete on this tier.")]
    return "\n".join(text)


def cost_section(rows: list[dict], tasks: list[TaskResults]) -> str:
    """Wall time of the cell jobs: per task, and per objective kind where it differs most."""
    import numpy as np

    lines = ["## Cost", "", "Wall seconds of the cell jobs as the results record them (one job trains a cell's "
             "seeds as one ensemble; parallel jobs overlap, so a tier's elapsed time is less than its sum).", ""]
    body = []
    for t in tasks:
        rs = [r for r in rows if r["task"] == t.info.name]
        walls = [r.get("wall_seconds") or 0.0 for r in rs]
        by_obj: dict[str, list[float]] = {}
        for r in rs:
            by_obj.setdefault(r["objective"], []).append(r.get("wall_seconds") or 0.0)
        slow = sorted(by_obj, key=lambda o: -float(np.mean(by_obj[o])))[:3]
        body.append([t.info.tier, t.info.name, str(len(rs)), f"{sum(walls) / 3600:.2f}", f"{np.median(walls):.0f}",
                     ", ".join(f"`{o}` {np.mean(by_obj[o]):.0f}" for o in slow)])
    lines.append(table(["tier", "task", "cells", "hours", "median s / cell", "costliest (mean s / cell)"], body))
    return "\n".join(lines) + "\n"


def write(rows: list[dict], out: Path, source: str = "", reading: Path | None = None) -> Path:
    out = Path(out)
    files = out / FILES
    files.mkdir(parents=True, exist_ok=True)
    rows = latest(rows)
    tasks, tiers = analyse(rows)
    wall = sum(r.get("wall_seconds") or 0 for r in rows)
    parts = ["# The objective atlas", "",
             f"Generated by `gan-bench atlas report --results {source} --out DIR` from {len(rows)} result rows "
             f"({wall / 3600:.2f} h of cell jobs): regenerate it, do not edit it.", ""]
    if reading is not None and reading.exists():
        parts += [reading.read_text().rstrip(), ""]
    for tier in tiers:
        parts.append(tier_section(tier, [t for t in tasks if t.info.tier == tier.tier and t.results], files, FILES))
        parts += [task_section(t, files, FILES) for t in tasks if t.info.tier == tier.tier]
    parts.append(cost_section(rows, tasks))
    path = out / "atlas.md"
    atomic.write_text(path, "\n".join(parts).rstrip() + "\n")
    return path
