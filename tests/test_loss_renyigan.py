"""RenyiGAN as its authors run it (renyigan-lkgan/RenyiGAN): alpha = 0, the triangle-wave alpha of
renyigan_varying_alpha.py, and the generator renyigan_static_alpha.py trains at alpha = 1.

Values are worked out by hand with `math` in probability space (D = sigmoid(t)).
"""

import math

import pytest
import torch
from hydra.utils import instantiate

from gan_bench.config import check_config
from gan_bench.errors import UserError
from gan_bench.losses import make_loss
from gan_bench.train import train

FAKE = [-0.5, 1.1, 0.4, -2.0]


def sig(t):
    return 1 / (1 + math.exp(-t))


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs)


def g_value(loss, fake=FAKE):
    return float(loss.g_loss(torch.tensor(fake, dtype=torch.float64)))


# ---------------------------------------------------------------- alpha = 0

def test_alpha_zero_closed_form():
    # 1/(alpha-1) log mean (1 - D)^(alpha-1) at alpha = 0: -log mean 1/(1 - D) = -log mean (1 + e^t).
    g = -math.log(mean(1 / (1 - sig(t)) for t in FAKE))
    assert g == pytest.approx(-math.log(mean(1 + math.exp(t) for t in FAKE)), rel=1e-14)
    assert g_value(make_loss("renyigan", alpha=0)) == pytest.approx(g, rel=1e-12)
    assert g_value(make_loss("renyigan", alpha=0.0, variant="l1")) == pytest.approx(abs(g + math.log(2)), rel=1e-12)
    # Its gradient: dG/dt_i = -(e^t_i / N) / mean(1 + e^t).
    f = torch.tensor(FAKE, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(make_loss("renyigan", alpha=0).g_loss(f), f)
    expected = [-math.exp(t) / len(FAKE) / mean(1 + math.exp(s) for s in FAKE) for t in FAKE]
    assert grad.tolist() == pytest.approx(expected, rel=1e-12)


def test_alpha_zero_is_continuous():
    a, b = g_value(make_loss("renyigan", alpha=0)), g_value(make_loss("renyigan", alpha=1e-7))
    assert a == pytest.approx(b, rel=1e-6)


def test_alpha_zero_float32_is_finite_and_matches_float64():
    t = torch.linspace(-15, 15, 31, dtype=torch.float64)
    loss = make_loss("renyigan", alpha=0)
    f32 = t.float().requires_grad_(True)
    g32 = loss.g_loss(f32)
    (grad32,) = torch.autograd.grad(g32, f32)
    f64 = t.clone().requires_grad_(True)
    (grad64,) = torch.autograd.grad(loss.g_loss(f64), f64)
    assert torch.isfinite(grad32).all() and float(g32.detach()) == pytest.approx(float(loss.g_loss(t)), rel=1e-6)
    torch.testing.assert_close(grad32.double(), grad64, rtol=1e-5, atol=0)


def test_alpha_zero_only_where_the_family_defines_it():
    with pytest.raises(UserError, match=r"alpha must be a finite non-negative number for loss=renyigan, got -0.1"):
        make_loss("renyigan", alpha=-0.1)
    for name, key in (("renyi", "alpha"), ("alpha", "alpha_d"), ("alpha", "alpha_g")):
        with pytest.raises(UserError, match=f"{key} must be a .*positive number"):
            make_loss(name, **{key: 0})
    for key in ("alpha_d", "alpha_g"):
        with pytest.raises(UserError, match=f"{key} must be a positive number"):
            make_loss("cpe", loss_d="alpha", loss_g="alpha", **{key: 0.0})
    with pytest.raises(UserError, match="loss.schedule.start must be a finite positive number"):
        make_loss("renyi", schedule={"kind": "step", "start": 0})
    assert make_loss("renyigan", schedule={"kind": "step", "start": 0}).at_step(0, 10).alpha == 0.0


def test_root_config_accepts_alpha_zero_for_renyigan_only(cfg_factory):
    check_config(cfg_factory("loss=renyigan", "alpha=0"))
    for overrides in (("loss=renyi", "alpha=0"), ("loss=alpha", "alpha_d=0"), ("loss=cpe", "alpha=0"),
                      ("alpha=0",)):
        with pytest.raises(UserError, match="must be a positive number or inf, got 0"):
            check_config(cfg_factory(*overrides))
    with pytest.raises(UserError, match="alpha must be a non-negative number for loss=renyigan, got -1"):
        check_config(cfg_factory("loss=renyigan", "alpha=-1"))


# ---------------------------------------------------------------- alpha = 1

def test_alpha_one_limit_and_the_static_scripts_ns_generator():
    limit = mean(math.log(1 - sig(t)) for t in FAKE)      # the alpha -> 1 limit (varying script at 1.0)
    ns = mean(-math.log(sig(t)) for t in FAKE)           # renyigan_static_alpha.py at alpha = 1
    assert g_value(make_loss("renyigan", alpha=1)) == pytest.approx(limit, rel=1e-12)
    assert g_value(make_loss("renyigan", alpha=1, alpha_one="ns")) == pytest.approx(ns, rel=1e-12)
    # Elsewhere alpha_one changes nothing.
    for a in (0.0, 0.5, 3.0):
        assert g_value(make_loss("renyigan", alpha=a, alpha_one="ns")) == g_value(make_loss("renyigan", alpha=a))
    # Scheduled orders switch too when they land on 1.
    s = make_loss("renyigan", alpha=3.0, alpha_one="ns", schedule={"kind": "step", "start": 1.0, "at": 0.5})
    assert g_value(s.at_step(0, 10)) == pytest.approx(ns, rel=1e-12)
    assert g_value(s.at_step(5, 10)) == g_value(make_loss("renyigan", alpha=3.0))


def test_alpha_one_ns_is_not_for_l1():
    with pytest.raises(UserError, match="loss.alpha_one=ns .* use loss.alpha_one=limit"):
        make_loss("renyigan", variant="l1", alpha_one="ns")
    with pytest.raises(UserError, match="loss.alpha_one must be one of limit, ns"):
        make_loss("renyigan", alpha_one="dcgan")


# ---------------------------------------------------------------- the triangle-wave alpha

def authors_walk(subversion, epochs):
    """The alpha of each epoch in renyigan_varying_alpha.py, re-derived from its rules: start at the
    low end, move 0.1 per epoch (rounded to one decimal), turn at the ends of the range; in
    subversion 2 the walk never stands on 1.0 (0.9 <-> 1.1)."""
    low, high = {1: (0.0, 0.9), 2: (0.0, 3.0), 3: (1.1, 4.0)}[subversion]
    alpha, up, out = low, True, []
    for _ in range(epochs):
        out.append(alpha)
        alpha = round(alpha + (0.1 if up else -0.1), 1)
        if subversion == 2 and alpha == 1.0:
            alpha = 1.1 if up else 0.9
        if alpha in (low, high):
            up = alpha == low
    return out


TRIANGLES = {1: {"low": 0, "high": 0.9}, 2: {"low": 0, "high": 3, "skip": [1]}, 3: {"low": 1.1, "high": 4}}


@pytest.mark.parametrize("subversion", [1, 2, 3])
def test_triangle_matches_the_authors_250_epochs(subversion):
    epochs, per_epoch = 250, 600  # MNIST, batch 100
    loss = make_loss("renyigan", schedule={"kind": "triangle", "epochs": epochs, **TRIANGLES[subversion]})
    total = epochs * per_epoch
    got = [loss.at_step(e * per_epoch + k, total).alpha for e in range(epochs) for k in (0, per_epoch - 1)]
    want = [a for a in authors_walk(subversion, epochs) for _ in range(2)]
    assert got == want
    assert min(want) == TRIANGLES[subversion]["low"] and max(want) == TRIANGLES[subversion]["high"]
    assert 1.0 not in want  # no walk stands on alpha = 1, where the static script would switch generator


def test_triangle_spot_values():
    loss = make_loss("renyigan", schedule={"kind": "triangle", "low": 0, "high": 0.9, "epochs": 40})
    alphas = [loss.at_step(e, 40).alpha for e in range(40)]
    assert alphas[:12] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.8, 0.7]
    assert alphas[18] == 0.0 and alphas[19] == 0.1  # period 18


