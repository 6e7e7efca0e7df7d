"""Mode metrics for 2-D Gaussian mixtures (ISIT'23 protocol).

Each sample is assigned to its nearest mode mean. A sample is high quality when it lies within
3 std of that mean; a mode is covered when at least one high-quality sample is assigned to it.
The divergences compare the histogram of nearest-mode assignments of *all* samples (+1 smoothing,
so empty modes stay finite) with the uniform mixture weights: they measure how mass is spread over
modes, while `hq` measures how much of it is on a mode at all.
"""

import torch

FINGERPRINT = "toy-modes:v1:nearest-mean:covered=1hq:hq=3std:hist=all+1"


def mode_metrics(samples: torch.Tensor, means: torch.Tensor, std: float, n_std: float = 3.0) -> dict:
    samples = samples.detach().to(torch.float64)
    means = means.to(samples.device, torch.float64)
    m = len(means)
    finite = torch.isfinite(samples).all(1)
    dist = torch.cdist(samples[finite], means)                      # [N, M]
    nearest_d, nearest = dist.min(1)
    hq = nearest_d <= n_std * std
    covered = torch.zeros(m, dtype=torch.bool, device=samples.device)
    covered[nearest[hq]] = True
    n_cov = int(covered.sum())

    # Non-finite samples count against quality but have no mode to go to.
    counts = torch.bincount(nearest, minlength=m).to(torch.float64)
    p = (counts + 1) / (counts.sum() + m)
    u = 1.0 / m
    mix = 0.5 * (p + u)
    kl = float((p * (p / u).log()).sum())
    rkl = float((u * (u / p).log()).sum())
    js = float(0.5 * (p * (p / mix).log()).sum() + 0.5 * (u * (u / mix).log()).sum())
    tv = float(0.5 * (p - u).abs().sum())
    return {
        "modes": n_cov,
        "success": float(n_cov == m),
        "failure": float(n_cov == 0),
        "hq": float(hq.sum()) / max(len(samples), 1),
        "kl": kl, "rkl": rkl, "js": js, "tv": tv,
    }

