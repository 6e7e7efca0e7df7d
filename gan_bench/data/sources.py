"""Readers for the on-disk formats image data sets ship in: CIFAR-10 python pickles, MNIST idx
files, LSUN lmdb databases, image folders and zip archives. Readers return uint8 arrays or encoded
image bytes plus a list of the files they depend on (for the cache fingerprint); nothing here knows
about the cache or about configs."""

import gzip
import io
import logging
import os
import pickle
import struct
import tarfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image

from gan_bench.errors import UserError

log = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"}

# ---------------------------------------------------------------------------------------------
# CIFAR-10: cifar-10-batches-py/{data_batch_1..5, test_batch}, each a pickled dict with
# b'data' (uint8 [10000, 3072], channel-major rows) and b'labels' (list of int).

CIFAR_DIR = "cifar-10-batches-py"
CIFAR_TAR = "cifar-10-python.tar.gz"
CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = ["test_batch"]


class _ArrayUnpickler(pickle.Unpickler):
    """Pickle can run arbitrary code; a CIFAR batch only needs numpy arrays (and _codecs.encode,
    which protocol-2 pickles written by Python 3 use for bytes), so allow nothing else."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")} | {
        (mod, name) for mod in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name}")


def _unpickle_batch(f, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        # latin1 is what numpy arrays pickled by Python 2 (the official files) need.
        d = _ArrayUnpickler(f, encoding="latin1").load()
        get = lambda k: d[k] if k in d else d[k.encode()]   # bytes keys (py3 pickles) or str (py2)
        x = np.asarray(get("data"), dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(get("labels"), dtype=np.int64)
    except Exception as e:
        raise UserError(f"cannot read CIFAR-10 batch {where} ({type(e).__name__}): "
                        f"replace it with a fresh copy from {CIFAR_TAR}") from None
    if len(x) != len(y):
        raise UserError(f"CIFAR-10 batch {where} has {len(x)} images but {len(y)} labels: replace it")
    return x, y


def find_cifar(loc: Path) -> Path | None:
    """The extracted batch directory (preferred: no decompression) or the tar.gz, under loc."""
    for d in (loc / CIFAR_DIR, loc):
        if all((d / n).is_file() for n in CIFAR_TRAIN + CIFAR_TEST):
            return d
    for f in (loc / CIFAR_TAR, loc):
        if f.is_file() and tarfile.is_tarfile(f):
            return f
    return None


def cifar_files(src: Path) -> list[Path]:
    return [src / n for n in CIFAR_TRAIN + CIFAR_TEST] if src.is_dir() else [src]


def read_cifar(src: Path) -> dict[str, np.ndarray]:
    """{'train', 'train_labels', 'test', 'test_labels'} from a batch directory or the tar.gz."""
    if src.is_dir():
        def read(n):
            with (src / n).open("rb") as f:
                return _unpickle_batch(f, str(src / n))
        return _cifar_splits(read)
    with tarfile.open(src) as tar:   # read members in place: no extracted copy left behind
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        missing = [n for n in CIFAR_TRAIN + CIFAR_TEST if n not in members]
        if missing:
            raise UserError(f"{src} lacks {', '.join(missing)}: download {CIFAR_TAR} again")
        return _cifar_splits(lambda n: _unpickle_batch(tar.extractfile(members[n]), f"{src}:{n}"))


def _cifar_splits(read: Callable) -> dict[str, np.ndarray]:
    out = {}
    for split, names in (("train", CIFAR_TRAIN), ("test", CIFAR_TEST)):
        xs, ys = zip(*(read(n) for n in names))
        out[split], out[f"{split}_labels"] = np.concatenate(xs), np.concatenate(ys)
    return out


# ---------------------------------------------------------------------------------------------
# MNIST idx files (torchvision layout <root>/MNIST/raw/): big-endian header 0x00 0x00 <type> <ndim>,
# then ndim uint32 sizes, then the data. Magic 2051 = images (ubyte, 3 dims), 2049 = labels.

MNIST_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


def find_mnist(loc: Path) -> tuple[Path, Path] | None:
    for d in (loc / "MNIST" / "raw", loc / "raw", loc):
        found = []
        for stem in MNIST_TRAIN:
            # torchvision keeps both the .gz and the extracted file; the plain one reads faster.
            f = next((d / (stem + s) for s in ("", ".gz") if (d / (stem + s)).is_file()), None)
            found.append(f)
        if all(found):
            return found[0], found[1]
    return None


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise UserError(f"cannot read {path} ({e}): download it again") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserError(f"{path} is not an idx file of unsigned bytes: download it again")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise UserError(f"{path} is truncated ({body.size} of {int(np.prod(dims))} bytes): download it again")
    return body.reshape(dims)


# ---------------------------------------------------------------------------------------------
# Encoded images: a directory tree, a zip archive or an LSUN lmdb. Each yields (name, bytes) in a
# fixed order so the cache is reproducible.


@dataclass
class Encoded:
    path: Path
    count: int
    files: list[Path]                                # what the fingerprint covers
    items: Callable[[], Iterator[tuple[str, bytes]]]


def _is_image(name: str) -> bool:
    parts = Path(name).parts
    # Skip hidden files and the resource forks macOS puts into zips (__MACOSX/._x.jpg).
    return (Path(name).suffix.lower() in IMAGE_EXTS
            and not any(p.startswith(".") or p == "__MACOSX" for p in parts))


def image_dir(path: Path) -> Encoded:
    files = sorted(p for p in path.rglob("*") if p.is_file() and _is_image(str(p.relative_to(path))))

    def items():
        for f in files:
            yield str(f), f.read_bytes()

    return Encoded(path, len(files), files, items)


def image_zip(path: Path) -> Encoded:
    with zipfile.ZipFile(path) as z:
        names = sorted(i.filename for i in z.infolist() if not i.is_dir() and _is_image(i.filename))

    def items():
        with zipfile.ZipFile(path) as z:
            for n in names:
                yield f"{path}:{n}", z.read(n)

    return Encoded(path, len(names), [path], items)


def lmdb_images(path: Path) -> Encoded:
    import lmdb

    def env():
        # readonly + lock=False: a read-only copy of the database works and nothing is written.
        return lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False)

    try:
        with env() as e:
            count = e.stat()["entries"]
    except lmdb.Error as err:
        raise UserError(f"cannot open the LSUN lmdb at {path} ({err}): unzip the download again") from None

    def items():
        with env() as e, e.begin(write=False) as txn:
            for key, value in txn.cursor():
                yield f"{path}:{key.decode(errors='replace')}", bytes(value)

    return Encoded(path, count, [path / "data.mdb"], items)


# ---------------------------------------------------------------------------------------------
# Decoding and crop presets. Resizes use PIL's antialiased bilinear filter, as torchvision's
# Resize does on PIL images, so the cached pixels match the reference pipelines.


def center_crop(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    left, top = int(round((w - size) / 2)), int(round((h - size) / 2))
    return img.crop((left, top, left + size, top + size))


def resize_short(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    if w <= h:
        return img.resize((size, int(size * h / w)), Image.BILINEAR)
    return img.resize((int(size * w / h), size), Image.BILINEAR)


def resize(img: Image.Image, size: int) -> Image.Image:
    return img if img.size == (size, size) else img.resize((size, size), Image.BILINEAR)


CROPS: dict[str, Callable[[Image.Image, int], Image.Image]] = {
    # Shorter side to the resolution, then the central square (LSUN, folders).
    "center": lambda img, r: center_crop(resize_short(img, r), r),
    # α-GAN CelebA: "resize 64 then centre-crop 64": the same operations as `center`.
    "alphagan": lambda img, r: center_crop(resize_short(img, r), r),
    # DCGAN CelebA: the central 178 x 178 face region of the 178 x 218 aligned images, then resize.
    "dcgan": lambda img, r: resize(center_crop(img, min(178, *img.size)), r),
    # The whole image squashed to a square (for sources that are square already).
    "resize": lambda img, r: resize(img, r),
}


def to_chw(img: Image.Image, channels: int) -> np.ndarray:
    a = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def decode(name: str, data: bytes, crop: str, resolution: int, channels: int) -> np.ndarray:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:
        raise UserError(f"cannot decode image {name} ({type(e).__name__}): delete or replace it") from None
    # Convert before resizing: palette and 16-bit images do not resample sensibly.
    img = img.convert("L" if channels == 1 else "RGB")
    return to_chw(CROPS[crop](img, resolution), channels)


def fill(out: np.ndarray, items: Iterable, fn: Callable, chunk: int = 256) -> int:
    """out[i] = fn(*item_i), decoded on a thread pool (PIL releases the GIL while decoding and
    resizing), in order. Returns how many items there were."""
    n, step = 0, max(len(out) // 10, 20000)   # progress lines only for conversions that take a while
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        batch = []
        for item in items:
            batch.append(item)
            if len(batch) == chunk:
                before, n = n, _put(out, n, pool.map(lambda a: fn(*a), batch))
                batch = []
                if n // step > before // step:
                    log.info("  %d / %d images", n, len(out))
        n = _put(out, n, pool.map(lambda a: fn(*a), batch))
    return n


def _put(out, n, arrays):
    for a in arrays:
        if n >= len(out):
            raise UserError("the source has more images than it had when counted: was it modified during "
                            "the conversion? run the command again")
        out[n] = a
        n += 1
    return n
