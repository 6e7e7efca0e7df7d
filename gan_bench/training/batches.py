"""Minibatches: shuffled epochs over the fixed training set, one order per replica from its data
stream; the last batch of an epoch may be short, as with a DataLoader(shuffle=True). The order
and the position in it go into checkpoints."""

import torch

from gan_bench.data import DataSet


class Batches:
    def __init__(self, data: DataSet, batch_size: int, rng_data: list[torch.Generator], device: torch.device):
        self.x = _place(data.train, device)  # toy data and images that fit: on the device, once
        self.to_model = _input_transform(data)
        self.n, self.size, self.rng, self.device = len(self.x), int(batch_size), rng_data, device
        self.perms, self.pos = None, self.n  # [K, n] orders of the current epoch; the first draw starts one

    def next(self, n: int | None = None) -> torch.Tensor:
        """A batch [K, B, ...] in model space. With n: exactly n samples, carried on into the next
        epoch's order where this one ends (a batch that must pair one to one with a fake batch)."""
        idx = self._take(self.size if n is None else n)
        if n is not None and idx.shape[1] < n:
            idx = torch.cat([idx, self._take(n - idx.shape[1])], 1)
        x = self.x[idx]
        if x.device != self.device:  # a set too large for the GPU: gather from the memory map, pin, copy async
            x = x.pin_memory().to(self.device, non_blocking=True)
        return self.to_model(x)

    def _take(self, n: int) -> torch.Tensor:
        if self.pos >= self.n:
            self.perms = torch.stack([torch.randperm(self.n, generator=g) for g in self.rng]).to(self.x.device)
            self.pos = 0
        idx = self.perms[:, self.pos:self.pos + n]
        self.pos += idx.shape[1]
        return idx

    def state_dict(self) -> dict:
        return {"perms": None if self.perms is None else self.perms.cpu(), "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.perms = None if state["perms"] is None else state["perms"].to(self.x.device)
        self.pos = state["pos"]


def _place(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The whole training set on the device when it fits in a quarter of free memory; otherwise it
    stays where it is (for image sets, the memory-mapped cache: pinning all of it could exhaust host
    memory) and each batch is gathered, pinned and copied over."""
    if device.type != "cuda":
        return x
    free, _ = torch.cuda.mem_get_info(device)
    return x.to(device) if x.numel() * x.element_size() < free // 4 else x


def _input_transform(data: DataSet):
    if data.kind == "image":  # uint8 -> [-1, 1] in the dtype the networks are built in (torch's default)
        from gan_bench.data.images import normalize
        return lambda x: normalize(x, torch.get_default_dtype())
    return lambda x: x
