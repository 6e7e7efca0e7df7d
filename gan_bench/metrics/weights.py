"""The Inception weights files: where they come from, where they live, how they are checked, and
their download on first use (as torch-fidelity, pytorch-fid and clean-fid do).

Files live in torch hub's checkpoint cache, `torch.hub.get_dir()/checkpoints` (~/.cache/torch/hub/
checkpoints, or $TORCH_HOME/hub/checkpoints), under the names torch-fidelity and torchvision use,
so a file either library already fetched is found and used as is.

Checksums: the 8 hex digits that end each name are, by torch hub's convention, the first digits of
the file's SHA-256; that prefix is all the maintained libraries publish (torch-fidelity 0.4 and
pytorch-fid load the file unchecked, torchvision checks the prefix with check_hash=True). gan-bench
checks the prefix on every download and every load, and records the full SHA-256 of the file it
used in every fingerprint. DINOv2's file (`dinov2_vitl14_pretrain.pth`) has no hash in its name and
none is published anywhere we could find (facebookresearch/dinov2 loads it with torch hub,
unchecked; so do EDM2, dgm-eval and torch-fidelity): its spec has no prefix, and a downloaded file
must instead pass `validate` (a strict load into the architecture) before it takes the real name.

A download goes to a temporary file in the destination directory and is os.replace'd into place
only once its hash matches, so a killed run, a truncated transfer or a wrong file never leaves
anything under the real name. If every source fails (an offline node), the run stops before
training with one line that says what to do.
"""

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from gan_bench.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightsFile:
    label: str
    filename: str
    urls: tuple          # tried in order; each one's bytes are checked against sha256_prefix
    sha256_prefix: str | None  # None: no published hash (then `validate` is the check)
    config_key: str      # where a user points gan-bench at the file instead of the hub cache
    # Called on a downloaded file before it takes the real name; raises ValueError if the bytes
    # are not these weights (a check beside the hash, or the only one where none is published).
    validate: Callable[[Path], None] | None = None
    size: int | None = None  # bytes, where the source states it: a cheap first check of a large file

    @property
    def hash_note(self) -> str:
        return (f"SHA-256 begins {self.sha256_prefix}" if self.sha256_prefix
                else "no published SHA-256: checked by loading it into the network")

    @property
    def url(self) -> str:
        return self.urls[0]


# torch-fidelity 0.4 feature_extractor_inceptionv3.URL_INCEPTION_V3; the same TF-Inception
# 2015-12-05 port is pytorch-fid's FID_WEIGHTS_URL under the same hash suffix (tried second: it is
# accepted only if its bytes pass the same check).
TF_INCEPTION = WeightsFile(
    "TF-Inception (torch-fidelity)", "weights-inception-2015-12-05-6726825d.pth",
    ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
     "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"),
    "6726825d", "eval.inception_weights")
# torchvision.models.Inception_V3_Weights.IMAGENET1K_V1.url
TV_INCEPTION = WeightsFile(
    "torchvision Inception-v3", "inception_v3_google-0cc3c7bd.pth",
    ("https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",),
    "0cc3c7bd", "eval.torchvision_inception_weights")



