"""SIGTERM and SIGINT (SLURM preemption, scancel, Ctrl-C) while training: a request to stop, which
the loop honours at the end of the step by checkpointing and raising SystemExit(128 + signal).
An evaluation honours it between two batches of generated samples (a Stopped exception), since a
seed ensemble's final one can run for many minutes: the run checkpoints with the evaluation marked
pending, and a resumed run does it again before training on. Not inside the other slow parts of a
first evaluation: extracting the real images' features on a reference-cache miss (once per
fingerprint) and the statistics after the last batch."""

import signal
from contextlib import contextmanager
from typing import Iterator


class Stopped(Exception):
    """Raised inside an evaluation when a stop was requested: the evaluation is abandoned."""


class StopRequest:
    def __init__(self):
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None

    def ask(self, signum, _frame=None) -> None:
        self.signum = signum


@contextmanager
def stop_on_signals(signals=(signal.SIGTERM, signal.SIGINT)) -> Iterator[StopRequest]:
    """The block's handlers for `signals` record a StopRequest; the previous handlers come back after."""
    stop = StopRequest()
    before = {s: signal.signal(s, stop.ask) for s in signals}
    try:
        yield stop
    finally:
        for s, h in before.items():
            signal.signal(s, h)
