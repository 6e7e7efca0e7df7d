"""The trainer's parts where the end-to-end tests do not reach: a crash inside the loop is recorded,
a write that fails leaves the old file, a signal is honoured at the end of the step."""

import json
import os
import signal

import pytest

from gan_bench import atomic
from gan_bench.train import train
from gan_bench.training.signals import stop_on_signals


class FailAfter:
    """A bce loss whose G loss raises from its k-th call: a bug in the middle of a run."""

    def __init__(self, k: int):
        from gan_bench.losses import make_loss

        self.inner, self.k, self.calls = make_loss("bce"), k, 0
        self.needs_real_for_g, self.logit_scale = False, 1.0

    def at_step(self, step, total):
        return self

    def d_loss(self, real, fake):
        return self.inner.d_loss(real, fake)

    def g_loss(self, fake, real=None):
        self.calls += 1
        if self.calls >= self.k:
            raise RuntimeError("boom")
        return self.inner.g_loss(fake, real)


def test_a_crash_in_the_loop_is_recorded_with_its_step(cfg_factory, tmp_path):
    cfg = cfg_factory("train.steps=20", "train.log_every=5", "train.eval_every=5")
    cfg.loss = {"_target_": "test_train_parts.FailAfter", "k": 8}
    with pytest.raises(RuntimeError, match="boom"):
        train(cfg)
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "failed" and result["step"] == 7 and result["steps"] == 20
    assert result["error"] == "RuntimeError('boom')" and result["replicas"] is None
    assert set(result["metrics"]) == set(result["fingerprints"]) >= {"modes", "hq"}  # the step-5 evaluation


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "sub" / "x.json"
    atomic.write_json(path, {"a": 1})
    with pytest.raises(ZeroDivisionError):
        atomic.write_bytes(path, lambda f: f.write(b"half") and 1 / 0)
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json"]
    assert not list(path.parent.glob(atomic.TMP_GLOB))


def test_signals_become_a_stop_request_and_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as stop:
        assert not stop
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop and stop.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before
