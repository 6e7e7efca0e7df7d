"""Every config in conf/ composes with the root config, and its node instantiates."""

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import make_cfg
from gan_bench.config import options
from gan_bench.errors import UserError
from gan_bench.train import build


@pytest.mark.parametrize("name", options("experiment"))
def test_experiments_compose_and_build(tmp_path, name):
    ring = name.startswith("isit23_") and "mnist" not in name
    cfg = make_cfg(tmp_path, [f"experiment={name}"], fast=ring)
    OmegaConf.to_container(cfg, resolve=False)
    assert build(cfg.loss) is not None
    if ring:
        assert cfg.train.steps == 156400 and cfg.train.batch_size == 128 and cfg.optim.lr_d == 1e-4
    else:  # image protocols: the networks build at the data set's resolution
        assert build(cfg.model.generator) is not None and build(cfg.model.discriminator) is not None


def test_isit23_ring_is_the_paper_protocol(tmp_path):
    cfg = make_cfg(tmp_path, ["experiment=isit23_ring", "model.generator.width=400", "model.discriminator.width=200",
                              "model.generator.depth=4", "model.discriminator.depth=4", "dataset.n_train=50000"])
    g, d = build(cfg.model.generator), build(cfg.model.discriminator)
    assert [m.out_features for m in g if hasattr(m, "out_features")] == [400, 400, 400, 400, 2]
    assert [m.out_features for m in d if hasattr(m, "out_features")] == [200, 200, 200, 200, 1]
    assert type(d[1]).__name__ == "LeakyReLU" and d[1].negative_slope == 0.2
    assert tuple(cfg.optim.betas) == (0.9, 0.999) and cfg.dataset.std == 0.01
    assert -(-cfg.dataset.n_train // cfg.train.batch_size) * 400 == cfg.train.steps  # 400 epochs of 391


@pytest.mark.parametrize("group", ["loss", "penalty", "optim"])
def test_groups_compose(tmp_path, group):
    for name in options(group):
        # loss=custom needs a builder: any importable function returning a Loss, here gan-bench's own Hinge
        extra = ["loss.builder=gan_bench.losses.simple:Hinge"] if (group, name) == ("loss", "custom") else []
        cfg = make_cfg(tmp_path, [f"{group}={name}", *extra])
        if group != "optim":
            build(cfg[group])  # penalty=none builds to None, which is fine


@pytest.mark.parametrize("name", options("model"))
def test_models_instantiate(tmp_path, name):
    ds = {"mlp": "ring", "isit23_smnist": "stacked_mnist"}.get(name, "cifar10")
    cfg = make_cfg(tmp_path, [f"model={name}", f"dataset={ds}"], fast=False)
    assert instantiate(cfg.model.generator) is not None and instantiate(cfg.model.discriminator) is not None


@pytest.mark.parametrize("name", options("dataset"))
def test_datasets_instantiate_or_say_what_is_missing(tmp_path, name):
    toy = name in ("ring", "grid", "gauss1d", "mixture1d")
    cfg = make_cfg(tmp_path, [f"dataset={name}", f"paths.data={tmp_path / 'empty'}"], fast=toy)
    if "download" in cfg.dataset:
        cfg.dataset.download = False  # no network here; the message must still say what to fetch
    if toy:
        assert build(cfg.dataset).kind == "toy"
    else:  # the real loaders, with no data here: one line naming what to put where
        with pytest.raises(UserError) as e:
            build(cfg.dataset)
        assert "\n" not in str(e.value)


def test_optim_lr_sets_both_players_and_is_not_hashed(tmp_path):
    from gan_bench.config import hashed_config

    cfg = make_cfg(tmp_path, ["optim.lr=3e-4"])
    assert (cfg.optim.lr_d, cfg.optim.lr_g) == (3e-4, 3e-4)
    cfg = make_cfg(tmp_path, ["optim.lr=3e-4", "optim.lr_d=1e-3"])
    assert (cfg.optim.lr_d, cfg.optim.lr_g) == (1e-3, 3e-4)
    # lr is only a default: a run is identified by the rates it trains with, as before lr existed.
    assert hashed_config(cfg)["optim"] == {"name": "adam", "lr_d": 1e-3, "lr_g": 3e-4,
                                           "betas": [0.5, 0.999], "eps": 1e-8}


def sweep_params(*overrides):
    from hydra import compose, initialize_config_dir

    from gan_bench.config import CONF_DIR
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=True).hydra.sweeper.params


