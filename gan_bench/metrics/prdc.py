"""Precision, recall, density and coverage (Naeem et al., ICML 2020), k = 5 nearest neighbours.

With real features X (N) and fake features Y (M), r(x) = distance from a real x to its k-th
nearest other real, s(y) the same among fakes, and B(c, r) the open ball:

    precision = 1/M  sum_j  1[ exists i: y_j in B(x_i, r(x_i)) ]    (fakes on the real manifold)
    recall    = 1/N  sum_i  1[ exists j: x_i in B(y_j, s(y_j)) ]    (reals on the fake manifold)
    density   = 1/(kM) sum_j sum_i 1[ y_j in B(x_i, r(x_i)) ]      (how many real balls, can be > 1)
    coverage  = 1/N  sum_i  1[ min_j d(x_i, y_j) < r(x_i) ]         (real balls that hold a fake)

Strict inequalities as in the authors' code. Distances in float64, computed in row chunks so
10k x 10k (the paper's protocol) or 50k x 50k fit in memory.
"""

import torch


def knn_radii(x: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row (the row itself is the 1st)."""
    if len(x) <= k:
        raise ValueError(f"need more than k={k} samples for k-NN radii, got {len(x)}")
    return torch.cat([torch.cdist(c, x).kthvalue(k + 1, dim=1).values for c in x.split(chunk)])


def prdc(fake, real, k: int = 5, chunk: int = 1024, device="cpu") -> dict:
    x = torch.as_tensor(real).to(device, torch.float64)
    y = torch.as_tensor(fake).to(device, torch.float64)
    r_real, r_fake = knn_radii(x, k, chunk), knn_radii(y, k, chunk)

    in_real_ball = in_real_ball_total = 0
    real_covered_by_fake_ball = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    nearest_fake = torch.full((len(x),), float("inf"), dtype=torch.float64, device=x.device)
    for yc, sc in zip(y.split(chunk), r_fake.split(chunk)):
        d = torch.cdist(yc, x)                                  # [c, N] fake-to-real distances
        inside = d < r_real[None, :]
        in_real_ball += int(inside.any(1).sum())
        in_real_ball_total += int(inside.sum())
        real_covered_by_fake_ball |= (d < sc[:, None]).any(0)
        nearest_fake = torch.minimum(nearest_fake, d.min(0).values)
    return {
        "precision": in_real_ball / len(y),
        "recall": float(real_covered_by_fake_ball.double().mean()),
        "density": in_real_ball_total / (k * len(y)),
        "coverage": float((nearest_fake < r_real).double().mean()),
    }
