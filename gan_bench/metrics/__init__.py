"""Metrics registry: which evaluation a data set gets. An evaluator takes one replica's samples from
the fixed test latents and returns (metrics, picture or None); `fingerprints` names the protocol
behind every metric key, so results measured differently are never pooled."""

import torch

from gan_bench.metrics.modes import FINGERPRINT as MODES_FINGERPRINT
from gan_bench.metrics.modes import mode_metrics


class ToyEvaluator:
    """Mode metrics on the fixed test latents (ISIT'23: 25,000 samples at the end)."""

    chunk = 8192  # latents per generator forward during evaluation

    def __init__(self, data, n_samples: int):
        self.means, self.std = data.info["means"], data.info["std"]
        self.fingerprints = {k: f"{MODES_FINGERPRINT}:n={n_samples}"
                             for k in ("modes", "success", "failure", "hq", "kl", "rkl", "js", "tv")}

    def __call__(self, samples: torch.Tensor, draw: bool = True):
        from gan_bench.viz import scatter

        picture = scatter(samples, self.means, self.std) if draw else None
        return mode_metrics(samples, self.means, self.std), picture

    @staticmethod
    def save_picture(picture, path) -> None:
        from gan_bench.viz import save_png
        save_png(picture, path)


def make_evaluator(data, cfg):
    if data.kind == "toy":
        return ToyEvaluator(data, int(cfg.eval.n_samples))
    from gan_bench.metrics.image_eval import ImageEvaluator
    return ImageEvaluator(data, cfg)
