"""Where the generator's training latents come from (`train.latent_pool`).

Fresh (null, the default): every D step draws new N(0, I) latents, one generator per replica.
Pool (`train` or a size N): each replica draws N latents once from its own stream and then walks
through them in a fresh random order every pass, the last batch of a pass possibly short, as
the (alpha_D, alpha_G)-GAN authors' code does (a DataLoader(shuffle=True) over a fixed
`torch.randn(N_train, z_dim)` set, zipped with the data loader). The pool is a function of the
seed, so only the walk (order and position) goes into checkpoints.
"""

import torch


class Latents:
    def __init__(self, gens: list[torch.Generator], z_dim: int, device, pool: int | None = None):
        self.gens, self.z_dim, self.device = gens, z_dim, device
        # Drawn before any training draw, so replica i's pool is the one a single run of its seed has.
        # Into one [K, N, z_dim] tensor in place: a list of K pools and their torch.stack would hold
        # two copies at once (8 GB at the ISIT'23 Stacked MNIST protocol with K=100; issue 20).
        self.pool = None
        if pool is not None:
            self.pool = torch.empty(len(gens), pool, z_dim, device=device)
            for i, g in enumerate(gens):
                torch.randn(pool, z_dim, generator=g, device=device, out=self.pool[i])
        self.order, self.pos = None, 0 if pool is None else pool

    def __call__(self, n: int) -> torch.Tensor:
        """Latents [K, n, z_dim] (fewer than n at the end of a pass over a pool)."""
        if self.pool is None:
            return torch.stack([torch.randn(n, self.z_dim, generator=g, device=self.device) for g in self.gens])
        size = self.pool.shape[1]
        if self.pos >= size:
            self.order = torch.stack([torch.randperm(size, generator=g, device=self.device) for g in self.gens])
            self.pos = 0
        idx = self.order[:, self.pos:self.pos + n]
        self.pos += idx.shape[1]
        return torch.gather(self.pool, 1, idx.unsqueeze(-1).expand(-1, -1, self.z_dim))

    def state_dict(self) -> dict:
        return {"order": None if self.order is None else self.order.cpu(), "pos": self.pos}

    def load_state_dict(self, state: dict | None) -> None:
        if state is not None:  # checkpoints from before pools have none: fresh latents keep no state
            self.order = None if state["order"] is None else state["order"].to(self.device)
            self.pos = state["pos"]
