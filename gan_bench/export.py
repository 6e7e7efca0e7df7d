"""`gan-bench export RUN_DIR [--replica i] --out FILE.pt` and `gan-bench sample RUN_DIR [--replica i]
[--n 64] [--seed S] --out grid.png|samples.npz`: one replica of a seed ensemble (or a single run)
as plain networks, and samples drawn from them.

export writes {"G": state_dict, "D": state_dict, "config": dict}. The state dicts are the plain
model classes' (`hydra.utils.instantiate(config["model"]["generator"])` loads "G" strictly), with the
same keys for a replica of an ensemble and for a single run. "G" is the EMA generator when the run
kept one (train.ema > 0) with G's BatchNorm statistics, which is how the trainer evaluates it.
"config" is the run's resolved config as the single run that replica i equals: seed + i, ensemble 1.

sample draws n images (or toy points) from that generator in eval mode on fixed latents
(`--seed`, default the run's eval.latent_seed): a PNG grid (a scatter over the modes for toy
data) or an .npz with `samples` (uint8 [n, C, H, W] images, or float32 [n, 2] points) and `z`.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from gan_bench import checkpoint
from gan_bench.errors import UserError


def load_run(run_dir: Path):
    """A run's config (as trained) and its last checkpoint; every problem is a UserError."""
    import gan_bench.config  # noqa: F401  (registers the gb_root resolver the saved config uses)
    from gan_bench.config import checkpoint_hashes

    cfg_file, ckpt = run_dir / ".hydra" / "config.yaml", run_dir / "checkpoints" / "last.pt"
    for f in (cfg_file, ckpt):
        if not f.exists():
            raise UserError(f"{run_dir} has no {f.relative_to(run_dir)}: pass a gan-bench run directory "
                            f"(the one holding .hydra/ and checkpoints/) of a run that has checkpointed")
    cfg = OmegaConf.load(cfg_file)
    cfg.paths.run_dir = str(run_dir)
    state = checkpoint.read(ckpt, f"rerun the training command in {run_dir} to resume from its previous "
                                  "checkpoint (a run directory from someone else: ask for its exported weights)")
    if not isinstance(state, dict) or "G" not in state or "config_hash" not in state:
        raise UserError(f"{ckpt} is not a gan-bench checkpoint: pass a run directory that gan-bench train wrote")
    if state["config_hash"] not in checkpoint_hashes(cfg):
        raise UserError(f"{cfg_file} does not describe {ckpt} (the config was edited after training): "
                        f"restore the config the run was trained with")
    return cfg, state


def replica_networks(run_dir: Path, replica: int | None = None) -> dict:
    """{"G", "D", "config"} of replica `replica` (None: 0, the only one of a single run)."""
    from gan_bench.ensemble import build_replicas
    from gan_bench.training.setup import build

    cfg, state = load_run(run_dir)
    K, seed = int(cfg.train.ensemble), int(cfg.seed)
    i = 0 if replica is None else replica
    if not 0 <= i < K:
        which = "a single run: pass --replica 0 or leave it out" if K == 1 else \
            f"an ensemble of {K} (seeds {seed}..{seed + K - 1}): pass --replica 0..{K - 1}"
        raise UserError(f"--replica {i} is out of range: {run_dir} is {which}")
    # The ensemble modules only give the checkpoint's tensors their replica view: built on the
    # meta device (no memory, no init), then the checkpoint's tensors are assigned into them.
    with torch.device("meta"):
        G, D = build_replicas(lambda: build(cfg.model.generator), lambda: build(cfg.model.discriminator),
                              [seed + k for k in range(K)], cfg.train.get("ensemble_impl", "grouped"))
    G.load_state_dict(evaluated_state(G, state), assign=True)
    D.load_state_dict(state["D"], assign=True)
    config = OmegaConf.to_container(cfg, resolve=True)
    config["seed"], config["train"]["ensemble"] = seed + i, 1
    status = (state.get("replicas") or [{}] * K)[i]
    if status.get("status") == "diverged":
        print(f"gan-bench: note: replica {i} (seed {seed + i}) diverged at step {status.get('diverged_at')}: "
              f"its weights may be non-finite", file=sys.stderr)
    return {"G": G.replica_state_dict(i), "D": D.replica_state_dict(i), "config": config}


