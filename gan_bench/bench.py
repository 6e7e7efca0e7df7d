"""`gan-bench bench ring|ensemble|dcgan|features|memory`: the trainer against a plain PyTorch loop
of the same networks, batch and objective (or K replicas against K single runs), in one process,
as one JSON line. Ratios, not absolute times, are the claim: both sides share the machine's noise.
Each side runs `--repeats` times; the best time counts. `memory` measures no time: what one
replica of a configuration needs, and the largest ensemble that fits."""

import argparse
import json
import statistics
import tempfile
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F

# The timed workloads are fixed here rather than left to the quick-start defaults, so the figures
# in docs/benchmarks.md stay reproducible: the ISIT'23 ring MLPs (conf/model/mlp.yaml's networks
# until issue 10) and no EMA of G, which the plain loop does not have either.
RING_WORKLOAD = ["dataset=ring", "model=mlp", "model.generator.width=400", "model.generator.depth=4",
                 "model.discriminator.width=200", "model.discriminator.depth=4", "train.ema=0"]


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose, initialize_config_dir

    from gan_bench.config import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


def plain_loop(cfg, data: torch.Tensor, steps: int, device: str = "cpu", warmup: int = 0) -> float:
    """The baseline a researcher would write: the config's G and D, its optimizer class and
    settings with torch's default kernel (no fused/foreach choice), uniformly drawn batches,
    non-saturating BCE, fp32, nothing else. `data` is the training set in model space. Seconds for
    `steps` steps after `warmup` untimed ones (first-call allocations, cudnn autotuning)."""
    from hydra.utils import instantiate

    torch.manual_seed(cfg.seed)
    G = instantiate(cfg.model.generator).to(device)
    D = instantiate(cfg.model.discriminator).to(device)
    data = data.to(device)
    from omegaconf import OmegaConf

    from gan_bench.optim import build_optimizers

    node = OmegaConf.to_container(cfg.optim, resolve=True)
    for kernel_choice in ("fused", "foreach"):
        node.pop(kernel_choice, None)
    opt_g, opt_d = build_optimizers(node, G, D)
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
    overrides = [*RING_WORKLOAD, "loss=bce", "loss.generator=ns", "train.device=cpu"] + args.override
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
    K = 1 trainer's steps/s, for the ring MLPs (`--model` a DCGAN: bench_conv_ensemble). The claim
    is the steady-state rate the trainer itself logs (speed/steps_per_s, median over the log ticks
    after the first): what a paper-length run pays per step. Start-up, the first (warm-up)
    interval, the final evaluation and the final checkpoint (1.4 GB of weights and Adam state at
    K = 200) are left out of it; the whole-run rate, which includes them, is printed beside it."""
    if args.model != "mlp":
        return bench_conv_ensemble(args)
    base = [*RING_WORKLOAD, "loss=bce", "train.device=" + args.device,
            "eval.n_samples=1000"] + args.override
    out = {"bench": "ensemble", "device": args.device, "threads": torch.get_num_threads(), "runs": []}
    single = None
    for k in args.k or [1, 16, 64, 200]:
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


def bench_conv_ensemble(args) -> dict:
    """DCGAN seed ensembles, one JSON line: model-steps/s of K replicas as one module, for each
    implementation (`--impl grouped vmap`, gan_bench/ensemble_conv.py), against K sequential
    single runs, i.e. K times the rate of one plain network (impl "single", K = 1), in one process.

    --loop trainer (the default): the trainer itself, as for the ring: K times the steady-state
    steps/s it logs (speed/steps_per_s, median over the log ticks after the first, which holds
    warm-up and on CUDA torch.compile), on random-noise PNGs read through the real `folder` loader
    (content does not change the cost of a step), non-saturating BCE, no image metrics; its speed
    path is the trainer's own (on CUDA: bf16, channels_last and torch.compile, unless overridden).
    --loop module: the step alone (G forward, D step on real and fake, G step, the configured
    optimizer: fused Adam by default) on a fixed random batch, without the trainer's data gather,
    per-replica latent draws and logging; on CUDA bf16 and channels_last (and torch.compile with
    --compile). Timed after `steps // 4` untimed steps; the best of --repeats counts.

    A K whose estimated memory (gan_bench/memory.py) exceeds the device's is recorded as skipped."""
    from hydra.utils import instantiate

    from gan_bench.memory import available_bytes, largest_ensemble, replica_bytes
    from gan_bench.training.networks import speed_path

    res = 28 if args.model == "isit23_smnist" else args.resolution
    with tempfile.TemporaryDirectory() as d:
        base = [f"model={args.model}", "dataset=folder", f"dataset.path={d}/images", f"dataset.resolution={res}",
                f"paths.data={d}/data", "loss=bce", "loss.generator=ns", f"train.device={args.device}",
                f"train.batch_size={args.batch}", "train.ema=0", "eval.metrics=[]",
                "eval.final_metrics=[]"] + args.override
        cfg = compose(base + ["paths.run_dir=/tmp/unused"])
        build_g, build_d = (lambda: instantiate(cfg.model.generator)), (lambda: instantiate(cfg.model.discriminator))
        fits = largest_ensemble(replica_bytes(build_g, build_d, int(cfg.model.latent_dim), args.batch,
                                              ema=cfg.train.ema > 0)["total"], available_bytes(args.device))
        trainer = args.loop == "trainer"
        if trainer:
            _noise_pngs(f"{d}/images", args.images, res)
            fast = speed_path(cfg.train, torch.device(args.device), SimpleNamespace(kind="image"))
        else:
            cuda = args.device == "cuda"
            fast = {"amp": cuda, "channels_last": cuda, "compile": args.compile}
        out = {"bench": "ensemble", "model": args.model, "resolution": res, "batch": args.batch, "device": args.device,
               "threads": torch.get_num_threads(), "loop": "trainer" if trainer else "module step", **fast,
               "largest_k_that_fits": fits, "runs": []}
        ks = [k for k in args.k or [1, 16, 64, 100] if k > 1]
        single = None
        for impl, k in [("single", 1)] + [(impl, k) for impl in args.impl for k in ks]:
            run = {"impl": impl, "K": k}
            if fits is not None and k > fits:
                out["runs"].append({**run, "skipped": f"needs more memory than {args.device} has free "
                                                      f"(largest K {fits})"})
                continue
            n = max(8, args.steps // k) if args.device == "cpu" else args.steps
            if trainer:
                every = max(2, n // 4)  # four log ticks: one warm-up, three measured
                knobs = [f"train.ensemble={k}", f"train.ensemble_impl={'grouped' if k == 1 else impl}",
                         f"train.eval_every={n}", f"train.ckpt_every={n}", f"train.log_every={every}"]
                rate = k * max(trainer_run(base + knobs, n, steady=True)[1] for _ in range(args.repeats))
            else:
                rate = k * n / min(_module_seconds(build_g, build_d, cfg, impl, k, res, n, args)
                                   for _ in range(args.repeats))
            single = rate if impl == "single" else single
            out["runs"].append({**run, "steps": n, "model_steps_per_s": round(rate, 1),
                                "speedup_vs_sequential": round(rate / single, 2)})
            if args.device == "cuda":
                torch.cuda.empty_cache()
    return out


def _noise_pngs(d: str, n: int, res: int) -> None:
    import os

    import numpy as np
    from PIL import Image

    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (res, res, 3), dtype=np.uint8)).save(f"{d}/{i:05d}.png")


