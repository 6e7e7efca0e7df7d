"""Image metrics from one table, with reference statistics cached on disk under a fingerprint.

A metric name carries its protocol, as in StyleGAN2-ADA's metric_main.py:

    <kind>[_]<count>[_<split>|_full]   count = digits with optional k (x1000): 50k, 10k, 500
    fid50k_train   kid50k_train   prdc10k_train   is50k   smnist_modes25k
    fid_logits_nonstandard10k_heldout20   fd_dinov2_50k_train   prdc_dinov2_10k_train

The `_` between kind and count is there exactly when the kind ends in a digit (fd_dinov2_50k, not
fd_dinov250k), so every metric has one spelling: fid_50k_train and fd_dinov250k_train are errors.

`count` fakes are compared with min(count, len(split)) real images of `split` (a fixed-seed subset
when the split is larger). Results are floats keyed by name plus the suffixes the kind's compute
function returns (prdc adds _precision, _recall, _density, _coverage; is adds _std; smnist_modes
adds _kl), and `ImageMetrics.fingerprints` maps each key to a string naming the network and a hash
of everything that produced the number.

KINDS is the table: one MetricKind per kind, with its compute function, the features it reads
(a network of NETWORKS and one of its outputs), what it needs of the real split, and the protocol
constants hashed into its fingerprint. docs/metrics.md shows how to add one.

Real-side features are computed once per fingerprint and cached as <hash>.npz (mu, sigma and
sigma's square-root factor, float64), <hash>.feats.npy (raw float32 features, only when a kind
needs them) and <hash>.json (the fields hashed, for people), each written atomically
(gan_bench.atomic), so a killed run or a parallel sweep never leaves a half-written file to be read.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from gan_bench import atomic
from gan_bench.errors import UserError
from gan_bench.metrics import fid as fid_mod, prdc as prdc_mod
from gan_bench.metrics.features import as_rgb, get_extractor, no_tf32
from gan_bench.metrics.fid import feature_stats, frechet_distance, sqrt_factor
from gan_bench.metrics.inception_score import inception_score
from gan_bench.metrics.kid import kernel_inception_distance
from gan_bench.metrics.prdc import prdc

# -- networks: what turns uint8 images [N, C, H, W] into features ------------------------------


class Network:
    """A frozen network as metrics see it: `layers`, `net(x) -> {layer: features [N, ...]}`, and
    `fields(layer)`, what about it goes into every fingerprint of a number computed from it."""

    def __init__(self, run: Callable, layers: tuple, fields: Callable[[str], dict]):
        self.run, self.layers, self.fields = run, tuple(layers), fields

    def __call__(self, x: torch.Tensor) -> dict:
        return self.run(x)


def _extractor(name: str, weights_key: str):
    def load(opts: dict) -> Network:
        ex = get_extractor(name, opts[weights_key], opts["device"], opts["batch_size"], download=opts["download"])
        return Network(ex, ex.layers, lambda layer: {"extractor": dict(ex.protocol, layer=layer)})
    return load


def _load_classifier(opts: dict):
    from gan_bench.metrics.mnist_modes import load_mnist_classifier

    path = opts["mnist_classifier_path"] or Path(opts["cache_dir"]).parent / "mnist_classifier.pt"
    return load_mnist_classifier(path, opts["device"])


def _mnist_classifier(opts: dict) -> Network:
    from gan_bench.metrics.mnist_modes import stacked_labels

    classifier, info = _load_classifier(opts)
    return Network(lambda x: {"labels": stacked_labels(x, classifier)}, ("labels",),
                   lambda layer: {"classifier_sha256": info["sha256"]})


def _mnist_digits(opts: dict) -> Network:
    # The same classifier on single MNIST digits: its penultimate features and its labels.
    from gan_bench.metrics.mnist_modes import ARCH, digit_features

    classifier, info = _load_classifier(opts)
    return Network(lambda x: digit_features(x, classifier), ("penultimate", "labels"),
                   lambda layer: {"classifier_sha256": info["sha256"], "arch": ARCH, "layer": layer})


# name -> loader(options of ImageMetrics) -> Network; loaded once, when a metric names it.
NETWORKS = {
    "tf_inception": _extractor("tf_inception", "weights_path"),
    "tv_inception_logits_nonstandard": _extractor("tv_inception_logits_nonstandard", "tv_weights_path"),
    "dinov2_vitl14": _extractor("dinov2_vitl14", "dinov2_weights_path"),
    "mnist_classifier": _mnist_classifier,
    "mnist_digits": _mnist_digits,
}

# -- compute functions: one per kind, fake features (and the reference) -> {key suffix: value} --


@dataclass(frozen=True)
class Inputs:
    fake: torch.Tensor         # the first `count` fakes' features (or labels)
    real: dict | None          # the reference: the MetricKind.real entries, from the cache
    params: dict               # the kind's protocol constants
    device: torch.device


def fid(x: Inputs) -> dict:
    mu, sigma = feature_stats(x.fake)
    return {"": frechet_distance(x.real["mu"], x.real["sigma"], mu, sigma, sqrt_factor1=x.real["sqrt_factor"])}


def kid(x: Inputs) -> dict:
    p = x.params
    return {"": kernel_inception_distance(x.fake, x.real["feats"], p["subsets"], p["max_subset"], p["seed"], x.device)}


def prdc_metrics(x: Inputs) -> dict:
    return {f"_{k}": v for k, v in prdc(x.fake, x.real["feats"], x.params["k"], device=x.device).items()}


def inception_score_metrics(x: Inputs) -> dict:
    mean, std = inception_score(x.fake, x.params["splits"])
    return {"": mean, "_std": std}


def stacked_mnist_modes(x: Inputs) -> dict:
    from gan_bench.metrics.mnist_modes import count_modes

    r = count_modes(x.fake)
    return {"": float(r["modes"]), "_kl": r["kl"]}


def mnist_classes(x: Inputs) -> dict:
    from gan_bench.metrics.mnist_modes import count_classes

    r = count_classes(x.fake, x.params["min_share"])
    return {"": float(r["classes"]), "_kl": r["kl"]}


# -- the table -----------------------------------------------------------------------------------

STATS = ("mu", "sigma", "sqrt_factor")  # what FID needs of the reference
RAW = ("feats",)                        # the real features themselves (KID, PRDC)


@dataclass(frozen=True)
class MetricKind:
    compute: Callable[[Inputs], dict]
    network: str            # a key of NETWORKS
    layer: str              # the network output it reads
    real: tuple             # what it needs of the real split: () = no split, STATS, RAW
    params: dict            # protocol constants: passed to compute and hashed into the fingerprint
    tag: str                # fingerprint prefix: says what was measured, at a glance
    min_count: int = 2      # fewest samples the statistic is defined for
    input: tuple | None = None  # the image shape (C, H, W) the network reads; None: any

    @property
    def needs_split(self) -> bool:
        return bool(self.real)


KINDS = {
    "fid": MetricKind(fid, "tf_inception", "2048", STATS, {"method": fid_mod.METHOD}, "tfinception-pool3"),
    "kid": MetricKind(kid, "tf_inception", "2048", RAW,
                      {"kernel": "poly3", "subsets": 100, "max_subset": 1000, "seed": 0}, "tfinception-pool3"),
    "prdc": MetricKind(prdc_metrics, "tf_inception", "2048", RAW, {"k": 5, "method": prdc_mod.METHOD},
                       "tfinception-pool3", min_count=6),
    "is": MetricKind(inception_score_metrics, "tf_inception", "logits_unbiased", (), {"splits": 10},
                     "tfinception-logits", min_count=10),
    "fid_logits_nonstandard": MetricKind(fid, "tv_inception_logits_nonstandard", "logits", STATS,
                                         {"method": fid_mod.METHOD},
                                         "tvinception-logits-nonstandard"),
    "smnist_modes": MetricKind(stacked_mnist_modes, "mnist_classifier", "labels", (),
                               {"modes": 1000, "kl": "hist||uniform, ln"}, "mnistcnn", input=(3, 28, 28)),
    # MNIST papers' "FID on a classifier": Frechet distance of the mode classifier's penultimate
    # features (128-d), and the digit classes a generator covers.
    "fd_mnist": MetricKind(fid, "mnist_digits", "penultimate", STATS, {"method": fid_mod.METHOD},
                           "mnistcnn-penultimate", input=(1, 28, 28)),
    # Frechet distance and PRDC in DINOv2 ViT-L/14 space (Stein et al. 2023; EDM2's fd_dinov2).
    "fd_dinov2": MetricKind(fid, "dinov2_vitl14", "cls", STATS, {"method": fid_mod.METHOD}, "dinov2-vitl14-cls"),
    "prdc_dinov2": MetricKind(prdc_metrics, "dinov2_vitl14", "cls", RAW, {"k": 5, "method": prdc_mod.METHOD},
                              "dinov2-vitl14-cls", min_count=6),
    "mnist_classes": MetricKind(mnist_classes, "mnist_digits", "labels", (),
                                {"classes": 10, "min_share": 0.1, "kl": "hist||uniform, ln"}, "mnistcnn",
                                input=(1, 28, 28)),
}
REAL_SUBSET_SEED = 0


# StyleGAN2-ADA's `fid50k_full`: the reference is every image of the training split, however many.
FULL = "full"


def _name_re() -> re.Pattern:
    # Built from the table at each parse, so an entry added to KINDS is a name at once. Longest
    # kind first, so fid_logits_nonstandard is not read as fid + garbage. A kind ending in a digit
    # is followed by `_` (fd_dinov2_50k): its own digits would otherwise run into the count.
    kinds = "|".join(re.escape(k) + ("_" if k[-1].isdigit() else "") for k in sorted(KINDS, key=len, reverse=True))
    return re.compile(rf"^(?P<kind>{kinds})(?P<count>\d+)(?P<k>k?)(?:_(?P<split>[a-z][a-z0-9]*))?$")


def spell(kind: str, count: str, split: str | None = None) -> str:
    """The name of `kind` at `count` ("10k", "500"), e.g. fid10k_train, fd_dinov2_10k_train."""
    return f"{kind}{'_' if kind[-1].isdigit() else ''}{count}{'_' + split if split else ''}"


def default_cache_dir(data_root) -> Path:
    """<paths.data>/cache/metrics: next to the data the statistics describe."""
    return Path(data_root) / "cache" / "metrics"


@dataclass(frozen=True)
class MetricName:
    name: str
    kind: str
    count: int              # fakes drawn
    split: str | None       # the real split compared against
    real_count: int | None  # reals taken from it: at most this many (a fixed-seed subset); None = all


def parse_name(name: str) -> MetricName:
    m = _name_re().match(name)
    if m:
        kind, split = m["kind"].removesuffix("_"), m["split"]  # no kind itself ends in "_"
        count = int(m["count"]) * (1000 if m["k"] else 1)
        full = split == FULL
        split = "train" if full else split
        if KINDS[kind].needs_split == (split is not None):
            if count < KINDS[kind].min_count:
                raise UserError(f"metric {name} needs at least {KINDS[kind].min_count} samples, got {count}: "
                                f"use e.g. {spell(kind, '10k', split)}")
            # The reference set is decided here and only here: `<split>` takes min(count, len)
            # images of the split (a fixed subset), `_full` every image of the training split.
            return MetricName(name, kind, count, split, real_count=count if split and not full else None)
    raise UserError(f"unknown image metric '{name}': use <kind><count>[_<split>|_full] (<kind>_<count> when the "
                    f"kind ends in a digit) with kind one of {', '.join(KINDS)}, e.g. fid50k_train, fid50k_full, "
                    f"kid50k_train, prdc10k_train, is50k, fd_dinov2_50k_train, prdc_dinov2_10k_train, "
                    f"smnist_modes25k, fd_mnist10k_test, mnist_classes10k")


def fingerprint(fields: dict, tag: str) -> str:
    h = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()
    return f"{tag}-{h[:16]}"


# -- reference cache ---------------------------------------------------------------------------

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
            # Raw features are 400 MB at 50k x 2048, so only stored when a metric needs them.
            if need_raw:
                atomic.write_bytes(raw, lambda f: np.save(f, feats))
            atomic.write_json(self.dir / f"{fp}.json", dict(fields, n=len(feats)), default=str)
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
        atomic.write_bytes(path, lambda f: np.savez(f, **keep))


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
    weights_path / tv_weights_path / dinov2_weights_path: TF-Inception / torchvision Inception /
                DINOv2 ViT-L/14 files (default: hub cache).
    download:   fetch a missing hub-cache weights file (hash-checked; gan_bench.metrics.weights).
    mnist_classifier_path: default <cache_dir>/../mnist_classifier.pt, i.e.
                <paths.data>/cache/mnist_classifier.pt with the default cache_dir.
    sample_shape: the images' (C, H, W), when known before sampling: metrics whose network reads
                another shape (smnist_modes on MNIST, fd_mnist on CIFAR-10) are refused here.

    Weights and classifier are checked here, so a missing file fails before training starts.
    """

    def __init__(self, names: list[str], real: Reals | Mapping[str, Reals] | None, dataset_id: str, cache_dir,
                 weights_path=None, device="cpu", batch_size: int = 64, *, crop: str = "none",
                 tv_weights_path=None, mnist_classifier_path=None, download: bool = False,
                 sample_shape: tuple | None = None, dinov2_weights_path=None):
        self.metrics = [parse_name(n) for n in names]
        for m in self.metrics:  # a metric on the wrong data: one line now, not a shape error at the first evaluation
            want = KINDS[m.kind].input
            if want is not None and sample_shape is not None and tuple(sample_shape) != want:
                raise UserError(f"metric {m.name} reads {'x'.join(map(str, want))} images, {dataset_id.split(':')[0]} "
                                f"has {'x'.join(map(str, sample_shape))}: drop it from eval.metrics / "
                                f"eval.final_metrics (docs/metrics.md lists which metric fits which data)")
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
        opts = {"weights_path": weights_path, "tv_weights_path": tv_weights_path,
                "dinov2_weights_path": dinov2_weights_path, "device": device,
                "batch_size": batch_size, "cache_dir": cache_dir, "mnist_classifier_path": mnist_classifier_path,
                "download": download}
        self.networks: dict[str, Network] = {}
        for m in self.metrics:
            name = KINDS[m.kind].network
            if name not in self.networks:
                self.networks[name] = NETWORKS[name](opts)

    @property
    def num_fakes(self) -> int:
        return max((m.count for m in self.metrics), default=0)

    def __call__(self, sample_fn: Callable[[int], torch.Tensor]) -> dict[str, float]:
        """Draw num_fakes images with sample_fn(k) (called repeatedly, k <= batch_size, uint8
        [k,C,H,W]; make it draw from fixed latents for comparable evaluations) and return
        {result key: value}; fills self.fingerprints for the same keys."""
        return self.each(lambda k: sample_fn(k)[None])[0]

    def each(self, sample_fn: Callable[[int], torch.Tensor], budget: int | None = None) -> list[dict | None]:
        """As __call__, for R generators at once (the replicas of a seed ensemble): sample_fn(k)
        gives uint8 [R, k, C, H, W], and each generator gets its own results, against the same
        reference statistics (loaded or computed once). Fake features are held until the
        statistics are computed, R sets of them; with `budget` (bytes) only as many generators
        as fit are kept after the first batch, and the others get None: evaluate them in
        another pass."""
        with no_tf32(), torch.no_grad():
            fakes, shape = self._fake_features(sample_fn, budget)
            return [None if fake is None else {k: v for m in self.metrics for k, v in self._one(m, fake, shape).items()}
                    for fake in fakes]

    def _fake_features(self, sample_fn, budget: int | None = None) -> tuple[list, tuple]:
        """Stream fakes through every network batch by batch: only features are kept (50k
        images at 256x256 would be 10 GB, their pool3 features 400 MB), one set per generator."""
        acc, keep, n, shape = None, None, 0, None
        while n < self.num_fakes:
            x = sample_fn(min(self.batch_size, self.num_fakes - n))[:keep, : self.num_fakes - n]
            if x.ndim != 5 or x.shape[1] == 0:
                raise ValueError(f"sample_fn returned no images [R, k, C, H, W] (got {tuple(x.shape)})")
            if acc is None:
                shape, generators = tuple(x.shape[2:]), len(x)
                acc = [{name: {layer: [] for layer in net.layers} for name, net in self.networks.items()}
                       for _ in range(generators)]
            flat = x.flatten(0, 1)
            as_rgb(flat)  # the uint8 contract, checked before any work; extractors repeat grayscale
            for name, net in self.networks.items():
                # One call for every generator's images: a small network (the MNIST classifier)
                # is call-bound at one generator's batch; extractors batch internally anyway. The
                # networks are per-image (eval mode), so the batch mix does not change a feature.
                for layer, f in net(flat).items():
                    for r, fr in enumerate(f.unflatten(0, x.shape[:2])):
                        acc[r][name][layer].append(fr)
            if keep is None:  # after the first batch: how many generators' features fit the budget
                batch = [f[0] for layers in acc[0].values() for f in layers.values()]  # one generator's
                per_image = sum(f.numel() * f.element_size() for f in batch) / x.shape[1]
                keep = generators if budget is None else max(1, int(budget // (per_image * self.num_fakes)))
                if keep < generators:  # the kept first batches are views of every generator's: copy them out
                    acc = [{name: {layer: [v[0].clone()] for layer, v in d.items()} for name, d in a.items()}
                           for a in acc[:keep]]
            n += x.shape[1]
        kept = [{name: {layer: torch.cat(v) for layer, v in d.items()} for name, d in a.items()} for a in acc]
        return kept + [None] * (generators - len(kept)), shape

    def _one(self, m: MetricName, fake: dict, shape: tuple) -> dict[str, float]:
        kind = KINDS[m.kind]
        net = self.networks[kind.network]
        fields = {"metric": m.kind, "params": kind.params, "n_fake": m.count, "fake_input": "uint8",
                  "resolution": list(shape[1:]), "channels": shape[0], **net.fields(kind.layer)}
        real = None
        if kind.real:
            real, fields["reference"] = self._reference(m, kind, net, shape)
        vals = kind.compute(Inputs(fake[kind.network][kind.layer][: m.count], real, kind.params, self.device))
        fp = fingerprint(fields, kind.tag)
        self.fingerprints.update({m.name + s: fp for s in vals})
        return {m.name + s: float(v) for s, v in vals.items()}

    def _reference(self, m: MetricName, kind: MetricKind, net: Network, shape) -> tuple[dict, dict]:
        """Real features of the metric's split, from the cache when the fingerprint matches.
        The fingerprint uses the requested count, not len(split), so a cache hit never has to
        load the real images (dataset_id pins their content and hence the size)."""
        fields = {**net.fields(kind.layer), "dataset": self.dataset_id, "split": m.split,
                  "count": m.real_count if m.real_count is not None else "all",
                  "subset": f"sorted-randperm-seed{REAL_SUBSET_SEED}", "resolution": list(shape[1:]),
                  "channels": shape[0], "crop": self.crop, "version": 1}
        fp = fingerprint(fields, "ref-" + kind.tag)

        def extract() -> torch.Tensor:
            src = self.real[m.split]
            real = src() if callable(src) else src
            if tuple(real.shape[1:]) != tuple(shape):
                raise ValueError(f"{m.split} images are {tuple(real.shape[1:])}, fakes {tuple(shape)}")
            if m.real_count is not None and len(real) > m.real_count:
                g = torch.Generator().manual_seed(REAL_SUBSET_SEED)
                real = real[torch.randperm(len(real), generator=g)[: m.real_count].sort().values]
            return net(real)[kind.layer]

        if fp not in self._refs:
            # One cache entry serves e.g. fid50k_train and kid50k_train: store what any of them needs.
            users = [KINDS[o.kind].real for o in self.metrics
                     if (KINDS[o.kind].network, KINDS[o.kind].layer, o.split, o.real_count)
                     == (kind.network, kind.layer, m.split, m.real_count)]
            self._refs[fp] = self.cache.get(fp, fields, extract, need_raw=any("feats" in r for r in users),
                                            need_sqrt=any("sqrt_factor" in r for r in users))
        return self._refs[fp], fields
