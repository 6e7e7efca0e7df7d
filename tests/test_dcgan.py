"""DCGAN networks: shapes at every resolution, the DCGAN init, the reference parameter counts, the
model configs, and two training steps on each image data set (tiny data in the real formats)."""

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from test_images import compose_cfg, load, write_celeba, write_cifar, write_folder, write_lsun, write_mnist
from torch import nn

from gan_bench.data.images import normalize, to_uint8
from gan_bench.errors import UserError
from gan_bench.models.dcgan import PLANS, Discriminator, Generator

RESOLUTIONS = [28, 32, 64, 112, 128]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These networks are tiny: a second intra-op thread only adds synchronisation, and on a busy
    # 2-core machine OpenMP spin-waiting makes each step 100x slower.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def convs(net, cls=(nn.Conv2d, nn.ConvTranspose2d)):
    return [m for m in net.modules() if isinstance(m, cls)]


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("res", RESOLUTIONS)
def test_shapes_at_every_resolution(res, channels, batch_norm):
    G = Generator(16, res, channels, ngf=4, batch_norm=batch_norm)
    D = Discriminator(res, channels, ndf=4, batch_norm=batch_norm)
    x = G(torch.randn(3, 16))
    assert x.shape == (3, channels, res, res) and x.abs().max() <= 1   # tanh output
    assert D(x).shape == (3,)
    assert any(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == batch_norm
    assert all((m.bias is None) == batch_norm for m in convs(G) + convs(D))


def test_layer_plans():
    assert set(PLANS) == set(RESOLUTIONS)
    # α-GAN LSUN: 7x7 first generator layer and last discriminator layer.
    G, D = Generator(100, 112, 3, 8), Discriminator(112, 3, 8)
    assert convs(G)[0].kernel_size == (7, 7) and convs(D)[-1].kernel_size == (7, 7)
    # Reference DCGAN at 64px: 4 stride-2 layers, widths 512-256-128-64 / 64-128-256-512.
    G, D = Generator(100, 64, 3, 64), Discriminator(64, 3, 64)
    assert [c.out_channels for c in convs(G)] == [512, 256, 128, 64, 3]
    assert [c.out_channels for c in convs(D)] == [64, 128, 256, 512, 1]
    assert sum(p.numel() for p in G.parameters()) == 3576704
    assert sum(p.numel() for p in D.parameters()) == 2765568
    # 28 and 32 have the same depth and widths (the small Stacked MNIST net at either size).
    for res in (28, 32):
        assert [c.out_channels for c in convs(Generator(100, res, 3, 8))] == [32, 16, 8, 3]
        assert [c.out_channels for c in convs(Discriminator(res, 3, 8))] == [8, 16, 32, 1]


def test_isit23_smnist_layout_is_the_authors_network():
    # Their experiments/stacked_mnist.py: 3x3 kernels, G 1 -> 3 -> 7 -> 14 -> 28, D 28 -> 14 -> 7 -> 3 -> 1.
    G, D = Generator(100, 28, 3, 8, layout="isit23_smnist"), Discriminator(28, 3, 8, layout="isit23_smnist")
    assert all(c.kernel_size == (3, 3) and c.stride == (2, 2) and c.bias is None for c in convs(G) + convs(D))
    sizes, x = [], torch.randn(2, 100, 1, 1)
    for m in G.net:
        x = m(x)
        if isinstance(m, nn.ConvTranspose2d):
            sizes.append(x.shape[-1])
    assert sizes == [3, 7, 14, 28] and [c.out_channels for c in convs(G)] == [32, 16, 8, 3]
    sizes = []
    for m in D.net:
        x = m(x)
        if isinstance(m, nn.Conv2d):
            sizes.append(x.shape[-1])
    assert sizes == [14, 7, 3, 1] and [c.out_channels for c in convs(D)] == [8, 16, 32, 1]
    # Weights by hand: G 100*32*9 + 32*16*9 + 16*8*9 + 8*3*9 + BN (32+16+8)*2; D 3*8*9 + 8*16*9 +
    # 16*32*9 + 32*9 + BN (16+32)*2 (none after the first conv).
    assert sum(p.numel() for p in G.parameters()) == 28800 + 4608 + 1152 + 216 + 112
    assert sum(p.numel() for p in D.parameters()) == 216 + 1152 + 4608 + 288 + 96
    with pytest.raises(UserError, match="dataset.resolution=28"):
        Generator(100, 32, 3, 8, layout="isit23_smnist")
    with pytest.raises(UserError, match="choose one of dcgan, isit23_smnist"):
        Discriminator(28, 3, 8, layout="nope")


def test_dcgan_init_statistics():
    torch.manual_seed(0)
    G, D = Generator(100, 64, 3, 64), Discriminator(64, 3, 64)
    w = torch.cat([c.weight.flatten() for c in convs(G) + convs(D)])
    assert abs(w.mean()) < 1e-4 and abs(w.std() - 0.02) < 2e-4
    bn = [m for m in list(G.modules()) + list(D.modules()) if isinstance(m, nn.BatchNorm2d)]
    scale = torch.cat([m.weight.flatten() for m in bn])
    assert abs(scale.mean() - 1) < 2e-3 and abs(scale.std() - 0.02) < 2e-3
    assert all(torch.all(m.bias == 0) for m in bn)
    no_bn = Generator(100, 64, 3, 16, batch_norm=False)
    assert all(torch.all(c.bias == 0) for c in convs(no_bn))


def test_one_optimizer_step_changes_both_networks():
    torch.manual_seed(0)
    G, D = Generator(32, 32, 3, 8), Discriminator(32, 3, 8)
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (G, D))
    real = torch.rand(8, 3, 32, 32) * 2 - 1
    before = [p.detach().clone() for p in list(G.parameters()) + list(D.parameters())]
    d_loss = F.softplus(-D(real)).mean() + F.softplus(D(G(torch.randn(8, 32)).detach())).mean()
    opt_d.zero_grad()
    d_loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters())
    opt_d.step()
    g_loss = F.softplus(-D(G(torch.randn(8, 32)))).mean()
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    after = list(G.parameters()) + list(D.parameters())
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    assert all(not torch.equal(a, b) for a, b in zip(after, before))


