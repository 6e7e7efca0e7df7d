"""From results rows to what the report shows: per task the selected lr and its evaluation seeds,
the sensitivity to the lr, ranks within (task, seed) blocks; per tier the cross-task ranks, the
Friedman test and the sign tests against the baseline. Rules: gan_bench/atlas/stats.py."""

from dataclasses import dataclass, field

import numpy as np

from gan_bench.atlas import stats, tasks as tasks_mod

BASELINE = "bce-ns"


@dataclass
class TaskInfo:
    name: str
    tier: str
    score: str
    direction: str
    reach: str
    metrics: list[str]
    overrides: str
    lrs: list[float]
    select: int
    eval: int


@dataclass
class Result:
    """One objective on one task at its selected lr."""

    objective: str
    overrides: str
    lr: float
    eval: stats.Summary
    sensitivity: dict[float, stats.Summary]  # every lr, on the selection seeds
    rank: float | None = None  # mean rank over the task's blocks


@dataclass
class TaskResults:
    info: TaskInfo
    results: list[Result]  # ranked, best first
    incomplete: dict[str, str] = field(default_factory=dict)  # objective -> why it is left out
    wall: float = 0.0  # seconds, every cell of the task
    cells: int = 0
    eval_seeds: list[int] = field(default_factory=list)
    matrix: np.ndarray | None = None  # oriented eval scores [seeds, objectives in `results` order]


@dataclass
class TierResults:
    tier: str
    tasks: list[str]
    objectives: list[str]  # those complete on every task of the tier, by mean rank
    mean_rank: dict[str, float]
    task_rank: dict[tuple[str, str], float]  # (objective, task) -> mean rank on that task
    blocks: int
    friedman: tuple[float, float] | None
    nemenyi: object | None  # DataFrame of p-values
    tests: dict[str, stats.SignTest]  # objective -> sign test against the baseline over all blocks
    matrix: np.ndarray | None = None


def _info(row: dict) -> TaskInfo:
    return TaskInfo(row["task"], row["tier"], row["score"], row["direction"], row["reach"], list(row["metrics"]),
                    row["task_overrides"], [], row["select"], row["eval"])


def latest(rows: list[dict]) -> list[dict]:
    """One row per cell name: the last written (a cell re-run under a new budget replaces the old)."""
    out = {}
    for r in rows:
        out.pop(r["cell"], None)
        out[r["cell"]] = r
    return list(out.values())


def task_order(names) -> list[str]:
    try:
        known = list(tasks_mod.load().tasks)
    except Exception:  # a report never fails for want of gan-bench's own task list
        known = []
    return sorted(names, key=lambda n: (known.index(n) if n in known else len(known), n))


def analyse_task(rows: list[dict]) -> TaskResults:
    """The task's lr grid is what its rows say (every lr any of them ran, where older rows do not
    carry the grid): an objective is ranked once it has a row at every lr of it."""
    info = _info(rows[0])
    by_obj: dict[str, list[dict]] = {}
    for r in rows:
        by_obj.setdefault(r["objective"], []).append(r)
    info.lrs = sorted({lr for r in rows for lr in (r.get("lrs") or [r["lr"]])})
    out = TaskResults(info, [], wall=sum(r.get("wall_seconds") or 0 for r in rows), cells=len(rows))
    for obj, rs in by_obj.items():
        have = {r["lr"] for r in rs}
        missing = [lr for lr in info.lrs if lr not in have]
        if missing:
            out.incomplete[obj] = f"{len(have)} of {len(info.lrs)} learning rates measured"
            continue
        rs = sorted((r for r in rs if r["lr"] in info.lrs), key=lambda r: r["lr"])
        lr = stats.select_lr(rs)
        chosen = next(r for r in rs if r["lr"] == lr)
        out.results.append(Result(obj, chosen["overrides"], lr, stats.summarize(chosen, "eval"),
                                  {r["lr"]: stats.summarize(r, "select") for r in rs}))
    _rank_task(out)
    return out


def _rank_task(t: TaskResults) -> None:
    """Mean rank over the task's evaluation seeds (blocks); objectives scored on other seeds are left out."""
    if not t.results:
        return
    seeds = _common_seeds([r.eval.seeds for r in t.results])
    for r in [r for r in t.results if r.eval.seeds != seeds]:
        t.incomplete[r.objective] = f"evaluated on seeds {r.eval.seeds}, not the task's {seeds}"
    t.results = [r for r in t.results if r.eval.seeds == seeds]
    t.eval_seeds = seeds
    t.matrix = np.array([r.eval.oriented for r in t.results]).T  # [seeds, objectives]
    ranks = stats.block_ranks(t.matrix).mean(axis=0)
    for r, rank in zip(t.results, ranks):
        r.rank = float(rank)
    t.results.sort(key=lambda r: (r.rank, r.objective))
    t.matrix = np.array([r.eval.oriented for r in t.results]).T


def _common_seeds(seed_lists: list[list[int]]) -> list[int]:
    counts: dict[tuple, int] = {}
    for s in seed_lists:
        counts[tuple(s)] = counts.get(tuple(s), 0) + 1
    return list(max(counts, key=lambda s: (counts[s], [-x for x in s])))


def analyse_tier(tier: str, tasks: list[TaskResults]) -> TierResults:
    names = [t.info.name for t in tasks]
    common = set.intersection(*({r.objective for r in t.results} for t in tasks)) if tasks else set()
    objectives = sorted(common)
    task_rank = {(r.objective, t.info.name): r.rank for t in tasks for r in t.results}
    if len(objectives) < 2:
        return TierResults(tier, names, objectives, {}, task_rank, 0, None, None, {})
    blocks = []
    for t in tasks:
        col = {r.objective: i for i, r in enumerate(t.results)}
        blocks.append(t.matrix[:, [col[o] for o in objectives]])
    m = np.vstack(blocks)  # [(task, seed) blocks, objectives]
    mean_rank = dict(zip(objectives, stats.block_ranks(m).mean(axis=0).tolist()))
    order = sorted(objectives, key=lambda o: (mean_rank[o], o))
    m = m[:, [objectives.index(o) for o in order]]
    friedman = stats.friedman(m) if len(order) >= 3 else None
    nemenyi = stats.nemenyi(m, order) if len(order) >= 3 else None
    tests = {}
    if BASELINE in order:
        b = m[:, order.index(BASELINE)]
        tests = {o: stats.sign_test(m[:, i], b) for i, o in enumerate(order) if o != BASELINE}
        stats.holm(list(tests.values()))
    return TierResults(tier, names, order, mean_rank, task_rank, m.shape[0], friedman, nemenyi, tests, m)


def analyse(rows: list[dict]):
    """(tasks in order, tiers in order) from every row."""
    rows = latest(rows)
    by_task: dict[str, list[dict]] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)
    tasks = [analyse_task(by_task[n]) for n in task_order(by_task)]
    tiers = []
    for tier in dict.fromkeys(t.info.tier for t in tasks):
        tiers.append(analyse_tier(tier, [t for t in tasks if t.info.tier == tier and t.results]))
    return tasks, tiers
