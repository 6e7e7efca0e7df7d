"""Shared test helpers: compose the real config tree with Hydra's compose API."""


import pytest
import torch
from hydra import compose, initialize_config_dir

from gan_bench.config import CONF_DIR

# Small and fast: the ring with narrow networks and a few hundred samples per evaluation.
FAST = ["model.generator.width=32", "model.discriminator.width=32", "model.generator.depth=2",
        "model.discriminator.depth=2", "dataset.n_train=2000", "dataset.n_test=500",
        "eval.n_samples=500", "train.progress=false", "train.device=cpu"]


def make_cfg(run_dir, overrides=(), fast=True):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=[*(FAST if fast else ()), f"paths.run_dir={run_dir}", *overrides])


@pytest.fixture
def cfg_factory(tmp_path):
    def factory(*overrides, run_dir=None):
        return make_cfg(run_dir or tmp_path / "run", overrides)
    return factory


@pytest.fixture(scope="module")
def one_thread():
    """Inception on 2 OpenMP threads slows down ~10x when the other core is busy (shared dev
    machines, parallel test runs); one thread costs ~1.5x when it is idle. Restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
