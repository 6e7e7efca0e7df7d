"""Readers for the on-disk formats image data sets ship in: CIFAR-10 python pickles, MNIST idx
files, LSUN lmdb databases, image folders and zip archives. Readers return uint8 arrays or encoded
image bytes plus a list of the files they depend on (for the cache fingerprint); nothing here knows
about the cache or about configs."""

import gzip
import io
import logging
import os
import pickle
import shutil
import struct
import tarfile
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterable, Iterator

import numpy as np
from PIL import Image

from gan_bench.errors import UserError

log = logging.getLogger(__name__)

DOCS = "docs/datasets.md"   # every message about a missing or bad source points here

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
                        f"replace it with a fresh copy from {CIFAR_TAR}, see {DOCS}") from None
    if len(x) != len(y):
        raise UserError(f"CIFAR-10 batch {where} has {len(x)} images but {len(y)} labels: "
                        f"replace it with a fresh copy from {CIFAR_TAR}, see {DOCS}")
    return x, y


def find_cifar(loc: Path) -> Path | None:
    """The extracted batch directory (preferred: no decompression) or the tar.gz, under loc."""
    for d in (loc / CIFAR_DIR, loc):
        if all((d / n).is_file() for n in CIFAR_TRAIN + CIFAR_TEST):
            return d
    for f in (loc / CIFAR_TAR, loc):
        if f.is_file():
            if tarfile.is_tarfile(f):
                return f
            if f.name.endswith(".tar.gz"):   # there, but not readable: do not ask for it to be put there
                raise UserError(f"{f} is not a readable tar.gz (an incomplete download?): download {CIFAR_TAR} "
                                f"again, see {DOCS}")
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
    try:
        with tarfile.open(src) as tar:   # read members in place: no extracted copy left behind
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            missing = [n for n in CIFAR_TRAIN + CIFAR_TEST if n not in members]
            if missing:
                raise UserError(f"{src} lacks {', '.join(missing)}: download {CIFAR_TAR} again, see {DOCS}")
            return _cifar_splits(lambda n: _unpickle_batch(tar.extractfile(members[n]), f"{src}:{n}"))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:   # a truncated or corrupt download
        raise UserError(f"cannot read {src} ({type(e).__name__}): download {CIFAR_TAR} again, see {DOCS}") from None


def _cifar_splits(read: Callable) -> dict[str, np.ndarray]:
    out = {}
    for split, names in (("train", CIFAR_TRAIN), ("test", CIFAR_TEST)):
        xs, ys = zip(*(read(n) for n in names))
        out[split], out[f"{split}_labels"] = np.concatenate(xs), np.concatenate(ys)
    return out


# ---------------------------------------------------------------------------------------------
# MNIST idx files (torchvision layout <root>/MNIST/raw/): big-endian header 0x00 0x00 <type> <ndim>,
# then ndim uint32 sizes, then the data. Magic 2051 = images (ubyte, 3 dims), 2049 = labels. Each
# file is read as downloaded (.gz) or extracted, whichever is there: torchvision's MNIST class
# accepts only the extracted files, so gan-bench reads the idx format itself and writes nothing.

MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def mnist_dirs(loc: Path) -> tuple[Path, ...]:
    """Where the idx files may be under loc: torchvision's root, its MNIST/ or MNIST/raw/ itself."""
    return loc / "MNIST" / "raw", loc / "raw", loc


def find_mnist(loc: Path, split: str = "train") -> tuple[Path, Path] | None:
    for d in mnist_dirs(loc):
        found = []
        for stem in MNIST_FILES[split]:
            # torchvision keeps both the .gz and the extracted file; the plain one reads faster.
            f = next((d / (stem + s) for s in ("", ".gz") if (d / (stem + s)).is_file()), None)
            found.append(f)
        if all(found):
            return found[0], found[1]
    return None


