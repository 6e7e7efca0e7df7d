"""Toy Gaussian mixtures: the 2-D ring and grid, and the 1-D gauss1d and mixture1d. Train and test
sets are drawn once from the dataset seed, so every training seed sees the same data (ISIT'23
protocol: 50k train / 25k test)."""

import math

import torch

from gan_bench.data import DataSet
from gan_bench.errors import UserError


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


# 1-D sets: Gaussian mixtures on a line, with unequal widths and weights allowed. The mixture is
# kept in `info["mixture1d"]` (plain float lists) so the evaluator knows the exact data density.
# Bad settings stop with one line naming the key and the fix, before any training.

def gauss1d(mean: float = 0.0, std: float = 1.0, shape=(1,),
            n_train: int = 50000, n_test: int = 25000, seed: int = 0) -> DataSet:
    _check_shape(shape)
    mean, std = _number("dataset.mean", mean), _number("dataset.std", std)
    if not std > 0:
        raise UserError(f"dataset.std={std}: the std must be a positive number, e.g. dataset.std=1.0")
    return line_mixture("gauss1d", [mean], [std], [1.0], n_train, n_test, seed)


def mixture1d(means=(-2.0, 2.0), stds=(0.5, 0.5), weights=(0.75, 0.25), shape=(1,),
              n_train: int = 50000, n_test: int = 25000, seed: int = 0) -> DataSet:
    _check_shape(shape)
    means, stds, weights = (_numbers(f"dataset.{k}", v) for k, v in
                            (("means", means), ("stds", stds), ("weights", weights)))
    if not means:
        raise UserError("dataset.means is empty: give at least one mode, e.g. dataset.means=[-2.0,2.0]")
    if not len(means) == len(stds) == len(weights):
        raise UserError(f"dataset.means, dataset.stds and dataset.weights have lengths {len(means)}, "
                        f"{len(stds)} and {len(weights)}: give one std and one weight per mean")
    if not all(s > 0 for s in stds):
        raise UserError(f"dataset.stds={stds}: every std must be a positive number, e.g. dataset.stds=[0.5,0.5]")
    if not all(w > 0 for w in weights):
        raise UserError(f"dataset.weights={weights}: every weight must be positive (drop a mode "
                        "rather than giving it weight 0)")
    if abs(sum(weights) - 1.0) > 1e-6:
        raise UserError(f"dataset.weights={weights} sums to {sum(weights):.6g}: the weights must sum "
                        "to 1 (within 1e-6), e.g. dataset.weights=[0.75,0.25]")
    return line_mixture("mixture1d", means, stds, weights, n_train, n_test, seed)


def line_mixture(name: str, means: list, stds: list, weights: list, n_train: int, n_test: int,
                 seed: int) -> DataSet:
    g = torch.Generator().manual_seed(seed)
    mu, sd, w = torch.tensor(means), torch.tensor(stds), torch.tensor(weights, dtype=torch.float64)

    def draw(n):
        # Each point picks a component by its weight, then adds that component's noise: [n, 1].
        idx = torch.multinomial(w, n, replacement=True, generator=g)
        return (mu[idx] + sd[idx] * torch.randn(n, generator=g)).unsqueeze(1)

    info = {"mixture1d": {"means": list(means), "stds": list(stds), "weights": list(weights)}}
    return DataSet(name=name, kind="toy", train=draw(n_train), test=draw(n_test), info=info)


def _check_shape(shape) -> None:
    # conf/model/mlp.yaml sizes the networks from dataset.shape: [1] is these sets' only shape.
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or list(shape) != [1]:
        raise UserError(f"dataset.shape={shape!r}: the 1-D data sets' points have shape [1]: drop the "
                        "override (dataset=ring or dataset=grid are 2-D)")


def _number(key: str, v) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x) or isinstance(v, bool):
        raise UserError(f"{key}={v!r} must be a finite number, e.g. {key}=1.0")
    return x


def _numbers(key: str, values) -> list:
    if isinstance(values, (str, bytes, int, float)) or values is None:
        raise UserError(f"{key}={values!r} must be a list of numbers, e.g. {key}=[0.5,0.5]")
    return [_number(f"{key}[{i}]", v) for i, v in enumerate(values)]
