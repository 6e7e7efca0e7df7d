"""Data sets. Every dataset config instantiates to a `DataSet`; the trainer draws minibatches itself
(shuffled epochs from a seeded generator) so that the data order is part of the checkpoint."""

from dataclasses import dataclass, field

import torch


@dataclass
class DataSet:
    name: str
    kind: str                                # "toy" (float32 points) or "image" (uint8 NCHW)
    train: torch.Tensor                      # full training set on the CPU: toy [N, 2] or [N, 1] float32, image [N, C, H, W] uint8
    test: torch.Tensor | None = None         # held-out set in the same format
    labels: torch.Tensor | None = None       # int64 [N] class/mode labels where the data has them (Stacked MNIST)
    info: dict = field(default_factory=dict) # 2-D toy: means [M, 2] and std; 1-D toy: mixture1d {means, stds, weights};
                                             # image: resolution, channels, manifest

    @property
    def sample_shape(self) -> tuple:
        return tuple(self.train.shape[1:])


def hold_out(data: DataSet, fraction: float) -> DataSet:
    """Keep the last `fraction` of the training set out of training, as split `heldout<pct>`
    (e.g. heldout20) for metrics that score against unseen real data, as the (alpha_D, alpha_G)-GAN
    papers' code does with its 80/20 split. The tail is taken, not a random subset, so memory-mapped
    sets stay views with no copy."""
    if not fraction:
        return data
    n_out = int(round(len(data.train) * fraction))
    if not 0 < n_out < len(data.train):
        from gan_bench.errors import UserError
        raise UserError(f"eval.holdout={fraction} leaves no training or no held-out data: use a fraction in (0, 1)")
    keep = len(data.train) - n_out
    info = {**data.info, "heldout": {f"heldout{round(fraction * 100)}": data.train[keep:]}}
    labels = None if data.labels is None else data.labels[:keep]
    return DataSet(data.name, data.kind, data.train[:keep], data.test, labels, info)
