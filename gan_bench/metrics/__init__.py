"""Metrics registry: which evaluation a data set gets.

An evaluator is called with `generate(z) -> samples [K, n, ...]` (every replica on latents
z [n, z_dim]), the replicas to evaluate and whether this is the final evaluation; it draws its own
fixed test latents and returns one (metrics, picture or None) per replica. `fingerprints` names the
protocol behind every metric key, so results measured differently are never pooled.
"""

import torch

from gan_bench.metrics.modes import FINGERPRINT as MODES_FINGERPRINT
from gan_bench.metrics.modes import mode_metrics


def fixed_latents(n: int, z_dim: int, seed: int) -> torch.Tensor:
    """The same test latents for every run and every evaluation, untouched by training's streams."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


class ToyEvaluator:
    """Mode metrics on the fixed test latents (ISIT'23: 25,000 samples at the end)."""

    chunk = 8192  # latents per generator forward

    def __init__(self, data, cfg):
        self.means, self.std = data.info["means"], data.info["std"]
        self.z = fixed_latents(int(cfg.eval.n_samples), int(cfg.model.latent_dim), int(cfg.eval.latent_seed))
        self.fingerprints = {k: f"{MODES_FINGERPRINT}:n={len(self.z)}"
                             for k in ("modes", "success", "failure", "hq", "kl", "rkl", "js", "tv")}

    def __call__(self, generate, which: list[int], final: bool = False) -> list:
        from gan_bench.viz import scatter

        samples = torch.cat([generate(z) for z in self.z.split(self.chunk)], dim=1)
        return [(mode_metrics(samples[i], self.means, self.std),
                 scatter(samples[i], self.means, self.std) if j == 0 else None)
                for j, i in enumerate(which)]


def make_evaluator(data, cfg):
    if data.kind == "toy":
        return ToyEvaluator(data, cfg)
    from gan_bench.metrics.image_eval import ImageEvaluator
    return ImageEvaluator(data, cfg)
