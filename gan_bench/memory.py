"""What a K-ensemble needs in memory, estimated before training, and the largest K that fits.

Per replica:
- state: parameters, their gradients and Adam's two moments (4 copies of G's and D's parameters),
  and with train.ema a fifth copy of G's;
- activations: what autograd keeps for the backward at the step's peak, the D step, where G's
  graph is alive (the trainer reuses the fakes for the G step) beside D's graphs on the real and on
  the fake batch: G + 2 x D. Measured, not modelled: one forward of a single replica on a small
  probe batch, counting the bytes of the tensors autograd saves (saved-tensor hooks: the same
  count on every device), scaled linearly to the batch; then by K, since the replicas' activations
  are as many copies;
- data: the replica's own order of the training set (int64 per example) and, with
  train.latent_pool, its pool of latents (z_dim floats and an int64 index each). At the ISIT'23
  Stacked MNIST protocol this is 40 MiB of a replica's 46 (100,000 latents of 100 floats), the
  largest part of an ensemble's memory on the CPU (issue 20). At an epoch's start the next
  orders are drawn while the last ones are alive, a moment with two or three copies of the
  orders (not of the pool): 0.2 GB more at K=100, inside the 10% left unplanned.
Measured in fp32: under bf16 autocast activations are about half, so the estimate errs safe. Not
counted: a penalty's double backward (about one more D graph), the backward's transient gradients
and the allocator's slack, which is why only `fraction` (0.9) of what is available is planned for.
Available: free memory on the GPU (torch.cuda.mem_get_info), MemAvailable of /proc/meminfo on the
CPU (os.sysconf's available pages where /proc is missing).
"""

import ctypes
import os

import torch

from gan_bench.errors import UserError

GiB = 2 ** 30


def _saved_bytes(run, exclude: set[int]) -> int:
    """Bytes of the distinct storages autograd saves while `run()` builds its graph, leaving out
    the storages in `exclude` (parameters, which the state already counts)."""
    storages: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in exclude:
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = run()
    del out
    return sum(storages.values())


def replica_bytes(build_g, build_d, z_dim: int, batch: int, ema: bool = False, probe: int = 4, n_train: int = 0,
                  pool: int = 0) -> dict:
    """{"state", "activations", "data", "total"}: bytes one replica of the trainer needs at batch
    `batch`, with `n_train` training examples and a latent pool of `pool` latents (0: none)."""
    with torch.random.fork_rng(devices=[]):  # building and probing draw: leave the caller's stream alone
        G, D = build_g(), build_d()
        g_params, d_params = (sum(p.numel() * p.element_size() for p in m.parameters()) for m in (G, D))
        exclude = {p.untyped_storage().data_ptr() for m in (G, D) for p in m.parameters()}
        n = max(2, min(probe, batch))  # BatchNorm needs two samples
        z = torch.randn(n, z_dim)
        fake = G(z).detach()
        g_act = _saved_bytes(lambda: G(z), exclude)
        d_act = _saved_bytes(lambda: D(torch.randn_like(fake)), exclude)
    state = 4 * (g_params + d_params) + (g_params if ema else 0)
    activations = round((g_act + 2 * d_act) * batch / n)
    data = 8 * n_train + pool * (z_dim * torch.get_default_dtype().itemsize + 8)
    return {"state": state, "activations": activations, "data": data, "total": state + activations + data}


def data_sizes(cfg) -> dict:
    """replica_bytes' n_train and pool from a composed config, without reading the data: the
    configured size where the data set has one (Stacked MNIST's n, the toy sets' n_train), else 0."""
    n = int(cfg.dataset.get("n") or cfg.dataset.get("n_train") or 0)
    pool = cfg.train.get("latent_pool")
    return {"n_train": n, "pool": n if pool == "train" else int(pool or 0)}


def available_bytes(device) -> int | None:
    """Free memory of the device in bytes (None when the platform does not say)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def largest_ensemble(per_replica: int, available: int | None, reserved: int = 0, fraction: float = 0.9) -> int | None:
    """The largest K whose replicas fit in `fraction` of `available` bytes after `reserved` ones
    (e.g. a training set placed on the device); None when the available memory is unknown."""
    if available is None:
        return None
    return max(0, int((fraction * available - reserved) // max(per_replica, 1)))


def check_ensemble(K: int, build_g, build_d, z_dim: int, batch: int, device, ema: bool = False,
                   reserved: int = 0, n_train: int = 0, pool: int = 0) -> int | None:
    """The largest K that fits on `device`; raises one UserError line when `K` does not."""
    need = replica_bytes(build_g, build_d, z_dim, batch, ema, n_train=n_train, pool=pool)["total"]
    available = available_bytes(device)
    most = largest_ensemble(need, available, reserved)
    if most is not None and K > most:
        where = f"{torch.device(device).type} has {available / GiB:.1f} GiB free"
        fix = (f"the largest that fits is train.ensemble={most}: run the seeds in chunks of {most} "
               f"(seed=0 train.ensemble={most}, then seed={most} ...)" if most else
               "not even one replica fits: use a smaller train.batch_size or model")
        raise UserError(f"train.ensemble={K} needs about {K * need / GiB:.1f} GiB ({need / 2 ** 20:.1f} MiB a replica "
                        f"at batch {batch}) and {where}: {fix}")
    return most


_TRIM: list = []  # glibc's malloc_trim, looked up on first use; [None] where the C library has none


def _malloc_trim():
    if not _TRIM:
        try:  # the symbols of the running process, libc's among them (no ldconfig call to find it)
            trim = ctypes.CDLL(None).malloc_trim
            trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
        except (OSError, AttributeError, TypeError):  # macOS, musl, Windows: no such call
            trim = None
        _TRIM.append(trim)
    return _TRIM[0]


def release_freed_memory() -> None:
    """Hand the pages of freed heap memory back to the OS (glibc's malloc_trim(0)).

    Why (issue 20): an evaluation streams millions of samples through networks whose buffers are
    a few MB. glibc raises its mmap threshold to the size of the largest buffer freed (up to
    32 MB), so from then on such buffers come from the brk heap, where freed ones are kept and
    fragment: a Stacked MNIST ensemble's evaluation grew the heap by GBs (v1 classifier: 11 GB RSS
    at K=100 after 9 minutes; with MALLOC_MMAP_THRESHOLD_ fixed the heap stayed at 150 MB). Called
    between batches of samples, not in the training step: evaluations allocate the varying
    buffers, a training step the same ones every time."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
