"""The CUDA path, end to end: marked `gpu`, so they run only with `pytest -m gpu` on a machine with a
CUDA device (scripts/gpu_check.sh). GAN_BENCH_TEST_DEVICE=cpu runs the same tests on the CPU, with the
speed path forced on where the CPU has it, to check the tests themselves where no GPU is."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_cfg
from gan_bench.train import train

DEVICE = os.environ.get("GAN_BENCH_TEST_DEVICE", "cuda")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                                                  reason="needs a CUDA device")]
# On CUDA the speed path is on by default (auto); on the CPU only what it can run there is forced.
SPEED = [] if DEVICE == "cuda" else ["train.compile=true"]


def ring_cfg(run_dir, *extra):
    return make_cfg(run_dir, [f"train.device={DEVICE}", *SPEED, *extra])


def final(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False, map_location="cpu")


def test_ring_trains_with_the_speed_path(tmp_path):
    result = train(ring_cfg(tmp_path / "r", "train.steps=60", "train.log_every=20"))
    assert result["status"] == "completed" and result["step"] == 60
    assert all(torch.isfinite(v).all() for v in final(tmp_path / "r")["G"].values())


def test_penalty_with_compiled_d(tmp_path):
    # Penalties take a double backward, which compiled graphs refuse: they must run the eager D.
    for penalty in ("r1", "gp"):
        result = train(ring_cfg(tmp_path / penalty, f"penalty={penalty}", "loss=wgan", "train.steps=20",
                                "train.log_every=10"))
        assert result["status"] == "completed"


def test_r1r2_and_schedules_train_on_the_device(tmp_path):
    # Issue 22: R3GAN's penalty (double backward) with cosine lr / beta2 / weight schedules moving
    # fused Adam's hyperparameters in place on the device.
    result = train(ring_cfg(tmp_path / "r3", "loss=rsgan", "penalty=r1r2", "train.steps=20", "train.log_every=10",
                            "+penalty.schedule={kind:cosine,end:0.0025,steps:20}",
                            "+optim.schedule={kind:cosine,lr_end:5e-5,beta2_end:0.99,steps:20}"))
    assert result["status"] == "completed"


def test_dinov2_features_on_the_device_match_the_cpu(monkeypatch):
    # FD-DINOv2's network and its bicubic antialias resize on the device: the same features as on
    # the CPU up to rounding (a tiny ViT of the same kind; the real weights are not needed).
    from test_fd_dinov2 import TINY, official_layout

    from gan_bench.metrics import dinov2

    monkeypatch.setattr(dinov2, "ARCH", TINY)
    net = dinov2.build(official_layout(32, 2, 128, scale=0.2))
    x = torch.randint(0, 256, (4, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    cpu = net(dinov2.preprocess(x))
    dev = net.to(DEVICE)(dinov2.preprocess(x.to(DEVICE))).cpu()
    torch.testing.assert_close(dev, cpu, rtol=1e-3, atol=1e-3)


def test_ensemble_replicas_match_single_runs(tmp_path):
    # Not bit-identical on a GPU (bmm and mm differ in rounding), but the same trajectory over a few steps.
    common = ["train.steps=10", "train.log_every=5", "train.compile=false"]
    train(ring_cfg(tmp_path / "ens", "seed=3", "train.ensemble=3", *common))
    ens = final(tmp_path / "ens")["G"]
    for i in range(3):
        train(ring_cfg(tmp_path / f"s{i}", f"seed={3 + i}", *common))
        single = {k.removeprefix("net."): v for k, v in final(tmp_path / f"s{i}")["G"].items()}
        for layer in range(len([k for k in ens if k.startswith("weights.")])):
            w = single[f"{2 * layer}.weight"].t()
            torch.testing.assert_close(ens[f"weights.{layer}"][i], w, rtol=1e-4, atol=1e-5)


def test_dcgan_speed_path_on_a_folder(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(32):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    extra = [] if DEVICE == "cuda" else ["train.amp=true", "train.channels_last=true"]
    cfg = make_cfg(tmp_path / "run", ["dataset=folder", f"dataset.path={d}", "dataset.resolution=32",
                                      f"paths.data={tmp_path / 'data'}", "model=dcgan_small", "train.batch_size=8",
                                      "train.progress=false", f"train.device={DEVICE}", "train.steps=6",
                                      "train.log_every=3", "train.ema=0.9", "eval.metrics=[]",
                                      "eval.final_metrics=[]", *SPEED, *extra], fast=False)
    result = train(cfg)
    assert result["status"] == "completed" and result["step"] == 6
    state = final(tmp_path / "run")
    assert all(v.dtype == torch.float32 for k, v in state["G"].items() if k.endswith("weight"))
    assert (tmp_path / "run" / "samples" / "step0000006.png").exists()


@pytest.mark.parametrize("impl", ["grouped", "vmap"])
def test_conv_ensemble_matches_single_networks_with_the_speed_path(impl):
    # DCGAN replicas as one module on the device: fp32 replicas equal the single networks (TF32 off,
    # which cuDNN convolutions otherwise use), and the bf16 + channels_last path trains finite.
    from gan_bench.ensemble import build_replicas
    from gan_bench.models.dcgan import Discriminator, Generator

    build_g = lambda: Generator(16, 28, 3, 8, layout="isit23_smnist")
    build_d = lambda: Discriminator(28, 3, 8, layout="isit23_smnist")
    G, D = build_replicas(build_g, build_d, [0, 1, 2], impl)
    G, D = G.to(DEVICE), D.to(DEVICE)
    z = torch.randn(3, 8, 16, device=DEVICE)
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        t = D(G(z))
        for i in range(3):
            torch.manual_seed(i)
            g, d = build_g().to(DEVICE), build_d().to(DEVICE)
            torch.testing.assert_close(t[i], d(g(z[i])), rtol=1e-4, atol=1e-4)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    with torch.autocast(torch.device(DEVICE).type, dtype=torch.bfloat16):
        x = G(z)
        logits = D(x).float()
    assert x.dtype == torch.bfloat16 and logits.shape == (3, 8)
    logits.mean(-1).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in list(G.parameters()) + list(D.parameters()))
