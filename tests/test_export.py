"""`gan-bench export` and `gan-bench sample`: one replica (or a single run) as plain networks, end to
end on tiny ring and image runs, and on checkpoint-shaped DCGAN ensembles built here."""

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from conftest import FAST, make_cfg
from gan_bench.checkpoint import config_hash
from gan_bench.cli import main
from gan_bench.config import hashed_config
from gan_bench.data.images import to_uint8
from gan_bench.ensemble import build_replicas
from gan_bench.metrics.latents import fixed_latents


def cli(*argv) -> int:
    try:
        return main([str(a) for a in argv])
    except SystemExit as e:
        return e.code


def exported(path):
    return torch.load(path, weights_only=False)


def plain(config, net):
    """The plain model class of an exported config ("generator" or "discriminator")."""
    return instantiate(OmegaConf.create(config).model[net])


def assert_same(a: dict, b: dict, **tol):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], **tol, msg=k)


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(16):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return d


def test_ring_ensemble_replica_exports_as_the_single_run(tmp_path):
    # Replica 1 of seeds 4..5 and the single run of seed 5: the same keys, the same weights.
    common = [*FAST, "dataset.n_train=256", "eval.n_samples=100", "train.steps=3", "train.log_every=1"]
    assert cli("train", *common, "seed=4", "train.ensemble=2", f"hydra.run.dir={tmp_path / 'ens'}") == 0
    assert cli("train", *common, "seed=5", f"hydra.run.dir={tmp_path / 'one'}") == 0
    assert cli("export", tmp_path / "ens", "--replica", "1", "--out", tmp_path / "ens.pt") == 0
    assert cli("export", tmp_path / "one", "--out", tmp_path / "one.pt") == 0
    ens, one = exported(tmp_path / "ens.pt"), exported(tmp_path / "one.pt")
    assert ens.keys() == one.keys() == {"G", "D", "config"}
    for net in ("G", "D"):
        assert_same(ens[net], one[net], rtol=1e-5, atol=1e-6)
    assert ens["config"]["seed"] == 5 and ens["config"]["train"]["ensemble"] == 1
    assert ens["config"]["model"] == one["config"]["model"]
    for net, key in (("G", "generator"), ("D", "discriminator")):
        plain(ens["config"], key).load_state_dict(ens[net])  # strict: the plain class's own keys
    # Samples of the replica: a scatter picture, and the points themselves on the fixed latents.
    assert cli("sample", tmp_path / "ens", "--replica", "1", "--n", "50", "--out", tmp_path / "s.npz") == 0
    assert cli("sample", tmp_path / "ens", "--replica", "1", "--out", tmp_path / "s.png") == 0
    s = np.load(tmp_path / "s.npz")
    G = plain(ens["config"], "generator")
    G.load_state_dict(ens["G"])
    z = fixed_latents(50, 2, ens["config"]["eval"]["latent_seed"])
    np.testing.assert_array_equal(s["z"], z.numpy())
    np.testing.assert_allclose(s["samples"], G.eval()(z).detach().numpy(), rtol=1e-6)
    assert s["samples"].shape == (50, 2) and Image.open(tmp_path / "s.png").size == (384, 384)


def test_single_image_run_exports_its_ema_generator(tmp_path, image_dir):
    run = tmp_path / "run"
    assert cli("train", "dataset=folder", f"dataset.path={image_dir}", "dataset.resolution=32",
               f"paths.data={tmp_path / 'data'}", "model=dcgan_small", "train.batch_size=8", "train.steps=2",
               "train.ema=0.5", "train.progress=false", "train.device=cpu", "eval.metrics=[]",
               "eval.final_metrics=[]", f"hydra.run.dir={run}") == 0
    assert cli("export", run, "--out", tmp_path / "x.pt") == 0
    out, ckpt = exported(tmp_path / "x.pt"), torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    G = plain(out["config"], "generator")
    G.load_state_dict(out["G"])
    buffers = {k for k, _ in G.named_buffers()}
    for k, v in out["G"].items():  # EMA parameters, G's BatchNorm statistics
        torch.testing.assert_close(v, ckpt["G" if k in buffers else "G_ema"][f"net.{k}"], rtol=0, atol=0)
    assert any(not torch.equal(ckpt["G"][f"net.{k}"], ckpt["G_ema"][f"net.{k}"]) for k in out["G"] if k not in buffers)
    plain(out["config"], "discriminator").load_state_dict(out["D"])
    # A grid of --n images; the same seed draws the same images, another seed others.
    assert cli("sample", run, "--n", "16", "--out", tmp_path / "g.png") == 0
    assert Image.open(tmp_path / "g.png").size == (4 * 32 + 5 * 2,) * 2
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert cli("sample", run, "--n", "6", "--seed", seed, "--out", tmp_path / f"{name}.npz") == 0
    a, b, c = (np.load(tmp_path / f"{n}.npz")["samples"] for n in "abc")
    assert a.shape == (6, 3, 32, 32) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    np.testing.assert_array_equal(a, to_uint8(G.eval()(fixed_latents(6, 100, 3))).numpy())


