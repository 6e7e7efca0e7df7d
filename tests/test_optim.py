"""optim=adam|rmsprop|sgd: what each preset builds, bad values as one line, kill and resume
bit-identical for each, replicas independent, and checkpoints written before `_target_` existed."""

import shutil
import signal
from pathlib import Path

import pytest
import torch
from test_ensemble import weights

import gan_bench.train as trainer
from conftest import FAST, make_cfg
from gan_bench.checkpoint import config_hash
from gan_bench.config import hashed_config, options
from gan_bench.errors import UserError
from gan_bench.optim import build_optimizers, check_optim
from gan_bench.train import train

DATA = Path(__file__).parent / "data"
SHORT = ["train.log_every=10", "train.eval_every=20", "train.ckpt_every=20"]


def nets():
    torch.manual_seed(0)
    return torch.nn.Linear(2, 3), torch.nn.Linear(3, 1)


def test_every_option_is_tested_here():
    assert options("optim") == ["adam", "rmsprop", "sgd"]


@pytest.mark.parametrize("name, cls, kernel", [
    ("adam", torch.optim.Adam, {"fused": True}),
    ("rmsprop", torch.optim.RMSprop, {"foreach": True}),  # torch 2.14 has no fused RMSprop
    ("sgd", torch.optim.SGD, {"fused": True}),
])
def test_presets_build_their_class_with_the_fast_kernel(tmp_path, name, cls, kernel):
    G, D = nets()
    cfg = make_cfg(tmp_path, [f"optim={name}", "optim.lr=3e-3", "optim.lr_d=1e-3"])
    opt_g, opt_d = build_optimizers(cfg.optim, G, D)
    assert type(opt_g) is cls and type(opt_d) is cls
    assert opt_g.param_groups[0]["lr"] == 3e-3 and opt_d.param_groups[0]["lr"] == 1e-3  # lr both, lr_d one
    for k, v in kernel.items():
        assert opt_g.param_groups[0][k] is v
    assert opt_g.param_groups[0]["params"] == list(G.parameters())
    assert opt_d.param_groups[0]["params"] == list(D.parameters())


def test_preset_arguments_reach_torch(tmp_path):
    G, D = nets()
    sgd = make_cfg(tmp_path, ["optim=sgd", "optim.momentum=0.5", "optim.nesterov=true"]).optim
    opt = build_optimizers(sgd, G, D)[1]
    assert (opt.param_groups[0]["momentum"], opt.param_groups[0]["nesterov"]) == (0.5, True)
    opt = build_optimizers(make_cfg(tmp_path, ["optim=rmsprop", "optim.alpha=0.9", "optim.centered=true",
                                               "+optim.maximize=false"]).optim, G, D)[0]
    assert (opt.param_groups[0]["alpha"], opt.param_groups[0]["centered"]) == (0.9, True)
    opt = build_optimizers(make_cfg(tmp_path, ["optim.betas=[0.5,0.99]"]).optim, G, D)[0]
    assert opt.param_groups[0]["betas"] == (0.5, 0.99)


def test_fused_false_leaves_the_kernel_to_torch(tmp_path):
    # Not torch's fused=False (a per-tensor loop even on CUDA): the default, foreach on CUDA.
    opt = build_optimizers(make_cfg(tmp_path, ["optim.fused=false"]).optim, *nets())[0]
    assert opt.param_groups[0]["fused"] is None and opt.param_groups[0]["foreach"] is None


