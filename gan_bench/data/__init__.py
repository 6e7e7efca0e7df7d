"""Data sets. Every dataset config instantiates to a `DataSet`; the trainer draws minibatches itself
(shuffled epochs from a seeded generator) so that the data order is part of the checkpoint."""

from dataclasses import dataclass, field

import torch


@dataclass
class DataSet:
    name: str
    kind: str                                # "toy" (float32 points) or "image" (uint8 NCHW)
    train: torch.Tensor                      # full training set on the CPU: toy [N, 2] float32, image [N, C, H, W] uint8
    test: torch.Tensor | None = None         # held-out set in the same format
    labels: torch.Tensor | None = None       # int64 [N] class/mode labels where the data has them (Stacked MNIST)
    info: dict = field(default_factory=dict) # toy: means [M, 2] and std; image: resolution, channels, manifest

    @property
    def sample_shape(self) -> tuple:
        return tuple(self.train.shape[1:])
