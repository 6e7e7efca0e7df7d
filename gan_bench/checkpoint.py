"""Checkpoints: the full training state in one file, written atomically so a kill at any moment
leaves either the previous checkpoint or the new one, never a torn file.

Read only with torch's safe loader (`weights_only=True`): a checkpoint holds tensors, numbers,
strings, lists and dicts (random states as tensors), nothing a pickle could run code with, so a run
directory from someone else is safe to resume, evaluate, export or sample. Every checkpoint gan-bench
has written is of that kind, so older ones resume unchanged (tests/fixtures/checkpoints)."""

import errno
import hashlib
import json
import shutil
from pathlib import Path

import torch

from gan_bench import atomic
from gan_bench.errors import UserError


def config_hash(cfg_container: dict) -> str:
    return hashlib.sha256(json.dumps(cfg_container, sort_keys=True, default=str).encode()).hexdigest()[:16]


class NoSpace(OSError):
    """The disk filled while a checkpoint was being written; the previous one is untouched (atomic)."""


def save(path: Path, state: dict) -> None:
    path = Path(path)
    try:
        atomic.write_bytes(path, lambda f: torch.save(state, f))
    except (OSError, RuntimeError) as e:
        if not _out_of_space(e, path):
            raise
        kept = (f"the previous checkpoint {path.name} is intact" if path.exists()
                else "no earlier checkpoint was written, so the run starts over")
        raise NoSpace(f"no space left on device writing {path}: {kept}; free some space and run the same "
                      "command again to resume") from None


def _out_of_space(e: Exception, path: Path) -> bool:
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    # torch's zip writer reports a full disk as RuntimeError "... file write failed", without errno
    try:
        return "write failed" in str(e) and shutil.disk_usage(path.parent).free < 64 << 20
    except OSError:
        return False


def read(path: Path, fix: str) -> object:
    """torch.load with the safe loader; a refused or unreadable file is one line ending in `fix`."""
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Weights only load failed" in str(e):
            raise UserError(f"checkpoint {path} holds objects other than tensors and plain data, which could run "
                            f"code when loaded; gan-bench refuses it and ran none of it: {fix}") from None
        raise UserError(f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}): {fix}") from None
    except Exception as e:  # torn, truncated, not a torch file
        raise UserError(f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}): {fix}") from None


def load(path: Path, expected_hashes: list[str]) -> dict:
    """Load and validate a checkpoint before any work starts; every problem is a UserError.
    expected_hashes: config.checkpoint_hashes, the current hash and any older one of the same run."""
    fix = f"delete {path} to start this run over, or pass hydra.run.dir=<a new directory>"
    state = read(path, fix)
    if not isinstance(state, dict) or "config_hash" not in state or "step" not in state:
        raise UserError(f"checkpoint {path} is not a gan-bench checkpoint: {fix}")
    if state["config_hash"] not in expected_hashes:
        raise UserError(f"checkpoint {path} was written by a different configuration "
                        f"(seed, data, model, loss, optimizer or batch differ): {fix}")
    return state
