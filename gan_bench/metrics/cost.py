"""What the configured image evaluation will cost, said once at start-up when it is long.

The estimate is measured, not tabulated: each feature extractor runs one small batch of images of
the data's shape on the evaluation device (Extractor.seconds_per_image: 2 images on the CPU, a full
batch on a GPU, after a warm-up pass), times the fakes each evaluation draws, for every replica of
a seed ensemble. It leaves out the generator's forward passes, the statistics (seconds next to
Inception on the CPU) and the real images a reference set extracts once, the first time it is
used, before it is cached.
"""

import logging
import math

log = logging.getLogger(__name__)

LONG_S = 60.0  # an evaluation longer than this gets the note


def _fmt(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def eval_cost_note(cheap, full, shape: tuple, n_cheap: int, replicas: int = 1) -> str | None:
    """One line when an evaluation would take more than LONG_S, else None. cheap / full:
    ImageMetrics (or None) run n_cheap times and once at the end, on each of `replicas` generators."""
    probes = {}  # one probe per extractor object, shared by cheap and full

    def seconds(metrics) -> float:
        if metrics is None:
            return 0.0
        # The feature extractors (Inception). The Stacked MNIST classifier is not probed: 7,000-11,000
        # stacks/s on 2 cores, so even a 100-replica smnist_modes25k is minutes, not hours.
        extractors = [n.run for n in metrics.networks.values() if hasattr(n.run, "seconds_per_image")]
        for ex in extractors:
            if id(ex) not in probes:
                probes[id(ex)] = (ex, ex.seconds_per_image(shape))
        return replicas * metrics.num_fakes * sum(probes[id(ex)][1] for ex in extractors)

    t_cheap, t_full = seconds(cheap), seconds(full)
    if max(t_cheap if n_cheap else 0.0, t_full) <= LONG_S:
        return None
    device = next(iter(probes.values()))[0].device.type
    measured = ", ".join(f"{ex.name} {s:.3g} s/image" for ex, s in probes.values())
    parts = []
    if cheap is not None and n_cheap:
        parts.append(f"eval.metrics={_names(cheap)} ~{_fmt(t_cheap)} per evaluation x {n_cheap}")
    if full is not None:
        parts.append(f"eval.final_metrics={_names(full)} ~{_fmt(t_full)} at the end")
    cheaper = []
    if cheap is not None and n_cheap and t_cheap > LONG_S:
        m = cheap.metrics[0]
        from gan_bench.metrics.image import spell

        cheaper += [f"fewer samples (e.g. eval.metrics=[{spell(m.kind, '1k', m.split)}])",
                    "eval.metrics=[] (final metrics only)", "a larger train.eval_every"]
    if t_full > LONG_S:
        cheaper.append("smaller counts in eval.final_metrics (e.g. 10k instead of 50k)")
    if device != "cuda":
        cheaper.append("a GPU (train.device=cuda)")
    options = ", ".join(cheaper[:-1]) + (", or " if len(cheaper) > 1 else "") + cheaper[-1]
    each = f" for {replicas} replicas" if replicas > 1 else ""
    return (f"image metrics will be slow on this {device} ({measured}, measured){each}: {'; '.join(parts)}. "
            f"Cheaper: {options}")


def _names(metrics) -> str:
    return "[" + ",".join(m.name for m in metrics.metrics) + "]"


def note_eval_cost(cfg, data, cheap, full) -> str | None:
    """The trainer's call: count the evaluations of this run and log the note if there is one."""
    tc = cfg.train
    epochs = tc.get("epochs")
    steps = int(tc.steps) if epochs is None else int(epochs) * math.ceil(len(data.train) / int(tc.batch_size))
    note = eval_cost_note(cheap, full, tuple(data.sample_shape), max(steps - 1, 0) // int(tc.eval_every),
                          int(tc.get("ensemble", 1)))
    if note:
        log.warning(note)
    return note
