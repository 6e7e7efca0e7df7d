"""The whole state of a run in one object: the loop's own counters and each part that carries
state (networks, optimizers, random streams, data order, latent walk). `state_dict()` is exactly
what checkpoints/last.pt holds, `load_state_dict()` restores it, conversions of older checkpoints
included, so a resumed run continues bit-identically on the CPU."""

import time

import torch

from gan_bench.latents import Latents
from gan_bench.training.batches import Batches
from gan_bench.training.networks import Networks
from gan_bench.training.streams import Streams


class RunState:
    def __init__(self, seeds: list[int], nets: Networks, opt_g, opt_d, streams: Streams, batches: Batches,
                 latents: Latents, device: torch.device):
        self.nets, self.opt_g, self.opt_d = nets, opt_g, opt_d
        self.streams, self.batches, self.latents = streams, batches, latents
        self.step = 0
        self.replicas = [{"seed": s, "status": "completed", "diverged_at": None, "metrics": {}} for s in seeds]
        self.active = torch.ones(len(seeds), dtype=torch.bool, device=device)  # replicas still training
        self.n_active = len(seeds)  # a host-side copy, updated at log ticks, so the loop never syncs
        self.pending_evals: list[dict] = []  # this step's evaluations not yet recorded (evaluation.py)
        self._wall_before, self._started = 0.0, time.perf_counter()

    # ---------------------------------------------------------------- replicas
    def diverge(self, k: int, at_step: int) -> None:
        """Status is data: record the replica as diverged and freeze it; the others go on."""
        self.replicas[k].update(status="diverged", diverged_at=at_step)
        self.active[k] = False
        self.n_active -= 1

    def training(self) -> list[int]:
        return [k for k, r in enumerate(self.replicas) if r["status"] == "completed"]

    # ---------------------------------------------------------------- wall clock
    def start_clock(self) -> None:
        """Wall seconds count the loop (with its evaluations and checkpoints), not start-up."""
        self._started = time.perf_counter()

    def wall_seconds(self) -> float:
        return self._wall_before + time.perf_counter() - self._started

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self, config_hash: str) -> dict:
        nets, b = self.nets, self.batches.state_dict()
        return {
            "config_hash": config_hash, "step": self.step, "pos": b["pos"], "wall_seconds": self.wall_seconds(),
            "perms": b["perms"], "replicas": self.replicas,
            "G": nets.G.state_dict(), "D": nets.D.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "G_ema": None if nets.G_ema is None else nets.G_ema.state_dict(), "latents": self.latents.state_dict(),
            "rng": self.streams.state_dict(), "pending_evals": self.pending_evals,
        }

    def load_state_dict(self, state: dict) -> None:
        nets = self.nets
        nets.G.load_state_dict(state["G"])
        nets.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if nets.G_ema is not None:
            nets.G_ema.load_state_dict(state["G_ema"])
        self.streams.load_state_dict(state["rng"])
        self.batches.load_state_dict({"perms": state["perms"], "pos": state["pos"]})
        self.latents.load_state_dict(state.get("latents"))  # checkpoints before latent pools have none
        self.step, self._wall_before, self.replicas = state["step"], state["wall_seconds"], state["replicas"]
        self.active = torch.tensor([r["status"] == "completed" for r in self.replicas], device=self.active.device)
        self.n_active = int(self.active.sum())
        self.pending_evals = list(state.get("pending_evals") or [])  # checkpoints before it have none
