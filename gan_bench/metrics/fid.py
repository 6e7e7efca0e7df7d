"""Frechet distance between two Gaussians fitted to features (FID; Heusel et al. 2017).

    FID = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

All math in float64. With any square-root factors B1 B1^T = S1 and B2 B2^T = S2,

    tr((S1 S2)^(1/2)) = sum of the singular values of B1^T B2

(the eigenvalues of S1 S2 are those of B1^T S2 B1 = (B1^T B2)(B1^T B2)^T). Singular values of the
factor product carry an absolute error of about eps * ||B1|| ||B2|| = eps * sqrt(||S1|| ||S2||):
weak directions keep their relative accuracy. Forming S1 S2 (or B1^T S2 B1) squares the condition
number instead: a direction whose square-root eigenvalue is below ~7e-7 of the largest drowns in
the rounding noise of the largest and has to be cut or guessed, which moves FID (issue 11: 836.896
for an exact 836.815, identical sets 0.087). No matrix square root, no complex intermediates, no
eps * I offset, and singular covariances (fewer samples than 2048 dimensions) need nothing special.

The factors come from a pivoted Cholesky decomposition (LAPACK dpstrf), which stops at the
numerical rank: eigenvalues of a covariance below its own rounding noise (~d * eps * its largest
diagonal) cannot be told from zero and would add sqrt(noise) per null direction if kept.
"""

import numpy as np
import scipy.linalg
import torch

# What the value is computed with; part of every FID fingerprint (the pre-issue-11 formula, the
# eigenvalues of B1^T S2 B1 under a cut-off, had none and gave other numbers).
METHOD = "trsqrt=nuclear-norm(B1'B2),B=pivoted-cholesky,float64"


def _sym(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return 0.5 * (a + a.T)


def sqrt_factor(sigma) -> np.ndarray:
    """B [d, r] with B B^T = sigma and r its numerical rank. Keep it for a fixed reference (it is
    one of the two decompositions of a FID); any square-root factor of sigma serves."""
    s = _sym(np.atleast_2d(sigma))
    if not np.isfinite(s).all():
        raise ValueError("covariance has non-finite entries")
    if not s.any():
        return np.zeros((len(s), 0))
    # tol < 0: LAPACK's default stop, d * eps * max diagonal (numpy's matrix_rank tolerance in kind).
    c, piv, rank, info = scipy.linalg.lapack.dpstrf(s, lower=1, tol=-1.0)
    if info < 0:
        raise ValueError(f"dpstrf: illegal argument {-info}")
    b = np.empty((len(s), rank))
    b[piv - 1] = np.tril(c)[:, :rank]  # P^T S P = L L^T, so S = (P L)(P L)^T
    return b


def trace_sqrt_product(b1, b2) -> float:
    """tr((S1 S2)^(1/2)) from square-root factors of S1 and S2."""
    m = np.asarray(b1, dtype=np.float64).T @ np.asarray(b2, dtype=np.float64)
    return float(np.linalg.svd(m, compute_uv=False).sum()) if m.size else 0.0


def frechet_distance(mu1, sigma1, mu2, sigma2, *, sqrt_factor1=None, sqrt_factor2=None) -> float:
    """sqrt_factor1/2: sqrt_factor(sigma1/2) if the caller has it (e.g. cached with the reference)."""
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1, s2 = _sym(np.atleast_2d(sigma1)), _sym(np.atleast_2d(sigma2))
    if not all(np.isfinite(a).all() for a in (mu1, mu2, s1, s2)):
        return float("nan")  # undefined, like the features it came from
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    b1 = sqrt_factor(s1) if sqrt_factor1 is None else sqrt_factor1
    b2 = sqrt_factor(s2) if sqrt_factor2 is None else sqrt_factor2
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(b1, b2))


def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (like np.cov) of [N, D] features, in float64."""
    x = torch.as_tensor(features).to(torch.float64)
    if x.dim() != 2 or len(x) < 2:
        raise ValueError(f"need [N >= 2, D] features for a covariance, got {tuple(x.shape)}")
    mu = x.mean(0)
    xc = x - mu
    sigma = xc.T @ xc / (len(x) - 1)
    return mu.cpu().numpy(), sigma.cpu().numpy()


def fid_from_features(fake, real_mu, real_sigma) -> float:
    mu, sigma = feature_stats(fake)
    return frechet_distance(mu, sigma, real_mu, real_sigma)
