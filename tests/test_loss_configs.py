"""Every conf/loss and conf/penalty option composes with the root config and instantiates; the
documented overrides work. Only cfg.loss / cfg.penalty are resolved (cfg.paths needs a Hydra run)."""

import copy
import re
import warnings
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gan_bench.errors import UserError
from gan_bench.losses import LOSSES, ConvergenceRegionWarning, Loss
from gan_bench.losses.penalties import PENALTIES, GradientPenalty, R1Penalty

ROOT = Path(__file__).parents[1]
CONF = ROOT / "conf"
if not OmegaConf.has_resolver("gb_root"):
    OmegaConf.register_new_resolver("gb_root", lambda: ".", replace=True)


@pytest.fixture(scope="module")
def cfg():
    """cfg(*overrides): the composed root config (a fresh copy; Hydra composes take ~0.3 s, so each
    distinct override list is composed once). Values that need no CLI parsing are set on the copy."""
    cache = {}
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        def get(*overrides):
            if overrides not in cache:
                cache[overrides] = compose(config_name="train", overrides=list(overrides))
            return copy.deepcopy(cache[overrides])
        yield get


def make(node_cfg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceRegionWarning)
        return instantiate(node_cfg)


def test_one_config_per_loss_and_penalty():
    assert sorted(p.stem for p in (CONF / "loss").glob("*.yaml")) == sorted(LOSSES)
    assert sorted(p.stem for p in (CONF / "penalty").glob("*.yaml")) == sorted(PENALTIES)


@pytest.mark.parametrize("name", [n for n in LOSSES if n != "custom"])  # custom needs a builder: test_loss_custom
def test_every_loss_config_instantiates(cfg, name):
    loss = make(cfg(*(() if name == "bce" else (f"loss={name}",))).loss)  # bce is the default
    assert isinstance(loss, Loss) and loss.name == name
    assert (CONF / "loss" / f"{name}.yaml").read_text().startswith("#")  # says what it is


def test_defaults_and_root_alphas(cfg):
    assert make(cfg().loss).generator == "ns"
    assert make(cfg("loss=alpha").loss).generator == "ns" and make(cfg("loss=renyi").loss).generator == "saturating"
    loss = make(cfg("loss=alpha", "alpha_d=0.3", "alpha_g=1").loss)
    assert (loss.alpha_d, loss.alpha_g) == (0.3, 1.0)
    loss = make(cfg("loss=alpha", "alpha=inf", "loss.generator=saturating").loss)
    assert loss.alpha_d == loss.alpha_g == float("inf") and loss.generator == "saturating"
    c = cfg("loss=alpha")
    c.alpha = 0.5  # alpha_d and alpha_g follow ${alpha}
    assert (make(c.loss).alpha_d, make(c.loss).alpha_g) == (0.5, 0.5)
    for name in ("renyi", "renyigan"):
        c = cfg(f"loss={name}")
        c.alpha = 3.0
        assert make(c.loss).alpha == 3.0


def test_bad_value_surfaces_as_user_error(cfg):
    c = cfg("loss=renyi")
    c.alpha = float("inf")
    with pytest.raises(InstantiationException) as e:
        make(c.loss)
    assert isinstance(e.value.__cause__, UserError)
    with pytest.raises(InstantiationException) as e:
        make(cfg("loss=alpha", "alpha_d=abc").loss)
    assert isinstance(e.value.__cause__, UserError) and "alpha_d must be a positive number" in str(e.value.__cause__)


def test_schedule_override(cfg):
    loss = make(cfg("loss=alpha", "alpha=1", "loss.schedule={kind:linear,start:0.5}").loss)
    assert loss.at_step(0, 10).alpha_d == 0.5 and loss.at_step(5, 10).alpha_g == 0.75
    c = cfg("loss=renyi")
    c.loss.schedule = {"kind": "step", "start": 0.5, "at": 0.5}
    loss = make(c.loss)
    assert loss.at_step(4, 10).alpha == 0.5 and loss.at_step(5, 10).alpha == 1.0


def test_family_option_overrides(cfg):
    for name, key, value, check in (("fgan", "divergence", "hellinger", lambda l: l.logit_scale == 0.5),
                                    ("renyigan", "variant", "l1", lambda l: l.variant == "l1"),
                                    ("ragan", "variant", "hinge", lambda l: l.variant == "hinge")):
        c = cfg(f"loss={name}")
        c.loss[key] = value
        assert check(make(c.loss))
    loss = make(cfg("loss=beyond", "loss.discriminator=alpha", "+loss.discriminator_params.alpha_d=0.5",
                    "loss.distance=logl1", "loss.form=d_E", "loss.target=label").loss)
    assert loss.discriminator.alpha_d == 0.5 and loss.logit_scale == 0.5 and not loss.needs_real_for_g


def test_penalty_configs(cfg):
    assert make(cfg().penalty) is None  # penalty=none is the default
    gp = make(cfg("penalty=gp").penalty)
    assert isinstance(gp, GradientPenalty) and gp.weight == 10.0
    c = cfg("penalty=r1")
    assert make(c.penalty).weight == 5.0
    c.penalty.weight = 2.5
    r1 = make(c.penalty)
    assert isinstance(r1, R1Penalty) and r1.weight == 2.5


def test_docs_cover_every_option():
    doc = (ROOT / "docs" / "losses.md").read_text()
    for name in LOSSES:
        assert re.search(rf"^## `{name}`", doc, re.M), name
        assert f"gan-bench train loss={name}" in doc, name
    for name in ("gp", "r1"):
        assert f"penalty={name}" in doc
