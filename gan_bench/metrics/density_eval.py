"""The trainer's evaluator for the 1-D sets (gauss1d, mixture1d): divergences between the known data
density and each replica's samples on the fixed test latents (density1d.py), and a histogram of
the first replica's samples over the data density."""

import torch

from gan_bench.metrics import density1d_keys
from gan_bench.metrics.density1d import FINGERPRINT, density_metrics
from gan_bench.metrics.latents import fixed_latents


class DensityEvaluator:
    chunk = 8192  # latents per generator forward

    def __init__(self, data, cfg):
        mix = data.info["mixture1d"]
        self.means, self.stds, self.weights = mix["means"], mix["stds"], mix["weights"]
        self.z = fixed_latents(int(cfg.eval.n_samples), int(cfg.model.latent_dim), int(cfg.eval.latent_seed))
        self.fingerprints = {k: f"{FINGERPRINT}:n={len(self.z)}" for k in density1d_keys(len(self.means))}

    def __call__(self, generate, which: list[int], final: bool = False) -> list:
        from gan_bench.viz import histogram1d

        samples = torch.cat([generate(z) for z in self.z.split(self.chunk)], dim=1).cpu()  # [K, n, 1]
        out = []
        for j, i in enumerate(which):
            metrics = density_metrics(samples[i].double().numpy(), self.means, self.stds, self.weights)
            picture = histogram1d(samples[i], self.means, self.stds, self.weights, metrics) if j == 0 else None
            out.append((metrics, picture))
        return out
