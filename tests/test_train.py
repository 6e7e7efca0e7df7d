"""The trainer end to end on the ring, on the CPU: outputs, divergence, every loss and penalty."""

import json

import pytest
import torch

from gan_bench.config import options
from gan_bench.train import train


class NanAfter:
    """A bce loss whose D loss turns NaN from its k-th call (for one replica, or all): a
    divergence on cue."""

    def __init__(self, k: int, replica: int | None = None):
        from gan_bench.losses import make_loss

        self.inner, self.k, self.replica, self.calls = make_loss("bce"), k, replica, 0
        self.needs_real_for_g, self.logit_scale = False, 1.0

    def at_step(self, step, total):
        return self

    def d_loss(self, real, fake):
        self.calls += 1
        out = self.inner.d_loss(real, fake)
        if self.calls >= self.k:
            out = out.clone()
            out[... if self.replica is None else self.replica] = float("nan")
        return out

    def g_loss(self, fake, real=None):
        return self.inner.g_loss(fake, real)


def test_run_writes_everything(cfg_factory, tmp_path):
    cfg = cfg_factory("train.steps=40", "train.log_every=10", "train.eval_every=20", "train.ckpt_every=20")
    result = train(cfg)
    run = tmp_path / "run"
    assert result["status"] == "completed" and result["step"] == 40
    assert json.loads((run / "result.json").read_text()) == result
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [20, 40]
    assert set(lines[-1]) >= {"modes", "success", "failure", "hq", "kl", "rkl", "js", "tv"}
    assert set(result["fingerprints"]) == set(result["metrics"])
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step0000020.png", "step0000040.png"]
    assert (run / "checkpoints" / "last.pt").exists()
    assert any((run / "tb").iterdir())
    # A finished run is not retrained.
    again = train(cfg)
    assert again.get("skipped") and again["step"] == 40


def test_divergence_is_data(cfg_factory, tmp_path):
    cfg = cfg_factory("train.steps=50", "train.log_every=10")
    cfg.loss = {"_target_": "test_train.NanAfter", "k": 13}
    result = train(cfg)
    assert result["status"] == "diverged" and result["diverged_at"] == 13 and result["step"] == 13
    assert json.loads((tmp_path / "run" / "result.json").read_text())["status"] == "diverged"


@pytest.mark.parametrize("loss", options("loss"))
def test_every_loss_trains_two_steps(cfg_factory, loss):
    # loss=custom trains a function of your own: here gan-bench's Hinge, by its import path
    extra = ["loss.builder=gan_bench.losses.simple:Hinge"] if loss == "custom" else []
    result = train(cfg_factory(f"loss={loss}", "train.steps=2", "train.log_every=1", "alpha=0.7", *extra))
    assert result["status"] == "completed", result


@pytest.mark.parametrize("penalty", options("penalty"))
def test_every_penalty_trains_two_steps(cfg_factory, penalty):
    result = train(cfg_factory(f"penalty={penalty}", "train.steps=2", "train.log_every=1"))
    assert result["status"] == "completed", result


def test_n_critic_and_grid(cfg_factory):
    result = train(cfg_factory("dataset=grid", "train.n_critic=3", "train.steps=3", "train.log_every=1"))
    assert result["status"] == "completed" and result["step"] == 3


def test_same_seed_same_weights_different_seed_differs(cfg_factory, tmp_path):
    def final_g(seed, name):
        train(cfg_factory(f"seed={seed}", "train.steps=5", run_dir=tmp_path / name))
        return torch.load(tmp_path / name / "checkpoints" / "last.pt", weights_only=False)["G"]

    a, b, c = final_g(1, "a"), final_g(1, "b"), final_g(2, "c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_speed_path_options_on_cpu(cfg_factory, tmp_path):
    # bf16 autocast and G's EMA work on the CPU too; the EMA weights are what gets evaluated.
    result = train(cfg_factory("train.amp=true", "train.ema=0.9", "train.steps=4", "train.log_every=2"))
    assert result["status"] == "completed"
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    ema, g = state["G_ema"], state["G"]
    assert ema.keys() == g.keys() and not all(torch.equal(ema[k], g[k]) for k in g)


@pytest.mark.slow
@pytest.mark.parametrize("penalty", ["none", "r1"])
def test_compile_on_cpu(cfg_factory, penalty):
    # r1: a penalty's double backward must not go through the compiled D (aot_autograd refuses it).
    result = train(cfg_factory("train.compile=true", "train.steps=3", "train.log_every=1", f"penalty={penalty}"))
    assert result["status"] == "completed"


def test_speed_path_auto_and_deterministic():
    from types import SimpleNamespace as NS

    from gan_bench.training.networks import speed_path

    tc = NS(amp="auto", compile="auto", channels_last="auto", deterministic=False)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert speed_path(tc, cuda, NS(kind="image")) == {"amp": True, "compile": True, "channels_last": True}
    assert speed_path(tc, cuda, NS(kind="toy")) == {"amp": False, "compile": True, "channels_last": False}
    assert not any(speed_path(tc, cpu, NS(kind="image")).values())
    tc.deterministic, tc.amp = True, True
    assert not any(speed_path(tc, cuda, NS(kind="image")).values())


def test_epochs_count_passes_over_the_data(cfg_factory):
    # 2000 points, batch 128: 16 batches an epoch (the last one short), so 2 epochs are 32 steps.
    result = train(cfg_factory("train.epochs=2", "train.log_every=8"))
    assert result["status"] == "completed" and result["step"] == result["steps"] == 32
    assert train(cfg_factory("train.epochs=2", "train.log_every=8")).get("skipped")
