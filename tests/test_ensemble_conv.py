"""DCGAN seed ensembles (gan_bench/ensemble_conv.py): replica i of a K-ensemble is the plain
network built with seed+i, in the forward, the gradients, 20 Adam steps, the penalties, the EMA and
the CPU's bf16 / channels_last path, for both implementations (grouped convolutions, torch.func)."""

import copy

import pytest
import torch
import torch.nn.functional as F

from gan_bench.ensemble import build_replicas
from gan_bench.ensemble_conv import GroupedConv, VmapConv
from gan_bench.errors import UserError
from gan_bench.losses.penalties import GradientPenalty, R1Penalty
from gan_bench.models.dcgan import Discriminator, Generator

SEED, K, B, Z = 7, 3, 4, 8
IMPLS = ["grouped", "vmap"]
# Every resolution in PLANS on the generic layout, and the ISIT'23 Stacked MNIST layout.
LAYOUTS = [(28, "dcgan"), (32, "dcgan"), (64, "dcgan"), (112, "dcgan"), (128, "dcgan"), (28, "isit23_smnist")]


# Tiny convolutions: a second OpenMP thread only adds spin-waiting on a shared 2-core machine.
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def makers(res, layout, batch_norm=True, width=4, channels=3):
    return (lambda: Generator(Z, res, channels, width, batch_norm, layout),
            lambda: Discriminator(res, channels, width, batch_norm, layout))


def ensemble_and_singles(impl, res, layout, batch_norm=True, k=K):
    build_g, build_d = makers(res, layout, batch_norm)
    G, D = build_replicas(build_g, build_d, [SEED + i for i in range(k)], impl)
    singles = []
    for i in range(k):  # what a single run with seed+i builds: seed, then G, then D
        torch.manual_seed(SEED + i)
        singles.append((build_g(), build_d()))
    return G, D, singles


def assert_replica_equals(ens, i, plain, rtol=1e-5, what=""):
    """Replica i's state dict is the plain network's: same keys, shapes and dtypes, and values
    within rtol of each entry or, for entries near zero, of the tensor's largest entry (batched
    and single kernels round differently)."""
    got, want = ens.replica_state_dict(i), plain.state_dict()
    assert got.keys() == want.keys()
    for k in want:
        assert got[k].shape == want[k].shape and got[k].dtype == want[k].dtype, k
        scale = float(want[k].abs().max()) if want[k].is_floating_point() else 0.0
        torch.testing.assert_close(got[k], want[k], rtol=rtol, atol=rtol * scale, msg=f"{what} replica {i} {k}")


def replica_grads(ens, i):
    return {k: torch.zeros(()) if p.grad is None else p.grad.unflatten(0, (ens.K, -1))[i]
            for k, p in ens.named_parameters()}


def assert_grads_equal(ens, i, plain, rtol=1e-4):
    """Replica i's gradients vs the plain network's. Batched and single kernels sum in other
    orders, so an entry near zero may differ by the rounding of its tensor's largest entries:
    the absolute tolerance scales with the tensor."""
    got = replica_grads(ens, i)
    for k, p in plain.named_parameters():
        if p.grad is None:  # e.g. the last bias, under an input-gradient penalty
            assert got[k].abs().max() == 0 or ens.get_parameter(k).grad is None, k
            continue
        torch.testing.assert_close(got[k], p.grad, rtol=rtol, atol=rtol * float(p.grad.abs().max()),
                                   msg=f"grad replica {i} {k}")


@pytest.mark.parametrize("impl", IMPLS)
def test_built_replicas_are_the_seeded_networks(impl):
    G, D, singles = ensemble_and_singles(impl, 32, "dcgan")
    assert isinstance(G, GroupedConv if impl == "grouped" else VmapConv) and G.K == D.K == K
    for i, (g, d) in enumerate(singles):
        assert_replica_equals(G, i, g, rtol=0)
        assert_replica_equals(D, i, d, rtol=0)
    # The ensemble's own state dict has the plain keys, each tensor K blocks along dim 0.
    assert G.state_dict().keys() == singles[0][0].state_dict().keys()


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("res,layout", LAYOUTS)
@pytest.mark.parametrize("impl", IMPLS)
def test_forward_matches_single_networks(impl, res, layout, batch_norm):
    if layout == "isit23_smnist" and not batch_norm:
        pytest.skip("the authors' network always has BN")
    G, D, singles = ensemble_and_singles(impl, res, layout, batch_norm)
    z = torch.randn(K, B, Z)
    for mode in ("train", "eval"):  # train: batch statistics (and the running update); eval: running ones
        for m in [G, D] + [n for pair in singles for n in pair]:
            m.train(mode == "train")
        x = G(z)
        t = D(x)
        assert x.shape == (K, B, 3, res, res) and t.shape == (K, B)
        for i, (g, d) in enumerate(singles):
            xi = g(z[i])
            torch.testing.assert_close(x[i], xi, rtol=1e-5, atol=1e-6, msg=f"G {mode} replica {i}")
            torch.testing.assert_close(t[i], d(xi), rtol=1e-5, atol=1e-5, msg=f"D {mode} replica {i}")
            assert_replica_equals(G, i, g, what=mode)  # running stats updated alike (train), untouched (eval)
            assert_replica_equals(D, i, d, what=mode)


