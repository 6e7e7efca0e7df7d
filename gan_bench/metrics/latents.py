"""The test latents evaluations draw: fixed by eval.latent_seed, untouched by training's streams."""

import torch


def fixed_latents(n: int, z_dim: int, seed: int) -> torch.Tensor:
    """The same test latents for every run and every evaluation."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
