"""A run's random streams. Every draw of training comes from explicit generators seeded from the
replica's seed, one generator per stream and replica, so a run is a function of its config, a
checkpoint holds all of its randomness, and replica i of an ensemble draws what a single run with
seed + i draws."""

import numpy as np
import torch

STREAMS = {"data": 1, "latent": 2, "penalty": 3}


def stream_seed(seed: int, stream: str) -> int:
    return int(np.random.SeedSequence([seed, STREAMS[stream]]).generate_state(1)[0])


class Streams:
    """rng_data (data order, on the CPU), rng_latent and rng_penalty (on the device): [K] generators each."""

    def __init__(self, seeds: list[int], device: torch.device):
        self.rng_data = [torch.Generator().manual_seed(stream_seed(s, "data")) for s in seeds]
        self.rng_latent = [torch.Generator(device).manual_seed(stream_seed(s, "latent")) for s in seeds]
        self.rng_penalty = [torch.Generator(device).manual_seed(stream_seed(s, "penalty")) for s in seeds]

    def state_dict(self) -> dict:
        return {"data": [g.get_state() for g in self.rng_data], "latent": [g.get_state() for g in self.rng_latent],
                "penalty": [g.get_state() for g in self.rng_penalty]}

    def load_state_dict(self, state: dict) -> None:
        penalty = state["penalty"]
        if not isinstance(penalty, list):  # checkpoints before per-replica penalty streams held one
            penalty = [penalty] + [g.get_state() for g in self.rng_penalty[1:]]
        for gens, states in ((self.rng_data, state["data"]), (self.rng_latent, state["latent"]),
                             (self.rng_penalty, penalty)):
            for g, s in zip(gens, states, strict=True):
                g.set_state(s)