@pytest.mark.parametrize("res,layout", [(28, "isit23_smnist"), (64, "dcgan")])
@pytest.mark.parametrize("impl", IMPLS)
def test_gradients_match_single_networks(impl, res, layout):
    G, D, singles = ensemble_and_singles(impl, res, layout)
    z, real = torch.randn(K, B, Z), torch.rand(K, B, 3, res, res) * 2 - 1
    fake = G(z)
    # Any per-replica loss, summed over replicas as the trainer does.
    (F.softplus(-D(real)).mean(-1) + F.softplus(D(fake)).mean(-1) + fake.square().mean((1, 2, 3, 4))).sum().backward()
    for i, (g, d) in enumerate(singles):
        fi = g(z[i])
        (F.softplus(-d(real[i])).mean() + F.softplus(d(fi)).mean() + fi.square().mean()).backward()
        assert_grads_equal(G, i, g)
        assert_grads_equal(D, i, d)


def gan_steps(G, D, data_gens, z_gens, steps, res, batch, dtype, penalty=None, penalty_gens=None):
    """`steps` deterministic non-saturating GAN steps (D step, then G step on the same fakes) with
    the trainer's fused Adam; data, latents and penalty draws per replica from its own generators."""
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)
    for _ in range(steps):
        real = torch.stack([torch.rand(batch, 3, res, res, generator=g, dtype=dtype) * 2 - 1 for g in data_gens])
        z = torch.stack([torch.randn(batch, Z, generator=g, dtype=dtype) for g in z_gens])
        fake = G(z)
        d_loss = (F.softplus(-D(real)).mean(-1) + F.softplus(D(fake.detach())).mean(-1)).sum()
        if penalty is not None:
            d_loss = d_loss + penalty(D, real, fake.detach(), penalty_gens, batch_dims=2)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        D.requires_grad_(False)
        g_loss = F.softplus(-D(fake)).mean(-1).sum()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)


# fp32: the ISIT'23 Stacked MNIST network at its own widths (8/16/32). The generic layouts run in
# float64: in fp32 Adam's first steps move each weight by about lr * sign(grad), so a weight whose
# gradient is within rounding of zero steps lr one way or the other, and at 32-64 px a single run
# and the same run with its weights perturbed by 1e-7 already differ by 1e-3 after one step: the
# optimizer's sensitivity, not the ensemble's. float64 rounding (1e-16) is far below Adam's eps.
STEP_CASES = [(28, "isit23_smnist", 8, 16, torch.float32), (32, "dcgan", 4, 4, torch.float64),
              (64, "dcgan", 4, 4, torch.float64)]


@pytest.mark.parametrize("res,layout,width,batch,dtype", STEP_CASES, ids=lambda v: str(v).removeprefix("torch."))
@pytest.mark.parametrize("impl", IMPLS)
def test_twenty_adam_steps_match_single_runs(impl, res, layout, width, batch, dtype):
    build_g, build_d = makers(res, layout, width=width)
    G, D = build_replicas(build_g, build_d, [SEED + i for i in range(K)], impl)
    G, D = G.to(dtype), D.to(dtype)
    gens = lambda stream: [torch.Generator().manual_seed(1000 * stream + SEED + i) for i in range(K)]
    gan_steps(G, D, gens(1), gens(2), 20, res, batch, dtype)
    data, latents = gens(1), gens(2)
    for i in range(K):
        torch.manual_seed(SEED + i)  # the single run with seed+i
        g, d = build_g().to(dtype), build_d().to(dtype)
        gan_steps(_Wrap(g), _Wrap(d), data[i:i + 1], latents[i:i + 1], 20, res, batch, dtype)
        for ens, net in ((G, g), (D, d)):  # every parameter and BN buffer, num_batches_tracked included
            assert_replica_equals(ens, i, net, rtol=1e-4, what="after 20 steps")
    assert int(G.state_dict()["net.1.num_batches_tracked"]) == 20