def test_triangle_for_the_other_families_and_players():
    a = make_loss("alpha", alpha_d=0.3, alpha_g=1.0,
                  schedule={"kind": "triangle", "low": 0.5, "high": 1.5, "delta": 0.5, "epochs": 4, "player": "g"})
    assert [a.at_step(s, 4).alpha_g for s in range(4)] == [0.5, 1.0, 1.5, 1.0]
    assert {a.at_step(s, 4).alpha_d for s in range(4)} == {0.3}
    with pytest.raises(UserError, match="loss.schedule.low must be a finite positive number"):
        make_loss("renyi", schedule={"kind": "triangle", "low": 0, "high": 0.9, "epochs": 10})


@pytest.mark.parametrize("spec,match", [
    ({"low": 0, "high": 0.9}, "loss.schedule.epochs must be the run's length in epochs"),
    ({"low": 0, "high": 0.9, "epochs": 0}, "loss.schedule.epochs must be"),
    ({"low": 0, "high": 0.95, "epochs": 5}, "a whole number of deltas"),
    ({"low": 1, "high": 0.5, "epochs": 5}, "needs low < high"),
    ({"low": 0, "high": 1, "skip": [0.55], "epochs": 5}, "skip value 0.55 is not on the grid"),
    ({"low": 0, "high": 0.1, "skip": [0.1], "epochs": 5}, "skips all but one value"),
    ({"low": 0, "high": 0.9, "skip": 1, "epochs": 5}, "loss.schedule.skip must be a list"),
    ({"low": 0, "high": 0.9, "start": 0, "epochs": 5}, r"unknown keys \['start'\] for kind=triangle"),
    ({"low": -0.1, "high": 0.9, "epochs": 5}, "loss.schedule.low must be a finite non-negative number"),
])
def test_bad_triangles(spec, match):
    with pytest.raises(UserError, match=match):
        make_loss("renyigan", schedule={"kind": "triangle", **spec})


