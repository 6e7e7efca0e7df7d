"""FID on near-singular covariances: gan-bench's frechet_distance against the exact value and
against the formula gan-bench used before issue 11 (and torch-fidelity's, with --torch-fidelity).

The case of issue 11: 2048-d features spanning 64 strong and 448 weak directions (variance ratio
3.6e7) of a random 512-d subspace; two independent samples of n each. "Exact" never forms S1 S2 or
a matrix square root: QR of the centred features, X - mean = Q R, so S = R^T R / (n - 1) and
tr((S1 S2)^(1/2)) = sum of singular values of R1 R2^T / sqrt((n1 - 1)(n2 - 1)).

    python scripts/fid_near_singular.py [--n 10000] [--scale 1 0.05] [--torch-fidelity]
"""

import argparse

import numpy as np

from gan_bench.metrics.fid import feature_stats, frechet_distance


def near_singular_pair(n: int, seed: int = 1, d: int = 2048):
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.normal(size=(d, 512)))[0]
    std = np.r_[np.full(64, np.sqrt(3500.0)), np.full(448, np.sqrt(3500.0) / 6000)]
    return [(rng.normal(size=(n, 512)) * std) @ q.T for _ in range(2)]


def exact_fid(x1, x2) -> float:
    r1, r2 = (np.linalg.qr(x - x.mean(0), mode="r") for x in (x1, x2))
    n1, n2 = len(x1), len(x2)
    tr_sqrt = np.linalg.svd(r1 @ r2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    diff = x1.mean(0) - x2.mean(0)
    return float(diff @ diff + (r1 ** 2).sum() / (n1 - 1) + (r2 ** 2).sum() / (n2 - 1) - 2 * tr_sqrt)


def pre_issue11_fid(mu1, s1, mu2, s2) -> float:
    """gan-bench before issue 11: eigenvalues of B^T S2 B (B B^T = S1 by eigh), both spectra cut at
    numpy's matrix_rank tolerance. The cut on the product's spectrum drops weak directions."""
    def cut(w):
        return np.where(w > np.abs(w).max() * len(w) * np.finfo(np.float64).eps, w, 0.0)
    w, v = np.linalg.eigh(s1)
    w = cut(w)
    b = v[:, w > 0] * np.sqrt(w[w > 0])
    m = b.T @ s2 @ b
    tr = np.sqrt(cut(np.linalg.eigvalsh(0.5 * (m + m.T)))).sum()
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * tr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--scale", type=float, nargs="+", default=[1.0, 0.05])
    ap.add_argument("--torch-fidelity", action="store_true", help="also torch-fidelity 0.4's formula (slow)")
    args = ap.parse_args()
    x1, x2 = near_singular_pair(args.n)
    for scale in args.scale:
        a, b = x1 * scale, x2 * scale
        (m1, s1), (m2, s2) = feature_stats(a), feature_stats(b)
        exact = exact_fid(a, b)
        rows = {"exact": exact, "gan-bench": frechet_distance(m1, s1, m2, s2),
                "pre-issue-11": pre_issue11_fid(m1, s1, m2, s2)}
        if args.torch_fidelity:
            from torch_fidelity.metric_fid import fid_statistics_to_metric
            rows["torch-fidelity"] = fid_statistics_to_metric({"mu": m1, "sigma": s1}, {"mu": m2, "sigma": s2},
                                                              False)["frechet_inception_distance"]
        print(f"n={args.n} scale={scale}: " + "  ".join(
            f"{k} {v:.6f}" + ("" if k == "exact" else f" (rel {(v - exact) / exact:+.1e})") for k, v in rows.items()))
        print(f"  identical sets: gan-bench {frechet_distance(m1, s1, m1, s1):.3e}  "
              f"pre-issue-11 {pre_issue11_fid(m1, s1, m1, s1):.6f}")


if __name__ == "__main__":
    main()