@pytest.mark.parametrize("penalty", [GradientPenalty(), R1Penalty()], ids=["gp", "r1"])
@pytest.mark.parametrize("impl", IMPLS)
def test_twenty_steps_with_a_penalty_match_single_runs(impl, penalty):
    # float64 (see STEP_CASES): in fp32 the gp trajectory of a single run is itself that sensitive.
    build_g, build_d = makers(28, "isit23_smnist")
    G, D = build_replicas(build_g, build_d, [SEED + i for i in range(K)], impl)
    G, D = G.double(), D.double()
    gens = lambda stream: [torch.Generator().manual_seed(1000 * stream + SEED + i) for i in range(K)]
    gan_steps(G, D, gens(1), gens(2), 20, 28, B, torch.float64, penalty, gens(3))
    data, latents, draws = gens(1), gens(2), gens(3)
    for i in range(K):
        torch.manual_seed(SEED + i)
        g, d = build_g().double(), build_d().double()
        gan_steps(_Wrap(g), _Wrap(d), data[i:i + 1], latents[i:i + 1], 20, 28, B, torch.float64, penalty,
                  draws[i:i + 1])
        assert_replica_equals(G, i, g, rtol=1e-4, what="G")
        assert_replica_equals(D, i, d, rtol=1e-4, what="D")


