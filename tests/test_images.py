"""Image data sets end to end, offline: tiny data written in each real on-disk format (CIFAR-10
pickle batches and tar.gz, CelebA jpg folder and zip, LSUN lmdb, MNIST idx, an image folder), then
instantiated through conf/dataset/*.yaml exactly as training does, plus the prepare cache rules."""

import copy
import functools
import gzip
import hashlib
import inspect
import io
import os
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import lmdb
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from gan_bench.data import images
from gan_bench.data.images import normalize, to_uint8
from gan_bench.data.prepare import main as prepare
from gan_bench.errors import UserError

CONF = Path(__file__).parents[1] / "conf"
GREEN = (40, 200, 60)

# ---------------------------------------------------------------------------------------------
# Writers for the real formats (also used by test_dcgan.py).


def write_cifar(loc: Path, per_batch: int = 3, n_test: int = 4, seed: int = 0) -> dict:
    """cifar-10-batches-py/ as the official archive has it: pickled dicts, uint8 rows of 3072
    (1024 R, 1024 G, 1024 B), labels as a list."""
    rng = np.random.default_rng(seed)
    d = loc / "cifar-10-batches-py"
    d.mkdir(parents=True)
    out = {"train": [], "train_labels": [], "test": [], "test_labels": []}
    for name, n, split in [(f"data_batch_{i}", per_batch, "train") for i in range(1, 6)] + [
            ("test_batch", n_test, "test")]:
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, n).tolist()
        batch = {b"batch_label": name.encode(), b"labels": y, b"data": x,
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
        (d / name).write_bytes(pickle.dumps(batch, protocol=2))
        out[split].append(x.reshape(n, 3, 32, 32))
        out[f"{split}_labels"] += y
    (d / "batches.meta").write_bytes(pickle.dumps(
        {b"label_names": [b"airplane", b"automobile"], b"num_cases_per_batch": per_batch}, protocol=2))
    return {k: np.concatenate(v) if k in ("train", "test") else np.array(v) for k, v in out.items()}


def tar_cifar(loc: Path):
    """Replace the extracted batches by cifar-10-python.tar.gz (the download)."""
    with tarfile.open(loc / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(loc / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    for f in (loc / "cifar-10-batches-py").iterdir():
        f.unlink()
    (loc / "cifar-10-batches-py").rmdir()


def face(i: int) -> Image.Image:
    """A 178x218 'aligned face': green 178x178 centre, red top and blue bottom bands of 20 rows."""
    a = np.zeros((218, 178, 3), np.uint8)
    a[:20] = (220, 30, 30)
    a[20:198] = GREEN
    a[198:] = (30, 30, 220)
    a[100:110, 80 + i:90 + i] = 255   # a little per-image detail
    return Image.fromarray(a)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def write_celeba(loc: Path, n: int = 6, as_zip: bool = False):
    if as_zip:
        loc.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(loc / "img_align_celeba.zip", "w") as z:
            for i in range(n):
                z.writestr(f"img_align_celeba/{i + 1:06d}.jpg", encode(face(i), "JPEG", quality=95))
            z.writestr("__MACOSX/img_align_celeba/._000001.jpg", b"not an image")
    else:
        d = loc / "img_align_celeba"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            face(i).save(d / f"{i + 1:06d}.jpg", quality=95)


def write_lsun(db: Path, n: int = 5):
    """<category>_train_lmdb: keys are hex ids, values encoded images (webp and jpeg mixed)."""
    db.mkdir(parents=True)
    with lmdb.open(str(db), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for i in range(n):
            img = Image.new("RGB", (96, 72), (10 * i, 100, 200))
            data = encode(img, "WEBP", lossless=True) if i % 2 else encode(img, "JPEG", quality=95)
            txn.put(hashlib.sha1(str(i).encode()).hexdigest().encode(), data)


def write_mnist(root: Path, n: int = 50, gz: bool = True):
    """torchvision's layout <root>/MNIST/raw/: idx files with big-endian headers. Image i is a
    constant 20*label+10, so a stack's channels reveal its digits."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    y = np.arange(n, dtype=np.uint8) % 10
    x = np.repeat((20 * y + 10)[:, None, None], 28, 1).repeat(28, 2).astype(np.uint8)
    opener = gzip.open if gz else open
    ext = ".gz" if gz else ""
    with opener(raw / f"train-images-idx3-ubyte{ext}", "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, 28, 28) + x.tobytes())
    with opener(raw / f"train-labels-idx1-ubyte{ext}", "wb") as f:
        f.write(struct.pack(">II", 2049, n) + y.tobytes())


def write_folder(d: Path) -> np.ndarray:
    """A nested folder: png, jpg, webp, grayscale and RGBA, plus files to skip. Returns the exact
    pixels of the one lossless 64x64 image (a/b/exact.png, first in sorted order)."""
    rng = np.random.default_rng(1)
    (d / "a" / "b").mkdir(parents=True)
    (d / "c").mkdir()
    exact = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(exact).save(d / "a" / "b" / "exact.png")
    Image.new("RGB", (80, 64), (200, 10, 10)).save(d / "a" / "wide.jpg", quality=95)
    Image.new("L", (50, 70), 128).save(d / "c" / "gray.webp", lossless=True)
    Image.new("RGBA", (64, 64), (0, 0, 255, 128)).save(d / "c" / "alpha.PNG")
    (d / "notes.txt").write_text("not an image")
    (d / ".hidden.jpg").write_bytes(b"junk")
    return exact.transpose(2, 0, 1)


# ---------------------------------------------------------------------------------------------
# Composing the real configs.


@functools.lru_cache(maxsize=None)
def _composed(overrides: tuple):
    if not OmegaConf.has_resolver("gb_root"):   # gan_bench.config registers the real one when imported
        OmegaConf.register_new_resolver("gb_root", lambda: ".")
    # Groups other engineers own may not have their default files yet; we only need dataset/model.
    drop = [f"~{g}" for g, n in (("loss", "bce"), ("penalty", "none")) if not (CONF / g / f"{n}.yaml").exists()]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=[*drop, *overrides])


def compose_cfg(data_root: Path, *overrides: str):
    """The composed root config with paths.data=data_root (composing is the slow part: cached)."""
    cfg = copy.deepcopy(_composed(overrides))
    cfg.paths.data = str(data_root)
    return cfg


def load(data_root: Path, *overrides: str):
    """Instantiate cfg.dataset; hydra wraps constructor errors, unwrap our UserError as the trainer does."""
    try:
        return instantiate(compose_cfg(data_root, *overrides).dataset)
    except Exception as e:
        cause = e
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__ or cause.__context__
        raise (cause or e) from None


def check_images(data, n, res, channels=3):
    assert data.kind == "image"
    assert data.train.dtype == torch.uint8 and data.train.shape == (n, channels, res, res)
    assert data.info["resolution"] == res and data.info["channels"] == channels
    m = data.info["manifest"]
    assert m["count"] == n and m["resolution"] == res and m["channels"] == channels and m["version"] >= 1
    assert m["source"]["fingerprint"]
    x = normalize(data.train[:4])
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1


def one_line_error(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg and msg.strip() == msg
    for s in needles:
        assert s in msg, (s, msg)


# ---------------------------------------------------------------------------------------------


def test_normalize_and_to_uint8_invert_each_other():
    u8 = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    x = normalize(u8)
    assert x.dtype == torch.float32 and x.min() == -1 and x.max() == 1
    assert torch.equal(to_uint8(x), u8)
    assert to_uint8(torch.tensor([-3.0, 3.0, float("nan")])).tolist() == [0, 255, 0]


def test_cifar10_reads_python_batches_exactly(tmp_path):
    want = write_cifar(tmp_path / "cifar10")
    data = load(tmp_path, "dataset=cifar10")
    check_images(data, 15, 32)
    assert data.name == "cifar10"
    assert np.array_equal(data.train.numpy(), want["train"]) and np.array_equal(data.test.numpy(), want["test"])
    assert data.labels.dtype == torch.int64 and data.labels.tolist() == want["train_labels"].tolist()
    assert data.info["test_labels"].tolist() == want["test_labels"].tolist()
    cache_dir = Path(data.info["cache"])
    assert cache_dir.parent == tmp_path / "cache" and (cache_dir / "manifest.json").is_file()


def test_cifar10_reads_the_tar_gz_and_resizes(tmp_path):
    want = write_cifar(tmp_path / "cifar10")
    tar_cifar(tmp_path / "cifar10")
    assert np.array_equal(load(tmp_path, "dataset=cifar10").train.numpy(), want["train"])
    big = load(tmp_path, "dataset=cifar10", "dataset.resolution=64")
    check_images(big, 15, 64)
    assert big.test.shape == (4, 3, 64, 64)


def test_cifar10_missing_names_the_archive_and_place(tmp_path):
    with pytest.raises(UserError) as e:
        load(tmp_path, "dataset=cifar10", "dataset.download=false")
    one_line_error(e, "cifar-10-python.tar.gz", str(tmp_path / "cifar10"))


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
@pytest.mark.parametrize("crop", ["dcgan", "alphagan"])
def test_celeba_folder_or_zip_with_crop_presets(tmp_path, as_zip, crop):
    write_celeba(tmp_path / "celeba", as_zip=as_zip)
    data = load(tmp_path, "dataset=celeba", f"dataset.crop={crop}")
    check_images(data, 6, 64)
    assert data.labels is None and data.test is None and data.info["crop"] == crop
    # Both presets keep the central face region: the red/blue bands are cut away.
    mean = data.train.float().mean((0, 2, 3))
    assert (mean - torch.tensor(GREEN, dtype=torch.float)).abs().max() < 12, mean


def test_lsun_lmdb_webp_and_jpeg_without_files_in_cwd(tmp_path, monkeypatch):
    write_lsun(tmp_path / "lsun" / "classroom_train_lmdb")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    data = load(tmp_path, "dataset=lsun_classroom")
    check_images(data, 5, 64)
    # Solid images keep their colour through decode and crop (jpeg within a few levels).
    colours = data.train.float().mean((2, 3))
    want = torch.tensor([(10.0 * i, 100, 200) for i in range(5)])
    assert (colours[:, None] - want[None]).abs().amax(-1).min(0).values.max() < 4
    big = load(tmp_path, "dataset=lsun_classroom", "dataset.resolution=112")
    check_images(big, 5, 112)
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("gz", [True, False])
def test_stacked_mnist_stacks_three_digits(tmp_path, gz):
    write_mnist(tmp_path, gz=gz)
    data = load(tmp_path, "dataset=stacked_mnist", "dataset.n=500")
    check_images(data, 500, 28)
    labels = data.labels
    assert labels.dtype == torch.int64 and labels.min() >= 0 and labels.max() <= 999
    digits = torch.stack([labels // 100, labels // 10 % 10, labels % 10], 1)
    assert torch.equal(data.train[:, :, 0, 0].long(), 20 * digits + 10)   # channel c is digit c
    assert len(labels.unique()) > 300   # 500 draws over 1000 modes
    again = load(tmp_path, "dataset=stacked_mnist", "dataset.n=500")
    assert torch.equal(again.labels, labels) and not again.info["built"]
    other = load(tmp_path, "dataset=stacked_mnist", "dataset.n=500", "dataset.seed=1")
    assert not torch.equal(other.labels, labels)
    check_images(load(tmp_path, "dataset=stacked_mnist", "dataset.n=20", "dataset.resolution=32"), 20, 32)


def test_folder_recursive_mixed_formats(tmp_path):
    exact = write_folder(tmp_path / "pics")
    data = load(tmp_path / "root", "dataset=folder", f"dataset.path={tmp_path / 'pics'}")
    check_images(data, 4, 64)
    assert np.array_equal(data.train[0].numpy(), exact)   # lossless and already 64x64: untouched
    assert data.labels is None
    gray = load(tmp_path / "root", "dataset=folder", f"dataset.path={tmp_path / 'pics'}", "dataset.channels=1",
                "dataset.resolution=32")
    check_images(gray, 4, 32, channels=1)
    with pytest.raises(UserError) as e:
        load(tmp_path, "dataset=folder")
    one_line_error(e, "dataset.path")
    with pytest.raises(UserError) as e:
        load(tmp_path, "dataset=folder", f"dataset.path={tmp_path / 'nope'}")
    one_line_error(e, str(tmp_path / "nope"))


def test_bad_options_are_user_errors(tmp_path):
    write_celeba(tmp_path / "celeba")
    with pytest.raises(UserError) as e:
        load(tmp_path, "dataset=celeba", "dataset.crop=zoom")
    one_line_error(e, "zoom", "dcgan")
    with pytest.raises(UserError):
        load(tmp_path, "dataset=celeba", "dataset.resolution=0")


# ---------------------------------------------------------------------------------------------
# The prepare cache.


def mtime(data, name="train.npy"):
    return (Path(data.info["cache"]) / name).stat().st_mtime_ns


def test_prepare_is_idempotent_and_training_finds_its_cache(tmp_path, capsys):
    write_celeba(tmp_path / "downloads", as_zip=True)
    root = tmp_path / "data"
    argv = ["celeba", "--from", str(tmp_path / "downloads" / "img_align_celeba.zip"), "--data-root", str(root)]
    assert prepare(argv) == 0
    assert "built" in capsys.readouterr().out
    first = images.celeba(root=root, path=tmp_path / "downloads" / "img_align_celeba.zip")
    t = mtime(first)
    assert prepare(argv) == 0
    assert "up to date" in capsys.readouterr().out
    # The config's default location holds no source: the prepared cache is used as it is.
    data = load(root, "dataset=celeba")
    assert not data.info["built"] and mtime(data) == t and data.info["cache"] == first.info["cache"]
    check_images(data, 6, 64)


def test_changed_source_rebuilds(tmp_path):
    write_folder(tmp_path / "pics")
    over = ("dataset=folder", f"dataset.path={tmp_path / 'pics'}")
    first = load(tmp_path, *over)
    assert first.info["built"] and len(first.train) == 4
    assert not load(tmp_path, *over).info["built"]
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "pics" / "c" / "new.png")
    again = load(tmp_path, *over)
    assert again.info["built"] and len(again.train) == 5
    # Same names and sizes, different content: small sources are hashed by content.
    img = tmp_path / "pics" / "a" / "b" / "exact.png"
    a = np.asarray(Image.open(img)).copy()
    a[0, 0] ^= 0xFF
    Image.fromarray(a).save(img)
    os.utime(img, ns=(img.stat().st_atime_ns, img.stat().st_mtime_ns))
    changed = load(tmp_path, *over)
    assert changed.info["built"] and np.array_equal(changed.train[0].numpy(), a.transpose(2, 0, 1))


def test_partial_cache_is_rebuilt_never_used(tmp_path):
    write_cifar(tmp_path / "cifar10")
    data = load(tmp_path, "dataset=cifar10")
    cache_dir = Path(data.info["cache"])
    (cache_dir / "manifest.json").unlink()   # a build killed before its last step
    assert load(tmp_path, "dataset=cifar10").info["built"]
    with open(cache_dir / "train.npy", "r+b") as f:   # a truncated array behind a valid manifest
        f.truncate(1000)
    rebuilt = load(tmp_path, "dataset=cifar10")
    assert rebuilt.info["built"] and rebuilt.train.shape == (15, 3, 32, 32)
    (cache_dir / "manifest.json").unlink()
    for f in (tmp_path / "cifar10" / "cifar-10-batches-py").iterdir():   # and no source to rebuild from
        f.unlink()
    with pytest.raises(UserError):
        load(tmp_path, "dataset=cifar10", "dataset.download=false")
    from gan_bench.atomic import TMP_GLOB
    assert not list(cache_dir.glob(TMP_GLOB))  # no temporary file left behind


def test_cache_is_used_when_the_source_is_gone(tmp_path):
    write_mnist(tmp_path)
    first = load(tmp_path, "dataset=stacked_mnist", "dataset.n=100")
    for f in (tmp_path / "MNIST" / "raw").iterdir():
        f.unlink()
    again = load(tmp_path, "dataset=stacked_mnist", "dataset.n=100", "dataset.download=false")
    assert not again.info["built"] and torch.equal(again.labels, first.labels)


@pytest.mark.parametrize("name", ["cifar10", "celeba", "lsun_classroom", "stacked_mnist", "folder"])
def test_missing_source_is_one_line(tmp_path, name):
    args = [name, "--data-root", str(tmp_path)]
    if name == "folder":
        args += ["--from", str(tmp_path / "mine")]
    if name in ("cifar10", "stacked_mnist"):   # offline here anyway; do not even try the network
        with pytest.raises(UserError) as e:
            images.DATASETS[name](root=tmp_path, download=False)
    else:
        with pytest.raises(UserError) as e:
            prepare(args)
    one_line_error(e, str(tmp_path))


def test_config_defaults_match_the_loaders():
    """prepare calls the loaders with their Python defaults, training with the yaml values: they
    must agree or the two would build different caches."""
    for name, fn in images.DATASETS.items():
        cfg = OmegaConf.to_container(OmegaConf.load(CONF / "dataset" / f"{name}.yaml"))
        params = inspect.signature(fn).parameters
        for key, value in cfg.items():
            if key in ("_target_", "root"):
                continue
            assert params[key].default == value, (name, key)
        assert cfg["root"] == "${paths.data}" and "channels" in cfg and "resolution" in cfg
