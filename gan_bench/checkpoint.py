"""Checkpoints: the full training state in one file, written atomically so a kill at any moment
leaves either the previous checkpoint or the new one, never a torn file."""

import hashlib
import json
import os
from pathlib import Path

import torch

from gan_bench.errors import UserError


def config_hash(cfg_container: dict) -> str:
    return hashlib.sha256(json.dumps(cfg_container, sort_keys=True, default=str).encode()).hexdigest()[:16]


def atomic_write_bytes(path: Path, write) -> None:
    """Call write(file_object) on a temp file beside `path`, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(Path(path), lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


def save(path: Path, state: dict) -> None:
    atomic_write_bytes(Path(path), lambda f: torch.save(state, f))


def load(path: Path, expected_hash: str) -> dict:
    """Load and validate a checkpoint before any work starts; every problem is a UserError."""
    fix = f"delete {path} to start this run over, or pass hydra.run.dir=<a new directory>"
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torn, truncated, not a torch file
        raise UserError(f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}): {fix}") from None
    if not isinstance(state, dict) or "config_hash" not in state or "step" not in state:
        raise UserError(f"checkpoint {path} is not a gan-bench checkpoint: {fix}")
    if state["config_hash"] != expected_hash:
        raise UserError(f"checkpoint {path} was written by a different configuration "
                        f"(seed, data, model, loss, optimizer or batch differ): {fix}")
    return state
