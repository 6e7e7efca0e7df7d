"""The results file: one JSON object a line, one line per finished cell, appended under a lock so
parallel jobs (joblib workers, SLURM jobs on a shared file system) never interleave their lines.

A row: cell, spec, task, tier, objective, overrides, lr, seed (the first), select, eval, score,
direction, metrics, reach, seeds (per seed: seed, status, diverged_at, reach_step and every scored
key), diverged, wall_seconds (the job), train_seconds (the loop), steps, config_hash, commit,
finished_at. Reading keeps the last row of each (cell, spec): a cell appended twice (two machines,
or a row re-written after a kill between a run's end and its row) counts once.
"""

import fcntl
import json
import os
from pathlib import Path

from gan_bench.errors import UserError
from gan_bench.paths import ROOT

DEFAULT = ROOT / "docs" / "atlas" / "results.jsonl"


def append(path, row: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(row, sort_keys=True) + "\n").encode()
    with open(path, "ab") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read(path) -> list[dict]:
    """The rows, last one per (cell, spec), in file order; a line cut short by a kill is skipped."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read the atlas results {path}: {e}") from None
    rows = {}
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "cell" in row and "spec" in row:
            rows.pop((row["cell"], row["spec"]), None)
            rows[(row["cell"], row["spec"])] = row
    return list(rows.values())


def done(path) -> set[tuple[str, str]]:
    return {(r["cell"], r["spec"]) for r in read(path)}
