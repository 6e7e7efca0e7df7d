"""The trainer's evaluator for image data: a sample grid every evaluation, the configured image
metrics (`eval.metrics`, cheap) at `train.eval_every` and the full ones (`eval.final_metrics`)
at the end, all on fixed test latents. Weights and metric names are checked here, at start-up,
so a missing Inception file fails before any training."""

import numpy as np
import torch

from gan_bench.data.images import to_uint8
from gan_bench.memory import available_bytes
from gan_bench.metrics.cost import note_eval_cost
from gan_bench.metrics.image import ImageMetrics, default_cache_dir
from gan_bench.metrics.latents import fixed_latents


class ImageEvaluator:
    chunk = 64       # images per generator forward
    grid = 64        # images in the sample picture

    def __init__(self, data, cfg):
        ev = cfg.eval
        dataset_id = real_dataset_id(data, ev.holdout)
        device = "cuda" if cfg.train.device != "cpu" and torch.cuda.is_available() else "cpu"
        make = lambda names: ImageMetrics(
            list(names), self._reals(data), dataset_id, default_cache_dir(cfg.paths.data),
            weights_path=ev.inception_weights, device=device, crop=str(data.info.get("crop") or "none"),
            tv_weights_path=ev.torchvision_inception_weights, download=ev.get("download", True),
            sample_shape=data.sample_shape,
            dinov2_weights_path=ev.get("dinov2_weights")) if names else None  # .get: older runs
        self.cheap, self.full = make(ev.metrics), make(ev.final_metrics)
        note_eval_cost(cfg, data, self.cheap, self.full)  # one line at start when evaluations are long
        n = max([m.num_fakes for m in (self.cheap, self.full) if m is not None] + [self.grid])
        self.z = fixed_latents(n, int(cfg.model.latent_dim), int(ev.latent_seed))
        self.fingerprints: dict[str, str] = {}

    @staticmethod
    def _reals(data):
        reals = {"train": lambda: data.train}  # called only on a reference-statistics cache miss
        if data.test is not None:
            reals["test"] = lambda: data.test
        for split, images in data.info.get("heldout", {}).items():  # eval.holdout
            reals[split] = lambda images=images: images
        return reals

    def __call__(self, generate, which: list[int], final: bool = False) -> list:
        """(metrics, picture) for each replica in `which`: generate(z) gives every replica's
        samples [K, n, ...] of the test latents z, one forward per chunk for all of them. The
        picture is the first of `which`'s sample grid; the others get None, as for toy data."""
        if not which:
            return []
        metrics = self.full if final and self.full is not None else self.cheap
        results = {i: {} for i in which}
        todo = list(which) if metrics is not None else []
        budget = self._feature_budget()
        while todo:  # one pass over the test latents for as many replicas as the budget holds
            pos = 0

            def sample_fn(k, rows=todo):  # the next k fixed latents, from the first one at every pass
                nonlocal pos
                z = self.z[pos:pos + k]
                pos += k
                return to_uint8(generate(z)[rows])

            outs = metrics.each(sample_fn, budget)
            self.fingerprints.update(metrics.fingerprints)
            results.update({i: out for i, out in zip(todo, outs) if out is not None})
            todo = [i for i, out in zip(todo, outs) if out is None]
        picture = _grid(to_uint8(generate(self.z[: self.grid])[which[0]]))
        return [(results[i], picture if j == 0 else None) for j, i in enumerate(which)]

    @staticmethod
    def _feature_budget() -> int:
        """Bytes of fake features an evaluation may hold at once (R replicas' sets until their
        statistics are computed, 0.6 GB each at 50k x pool3): a quarter of the free host memory."""
        free = available_bytes("cpu")
        return free // 4 if free is not None else 4 * 2 ** 30


def real_dataset_id(data, holdout) -> str:
    """Identifies the real images' content: name, preprocessing, the source's checksum and the
    held-out fraction (its tail is not in the train split). Hashed into reference fingerprints."""
    manifest = data.info.get("manifest") or {}
    return (f"{data.name}:{manifest.get('params')}:{manifest.get('source', {}).get('fingerprint')}"
            f":holdout={holdout}")


def _grid(u8: torch.Tensor) -> np.ndarray:
    from torchvision.utils import make_grid

    g = make_grid(u8.cpu(), nrow=int(len(u8) ** 0.5), padding=2, pad_value=255)
    g = g if g.shape[0] == 3 else g.expand(3, -1, -1)
    return g.permute(1, 2, 0).contiguous().numpy()
