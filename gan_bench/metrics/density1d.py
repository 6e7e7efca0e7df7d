"""Divergences between a known 1-D Gaussian mixture p (the data) and a generator's samples.

The model density q is a Gaussian kernel density estimate (KDE) of the N finite samples, q = sum
over the data's modes k of (n_k / N) KDE_k, where the n_k samples nearest mode k (its cell) get a
bandwidth of their own, Silverman's rule of thumb on them, h_k = 0.9 min(sd, IQR / 1.34) n_k^(-1/5),
never below H_FLOOR times the data's narrowest std; atoms (a value repeated ATOM times and in 1% of
the samples) are kernels of that floor width. A collapsed generator so still has a density, a spike.
Each cell's samples are rounded to steps of BIN * h_k: the KDE is a sum over the occupied grid
points, exact in log space (logsumexp), so q far from every sample is a large negative log, never 0,
and the cost follows the occupied points (hundreds for a sample that fits), not N.

    E_p terms  quadrature: each component k of p on mean_k +- QUAD_SPAN std_k, trapezoid with step
               min(std_k / 10, h / 2) (at least std_k / 50), weights w_k N(t; mean_k, std_k) dt
    E_q terms  Monte Carlo over the (rounded) samples, log q from the KDE of all of them (its own
               kernel included, so an isolated sample still has a finite log q)

    kl_data_model  KL(p || q) = E_p[log p - log q]          (mode dropping: q ~ 0 where p is not)
    kl_model_data  KL(q || p) = E_q[log q - log p]          (bad samples: p ~ 0 where q is not)
    js             Jensen-Shannon, natural log, in [0, log 2] with m = (p + q) / 2
    d_ns           Shannon et al.'s softened reverse KL: 2 KL(m || p) = E_p[log m/p] + E_q[log m/p]
    w1             Wasserstein-1 between the empirical distribution of the samples and p itself
                   (not the KDE): integral of |F_n - F_p| with F_p exact, piece by piece between
                   sorted samples through the antiderivative of F_p (w1_to_mixture)
    mode_mass_<i>  fraction of all samples nearest (by distance to the mean) to component i
    modes_dropped  components whose mass is below DROPPED_BELOW of their true weight
    nonfinite      fraction of samples that were NaN or inf: they are dropped from every other
                   number except mode_mass (where they count in the total, so the masses sum to
                   1 - nonfinite); with no finite sample the divergences and w1 are NaN

No estimate is clipped: KL(q || p) can come out slightly below 0 for q ~ p (Monte Carlo noise).
One bandwidth per cell is the KDE's limit: a cell whose samples mix scales, most in a narrow spike
beside wide stragglers, gets the stragglers' width, and js, d_ns, kl_data_model read too low
(js even below 0); kl_model_data still reads large, and w1 and the mode masses use no KDE.
"""

import math

import numpy as np
from scipy.special import ndtr

# What the numbers are computed with: part of every 1-D metric's fingerprint.
FINGERPRINT = ("density1d:v1:kde=silverman0.9-per-mode,floor=1e-3std,atoms=10&1%,bins=h/5"
               ":quad=10std,std/10,h/2,std/50:w1=cdf-exact:dropped<0.1w")
DROPPED_BELOW = 0.1  # a mode is dropped when it holds less than this fraction of its true weight
BIN = 0.2            # sample rounding step, in bandwidths: widens the kernel by 0.2^2/12 = 0.3% in variance
H_FLOOR = 1e-3       # smallest bandwidth, in the data's smallest std
ATOM = 10            # a value repeated this often (and 1% of the samples) is an atom: float32 ties
                     # of continuous outputs come in twos and threes at 10,000 samples
QUAD_SPAN = 10.0     # each component integrated over mean +- 10 std (outside: mass < 2e-23)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_CHUNK = 1 << 20     # kernel matrix entries per block (8 MiB of float64)


def density_metrics(samples, means, stds, weights) -> dict:
    """Every 1-D metric of `samples` ([N] or [N, 1], numpy or CPU tensor) against the mixture
    sum_k weights[k] N(means[k], stds[k]^2)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"1-D samples must have shape [N] or [N, 1], got {list(x.shape)}")
    mu, sd, w = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (means, stds, weights))
    finite = x[np.isfinite(x)]
    out = {"kl_data_model": math.nan, "kl_model_data": math.nan, "js": math.nan, "d_ns": math.nan,
           "w1": math.nan}
    if len(finite):
        out.update(kde_divergences(finite, mu, sd, w))
        out["w1"] = w1_to_mixture(finite, mu, sd, w)
    out.update(mode_masses(finite, len(x), mu, w))
    out["nonfinite"] = (len(x) - len(finite)) / len(x) if len(x) else 0.0
    return out


def log_mixture(x: np.ndarray, mu: np.ndarray, sd: np.ndarray, w: np.ndarray) -> np.ndarray:
    z = (x[:, None] - mu) / sd
    return _logsumexp(np.log(w) - np.log(sd) - _LOG_SQRT_2PI - 0.5 * z * z)


def bandwidth(x: np.ndarray, floor: float) -> float:
    """Silverman's rule of thumb (Density Estimation, 1986, eq. 3.31), at least `floor`."""
    n = len(x)
    if n < 2:
        return floor
    s = float(x.std(ddof=1))
    q75, q25 = np.percentile(x, [75, 25])
    # IQR 0: more than half the samples on one point, an atom (a collapsed generator, or dead ReLUs
    # mapping a region of latents to one output). The floor keeps it a spike; the sd would be the
    # spread of the rest and smooth the atom away.
    scale = min(s, (q75 - q25) / 1.34)
    return max(0.9 * scale * n ** -0.2, floor)


