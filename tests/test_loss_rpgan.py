"""loss=rsgan (variant sgan) is R3GAN's RpGAN (Huang, Gokaslan, Kuleshov, Tompkin, NeurIPS 2024; code
brownvc/R3GAN), whose loss is re-derived here with `math` from R3GAN/Trainer.py, class
AdversarialTraining:

- AccumulateDiscriminatorGradients: softplus(-(RealLogits - FakeLogits)), mean over the batch (its
  (Gamma/2)(R1 + R2) term is a penalty, not part of the loss);
- AccumulateGeneratorGradients: softplus(-(FakeLogits - RealLogits)), mean over the batch, with a real
  batch through D in the G step (training/training_loop.py draws it, G_img, apart from the D step's
  D_img) and D not trained there.

Real sample i is paired with fake sample i (no all-pairs mean).
"""

import math

import pytest
import torch

from gan_bench.losses import make_loss
from gan_bench.train import train

REAL, FAKE = [0.3, -1.2, 2.0, 4.5, -0.7], [-0.5, 1.1, 0.4, -3.0, 2.2]


def softplus(x):
    return math.log1p(math.exp(x)) if x < 30 else x + math.log1p(math.exp(-x))


def sig(x):
    return 1 / (1 + math.exp(-x))


def r3gan_d(real, fake):
    return sum(softplus(-(r - f)) for r, f in zip(real, fake)) / len(real)


def r3gan_g(fake, real):
    return sum(softplus(-(f - r)) for f, r in zip(fake, real)) / len(fake)


def t64(xs, grad=False):
    return torch.tensor(xs, dtype=torch.float64, requires_grad=grad)


def test_rsgan_is_rpgan_values_and_gradients():
    loss = make_loss("rsgan")
    assert loss.variant == "sgan" and loss.needs_real_for_g
    n = len(REAL)
    r, f = t64(REAL, grad=True), t64(FAKE, grad=True)
    d = loss.d_loss(r, f)
    assert float(d.detach()) == pytest.approx(r3gan_d(REAL, FAKE), rel=1e-14)
    gr, gf = torch.autograd.grad(d, (r, f))
    assert gr.tolist() == pytest.approx([-sig(-(a - b)) / n for a, b in zip(REAL, FAKE)], rel=1e-13)
    assert gf.tolist() == pytest.approx([sig(-(a - b)) / n for a, b in zip(REAL, FAKE)], rel=1e-13)
    f = t64(FAKE, grad=True)
    g = loss.g_loss(f, t64(REAL))
    assert float(g.detach()) == pytest.approx(r3gan_g(FAKE, REAL), rel=1e-14)
    (gg,) = torch.autograd.grad(g, f)
    assert gg.tolist() == pytest.approx([-sig(-(b - a)) / n for a, b in zip(REAL, FAKE)], rel=1e-13)


def test_pairs_are_index_wise():
    # Pairing real i with fake i: permuting one batch changes the loss, permuting both does not.
    loss, perm = make_loss("rsgan"), [2, 0, 4, 1, 3]
    r, f = t64(REAL), t64(FAKE)
    assert float(loss.d_loss(r[perm], f)) == pytest.approx(r3gan_d([REAL[i] for i in perm], FAKE), rel=1e-14)
    assert float(loss.d_loss(r[perm], f)) != pytest.approx(float(loss.d_loss(r, f)), rel=1e-6)
    assert float(loss.d_loss(r[perm], f[perm])) == pytest.approx(float(loss.d_loss(r, f)), rel=1e-14)
    with pytest.raises(ValueError, match="pairs real and fake samples one to one"):
        loss.d_loss(r, f[:3])
    with pytest.raises(ValueError, match="needs real_logits"):
        loss.g_loss(f)


def test_extreme_logits_and_replicas():
    loss = make_loss("rsgan")
    r, f = torch.tensor([15.0, -15.0, 0.0]), torch.tensor([-15.0, 15.0, 0.0])
    assert float(loss.d_loss(r, f)) == pytest.approx((softplus(-30) + softplus(30) + math.log(2)) / 3, rel=1e-6)
    real, fake = torch.randn(3, 8, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
    d, g = loss.d_loss(real, fake), loss.g_loss(fake, real)
    assert d.shape == g.shape == (3,)
    for k in range(3):
        assert float(d[k]) == pytest.approx(r3gan_d(real[k].tolist(), fake[k].tolist()), rel=1e-13)
        assert float(g[k]) == pytest.approx(r3gan_g(fake[k].tolist(), real[k].tolist()), rel=1e-13)


class SpyRpGAN:
    """rsgan recording what the trainer hands its generator loss (a `_target_` for cfg.loss)."""
    seen = []

    def __init__(self):
        self.inner = make_loss("rsgan")
        self.needs_real_for_g, self.logit_scale = True, None

    def at_step(self, step, total):
        return self

    def d_loss(self, real_logits, fake_logits):
        return self.inner.d_loss(real_logits, fake_logits)

    def g_loss(self, fake_logits, real_logits=None):
        SpyRpGAN.seen.append((fake_logits.shape, None if real_logits is None else real_logits.shape,
                              fake_logits.requires_grad, None if real_logits is None else real_logits.requires_grad))
        return self.inner.g_loss(fake_logits, real_logits)


def test_the_generator_step_gets_d_on_a_real_batch(cfg_factory):
    # As in R3GAN's G phase: D's logits on real data, same shape as the fakes', constants for G.
    cfg = cfg_factory("train.steps=2", "train.log_every=1")
    cfg.loss = {"_target_": "test_loss_rpgan.SpyRpGAN"}
    SpyRpGAN.seen.clear()
    assert train(cfg)["status"] == "completed"
    assert len(SpyRpGAN.seen) == 2
    for fake_shape, real_shape, fake_grad, real_grad in SpyRpGAN.seen:
        assert real_shape == fake_shape and len(fake_shape) == 2  # [K, B]
        assert fake_grad and not real_grad
