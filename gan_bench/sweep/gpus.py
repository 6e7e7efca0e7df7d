"""GPU pinning for launchers that run each job in its own worker process (joblib): a job waits
for a free slot, holds its lock while it runs and sees only that slot's GPU (CUDA_VISIBLE_DEVICES).

The pin is process state, kept here and read through pinned_gpu(): the slot is kept for the
process's lifetime (CUDA cannot move to another device once initialized, and joblib reuses worker
processes); the lock is held only while a job runs; the device ids are those the process first saw,
before CUDA_VISIBLE_DEVICES was narrowed to one."""

import fcntl
import hashlib
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)


class _Pin:
    def __init__(self):
        self.slot: int | None = None
        self.fd: int | None = None
        self.slots: list[str] | None = None
        self.warned = False


_PIN = _Pin()  # this process's pin


def warn_once(msg: str, *args) -> None:
    if not _PIN.warned:
        log.warning(msg, *args)
        _PIN.warned = True


def pinned_gpu() -> str | None:
    """The GPU this process is pinned to, or None."""
    return os.environ.get("CUDA_VISIBLE_DEVICES") if _PIN.slot is not None else None


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
    if _PIN.fd is not None:
        return os.environ.get("CUDA_VISIBLE_DEVICES")
    if _PIN.slots is None:
        if "torch" in sys.modules and sys.modules["torch"].cuda.is_initialized():
            log.warning("CUDA was initialized in this process before pinning: this job may use any GPU")
            return None
        _PIN.slots = gpu_slots(gpus)
    slots = _PIN.slots
    if not slots:
        warn_once("hydra.callbacks.sweep.gpus=%s: no GPU visible, jobs are not pinned", gpus)
        return None
    # Locks on a local disk, one directory per sweep: two sweeps never wait on each other.
    key = hashlib.sha1(str(sweep_dir.resolve()).encode()).hexdigest()[:12]
    lock_dir = Path(tempfile.gettempdir()) / f"gan-bench-gpus-{key}"
    lock_dir.mkdir(parents=True, exist_ok=True)
    candidates = [_PIN.slot] if _PIN.slot is not None else range(len(slots))
    announced = False
    while True:
        for i in candidates:
            fd = os.open(lock_dir / f"slot{i}.lock", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            _PIN.slot, _PIN.fd = i, fd
            os.environ["CUDA_VISIBLE_DEVICES"] = slots[i]
            return slots[i]
        if not announced:
            log.info("GPU slot%s busy: waiting", "" if len(candidates) == 1 else "s")
            announced = True
        time.sleep(poll_s)


def release_gpu() -> None:
    """Let another job use this slot (closing the descriptor drops the lock)."""
    if _PIN.fd is not None:
        os.close(_PIN.fd)
        _PIN.fd = None
