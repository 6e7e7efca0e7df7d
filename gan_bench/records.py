"""result.json: how a run ended. The one place its record is built, by the trainer at the end of a
run (or when it fails inside the loop) and by a sweep job that failed before or around training.

    status         completed | diverged | failed
    step, steps    where it stopped, of how many; seed; wall_seconds (the loop, not start-up)
    diverged_at    the step whose loss turned non-finite (single runs; per replica otherwise)
    error          repr of the exception of a failed run, else null
    metrics        the last evaluation (the mean over completed replicas for an ensemble)
    fingerprints   the protocol behind each metric key, so numbers measured differently never pool
    replicas       null for a single run; one record per replica of an ensemble (seed, status,
                   diverged_at, step, metrics)
"""

import json
import math
from pathlib import Path

import numpy as np

from gan_bench import atomic

FINISHED = ("completed", "diverged")


def record(status: str, *, steps, seed, step: int = 0, wall_seconds: float = 0.0, replicas: list[dict] | None = None,
           fingerprints: dict | None = None, error: str | None = None) -> dict:
    """`replicas`: the trainer's per-replica records (one for a single run); None when no training ran."""
    replicas = replicas or []
    single = len(replicas) <= 1
    done = [r["metrics"] for r in replicas if r["status"] == "completed"] or [r["metrics"] for r in replicas]
    metrics = (replicas[0]["metrics"] if replicas else {}) if single else mean_metrics(done)
    fingerprints = fingerprints or {}
    return {"status": status, "step": replicas[0].get("step", step) if len(replicas) == 1 else step,
            "steps": steps, "seed": seed, "wall_seconds": round(wall_seconds, 3),
            "diverged_at": replicas[0]["diverged_at"] if len(replicas) == 1 else None, "error": error,
            "metrics": _clean(metrics), "fingerprints": {k: fingerprints[k] for k in metrics if k in fingerprints},
            "replicas": None if single else [{**r, "metrics": _clean(r["metrics"])} for r in replicas]}


def write(run_dir, result: dict) -> dict:
    atomic.write_json(Path(run_dir) / "result.json", result)
    return result


def read(run_dir) -> dict | None:
    try:
        out = json.loads((Path(run_dir) / "result.json").read_text())
    except (OSError, ValueError):
        return None
    return out if isinstance(out, dict) else None


def finished(run_dir, steps: int) -> dict | None:
    """The record of a run that already ended at `steps`, marked skipped: a finished run is never retrained."""
    done = read(run_dir)
    if done is None or done.get("status") not in FINISHED or done.get("steps") != steps:
        return None
    return {**done, "skipped": True}


def mean_metrics(records: list[dict]) -> dict:
    keys = [k for k, v in (records[0] if records else {}).items() if isinstance(v, (int, float))]
    return {k: float(np.mean([r[k] for r in records])) for k in keys}


def _clean(metrics: dict) -> dict:
    # JSON has no NaN/inf: written as the strings "nan"/"inf", which float() reads back.
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in metrics.items()}
