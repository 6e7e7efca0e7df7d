"""A stop request (SIGTERM from a scheduler, Ctrl-C) that arrives during an evaluation ends the run
at the evaluation's next batch of samples, not when the evaluation ends (a seed ensemble's final
Stacked MNIST count reads millions of stacks): the checkpoint written then marks the evaluation
pending, and the resumed run does it again and ends exactly as a run that was never stopped.

The signal is real (os.kill of this process) and sent from inside the evaluator's first batch, so
the test knows it arrived mid-evaluation without timing anything."""

import json
import os
import signal

import pytest
import torch
from test_image_ensembles import assert_identical

import gan_bench.train as train_mod
from conftest import make_cfg
from gan_bench.train import train

ARGS = ["train.steps=40", "train.eval_every=20", "train.ckpt_every=20", "train.log_every=20", "train.ensemble=2",
        "eval.n_samples=20000"]  # 3 generator batches an evaluation (ToyEvaluator.chunk = 8192)


def signal_inside_evaluation(monkeypatch, signum: int, at: int) -> dict:
    """The trainer's evaluator, wrapped: in its `at`-th call a real `signum` reaches this process
    right after the first batch of samples; `drawn` counts the batches it asked for after that."""
    real, seen = train_mod.make_evaluator, {"calls": 0, "drawn": 0}

    class Signalling:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):  # fingerprints and the rest: the real evaluator's
            return getattr(self.inner, name)

        def __call__(self, generate, which, final=False):
            seen["calls"] += 1
            if seen["calls"] != at:
                return self.inner(generate, which, final)
            sent = False

            def gen(z):
                nonlocal sent
                seen["drawn"] += sent
                out = generate(z)  # where the trainer's evaluation raises once the stop is recorded
                if not sent:
                    sent = True
                    os.kill(os.getpid(), signum)
                return out

            return self.inner(gen, which, final)

    monkeypatch.setattr(train_mod, "make_evaluator", lambda data, cfg: Signalling(real(data, cfg)))
    return seen


def jsonl(run_dir) -> list[dict]:
    return [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("signum, at, step, final", [(signal.SIGTERM, 2, 40, True), (signal.SIGINT, 1, 20, False)])
def test_a_stop_mid_evaluation_checkpoints_it_pending_and_resume_reruns_it(tmp_path, monkeypatch, signum, at, step,
                                                                         final):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    done = train(make_cfg(straight, ARGS))

    seen = signal_inside_evaluation(monkeypatch, signum, at)
    handler = signal.getsignal(signum)
    with pytest.raises(SystemExit) as e:
        train(make_cfg(stopped, ARGS))
    assert e.value.code == 128 + signum
    assert seen["drawn"] == 1  # the batch after the signal was refused: the evaluation ended there
    state = torch.load(stopped / "checkpoints" / "last.pt", weights_only=False)
    assert state["step"] == step and state["pending_evals"] == [{"which": [0, 1], "final": final}]
    assert not (stopped / "result.json").exists()
    assert [r["step"] for r in jsonl(stopped)] == [20, 20][: 2 * (at - 1)]  # nothing of the cut evaluation
    assert signal.getsignal(signum) is handler  # the handlers were put back

    monkeypatch.undo()
    resumed = train(make_cfg(stopped, ARGS))
    assert resumed["replicas"] == done["replicas"] and resumed["metrics"] == done["metrics"]
    assert jsonl(stopped) == jsonl(straight)
    a, b = (torch.load(d / "checkpoints" / "last.pt", weights_only=False) for d in (straight, stopped))
    a.pop("wall_seconds"), b.pop("wall_seconds")
    assert b["pending_evals"] == [] and b["step"] == 40
    assert_identical(a, b)


def test_a_second_stop_inside_the_rerun_evaluation_and_a_checkpoint_from_before_the_queue(tmp_path, monkeypatch):
    """The resumed run's first act, the pending evaluation, can be stopped too (it stays pending);
    and a checkpoint written before evaluations were queued (no `pending_evals`) resumes as one
    with nothing pending."""
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    done = train(make_cfg(straight, ARGS))
    for _ in range(2):  # the step-20 evaluation is cut, then cut again as the resumed run reruns it
        signal_inside_evaluation(monkeypatch, signal.SIGTERM, 1)
        with pytest.raises(SystemExit):
            train(make_cfg(stopped, ARGS))
        monkeypatch.undo()
        state = torch.load(stopped / "checkpoints" / "last.pt", weights_only=False)
        assert state["step"] == 20 and state["pending_evals"] == [{"which": [0, 1], "final": False}]
    resumed = train(make_cfg(stopped, ARGS))
    assert resumed["replicas"] == done["replicas"] and jsonl(stopped) == jsonl(straight)

    old = tmp_path / "old"
    train(make_cfg(old, [*ARGS, "train.steps=20"]))  # a 20-step run's last checkpoint, made an old one
    state = torch.load(old / "checkpoints" / "last.pt", weights_only=False)
    state.pop("pending_evals")
    torch.save(state, old / "checkpoints" / "last.pt")
    (old / "result.json").unlink()
    assert train(make_cfg(old, ARGS))["replicas"] == done["replicas"]