def test_bad_sizes_are_clear_errors():
    with pytest.raises(UserError, match="28, 32, 64, 112, 128"):
        Generator(100, 48, 3, 8)
    with pytest.raises(UserError, match="ndf"):
        Discriminator(64, 3, 0)
    with pytest.raises(ValueError, match=r"\[B, 3, 32, 32\]"):
        Discriminator(32, 3, 8)(torch.zeros(2, 3, 64, 64))


@pytest.mark.parametrize("model, g_widths", [("dcgan", [256, 128, 64, 3]), ("dcgan_small", [32, 16, 8, 3])])
def test_model_configs_follow_the_dataset(tmp_path, model, g_widths):
    cfg = compose_cfg(tmp_path, "dataset=cifar10", f"model={model}")
    G, D = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    assert cfg.model.latent_dim == 100 and G.latent_dim == 100
    assert G.resolution == D.resolution == 32 and G.channels == D.channels == 3
    assert [c.out_channels for c in convs(G)] == g_widths
    assert G(torch.randn(2, 100)).shape == (2, 3, 32, 32)


SOURCES = {
    "cifar10": (lambda root: write_cifar(root / "cifar10"), []),
    "celeba": (lambda root: write_celeba(root / "celeba"), []),
    "lsun_classroom": (lambda root: write_lsun(root / "lsun" / "classroom_train_lmdb"), []),
    "stacked_mnist": (write_mnist, ["dataset.n=64"]),
    "folder": (lambda root: write_folder(root / "pics"), ["dataset.path={root}/pics"]),
}


@pytest.mark.parametrize("name", list(SOURCES))
def test_two_training_steps_on_each_dataset(tmp_path, name):
    write, extra = SOURCES[name]
    write(tmp_path)
    overrides = [f"dataset={name}", "model=dcgan_small", *(o.format(root=tmp_path) for o in extra)]
    data = load(tmp_path, *overrides)
    cfg = compose_cfg(tmp_path, *overrides)
    torch.manual_seed(0)
    G, D = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (G, D))
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        real = normalize(data.train[torch.randint(len(data.train), (4,), generator=g)])
        fake = G(torch.randn(4, cfg.model.latent_dim, generator=g))
        d_loss = (F.binary_cross_entropy_with_logits(D(real), torch.ones(4))
                  + F.binary_cross_entropy_with_logits(D(fake.detach()), torch.zeros(4)))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(D(fake), torch.ones(4))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    samples = to_uint8(fake)
    assert samples.dtype == torch.uint8 and samples.shape[1:] == data.train.shape[1:]
