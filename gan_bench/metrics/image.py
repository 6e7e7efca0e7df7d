"""Image metrics by name, with reference statistics cached on disk under a fingerprint.

A metric name carries its protocol, as in StyleGAN2-ADA's metric_main.py:

    <kind><count>[_<split>]      count = digits with optional k (x1000): 50k, 10k, 500
    fid50k_train   kid50k_train   prdc10k_train   is50k   smnist_modes25k
    fid_logits_nonstandard10k_heldout20

`count` fakes are compared with min(count, len(split)) real images of `split` (a fixed-seed subset
when the split is larger). Results are floats keyed by name (prdc adds _precision, _recall,
_density, _coverage; is adds _std; smnist_modes adds _kl), and `ImageMetrics.fingerprints` maps
each key to a string naming the extractor and a hash of everything that produced the number.

Real-side features are computed once per fingerprint and cached as <hash>.npz (mu, sigma and
sigma's square-root factor, float64), <hash>.feats.npy (raw float32 features, only when KID or
PRDC need them) and <hash>.json (the fields hashed, for people), each written to a temp file and
os.replace'd so a killed run or a parallel sweep never leaves a half-written file to be read.
"""

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from gan_bench.errors import UserError
from gan_bench.metrics.features import as_rgb, get_extractor, no_tf32
from gan_bench.metrics import fid as fid_mod, prdc as prdc_mod
from gan_bench.metrics.fid import feature_stats, frechet_distance, sqrt_factor
from gan_bench.metrics.inception_score import inception_score
from gan_bench.metrics.kid import kernel_inception_distance
from gan_bench.metrics.prdc import prdc


@dataclass(frozen=True)
class MetricKind:
    extractor: str | None   # registry name in features.EXTRACTORS; None for the MNIST classifier
    layer: str | None
    needs_split: bool       # compared against real images
    needs_raw: bool         # needs real features, not just mu/sigma
    params: dict            # protocol constants, hashed into the fingerprint
    tag: str                # fingerprint prefix: says what was measured, at a glance
    min_count: int = 2      # fewest samples the statistic is defined for


KINDS = {
    "fid": MetricKind("tf_inception", "2048", True, False, {"method": fid_mod.METHOD}, "tfinception-pool3"),
    "kid": MetricKind("tf_inception", "2048", True, True,
                      {"kernel": "poly3", "subsets": 100, "max_subset": 1000, "seed": 0}, "tfinception-pool3"),
    "prdc": MetricKind("tf_inception", "2048", True, True, {"k": 5, "method": prdc_mod.METHOD}, "tfinception-pool3",
                       min_count=6),
    "is": MetricKind("tf_inception", "logits_unbiased", False, False, {"splits": 10}, "tfinception-logits",
                     min_count=10),
    "fid_logits_nonstandard": MetricKind("tv_inception_logits_nonstandard", "logits", True, False,
                                         {"method": fid_mod.METHOD},
                                         "tvinception-logits-nonstandard"),
    "smnist_modes": MetricKind(None, None, False, False, {"modes": 1000, "kl": "hist||uniform, ln"},
                               "mnistcnn"),
}
FID_KINDS = ("fid", "fid_logits_nonstandard")
# Longest kind first, so fid_logits_nonstandard is not read as fid + garbage.
NAME_RE = re.compile(r"^(?P<kind>%s)(?P<count>\d+)(?P<k>k?)(?:_(?P<split>[a-z][a-z0-9]*))?$"
                     % "|".join(sorted(KINDS, key=len, reverse=True)))
REAL_SUBSET_SEED = 0


def default_cache_dir(data_root) -> Path:
    """<paths.data>/cache/metrics: next to the data the statistics describe."""
    return Path(data_root) / "cache" / "metrics"


@dataclass(frozen=True)
class MetricName:
    name: str
    kind: str
    count: int
    split: str | None


def parse_name(name: str) -> MetricName:
    m = NAME_RE.match(name)
    if m:
        kind, split = m["kind"], m["split"]
        count = int(m["count"]) * (1000 if m["k"] else 1)
        if KINDS[kind].needs_split == (split is not None):
            if count < KINDS[kind].min_count:
                raise UserError(f"metric {name} needs at least {KINDS[kind].min_count} samples, got {count}: "
                                f"use e.g. {kind}10k{'_' + split if split else ''}")
            return MetricName(name, kind, count, split)
    raise UserError(f"unknown image metric '{name}': use <kind><count>[_<split>] with kind one of "
                    f"{', '.join(KINDS)}, e.g. fid50k_train, kid50k_train, prdc10k_train, is50k, smnist_modes25k")


def fingerprint(fields: dict, tag: str) -> str:
    h = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()
    return f"{tag}-{h[:16]}"


# -- atomic cache files -----------------------------------------------------------------------

