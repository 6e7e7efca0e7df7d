"""Error and speed of the 1-D density metrics (gan_bench/metrics/density1d.py), the numbers in
docs/metrics.md ("1-D density metrics"):

    OMP_NUM_THREADS=1 .venv/bin/python scripts/density1d_error.py [--seeds 20]

1. p = N(0, 1) (the data), samples from q = N(0.5, 1.2^2): each metric's mean, bias and spread over
   sample seeds at 10,000 and 25,000 samples, against the exact value (closed-form KLs and W1 of
   the two Gaussians; JS and D_NS by scipy.integrate.quad on the exact densities); the KLs' bias
   and spread for q = N(1, 2^2) at 20,000 (tests/test_density1d.py's second pair).
2. A perfect generator of each default set (samples drawn from p itself): what the estimator reads
   where the truth is 0 (its floor); and for mixture1d what one bandwidth for all samples (Silverman
   on the whole sample, as a plain KDE would have it) reads instead of one per mode.
3. Seconds per call on 10,000 samples (one replica of an evaluation), the median of 20 calls, and
   of one whole evaluation of 20 replicas x 10,000 samples (DensityEvaluator, the generator a
   stand-in that returns the latents themselves).
"""

import argparse
import math
import time

import numpy as np
from scipy import integrate, stats

from gan_bench.metrics import density1d as D
from gan_bench.metrics.density1d import density_metrics

KEYS = ("kl_data_model", "kl_model_data", "js", "d_ns", "w1")
MIXTURE = ([-2.0, 2.0], [0.5, 0.5], [0.75, 0.25])  # conf/dataset/mixture1d.yaml


def exact_pair(mp, sp, mq, sq) -> dict:
    """The metrics between p = N(mp, sp^2) and q = N(mq, sq^2), independently of the estimator."""
    p, q = stats.norm(mp, sp), stats.norm(mq, sq)
    kl = lambda m1, s1, m2, s2: math.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5
    lo, hi = min(mp - 12 * sp, mq - 12 * sq), max(mp + 12 * sp, mq + 12 * sq)

    def quad(f):
        return integrate.quad(f, lo, hi, limit=400, epsabs=1e-13, epsrel=1e-11, points=[mp, mq])[0]

    m = lambda x: 0.5 * (p.pdf(x) + q.pdf(x))
    js = 0.5 * quad(lambda x: p.pdf(x) * math.log(p.pdf(x) / m(x))) \
        + 0.5 * quad(lambda x: q.pdf(x) * math.log(q.pdf(x) / m(x)))
    d_ns = 2 * quad(lambda x: m(x) * math.log(m(x) / p.pdf(x)))
    w1 = quad(lambda x: abs(p.cdf(x) - q.cdf(x)))
    return {"kl_data_model": kl(mp, sp, mq, sq), "kl_model_data": kl(mq, sq, mp, sp), "js": js,
            "d_ns": d_ns, "w1": w1}


def mixture_samples(n, means, stds, weights, rng):
    k = rng.choice(len(means), size=n, p=weights)
    return np.asarray(means)[k] + np.asarray(stds)[k] * rng.standard_normal(n)


