"""LSGAN's two generators: Mao et al.'s (ns, the default) and the saturating one that SankarLab's
code (AlphaGan-Papers-Results) trains with --ls_gan and without --non_saturating."""

import pytest
import torch

from gan_bench.errors import UserError
from gan_bench.losses import make_loss
from gan_bench.train import train

REAL, FAKE = [0.3, -1.2, 2.0], [-0.5, 1.1, 0.4, 3.0]


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs)


def test_lsgan_generators_closed_form():
    r, f = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64, requires_grad=True)
    d = 0.5 * mean((t - 1) ** 2 for t in REAL) + 0.5 * mean(t ** 2 for t in FAKE)
    # Their LSLoss(output, labels) = 1/2 mean (output - labels)^2; G: -LSLoss(D(G(z)), 0) = -1/2 mean t_f^2.
    for gen, value, grad in (("ns", 0.5 * mean((t - 1) ** 2 for t in FAKE), [(t - 1) / len(FAKE) for t in FAKE]),
                             ("saturating", -0.5 * mean(t ** 2 for t in FAKE), [-t / len(FAKE) for t in FAKE])):
        loss = make_loss("lsgan", generator=gen)
        assert float(loss.d_loss(r, f.detach())) == pytest.approx(d, rel=1e-12)
        g = loss.g_loss(f)
        assert float(g.detach()) == pytest.approx(value, rel=1e-12)
        assert torch.autograd.grad(g, f)[0].tolist() == pytest.approx(grad, rel=1e-12)
    assert make_loss("lsgan").generator == "ns"  # the default stays Mao et al.'s


def test_saturating_generator_is_minus_ds_fake_term():
    # The minimax pairing: G's loss is exactly the negative of the fake half of D's loss.
    loss = make_loss("lsgan", generator="saturating")
    f = torch.linspace(-3, 3, 7, dtype=torch.float64)
    r = torch.ones(5, dtype=torch.float64)  # real term zero
    torch.testing.assert_close(loss.g_loss(f), -loss.d_loss(r, f), rtol=1e-15, atol=0)


def test_bad_generator():
    with pytest.raises(UserError, match="loss.generator must be one of saturating, ns"):
        make_loss("lsgan", generator="minimax")


def test_saturating_lsgan_trains_two_steps(cfg_factory):
    result = train(cfg_factory("loss=lsgan", "loss.generator=saturating", "train.steps=2", "train.log_every=1"))
    assert result["status"] == "completed" and result["step"] == 2, result