@pytest.mark.parametrize("name,n_images,batch,lrs", [
    ("jsait24_celeba", 202_599, 128, "1e-4,2e-4,5e-4,6e-4,7e-4,8e-4,9e-4,1e-3"),
    ("jsait24_lsun_classroom", 168_103, 64, "1e-4,2e-4,3e-4,4e-4,5e-4")])
def test_jsait24_protocols_follow_the_authors_code(tmp_path, name, n_images, batch, lrs):
    for variant in ("", "_lsgan"):
        cfg = make_cfg(tmp_path, [f"experiment={name}{variant}"], fast=False)
        loss = build(cfg.loss)
        assert loss.name == ("lsgan" if variant else "alpha")
        if not variant:
            assert cfg.loss.generator == "ns" and cfg.alpha_g == 1.0
        assert tuple(cfg.optim.betas) == (0.9, 0.99) and cfg.optim.lr_d == cfg.optim.lr_g
        assert cfg.train.batch_size == batch and cfg.train.epochs == 150 and cfg.eval.holdout == 0.2
        assert cfg.train.latent_pool == "train"
        held = round(n_images * 0.2)  # as gan_bench.data.hold_out takes it: their N - int(0.8 N)
        assert held == n_images - int(0.8 * n_images)
        assert cfg.eval.metrics == [f"fid_logits_nonstandard{held}_heldout20"]
        assert cfg.train.eval_every == 10 * -(-(n_images - held) // batch)  # every 10 epochs
        params = sweep_params(f"experiment={name}{variant}")
        assert params["optim.lr"] == lrs and "optim.lr_d" not in params
        assert params.alpha_d == ("1.0" if variant else "0.5,0.6,0.7,0.8,0.9,1.0")


THEN_DEFAULTS = ["model.generator.width=400", "model.generator.depth=4", "model.discriminator.width=200",
                 "model.discriminator.depth=4", "optim.lr=1e-4", "optim.betas=[0.9,0.999]"]


@pytest.mark.parametrize("overrides, before", [
    (["loss=lsgan"], "0ec844f8c945545b"),
    (["experiment=isit23_lsgan"], "5a4424df8cffceba"),
    (["loss=renyigan", "alpha=0.5"], "340d46e907ff8c63"),
    (["loss=renyigan", "alpha=1"], "c945bdb41c3ebb12"),
])
def test_keys_added_later_keep_older_runs_resumable(tmp_path, overrides, before):
    # Hashes written by gan-bench b8ff1fd, before lsgan's `generator` and renyigan's `alpha_one`
    # existed: an interrupted run from then must still find its checkpoint.
    from gan_bench.checkpoint import config_hash
    from gan_bench.config import hashed_config

    other = ["loss.generator=saturating"] if "lsgan" in overrides[0] else ["loss.alpha_one=ns"]
    overrides = [*THEN_DEFAULTS, *overrides]  # the defaults of then, which the quick start has since changed
    assert config_hash(hashed_config(make_cfg(tmp_path, overrides, fast=False))) == before
    assert config_hash(hashed_config(make_cfg(tmp_path, overrides + other, fast=False))) != before


def test_where_the_data_live_is_not_in_the_hash(tmp_path):
    """A moved checkout or another GAN_BENCH_DATA resumes an image run; a checkpoint written while
    dataset.root was hashed is still accepted, and another data set (dataset.path) is not."""
    import torch

    from gan_bench import checkpoint
    from gan_bench.config import checkpoint_hashes, hashed_config

    def hashes(*overrides):
        return checkpoint_hashes(make_cfg(tmp_path, ["dataset=folder", "model=dcgan", *overrides], fast=False))

    here, moved = hashes("paths.data=/a", "dataset.path=/imgs"), hashes("paths.data=/b", "dataset.path=/imgs")
    assert here[0] == moved[0] and len(here) == len(moved) == 2 and here[1] != moved[1]
    assert hashes("paths.data=/a", "dataset.path=/other")[0] != here[0]
    assert checkpoint_hashes(make_cfg(tmp_path, [], fast=False)) == [checkpoint.config_hash(
        hashed_config(make_cfg(tmp_path, [], fast=False)))]  # the ring has no root: one hash, as before

    ckpt = tmp_path / "last.pt"
    torch.save({"config_hash": here[1], "step": 3}, ckpt)  # written before root left the hash
    assert checkpoint.load(ckpt, here)["step"] == 3
    with pytest.raises(UserError, match="different configuration"):
        checkpoint.load(ckpt, moved)
