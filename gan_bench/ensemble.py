"""Seed ensembles: K independent replicas of a network trained in lockstep as one batched model.

Every tensor that flows through the trainer has a leading replica dim K: inputs [K, B, ...],
logits [K, B], per-replica losses [K]. `Single` gives any network that shape (K = 1, no copying);
`BatchedMLP` stacks K MLPs' weights so one batched matmul runs all replicas; DCGAN networks
become a `GroupedConv` or `VmapConv` (gan_bench/ensemble_conv.py, `train.ensemble_impl`). Because
losses are summed over replicas and Adam is elementwise, replica i follows exactly the update a
single run with its seed would make (up to the rounding of batched vs single kernels).

Every ensemble module has `replica_state_dict(i)`, the state dict of the plain network replica i
is (same keys as that network's own), and its inverse `load_replica(i, state)`. Dim 0 of every
parameter is K equal blocks, one per replica: `p.unflatten(0, (K, -1))[i]` is replica i's part
(of the parameter or of its gradient) for all three.
"""

import torch
from torch import nn

from gan_bench.ensemble_conv import IMPLS as CONV_IMPLS
from gan_bench.errors import UserError
from gan_bench.models.dcgan import Discriminator, Generator
from gan_bench.models.mlp import MLP


class Single(nn.Module):
    """One network seen as an ensemble of one: [1, B, ...] -> [1, B, ...]."""

    K = 1

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[0]).unsqueeze(0)

    def replica_state_dict(self, i: int) -> dict:
        _check_replica(i, 1)
        return {k: v.detach().clone() for k, v in self.net.state_dict().items()}

    def load_replica(self, i: int, state: dict) -> None:
        _check_replica(i, 1)
        self.net.load_state_dict(state)


class BatchedMLP(nn.Module):
    """K MLPs of identical shape as one module; replica i starts from mlps[i]'s weights."""

    def __init__(self, mlps: list[MLP]):
        super().__init__()
        first = mlps[0]
        self.K = len(mlps)
        self.squeeze_out = first.squeeze_out
        # Weights stored transposed, [K, in, out], so the forward is one baddbmm per layer.
        self.weights, self.biases, self.acts = nn.ParameterList(), nn.ParameterList(), []
        for j, layer in enumerate(first):
            if isinstance(layer, nn.Linear):
                self.weights.append(nn.Parameter(torch.stack([m[j].weight.detach().t() for m in mlps]).contiguous()))
                biases = torch.stack([m[j].bias.detach() for m in mlps]).unsqueeze(1)
                self.biases.append(nn.Parameter(biases.contiguous()))
                self.acts.append(None)
            else:
                self.acts[-1] = layer  # activation after the preceding Linear
        self.acts = nn.ModuleList([a if a is not None else nn.Identity() for a in self.acts])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for w, b, act in zip(self.weights, self.biases, self.acts):
            x = act(torch.baddbmm(b, x, w))
        return x.squeeze(-1) if self.squeeze_out else x

    def _layer_keys(self):
        j = 0  # MLP indices: Linear, activation, Linear, activation, ..., Linear
        for w, b, act in zip(self.weights, self.biases, self.acts):
            yield w, b, j
            j += 1 if isinstance(act, nn.Identity) else 2

    def replica_state_dict(self, i: int) -> dict:
        """The state dict an `MLP` of the same shape would have for replica i."""
        _check_replica(i, self.K)
        out = {}
        for w, b, j in self._layer_keys():
            out[f"{j}.weight"], out[f"{j}.bias"] = w[i].detach().t().contiguous(), b[i, 0].detach().clone()
        return out

    def load_replica(self, i: int, state: dict) -> None:
        _check_replica(i, self.K)
        expected = {f"{j}.{n}" for _, _, j in self._layer_keys() for n in ("weight", "bias")}
        if state.keys() != expected:
            raise KeyError(f"replica state has keys {sorted(state)}, expected {sorted(expected)}")
        with torch.no_grad():
            for w, b, j in self._layer_keys():
                w[i].copy_(state[f"{j}.weight"].t())
                b[i, 0].copy_(state[f"{j}.bias"])


def _check_replica(i: int, K: int):
    if not 0 <= i < K:
        raise IndexError(f"replica {i} of an ensemble of {K}")


IMPLS = tuple(CONV_IMPLS)  # train.ensemble_impl


def build_replicas(build_g, build_d, seeds: list[int], impl: str | None = None) -> tuple[nn.Module, nn.Module]:
    """G and D for each seed, initialized exactly as a single run with that seed (seed, then G, then
    D), as one ensemble module each. `impl` (train.ensemble_impl: grouped | vmap) batches DCGAN
    replicas; MLPs are always a BatchedMLP. impl=None batches MLPs only and refuses conv networks,
    which is what a caller gets until its loop handles image ensembles."""
    if impl is not None and impl not in IMPLS:
        raise UserError(f"train.ensemble_impl must be one of {', '.join(IMPLS)}, got {impl!r}")
    gs, ds = [], []
    for s in seeds:
        torch.manual_seed(s)
        gs.append(build_g())
        ds.append(build_d())
    if len(seeds) == 1:
        return Single(gs[0]), Single(ds[0])
    if all(isinstance(m, MLP) for m in gs + ds):
        return BatchedMLP(gs), BatchedMLP(ds)
    convs = all(isinstance(g, Generator) for g in gs) and all(isinstance(d, Discriminator) for d in ds)
    if impl is not None and convs:
        return CONV_IMPLS[impl](gs), CONV_IMPLS[impl](ds)
    if impl is None:
        raise UserError("train.ensemble > 1 batches MLP networks only: use model=mlp, "
                        "or run seeds as a sweep (-m seed=0,1,2)")
    raise UserError("train.ensemble > 1 batches model=mlp, dcgan, dcgan_small and isit23_smnist networks only: "
                    "run other models' seeds as a sweep (-m seed=0,1,2)")
