"""Evaluations during training: the data set's evaluator (gan_bench.metrics) on its fixed test
latents, every replica at once; each replica's metrics into the run state, metrics.jsonl and
TensorBoard, with the sample picture under samples/. The loop queues a step's evaluations in the
run state (`run.pending_evals`), and each leaves the queue only once its results are recorded: a
stop request ends an evaluation at its next batch of samples (signals.Stopped), and the
checkpoint written then makes a resumed run do what is left of the queue first."""

import logging
import time
from pathlib import Path

import torch

from gan_bench.logger import Logger
from gan_bench.memory import release_freed_memory
from gan_bench.records import mean_metrics
from gan_bench.training.signals import Stopped, StopRequest
from gan_bench.viz import save_png

_log = logging.getLogger(__name__)


@torch.no_grad()
def evaluate(run, evaluator, which: list[int], log: Logger, run_dir: Path, final: bool = False,
             stop: StopRequest | None = None) -> None:
    K, device, step = len(run.replicas), run.active.device, run.step
    started = time.perf_counter()
    with run.nets.evaluated_generator() as net:

        def generate(z: torch.Tensor) -> torch.Tensor:
            # Every evaluator draws its samples batch by batch through here: the place to stop.
            if stop:
                raise Stopped(stop.signum)
            release_freed_memory()  # the last batch's buffers: otherwise the heap grows (memory.py)
            # All replicas on the same fixed test latents: z [n, z_dim] -> samples [K, n, ...].
            return net(z.to(device).unsqueeze(0).expand(K, -1, -1)).float()

        results = evaluator(generate, which, final)
    for i, (metrics, picture) in zip(which, results):
        run.replicas[i]["metrics"] = metrics
        log.metrics(step, metrics, {"replica": i, "seed": run.replicas[i]["seed"]} if K > 1 else None)
        if picture is not None:
            log.image(step, "samples", picture)
            save_png(picture, Path(run_dir) / "samples" / f"step{step:07d}.png")
    if K > 1:
        log.scalars(step, mean_metrics([run.replicas[i]["metrics"] for i in which]), "metrics_mean/")
    seconds = time.perf_counter() - started
    log.scalars(step, {"evaluation_seconds": seconds}, "time/")
    # scripts/smnist_eval_cost.py reads this line: keep its shape.
    _log.info("evaluation at step %d: %d of %d replicas in %.2f s", step, len(which), K, seconds)


def evaluate_pending(run, evaluator, log: Logger, run_dir: Path, stop: StopRequest | None = None) -> bool:
    """Run the queued evaluations (evaluate's `which` and `final`) in order, each dropped from the
    queue once recorded; whether there were any."""
    ran = bool(run.pending_evals)
    while run.pending_evals:
        evaluate(run, evaluator, **run.pending_evals[0], log=log, run_dir=run_dir, stop=stop)
        run.pending_evals.pop(0)
    return ran
