"""Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial
kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets.

Protocol as in the reference implementation and StyleGAN2-ADA's kid50k_full: 100 subsets of
m = min(1000, n_fake, n_real) samples each (without replacement within a subset), estimate

    MMD^2_u = sum_{i!=j} k(x_i,x_j) / (m(m-1)) + sum_{i!=j} k(y_i,y_j) / (m(m-1)) - 2 sum_{i,j} k(x_i,y_j) / m^2

Values slightly below 0 are valid (the estimator is unbiased). Reported as is, not x1000.
"""

import numpy as np
import torch


def _kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a @ b.T / a.shape[1] + 1) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 between two equal-size samples [m, D] with the KID kernel."""
    m = len(x)
    kxx, kyy, kxy = _kernel(x, x), _kernel(y, y), _kernel(x, y)
    within = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * kxy.sum() / (m * m))


def kernel_inception_distance(fake, real, num_subsets: int = 100, max_subset_size: int = 1000,
                              seed: int = 0, device="cpu") -> float:
    x = torch.as_tensor(real).to(device, torch.float64)
    y = torch.as_tensor(fake).to(device, torch.float64)
    m = min(len(x), len(y), max_subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples on each side, got {len(x)} real, {len(y)} fake")
    # Subsets drawn by numpy from a fixed seed: the same subsets on every device and run.
    rng = np.random.RandomState(seed)
    vals = []
    for _ in range(num_subsets):
        ix = torch.from_numpy(rng.choice(len(x), m, replace=False)).to(x.device)
        iy = torch.from_numpy(rng.choice(len(y), m, replace=False)).to(y.device)
        vals.append(mmd2_unbiased(x[ix], y[iy]))
    return float(np.mean(vals))