def _atomic_write(path: Path, write: Callable) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RefCache:
    """Reference features on disk, keyed by fingerprint. `log` records (fingerprint, 'hit'|'miss')."""

    def __init__(self, cache_dir):
        self.dir = Path(cache_dir)
        self.log: list[tuple[str, str]] = []

    def get(self, fp: str, fields: dict, extract: Callable[[], torch.Tensor], need_raw: bool,
            need_sqrt: bool) -> dict:
        stats, raw = self.dir / f"{fp}.npz", self.dir / f"{fp}.feats.npy"
        if stats.is_file() and (raw.is_file() or not need_raw):
            self.log.append((fp, "hit"))
            with np.load(stats) as z:
                out = dict(z)
            if need_raw:
                out["feats"] = np.load(raw)
        else:
            self.log.append((fp, "miss"))
            feats = extract().numpy()
            mu, sigma = feature_stats(feats)
            out = {"mu": mu, "sigma": sigma, "feats": feats}
            self.dir.mkdir(parents=True, exist_ok=True)
            # Raw features are 400 MB at 50k x 2048, so only stored when a metric needs them.
            if need_raw:
                _atomic_write(raw, lambda f: np.save(f, feats))
            _atomic_write(self.dir / f"{fp}.json",
                          lambda f: f.write(json.dumps(dict(fields, n=len(feats)), indent=2, default=str).encode()))
            self._save_stats(stats, out)
        if need_sqrt and "sqrt_factor" not in out:
            # A function of sigma, so not part of the fingerprint: stored the first time FID needs
            # it, and every later FID against this reference skips the d x d eigendecomposition.
            out["sqrt_factor"] = sqrt_factor(out["sigma"])
            self._save_stats(stats, out)
        return out

    @staticmethod
    def _save_stats(path: Path, d: dict) -> None:
        keep = {k: d[k] for k in ("mu", "sigma", "sqrt_factor") if k in d}
        _atomic_write(path, lambda f: np.savez(f, **keep))


# -- orchestration ----------------------------------------------------------------------------

Reals = torch.Tensor | Callable[[], torch.Tensor]


