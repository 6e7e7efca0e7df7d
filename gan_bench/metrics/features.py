"""Feature extractors for the image metrics.

Three networks, each named by what it computes so the name can go into fingerprints:

- `tf_inception`: torch-fidelity's FeatureExtractorInceptionV3, a port of the TF-Inception
  2015-12-05 graph of the standard FID/KID/IS protocol (pool3 = 2048-d,
  `logits_unbiased` = 1008-d for IS). Input uint8, resized inside the network exactly as TF 1.x did.
- `tv_inception_logits_nonstandard`: torchvision inception_v3 with its IMAGENET1K_V1 weights and
  1000-d logits as features, the preprocessing of the (alpha_D, alpha_G)-GAN papers. Its numbers
  are NOT comparable with standard FID; the name says so wherever it appears.
- `dinov2_vitl14`: DINOv2 ViT-L/14 (timm's architecture, the official weights), CLS token (1024-d),
  images resized to 224 px bicubic with antialias as NVlabs EDM2 does (gan_bench.metrics.dinov2).

Weights files (gan_bench.metrics.weights) come from torch hub's cache, a path the user gives, or
a hash-checked download into that cache on first use (eval.download, on by default in runs).
"""

import contextlib
import time
import warnings
from pathlib import Path

import torch

from gan_bench.data.images import to_uint8  # noqa: F401  (the one quantization of fakes, re-exported)
from gan_bench.errors import UserError
from gan_bench.metrics.weights import (  # noqa: F401
    DINOV2_VITL14,
    TF_INCEPTION,
    TV_INCEPTION,
    WeightsFile,
    file_sha256,
    hub_checkpoint_dir,
    resolve_weights,
)


def check_weights(spec: WeightsFile, path: Path) -> str:
    """Return the file's SHA-256. A file carrying the standard name must carry its content (a
    truncated or different file under that name would silently change every number); a file
    under another name is the user's explicit choice: accepted, flagged, and fingerprinted."""
    if spec.size is not None and path.name == spec.filename and (n := path.stat().st_size) != spec.size:
        raise UserError(f"weights file {path} has {n} bytes, expected {spec.size} (a partial or different "
                        f"file): delete it and download {spec.url} again")
    sha = file_sha256(path)
    if spec.sha256_prefix is None:  # no published hash: the strict load is the check
        return sha
    if sha.startswith(spec.sha256_prefix):
        return sha
    if path.name == spec.filename:
        raise UserError(f"weights file {path} has SHA-256 {sha[:16]}..., expected it to begin with "
                        f"{spec.sha256_prefix}: delete it and download {spec.url} again")
    warnings.warn(f"{path} is not the standard {spec.filename} (SHA-256 {sha[:16]}...): "
                  "its metric values are not comparable with published ones", stacklevel=3)
    return sha


@contextlib.contextmanager
def no_tf32():
    """Full fp32 matmuls/convolutions while measuring: TF32 shifts FID in the first decimal."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def as_rgb(images: torch.Tensor) -> torch.Tensor:
    """Check the uint8 contract; grayscale [N,1,H,W] becomes 3 identical channels."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise TypeError(f"expected uint8 images [N, 1 or 3, H, W], got {images.dtype} {tuple(images.shape)}"
                        " (quantize fakes with gan_bench.metrics.features.to_uint8)")
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


