"""K replicas of a DCGAN generator or discriminator (gan_bench.models.dcgan) as one module.

Storage, shared by both implementations: the module is the plain network's `net` Sequential with
every layer K times as wide, so its state dict has the plain network's keys, and each tensor is the
K replicas' tensors concatenated along dim 0: replica i of a tensor t is t.unflatten(0, (K, -1))[i]
(conv weights [K*out, in, k, k] / transposed [K*in, out, k, k], BN vectors and biases [K*C]). The
one exception is BatchNorm's num_batches_tracked, a scalar shared by all replicas, which count the
same training forwards. This is exactly the weight layout of a grouped convolution with groups=K;
dim 0 of every parameter is K blocks of replicas (as it is for BatchedMLP's [K, ...] weights); and
4-D weights take `.to(memory_format=torch.channels_last)` like the plain network's. Both
implementations read the same state dict, so a checkpoint of one resumes under the other.

- GroupedConv: [K, B, C, H, W] -> [B, K*C, H, W]; Conv2d / ConvTranspose2d with groups=K;
  BatchNorm2d over K*C channels, which is per-replica batch statistics and running buffers.
- VmapConv: torch.func.vmap over the replica dim of the plain network's layers, each called by
  functional_call on replica i's views of the tensors. BatchNorm's running-stat update runs in
  place on the batched views, so it writes each replica's rows of the shared buffers; the shared
  counter is passed unbatched, so its in-place +1 runs once per forward, as for a single network.
  Autocast does not reach the ops inside torch.func.vmap (torch 2.14: they run in their inputs'
  dtype), so under an active autocast VmapConv casts what autocast would, the input and the conv
  weights and biases, to the autocast dtype, and runs BatchNorm as autocast's mixed-dtype one
  (fp32 parameters, statistics and math, low-precision output).

Inputs [K, B, ...] -> outputs [K, B, ...], discriminator logits [K, B], the trainer's ensemble
interface (gan_bench.ensemble). Replicas never mix: each replica's forward, its gradients and its
BatchNorm statistics see only its own rows.
"""

import copy

import torch
from torch import nn

from gan_bench.models.dcgan import Discriminator, Generator

ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh)


def _widen(layer: nn.Module, K: int) -> nn.Module:
    """The layer K times as wide with K independent groups; weights are filled in by the caller."""
    if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
        if layer.padding_mode != "zeros":
            raise TypeError(f"conv ensembles support zero padding only, got {layer.padding_mode}")
        kw = dict(kernel_size=layer.kernel_size, stride=layer.stride, padding=layer.padding,
                  dilation=layer.dilation, groups=K * layer.groups, bias=layer.bias is not None)
        if isinstance(layer, nn.ConvTranspose2d):
            kw["output_padding"] = layer.output_padding
        return type(layer)(K * layer.in_channels, K * layer.out_channels, **kw)
    if isinstance(layer, nn.BatchNorm2d):
        return nn.BatchNorm2d(K * layer.num_features, layer.eps, layer.momentum, layer.affine,
                              layer.track_running_stats)
    if isinstance(layer, ELEMENTWISE):
        return copy.deepcopy(layer)
    raise TypeError(f"no ensemble version of {type(layer).__name__}: add it to gan_bench/ensemble_conv.py")


def _is_shared(t: torch.Tensor) -> bool:
    return t.ndim == 0  # num_batches_tracked


