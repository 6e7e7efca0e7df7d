"""Where a seed ensemble of small DCGANs spends its step on the CPU (issue 13: why grouped
convolutions gain little). Two parts, both printed as plain text:

1. The module step (bench ensemble --loop module: G forward, D step on real and fake, G step, fused
   Adam) of `model=isit23_smnist` under torch.profiler, single and K=16 (grouped, vmap): the share
   of the step in convolution kernels, and per replica the convolution and the other time.
2. One 3x3 stride-2 convolution, forward and backward, as each layer of isit23_smnist's D has it, for
   K=16 replicas: groups=K, a Python loop of K convolutions, groups=K in channels_last, and
   unfold (im2col) + one matmul batched over the replicas.

    python scripts/profile_conv_ensemble.py [--steps 8] [--k 16]

Times are milliseconds on whatever machine runs it; compare rows of one run, not runs (docs/benchmarks.md).
"""

import argparse
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch.profiler import ProfilerActivity, profile

from gan_bench.bench import _conv_steps, compose
from gan_bench.ensemble import build_replicas

CONV_OPS = ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::_convolution",
            "aten::convolution", "aten::conv2d", "aten::conv_transpose2d")


def step_profile(K: int, impl: str, steps: int, batch: int) -> dict:
    cfg = compose(["model=isit23_smnist", "dataset=folder", "dataset.path=/unused", "dataset.resolution=28",
                   "paths.data=/unused", "paths.run_dir=/unused", "train.ema=0"])
    args = SimpleNamespace(device="cpu", batch=batch, compile=False)
    G, D = build_replicas(lambda: instantiate(cfg.model.generator), lambda: instantiate(cfg.model.discriminator),
                          list(range(K)), None if impl == "single" else impl)
    _conv_steps(G, D, cfg, K, batch, (3, 28, 28), 4, args)  # warm-up outside the profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        _conv_steps(G, D, cfg, K, batch, (3, 28, 28), steps, args)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e3
    conv = sum(e.self_cpu_time_total for e in events if e.key in CONV_OPS) / 1e3
    n = steps + max(2, steps // 4)  # _conv_steps' untimed warm-up steps are profiled too
    return {"impl": impl, "K": K, "ms_per_step": total / n, "conv_share": conv / total,
            "conv_ms_per_replica_step": conv / n / K, "other_ms_per_replica_step": (total - conv) / n / K}


def timed(f, *args, n: int = 20) -> float:
    for _ in range(3):
        f(*args)
    t0 = time.perf_counter()
    for _ in range(n):
        f(*args)
    return (time.perf_counter() - t0) / n * 1e3


def grouped(x, w, K):
    F.conv2d(x, w, stride=2, padding=1, groups=K).sum().backward()


def loop(xs, ws):
    sum(F.conv2d(a, b, stride=2, padding=1).sum() for a, b in zip(xs, ws)).backward()


def unfold_bmm_conv(x, w, K):
    """The grouped convolution as im2col and one matmul batched over the replicas (issue 20's
    idea for D's first layer, where each group has only 3 input channels)."""
    B, cout, cin = x.shape[0], w.shape[0] // K, w.shape[1]
    size = (x.shape[2] + 1) // 2
    cols = F.unfold(x, 3, padding=1, stride=2).view(B, K, cin * 9, size * size)  # channel-major: k, c, kh, kw
    return torch.einsum("bkcl,koc->bkol", cols, w.view(K, cout, cin * 9)).reshape(B, K * cout, size, size)


def unfold_bmm(x, w, K):
    unfold_bmm_conv(x, w, K).sum().backward()


def layer_times(K: int, batch: int) -> list[dict]:
    rows = []
    for cin, cout, size in [(3, 8, 28), (8, 16, 14), (16, 32, 7)]:  # isit23_smnist's D, layer by layer
        x = torch.randn(batch, K * cin, size, size, requires_grad=True)
        w = torch.randn(K * cout, cin, 3, 3, requires_grad=True)
        x_cl = x.detach().to(memory_format=torch.channels_last).requires_grad_()
        w_cl = w.detach().to(memory_format=torch.channels_last).requires_grad_()
        xs = [t.detach().contiguous().requires_grad_() for t in x.chunk(K, 1)]
        ws = [t.detach().contiguous().requires_grad_() for t in w.chunk(K, 0)]
        rows.append({"layer": f"{cin}->{cout} at {size}px", "groups=K": timed(grouped, x, w, K),
                     f"loop of {K}": timed(loop, xs, ws), "groups=K channels_last": timed(grouped, x_cl, w_cl, K),
                     "unfold+bmm": timed(unfold_bmm, x, w, K)})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=8, help="profiled module steps (default 8)")
    ap.add_argument("--k", type=int, default=16, help="replicas (default 16)")
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args(argv)
    print(f"module step, isit23_smnist, batch {args.batch}, {torch.get_num_threads()} threads:")
    for impl, K in [("single", 1), ("grouped", args.k), ("vmap", args.k)]:
        r = step_profile(K, impl, args.steps, args.batch)
        print(f"  {impl:7s} K={K:3d}: {r['ms_per_step']:7.1f} ms/step, convolutions {100 * r['conv_share']:4.1f}%, "
              f"per replica-step: convolutions {r['conv_ms_per_replica_step']:.2f} ms, "
              f"the rest {r['other_ms_per_replica_step']:.2f} ms")
    print(f"one 3x3 stride-2 convolution, forward + backward, K={args.k} replicas, batch {args.batch} (ms):")
    for row in layer_times(args.k, args.batch):
        print("  " + ", ".join(f"{k}: {v:.2f}" if isinstance(v, float) else str(v) for k, v in row.items()))


if __name__ == "__main__":
    main()