def _module_seconds(build_g, build_d, cfg, impl, K, res, steps, args) -> float:
    from gan_bench.ensemble import build_replicas

    G, D = build_replicas(build_g, build_d, list(range(K)), None if impl == "single" else impl)
    return _conv_steps(G, D, cfg, K, args.batch, (int(cfg.dataset.channels), res, res), steps, args)


def _conv_steps(G, D, cfg, K, batch, image_shape, steps, args) -> float:
    """Seconds for `steps` GAN steps of an ensemble module after steps // 4 untimed ones."""
    dev, cuda = torch.device(args.device), args.device == "cuda"
    fmt = torch.channels_last if cuda else torch.preserve_format
    G, D = G.to(dev, memory_format=fmt), D.to(dev, memory_format=fmt)
    G_run, D_run = (torch.compile(G), torch.compile(D)) if args.compile else (G, D)
    from gan_bench.optim import build_optimizers

    opt_g, opt_d = build_optimizers(cfg.optim, G, D)  # the trainer's own (fused Adam by default)
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda)
    real = torch.rand(K, batch, *image_shape, device=dev) * 2 - 1
    warmup = max(2, steps // 4)
    for i in range(warmup + steps):
        if i == warmup:
            _sync(args.device)
            t0 = time.perf_counter()
        with autocast:
            fake = G_run(torch.randn(K, batch, int(cfg.model.latent_dim), device=dev))
            d_real, d_fake = D_run(real).float(), D_run(fake.detach()).float()
        d_loss = (F.softplus(-d_real).mean(-1) + F.softplus(d_fake).mean(-1)).sum()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        D.requires_grad_(False)
        with autocast:
            g_loss = F.softplus(-D_run(fake).float()).mean(-1).sum()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)
    _sync(args.device)
    return time.perf_counter() - t0


