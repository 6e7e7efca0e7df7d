"""Frechet distance between two Gaussians fitted to features (FID; Heusel et al. 2017).

    FID = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

All math in float64. The trace of the matrix square root is computed in the symmetric form
tr((S1^(1/2) S2 S1^(1/2))^(1/2)), which has the same eigenvalues as S1 S2 but is symmetric
positive semi-definite, so `eigh` applies: there are no complex intermediate results whose
"tiny imaginary part" must be dropped, and no failure when a covariance is singular (fewer
samples than the 2048 feature dimensions), where scipy.linalg.sqrtm(S1 @ S2) needs the
eps * I offset retry of the reference implementations (which shifts the value slightly).
"""

import numpy as np
import torch


def _sym(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return 0.5 * (a + a.T)


def _noise_free(w: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with the rounding noise set to 0. Zero eigenvalues come out as
    +-1e-15 and sqrt would turn each into 3e-8: with 2000 of them (n < d) FID moves in the 5th
    digit. The cut is numpy's matrix_rank tolerance, max|w| * d * eps."""
    tol = float(np.abs(w).max(initial=0.0)) * len(w) * np.finfo(np.float64).eps
    return np.where(w > tol, w, 0.0)


def sqrt_factor(sigma) -> np.ndarray:
    """B [d, r] with B B^T = sigma and r = rank(sigma): sigma^(1/2) = B U^T for the eigenvectors U
    of the nonzero eigenvalues. Keep it for a fixed reference: it is the eigh half of the work."""
    w, v = np.linalg.eigh(_sym(sigma))
    w = _noise_free(w)
    keep = w > 0
    return v[:, keep] * np.sqrt(w[keep])


def frechet_distance(mu1, sigma1, mu2, sigma2, *, sqrt_factor1=None) -> float:
    """sqrt_factor1: sqrt_factor(sigma1) if the caller has it (e.g. cached with the reference)."""
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1, s2 = _sym(np.atleast_2d(sigma1)), _sym(np.atleast_2d(sigma2))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    b = sqrt_factor(s1) if sqrt_factor1 is None else np.asarray(sqrt_factor1, dtype=np.float64)
    # With S1^(1/2) = B U^T, S1^(1/2) S2 S1^(1/2) = U (B^T S2 B) U^T: same nonzero eigenvalues as the
    # r x r matrix B^T S2 B, so a rank-deficient reference costs O(d^2 r), not O(d^3).
    tr_covmean = np.sqrt(_noise_free(np.linalg.eigvalsh(_sym(b.T @ s2 @ b)))).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


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
