"""Metrics registry: which evaluation a data set gets. Each evaluator is called with a function
that generates samples from the fixed test latents and returns (metrics, fingerprints, picture)."""

from typing import Callable

import torch

from gan_bench.metrics.modes import FINGERPRINT as MODES_FINGERPRINT
from gan_bench.metrics.modes import mode_metrics


class ToyEvaluator:
    """Mode metrics on the fixed test latents (ISIT'23: 25,000 samples at the end)."""

    def __init__(self, data, n_samples: int):
        self.means, self.std, self.n = data.info["means"], data.info["std"], n_samples
        self.fingerprints = {k: f"{MODES_FINGERPRINT}:n={n_samples}"
                             for k in ("modes", "success", "failure", "hq", "kl", "rkl", "js", "tv")}

    def __call__(self, samples: torch.Tensor):
        from gan_bench.viz import scatter

        return mode_metrics(samples, self.means, self.std), scatter(samples, self.means, self.std)


def make_evaluator(data, eval_cfg) -> Callable:
    if data.kind == "toy":
        return ToyEvaluator(data, int(eval_cfg.n_samples))
    raise NotImplementedError(f"no evaluator for data of kind '{data.kind}' yet")
