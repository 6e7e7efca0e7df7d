"""Metrics: which evaluation a data set gets, and the keys the toy one reports.

An evaluator is called with `generate(z) -> samples [K, n, ...]` (every replica on latents
z [n, z_dim]), the replicas to evaluate and whether this is the final evaluation; it draws its own
fixed test latents and returns one (metrics, picture or None) per replica. `fingerprints` names the
protocol behind every metric key, so results measured differently are never pooled.

    toy data    toy_eval.ToyEvaluator: mode metrics (modes.py), keys TOY_KEYS
    image data  image_eval.ImageEvaluator: the named metrics of image.py's table (fid50k_train, ...)

This module imports no torch: the report reads TOY_KEYS without loading it.
"""

# What modes.mode_metrics returns for toy data, all under one fingerprint (recorded under "modes").
TOY_KEYS = ("modes", "success", "failure", "hq", "kl", "rkl", "js", "tv")


def make_evaluator(data, cfg):
    if data.kind == "toy":
        from gan_bench.metrics.toy_eval import ToyEvaluator
        return ToyEvaluator(data, cfg)
    from gan_bench.metrics.image_eval import ImageEvaluator
    return ImageEvaluator(data, cfg)
