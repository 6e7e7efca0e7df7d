"""G and D as the loop runs them. The modules themselves (K replicas as one, gan_bench/ensemble.py)
are built elsewhere; here they are moved to the device in place, in their memory format, and get
the CUDA speed path (bf16 autocast, channels_last, torch.compile) and G's EMA."""

import copy
from contextlib import contextmanager

import torch
from torch import nn


def speed_path(opts, device: torch.device, data) -> dict:
    """The CUDA speed path. `auto` turns each part on for CUDA (bf16 and channels_last only for
    image models: bf16's 8-bit mantissa would blur a 0.01-std toy mode), and everything is off under
    train.deterministic."""
    on_cuda = device.type == "cuda" and not opts.deterministic
    image = data.kind == "image"
    pick = lambda v, auto: bool(auto) if v == "auto" else bool(v) and not opts.deterministic
    return {"amp": pick(opts.amp, on_cuda and image), "compile": pick(opts.compile, on_cuda),
            "channels_last": pick(opts.channels_last, on_cuda and image)}


class Networks:
    """`gen(z)`, `disc(x)` run the (compiled) networks under autocast; losses always get fp32 logits.
    `G` and `D` stay the plain modules: optimizers, checkpoints and penalties use them."""

    def __init__(self, G: nn.Module, D: nn.Module, opts, device: torch.device, data):
        fast = speed_path(opts, device, data)
        fmt = torch.channels_last if fast["channels_last"] else torch.preserve_format
        self.G, self.D = G.to(device, memory_format=fmt), D.to(device, memory_format=fmt)
        # Warm-up: the decay after t updates is min(ema, (1 + t) / (10 + t)), so early evaluations
        # score an average of recent weights, not one still dominated by the initial ones.
        self.ema, self.ema_warmup = float(opts.ema), bool(opts.get("ema_warmup", False))
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if self.ema > 0 else None  # evaluated instead of G
        self.G_run, self.D_run = (torch.compile(self.G), torch.compile(self.D)) if fast["compile"] else (self.G, self.D)
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast["amp"])

    def gen(self, z: torch.Tensor) -> torch.Tensor:
        with self.autocast:
            return self.G_run(z)

    def disc(self, x: torch.Tensor) -> torch.Tensor:
        with self.autocast:
            return self.D_run(x).float()

    def disc_eager(self, x: torch.Tensor) -> torch.Tensor:
        # For penalties: they differentiate D's input gradient again, which compiled graphs cannot
        # (aot_autograd has no double backward), so they run the uncompiled D.
        with self.autocast:
            return self.D(x).float()

    def update_ema(self, step: int) -> None:
        """After generator step `step` (0-based: the number of updates before this one)."""
        if self.G_ema is not None:  # checked first: no grad-mode switch per step when EMA is off
            decay = min(self.ema, (1 + step) / (10 + step)) if self.ema_warmup else self.ema
            with torch.no_grad():
                torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1 - decay)

    @contextmanager
    def evaluated_generator(self):
        """The generator evaluations use (G's EMA when on), in eval mode for the block."""
        net = self.G if self.G_ema is None else self.G_ema
        if self.G_ema is not None:  # batch-norm statistics are not averaged: take G's
            with torch.no_grad():
                for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                    b_ema.copy_(b)
        net.eval()
        try:
            yield net
        finally:
            net.train()
