"""Time one optimizer step of each torch implementation (per-tensor loop, foreach, fused) on the
trainer's own networks, to choose the kernel each conf/optim/ preset asks for.

    OMP_NUM_THREADS=1 python scripts/bench_optimizers.py [--device cpu|cuda] [--repeats 15]

Gradients are fixed random tensors, so only `opt.step()` is timed; the variants of one optimizer
run interleaved and each reports its fastest repeat (the least disturbed by other load), in
microseconds per step, for the ring's networks: the ISIT'23 size (width 400/200, depth 4) and a
small one (64/32) alone and as a 64-replica ensemble. Every variant is deterministic; they differ
in speed only.
"""

import argparse
import time

import torch

from gan_bench.ensemble import build_replicas
from gan_bench.models.mlp import MLP

OPTIMIZERS = {
    "adam": (lambda p, **k: torch.optim.Adam(p, lr=1e-4, **k), ["loop", "foreach", "fused"]),
    "rmsprop": (lambda p, **k: torch.optim.RMSprop(p, lr=5e-5, **k), ["loop", "foreach"]),  # no fused in torch 2.14
    "sgd": (lambda p, **k: torch.optim.SGD(p, lr=1e-2, momentum=0.9, **k), ["loop", "foreach", "fused"]),
}
KERNEL = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
SHAPES = [(1, 400), (1, 64), (64, 64)]  # (replicas, generator width); D is half as wide


def generator(k: int, width: int, device: str) -> torch.nn.Module:
    G, _ = build_replicas(lambda: MLP(2, 2, width=width, depth=4, activation="relu"),
                          lambda: MLP(2, 1, width=width // 2, depth=4, activation="leaky_relu"), list(range(k)))
    G = G.to(device)
    for p in G.parameters():
        p.grad = torch.randn_like(p)
    return G


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--steps", type=int, default=50, help="steps per timed repeat")
    args = p.parse_args(argv)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    for k, width in SHAPES:
        for name, (make, variants) in OPTIMIZERS.items():
            opts = {v: make(generator(k, width, args.device).parameters(), **KERNEL[v]) for v in variants}
            for o in opts.values():  # first steps allocate the state
                for _ in range(5):
                    o.step()
            best = dict.fromkeys(opts, float("inf"))
            for _ in range(args.repeats):
                for v, o in opts.items():
                    sync()
                    t = time.perf_counter()
                    for _ in range(args.steps):
                        o.step()
                    sync()
                    best[v] = min(best[v], (time.perf_counter() - t) / args.steps)
            print(f"K={k:<3} width={width:<4} {name:<8} "
                  + "  ".join(f"{v} {1e6 * s:7.0f} us" for v, s in best.items()),
                  flush=True)


if __name__ == "__main__":
    main()
