"""`gan-bench bench ring`: the trainer against a plain PyTorch loop of the same networks, batch and
objective, in one process, as one JSON line. Ratios, not absolute times, are the claim: both sides
share the machine's noise. Each side runs `--repeats` times, alternating; the best time counts."""

import argparse
import json
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose, initialize_config_dir

    from gan_bench.config import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


def plain_loop(cfg, data: torch.Tensor, steps: int, device: str = "cpu", warmup: int = 0) -> float:
    """The baseline a researcher would write: the config's G and D, Adam, uniformly drawn batches,
    non-saturating BCE, fp32, nothing else. `data` is the training set in model space. Seconds for
    `steps` steps after `warmup` untimed ones (first-call allocations, cudnn autotuning)."""
    from hydra.utils import instantiate

    torch.manual_seed(cfg.seed)
    G = instantiate(cfg.model.generator).to(device)
    D = instantiate(cfg.model.discriminator).to(device)
    data = data.to(device)
    betas = tuple(cfg.optim.betas)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.optim.lr_g, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.optim.lr_d, betas=betas)
    b, zdim = cfg.train.batch_size, cfg.model.latent_dim
    ones, zeros = torch.ones(b, device=device), torch.zeros(b, device=device)
    t0 = None
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        x = data[torch.randint(len(data), (b,), device=device)]
        fake = G(torch.randn(b, zdim, device=device))
        d_loss = F.binary_cross_entropy_with_logits(D(x), ones) + \
            F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(D(fake), ones)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    _sync(device)
    return time.perf_counter() - t0


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def trainer_run(overrides: list[str], steps: int, steady: bool = False):
    """The trainer's wall seconds (the loop with its logging, evals and checkpoints; not start-up),
    and with steady=True also its steady-state steps/s: the median of the rates it logged at the
    log ticks after the first (which holds warm-up, and on CUDA torch.compile)."""
    from gan_bench.train import train

    with tempfile.TemporaryDirectory() as d:
        cfg = compose(overrides + [f"train.steps={steps}", "train.progress=false", f"paths.run_dir={d}"])
        wall = train(cfg)["wall_seconds"]
        return (wall, _steady_rate(d)) if steady else wall


def _steady_rate(run_dir) -> float:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(f"{run_dir}/tb", size_guidance={"scalars": 0})
    acc.Reload()
    ticks = [e.value for e in acc.Scalars("speed/steps_per_s")]
    return statistics.median(ticks[1:] or ticks)


def bench_ring(args) -> dict:
    overrides = ["dataset=ring", "model=mlp", "loss=bce", "loss.generator=ns", "train.device=cpu"] + args.override
    from hydra.utils import instantiate

    cfg = compose(overrides + ["paths.run_dir=/tmp/unused"])
    plain, ours = [], []
    for _ in range(args.repeats):
        plain.append(plain_loop(cfg, instantiate(cfg.dataset).train, args.steps))
        ours.append(trainer_run(overrides, args.steps))
    p, t = args.steps / min(plain), args.steps / min(ours)
    return {"bench": "ring", "steps": args.steps, "batch": cfg.train.batch_size, "threads": torch.get_num_threads(),
            "plain_steps_per_s": round(p, 1), "trainer_steps_per_s": round(t, 1), "ratio": round(t / p, 3)}


