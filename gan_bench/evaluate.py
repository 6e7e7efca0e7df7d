"""`gan-bench eval RUN_DIR [overrides]`: the final metrics of a run's last checkpoint, recomputed
(e.g. after placing the Inception weights, or with other metrics: eval.final_metrics=[fid50k_train]).
Appends one record per replica to the run's metrics.jsonl and prints them as JSON lines."""

import argparse
import json
from pathlib import Path

import torch
from omegaconf import OmegaConf

from gan_bench.errors import UserError


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="gan-bench eval", description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("override", nargs="*", help="dotlist overrides of the run's config, e.g. eval.n_samples=5000")
    args = ap.parse_args(argv)

    import gan_bench.config  # noqa: F401  (registers the gb_root resolver)
    from gan_bench import checkpoint
    from gan_bench.config import checkpoint_hashes
    from gan_bench.ensemble import build_replicas
    from gan_bench.export import evaluated_state
    from gan_bench.metrics import make_evaluator
    from gan_bench.training.setup import build, pick_device

    run = args.run_dir
    cfg_file, ckpt = run / ".hydra" / "config.yaml", run / "checkpoints" / "last.pt"
    if not cfg_file.exists() or not ckpt.exists():
        raise UserError(f"{run} is not a finished gan-bench run (needs .hydra/config.yaml and checkpoints/last.pt)")
    cfg = OmegaConf.load(cfg_file)
    cfg.paths.run_dir = str(run)
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(args.override))
    state = checkpoint.load(ckpt, checkpoint_hashes(cfg))
    device = pick_device(cfg.train.device)

    from gan_bench.data import hold_out

    data = hold_out(build(cfg.dataset), cfg.eval.holdout)
    K = int(cfg.train.ensemble)
    G, _ = build_replicas(lambda: build(cfg.model.generator), lambda: build(cfg.model.discriminator),
                          [int(cfg.seed) + i for i in range(K)], cfg.train.get("ensemble_impl", "grouped"))
    G.load_state_dict(evaluated_state(G, state))
    G = G.to(device).eval()
    evaluator = make_evaluator(data, cfg)
    with torch.no_grad():
        results = evaluator(lambda z: G(z.to(device).unsqueeze(0).expand(K, -1, -1)).float(), list(range(K)), True)
    with open(run / "metrics.jsonl", "a") as f:
        for i, (metrics, _) in enumerate(results):
            record = {"step": state["step"], "source": "eval", **({"replica": i} if K > 1 else {}), **metrics,
                      "fingerprints": {k: evaluator.fingerprints.get(k) for k in metrics}}
            f.write(json.dumps(record) + "\n")
            print(json.dumps(record))
    return 0
