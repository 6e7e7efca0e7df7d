"""The log tick averages exactly the steps of its interval, also the first interval of a run resumed
off the log grid (a SIGTERM checkpoint at a step that is no multiple of train.log_every)."""

from types import SimpleNamespace

import pytest
import torch

from gan_bench.training.ticks import Ticks


class Log:
    def __init__(self):
        self.lines = []

    def scalars(self, step, values, prefix=""):
        self.lines.append((step, values))


def run_state(step: int, K: int = 1):
    diverged = {}
    return SimpleNamespace(active=torch.ones(K, dtype=torch.bool), step=step, replicas=[{"metrics": {}}] * K,
                           diverge=lambda k, at: diverged.__setitem__(k, at), diverged=diverged)


def steps(ticks: Ticks, run, values) -> None:
    """Record one step per value (its d loss; the rest fixed), counting run.step as the trainer does."""
    for v in values:
        ticks.record(run.step, torch.tensor([float(v)]), torch.tensor([0.0]), torch.zeros(1, 4), torch.zeros(1, 4))
        run.step += 1


def tick(ticks: Ticks, run):
    nets = SimpleNamespace(D=torch.nn.Linear(1, 1), G=torch.nn.Linear(1, 1))  # no gradients: norm 0
    fake = torch.zeros(1, 4, 2)
    fake.grad = torch.zeros_like(fake)
    return ticks.tick(run, nets, fake, SimpleNamespace(logit_scale=None), torch.zeros(1, 4))


@pytest.mark.parametrize("start", [0, 6])
def test_each_interval_averages_only_its_own_steps(start):
    log, run = Log(), run_state(start)
    ticks = Ticks(4, 1, torch.device("cpu"), start, 12, log, progress=False)
    first = [1.0, 2.0] if start == 6 else [1.0, 2.0, 3.0, 4.0]  # resumed at 6: steps 6 and 7 to the tick at 8
    steps(ticks, run, first)
    tick(ticks, run)
    steps(ticks, run, [10.0, 20.0, 30.0, 40.0])
    tick(ticks, run)
    (s1, a), (s2, b) = log.lines
    assert (s1, s2) == ((8, 12) if start == 6 else (4, 8))
    assert a["loss/d"] == pytest.approx(sum(first) / len(first))  # not diluted by the empty rows before it
    assert b["loss/d"] == pytest.approx(25.0)


def test_divergence_step_in_a_resumed_interval():
    log, run = Log(), run_state(6)
    ticks = Ticks(4, 1, torch.device("cpu"), 6, 12, log, progress=False)
    steps(ticks, run, [1.0, float("nan")])  # steps 7 and 8 (1-based): the second one diverges
    assert tick(ticks, run) == [0] and run.diverged == {0: 8}