class ImageMetrics:
    """Evaluate named image metrics on a generator.

    names:      metric names (see module docstring).
    real:       uint8 [N,C,H,W] of the training split, or {split: tensor} when names use other
                splits; a zero-argument callable in place of a tensor is called only on a cache miss.
                None when no metric needs real images (is, smnist_modes).
    dataset_id: identifies the real images' content: dataset name, preset and manifest checksum
                (e.g. "cifar10:train:md5=c58f30108f718f92721af3b95e74349a"). Hashed, never read.
    crop:       the dataset's crop/resize preset, hashed into the fingerprint.
    weights_path / tv_weights_path: TF-Inception / torchvision Inception files (default: hub cache).
    download:   fetch a missing hub-cache weights file (hash-checked; gan_bench.metrics.weights).
    mnist_classifier_path: default <cache_dir>/../mnist_classifier.pt, i.e.
                <paths.data>/cache/mnist_classifier.pt with the default cache_dir.

    Weights and classifier are checked here, so a missing file fails before training starts.
    """

    def __init__(self, names: list[str], real: Reals | Mapping[str, Reals] | None, dataset_id: str, cache_dir,
                 weights_path=None, device="cpu", batch_size: int = 64, *, crop: str = "none",
                 tv_weights_path=None, mnist_classifier_path=None, download: bool = False):
        self.metrics = [parse_name(n) for n in names]
        self.real = dict(real) if isinstance(real, Mapping) else {} if real is None else {"train": real}
        self.dataset_id, self.crop, self.device = dataset_id, crop, torch.device(device)
        self.batch_size = batch_size
        self.cache = RefCache(cache_dir)
        self.fingerprints: dict[str, str] = {}
        # Reference features by fingerprint, loaded once and kept for later evaluations (mu,
        # sigma and its sqrt factor are 64 MB at 2048-d; raw features, when KID/PRDC need them, more).
        self._refs: dict = {}
        for m in self.metrics:
            if m.split is not None and m.split not in self.real:
                raise UserError(f"metric {m.name} needs the '{m.split}' split of {dataset_id}, which was not "
                                f"given (have: {', '.join(self.real) or 'none'}): pass it, or drop the metric")
        self.extractors = {}
        for m in self.metrics:
            ex = KINDS[m.kind].extractor
            if ex and ex not in self.extractors:
                path = tv_weights_path if ex == "tv_inception_logits_nonstandard" else weights_path
                self.extractors[ex] = get_extractor(ex, path, device, batch_size, download=download)
        self.classifier = self.classifier_info = None
        if any(m.kind == "smnist_modes" for m in self.metrics):
            from gan_bench.metrics.mnist_modes import load_mnist_classifier
            path = mnist_classifier_path or Path(cache_dir).parent / "mnist_classifier.pt"
            self.classifier, self.classifier_info = load_mnist_classifier(path, device)

    @property
    def num_fakes(self) -> int:
        return max((m.count for m in self.metrics), default=0)

    def __call__(self, sample_fn: Callable[[int], torch.Tensor]) -> dict[str, float]:
        """Draw num_fakes images with sample_fn(k) (called repeatedly, k <= batch_size, uint8
        [k,C,H,W]; make it draw from fixed latents for comparable evaluations) and return
        {result key: value}; fills self.fingerprints for the same keys."""
        with no_tf32(), torch.no_grad():
            fake = self._fake_features(sample_fn)
            out = {}
            for m in self.metrics:
                out.update(self._one(m, fake))
        return out

    def _fake_features(self, sample_fn) -> dict:
        """Stream fakes through every extractor batch by batch: only features are kept (50k
        images at 256x256 would be 10 GB, their pool3 features 400 MB)."""
        acc = {name: {layer: [] for layer in ex.layers} for name, ex in self.extractors.items()}
        labels, n, shape = [], 0, None
        while n < self.num_fakes:
            x = sample_fn(min(self.batch_size, self.num_fakes - n))[: self.num_fakes - n]
            if len(x) == 0:
                raise ValueError("sample_fn returned no images")
            as_rgb(x)  # the uint8 contract, checked before any work; extractors repeat grayscale
            shape = shape or tuple(x.shape[1:])
            for name, ex in self.extractors.items():
                for layer, f in ex(x).items():
                    acc[name][layer].append(f)
            if self.classifier is not None:
                from gan_bench.metrics.mnist_modes import stacked_labels
                labels.append(stacked_labels(x, self.classifier))
            n += len(x)
        out = {name: {layer: torch.cat(v) for layer, v in d.items()} for name, d in acc.items()}
        out["labels"] = torch.cat(labels) if labels else None
        out["shape"] = shape
        return out

    def _one(self, m: MetricName, fake: dict) -> dict[str, float]:
        kind, shape = KINDS[m.kind], fake["shape"]
        fake_fields = {"metric": m.kind, "params": kind.params, "n_fake": m.count, "fake_input": "uint8",
                       "resolution": list(shape[1:]), "channels": shape[0]}
        if kind.extractor is None:  # Stacked MNIST: a classifier, no reference set
            from gan_bench.metrics.mnist_modes import count_modes
            r = count_modes(fake["labels"][: m.count])
            fields = dict(fake_fields, classifier_sha256=self.classifier_info["sha256"])
            return self._label(m, kind, fields, {"": float(r["modes"]), "_kl": r["kl"]})

        ex = self.extractors[kind.extractor]
        f = fake[kind.extractor][kind.layer][: m.count]
        fake_fields["extractor"] = dict(ex.protocol, layer=kind.layer)
        if m.kind == "is":
            mean, std = inception_score(f, kind.params["splits"])
            return self._label(m, kind, fake_fields, {"": mean, "_std": std})

        ref, ref_fields = self._reference(m, kind, ex, shape)
        fields = dict(fake_fields, reference=ref_fields)
        if m.kind in FID_KINDS:
            mu, sigma = feature_stats(f)
            vals = {"": frechet_distance(ref["mu"], ref["sigma"], mu, sigma, sqrt_factor1=ref["sqrt_factor"])}
        elif m.kind == "kid":
            p = kind.params
            vals = {"": kernel_inception_distance(f, ref["feats"], p["subsets"], p["max_subset"], p["seed"],
                                                  self.device)}
        else:  # prdc
            vals = {f"_{k}": v for k, v in prdc(f, ref["feats"], kind.params["k"], device=self.device).items()}
        return self._label(m, kind, fields, vals)

    def _label(self, m: MetricName, kind: MetricKind, fields: dict, vals: dict) -> dict[str, float]:
        fp = fingerprint(fields, kind.tag)
        self.fingerprints.update({m.name + s: fp for s in vals})
        return {m.name + s: float(v) for s, v in vals.items()}

    def _reference(self, m: MetricName, kind: MetricKind, ex, shape) -> tuple[dict, dict]:
        """Real features of the metric's split, from the cache when the fingerprint matches.
        The fingerprint uses the requested count, not len(split), so a cache hit never has to
        load the real images (dataset_id pins their content and hence the size)."""
        fields = {"extractor": dict(ex.protocol, layer=kind.layer), "dataset": self.dataset_id,
                  "split": m.split, "count": m.count, "subset": f"sorted-randperm-seed{REAL_SUBSET_SEED}",
                  "resolution": list(shape[1:]), "channels": shape[0], "crop": self.crop, "version": 1}
        fp = fingerprint(fields, "ref-" + kind.tag)

        def extract() -> torch.Tensor:
            src = self.real[m.split]
            real = src() if callable(src) else src
            if tuple(real.shape[1:]) != tuple(shape):
                raise ValueError(f"{m.split} images are {tuple(real.shape[1:])}, fakes {tuple(shape)}")
            if len(real) > m.count:
                g = torch.Generator().manual_seed(REAL_SUBSET_SEED)
                real = real[torch.randperm(len(real), generator=g)[: m.count].sort().values]
            return ex(real)[kind.layer]

        if fp not in self._refs:
            # One cache entry serves e.g. fid50k_train and kid50k_train: store raw features if either needs them.
            users = [o.kind for o in self.metrics
                     if (KINDS[o.kind].extractor, KINDS[o.kind].layer, o.split, o.count)
                     == (kind.extractor, kind.layer, m.split, m.count)]
            self._refs[fp] = self.cache.get(fp, fields, extract, need_raw=any(KINDS[k].needs_raw for k in users),
                                            need_sqrt=any(k in FID_KINDS for k in users))
        return self._refs[fp], fields
