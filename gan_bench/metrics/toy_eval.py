"""The trainer's evaluator for toy data: mode metrics on the fixed test latents (ISIT'23: 25,000
samples at the end) and a scatter plot of the first replica's samples."""

import torch

from gan_bench.metrics import TOY_KEYS
from gan_bench.metrics.latents import fixed_latents
from gan_bench.metrics.modes import FINGERPRINT, mode_metrics


class ToyEvaluator:
    chunk = 8192  # latents per generator forward

    def __init__(self, data, cfg):
        self.means, self.std = data.info["means"], data.info["std"]
        self.z = fixed_latents(int(cfg.eval.n_samples), int(cfg.model.latent_dim), int(cfg.eval.latent_seed))
        self.fingerprints = {k: f"{FINGERPRINT}:n={len(self.z)}" for k in TOY_KEYS}

    def __call__(self, generate, which: list[int], final: bool = False) -> list:
        from gan_bench.viz import scatter

        samples = torch.cat([generate(z) for z in self.z.split(self.chunk)], dim=1)
        return [(mode_metrics(samples[i], self.means, self.std),
                 scatter(samples[i], self.means, self.std) if j == 0 else None)
                for j, i in enumerate(which)]