def bench_ensemble(args) -> dict:
    """Model-steps/s of K replicas in one batched run against K sequential single runs, i.e. the
    K = 1 trainer's steps/s. The claim is the steady-state rate the trainer itself logs
    (speed/steps_per_s, median over the log ticks after the first): what a paper-length run pays
    per step. Start-up, the first (warm-up) interval, the final evaluation and the final checkpoint
    (1.4 GB of weights and Adam state at K = 200) are left out of it; the whole-run rate, which
    includes them, is printed beside it."""
    base = ["dataset=ring", "model=mlp", "loss=bce", "train.device=" + args.device,
            "eval.n_samples=1000"] + args.override
    out = {"bench": "ensemble", "device": args.device, "threads": torch.get_num_threads(), "runs": []}
    single = None
    for k in args.k:
        n = max(8, args.steps // k) if args.device == "cpu" else args.steps
        every = max(2, n // 4)  # four log ticks: one warm-up, three measured
        rates, walls = [], []
        for _ in range(args.repeats):
            wall, rate = trainer_run(base + [f"train.ensemble={k}", f"train.eval_every={n}", f"train.ckpt_every={n}",
                                             f"train.log_every={every}"], n, steady=True)
            rates.append(rate)
            walls.append(wall)
        model_steps = k * max(rates)
        single = model_steps if k == 1 else single
        out["runs"].append({"K": k, "steps": n, "model_steps_per_s": round(model_steps, 1),
                            "whole_run_model_steps_per_s": round(k * n / min(walls), 1),
                            "speedup_vs_sequential": round(model_steps / single, 2) if single else None})
    return out


def bench_dcgan(args) -> dict:
    """DCGAN images/s: the trainer (deterministic on the CPU; the speed path on CUDA) against the
    plain fp32 loop. Steady state on both sides, as bench ensemble: the trainer's logged steps/s
    (median over the log ticks after the first, which holds torch.compile's warm-up) against the
    plain loop timed after as many untimed warm-up steps; the trainer's whole-run rate is printed
    beside it. The data are random-noise images written as PNGs and read through the real `folder`
    loader and cache: content does not change the cost of a step."""
    import numpy as np
    from PIL import Image

    res, every = args.resolution, max(1, args.steps // 4)
    with tempfile.TemporaryDirectory() as d:
        rng = np.random.default_rng(0)
        for i in range(args.images):
            Image.fromarray(rng.integers(0, 256, (res, res, 3), dtype=np.uint8)).save(f"{d}/{i:05d}.png")
        base = ["dataset=folder", f"dataset.path={d}", f"dataset.resolution={res}", f"paths.data={d}/data",
                "model=dcgan", "loss=bce", "loss.generator=ns", f"train.device={args.device}",
                f"train.batch_size={args.batch}", "eval.n_samples=64", f"train.log_every={every}"] + args.override
        if args.device == "cpu":
            base.append("train.deterministic=true")
        cfg = compose(base + ["paths.run_dir=/tmp/unused"])
        from hydra.utils import instantiate
        images = torch.as_tensor(np.asarray(instantiate(cfg.dataset).train)).float() / 127.5 - 1
        plain, ours, walls = [], [], []
        for _ in range(args.repeats):
            plain.append(plain_loop(cfg, images, args.steps - every, args.device, warmup=every))
            wall, rate = trainer_run(base + [f"train.eval_every={args.steps}", f"train.ckpt_every={args.steps}"],
                                     args.steps, steady=True)
            ours.append(rate)
            walls.append(wall)
    p, t = (args.steps - every) * args.batch / min(plain), max(ours) * args.batch
    return {"bench": "dcgan", "device": args.device, "resolution": res, "batch": args.batch, "steps": args.steps,
            "plain_images_per_s": round(p, 1), "trainer_images_per_s": round(t, 1), "ratio": round(t / p, 3),
            "trainer_whole_run_images_per_s": round(args.steps * args.batch / min(walls), 1)}


def bench_features(args) -> dict:
    """TF-Inception pool3 features/s through gan-bench's extractor (uint8 in, 299-px resize inside).
    Without --weights the same architecture runs with random weights: the speed is the same."""
    from gan_bench.metrics.features import TFInception

    with tempfile.TemporaryDirectory() as d:
        path = args.weights or _random_tf_inception(d)
        ex = TFInception(path, device=args.device, batch_size=args.batch)
        images = torch.randint(0, 256, (args.images, 3, args.resolution, args.resolution), dtype=torch.uint8)
        ex(images[: args.batch])  # warm-up: first-call allocations, cudnn autotuning
        _sync(args.device)
        t0 = time.perf_counter()
        ex(images)
        _sync(args.device)
        dt = time.perf_counter() - t0
    return {"bench": "features", "device": args.device, "threads": torch.get_num_threads(), "images": args.images,
            "resolution": args.resolution, "batch": args.batch, "features_per_s": round(args.images / dt, 1),
            "weights": "given" if args.weights else "random (same architecture)"}


def _random_tf_inception(d) -> str:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class RandomInit(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            return None  # keep the random init

    torch.save({}, f"{d}/empty.pth")
    net = RandomInit("x", ["2048"], feature_extractor_weights_path=f"{d}/empty.pth")
    torch.save(net.state_dict(), f"{d}/random-inception.pth")
    return f"{d}/random-inception.pth"


BENCHES = {"ring": bench_ring, "ensemble": bench_ensemble, "dcgan": bench_dcgan, "features": bench_features}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="gan-bench bench", description=__doc__)
    ap.add_argument("name", choices=sorted(BENCHES))
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--k", type=int, nargs="+", default=[1, 16, 64, 200], help="ensemble sizes (ensemble)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (ensemble, dcgan)")
    ap.add_argument("--resolution", type=int, default=32, help="image size (dcgan)")
    ap.add_argument("--batch", type=int, default=64, help="batch size (dcgan)")
    ap.add_argument("--images", type=int, default=512, help="data set size (dcgan, features)")
    ap.add_argument("--weights", default=None, help="TF-Inception weights file (features)")
    ap.add_argument("override", nargs="*", help="extra Hydra overrides for the trainer side")
    args = ap.parse_intermixed_args(argv)  # overrides may come before or after the options
    print(json.dumps(BENCHES[args.name](args)))
    return 0
