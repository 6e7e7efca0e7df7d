"""The end of a sweep: counts over the ledger, the summary line, DIR/sweep.json, the command that
runs it again, and the exit code (1 when a job failed; diverged is data)."""

import shlex
import sys
import time
from pathlib import Path

from gan_bench.sweep.ledger import FINAL, ledger_entries, write_json


def summarize(entries: list[dict]) -> dict:
    """Counts over job records. A job still `running` when the sweep ends lost its process without
    reporting (killed for memory, node lost): it failed. Exit code 1 when anything failed."""
    counts = {s: 0 for s in FINAL}
    for e in entries:
        counts[e.get("status") if e.get("status") in FINAL else "failed"] += 1
    return {"jobs": len(entries), **counts, "skipped": sum(bool(e.get("skipped")) for e in entries),
            "exit_code": 1 if counts["failed"] else 0}


def summary_line(s: dict, sweep_dir) -> str:
    return (f"sweep: {s['jobs']} jobs: {s['completed']} completed, {s['diverged']} diverged, "
            f"{s['failed']} failed ({sweep_dir})")


def _job_label(e: dict) -> str:
    return Path(e["dir"]).name if e.get("dir") else ",".join(e.get("overrides") or []) or f"job {e.get('num')}"


def rerun_command(config, sweep_dir) -> str:
    """The command that runs this sweep again in the same directory."""
    hydra_args = [str(o) for o in config.hydra.overrides.hydra
                  if not str(o).startswith(("hydra.mode=", "hydra.sweep.dir="))]
    args = [str(o) for o in config.hydra.overrides.task] + hydra_args + [f"hydra.sweep.dir={sweep_dir}"]
    return "gan-bench train -m " + " ".join(shlex.quote(a) for a in args)


def report(config, finished: bool = True) -> int:
    """Print the summary of the current run of the sweep and write DIR/sweep.json; the exit code."""
    sweep_dir = Path(str(config.hydra.sweep.dir))
    entries = ledger_entries(sweep_dir)
    s = summarize(entries)
    running = [e for e in entries if e.get("status") not in FINAL]
    write_json(sweep_dir / "sweep.json", {**s, "finished": finished, "time": time.time(), "jobs_detail": [
        {k: e.get(k) for k in ("num", "dir", "overrides", "status", "error", "skipped", "attempt")} for e in entries]})
    lines = [summary_line(s, sweep_dir) if finished else
             f"sweep stopped: {s['jobs']} jobs started: {s['completed']} completed, {s['diverged']} diverged, "
             f"{s['failed'] - len(running)} failed, {len(running)} unfinished ({sweep_dir})"]
    bad = [e for e in entries if e.get("status") not in ("completed", "diverged")]
    for e in bad[:20]:
        if e.get("status") == "failed":
            lines.append(f"  failed: {_job_label(e)}: {e.get('error')}")
        elif finished:
            lines.append(f"  failed: {_job_label(e)}: its process ended without reporting")
        else:
            lines.append(f"  unfinished: {_job_label(e)}")
    if len(bad) > 20:
        lines.append(f"  ... and {len(bad) - 20} more in {sweep_dir / 'sweep.json'}")
    if bad or not finished:
        lines.append("re-run it (finished jobs are skipped, interrupted ones resume"
                     f"{'' if finished else '; first make sure none of its jobs still runs'}): "
                     f"{rerun_command(config, sweep_dir)}")
    sys.stderr.flush()
    print("\n".join(lines), flush=True)
    return s["exit_code"]