def test_triangle_from_the_command_line_follows_train_epochs(cfg_factory):
    cfg = cfg_factory("loss=renyigan", "alpha=0", "train.epochs=250",
                      "loss.schedule={kind:triangle,low:0,high:3,skip:[1],epochs:${train.epochs}}")
    loss = instantiate(cfg.loss)
    assert loss.schedule.epochs == 250 and len(loss.schedule.values) == 30 and 1.0 not in loss.schedule.values


# ---------------------------------------------------------------- training

@pytest.mark.parametrize("overrides", [
    ("alpha=0",),
    ("alpha=1", "loss.alpha_one=ns"),
    ("alpha=0", "loss.schedule={kind:triangle,low:0,high:0.9,epochs:2}"),
], ids=["alpha0", "alpha_one_ns", "triangle"])
def test_renyigan_trains_two_steps(cfg_factory, overrides):
    result = train(cfg_factory("loss=renyigan", *overrides, "train.steps=2", "train.log_every=1"))
    assert result["status"] == "completed" and result["step"] == 2, result


class SpyRenyiGAN:
    """renyigan recording the alpha the trainer gets at each step (a `_target_` for cfg.loss)."""
    seen = {}

    def __init__(self, schedule):
        self.inner = make_loss("renyigan", schedule=schedule)
        self.needs_real_for_g, self.logit_scale = False, 1.0

    def at_step(self, step, total):
        loss = self.inner.at_step(step, total)
        SpyRenyiGAN.seen[step] = loss.alpha
        return loss


def test_the_trainer_moves_alpha_at_epoch_boundaries(cfg_factory):
    # The ring's 2000 points in batches of 128: 16 steps an epoch, so 2 epochs are 32 steps.
    cfg = cfg_factory("train.epochs=2", "train.log_every=8")
    cfg.loss = {"_target_": "test_loss_renyigan.SpyRenyiGAN",
                "schedule": {"kind": "triangle", "low": 0, "high": 0.9, "epochs": "${train.epochs}"}}
    SpyRenyiGAN.seen.clear()
    assert train(cfg)["status"] == "completed"
    assert SpyRenyiGAN.seen == {s: 0.0 if s < 16 else 0.1 for s in range(32)}
