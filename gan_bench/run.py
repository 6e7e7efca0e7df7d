"""One Hydra job: train, then tell the user what happened and where to look."""

import sys

from omegaconf import DictConfig

from gan_bench.errors import UserError


def run_job(cfg: DictConfig) -> dict:
    from gan_bench.train import train

    try:
        result = train(cfg)
    except UserError as e:
        # One line and a non-zero exit; Hydra would otherwise print a stack trace.
        print(f"gan-bench: error: {e}", file=sys.stderr)
        sys.exit(2)
    run_dir = cfg.paths.run_dir
    word = "already finished" if result.get("skipped") else result["status"]
    metrics = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result["metrics"].items())
    print(f"[{word}] step {result['step']}/{result['steps']} in {result['wall_seconds']:.1f}s: {metrics}")
    print(f"run directory: {run_dir}")
    print(f"view it: tensorboard --logdir {run_dir}/tb")
    return result
