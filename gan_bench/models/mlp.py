"""MLP generator/discriminator for toy data. Defaults match the ISIT'23 ring networks; weights keep
PyTorch's default nn.Linear init, as the paper does."""

from collections.abc import Sequence

import torch
from torch import nn

from gan_bench.errors import UserError

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": lambda: nn.Tanh(),
    "elu": lambda: nn.ELU(),
}


class MLP(nn.Sequential):
    """in_dim -> depth x [Linear(width) + activation] -> Linear(out_dim).

    out_dim == 1 (a discriminator) returns logits of shape [B] rather than [B, 1]. out_dim given as
    a one-element list [n] is n outputs never squeezed: a generator of 1-D points ([1]) returns
    [B, 1], the data's shape (conf/model/mlp.yaml passes the 1-D sets' dataset.shape).
    """

    def __init__(self, in_dim: int, out_dim, width: int = 400, depth: int = 4,
                 activation: str = "relu"):
        squeeze = not isinstance(out_dim, Sequence)
        if not squeeze:
            if len(out_dim) != 1:
                raise UserError(f"MLP out_dim must be a number or a one-element list like [1], got {list(out_dim)}")
            out_dim = out_dim[0]
        if activation not in ACTIVATIONS:
            raise UserError(f"unknown activation '{activation}': use one of {', '.join(ACTIVATIONS)}")
        if width <= 0 or depth < 0:
            raise UserError(f"MLP width must be > 0 and depth >= 0, got width={width}, depth={depth}")
        layers, d = [], in_dim
        for _ in range(depth):
            layers += [nn.Linear(d, width), ACTIVATIONS[activation]()]
            d = width
        layers.append(nn.Linear(d, out_dim))
        super().__init__(*layers)
        self.squeeze_out = squeeze and out_dim == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y.squeeze(-1) if self.squeeze_out else y