def evaluated_state(G: torch.nn.Module, state: dict) -> dict:
    """The state dict of the generator the trainer evaluates, from a checkpoint: the EMA weights
    when the run kept them, with G's BatchNorm statistics (the EMA copy's are G's of the last
    evaluation), else G's own. `G` is the module it is for (its buffer names)."""
    if state.get("G_ema") is None:
        return state["G"]
    buffers = {k for k, _ in G.named_buffers()}
    return {k: (state["G"][k] if k in buffers else v) for k, v in state["G_ema"].items()}


def plain_generator(exported: dict) -> torch.nn.Module:
    """The plain generator class of the exported config, holding the exported weights, in eval mode."""
    from gan_bench.training.setup import build

    G = build(OmegaConf.create(exported["config"]).model.generator)
    G.load_state_dict(exported["G"])
    return G.eval()


def draw(exported: dict, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(samples, z): n samples of the exported generator on the fixed latents of `seed`."""
    from gan_bench.metrics.latents import fixed_latents

    z = fixed_latents(n, int(exported["config"]["model"]["latent_dim"]), seed)
    with torch.no_grad():
        return plain_generator(exported)(z).float(), z


def _check_out(out: Path, suffixes: tuple[str, ...], what: str):
    if out.suffix.lower() not in suffixes:
        raise UserError(f"--out {out}: unknown extension {out.suffix or '(none)'!r}, use {what}")


def _args(prog: str, doc: str, argv: list[str], extra=None):
    ap = argparse.ArgumentParser(prog=prog, description=doc)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--replica", type=int, default=None, help="replica of an ensemble run (default 0)")
    ap.add_argument("--out", type=Path, required=True)
    if extra:
        extra(ap)
    return ap.parse_args(argv)


def export_main(argv: list[str]) -> int:
    args = _args("gan-bench export", "One replica's (or a single run's) networks as plain state dicts.", argv)
    from gan_bench import atomic

    _check_out(args.out, (".pt", ".pth"), ".pt (a torch.save file)")
    exported = replica_networks(args.run_dir, args.replica)
    atomic.write_bytes(args.out, lambda f: torch.save(exported, f))
    print(f"{args.out}: G and D of seed {exported['config']['seed']} ({len(exported['G'])} and "
          f"{len(exported['D'])} tensors) and its config")
    return 0


def sample_main(argv: list[str]) -> int:
    def extra(ap):
        ap.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
        ap.add_argument("--seed", type=int, default=None, help="latent seed (default: the run's eval.latent_seed)")

    args = _args("gan-bench sample", "Samples of one replica's (or a single run's) generator.", argv, extra)
    from PIL import Image

    from gan_bench import atomic
    from gan_bench.data.images import to_uint8
    from gan_bench.viz import image_grid

    _check_out(args.out, (".png", ".npz"), ".png (a picture) or .npz (the samples)")
    if args.n <= 0:
        raise UserError(f"--n must be a positive number of samples, got {args.n}: e.g. --n 64")
    exported = replica_networks(args.run_dir, args.replica)
    seed = int(exported["config"]["eval"]["latent_seed"]) if args.seed is None else args.seed
    x, z = draw(exported, args.n, seed)
    images = x.ndim == 4  # [n, C, H, W]; toy generators give points [n, 2]
    if args.out.suffix.lower() == ".npz":
        samples = to_uint8(x).numpy() if images else x.numpy()
        atomic.write_bytes(args.out, lambda f: np.savez(f, samples=samples, z=z.numpy()))
    else:
        picture = image_grid(to_uint8(x)) if images else _scatter(x, exported["config"])
        atomic.write_bytes(args.out, lambda f: Image.fromarray(picture).save(f, format="PNG"))
    print(f"{args.out}: {args.n} samples of seed {exported['config']['seed']} on latent seed {seed}")
    return 0


def _scatter(points: torch.Tensor, config: dict) -> np.ndarray:
    """Toy points as the trainer draws them: a scatter over the data set's mode means, or for the
    1-D sets a histogram over the data density."""
    from gan_bench.training.setup import build
    from gan_bench.viz import histogram1d, scatter

    data = build(OmegaConf.create(config).dataset)
    if "mixture1d" in data.info:
        mix = data.info["mixture1d"]
        return histogram1d(points, mix["means"], mix["stds"], mix["weights"])
    return scatter(points, data.info["means"], data.info["std"])
