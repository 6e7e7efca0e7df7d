"""Precision, recall, density and coverage (Naeem et al., ICML 2020), k = 5 nearest neighbours.

With real features X (N) and fake features Y (M), r(x) = distance from a real x to its k-th
nearest other real, s(y) the same among fakes, and B(c, r) the open ball:

    precision = 1/M  sum_j  1[ exists i: y_j in B(x_i, r(x_i)) ]    (fakes on the real manifold)
    recall    = 1/N  sum_i  1[ exists j: x_i in B(y_j, s(y_j)) ]    (reals on the fake manifold)
    density   = 1/(kM) sum_j sum_i 1[ y_j in B(x_i, r(x_i)) ]      (how many real balls, can be > 1)
    coverage  = 1/N  sum_i  1[ min_j d(x_i, y_j) < r(x_i) ]         (real balls that hold a fake)

Strict inequalities as in the authors' code. Float64, in row chunks so 10k x 10k (the paper's
protocol) or 50k x 50k fit in memory.

Ties are exact. Every radius and every containment test is decided by one distance function of
the two points alone, `pure_sqdist` (elementwise IEEE operations in a fixed order): the same pair
gives the same bits wherever it appears, as a radius or a test, real or fake side, in any row,
chunk, set size or on any device. A fake equal to a real therefore lies exactly on, never inside,
the sphere of each ball whose k-th neighbour it copies, and identical sets (in any order) score
1 on all four. The fast matrix-product distances |a|^2 + |b|^2 - 2 a.b depend on where a pair sits
in the product; reading radii and tests from different products broke exact ties at the last bit
(density 1.0014 for real = fake before issue 11). Here they only settle the pairs farther than
their error bound from a decision; `pure_sqdist` decides the rest. Exact duplicate rows are
counted once with their multiplicity, so a collapsed generator costs no more than a varied one.
"""

import torch

# Part of every PRDC fingerprint: how distances and ties are decided (changed in issue 11).
METHOD = "decided-by-pure-sqdist(pairwise-tree),gemm-screened,float64"


def pure_sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distances of the row pairs (a_p, b_p), [P, D] -> [P]. Elementwise operations only,
    summed in a fixed pairwise tree (zero-padded to a power of 2): a function of the two rows alone."""
    v = a - b
    v = v * v
    width = 1 << max(v.shape[1] - 1, 0).bit_length()
    v = torch.nn.functional.pad(v, (0, width - v.shape[1]))
    while v.shape[1] > 1:
        half = v.shape[1] // 2
        v = v[:, :half] + v[:, half:]
    return v[:, 0]


def _pure_at(q, b, mask: torch.Tensor) -> tuple:
    """pure_sqdist of the pairs (q_i, b_j) where mask[i, j], in pieces of bounded memory."""
    rows, cols = mask.nonzero(as_tuple=True)
    step = max(1, (1 << 24) // max(q.shape[1], 1))
    vals = [pure_sqdist(q[rows[s:s + step]], b[cols[s:s + step]]) for s in range(0, len(rows), step)]
    return rows, cols, torch.cat(vals) if vals else q.new_zeros(0)


def _gemm_sqdist(q, q_sq, b, b_sq):
    return (q_sq[:, None] + b_sq[None, :] - 2.0 * (q @ b.T)).clamp_min_(0.0)


def _tol(q_sq: torch.Tensor, b_sq: torch.Tensor, d: int) -> torch.Tensor:
    """Per query row, a bound on |_gemm_sqdist - pure_sqdist|: each is within (2d + O(log d)) eps
    (|q|^2 + |b|^2) of the exact value for any summation order; a factor 2 to spare."""
    return 4 * (d + 16) * torch.finfo(torch.float64).eps * (q_sq + b_sq.max())


def _kth(vals: torch.Tensor, w: torch.Tensor, kk: int) -> torch.Tensor:
    """Per row, the kk-th smallest value when column j counts w[j] times."""
    if bool((w == 1).all()):
        return vals.kthvalue(kk, dim=1).values
    s, idx = vals.sort(dim=1)
    pos = (w[idx].cumsum(1) < kk).sum(1, keepdim=True)
    return s.gather(1, pos)[:, 0]


def _balls(x, wx, other, k: int, chunk: int):
    """Ball centres x (unique rows, multiplicities wx; radius: the k-th nearest other centre) in
    chunks: yields (containment [c, len(other)]: other_j strictly inside B(x_i), wx of the chunk)."""
    # Centred on one point per call (same bits for equal rows): smaller norms, a tighter bound.
    m = x.mean(0)
    xc, oc = x - m, other - m
    d, x_sq, o_sq = x.shape[1], (xc * xc).sum(1), (oc * oc).sum(1)
    for i in range(0, len(x), chunk):
        q, q_sq = xc[i:i + chunk], x_sq[i:i + chunk]
        # Radius: the (k+1)-th smallest pure distance of the row (the 1st is x_i itself). Every
        # candidate is within 2 tol of the matrix-product (k+1)-th value; the others lie beyond it.
        g, tol = _gemm_sqdist(q, q_sq, xc, x_sq), _tol(q_sq, x_sq, d)[:, None]
        rows, cols, p = _pure_at(q, xc, g <= _kth(g, wx, k + 1)[:, None] + 2 * tol)
        pure = torch.full_like(g, float("inf"))
        pure[rows, cols] = p
        r_sq = _kth(pure, wx, k + 1)[:, None]
        # Tests: the matrix product settles a pair unless it is within its error bound of the
        # radius. Nothing is strictly inside a ball of radius 0.
        h, tol = _gemm_sqdist(q, q_sq, oc, o_sq), _tol(q_sq, o_sq, d)[:, None]
        inside = h < r_sq
        rows, cols, p = _pure_at(q, oc, ((h - r_sq).abs() <= tol) & (r_sq > 0))
        inside[rows, cols] = p < r_sq[rows, 0]
        yield inside, wx[i:i + chunk]


def prdc(fake, real, k: int = 5, chunk: int = 1024, device="cpu") -> dict:
    x = torch.as_tensor(real).to(device, torch.float64)
    y = torch.as_tensor(fake).to(device, torch.float64)
    for name, z in (("real", x), ("fake", y)):
        if len(z) <= k:
            raise ValueError(f"need more than k={k} {name} samples for k-NN radii, got {len(z)}")
    (ux, wx), (uy, wy) = (torch.unique(z, dim=0, return_counts=True) for z in (x, y))
    wx, wy = wx.double(), wy.double()
    fake_in_real_ball = torch.zeros(len(uy), dtype=torch.bool, device=x.device)
    containments = covered = 0.0
    for inside, w in _balls(ux, wx, uy, k, chunk):     # real balls, tested with the fakes
        fake_in_real_ball |= inside.any(0)
        containments += float(w @ (inside.double() @ wy))
        covered += float(w @ inside.any(1).double())   # min_j d(x_i, y_j) < r(x_i)
    real_in_fake_ball = torch.zeros(len(ux), dtype=torch.bool, device=x.device)
    for inside, _ in _balls(uy, wy, ux, k, chunk):     # fake balls, tested with the reals
        real_in_fake_ball |= inside.any(0)
    return {
        "precision": float(wy @ fake_in_real_ball.double()) / len(y),
        "recall": float(wx @ real_in_fake_ball.double()) / len(x),
        "density": containments / (k * len(y)),
        "coverage": covered / len(x),
    }