def conv_ensemble_run(tmp_path, impl, K=3):
    """A run directory as an image ensemble's training would leave it: the config and a checkpoint
    of trained-looking G, G_ema and D (BN statistics moved, EMA away from G)."""
    run = tmp_path / "run"
    cfg = make_cfg(run, ["dataset=folder", f"dataset.path={tmp_path}", "dataset.resolution=28",
                         "model=isit23_smnist", "model.latent_dim=16", f"train.ensemble={K}",
                         f"train.ensemble_impl={impl}", "train.ema=0.9", "seed=11"], fast=False)
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    G, D = build_replicas(lambda: instantiate(cfg.model.generator), lambda: instantiate(cfg.model.discriminator),
                          [11 + i for i in range(K)], impl)
    G_ema = build_replicas(lambda: instantiate(cfg.model.generator), lambda: instantiate(cfg.model.discriminator),
                           [11 + i for i in range(K)], impl)[0]
    D(G(torch.randn(K, 8, 16)))  # running statistics off their init
    G_ema.load_state_dict(G.state_dict())
    with torch.no_grad():
        for p in G_ema.parameters():
            p.add_(0.01 * torch.randn_like(p))
    G(torch.randn(K, 8, 16))  # G's statistics moved on since the EMA copy took them
    (run / "checkpoints").mkdir()
    torch.save({"config_hash": config_hash(hashed_config(cfg)), "step": 5, "G": G.state_dict(),
                "D": D.state_dict(), "G_ema": G_ema.state_dict(),
                "replicas": [{"seed": 11 + i, "status": "completed", "diverged_at": None} for i in range(K)]},
               run / "checkpoints" / "last.pt")
    return run, G, G_ema, D


@pytest.mark.parametrize("impl", ["grouped", "vmap"])
def test_conv_ensemble_replica_exports_and_samples(tmp_path, impl):
    run, G, G_ema, D = conv_ensemble_run(tmp_path, impl)
    assert cli("export", run, "--replica", "2", "--out", tmp_path / "r2.pt") == 0
    out = exported(tmp_path / "r2.pt")
    assert out["config"]["seed"] == 13 and out["config"]["train"]["ensemble"] == 1
    g = plain(out["config"], "generator")
    g.load_state_dict(out["G"])
    ema, own = G_ema.replica_state_dict(2), G.replica_state_dict(2)
    buffers = {k for k, _ in g.named_buffers()}
    assert_same(out["G"], {k: (own[k] if k in buffers else ema[k]) for k in own}, rtol=0, atol=0)
    assert_same(out["D"], D.replica_state_dict(2), rtol=0, atol=0)
    plain(out["config"], "discriminator").load_state_dict(out["D"])
    # The samples are what the ensemble's replica 2 draws (EMA weights, G's statistics, eval mode).
    assert cli("sample", run, "--replica", "2", "--n", "5", "--seed", "1", "--out", tmp_path / "s.npz") == 0
    G_ema.load_state_dict({**G_ema.state_dict(), **dict(G.named_buffers())})
    z = fixed_latents(5, 16, 1)
    want = to_uint8(G_ema.eval()(z.unsqueeze(0).expand(3, -1, -1))[2])
    got = np.load(tmp_path / "s.npz")["samples"]
    assert got.shape == (5, 3, 28, 28) and np.abs(got.astype(int) - want.numpy().astype(int)).max() <= 1


def one_error_line(capsys, *argv) -> str:
    assert cli(*argv) == 2
    err = [s for s in capsys.readouterr().err.splitlines() if s.strip()]
    assert len(err) == 1, err
    return err[0]


def test_bad_input_is_one_line(tmp_path, capsys):
    run, *_ = conv_ensemble_run(tmp_path, "grouped")
    out = tmp_path / "x.pt"
    assert "out of range" in one_error_line(capsys, "export", run, "--replica", "3", "--out", out)
    assert "0..2" in one_error_line(capsys, "sample", run, "--replica", "-1", "--out", tmp_path / "s.png")
    assert "unknown extension '.txt'" in one_error_line(capsys, "export", run, "--out", tmp_path / "x.txt")
    assert "unknown extension '.jpg'" in one_error_line(capsys, "sample", run, "--out", tmp_path / "s.jpg")
    assert "--n must be" in one_error_line(capsys, "sample", run, "--n", "0", "--out", tmp_path / "s.png")
    (run / "checkpoints" / "last.pt").write_bytes(b"torn")
    assert "corrupt" in one_error_line(capsys, "export", run, "--out", out)
    (run / "checkpoints" / "last.pt").unlink()
    assert "no checkpoints/last.pt" in one_error_line(capsys, "export", run, "--out", out)
    nowhere = tmp_path / "nowhere"
    assert "no .hydra/config.yaml" in one_error_line(capsys, "sample", nowhere, "--out", tmp_path / "s.png")
    assert not out.exists()


def test_single_run_has_only_replica_0(tmp_path, capsys):
    run = tmp_path / "one"
    assert cli("train", *FAST, "train.steps=2", f"hydra.run.dir={run}") == 0
    assert "a single run" in one_error_line(capsys, "export", run, "--replica", "1", "--out", tmp_path / "x.pt")
    assert cli("export", run, "--replica", "0", "--out", tmp_path / "x.pt") == 0
    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    cfg.seed = 99  # a config that no longer describes the checkpoint
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    assert "edited" in one_error_line(capsys, "export", run, "--out", tmp_path / "y.pt")
