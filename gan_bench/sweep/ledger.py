"""The sweep ledger, `<sweep dir>/.jobs/`: `sweep.json` names the current run of the sweep command,
`<num>.json` says how each of its jobs is doing (`running`, then how it ended)."""

import json
import os
import socket
import time
import uuid
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from gan_bench import atomic
from gan_bench.errors import UserError
from gan_bench.sweep.gpus import pinned_gpu

LEDGER = ".jobs"
FINAL = ("completed", "diverged", "failed")


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def write_json(path: Path, obj) -> None:
    atomic.write_json(path, obj, default=str)  # a reader never sees half a record


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def start_ledger(sweep_dir) -> str:
    """A fresh ledger for this run of the sweep command; records of earlier runs are dropped."""
    ledger = Path(sweep_dir) / LEDGER
    ledger.mkdir(parents=True, exist_ok=True)
    for old in ledger.glob("*.json"):
        old.unlink(missing_ok=True)
    sweep_id = uuid.uuid4().hex
    write_json(ledger / "sweep.json", {"id": sweep_id, "started": time.time(), "pid": os.getpid(),
                                        "host": socket.gethostname()})
    return sweep_id


def ledger_entries(sweep_dir) -> list[dict]:
    """The job records of the current run of the sweep, by job number."""
    ledger = Path(sweep_dir) / LEDGER
    head = read_json(ledger / "sweep.json") or {}
    entries = [read_json(p) for p in ledger.glob("[0-9]*.json")]
    return sorted((e for e in entries if isinstance(e, dict) and e.get("sweep") == head.get("id")),
                  key=lambda e: e.get("num", 0))


class SweepJob:
    """This job's record in the ledger: `running` when it starts, its outcome when it ends.
    Without a ledger (the SweepCallback is not configured) every method does nothing."""

    def __init__(self):
        hc = HydraConfig.get()
        self.sweep_dir = Path(str(hc.sweep.dir))
        self.num = int(hc.job.num)
        self.run_dir = Path(str(hc.runtime.output_dir))
        self.overrides = [str(o) for o in hc.overrides.task]
        head = read_json(self.sweep_dir / LEDGER / "sweep.json")
        self.sweep_id = head.get("id") if isinstance(head, dict) else None
        self.path = self.sweep_dir / LEDGER / f"{self.num}.json"
        self.entry: dict = {}

    def start(self) -> None:
        if self.sweep_id is None:
            return
        before = read_json(self.path)
        again = isinstance(before, dict) and before.get("sweep") == self.sweep_id  # requeued
        self.entry = {"sweep": self.sweep_id, "num": self.num, "dir": str(self.run_dir), "overrides": self.overrides,
                      "status": "running", "attempt": before.get("attempt", 1) + 1 if again else 1,
                      "pid": os.getpid(), "host": socket.gethostname(), "gpu": pinned_gpu()}
        write_json(self.path, self.entry)

    def check_unique(self) -> None:
        """Two jobs in one directory would share checkpoints: the later one is refused."""
        if self.sweep_id is None:
            return
        for other in ledger_entries(self.sweep_dir):
            if other["num"] != self.num and other.get("dir") == str(self.run_dir):
                raise UserError(
                    f"jobs {other['num']} and {self.num} of this sweep would both run in {self.run_dir}: they "
                    "differ only in keys left out of directory names (hydra.job.config.override_dirname."
                    "exclude_keys, e.g. train.device): sweep over such a key in separate sweeps")

    def finish(self, result: dict, error: str | None = None) -> None:
        if self.sweep_id is None:
            return
        self.entry.update(status=result.get("status", "failed"), error=error, step=result.get("step"),
                          steps=result.get("steps"), skipped=bool(result.get("skipped")), finished=time.time())
        write_json(self.path, self.entry)
