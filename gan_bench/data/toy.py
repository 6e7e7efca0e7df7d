"""2-D Gaussian mixtures: the ring and the grid. Train and test sets are drawn once from the
dataset seed, so every training seed sees the same data (ISIT'23 protocol: 50k train / 25k test)."""

import math

import torch

from gan_bench.data import DataSet


def mixture(name: str, means: torch.Tensor, std: float, n_train: int, n_test: int, seed: int) -> DataSet:
    g = torch.Generator().manual_seed(seed)

    def draw(n):
        # Equal mixture weights: each point picks a mode uniformly, then adds isotropic noise.
        idx = torch.randint(len(means), (n,), generator=g)
        return means[idx] + std * torch.randn(n, 2, generator=g)

    return DataSet(name=name, kind="toy", train=draw(n_train), test=draw(n_test),
                   info={"means": means, "std": float(std)})


def ring(n_modes: int = 8, radius: float = 1.0, std: float = 0.01,
         n_train: int = 50000, n_test: int = 25000, seed: int = 0) -> DataSet:
    angles = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    means = (radius * torch.stack([angles.cos(), angles.sin()], 1)).float()
    return mixture("ring", means, std, n_train, n_test, seed)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05,
         n_train: int = 50000, n_test: int = 25000, seed: int = 0) -> DataSet:
    # Centred at the origin: side 5, spacing 2 gives coordinates -4, -2, 0, 2, 4.
    coords = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    means = torch.cartesian_prod(coords, coords)
    return mixture("grid", means, std, n_train, n_test, seed)