def _dinov2_state_dict(path: Path) -> None:
    """A downloaded DINOv2 file must be a plain state dict of the ViT-L/14 architecture."""
    from gan_bench.metrics.dinov2 import check_state_dict

    try:
        check_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as e:  # unpickling refused, not a zip, keys or shapes differ
        raise ValueError(f"not DINOv2 ViT-L/14 weights ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from e


# facebookresearch/dinov2 hubconf (dinov2/hub/backbones.py: _DINOV2_BASE_URL + "/dinov2_vitl14/
# dinov2_vitl14_pretrain.pth"), what EDM2, dgm-eval and torch-fidelity 0.4 load through torch.hub,
# and timm's pretrained_cfg `url` for vit_large_patch14_dinov2.lvd142m. Meta's own loader checks no
# hash. SHA-256 d5383ea8f4877b2472eb973e0fd72d557c7da5d3611bd527ceeb1d7162cbf428, 1,217,586,395
# bytes: the expected_sha256 that finegrain-ai/refiners pins for this URL
# (src/refiners/conversion/models/dinov2.py), the same SHA-256 and size in the Hugging Face LFS
# pointers of independent re-uploads of the file, and the URL's Content-Length. The strict load into
# ViT-L/14 stays as a second check.
DINOV2_VITL14 = WeightsFile(
    "DINOv2 ViT-L/14", "dinov2_vitl14_pretrain.pth",
    ("https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth",),
    "d5383ea8", "eval.dinov2_weights", validate=_dinov2_state_dict, size=1_217_586_395)

TIMEOUT_S = 30  # per connection attempt and per read: an offline node fails fast, a slow link does not


def hub_checkpoint_dir() -> Path:
    """torch hub's standard cache ($TORCH_HOME/hub/checkpoints, default ~/.cache/torch/hub/...)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _without_it() -> str:
    return "or train without image metrics: eval.metrics=[] eval.final_metrics=[]"


def resolve_weights(spec: WeightsFile, path=None, download: bool = False) -> Path:
    """The local weights file: `path` if given (never downloaded: the user chose it), else the hub
    cache, downloaded there first if missing and `download`."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UserError(f"missing {spec.label} weights {p} (set by {spec.config_key}): put {spec.filename} "
                            f"there (from {spec.url}), or drop {spec.config_key} to use {hub_checkpoint_dir()}/, "
                            f"{_without_it()}")
        return p
    p = hub_checkpoint_dir() / spec.filename
    if p.is_file():
        return p
    if not download:
        raise UserError(f"missing {spec.label} weights {p} ({spec.hash_note}): download "
                        f"{spec.url} into {p.parent}/ (or let gan-bench do it: eval.download=true), "
                        f"or set {spec.config_key}=PATH, {_without_it()}")
    return fetch(spec, p)


def fetch(spec: WeightsFile, dest: Path, timeout: float = TIMEOUT_S) -> Path:
    """Download spec into dest, trying spec.urls in order; UserError (one line) if none works."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in spec.urls:
        log.warning("downloading %s weights %s from %s into %s/", spec.label, spec.filename, url, dest.parent)
        try:
            sha = _download(url, dest, spec.sha256_prefix, timeout, spec.validate, spec.size)
            log.warning("downloaded %s (SHA-256 %s)", dest, sha)
            return dest
        except (OSError, ValueError, http.client.HTTPException) as e:  # offline, refused, timeout, HTTP, hash
            errors.append(f"{urllib.parse.urlsplit(url).netloc}: {getattr(e, 'reason', None) or e}")
    raise UserError(f"could not download {spec.label} weights {spec.filename} ({'; '.join(errors)}): put the "
                    f"file from {spec.url} into {dest.parent}/ ({spec.hash_note}), or set "
                    f"{spec.config_key}=PATH, {_without_it()}")


def _download(url: str, dest: Path, sha256_prefix: str | None, timeout: float,
              validate: Callable[[Path], None] | None = None, size: int | None = None) -> str:
    """Stream url into a temporary file beside dest, hashing as it goes; os.replace it onto dest
    only if the SHA-256 begins with sha256_prefix (when there is one) and `validate` accepts it.
    Nothing is left behind on any failure."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        h = hashlib.sha256()
        req = urllib.request.Request(url, headers={"User-Agent": "gan-bench"})
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(req, timeout=timeout) as resp:
            for block in iter(lambda: resp.read(1 << 20), b""):
                h.update(block)
                f.write(block)
        sha = h.hexdigest()
        if size is not None and Path(tmp).stat().st_size != size:
            raise ValueError(f"{Path(tmp).stat().st_size} bytes, expected {size}")
        if sha256_prefix is not None and not sha.startswith(sha256_prefix):
            raise ValueError(f"SHA-256 {sha[:16]}... does not begin with {sha256_prefix}")
        if validate is not None:
            validate(Path(tmp))
        os.replace(tmp, dest)
        return sha
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_SHA_CACHE: dict = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, memoized per (path, size, mtime) since weights are ~100 MB."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]