class ConvReplicas(nn.Module):
    """The storage and the replica views; subclasses define forward."""

    def __init__(self, nets: list[nn.Module]):
        super().__init__()
        first = nets[0]
        if not all(type(n) is type(first) for n in nets) or not isinstance(first, (Generator, Discriminator)):
            raise TypeError("ConvReplicas takes DCGAN generators or DCGAN discriminators of one shape")
        self.K, self.is_generator = len(nets), isinstance(first, Generator)
        self.resolution, self.channels = first.resolution, first.channels
        self.latent_dim = first.latent_dim if self.is_generator else None
        self.net = nn.Sequential(*[_widen(m, self.K) for m in first.net])
        self.conv_tensors = {f"net.{j}.{n}" for j, m in enumerate(self.net)
                             if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for n, _ in m.named_parameters()}
        states = [n.state_dict() for n in nets]
        own = self.state_dict(keep_vars=True)
        if own.keys() != states[0].keys():  # the Sequential mirrors the plain network's
            raise TypeError(f"ensemble keys {sorted(own)} differ from the network's {sorted(states[0])}")
        with torch.no_grad():
            for k, t in own.items():
                vals = [s[k] for s in states]
                if _is_shared(t) and not t.is_meta and any(v != vals[0] for v in vals):
                    raise ValueError(f"{k} differs between the replicas: they must count the same forwards")
                t.copy_(vals[0] if _is_shared(t) else torch.cat(vals))

    def replica_state_dict(self, i: int) -> dict:
        """Exactly the state dict (keys, shapes, BN buffers, num_batches_tracked) of the plain
        network that replica i is."""
        self._check(i)
        return {k: (t if _is_shared(t) else t.unflatten(0, (self.K, -1))[i]).detach().clone()
                for k, t in self.state_dict().items()}

    def load_replica(self, i: int, state: dict) -> None:
        """Set replica i from a plain network's state dict (the inverse of replica_state_dict)."""
        self._check(i)
        own = self.state_dict(keep_vars=True)
        if state.keys() != own.keys():
            raise KeyError(f"replica state has keys {sorted(state)}, expected {sorted(own)}")
        with torch.no_grad():
            for k, t in own.items():
                if _is_shared(t):
                    if state[k] != t:
                        raise ValueError(f"{k} is {int(state[k])}, the ensemble's is {int(t)}: "
                                         f"the replicas share one count")
                else:
                    t.unflatten(0, (self.K, -1))[i].copy_(state[k])

    def _check(self, i: int):
        if not 0 <= i < self.K:
            raise IndexError(f"replica {i} of an ensemble of {self.K}")

    def _check_images(self, x: torch.Tensor):
        if x.ndim != 5 or x.shape[0] != self.K or x.shape[2:] != (self.channels, self.resolution, self.resolution):
            raise ValueError(f"ensemble discriminator expects [{self.K}, B, {self.channels}, {self.resolution}, "
                             f"{self.resolution}] images, got {list(x.shape)}")


class GroupedConv(ConvReplicas):
    """Replicas as the K groups of grouped convolutions: one kernel per layer for all of them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        K, B = x.shape[:2]
        if self.is_generator:  # z [K, B, Z] -> the 1x1 input of the first transposed conv
            y = self.net(x.transpose(0, 1).reshape(B, K * x.shape[2], 1, 1))
            # [B, K*C, H, W] -> [K, B, C, H, W] as a view: a discriminator that transposes back
            # (GroupedConv's does) gets its [B, K*C, H, W] input without a copy.
            return y.unflatten(1, (K, self.channels)).transpose(0, 1)
        self._check_images(x)
        t = self.net(x.transpose(0, 1).reshape(B, K * self.channels, self.resolution, self.resolution))
        return t.reshape(B, K).t()


class VmapConv(ConvReplicas):
    """Replicas by torch.func.vmap over the plain network's layers, called on replica i's views."""

    def __init__(self, nets: list[nn.Module]):
        super().__init__(nets)
        # The plain layers on the meta device, called functionally with replica i's tensors. Held
        # outside the registered modules: in no state dict, no .to(), no .parameters().
        self.__dict__["_layers"] = copy.deepcopy(nets[0].net).to("meta")
        self.layer_keys = [list(m.state_dict()) for m in nets[0].net]  # "weight", "running_mean", ...

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call, vmap

        if not self.is_generator:
            self._check_images(x)
        layers = self.__dict__["_layers"].train(self.training)
        tensors = {**dict(self.named_parameters()), **dict(self.named_buffers())}
        cast = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else None
        if cast is not None:  # what autocast would do to the convs, were it active inside vmap
            x = x.to(cast)
            tensors.update({k: tensors[k].to(cast) for k in self.conv_tensors})
        batched = {k: t.unflatten(0, (self.K, -1)) for k, t in tensors.items() if not _is_shared(t)}
        shared = {k: t for k, t in tensors.items() if _is_shared(t)}

        def one(own: dict, h: torch.Tensor) -> torch.Tensor:
            own = {**own, **shared}
            h = h[:, :, None, None] if self.is_generator else h
            for j, (layer, keys) in enumerate(zip(layers, self.layer_keys)):
                local = {n: own[f"net.{j}.{n}"] for n in keys}
                if cast is not None and isinstance(layer, nn.BatchNorm2d):
                    # autocast's mixed-dtype BatchNorm (low-precision input, fp32 parameters and
                    # statistics), which vmap's batch rule refuses: fp32 math, low-precision output.
                    h = functional_call(layer, local, (h.float(),)).to(cast)
                else:
                    h = functional_call(layer, local, (h,))
            return h if self.is_generator else h.reshape(h.shape[0])

        return vmap(one)(batched, x)


IMPLS = {"grouped": GroupedConv, "vmap": VmapConv}