def one_bandwidth_kl(x, means, stds, weights) -> float:
    """KL(p || q) with the KDE the estimator would be without cells: Silverman's h on all samples."""
    mu, sd, w = (np.asarray(v, dtype=float) for v in (means, stds, weights))
    h = D.bandwidth(x, D.H_FLOOR * sd.min())
    steps, counts = np.unique(np.round(x / (D.BIN * h)), return_counts=True)
    centres = steps * D.BIN * h
    nodes, wp = D.quadrature(mu, sd, w, h)
    log_q = D.log_kde(nodes, centres, counts, np.full(len(centres), h))
    return float(wp @ (D.log_mixture(nodes, mu, sd, w) - log_q))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args()

    truth = exact_pair(0.0, 1.0, 0.5, 1.2)
    print(f"1. p = N(0, 1), q = N(0.5, 1.2^2), sample seeds 0..{args.seeds - 1}: estimate mean (bias) +- std")
    print(f"{'metric':<14} {'exact':>9} " + " ".join(f"{f'n={n}':>28}" for n in (10000, 25000)))
    runs = {n: [density_metrics(np.random.default_rng(s).normal(0.5, 1.2, n), [0.0], [1.0], [1.0])
                for s in range(args.seeds)] for n in (10000, 25000)}
    for k in KEYS:
        cells = []
        for n in (10000, 25000):
            v = np.array([r[k] for r in runs[n]])
            cells.append(f"{v.mean():.4f} ({v.mean() - truth[k]:+.4f}) +- {v.std(ddof=1):.4f}")
        print(f"{k:<14} {truth[k]:>9.4f} " + " ".join(f"{c:>28}" for c in cells))

    wide = exact_pair(0.0, 1.0, 1.0, 2.0)
    rs = [density_metrics(np.random.default_rng(s).normal(1.0, 2.0, 20000), *([0.0], [1.0], [1.0]))
          for s in range(args.seeds)]
    print("\n1b. q = N(1, 2^2) (the tests' second pair), n=20000: "
          + "  ".join(f"{k} {wide[k]:.4f}: {np.mean([r[k] for r in rs]) - wide[k]:+.4f} +- "
                      f"{np.std([r[k] for r in rs], ddof=1):.4f}" for k in ("kl_data_model", "kl_model_data")))

    print(f"\n2. perfect generators (samples from p), n=10000, seeds 0..{args.seeds - 1}: mean +- std (truth 0)")
    for name, mix in (("gauss1d", ([0.0], [1.0], [1.0])), ("mixture1d", MIXTURE)):
        rs = [density_metrics(mixture_samples(10000, *mix, np.random.default_rng(s)), *mix)
              for s in range(args.seeds)]
        print(f"{name:<10} " + "  ".join(f"{k} {np.mean([r[k] for r in rs]):+.4f} +- "
                                         f"{np.std([r[k] for r in rs], ddof=1):.4f}" for k in KEYS))
        masses = [f"mode_mass_{i} {np.mean([r[f'mode_mass_{i}'] for r in rs]):.4f} (weight {w})"
                  for i, w in enumerate(mix[2])]
        print(f"{'':<10} " + "  ".join(masses))
    one = [one_bandwidth_kl(mixture_samples(10000, *MIXTURE, np.random.default_rng(s)), *MIXTURE)
           for s in range(args.seeds)]
    print(f"mixture1d, one bandwidth for all samples: kl_data_model {np.mean(one):+.4f} +- "
          f"{np.std(one, ddof=1):.4f}")

    print("\n3. seconds per call, 10,000 samples, median of 20")
    rng = np.random.default_rng(0)
    cases = {"gauss1d, q = N(0.5, 1.2)": (rng.normal(0.5, 1.2, 10000), ([0.0], [1.0], [1.0])),
             "mixture1d, perfect": (mixture_samples(10000, *MIXTURE, rng), MIXTURE),
             "mixture1d, collapsed (all at 0)": (np.zeros(10000), MIXTURE),
             "mixture1d, 60% atom at -2 + perfect": (np.r_[np.full(6000, -2.0), mixture_samples(4000, *MIXTURE, rng)],
                                                     MIXTURE),
             "mixture1d, N(0, 100^2) samples": (rng.normal(0, 100, 10000), MIXTURE),
             "mixture1d, Cauchy samples": (rng.standard_cauchy(10000), MIXTURE),
             # The slowest found: a near-spike (std 1e-3) gets a tiny bandwidth, and every straggler
             # beside it in its mode's cell a kernel of its own.
             "mixture1d, 80% N(-2, 1e-3^2) + N(0, 100^2)": (np.r_[rng.normal(-2, 1e-3, 8000), rng.normal(0, 100, 2000)],
                                                           MIXTURE)}
    for name, (x, mix) in cases.items():
        times = []
        for _ in range(20):
            t = time.perf_counter()
            density_metrics(x, *mix)
            times.append(time.perf_counter() - t)
        print(f"{name:<44} {np.median(times) * 1e3:7.1f} ms")
    print(f"{'evaluation, 20 replicas x 10,000':<44} {evaluation_seconds(20, 10000) * 1e3:7.1f} ms")


def evaluation_seconds(k: int, n: int) -> float:
    from omegaconf import OmegaConf

    from gan_bench.data.toy import mixture1d
    from gan_bench.metrics.density_eval import DensityEvaluator

    cfg = OmegaConf.create({"eval": {"n_samples": n, "latent_seed": 0}, "model": {"latent_dim": 1}})
    evaluator = DensityEvaluator(mixture1d(n_train=10, n_test=10), cfg)
    generate = lambda z: (z - 1.0).unsqueeze(0).expand(k, -1, -1)  # N(-1, 1) points, every replica
    t = time.perf_counter()
    evaluator(generate, list(range(k)))
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
