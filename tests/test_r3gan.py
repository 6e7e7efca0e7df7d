"""R3GAN's recipe (issue 22): penalty=r1r2 against per-sample autograd, cosine schedules of the
penalty weight, learning rates and Adam's beta2 (values, bad input as one line, kill and resume
bit-identical, old hashes kept), and experiment=r3gan_stacked_mnist."""

import math
import signal

import pytest
import torch
from hydra.utils import instantiate
from test_optim import SHORT, _killed_at, _same_state, assert_one_line_before_training

from conftest import make_cfg
from gan_bench.checkpoint import config_hash
from gan_bench.config import check_config, hashed_config
from gan_bench.errors import UserError
from gan_bench.losses import make_penalty
from gan_bench.optim import build_optim_schedule, build_optimizers
from gan_bench.schedules import Cosine
from gan_bench.train import train


def mlp_d(seed=0, d=6):
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(d, 5, generator=g, dtype=torch.float64)
    w2 = torch.randn(5, generator=g, dtype=torch.float64)
    return lambda x: torch.tanh(x.flatten(1) @ W1) @ w2


def per_sample_sq_norms(D, x):
    """||grad_x t(x_i)||^2 for each sample alone: an independent computation, one D call per sample."""
    out = []
    for xi in x:
        xi = xi[None].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(D(xi).sum(), xi)
        out.append(float(g.square().sum()))
    return out


def batch(seed, b=7, d=6):
    return torch.randn(b, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---------------------------------------------------------------- penalty=r1r2

def test_r1r2_equals_per_sample_autograd_and_trains_d():
    D, real, fake = mlp_d(), batch(1), batch(2)
    pen = make_penalty("r1r2", weight=0.3)(D, real, fake, batch_dims=1)
    r1, r2 = per_sample_sq_norms(D, real), per_sample_sq_norms(D, fake)
    assert float(pen.detach()) == pytest.approx(0.3 * (sum(r1) / len(r1) + sum(r2) / len(r2)), rel=1e-12)

    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    make_penalty("r1r2")(net, real, fake).backward()  # double backward reaches D's parameters
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0


def test_r1r2_with_fake_equal_real_is_twice_r1():
    D, real = mlp_d(3), batch(4)
    r1 = make_penalty("r1", weight=0.7)(D, real, None)
    r1r2 = make_penalty("r1r2", weight=0.7)(D, real, real.clone())
    assert float(r1r2.detach()) == pytest.approx(2 * float(r1.detach()), rel=1e-12)
    assert make_penalty("r1r2").weight == 0.025 and make_penalty("r1r2").schedule is None


def test_r1r2_bad_values_at_build_time():
    for bad in (-0.1, float("nan"), "abc"):
        with pytest.raises(UserError, match=r"^penalty.weight must be a finite number >= 0.0, got") as e:
            make_penalty("r1r2", weight=bad)
        assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="penalty.schedule.steps must be a positive integer"):
        make_penalty("r1r2", weight=1, schedule={"kind": "cosine", "end": 0.1, "steps": 0})
    with pytest.raises(UserError, match="unknown penalty 'r1r3': choose one of none, gp, r1, r1r2"):
        make_penalty("r1r3")


