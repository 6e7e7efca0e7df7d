"""Paper protocols do not move with defaults: each conf/experiment file's fully composed config
is pinned in tests/fixtures/experiments/NAME.yaml. A change of a default (network width, lr,
steps, metrics...) that reaches an experiment fails here; state the old value in the experiment
file, or, when the protocol itself is meant to change, re-pin on purpose with
GAN_BENCH_UPDATE_PINS=1 pytest tests/test_experiment_pins.py and review the diff."""

import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import make_cfg
from gan_bench.config import options

PINS = Path(__file__).parent / "fixtures" / "experiments"
# Where a run writes and reads, not what it computes: fixed here so the pins hold on any checkout.
PLACES = ["paths.root=/ROOT", "paths.data=/DATA", "paths.outputs=/OUT"]


def composed(name: str, *overrides: str) -> str:
    cfg = make_cfg("/RUN", [*PLACES, f"experiment={name}", *overrides], fast=False)
    tree = OmegaConf.to_container(cfg, resolve=True)
    tree.pop("hydra", None)
    return OmegaConf.to_yaml(OmegaConf.create(tree), sort_keys=True)


@pytest.mark.parametrize("name", options("experiment"))
def test_experiment_config_is_pinned(name):
    text, pin = composed(name), PINS / f"{name}.yaml"
    if os.environ.get("GAN_BENCH_UPDATE_PINS") == "1":
        pin.parent.mkdir(parents=True, exist_ok=True)
        pin.write_text(text)
    assert pin.exists(), f"no pin for experiment {name}: run GAN_BENCH_UPDATE_PINS=1 pytest {__file__}"
    assert text == pin.read_text(), (f"experiment={name} composes differently from its pin {pin}: a default "
                                     "it relies on changed; state that setting in its conf/experiment file")


def test_a_changed_default_is_caught():
    """The guard can fail: a value the ring protocol takes from a group default, changed, changes the text."""
    assert composed("isit23_ring", "dataset.n_test=1000") != composed("isit23_ring")