def read_mnist(found: tuple[Path, Path]) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28], labels uint8 [N]) from an images/labels pair of idx files."""
    x, y = read_idx(found[0]), read_idx(found[1])
    if x.ndim != 3 or x.shape[1:] != (28, 28) or y.ndim != 1 or len(x) != len(y):
        raise UserError(f"{found[0]} and {found[1]} are not a matching set of 28x28 MNIST images and labels: "
                        f"download them again, see {DOCS}")
    return x, y


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:   # gzip.BadGzipFile is an OSError
        raise UserError(f"cannot read {path} ({type(e).__name__}: {e}): download it again, see {DOCS}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserError(f"{path} is not an idx file of unsigned bytes: download it again, see {DOCS}")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise UserError(f"{path} is truncated (no complete header): download it again, see {DOCS}")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise UserError(f"{path} is truncated ({body.size} of {int(np.prod(dims))} bytes): "
                        f"download it again, see {DOCS}")
    return body.reshape(dims)


# ---------------------------------------------------------------------------------------------
# Encoded images: a directory tree, a zip archive or an LSUN lmdb (unzipped, or still in its zip).
# Each yields (name, bytes) in a fixed order so the cache is reproducible.


@dataclass
class Encoded:
    path: Path
    count: int | None                                # None: known once opened (an lmdb still in its zip)
    files: list[Path]                                # what the fingerprint covers
    items: Callable[[], Iterator[tuple[str, bytes]]] | None
    # For sources that must be unpacked before reading: scratch dir -> context giving the readable Encoded.
    unpack: Callable[[Path], ContextManager["Encoded"]] | None = None


@contextmanager
def opened(enc: Encoded, scratch: Path) -> Iterator[Encoded]:
    """The source ready to read: itself, or its unpacked copy in scratch (removed afterwards)."""
    if enc.unpack is None:
        yield enc
    else:
        with enc.unpack(scratch) as inner:
            yield inner


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


def _zip_names(path: Path) -> list[zipfile.ZipInfo]:
    try:
        with zipfile.ZipFile(path) as z:
            return [i for i in z.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"cannot read the zip {path} ({type(e).__name__}): download it again, see {DOCS}") from None


def image_zip(path: Path) -> Encoded:
    names = sorted(i.filename for i in _zip_names(path) if _is_image(i.filename))

    def items():
        with zipfile.ZipFile(path) as z:
            for n in names:
                try:
                    data = z.read(n)
                except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:   # corrupt or truncated member
                    raise UserError(f"cannot read {n} in {path} ({type(e).__name__}): download the zip again, "
                                    f"see {DOCS}") from None
                yield f"{path}:{n}", data

    return Encoded(path, len(names), [path], items)


def lmdb_images(path: Path, shown: Path | None = None) -> Encoded:
    """An lmdb environment: a directory holding data.mdb, or the data file itself (an extracted
    copy, named in messages as `shown`, the zip it came from)."""
    import lmdb

    shown = shown or path

    subdir = path.is_dir()
    data_file = path / "data.mdb" if subdir else path

    def env():
        # readonly + lock=False: a read-only copy of the database works and nothing is written.
        return lmdb.open(str(path), subdir=subdir, readonly=True, lock=False, readahead=False, meminit=False)

    try:
        with env() as e:
            count = e.stat()["entries"]
    except lmdb.Error as err:
        raise UserError(f"cannot open the LSUN lmdb at {shown} ({err}): download it again, see {DOCS}") from None

    def items():
        try:
            with env() as e, e.begin(write=False) as txn:
                for key, value in txn.cursor():
                    yield f"{shown}:{key.decode(errors='replace')}", bytes(value)
        except lmdb.Error as err:
            raise UserError(f"cannot read the LSUN lmdb at {shown} ({err}): download it again, see {DOCS}") from None

    return Encoded(path, count, [data_file], items)


def zipped_lmdb(path: Path) -> Encoded | None:
    """An lmdb still in its zip, as LSUN's download ships it (<category>_train_lmdb.zip holding
    <category>_train_lmdb/data.mdb): lmdb reads only real files, so data.mdb is extracted into the
    cache directory for the one conversion and deleted after. None when the zip holds no data.mdb."""
    members = [i for i in _zip_names(path) if Path(i.filename).name == "data.mdb" and i.file_size]
    if not members:
        return None
    member = min(members, key=lambda i: len(i.filename))   # the top-level database, not a nested copy

    @contextmanager
    def unpack(scratch: Path):
        need, free = member.file_size, shutil.disk_usage(scratch).free
        if need > free:
            raise UserError(f"reading {path} needs {need / 1e9:.1f} GB free in {scratch} to extract data.mdb "
                            f"({free / 1e9:.1f} GB free): unzip it elsewhere and pass dataset.path=<its "
                            f"_train_lmdb folder>, see {DOCS}")
        # A name cache.build sweeps up as stale should this process be killed mid-extraction.
        tmp = scratch / f"data.mdb.tmp-{os.getpid()}"
        try:
            try:
                with zipfile.ZipFile(path) as z, z.open(member) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 24)
            except (zipfile.BadZipFile, EOFError, zlib.error) as e:   # a corrupt member (CRC, deflate)
                raise UserError(f"cannot extract {member.filename} from {path} ({type(e).__name__}): "
                                f"download it again, see {DOCS}") from None
            inner = lmdb_images(tmp, shown=path)
            yield Encoded(path, inner.count, [path], inner.items)
        finally:
            tmp.unlink(missing_ok=True)

    return Encoded(path, None, [path], None, unpack)


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
        raise UserError(f"cannot decode image {name} ({type(e).__name__}): delete or replace it, see {DOCS}") from None
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