def test_r1r2_replicas_are_independent():
    # D maps [K, B, d] -> [K, B] with its own weights per replica: the ensemble penalty is the sum of
    # the single-replica penalties, and replica 0's gradient ignores replica 1's data.
    K, g = 3, torch.Generator().manual_seed(0)
    W = torch.randn(K, 6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    DK = lambda x: torch.tanh(torch.einsum("kbd,kdh->kbh", x, W)).sum(-1)
    real, fake = torch.stack([batch(10 + k) for k in range(K)]), torch.stack([batch(20 + k) for k in range(K)])
    pen = make_penalty("r1r2", weight=1.0)(DK, real, fake, batch_dims=2)
    singles = [make_penalty("r1r2", weight=1.0)(lambda x, k=k: torch.tanh(x @ W[k]).sum(-1), real[k], fake[k])
               for k in range(K)]
    assert float(pen.detach()) == pytest.approx(float(sum(singles).detach()), rel=1e-12)

    (grad,) = torch.autograd.grad(pen, W)
    real2, fake2 = real.clone(), fake.clone()
    real2[1] += 1.0
    fake2[1] -= 0.5
    (grad2,) = torch.autograd.grad(make_penalty("r1r2", weight=1.0)(DK, real2, fake2, batch_dims=2), W)
    assert torch.equal(grad[0], grad2[0]) and torch.equal(grad[2], grad2[2])
    assert not torch.equal(grad[1], grad2[1])


# ---------------------------------------------------------------- schedules

def test_cosine_schedule_values():
    c = Cosine(2e-4, 5e-5, 100)
    assert c(0) == 2e-4 and c(100) == 5e-5 and c(10 ** 6) == 5e-5
    assert c(50) == pytest.approx((2e-4 + 5e-5) / 2, rel=1e-12)
    assert c(25) == pytest.approx(5e-5 + (2e-4 - 5e-5) * (1 + math.cos(math.pi / 4)) / 2, rel=1e-12)
    assert all(c(s) >= c(s + 1) for s in range(110))  # decays monotonically, then holds

    pen = make_penalty("r1", weight=1.0, schedule={"kind": "cosine", "end": 0.1, "steps": 10})
    assert [pen.at_step(s).weight for s in (0, 5, 10, 11)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    assert make_penalty("r1").at_step(7) == make_penalty("r1")  # constant without a schedule
    assert make_penalty("gp").at_step(7) == make_penalty("gp")


def test_optim_schedule_sets_both_players_rates_and_beta2(tmp_path):
    cfg = make_cfg(tmp_path, ["optim.lr_d=4e-4", "optim.lr_g=2e-4", "optim.betas=[0.0,0.9]",
                              "+optim.schedule={kind:cosine,lr_end:1e-5,beta2_end:0.99,steps:20}"])
    opt_g, opt_d = build_optimizers(cfg.optim, torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    sched = build_optim_schedule(cfg.optim)
    sched.apply(10, opt_g, opt_d)
    assert opt_d.param_groups[0]["lr"] == pytest.approx((4e-4 + 1e-5) / 2)
    assert opt_g.param_groups[0]["lr"] == pytest.approx((2e-4 + 1e-5) / 2)
    assert opt_g.param_groups[0]["betas"] == pytest.approx((0.0, (0.9 + 0.99) / 2))
    sched.apply(25, opt_g, opt_d)
    assert opt_d.param_groups[0]["lr"] == 1e-5 and opt_d.param_groups[0]["betas"] == (0.0, 0.99)
    only_beta = make_cfg(tmp_path, ["+optim.schedule={kind:cosine,beta2_end:0.99,steps:20}"]).optim
    opt_g, opt_d = build_optimizers(only_beta, torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    lr = opt_g.param_groups[0]["lr"]
    build_optim_schedule(only_beta).apply(30, opt_g, opt_d)
    assert opt_g.param_groups[0]["lr"] == lr and opt_g.param_groups[0]["betas"][1] == 0.99
    assert build_optim_schedule(make_cfg(tmp_path).optim) is None


@pytest.mark.parametrize("args, words", [
    (["penalty=r1r2", "penalty.weight=-1"], ["penalty.weight must be a finite number >= 0.0, got -1"]),
    (["penalty=r1r2", "penalty.schedule={kind:cosine,end:-0.1,steps:10}"], ["penalty.schedule.end must be"]),
    (["penalty=r1r2", "penalty.schedule={kind:cosine,end:0.1,steps:0}"], ["penalty.schedule.steps must be a positive"]),
    (["penalty=r1r2", "penalty.schedule={kind:linear,end:0.1,steps:5}"], ["penalty.schedule.kind must be cosine"]),
    (["penalty=r1", "+penalty.schedule={kind:cosine,steps:5}"], ["penalty.schedule needs end"]),
    (["penalty=gp", "+penalty.schedule={kind:cosine,end:1,steps:5}"], ["penalty.schedule is for penalty=r1|r1r2"]),
    (["+optim.schedule={kind:cosine,lr_end:-1e-5,steps:10}"], ["optim.schedule.lr_end must be a non-negative"]),
    (["+optim.schedule={kind:cosine,beta2_end:1.0,steps:10}"], ["optim.schedule.beta2_end must be a number in [0, 1)"]),
    (["+optim.schedule={kind:cosine,lr_end:1e-5,steps:-3}"], ["optim.schedule.steps must be a positive integer"]),
    (["+optim.schedule={kind:cosine,steps:10}"], ["optim.schedule moves nothing"]),
    (["+optim.schedule={kind:cosine,lr_end:1e-5,steps:10,warm:1}"], ["optim.schedule has unknown keys ['warm']"]),
    (["optim=sgd", "+optim.schedule={kind:cosine,beta2_end:0.99,steps:10}"], ["needs an optimizer with betas"]),
    (["optim.betas=[0.0,1.0]"], ["optim.betas must be two numbers in [0, 1)"]),
    # a burn-in the run never finishes
    (["+optim.schedule={kind:cosine,beta2_end:0.99,steps:100000}"], ["optim.schedule.steps=100000 is longer than"]),
    (["penalty=r1r2", "penalty.schedule={kind:cosine,end:0.1,steps:100000}"], ["penalty.schedule.steps=100000 is"]),
    (["penalty=r1r2", "+penalty.every=0"], ["penalty.every must be a positive integer"]),
])
def test_bad_schedules_are_one_line_before_training(tmp_path, capsys, args, words):
    assert_one_line_before_training(tmp_path, capsys, args, words)


def test_null_schedules_keep_the_hash(tmp_path):
    base = config_hash(hashed_config(make_cfg(tmp_path, ["penalty=r1"])))
    assert config_hash(hashed_config(make_cfg(tmp_path, ["penalty=r1", "+penalty.schedule=null",
                                                         "+optim.schedule=null"]))) == base
    moved = make_cfg(tmp_path, ["penalty=r1", "+penalty.schedule={kind:cosine,end:1,steps:5}"])
    assert config_hash(hashed_config(moved)) != base
    r1r2 = hashed_config(make_cfg(tmp_path, ["penalty=r1r2"]))
    assert "schedule" not in r1r2["penalty"] and "schedule" not in r1r2["optim"]


# ---------------------------------------------------------------- the trainer

SCHEDULED = ["penalty=r1r2", "penalty.weight=0.5", "penalty.schedule={kind:cosine,end:0.05,steps:30}",
             "optim.betas=[0.0,0.9]", "+optim.schedule={kind:cosine,lr_end:2e-4,beta2_end:0.99,steps:40}"]
RUN = [*SCHEDULED, "train.steps=50", *SHORT]


def test_kill_and_resume_with_schedules_is_bit_identical(tmp_path, monkeypatch):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = train(make_cfg(straight, RUN))
    assert done["status"] == "completed"
    last = torch.load(straight / "checkpoints" / "last.pt", weights_only=False)
    # The last step (49) ran past the schedule's 40 steps: its end values.
    assert last["opt_d"]["param_groups"][0]["lr"] == 2e-4
    assert tuple(last["opt_g"]["param_groups"][0]["betas"]) == (0.0, 0.99)

    _killed_at(17, monkeypatch)
    with pytest.raises(SystemExit) as e:
        train(make_cfg(killed, RUN))
    assert e.value.code == 128 + signal.SIGTERM
    assert torch.load(killed / "checkpoints" / "last.pt", weights_only=False)["step"] == 17
    monkeypatch.undo()
    resumed = train(make_cfg(killed, RUN))
    assert resumed["step"] == 50 and resumed["metrics"] == done["metrics"]
    _same_state(straight, killed)


def test_schedules_change_the_trajectory(tmp_path):
    # The schedules reach the loop: the same run without them ends elsewhere.
    constant = [a for a in SCHEDULED if "schedule" not in a]
    a, b = tmp_path / "a", tmp_path / "b"
    train(make_cfg(a, [*SCHEDULED, "train.steps=40", *SHORT]))  # as long as the longer schedule
    train(make_cfg(b, [*constant, "train.steps=40", *SHORT]))
    wa = torch.load(a / "checkpoints" / "last.pt", weights_only=False)["D"]
    wb = torch.load(b / "checkpoints" / "last.pt", weights_only=False)["D"]
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)


# ---------------------------------------------------------------- the experiment

def test_r3gan_stacked_mnist_composes_r3gans_recipe():
    cfg = make_cfg("/RUN", ["experiment=r3gan_stacked_mnist"], fast=False)
    check_config(cfg)
    assert (cfg.loss.name, cfg.loss.variant, cfg.penalty.name) == ("rsgan", "sgan", "r1r2")
    assert list(cfg.optim.betas) == [0.0, 0.9] and cfg.optim.lr == 2e-4
    # Table 9: gamma 1 -> 0.1 and beta2 0.9 -> 0.99 over a burn-in of 20% of the run, lr constant
    run_steps = cfg.train.epochs * math.ceil(cfg.dataset.n / 64)
    assert cfg.optim.schedule.steps == cfg.penalty.schedule.steps == run_steps // 5 == 15630
    assert "lr_end" not in cfg.optim.schedule and cfg.optim.schedule.beta2_end == 0.99
    assert (cfg.penalty.weight, cfg.penalty.schedule.end) == (0.5, 0.05)  # gamma/2
    # G's EMA half-life 0.5 Mimg of 10 scaled to this run's 5 Mimg: 3,906 steps at batch 64
    assert 0.5 ** (1 / 3906) == pytest.approx(cfg.train.ema, abs=1e-5)
    D = instantiate(cfg.model.discriminator)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())  # per-sample penalties
    isit = make_cfg("/RUN", ["experiment=isit23_stacked_mnist"], fast=False)
    assert cfg.dataset == isit.dataset
    assert {k: v for k, v in cfg.train.items() if k != "ema"} == {k: v for k, v in isit.train.items() if k != "ema"}
    assert cfg.model.generator == isit.model.generator and cfg.eval == isit.eval


def test_r3gan_table1_is_the_ablation_on_the_same_protocol():
    import yaml

    from gan_bench.paths import CONF_DIR

    spec = yaml.safe_load((CONF_DIR / "experiment" / "r3gan_table1.yaml").read_text())
    assert spec["hydra"]["sweeper"]["params"] == {"loss": "rsgan,bce", "penalty": "r1,r1r2", "seed": 0}
    base = make_cfg("/RUN", ["experiment=r3gan_stacked_mnist"], fast=False)
    for loss in ("rsgan", "bce"):
        for pen in ("r1", "r1r2"):
            cfg = make_cfg("/RUN", ["experiment=r3gan_table1", f"loss={loss}", f"penalty={pen}"], fast=False)
            check_config(cfg)
            assert instantiate(cfg.penalty).weight == 0.5 and cfg.penalty.schedule == base.penalty.schedule
            assert cfg.optim == base.optim and cfg.dataset == base.dataset and cfg.model == base.model
            assert cfg.train.epochs == base.train.epochs and cfg.train.ensemble == 8
    assert make_cfg("/RUN", ["experiment=r3gan_table1"], fast=False).loss == base.loss  # rsgan, variant sgan


def test_schedules_are_logged_to_tensorboard_at_log_ticks(tmp_path):
    """optim/lr_d, optim/lr_g, optim/beta2_* and penalty/weight: the values the step trained with."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from gan_bench.train import train

    cfg = make_cfg(tmp_path / "run", ["train.steps=20", "train.log_every=5", "train.eval_every=20",
                                      "train.ckpt_every=20", "optim.lr=4e-4", "optim.betas=[0.0,0.9]",
                                      "+optim.schedule={kind:cosine,lr_end:1e-5,beta2_end:0.99,steps:20}",
                                      "penalty=r1r2", "penalty.weight=0.5",
                                      "penalty.schedule={kind:cosine,end:0.05,steps:20}"])
    train(cfg)
    acc = EventAccumulator(str(tmp_path / "run" / "tb")).Reload()
    lr, beta2, weight = Cosine(4e-4, 1e-5, 20), Cosine(0.9, 0.99, 20), Cosine(0.5, 0.05, 20)
    for tag, want in (("optim/lr_d", lr), ("optim/lr_g", lr), ("optim/beta2_g", beta2), ("penalty/weight", weight)):
        got = {e.step: e.value for e in acc.Scalars(tag)}
        # a tick at step s logs the last step of its interval, step s - 1 (0-based), as trained
        assert got == pytest.approx({s: want(s - 1) for s in (5, 10, 15, 20)}, rel=1e-5), tag


def test_lazy_penalty_applies_every_nth_d_step_scaled_by_n():
    pen = make_penalty("r1r2", weight=0.5, every=4)
    picks = [pen.lazy(s) for s in range(9)]
    assert [p is not None for p in picks] == [True, False, False, False, True, False, False, False, True]
    assert picks[0].weight == 2.0 and picks[4].weight == 2.0  # weight x N where it applies
    every_step = make_penalty("r1r2", weight=0.5)
    assert all(every_step.lazy(s) is every_step for s in range(5))  # N = 1: the penalty itself
    assert make_penalty("gp", every=2).lazy(1) is None and make_penalty("gp", every=2).lazy(2).weight == 20.0
    sched = make_penalty("r1", weight=1.0, every=2, schedule={"kind": "cosine", "end": 0.1, "steps": 10})
    assert sched.at_step(5).lazy(6).weight == pytest.approx(2 * 0.55)  # the schedule, then the scaling


@pytest.mark.parametrize("every, words", [(0, "penalty.every must be a positive integer"),
                                          (-2, "penalty.every must be a positive integer"),
                                          (1.5, "penalty.every must be a positive integer")])
def test_bad_lazy_penalty_is_one_line(every, words):
    with pytest.raises(UserError, match=words):
        make_penalty("r1r2", every=every)
    with pytest.raises(UserError, match="need a penalty"):
        make_penalty("none", every=2)


def test_lazy_penalty_in_the_trainer(tmp_path, monkeypatch):
    """every=1 keeps the checkpoint hash and the trajectory; every=3 with n_critic=2 calls the penalty
    on D steps 0, 3, 6, ... (generator step s, critic c: s * 2 + c) with three times the weight."""
    from gan_bench.config import checkpoint_hashes
    from gan_bench.losses import penalties
    from gan_bench.train import train

    base = ["penalty=r1r2", "train.steps=6", "train.log_every=3", "train.eval_every=6", "train.ckpt_every=6",
            "train.n_critic=2"]
    plain = make_cfg(tmp_path / "a", base)
    explicit = make_cfg(tmp_path / "b", [*base, "+penalty.every=1"])
    assert checkpoint_hashes(plain) == checkpoint_hashes(explicit)
    a, b = train(plain), train(explicit)
    assert a["metrics"] == b["metrics"]
    weights = []
    real_call = penalties.R1R2Penalty.__call__
    monkeypatch.setattr(penalties.R1R2Penalty, "__call__",
                        lambda self, *x, **k: (weights.append(self.weight), real_call(self, *x, **k))[1])
    train(make_cfg(tmp_path / "c", [*base, "+penalty.every=3"]))
    assert weights == [pytest.approx(0.075)] * 4  # D steps 0, 3, 6, 9 of 12; weight 0.025 x 3