def bench_dcgan(args) -> dict:
    """DCGAN images/s: the trainer (deterministic on the CPU; the speed path on CUDA) against the
    plain fp32 loop. Steady state on both sides, as bench ensemble: the trainer's logged steps/s
    (median over the log ticks after the first, which holds torch.compile's warm-up) against the
    plain loop timed after as many untimed warm-up steps; the trainer's whole-run rate is printed
    beside it. The data are random-noise images written as PNGs and read through the real `folder`
    loader and cache: content does not change the cost of a step."""
    import numpy as np

    res, every = args.resolution, max(1, args.steps // 4)
    with tempfile.TemporaryDirectory() as d:
        _noise_pngs(d, args.images, res)
        base = ["dataset=folder", f"dataset.path={d}", f"dataset.resolution={res}", f"paths.data={d}/data",
                "model=dcgan", "loss=bce", "loss.generator=ns", f"train.device={args.device}",
                f"train.batch_size={args.batch}", "train.ema=0", "eval.n_samples=64",
                f"train.log_every={every}"] + args.override
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


def bench_memory(args) -> dict:
    """What one replica of the configured run needs (gan_bench/memory.py: the estimate the trainer
    checks before building an ensemble) and the largest train.ensemble that fits on --device now.
    Nothing is trained and no data is read, so the data part (a replica's data order and latent pool)
    counts the configured size where the data set has one (Stacked MNIST, toy sets) and 0 where only
    the files know it (the trainer's check counts it): e.g. `gan-bench bench memory experiment=isit23_stacked_mnist`."""
    from hydra.utils import instantiate

    from gan_bench.memory import GiB, available_bytes, data_sizes, largest_ensemble, replica_bytes

    cfg = compose(args.override + ["paths.run_dir=/tmp/unused"])
    need = replica_bytes(lambda: instantiate(cfg.model.generator), lambda: instantiate(cfg.model.discriminator),
                         int(cfg.model.latent_dim), int(cfg.train.batch_size), ema=cfg.train.ema > 0,
                         **data_sizes(cfg))
    free = available_bytes(args.device)
    return {"bench": "memory", "layout": cfg.model.generator.get("layout", "dcgan"),
            "resolution": cfg.dataset.get("resolution"), "batch": int(cfg.train.batch_size),
            **{f"{k}_mib": round(v / 2 ** 20, 2) for k, v in need.items()}, "device": args.device,
            "free_gib": None if free is None else round(free / GiB, 1),
            "largest_k_that_fits": largest_ensemble(need["total"], free)}


BENCHES = {"ring": bench_ring, "ensemble": bench_ensemble, "dcgan": bench_dcgan, "features": bench_features,
           "memory": bench_memory}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="gan-bench bench", description=__doc__)
    ap.add_argument("name", choices=sorted(BENCHES))
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--k", type=int, nargs="+", default=None,
                    help="ensemble sizes (ensemble; default 1 16 64 200 for the ring, 1 16 64 100 for DCGANs)")
    ap.add_argument("--model", default="mlp", choices=["mlp", "dcgan", "dcgan_small", "isit23_smnist"],
                    help="ensemble: the ring MLPs, or DCGAN replicas (--loop, --impl)")
    ap.add_argument("--impl", nargs="+", default=["grouped", "vmap"], choices=["grouped", "vmap"],
                    help="ensemble of DCGANs: the implementations to measure")
    ap.add_argument("--loop", default="trainer", choices=["trainer", "module"],
                    help="ensemble of DCGANs: the trainer's steady-state rate, or the module step alone")
    ap.add_argument("--compile", action="store_true",
                    help="ensemble of DCGANs, --loop module: torch.compile G and D (the trainer: train.compile)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (ensemble, dcgan)")
    ap.add_argument("--resolution", type=int, default=32, help="image size (dcgan; ensemble of dcgan, dcgan_small)")
    ap.add_argument("--batch", type=int, default=64, help="batch size (dcgan; ensemble of DCGANs)")
    ap.add_argument("--images", type=int, default=512, help="data set size (dcgan, features, ensemble of DCGANs)")
    ap.add_argument("--weights", default=None, help="TF-Inception weights file (features)")
    ap.add_argument("override", nargs="*", help="extra Hydra overrides for the trainer side")
    args = ap.parse_intermixed_args(argv)  # overrides may come before or after the options
    print(json.dumps(BENCHES[args.name](args)))
    return 0
