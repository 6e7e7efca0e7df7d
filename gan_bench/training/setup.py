"""Set-up shared by the trainer and `gan-bench eval`: the device, process-wide backend switches,
Hydra instantiation that keeps UserErrors, and how many steps a run has."""

import math
import os
from contextlib import contextmanager

import torch
from hydra.utils import instantiate

from gan_bench.errors import UserError


def build(node, **kwargs):
    """hydra.utils.instantiate, but a UserError raised inside a constructor stays a UserError."""
    try:
        return instantiate(node, **kwargs)
    except Exception as e:
        cause = e
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__ or cause.__context__
        raise (cause or e) from None


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device=cuda but no CUDA device is available: use train.device=cpu or train.device=auto")
    return torch.device(name)


def replica_seeds(cfg) -> list[int]:
    """Seeds of the K replicas (train.ensemble): seed, seed + 1, ..."""
    return [int(cfg.seed) + i for i in range(int(cfg.train.ensemble))]


def configure_backends(opts, device: torch.device) -> None:
    if opts.deterministic:  # cuBLAS reads this when its first handle is made
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = device.type == "cuda" and not opts.deterministic


def total_steps(opts, n_train: int) -> int:
    """train.epochs, when set, counts passes over the training set (the papers' unit) instead of steps."""
    return int(opts.steps) if opts.epochs is None else int(opts.epochs) * math.ceil(n_train / int(opts.batch_size))


@contextmanager
def deterministic_algorithms(on: bool):
    """torch.use_deterministic_algorithms for the block: a process-wide switch, handed back after."""
    before = torch.are_deterministic_algorithms_enabled()
    if on:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)
