"""Metrics: which evaluation a data set gets, and the keys the toy ones report.

An evaluator is called with `generate(z) -> samples [K, n, ...]` (every replica on latents
z [n, z_dim]), the replicas to evaluate and whether this is the final evaluation; it draws its own
fixed test latents and returns one (metrics, picture or None) per replica. `fingerprints` names the
protocol behind every metric key, so results measured differently are never pooled.

    2-D toy data  toy_eval.ToyEvaluator: mode metrics (modes.py), keys TOY_KEYS
    1-D toy data  density_eval.DensityEvaluator: divergences to the known density (density1d.py),
                  keys density1d_keys(number of mixture components)
    image data    image_eval.ImageEvaluator: the named metrics of image.py's table (fid50k_train, ...)

This module imports no torch: the report and the search read the keys without loading it.
"""

# What modes.mode_metrics returns for toy data, all under one fingerprint (recorded under "modes").
TOY_KEYS = ("modes", "success", "failure", "hq", "kl", "rkl", "js", "tv")

# What a diverged seed counts as for the toy rate metrics: its generator has no finite samples, so
# it covers no mode (success 0, failure 1). The report's rates and the search's objective both use it.
DIVERGED_AS = {"success": 0.0, "failure": 1.0}

# What density1d.density_metrics returns for the 1-D sets besides mode_mass_<i> (one per mixture
# component), each under the density1d fingerprint. `js` shares its name with the 2-D mode-histogram
# JS: the fingerprints keep them apart.
DENSITY1D_KEYS = ("kl_data_model", "kl_model_data", "js", "d_ns", "w1", "modes_dropped", "nonfinite")

# The data sets (their dataset._target_) that get the 1-D evaluator rather than the 2-D mode metrics.
DENSITY1D_TARGETS = ("gan_bench.data.toy.gauss1d", "gan_bench.data.toy.mixture1d")


def density1d_keys(n_modes: int) -> tuple:
    return DENSITY1D_KEYS + tuple(f"mode_mass_{i}" for i in range(n_modes))


def make_evaluator(data, cfg):
    if "mixture1d" in data.info:
        from gan_bench.metrics.density_eval import DensityEvaluator
        return DensityEvaluator(data, cfg)
    if data.kind == "toy":
        from gan_bench.metrics.toy_eval import ToyEvaluator
        return ToyEvaluator(data, cfg)
    from gan_bench.metrics.image_eval import ImageEvaluator
    return ImageEvaluator(data, cfg)
