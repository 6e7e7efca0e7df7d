"""Image data sets. Each public loader is a dataset config's _target_ and returns a DataSet of uint8
[N, C, H, W] tensors that are memory maps of the prepared cache (gan_bench.data.cache): the source
(archive, lmdb, folder) is converted once, on first use or by `gan-bench prepare`, and training
reads only the cache. The trainer indexes a batch on the CPU and calls normalize() on the device,
so the data set itself never has to fit in GPU memory or be copied into RAM."""

import hashlib
import re
import zipfile
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from PIL import Image

from gan_bench.data import DataSet, cache, sources
from gan_bench.errors import UserError


def normalize(u8: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 pixels in [0, 255] -> floats in [-1, 1] (the generator's tanh range)."""
    return u8.to(dtype) / 127.5 - 1


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Inverse of normalize: floats in [-1, 1] -> uint8, rounded and clamped (NaN -> 0), the
    quantization every published metric applies to fakes (evaluated as the 8-bit images one would
    save). The one such function: gan_bench.metrics.features re-exports it."""
    x = torch.nan_to_num(x.detach().float(), nan=-1.0)
    return ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


# ---------------------------------------------------------------------------------------------
# The one path every loader takes: find the source, load the cache if it is complete and matches
# the source, else (download and) build it.


class Source(NamedTuple):
    handle: object          # what the fill function reads (a path, an Encoded reader, ...)
    path: Path              # for messages and the manifest
    files: list[Path]       # what the fingerprint covers


def _open(name: str, root, key: str, params: dict, locate: Callable[[], Source | None],
          fill: Callable, missing: Callable[[], str], fetch: Callable[[], None] | None = None) -> DataSet:
    cache_dir = Path(root).expanduser() / "cache" / key
    src = locate()
    fp = _fingerprint(src) if src else None
    # Without the source at hand (fp None) a complete cache is trusted as it is: the user may have
    # prepared it from elsewhere (--from) or deleted the archive afterwards.
    hit, built = cache.load(cache_dir, params, fp), False
    if hit is None:
        failed = None
        if src is None and fetch is not None:   # download only when there is nothing else to use
            failed = _try(fetch)
            src = locate()
        if src is None:
            raise UserError(missing() + (f" (the download failed: {failed})" if failed else ""))
        *hit, built = cache.build(cache_dir, params, fp or _fingerprint(src), str(src.path),
                                  partial(fill, src.handle))
    arrays, manifest = hit
    tensor = lambda k: torch.from_numpy(arrays[k]) if k in arrays else None
    info = {"resolution": params["resolution"], "channels": params["channels"], "crop": params.get("crop"),
            "cache": str(cache_dir), "manifest": manifest, "built": built, "test_labels": tensor("test_labels")}
    return DataSet(name=name, kind="image", train=tensor("train"), test=tensor("test"),
                   labels=tensor("train_labels"), info=info)


def _fingerprint(src: Source) -> str:
    return cache.fingerprint(src.files, src.path if src.path.is_dir() else src.path.parent)


def _try(fetch) -> str | None:
    try:
        fetch()
    except Exception as e:   # offline, a proxy, a checksum mismatch: all end in the same advice
        first = (str(e).splitlines() or [""])[0][:120]
        return f"{type(e).__name__}: {first}"
    return None


def _check(name: str, resolution, channels, crop=None, allowed_channels=(1, 3)) -> tuple[int, int]:
    if not isinstance(resolution, int) or not 8 <= resolution <= 1024:
        raise UserError(f"{name}: resolution must be an integer in 8..1024, got {resolution!r}: "
                        f"pass e.g. dataset.resolution=64")
    if channels not in allowed_channels:
        raise UserError(f"{name}: channels must be one of {allowed_channels}, got {channels!r}: "
                        f"set dataset.channels")
    if crop is not None and crop not in sources.CROPS:
        raise UserError(f"{name}: unknown crop '{crop}': use one of {', '.join(sources.CROPS)}")
    return resolution, channels


def _where(path, root, sub: str) -> Path:
    return Path(path).expanduser() if path else Path(root).expanduser() / sub


def _fill_encoded(enc: sources.Encoded, w: cache.Writer, crop: str, r: int, c: int):
    with sources.opened(enc, w.dir) as enc:
        if not enc.count:
            raise UserError(f"{enc.path} holds no images: see {sources.DOCS} for the layouts that work")
        out = w.array("train", (enc.count, c, r, r))
        n = sources.fill(out, enc.items(), partial(sources.decode, crop=crop, resolution=r, channels=c))
    if n != enc.count:
        raise UserError(f"{enc.path} had {enc.count} images when counted but {n} when read: "
                        f"was it modified meanwhile? run the command again")


def _zip_at(z: Path) -> bool:
    """z is a zip archive; a file that only claims to be one (a truncated download) is a UserError,
    so the user is not told to put into place the very file that is already there."""
    if not z.is_file():
        return False
    if not zipfile.is_zipfile(z):
        if z.suffix.lower() == ".zip":
            raise UserError(f"{z} is not a readable zip archive (an incomplete download?): download it again, "
                            f"see {sources.DOCS}")
        return False
    return True


def _resize_into(out: np.ndarray, x: np.ndarray):
    """out[i] = x[i] resized to out's resolution (x: uint8 [N, C, h, w])."""
    r, c = out.shape[-1], out.shape[1]

    def one(i, a):
        img = Image.fromarray(a[0] if c == 1 else a.transpose(1, 2, 0))
        return sources.to_chw(sources.resize(img, r), c)

    sources.fill(out, enumerate(x), one)


# ---------------------------------------------------------------------------------------------
# The data sets.

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def cifar10(root, resolution: int = 32, channels: int = 3, path=None, download: bool = True) -> DataSet:
    """CIFAR-10 (50k train / 10k test, labels kept) from the python pickle batches in
    <root>/cifar10/: the extracted cifar-10-batches-py/ or cifar-10-python.tar.gz. torchvision
    downloads the archive when it is absent and the network allows; we read the pickles ourselves
    because torchvision's own check wants the md5s of the full official files."""
    r, c = _check("cifar10", resolution, channels, allowed_channels=(3,))
    where = _where(path, root, "cifar10")

    def locate():
        src = sources.find_cifar(where)
        return Source(src, src, sources.cifar_files(src)) if src else None

    def fill(src, w):
        raw = sources.read_cifar(src)
        for split in ("train", "test"):
            x, out = raw[split], w.array(split, (len(raw[split]), 3, r, r))
            if r == 32:
                out[:] = x
            else:
                _resize_into(out, x)
            w.array(f"{split}_labels", raw[f"{split}_labels"].shape, np.int64)[:] = raw[f"{split}_labels"]

    def fetch():
        import torchvision
        torchvision.datasets.CIFAR10(str(where), train=True, download=True)

    missing = lambda: (f"CIFAR-10 not found: put {sources.CIFAR_TAR} ({CIFAR_URL}) or its extracted "
                       f"{sources.CIFAR_DIR}/ into {where}/, or pass dataset.path=PATH, see {sources.DOCS}")
    return _open("cifar10", root, f"cifar10-{r}px", {"dataset": "cifar10", "resolution": r, "channels": c},
                 locate, fill, missing, fetch if download else None)


def celeba(root, resolution: int = 64, channels: int = 3, crop: str = "dcgan", path=None) -> DataSet:
    """CelebA aligned faces (all 202,599 images for training) from <root>/celeba/img_align_celeba/
    or <root>/celeba/img_align_celeba.zip, or `path` pointing at either. Crops: `dcgan` (centre
    178 x 178, then resize) or `alphagan` (resize the short side, then centre-crop)."""
    r, c = _check("celeba", resolution, channels, crop)
    where = _where(path, root, "celeba")

    def locate():
        for d in (where / "img_align_celeba", where):
            if d.is_dir():
                enc = sources.image_dir(d)
                if enc.count:
                    return Source(enc, d, enc.files)
        for z in (where / "img_align_celeba.zip", where):
            if _zip_at(z):
                enc = sources.image_zip(z)
                if enc.count:
                    return Source(enc, z, [z])
        return None

    missing = lambda: (f"CelebA not found: put img_align_celeba.zip (or its extracted img_align_celeba/ "
                       f"folder of jpgs) into {where}/, or pass dataset.path=PATH, see {sources.DOCS}")
    return _open("celeba", root, f"celeba-{r}px-{crop}" + ("-gray" if c == 1 else ""),
                 {"dataset": "celeba", "resolution": r, "channels": c, "crop": crop}, locate,
                 lambda enc, w: _fill_encoded(enc, w, crop, r, c), missing)


def lsun(root, category: str = "classroom", resolution: int = 64, channels: int = 3, crop: str = "center",
         path=None) -> DataSet:
    """An LSUN scene category from its <category>_train_lmdb directory (values are encoded
    images, webp or jpeg), read with lmdb directly: torchvision's LSUN class would write a key
    cache into the working directory. The download's zip is read without unzipping it by hand,
    and a folder (or zip) of the images, e.g. exported by fyu/lsun's data.py, works too."""
    name = f"lsun_{category}"
    r, c = _check(name, resolution, channels, crop)
    where = _where(path, root, "lsun")
    db = f"{category}_train_lmdb"

    def locate():
        # The unzipped download, the download itself, or images exported from it (fyu/lsun's
        # `data.py export`); `where` itself counts as an image folder only when the user named it.
        for d in (where / db, where):
            if (d / "data.mdb").is_file():
                enc = sources.lmdb_images(d)
                if enc.count:
                    return Source(enc, d, enc.files)
        if where.name == "data.mdb" and where.is_file():
            enc = sources.lmdb_images(where.parent)
            if enc.count:
                return Source(enc, where.parent, enc.files)
        for z in (where / f"{db}.zip", where):
            if _zip_at(z):
                enc = sources.zipped_lmdb(z) or sources.image_zip(z)
                if enc.count is None or enc.count:
                    return Source(enc, z, [z])
        for d in (where / category,) + ((where,) if path else ()):
            if d.is_dir():
                enc = sources.image_dir(d)
                if enc.count:
                    return Source(enc, d, enc.files)
        return None

    missing = lambda: (f"LSUN {category} not found: put {db}.zip (http://dl.yf.io/lsun/scenes/, or "
                       f"download_scenes.py -c {category} from github.com/fyu/lsun), its unzipped {db}/ "
                       f"(with data.mdb) or a folder {category}/ of its images into {where}/, or pass "
                       f"dataset.path=PATH, see {sources.DOCS}")

    return _open(name, root, f"{name}-{r}px-{crop}" + ("-gray" if c == 1 else ""),
                 {"dataset": name, "resolution": r, "channels": c, "crop": crop}, locate,
                 lambda enc, w: _fill_encoded(enc, w, crop, r, c), missing)


def mnist(root, resolution: int = 28, channels: int = 1, path=None, download: bool = True) -> DataSet:
    """MNIST digits (60k train / 10k test, labels kept) at 28 px (32 resizes, bilinear), read from
    the same layouts as Stacked MNIST: torchvision's <root>/MNIST/raw/ (.gz or extracted) or
    `path`; torchvision downloads it when absent and the network allows."""
    r, c = _check("mnist", resolution, channels, allowed_channels=(1,))
    where = Path(path).expanduser() if path else Path(root).expanduser()

    def locate():
        found = [sources.find_mnist(where, split) for split in ("train", "test")]
        if None in found:
            return None
        return Source(found, found[0][0].parent, [f for pair in found for f in pair])

    def fill(found, w):
        for split, pair in zip(("train", "test"), found):
            x, y = sources.read_mnist(pair)
            out = w.array(split, (len(x), 1, r, r))
            if r == 28:
                out[:, 0] = x
            else:
                _resize_into(out, x[:, None])
            w.array(f"{split}_labels", (len(y),), np.int64)[:] = y

    missing = lambda: mnist_missing(where, "train") + " (and the two t10k files for the test split)"
    return _open("mnist", root, f"mnist-{r}px", {"dataset": "mnist", "resolution": r, "channels": c},
                 locate, fill, missing, partial(_fetch_mnist, where) if download else None)


def stacked_mnist(root, resolution: int = 28, channels: int = 3, n: int = 100000, seed: int = 0,
                  path=None, download: bool = True) -> DataSet:
    """Stacked MNIST: three independently drawn MNIST training digits as the R, G, B channels,
    1000 modes, label 100*d_R + 10*d_G + d_B. Drawn once with a fixed seed, so every run (and every
    machine) trains on the same n stacks. Source: torchvision's layout <root>/MNIST/raw/."""
    r, c = _check("stacked_mnist", resolution, channels, allowed_channels=(3,))
    if not isinstance(n, int) or n <= 0:
        raise UserError(f"stacked_mnist: n must be a positive integer, got {n!r}: pass e.g. dataset.n=100000")
    where = Path(path).expanduser() if path else Path(root).expanduser()

    def locate():
        found = sources.find_mnist(where)
        return Source(found, found[0].parent, list(found)) if found else None

    def fill(found, w):
        x, y = sources.read_mnist(found)
        idx = np.random.default_rng(seed).integers(0, len(x), size=(n, 3))
        out = w.array("train", (n, 3, r, r))
        for s in range(0, n, 10000):   # x[idx] of shape [m, 3, 28, 28] is the channel stack
            stack = x[idx[s:s + 10000]]
            if r == 28:
                out[s:s + len(stack)] = stack
            else:
                _resize_into(out[s:s + len(stack)], stack)
        y = y.astype(np.int64)
        w.array("train_labels", (n,), np.int64)[:] = 100 * y[idx[:, 0]] + 10 * y[idx[:, 1]] + y[idx[:, 2]]

    return _open("stacked_mnist", root, f"stacked_mnist-{r}px-n{n}-seed{seed}",
                 {"dataset": "stacked_mnist", "resolution": r, "channels": c, "n": n, "seed": seed},
                 locate, fill, lambda: mnist_missing(where, "train"),
                 partial(_fetch_mnist, where) if download else None)


def mnist_missing(where: Path, split: str) -> str:
    images, labels = sources.MNIST_FILES[split]
    return (f"MNIST not found under {where}: put {images}.gz and {labels}.gz (or the extracted files) "
            f"into {where / 'MNIST' / 'raw'}/, see {sources.DOCS}")


def _fetch_mnist(where: Path):
    import torchvision
    torchvision.datasets.MNIST(str(where), train=True, download=True)   # fetches all four files


def mnist_digits(root, split: str = "train", download: bool = False) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """MNIST `split` ("train" or "test") as uint8 images [N, 28, 28] and labels [N], plus the files
    read, from torchvision's layout under root (the .gz downloads or the extracted files). Read
    directly rather than cached: 47 MB, for the Stacked MNIST classifier."""
    where = Path(root).expanduser()
    found, failed = sources.find_mnist(where, split), None
    if found is None and download:
        failed = _try(partial(_fetch_mnist, where))
        found = sources.find_mnist(where, split)
    if found is None:
        raise UserError(mnist_missing(where, split) + (f" (the download failed: {failed})" if failed else ""))
    return (*sources.read_mnist(found), list(found))


def folder(path=None, root="data", resolution: int = 64, channels: int = 3, crop: str = "center") -> DataSet:
    """Any directory of images (searched recursively: jpg, png, webp, ...) or a zip of them. The
    cache key carries a hash of the absolute path, so two folders never share a cache."""
    if not path:
        raise UserError("dataset=folder needs the image directory: pass dataset.path=/path/to/images")
    r, c = _check("folder", resolution, channels, crop)
    where = Path(path).expanduser().resolve()
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", where.stem)[:40] or "root"
    key = f"folder-{slug}-{hashlib.sha1(str(where).encode()).hexdigest()[:8]}-{r}px-{crop}" + (
        "-gray" if c == 1 else "")

    def locate():
        if where.is_dir():
            enc = sources.image_dir(where)
        elif _zip_at(where):
            enc = sources.image_zip(where)
        else:
            return None
        return Source(enc, where, enc.files) if enc.count else None

    def missing():
        if where.exists():
            return (f"no images ({', '.join(sorted(e[1:] for e in sources.IMAGE_EXTS))}) found in {where}: "
                    f"pass dataset.path= a directory of images or a zip of them, see {sources.DOCS}")
        return (f"no directory or zip {where}: pass dataset.path= a directory of images or a zip of them, "
                f"see {sources.DOCS}")

    return _open("folder", root, key,
                 {"dataset": "folder", "resolution": r, "channels": c, "crop": crop}, locate,
                 lambda enc, w: _fill_encoded(enc, w, crop, r, c), missing)


# `gan-bench prepare NAME`: the same loaders, so a prepared cache is the one training finds.
DATASETS: dict[str, Callable[..., DataSet]] = {
    "cifar10": cifar10,
    "celeba": celeba,
    "lsun_classroom": partial(lsun, category="classroom"),
    "stacked_mnist": stacked_mnist,
    "folder": folder,
}