@pytest.mark.parametrize("args, words", [
    (["optim.lr=-1"], ["optim.lr must be a positive number, got -1"]),
    (["optim.lr_d=0"], ["optim.lr_d must be a positive number, got 0"]),
    (["optim=sgd", "optim.lr_g=abc"], ["optim.lr_g must be a positive number, got 'abc'"]),
    (["optim=sgd", "optim.momentum=1"], ["optim.momentum must be a number in [0, 1), got 1"]),
    (["optim=sgd", "optim.momentum=-0.1"], ["optim.momentum must be a number in [0, 1)"]),
    (["optim=rmsprop", "optim.momentum=1.5"], ["optim.momentum must be a number in [0, 1)"]),
    (["optim=sgd", "optim.momentum=0", "optim.nesterov=true"], ["nesterov=true needs momentum"]),
    (["optim=sgd", "+optim.dampening=0.5", "optim.nesterov=true"], ["nesterov=true needs momentum and no dampening"]),
    (["optim.betas=[0.9,1.0]"], ["optim.betas must be two numbers in [0, 1)"]),
    (["optim.betas=[-0.1,0.9]"], ["optim.betas must be two numbers in [0, 1)"]),
    (["optim.betas=[0.9]"], ["optim.betas must be two numbers in [0, 1)"]),
    (["optim=rmsprop", "optim.alpha=1"], ["optim.alpha must be a number in [0, 1)"]),
    (["optim.eps=-1e-8"], ["optim.eps must be a non-negative number"]),
    (["optim.fused=maybe"], ["optim.fused must be true or false"]),
    (["optim=rmsprop", "optim.foreach=2"], ["optim.foreach must be true, false or null"]),
    (["+optim.bogus=1"], ["torch.optim.Adam refuses these settings", "bogus"]),
    (["optim._target_=torch.optim.Nope"], ["optim._target_ 'torch.optim.Nope' is not an optimizer class"]),
])
def test_bad_values_are_one_line_before_training(tmp_path, capsys, args, words):
    assert_one_line_before_training(tmp_path, capsys, args, words)


def assert_one_line_before_training(tmp_path, capsys, args, words):
    """`gan-bench train ARGS` exits 2 with one stderr line holding every word, and writes nothing."""
    from gan_bench.cli import main

    out = tmp_path / "run"
    try:
        code = main(["train", *FAST, f"hydra.run.dir={out}", *args])
    except SystemExit as e:
        code = e.code
    err = [s for s in capsys.readouterr().err.splitlines() if s.strip()]
    assert code == 2 and len(err) == 1, err
    assert all(w in err[0] for w in words), err[0]
    assert not (out / "checkpoints").exists() and not (out / "result.json").exists()


def test_check_optim_accepts_every_preset(tmp_path):
    for name in options("optim"):
        check_optim(make_cfg(tmp_path, [f"optim={name}"]).optim)
    with pytest.raises(UserError, match="has no _target_"):
        check_optim({"name": "adam", "lr_d": 1e-4, "lr_g": 1e-4})


def _killed_at(at: int, monkeypatch):
    """build_optimizers whose G optimizer sends this process SIGTERM in its `step`-th step: the
    trainer's stop path (finish the step, checkpoint, exit), at a step no checkpoint is due."""
    real = build_optimizers

    def killing(optim_cfg, G, D):
        opt_g, opt_d = real(optim_cfg, G, D)
        calls, inner = [0], opt_g.step

        def step(*a, **kw):
            out = inner(*a, **kw)
            calls[0] += 1
            if calls[0] == at:
                signal.raise_signal(signal.SIGTERM)
            return out

        opt_g.step = step
        return opt_g, opt_d

    monkeypatch.setattr(trainer, "build_optimizers", killing)


def _same_state(a_dir: Path, b_dir: Path, rtol: float = 0.0) -> None:
    """Bit-identical by default (both runs on this machine); rtol > 0 for a checkpoint written on
    another CPU, whose fp32 kernels may round differently."""
    def same(x, y):
        return torch.equal(x, y) if rtol == 0 else torch.allclose(x, y, rtol=rtol, atol=rtol * 1e-2)

    a, b = (torch.load(d / "checkpoints" / "last.pt", weights_only=False) for d in (a_dir, b_dir))
    assert a["step"] == b["step"]
    for net in ("G", "D"):
        for k in a[net]:
            assert same(a[net][k], b[net][k]), (net, k)
    for opt in ("opt_g", "opt_d"):
        assert a[opt]["state"].keys() == b[opt]["state"].keys() and a[opt]["state"]
        for i, st in a[opt]["state"].items():
            for k, v in st.items():
                assert same(torch.as_tensor(v), torch.as_tensor(b[opt]["state"][i][k])), (opt, i, k)
        assert a[opt]["param_groups"] == b[opt]["param_groups"]


