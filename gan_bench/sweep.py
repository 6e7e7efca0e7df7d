"""Multiruns that survive: job directory names, the sweep ledger, the summary line and exit code,
GPU pinning for parallel local jobs, and requeue on SLURM. docs/sweeps.md is the user's side.

How a sweep fits together (the `hydra:` section of conf/train.yaml, conf/hydra/launcher/):
- every job runs in `<hydra.sweep.dir>/<its overrides>` (`job_dirname`), so the same command with
  the same `hydra.sweep.dir` finds its jobs again: the trainer skips finished runs and resumes
  interrupted ones from checkpoints/last.pt;
- a job of a multirun never raises (gan_bench/run.py writes any failure to its result.json) and
  records how it ended in the ledger, `<sweep dir>/.jobs/<num>.json`. The summary counts the
  ledger, not the launcher's return values: it reads the same for every launcher, and a job whose
  process died shows up as unfinished instead of vanishing;
- `SweepCallback` (a Hydra callback; Hydra runs its multirun hooks in the process that launched the
  sweep, its job hooks where each job runs) starts a fresh ledger when the multirun starts; when
  it ends it prints `sweep: N jobs: a completed, b diverged, c failed (DIR)`, writes DIR/sweep.json
  and sets the exit code `gan-bench train` returns: 1 when a job failed, else 0 (diverged is data).

The launchers are the plugins' own (hydra-joblib-launcher, hydra-submitit-launcher): Hydra only
instantiates launcher classes that live in the `hydra_plugins` package, so nothing here wraps them;
everything that makes a sweep survive happens inside the jobs and in the callback.
"""

import atexit
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shlex
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
import warnings
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import OmegaConf

import gan_bench.config  # noqa: F401  (registers ${gb_root:}, which job configs resolve in worker processes)

log = logging.getLogger(__name__)

# conf/hydra/launcher/joblib.yaml shares its name with the plugin's own config, so Hydra checks it
# against the plugin's schema (which we want: a typo is an error) and warns, once per job, that
# this matching is deprecated. The file lists every key, so it also works where a later Hydra
# drops the matching; the warning asks nothing of the user.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/joblib' is validated against ConfigStore")

LEDGER = ".jobs"
FINAL = ("completed", "diverged", "failed")
MAX_NAME = 240  # bytes; file systems allow 255 per path component


# ------------------------------------------------------------------------------ job directories

def job_dirname(override_dirname: str) -> str:
    """`hydra.sweep.subdir`: the job's overrides as one safe path component.

    Hydra's override_dirname (`alpha_d=0.3,seed=0`: sorted, excluded keys left out) is kept as it
    is, except that `/` (a path in a value, `dataset.path=/data/x`) would nest directories or climb
    out of the sweep with `..`, so it is written %2F (and `%` itself %25, so names stay
    unambiguous); a name longer than MAX_NAME bytes keeps its start and ends with a hash of the
    whole; a job without overrides runs in `defaults`.
    """
    name = str(override_dirname).replace("%", "%25").replace("/", "%2F") or "defaults"
    if len(name.encode()) > MAX_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:12]
        head = name.encode()[: MAX_NAME - 16].decode(errors="ignore")
        name = f"{head}...{digest}"
    return name


OmegaConf.register_new_resolver("gb_job_dirname", job_dirname, replace=True)


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


# ------------------------------------------------------------------------------ the ledger

