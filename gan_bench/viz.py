"""Small pictures for TensorBoard and samples/: a scatter of toy samples over the mode means,
drawn with PIL (no plotting library on the training path)."""

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


def save_png(hwc_uint8: np.ndarray, path) -> None:
    Image.fromarray(hwc_uint8).save(path)


def image_grid(u8: torch.Tensor, padding: int = 2) -> np.ndarray:
    """HWC uint8 picture of uint8 images [n, C, H, W] (C = 1 or 3): about square, white padding."""
    from torchvision.utils import make_grid

    g = make_grid(u8.cpu(), nrow=max(1, int(len(u8) ** 0.5)), padding=padding, pad_value=255)
    g = g if g.shape[0] == 3 else g.expand(3, -1, -1)
    return g.permute(1, 2, 0).contiguous().numpy()