@pytest.mark.parametrize("ensemble", [1, 2])
@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd"])
def test_kill_and_resume_is_bit_identical(tmp_path, monkeypatch, name, ensemble):
    args = [f"optim={name}", f"train.ensemble={ensemble}", "train.steps=50", *SHORT]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = train(make_cfg(straight, args))
    assert done["status"] == "completed"

    _killed_at(27, monkeypatch)
    with pytest.raises(SystemExit) as e:
        train(make_cfg(killed, args))
    assert e.value.code == 128 + signal.SIGTERM and not (killed / "result.json").exists()
    assert torch.load(killed / "checkpoints" / "last.pt", weights_only=False)["step"] == 27
    monkeypatch.undo()

    resumed = train(make_cfg(killed, args))
    assert resumed["status"] == "completed" and resumed["step"] == 50
    assert resumed["metrics"] == done["metrics"]
    _same_state(straight, killed)


@pytest.mark.parametrize("name", ["rmsprop", "sgd"])
def test_replicas_equal_single_runs(tmp_path, name):
    # Elementwise optimizers: replica i of an ensemble follows the single run with seed+i.
    args = [f"optim={name}", "optim.lr=1e-3", "train.steps=30", *SHORT]
    ens = tmp_path / "ens"
    train(make_cfg(ens, [*args, "seed=5", "train.ensemble=2"]))
    for i in range(2):
        single = tmp_path / f"single{i}"
        train(make_cfg(single, [*args, f"seed={5 + i}"]))
        for net in ("G", "D"):
            a, b = weights(single, net), weights(ens, net, i)
            for k in a:
                torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-5, msg=f"{name} {net} {k}")


# The run that wrote tests/data/main_adam/last.pt with main's code before optim=rmsprop|sgd existed
# (b8ff1fd, `python -m gan_bench.cli train <these> train.steps=5 hydra.run.dir=DIR`). Every hashed
# value is spelled out, so a later change of a default does not move this run's hash.
MAIN_RUN = [
    "seed=3", "alpha_d=1.0", "alpha_g=1.0", "dataset=ring", "dataset.n_modes=8", "dataset.radius=1.0",
    "dataset.std=0.01", "dataset.n_train=256", "dataset.n_test=64", "dataset.seed=0", "model=mlp",
    "model.latent_dim=2", "model.generator.width=8", "model.generator.depth=1", "model.generator.activation=relu",
    "model.discriminator.width=8", "model.discriminator.depth=1", "model.discriminator.activation=leaky_relu",
    "loss=bce", "loss.generator=ns", "penalty=none", "optim=adam", "optim.lr_d=1e-3", "optim.lr_g=1e-3",
    "optim.betas=[0.9,0.999]", "optim.eps=1e-8", "train.batch_size=32", "train.n_critic=1", "train.ensemble=1",
    "eval.holdout=0.0", "train.latent_pool=null", "train.ema=0.0", "eval.n_samples=64", "train.progress=false",
    "train.device=cpu", "train.ckpt_every=5", "train.eval_every=5", "train.log_every=5",
]
MAIN_HASH = "ca49a6a9018aeb00"


def test_a_checkpoint_written_by_main_resumes_bit_identical(tmp_path):
    old = tmp_path / "old"
    (old / "checkpoints").mkdir(parents=True)
    shutil.copy(DATA / "main_adam" / "last.pt", old / "checkpoints" / "last.pt")
    assert torch.load(old / "checkpoints" / "last.pt", weights_only=False)["step"] == 5
    cfg = make_cfg(old, [*MAIN_RUN, "train.steps=10"], fast=False)
    assert config_hash(hashed_config(cfg)) == MAIN_HASH
    assert "_target_" not in hashed_config(cfg)["optim"]  # Adam's, added after the checkpoint
    assert train(cfg)["step"] == 10  # resumed: a mismatched hash would be a UserError
    fresh = tmp_path / "fresh"
    train(make_cfg(fresh, [*MAIN_RUN, "train.steps=10"], fast=False))
    # main's Adam steps 1-5, then build_optimizers' 6-10 = build_optimizers' 1-10; the fixture's
    # steps 1-5 ran on the machine that wrote it, so to fp32 rounding, not bit for bit (a lost or
    # misread optimizer state moves every entry by ~lr, far beyond 1e-5 relative).
    _same_state(fresh, old, rtol=1e-5)


def test_other_optimizers_hash_apart(tmp_path):
    hashes = {config_hash(hashed_config(make_cfg(tmp_path, [f"optim={n}"]))) for n in options("optim")}
    assert len(hashes) == 3
    assert hashed_config(make_cfg(tmp_path, ["optim=sgd"]))["optim"]["_target_"] == "torch.optim.SGD"