class Extractor:
    """A frozen network mapping uint8 images to named float32 feature layers, batched.

    `protocol` is everything about the extractor that changes its features; it goes into every
    fingerprint. `images_seen` counts images run through it (tests check cache hits with it).
    """

    def __init__(self, name: str, net: torch.nn.Module, layers: tuple, protocol: dict,
                 device="cpu", batch_size: int = 64):
        self.name, self.layers, self.protocol = name, layers, protocol
        self.device, self.batch_size = torch.device(device), batch_size
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.images_seen = 0

    def _forward(self, x: torch.Tensor) -> tuple:
        raise NotImplementedError

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> dict:
        out = {k: [] for k in self.layers}
        with no_tf32():
            for batch in images.split(self.batch_size):
                x = as_rgb(batch).to(self.device, non_blocking=True)
                for k, f in zip(self.layers, self._forward(x)):
                    out[k].append(f.float().cpu())
                self.images_seen += len(batch)
        return {k: torch.cat(v) for k, v in out.items()}

    @torch.inference_mode()
    def seconds_per_image(self, shape: tuple, n: int | None = None) -> float:
        """Measured: one batch of n uint8 images of `shape` [C, H, W] after one warm-up pass
        (n = 2 on the CPU, a full batch on a GPU, where small batches are launch-bound). Not
        counted in images_seen."""
        n = n or (self.batch_size if self.device.type == "cuda" else 2)
        x = torch.zeros((n, *shape), dtype=torch.uint8, device=self.device)
        with no_tf32():
            for _ in range(2):  # the first pass warms up (allocation, cuDNN autotuning)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                t0 = time.perf_counter()
                self._forward(as_rgb(x))
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
        return (time.perf_counter() - t0) / n


class TFInception(Extractor):
    """torch-fidelity's TF-Inception port: pool3 '2048' (FID/KID/PRDC) and 'logits_unbiased'
    (IS; the original IS code multiplies pool3 by the softmax weights without the bias)."""

    LAYERS = ("2048", "logits_unbiased")

    def __init__(self, weights_path=None, device="cpu", batch_size: int = 64):
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = resolve_weights(TF_INCEPTION, weights_path)
        sha = check_weights(TF_INCEPTION, path)
        try:
            # torch-fidelity unpickles with weights_only=False; a plain state dict (what the
            # release file is) must load without it first, so a foreign file cannot run code.
            torch.load(path, map_location="cpu", weights_only=True)
            net = FeatureExtractorInceptionV3("inception-v3-compat", list(self.LAYERS),
                                              feature_extractor_weights_path=str(path))
        except Exception as e:  # wrong keys/shapes: the file is not this network's weights
            raise UserError(f"cannot load {path} as TF-Inception weights ({type(e).__name__}): "
                            f"download {TF_INCEPTION.url}") from e
        protocol = {"net": "torch-fidelity FeatureExtractorInceptionV3", "weights": path.name,
                    "weights_sha256": sha, "resize": "tf1x-bilinear-299", "input": "uint8 RGB"}
        super().__init__("tf_inception", net, self.LAYERS, protocol, device, batch_size)

    def _forward(self, x):
        return self.net(x)  # takes uint8 itself: the resize and scaling are part of the protocol