def kde_divergences(x: np.ndarray, mu, sd, w) -> dict:
    """The four divergences between p and the KDE q of the finite samples x."""
    centres, counts, hs = kde_bins(x, mu, H_FLOOR * float(sd.min()))
    nodes, wp = quadrature(mu, sd, w, float(hs.min()))
    log_q = log_kde(np.concatenate([nodes, centres]), centres, counts, hs)
    return divergences(log_mixture(nodes, mu, sd, w), log_q[:len(nodes)], wp,
                       log_mixture(centres, mu, sd, w), log_q[len(nodes):], counts / len(x))


def kde_bins(x: np.ndarray, mu, floor: float):
    """The KDE as (centres, counts, bandwidths). The samples nearest each data mode get Silverman's
    bandwidth of their own, and are rounded to steps of BIN times it. Atoms, values that repeat
    exactly (dead ReLUs map a region of latents to one output), are kernels of the floor width,
    apart from the rest of their mode's samples.

    One bandwidth for all would come from the spread between modes: for a perfect fit of
    mixture1d it blurs each mode, and KL(p || q) reads 0.009 where per mode it reads 0.002
    (scripts/density1d_error.py).
    An atom inside the rest would make the IQR 0 (a floor-wide kernel for every sample: slow and
    spiky) or be smeared to the others' width."""
    cell = np.abs(x[:, None] - mu).argmin(1) if len(mu) > 1 else np.zeros(len(x), dtype=int)
    values, repeats = np.unique(x, return_counts=True)
    atoms = values[repeats >= max(ATOM, ATOM * len(x) / 1000)]
    parts = [(atoms, repeats[np.isin(values, atoms)], np.full(len(atoms), floor))]
    spread = ~np.isin(x, atoms)
    for k in np.unique(cell[spread]):
        xk = x[spread & (cell == k)]
        h = bandwidth(xk, floor)
        steps, counts = np.unique(np.round(xk / (BIN * h)), return_counts=True)
        parts.append((steps * (BIN * h), counts, np.full(len(steps), h)))
    return tuple(np.concatenate(a) for a in zip(*parts))


