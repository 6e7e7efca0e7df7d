"""Evaluations during training: the data set's evaluator (gan_bench.metrics) on its fixed test
latents, every replica at once; each replica's metrics into the run state, metrics.jsonl and
TensorBoard, with the sample picture under samples/."""

from pathlib import Path

import torch

from gan_bench.logger import Logger
from gan_bench.records import mean_metrics
from gan_bench.viz import save_png


@torch.no_grad()
def evaluate(run, evaluator, which: list[int], log: Logger, run_dir: Path, final: bool = False) -> None:
    K, device, step = len(run.replicas), run.active.device, run.step
    with run.nets.evaluated_generator() as net:
        # All replicas on the same fixed test latents: z [n, z_dim] -> samples [K, n, ...].
        results = evaluator(lambda z: net(z.to(device).unsqueeze(0).expand(K, -1, -1)).float(), which, final)
    for i, (metrics, picture) in zip(which, results):
        run.replicas[i]["metrics"] = metrics
        log.metrics(step, metrics, {"replica": i, "seed": run.replicas[i]["seed"]} if K > 1 else None)
        if picture is not None:
            log.image(step, "samples", picture)
            save_png(picture, Path(run_dir) / "samples" / f"step{step:07d}.png")
    if K > 1:
        log.scalars(step, mean_metrics([run.replicas[i]["metrics"] for i in which]), "metrics_mean/")
