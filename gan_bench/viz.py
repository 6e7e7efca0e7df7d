"""Small pictures for TensorBoard and samples/: a scatter of 2-D toy samples over the mode means,
a histogram of 1-D samples over the data density, drawn with PIL (no plotting library on the
training path)."""

import math

import numpy as np
import torch
from PIL import Image, ImageDraw


def scatter(samples: torch.Tensor, means: torch.Tensor, std: float, size: int = 384,
            max_points: int = 5000) -> np.ndarray:
    """HWC uint8 image: grey points = samples, red circles = 3 std around each mode mean."""
    pts = samples[:max_points].detach().float().cpu()
    pts = pts[torch.isfinite(pts).all(1)]
    mu = means.float().cpu()
    half = float(mu.abs().max()) * 1.5 + 6 * std  # fixed frame from the data, not the samples
    to_px = lambda xy: ((xy + half) / (2 * half) * (size - 1))
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    for x, y in to_px(pts).tolist():
        y = size - 1 - y
        if 0 <= x < size and 0 <= y < size:
            draw.point((x, y), fill=(40, 40, 40))
    r = max(3 * std / (2 * half) * (size - 1), 2.0)
    for x, y in to_px(mu).tolist():
        y = size - 1 - y
        draw.ellipse((x - r, y - r, x + r, y + r), outline=(220, 30, 30))
    return np.asarray(img)


def histogram1d(samples: torch.Tensor, means, stds, weights, metrics: dict | None = None,
                size: tuple[int, int] = (384, 256), bins: int = 96) -> np.ndarray:
    """HWC uint8 image: grey bars = histogram of the samples (as a density over all of them), red
    curve = the data's mixture density; over each mode its true weight (w=) and, given the metrics,
    the samples' mass there (m=, mode_mass_<i>). The frame is fixed by the data: mode means +- 4 std."""
    w_px, h_px = size
    x = samples.detach().double().cpu().reshape(-1)
    n = len(x)
    x = x[torch.isfinite(x)]
    lo = min(m - 4 * s for m, s in zip(means, stds))
    hi = max(m + 4 * s for m, s in zip(means, stds))
    grid = np.linspace(lo, hi, w_px)
    dens = sum(w * np.exp(-0.5 * ((grid - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
               for m, s, w in zip(means, stds, weights))
    top = 1.25 * float(dens.max())  # bars taller than the frame are cut: the curve stays readable
    to_y = lambda d: (h_px - 1) - np.minimum(d / top, 1.0) * (h_px - 16)  # 16 px of room for labels
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    counts = torch.histc(x, bins=bins, min=lo, max=hi).numpy() if len(x) else np.zeros(bins)
    bar = (hi - lo) / bins
    for b, c in enumerate(counts):
        if c:
            x0, x1 = b * (w_px - 1) / bins, (b + 1) * (w_px - 1) / bins
            draw.rectangle((x0, float(to_y(c / (n * bar))), x1, h_px - 1), fill=(170, 170, 170))
    draw.line(list(zip(range(w_px), to_y(dens).tolist())), fill=(220, 30, 30), width=2)
    for i, (m, w) in enumerate(zip(means, weights)):
        px = (m - lo) / (hi - lo) * (w_px - 1)
        got = f" m={metrics[f'mode_mass_{i}']:.2f}" if metrics and f"mode_mass_{i}" in metrics else ""
        draw.text((px - 30, 2), f"w={w:.2f}{got}", fill=(0, 0, 0))
    return np.asarray(img)


def save_png(hwc_uint8: np.ndarray, path) -> None:
    Image.fromarray(hwc_uint8).save(path)


def image_grid(u8: torch.Tensor, padding: int = 2) -> np.ndarray:
    """HWC uint8 picture of uint8 images [n, C, H, W] (C = 1 or 3): about square, white padding."""
    from torchvision.utils import make_grid

    g = make_grid(u8.cpu(), nrow=max(1, int(len(u8) ** 0.5)), padding=padding, pad_value=255)
    g = g if g.shape[0] == 3 else g.expand(3, -1, -1)
    return g.permute(1, 2, 0).contiguous().numpy()