def log_kde(points: np.ndarray, centres: np.ndarray, counts: np.ndarray, hs: np.ndarray) -> np.ndarray:
    """log of (1 / N) sum_j counts_j N(points; centres_j, hs_j^2), in blocks of rows."""
    log_c = np.log(counts / hs)
    scale = -0.5 / (hs * hs)
    out = np.empty(len(points))
    rows = max(1, _CHUNK // len(centres))
    for s in range(0, len(points), rows):
        # In place on one block: this is the metric's hot loop (most of its time).
        a = points[s:s + rows, None] - centres
        a *= a
        a *= scale
        a += log_c
        out[s:s + rows] = _logsumexp(a, overwrite=True)
    return out - math.log(counts.sum()) - _LOG_SQRT_2PI


def quadrature(mu, sd, w, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights with sum_j wp_j f(t_j) ~ E_p[f]: a trapezoid per component, fine enough
    for p (std / 10) and for the KDE's kernels (h / 2), but no finer than std / 50 (1001 points per
    component): kernels narrower than that are spikes of a collapsed generator, whose peaks the
    nodes may miss while log q between them, a parabola of huge negative values, dominates."""
    nodes, weights = [], []
    for m, s, wk in zip(mu, sd, w):
        step = max(min(s / 10, h / 2), s / 50)
        u = np.linspace(-QUAD_SPAN, QUAD_SPAN, 2 * math.ceil(QUAD_SPAN * s / step) + 1)
        pw = np.exp(-0.5 * u * u)
        pw[[0, -1]] *= 0.5  # trapezoid ends
        nodes.append(m + s * u)
        weights.append(wk * pw / pw.sum())  # the rule alone is right to ~1e-15; normalized, E_p[1] = 1
    return np.concatenate(nodes), np.concatenate(weights)


def divergences(lp_p, lq_p, wp, lp_q, lq_q, wq) -> dict:
    """The divergences from log p and log q at p's quadrature nodes (weights wp, summing to 1) and
    at q's points (weights wq, summing to 1): the formulas alone, whatever estimates q."""
    log2 = math.log(2.0)
    lm_p = np.logaddexp(lp_p, lq_p) - log2
    lm_q = np.logaddexp(lp_q, lq_q) - log2
    return {
        "kl_data_model": float(wp @ (lp_p - lq_p)),
        "kl_model_data": float(wq @ (lq_q - lp_q)),
        "js": float(0.5 * (wp @ (lp_p - lm_p)) + 0.5 * (wq @ (lq_q - lm_q))),
        "d_ns": float(wp @ (lm_p - lp_p) + wq @ (lm_q - lp_q)),
    }


def mode_masses(finite: np.ndarray, n_total: int, mu, w) -> dict:
    nearest = np.abs(finite[:, None] - mu).argmin(1)
    mass = np.bincount(nearest, minlength=len(mu)) / max(n_total, 1)
    out = {f"mode_mass_{i}": float(m) for i, m in enumerate(mass)}
    out["modes_dropped"] = int((mass < DROPPED_BELOW * w).sum())
    return out


def w1_to_mixture(x: np.ndarray, mu, sd, w) -> float:
    """W1 = integral of |F_n - F_p| over the line, F_n the samples' empirical CDF. Between two
    sorted samples a < b F_n is a constant c, and integral_a^b (c - F_p) = c (b - a) - (G(b) - G(a))
    with G the antiderivative of F_p (closed form); where F_p crosses c inside (a, b) the piece is
    split at the crossing, found by safeguarded Newton."""
    x = np.sort(x)
    n = len(x)
    cdf, g = _cdf(x, mu, sd, w), _cdf_integral(x, mu, sd, w)
    a, b, c = x[:-1], x[1:], np.arange(1, n) / n
    piece = np.abs(c * (b - a) - (g[1:] - g[:-1]))  # right where F_p stays on one side of c
    cross = (cdf[:-1] < c) & (c < cdf[1:])
    if cross.any():
        xa, xb, cc, ga, gb = a[cross], b[cross], c[cross], g[:-1][cross], g[1:][cross]
        xs = _cdf_root(cc, xa, xb, cdf[:-1][cross], cdf[1:][cross], mu, sd, w)
        gs = _cdf_integral(xs, mu, sd, w)
        piece[cross] = (cc * (xs - xa) - (gs - ga)) + ((gb - gs) - cc * (xb - xs))
    # Left of the first sample F_n = 0: integral of F_p is G(x_1). Right of the last, 1 - F_p.
    return float(g[0] + piece.sum() + _survival_integral(x[-1:], mu, sd, w)[0])


def _cdf(x, mu, sd, w):
    return ndtr((x[:, None] - mu) / sd) @ w


def _pdf(x, mu, sd, w):
    z = (x[:, None] - mu) / sd
    return (np.exp(-0.5 * z * z) / (sd * math.sqrt(2 * math.pi))) @ w


def _cdf_integral(x, mu, sd, w):
    """G(x) = integral_-inf^x F_p = sum_k w_k sd_k (z Phi(z) + phi(z)), z = (x - mu_k) / sd_k."""
    z = (x[:, None] - mu) / sd
    return (sd * (z * ndtr(z) + np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))) @ w


def _survival_integral(x, mu, sd, w):
    """integral_x^inf (1 - F_p) = sum_k w_k sd_k (phi(z) - z Phi(-z))."""
    z = (x[:, None] - mu) / sd
    return (sd * (np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) - z * ndtr(-z))) @ w


def _cdf_root(c, lo, hi, f_lo, f_hi, mu, sd, w, iters: int = 60):
    """x in (lo, hi) with F_p(x) = c, given F_p(lo) < c < F_p(hi): Newton steps, bisection where
    a step leaves the bracket."""
    x = lo + (c - f_lo) / (f_hi - f_lo) * (hi - lo)  # the secant: right to O((hi - lo)^2) already
    for _ in range(iters):
        f = _cdf(x, mu, sd, w) - c
        lo, hi = np.where(f < 0, x, lo), np.where(f > 0, x, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = x - f / _pdf(x, mu, sd, w)
        inside = (step > lo) & (step < hi)
        x = np.where(inside, step, 0.5 * (lo + hi))
        if np.all((np.abs(f) < 1e-15) | (hi - lo <= 1e-15 * (1 + np.abs(x)))):
            break
    return x


def _logsumexp(a: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """Row-wise log sum exp (scipy's, without its checks and copies: this runs on every block)."""
    top = a.max(1)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.subtract(a, top[:, None], out=a if overwrite else None)
    return top + np.log(np.exp(e, out=e).sum(1))
