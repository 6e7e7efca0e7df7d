"""The memory estimate of a K-ensemble (gan_bench/memory.py): exact state bytes, activations that
scale with the batch and with K as a real ensemble's do, and the one-line refusal."""

from types import SimpleNamespace

import pytest
import torch

from gan_bench.ensemble import build_replicas
from gan_bench.errors import UserError
from gan_bench.memory import (
    _saved_bytes,
    available_bytes,
    check_ensemble,
    data_sizes,
    largest_ensemble,
    replica_bytes,
)
from gan_bench.models.dcgan import Discriminator, Generator
from gan_bench.models.mlp import MLP

Z = 16
smnist = (lambda: Generator(Z, 28, 3, 8, layout="isit23_smnist"),
          lambda: Discriminator(28, 3, 8, layout="isit23_smnist"))


def test_state_is_four_copies_of_the_parameters_and_one_more_of_g_with_ema():
    build_g, build_d = lambda: MLP(2, 2, width=8, depth=1), lambda: MLP(2, 1, width=4, depth=1)
    g, d = (2 * 8 + 8) + (8 * 2 + 2), (2 * 4 + 4) + (4 + 1)  # weights and biases
    assert replica_bytes(build_g, build_d, 2, 16)["state"] == 4 * 4 * (g + d)
    assert replica_bytes(build_g, build_d, 2, 16, ema=True)["state"] == 4 * (4 * (g + d) + g)


def test_activations_scale_with_the_batch_as_measured():
    small, large = replica_bytes(*smnist, Z, 32), replica_bytes(*smnist, Z, 64)
    assert large["activations"] == 2 * small["activations"] > 0
    assert large["total"] == large["state"] + large["activations"] and large["data"] == 0
    # The probe's estimate against the real count at the full batch: G's graph and two of D's.
    G, D = smnist[0](), smnist[1]()
    params = {p.untyped_storage().data_ptr() for m in (G, D) for p in m.parameters()}
    z = torch.randn(64, Z)
    real = _saved_bytes(lambda: G(z), params) + 2 * _saved_bytes(lambda: D(torch.rand(64, 3, 28, 28)), params)
    assert abs(large["activations"] - real) <= 0.02 * real


@pytest.mark.parametrize("impl", ["grouped", "vmap"])
def test_an_ensemble_keeps_about_k_times_one_replicas_activations(impl):
    K, batch = 4, 16
    per = replica_bytes(*smnist, Z, batch)["activations"]
    G, D = build_replicas(*smnist, list(range(K)), impl)
    params = {p.untyped_storage().data_ptr() for m in (G, D) for p in m.parameters()}
    z = torch.randn(K, batch, Z)
    real = _saved_bytes(lambda: G(z), params) + 2 * _saved_bytes(lambda: D(torch.rand(K, batch, 3, 28, 28)), params)
    # The ensemble's own input reshapes add a little; the estimate must not be far below.
    assert K * per * 0.9 <= real <= K * per * 1.5, (real, K * per)


def test_the_data_part_is_what_the_trainers_latent_pool_and_data_orders_hold():
    """Counted against the tensors themselves: at the ISIT'23 Stacked MNIST protocol a replica's
    pool of 100,000 latents is most of its memory, which the estimate once left out."""
    from gan_bench.latents import Latents
    from gan_bench.training.batches import Batches

    K, n = 3, 500
    gens = [torch.Generator().manual_seed(i) for i in range(K)]
    latents = Latents(gens, Z, torch.device("cpu"), pool=n)
    latents(4)  # the first draw makes the pass's order
    batches = Batches(SimpleNamespace(train=torch.zeros(n, 2), kind="toy"), 8, gens, torch.device("cpu"))
    batches.next()
    held = sum(t.numel() * t.element_size() for t in (latents.pool, latents.order, batches.perms))
    est = replica_bytes(*smnist, Z, 8, n_train=n, pool=n)
    assert held == K * est["data"] and est["total"] == est["state"] + est["activations"] + est["data"]
    assert replica_bytes(*smnist, Z, 8, n_train=n)["data"] == 8 * n  # fresh latents: the order alone


def test_data_sizes_come_from_the_config(tmp_path, cfg_factory):
    from conftest import make_cfg

    smnist_cfg = make_cfg(tmp_path, ["experiment=isit23_stacked_mnist"], fast=False)
    assert data_sizes(smnist_cfg) == {"n_train": 100_000, "pool": 100_000}
    assert data_sizes(cfg_factory("dataset.n_train=2000")) == {"n_train": 2000, "pool": 0}
    assert data_sizes(cfg_factory("dataset.n_train=2000", "train.latent_pool=300")) == {"n_train": 2000, "pool": 300}


def test_largest_ensemble():
    assert largest_ensemble(100, 1000) == 9  # 90% of 1000 bytes
    assert largest_ensemble(100, 1000, reserved=500) == 4
    assert largest_ensemble(100, 50) == 0
    assert largest_ensemble(100, None) is None  # unknown: no limit to enforce


def test_available_cpu_memory_is_a_positive_byte_count():
    free = available_bytes("cpu")
    assert free is None or free > 2 ** 20
    with open("/proc/meminfo") as f:
        total = int(next(s for s in f if s.startswith("MemTotal:")).split()[1]) * 1024
    assert free <= total


def test_check_refuses_with_the_largest_k(monkeypatch):
    need = replica_bytes(*smnist, Z, 64)["total"]
    monkeypatch.setattr("gan_bench.memory.available_bytes", lambda device: int(need * 10.5 / 0.9))
    assert check_ensemble(10, *smnist, Z, 64, "cpu") == 10
    with pytest.raises(UserError) as e:
        check_ensemble(11, *smnist, Z, 64, "cpu")
    msg = str(e.value)
    assert "\n" not in msg and "train.ensemble=11" in msg and "largest that fits is train.ensemble=10" in msg
    with pytest.raises(UserError, match="train.ensemble=10 needs"):  # the latent pool counts too
        check_ensemble(10, *smnist, Z, 64, "cpu", n_train=100_000, pool=100_000)
    monkeypatch.setattr("gan_bench.memory.available_bytes", lambda device: need // 2)
    with pytest.raises(UserError, match="not even one replica"):
        check_ensemble(1, *smnist, Z, 64, "cpu")


def test_building_leaves_the_global_stream_alone():
    torch.manual_seed(3)
    a = torch.rand(3)
    torch.manual_seed(3)
    replica_bytes(*smnist, Z, 8)
    assert torch.equal(torch.rand(3), a)