class TVInceptionLogits(Extractor):
    """torchvision inception_v3 (IMAGENET1K_V1), 1000-d logits: the non-standard 'FID' of the
    (alpha_D, alpha_G)-GAN papers. Preprocessing as their code (gan.py, get_fid_score): images in
    [0, 1], then the weights' own `IMAGENET1K_V1.transforms()`: bilinear antialiased resize of the
    short side to 342, centre crop 299, ImageNet mean/std; transform_input=True as torchvision sets
    it for these weights. The crop drops about 13% of each border, so this is not a plain resize."""

    LAYERS = ("logits",)
    MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    RESIZE, CROP = 342, 299  # torchvision's Inception_V3_Weights.IMAGENET1K_V1 transforms

    def __init__(self, weights_path=None, device="cpu", batch_size: int = 64):
        from torchvision.models import inception_v3

        path = resolve_weights(TV_INCEPTION, weights_path)
        sha = check_weights(TV_INCEPTION, path)
        net = inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=False)
        try:
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as e:
            raise UserError(f"cannot load {path} as torchvision inception_v3 weights ({type(e).__name__}): "
                            f"download {TV_INCEPTION.url}") from e
        protocol = {"net": "torchvision inception_v3 IMAGENET1K_V1 logits (NON-STANDARD)",
                    "weights": path.name, "weights_sha256": sha,
                    "resize": f"torchvision-bilinear-antialias-{self.RESIZE}-centercrop-{self.CROP}",
                    "normalize": "imagenet", "transform_input": True, "input": "uint8 RGB"}
        super().__init__("tv_inception_logits_nonstandard", net, self.LAYERS, protocol, device, batch_size)
        mean = torch.tensor(self.MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.STD, device=self.device).view(1, 3, 1, 1)
        self._mean, self._std = mean, std

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 3, H, W] -> the network's input [B, 3, 299, 299]."""
        from torchvision.transforms.v2 import functional as TF

        x = TF.resize(x.float() / 255, [self.RESIZE], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        return (TF.center_crop(x, [self.CROP]) - self._mean) / self._std

    def _forward(self, x):
        return (self.net(self.preprocess(x)),)


class DINOv2(Extractor):
    """DINOv2 ViT-L/14, CLS token after the final norm (1024-d): FD-DINOv2 as NVlabs EDM2 computes
    it (calculate_metrics.py, DINOv2Detector, resize_mode='torch'). uint8 -> float32, bicubic
    antialiased resize to 224 x 224, / 255, ImageNet mean/std; timm's architecture with the
    official checkpoint, position embedding interpolated as the official model does
    (gan_bench.metrics.dinov2). `arch` exists for tests (a tiny ViT of the same kind)."""

    LAYERS = ("cls",)

    def __init__(self, weights_path=None, device="cpu", batch_size: int = 64, arch: dict | None = None):
        from gan_bench.metrics import dinov2

        path = resolve_weights(DINOV2_VITL14, weights_path)
        sha = check_weights(DINOV2_VITL14, path)
        arch = dict(dinov2.ARCH if arch is None else arch)
        try:
            net = dinov2.build(torch.load(path, map_location="cpu", weights_only=True), dinov2.SIZE, arch)
        except Exception as e:  # refused unpickling, wrong keys or shapes: not these weights
            raise UserError(f"cannot load {path} as DINOv2 ViT-L/14 weights ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:160]}): download {DINOV2_VITL14.url}") from e
        protocol = {"net": f"timm {dinov2.TIMM_NAME} (DINOv2 ViT-L/14) CLS after norm", "weights": path.name,
                    "weights_sha256": sha, "arch": arch, "resize": f"torch-bicubic-antialias-{dinov2.SIZE}",
                    "pos_embed": f"dinov2-bicubic-offset{dinov2.POS_OFFSET}-noaa", "normalize": "imagenet",
                    "input": "uint8 RGB"}
        super().__init__("dinov2_vitl14", net, self.LAYERS, protocol, device, batch_size)
        self.preprocess = dinov2.preprocess

    def _forward(self, x):
        return (self.net(self.preprocess(x)),)


EXTRACTORS = {"tf_inception": TFInception, "tv_inception_logits_nonstandard": TVInceptionLogits,
              "dinov2_vitl14": DINOv2}
WEIGHTS = {"tf_inception": TF_INCEPTION, "tv_inception_logits_nonstandard": TV_INCEPTION,
           "dinov2_vitl14": DINOV2_VITL14}
_LOADED: dict = {}


def get_extractor(name: str, weights_path=None, device="cpu", batch_size: int = 64,
                  download: bool = False) -> Extractor:
    """Build (or reuse: one process evaluates many times) an extractor by registry name.
    download: fetch a missing hub-cache weights file first (see gan_bench.metrics.weights)."""
    cls = EXTRACTORS[name]
    path = resolve_weights(WEIGHTS[name], weights_path, download)
    key = (name, str(path.resolve()), file_sha256(path), str(torch.device(device)))
    if key not in _LOADED:
        _LOADED[key] = cls(path, device, batch_size)
    _LOADED[key].batch_size = batch_size  # memory only: features do not depend on it
    return _LOADED[key]
