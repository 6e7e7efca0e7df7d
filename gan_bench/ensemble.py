"""Seed ensembles: K independent replicas of a network trained in lockstep as one batched model.

Every tensor that flows through the trainer has a leading replica dim K: inputs [K, B, ...],
logits [K, B], per-replica losses [K]. `Single` gives any network that shape (K = 1, no copying);
`BatchedMLP` stacks K MLPs' weights so one batched matmul runs all replicas. Because losses are
summed over replicas and Adam is elementwise, replica i follows exactly the update a single run
with its seed would make (up to the rounding of bmm vs mm).
"""

import torch
from torch import nn

from gan_bench.models.mlp import MLP


class Single(nn.Module):
    """One network seen as an ensemble of one: [1, B, ...] -> [1, B, ...]."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[0]).unsqueeze(0)


class BatchedMLP(nn.Module):
    """K MLPs of identical shape as one module; replica i starts from mlps[i]'s weights."""

    def __init__(self, mlps: list[MLP]):
        super().__init__()
        first = mlps[0]
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

    def replica_state_dict(self, i: int) -> dict:
        """The state dict an `MLP` of the same shape would have for replica i."""
        out, j = {}, 0
        for w, b, act in zip(self.weights, self.biases, self.acts):
            out[f"{j}.weight"], out[f"{j}.bias"] = w[i].t().contiguous(), b[i, 0].clone()
            j += 1 if isinstance(act, nn.Identity) else 2
        return out


def build_replicas(build_g, build_d, seeds: list[int]) -> tuple[nn.Module, nn.Module]:
    """G and D for each seed, initialized exactly as a single run with that seed (seed, then G, then D)."""
    gs, ds = [], []
    for s in seeds:
        torch.manual_seed(s)
        gs.append(build_g())
        ds.append(build_d())
    if len(seeds) == 1:
        return Single(gs[0]), Single(ds[0])
    if not all(isinstance(m, MLP) for m in gs + ds):
        from gan_bench.errors import UserError
        raise UserError("train.ensemble > 1 batches MLP networks only: use model=mlp, "
                        "or run seeds as a sweep (-m seed=0,1,2)")
    return BatchedMLP(gs), BatchedMLP(ds)