def _write_json(path: Path, obj) -> None:
    """Atomic (temp file + rename): a reader never sees half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def _read_json(path: Path):
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
    _write_json(ledger / "sweep.json", {"id": sweep_id, "started": time.time(), "pid": os.getpid(),
                                         "host": socket.gethostname()})
    return sweep_id


def ledger_entries(sweep_dir) -> list[dict]:
    """The job records of the current run of the sweep, by job number."""
    ledger = Path(sweep_dir) / LEDGER
    head = _read_json(ledger / "sweep.json") or {}
    entries = [_read_json(p) for p in ledger.glob("[0-9]*.json")]
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
        head = _read_json(self.sweep_dir / LEDGER / "sweep.json")
        self.sweep_id = head.get("id") if isinstance(head, dict) else None
        self.path = self.sweep_dir / LEDGER / f"{self.num}.json"
        self.entry: dict = {}

    def start(self) -> None:
        if self.sweep_id is None:
            return
        before = _read_json(self.path)
        again = isinstance(before, dict) and before.get("sweep") == self.sweep_id  # requeued
        self.entry = {"sweep": self.sweep_id, "num": self.num, "dir": str(self.run_dir), "overrides": self.overrides,
                      "status": "running", "attempt": before.get("attempt", 1) + 1 if again else 1,
                      "pid": os.getpid(), "host": socket.gethostname(),
                      "gpu": os.environ.get("CUDA_VISIBLE_DEVICES") if _PINNED["slot"] is not None else None}
        _write_json(self.path, self.entry)

    def check_unique(self) -> None:
        """Two jobs in one directory would share checkpoints: the later one is refused."""
        from gan_bench.errors import UserError

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
        _write_json(self.path, self.entry)


# ------------------------------------------------------------------------------ summary

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
    _write_json(sweep_dir / "sweep.json", {**s, "finished": finished, "time": time.time(), "jobs_detail": [
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


_LAST = {"exit_code": 0}


def take_exit_code() -> int:
    """The exit code of the multirun that just ended in this process (0 after a single run)."""
    code, _LAST["exit_code"] = _LAST["exit_code"], 0
    return code


class SweepCallback(Callback):
    """`hydra.callbacks.sweep`: the ledger and summary of a multirun, and optional GPU pinning.

    gpus: null (off), `auto` (every visible GPU), N (the first N) or device ids, one per slot
    (`[0,0,1,1]`: two jobs per GPU). Each job of a launcher that runs jobs in their own processes
    (joblib) waits for a free slot and sees only its GPU (CUDA_VISIBLE_DEVICES). Set
    hydra.launcher.n_jobs to the number of slots: extra workers only wait.
    """

    def __init__(self, gpus=None) -> None:
        self.gpus = gpus
        self._main_pid: int | None = None
        self._open = None  # the config of a multirun that started and has not ended

    def on_multirun_start(self, config, **kwargs) -> None:
        self._main_pid = os.getpid()
        start_ledger(config.hydra.sweep.dir)
        if self._open is None:
            atexit.register(self._stopped)
        self._open = config

    def on_multirun_end(self, config, **kwargs) -> None:
        self._open = None
        _LAST["exit_code"] = report(config)

    def _stopped(self) -> None:
        # The sweep ended without on_multirun_end: an interrupt, or a launcher that gave up (a joblib
        # worker that died, a SLURM job that ended without a result). Say what is done and how to go on.
        if self._open is not None and os.getpid() == self._main_pid:
            with contextlib.suppress(Exception):
                report(self._open, finished=False)

    def on_job_start(self, config, **kwargs) -> None:
        if self.gpus is None or not in_multirun():
            return
        if os.getpid() == self._main_pid:
            if not _PINNED["warned"]:
                log.warning("hydra.callbacks.sweep.gpus is set, but this launcher runs jobs in the main "
                            "process: no GPU pinning (use hydra/launcher=joblib)")
                _PINNED["warned"] = True
            return
        pin_gpu(self.gpus, Path(str(config.hydra.sweep.dir)))

    def on_job_end(self, config, job_return, **kwargs) -> None:
        release_gpu()


# ------------------------------------------------------------------------------ GPU pinning

# slot: the slot this process ran on (kept for its lifetime: CUDA cannot move to another device once
# initialized, and joblib reuses worker processes); fd: its lock while a job runs; slots: the device
# ids as the process first saw them (before CUDA_VISIBLE_DEVICES was narrowed to one).
_PINNED = {"slot": None, "fd": None, "slots": None, "warned": False}


def gpu_slots(gpus) -> list[str]:
    """Device ids, one per slot, found without initializing CUDA (so CUDA_VISIBLE_DEVICES still applies)."""
    if gpus is None:
        return []
    if isinstance(gpus, str) and gpus != "auto":
        gpus = [g for g in re.split(r"[,\s]+", gpus) if g]
    if gpus == "auto" or isinstance(gpus, int):
        env = os.environ.get("CUDA_VISIBLE_DEVICES")
        if env is not None:
            visible = [g.strip() for g in env.split(",") if g.strip()]
        else:
            import torch  # device_count() asks NVML and leaves CUDA uninitialized
            visible = [str(i) for i in range(torch.cuda.device_count())]
        return visible if gpus == "auto" else visible[: int(gpus)]
    return [str(g) for g in gpus]


def pin_gpu(gpus, sweep_dir: Path, poll_s: float = 0.5) -> str | None:
    """Wait for a free slot, hold its lock for this job, and make its GPU the only one visible."""
    if _PINNED["fd"] is not None:
        return os.environ.get("CUDA_VISIBLE_DEVICES")
    if _PINNED["slots"] is None:
        if "torch" in sys.modules and sys.modules["torch"].cuda.is_initialized():
            log.warning("CUDA was initialized in this process before pinning: this job may use any GPU")
            return None
        _PINNED["slots"] = gpu_slots(gpus)
    slots = _PINNED["slots"]
    if not slots:
        if not _PINNED["warned"]:
            log.warning("hydra.callbacks.sweep.gpus=%s: no GPU visible, jobs are not pinned", gpus)
            _PINNED["warned"] = True
        return None
    # Locks on a local disk, one directory per sweep: two sweeps never wait on each other.
    key = hashlib.sha1(str(sweep_dir.resolve()).encode()).hexdigest()[:12]
    lock_dir = Path(tempfile.gettempdir()) / f"gan-bench-gpus-{key}"
    lock_dir.mkdir(parents=True, exist_ok=True)
    candidates = [_PINNED["slot"]] if _PINNED["slot"] is not None else range(len(slots))
    announced = False
    while True:
        for i in candidates:
            fd = os.open(lock_dir / f"slot{i}.lock", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            _PINNED.update(slot=i, fd=fd)
            os.environ["CUDA_VISIBLE_DEVICES"] = slots[i]
            return slots[i]
        if not announced:
            log.info("GPU slot%s busy: waiting", "" if len(candidates) == 1 else "s")
            announced = True
        time.sleep(poll_s)


def release_gpu() -> None:
    """Let another job use this slot (closing the descriptor drops the lock)."""
    if _PINNED["fd"] is not None:
        os.close(_PINNED["fd"])
        _PINNED["fd"] = None


# ------------------------------------------------------------------------------ SLURM requeue

@contextlib.contextmanager
def requeue_on_preemption():
    """Inside a submitit job: checkpoint where training is, then let submitit requeue the job.

    submitit's handler for its signal (USR2: `signal_delay_s` before the time limit, and at a
    preemption where SLURM is set to send it) pickles the job and requeues it, and the requeued job
    runs the same Hydra job, whose trainer resumes from checkpoints/last.pt. Alone, it would stop
    training mid-step and lose everything since the last periodic checkpoint. So its signal becomes
    the SIGTERM the trainer already handles (finish the step, checkpoint, SystemExit), and submitit
    requeues after that. A SIGTERM alone (preemption, scancel) checkpoints and exits; SLURM decides
    whether the job comes back (the slurm preset passes --requeue).
    """
    if "SUBMITIT_FOLDER" not in os.environ or threading.current_thread() is not threading.main_thread():
        yield
        return
    from submitit.core.job_environment import JobEnvironment

    usr = JobEnvironment._usr_sig()
    requeue = signal.getsignal(usr)  # submitit's checkpoint_and_try_requeue
    if not callable(requeue):
        yield
        return
    term_before = signal.getsignal(signal.SIGTERM)
    state = {"asked": False, "done": False}

    def do_requeue():
        if not state["done"]:
            state["done"] = True
            requeue(usr, None)  # exits (requeued), or raises UncompletedJobError (timed out too often)

    def on_usr(signum, frame):
        state["asked"] = True
        signal.raise_signal(signal.SIGTERM)  # the trainer's handler while it trains, on_term otherwise

    def on_term(signum, frame):  # runs only while the trainer's own handler is not installed
        if state["asked"]:
            do_requeue()
        elif callable(term_before):
            term_before(signum, frame)

    signal.signal(usr, on_usr)
    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except SystemExit:
        if not state["asked"]:
            # A preemption may send SIGTERM first and submitit's signal right after: wait a moment.
            for _ in range(30):
                if state["asked"]:
                    break
                time.sleep(0.1)
        if state["asked"]:
            do_requeue()
        raise
    finally:
        signal.signal(usr, requeue)
        signal.signal(signal.SIGTERM, term_before)
