"""`hydra.callbacks.atlas`: when a cell's job ends, its results row (results.py), and a line of progress.

The row is built from the run directory alone (result.json, metrics.jsonl) and the cell's JSON
beside its config file, in the job's own process: a cell finished is a row written, whatever
becomes of the launcher or of the other cells. A job that failed (an error, not a divergence)
writes no row; the next `gan-bench atlas run` trains it again (or resumes it from its checkpoint).
"""

import json
import logging
import math
import time
from datetime import datetime, timezone
from pathlib import Path

from hydra.experimental.callback import Callback

from gan_bench import records
from gan_bench.atlas import results
from gan_bench.atlas.tasks import score_value
from gan_bench.reporting.history import read_history
from gan_bench.reporting.reach import Condition, first_reach

log = logging.getLogger(__name__)


def seed_records(result: dict) -> list[dict]:
    """One record per seed of the run (a single run is its own only seed), with its replica index."""
    if result.get("replicas"):
        return [{**r, "replica": i} for i, r in enumerate(result["replicas"])]
    return [{"seed": result.get("seed"), "status": result["status"], "diverged_at": result.get("diverged_at"),
             "metrics": result.get("metrics", {}), "replica": None}]


def _value(v):
    try:
        return float(v)  # "nan"/"inf" as result.json writes them
    except (TypeError, ValueError):
        return None


def build_row(meta: dict, result: dict, run_dir: Path, job_seconds: float, config_hash: str) -> dict:
    cond = Condition(**meta["reach_spec"])
    hist = read_history(run_dir, {cond.metric}, notes=[])
    seeds = []
    for r in seed_records(result):
        series = sorted(hist.series.get((r["replica"], cond.metric), {}).items())
        if r["status"] == "diverged" and r.get("diverged_at") is not None:
            series = [(s, v) for s, v in series if s < r["diverged_at"]]
        seeds.append({"seed": r["seed"], "status": r["status"], "diverged_at": r.get("diverged_at"),
                      "reach_step": first_reach(series, cond), "score": score_value(r["metrics"], meta["score"]),
                      "metrics": {k: _value(v) for k, v in r["metrics"].items()}})
    return {**{k: v for k, v in meta.items() if k != "reach_spec"}, "seeds": seeds,
            "diverged": sum(s["status"] == "diverged" for s in seeds), "steps": result.get("steps"),
            "wall_seconds": round(job_seconds, 1), "train_seconds": result.get("wall_seconds"),
            "config_hash": config_hash, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


class AtlasCallback(Callback):
    """results: the results file; cells: the generated atlas_cell directory; plan: this atlas run's
    plan (its cells and start time), for the progress line."""

    def __init__(self, results: str, cells: str, plan: str) -> None:
        self.results, self.cells, self.plan = Path(results), Path(cells), Path(plan)
        self._start = None

    def on_job_start(self, config, **kwargs) -> None:
        self._start = time.time()

    def on_job_end(self, config, job_return, **kwargs) -> None:
        from gan_bench.config import checkpoint_hashes

        name = config.hydra.runtime.choices.get("atlas_cell")
        if name is None:
            return
        meta = json.loads((self.cells / f"{name}.json").read_text())
        run_dir = Path(config.hydra.runtime.output_dir)
        result = records.read(run_dir)
        if result is None or result.get("status") not in records.FINISHED:
            log.warning("atlas cell %s did not finish (%s): no row; `gan-bench atlas run` again retries it",
                        name, (result or {}).get("error") or "no result.json")
            return
        spent = time.time() - self._start if self._start else 0.0
        row = build_row(meta, result, run_dir, spent, checkpoint_hashes(config)[0])
        results.append(self.results, row)
        print(f"[atlas] {name}: {summary(row)} | {progress(self.plan, self.results)}", flush=True)


def summary(row: dict) -> str:
    vals = [s["score"] for s in row["seeds"] if s["status"] != "diverged" and s["score"] is not None]
    mean = f"{sum(vals) / len(vals):.4g}" if vals else "n/a"
    return f"{row['score']} {mean} over {len(vals)} seeds, {row['diverged']} diverged, {row['wall_seconds']:.0f}s"


def progress(plan_path: Path, results_path: Path) -> str:
    """Cells of this plan done / total, and an ETA from the pace of the cells finished since it started."""
    try:
        plan = json.loads(Path(plan_path).read_text())
    except (OSError, ValueError):
        return "progress unknown"
    mine = {(c, s) for c, s in plan["cells"]}
    rows = [r for r in results.read(results_path) if (r["cell"], r["spec"]) in mine]
    fresh = [r for r in rows if r["finished_at"] >= plan["started"]]
    left = len(mine) - len(rows)
    elapsed = time.time() - datetime.fromisoformat(plan["started"]).timestamp()
    eta = "" if not fresh or not left else f", ETA {_duration(elapsed / len(fresh) * left)}"
    return f"{len(rows)}/{len(mine)} cells done{eta}"


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "unknown"
    m = int(seconds // 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{int(seconds % 60):02d}s"