class _Wrap(torch.nn.Module):
    """A plain network with the ensemble interface, K = 1."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x[0]).unsqueeze(0)


@pytest.mark.parametrize("penalty", [GradientPenalty(), R1Penalty()], ids=["gp", "r1"])
@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("impl", IMPLS)
def test_penalties_per_replica_equal_single_networks(impl, batch_norm, penalty):
    res = 32
    _, D, singles = ensemble_and_singles(impl, res, "dcgan", batch_norm)
    real, fake = torch.rand(K, B, 3, res, res) * 2 - 1, torch.rand(K, B, 3, res, res) * 2 - 1
    gens = lambda: [torch.Generator().manual_seed(SEED + i) for i in range(K)]
    total = penalty(D, real, fake, gens(), batch_dims=2)
    total.backward()
    values = []
    for i, (_, d) in enumerate(singles):
        single = penalty(_Wrap(d), real[i:i + 1], fake[i:i + 1], gens()[i:i + 1], batch_dims=2)
        single.backward()
        values.append(single.detach())
        assert_grads_equal(D, i, d)  # replica i's penalty moves replica i's weights, as a single run's
    torch.testing.assert_close(total.detach(), torch.stack(values).sum(), rtol=1e-5, atol=1e-6)
    # Each replica's value alone: with the other replicas' inputs constant the penalty of the
    # ensemble changes by replica i's change only.
    for i in range(K):
        moved = real.clone()
        moved[i] = torch.rand(B, 3, res, res) * 2 - 1
        delta = penalty(D, moved, fake, gens(), batch_dims=2) - total.detach()
        single = penalty(_Wrap(singles[i][1]), moved[i:i + 1], fake[i:i + 1], gens()[i:i + 1], batch_dims=2)
        torch.testing.assert_close(delta.detach(), single.detach() - values[i], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_ema_lerp_per_replica(impl):
    # The trainer's EMA: a deepcopy of G, lerped towards G's parameters after every G step.
    G, _, singles = ensemble_and_singles(impl, 28, "isit23_smnist")
    G_ema, ema = copy.deepcopy(G).requires_grad_(False), [copy.deepcopy(g).requires_grad_(False) for g, _ in singles]
    with torch.no_grad():
        for p in G.parameters():  # G moved on; the EMA lags behind
            p.add_(torch.randn_like(p))
        torch._foreach_lerp_(list(G_ema.parameters()), list(G.parameters()), 0.1)
        for i, ((g, _), e) in enumerate(zip(singles, ema)):
            g.load_state_dict(G.replica_state_dict(i))
            torch._foreach_lerp_(list(e.parameters()), list(g.parameters()), 0.1)
    z = torch.randn(K, B, Z)
    out = G_ema.eval()(z)
    for i, e in enumerate(ema):
        assert_replica_equals(G_ema, i, e, rtol=1e-6)
        torch.testing.assert_close(out[i], e.eval()(z[i]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
def test_channels_last_and_bf16_autocast_on_cpu(impl):
    # The CUDA speed path's memory format and autocast, on the CPU: same outputs as the single
    # networks under the same path (to bf16 rounding), fp32 channels_last weights, a backward.
    G, D, singles = ensemble_and_singles(impl, 32, "dcgan")
    fmt = torch.channels_last
    G, D = G.to(memory_format=fmt), D.to(memory_format=fmt)
    singles = [(g.to(memory_format=fmt), d.to(memory_format=fmt)) for g, d in singles]
    conv = G.state_dict()["net.3.weight"]
    assert conv.ndim == 4 and conv.is_contiguous(memory_format=fmt)
    z = torch.randn(K, B, Z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = G(z)
        t = D(x).float()
        refs = [(g(z[i]), d(g(z[i])).float()) for i, (g, d) in enumerate(singles)]
    assert x.dtype == torch.bfloat16 and t.shape == (K, B)
    for i, (xi, ti) in enumerate(refs):
        torch.testing.assert_close(x[i].float(), xi.float(), rtol=0.05, atol=0.02)
        torch.testing.assert_close(t[i], ti, rtol=0.05, atol=0.05)
    F.softplus(-t).mean(-1).sum().backward()
    assert all(p.dtype == torch.float32 and p.grad is not None and torch.isfinite(p.grad).all()
               for p in list(G.parameters()) + list(D.parameters()))


def test_implementations_share_one_state_dict():
    G1, D1, singles = ensemble_and_singles("grouped", 28, "isit23_smnist")
    z = torch.randn(K, B, Z)
    G1(z)  # move the running stats off their init
    build_g, build_d = makers(28, "isit23_smnist")
    G2, D2 = build_replicas(build_g, build_d, [0] * K, "vmap")
    G2.load_state_dict(G1.state_dict())
    D2.load_state_dict(D1.state_dict())
    G1.eval(), G2.eval(), D1.eval(), D2.eval()
    torch.testing.assert_close(D2(G2(z)), D1(G1(z)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
def test_load_replica_is_the_inverse(impl):
    G, _, singles = ensemble_and_singles(impl, 32, "dcgan")
    other = Generator(Z, 32, 3, 4)
    with torch.no_grad():  # parameters and running stats unlike any replica's
        for t in list(other.parameters()) + [b for b in other.buffers() if b.is_floating_point()]:
            t.add_(torch.rand_like(t))
    G.load_replica(1, other.state_dict())
    assert_replica_equals(G, 1, other, rtol=0)
    for i in (0, 2):  # the others untouched
        assert_replica_equals(G, i, singles[i][0], rtol=0)
    with pytest.raises(IndexError):
        G.replica_state_dict(K)
    with pytest.raises(KeyError):
        G.load_replica(0, {"net.0.weight": other.state_dict()["net.0.weight"]})
    # BatchNorm's forward counter is one scalar for all replicas: a network that counted otherwise
    # is refused, when loaded and when built.
    other(torch.randn(B, Z))
    with pytest.raises(ValueError, match="num_batches_tracked"):
        G.load_replica(1, other.state_dict())
    with pytest.raises(ValueError, match="num_batches_tracked"):
        type(G)([other, Generator(Z, 32, 3, 4)])


def test_build_replicas_choices():
    build_g, build_d = makers(32, "dcgan")
    with pytest.raises(UserError, match="model=mlp"):  # impl=None: what the trainer supports today
        build_replicas(build_g, build_d, [0, 1])
    with pytest.raises(UserError, match="ensemble_impl"):
        build_replicas(build_g, build_d, [0, 1], "bogus")
    G, D = build_replicas(build_g, build_d, [0], "vmap")  # one seed: the plain network, wrapped
    assert type(G).__name__ == "Single" and G.replica_state_dict(0).keys() == build_g().state_dict().keys()
    with pytest.raises(ValueError, match="expects"):
        build_replicas(build_g, build_d, [0, 1], "grouped")[1](torch.randn(2, B, 3, 28, 28))


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
def test_compiled_ensemble_matches_eager(impl):
    # The CUDA speed path compiles G and D (train.compile); on the CPU, Inductor's C++ backend.
    G, D, _ = ensemble_and_singles(impl, 28, "isit23_smnist")
    z = torch.randn(K, B, Z)
    G.eval(), D.eval()  # running statistics fixed, so both calls see the same network
    eager = D(G(z))
    compiled = torch.compile(D)(torch.compile(G)(z))
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
    compiled.sum().backward()
    assert all(p.grad is not None for p in G.parameters())
