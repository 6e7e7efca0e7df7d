"""Every on-disk layout docs/datasets.md documents, written by the test in the real format (tiny),
read by every command that reads it: `gan-bench prepare NAME` (source in its place under the data
root, and `--from PATH` elsewhere), `gan-bench train` (two steps of a tiny DCGAN), `gan-bench eval`
(its cache deleted first, so eval reads the source again) and, for MNIST, `gan-bench prepare
mnist-classifier`. Missing or bad data ends in one line naming the layout and the docs page."""

import gzip
import hashlib
import json
import shutil
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image
from test_images import GREEN, encode, face, tar_cifar, write_celeba, write_cifar, write_folder, write_lsun
from test_train_images import PixelStats

from gan_bench.cli import main

DOCS = "docs/datasets.md"
LSUN_COLOURS = torch.tensor([(10.0 * i, 100, 200) for i in range(5)])   # write_lsun's solid images

# ---------------------------------------------------------------------------------------------
# Writers: each puts one layout under `base` exactly where docs/datasets.md puts it under the data
# root, and returns what a user would pass as --from / dataset.path.


def write_mnist(base: Path, gz: bool | str, n_train: int = 60, n_test: int = 20) -> Path:
    """All four idx files in torchvision's <root>/MNIST/raw/, as downloaded (.gz), extracted, or
    "mixed" (only the training images extracted). Image i is the constant 20*label+10, so a
    stack's pixels name its digits."""
    raw = base / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = (np.arange(n) * 7 % 10).astype(np.uint8)
        x = np.repeat((20 * y + 10)[:, None, None], 28, 1).repeat(28, 2).astype(np.uint8)
        for kind, header, body in (("images-idx3", struct.pack(">IIII", 2051, n, 28, 28), x),
                                   ("labels-idx1", struct.pack(">II", 2049, n), y)):
            name = raw / f"{prefix}-{kind}-ubyte"
            if gz is True or (gz == "mixed" and name.name != "train-images-idx3-ubyte"):
                with gzip.open(f"{name}.gz", "wb") as f:
                    f.write(header + body.tobytes())
            else:
                name.write_bytes(header + body.tobytes())
    return raw


def write_cifar_layout(base: Path, as_tar: bool) -> tuple[Path, dict]:
    want = write_cifar(base / "cifar10")
    if as_tar:
        tar_cifar(base / "cifar10")
        return base / "cifar10" / "cifar-10-python.tar.gz", want
    return base / "cifar10" / "cifar-10-batches-py", want


def write_celeba_layout(base: Path, form: str) -> Path:
    if form == "zip":
        write_celeba(base / "celeba", as_zip=True)
        return base / "celeba" / "img_align_celeba.zip"
    if form == "folder":
        write_celeba(base / "celeba")
        return base / "celeba" / "img_align_celeba"
    if form == "kaggle-zip":   # Kaggle's archive.zip: img_align_celeba/img_align_celeba/*.jpg and CSVs
        base.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(base / "archive.zip", "w") as z:
            for i in range(6):
                z.writestr(f"img_align_celeba/img_align_celeba/{i + 1:06d}.jpg", encode(face(i), "JPEG", quality=95))
            z.writestr("list_eval_partition.csv", "image_id,partition\n000001.jpg,0\n")
        return base / "archive.zip"
    # The Kaggle copy: img_align_celeba/img_align_celeba/*.jpg
    write_celeba(base / "celeba" / "img_align_celeba")
    return base / "celeba" / "img_align_celeba"


def write_lsun_layout(base: Path, form: str) -> Path:
    db = base / "lsun" / "classroom_train_lmdb"
    if form == "lmdb":
        write_lsun(db)
        return db
    if form == "zip":   # classroom_train_lmdb.zip as dl.yf.io serves it, not unzipped
        write_lsun(db)
        with zipfile.ZipFile(f"{db}.zip", "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(db.iterdir()):
                z.write(f, f"classroom_train_lmdb/{f.name}")
        shutil.rmtree(db)
        return Path(f"{db}.zip")
    # Images exported with fyu/lsun's `python data.py export ... --out_dir data/lsun/classroom`:
    # webp files named by key, nested by the key's first characters; or those zipped.
    out = base / "lsun" / "classroom"
    for i, colour in enumerate(LSUN_COLOURS.int().tolist()):
        key = hashlib.sha1(str(i).encode()).hexdigest()
        d = out.joinpath(*key[:6])
        d.mkdir(parents=True)
        (d / f"{key}.webp").write_bytes(encode(Image.new("RGB", (96, 72), tuple(colour)), "WEBP", lossless=True))
    if form == "folder":
        return out
    with zipfile.ZipFile(base / "lsun" / "classroom_images.zip", "w") as z:
        for f in sorted(out.rglob("*.webp")):
            z.write(f, f"classroom/{f.relative_to(out)}")
    shutil.rmtree(out)
    return base / "lsun" / "classroom_images.zip"


def write_folder_layout(base: Path, as_zip: bool) -> Path:
    d = base / "my_images"
    write_folder(d)
    if not as_zip:
        return d
    with zipfile.ZipFile(base / "my_images.zip", "w") as z:
        for f in sorted(d.rglob("*")):
            if f.is_file():
                z.write(f, f"my_images/{f.relative_to(d)}")
    shutil.rmtree(d)
    return base / "my_images.zip"


# ---------------------------------------------------------------------------------------------
# What each data set must hold once read, whatever its layout.


def check_cifar(train, want):
    assert np.array_equal(train.numpy(), want["train"])


def check_celeba(train, _):
    assert len(train) == 6
    mean = train.float().mean((0, 2, 3))   # the crop keeps the green face region, cuts the bands
    assert (mean - torch.tensor(GREEN, dtype=torch.float)).abs().max() < 12, mean


def check_lsun(train, _):
    assert len(train) == 5
    colours = train.float().mean((2, 3))   # every written colour comes back (jpeg within a few levels)
    assert (colours[:, None] - LSUN_COLOURS[None]).abs().amax(-1).min(0).values.max() < 4


def check_folder(train, _):
    assert len(train) == 4 and train.shape[1] == 3


def check_mnist(train, labels):
    digits = torch.stack([labels // 100, labels // 10 % 10, labels % 10], 1)
    assert torch.equal(train[:, :, 0, 0].long(), 20 * digits + 10)   # channel c shows digit c


@dataclass
class Layout:
    dataset: str
    write: Callable[[Path], tuple[Path, object]]   # base -> (--from path, expected content)
    check: Callable
    resolution: int = 32
    default_place: bool = True                     # found under the data root without a path


LAYOUTS = {
    "mnist-gz": Layout("stacked_mnist", lambda b: (write_mnist(b, gz=True), None), check_mnist, 28),
    "mnist-extracted": Layout("stacked_mnist", lambda b: (write_mnist(b, gz=False), None), check_mnist, 28),
    "mnist-mixed": Layout("stacked_mnist", lambda b: (write_mnist(b, gz="mixed"), None), check_mnist, 28),
    "cifar10-tar.gz": Layout("cifar10", lambda b: write_cifar_layout(b, as_tar=True), check_cifar),
    "cifar10-extracted": Layout("cifar10", lambda b: write_cifar_layout(b, as_tar=False), check_cifar),
    "celeba-zip": Layout("celeba", lambda b: (write_celeba_layout(b, "zip"), None), check_celeba),
    "celeba-folder": Layout("celeba", lambda b: (write_celeba_layout(b, "folder"), None), check_celeba),
    "celeba-kaggle-folder": Layout("celeba", lambda b: (write_celeba_layout(b, "kaggle"), None), check_celeba),
    "celeba-kaggle-zip": Layout("celeba", lambda b: (write_celeba_layout(b, "kaggle-zip"), None), check_celeba,
                                default_place=False),
    "lsun-lmdb": Layout("lsun_classroom", lambda b: (write_lsun_layout(b, "lmdb"), None), check_lsun),
    "lsun-zip": Layout("lsun_classroom", lambda b: (write_lsun_layout(b, "zip"), None), check_lsun),
    "lsun-image-folder": Layout("lsun_classroom", lambda b: (write_lsun_layout(b, "folder"), None), check_lsun),
    "lsun-image-zip": Layout("lsun_classroom", lambda b: (write_lsun_layout(b, "image-zip"), None), check_lsun,
                             default_place=False),
    "folder-dir": Layout("folder", lambda b: (write_folder_layout(b, as_zip=False), None), check_folder,
                         default_place=False),
    "folder-zip": Layout("folder", lambda b: (write_folder_layout(b, as_zip=True), None), check_folder,
                         default_place=False),
}
MNIST_LAYOUTS = [k for k, v in LAYOUTS.items() if v.dataset == "stacked_mnist"]


def small(layout: Layout) -> list[str]:
    """prepare options that keep Stacked MNIST tiny (its default is 100,000 stacks)."""
    return ["--n", "40"] if layout.dataset == "stacked_mnist" else []


def cache_of(out: str) -> Path:
    return Path(out.strip().rsplit(": ", 1)[1])   # prepare's line ends with the cache directory


def load_cache(cache: Path):
    m = json.loads((cache / "manifest.json").read_text())
    arr = lambda k: torch.from_numpy(np.load(cache / f"{k}.npy"))
    return m, arr("train"), arr("train_labels") if "train_labels" in m["arrays"] else None


def prepare_ok(capsys, *args) -> tuple[Path, str]:
    assert main(["prepare", *map(str, args)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    return cache_of(out), out


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LAYOUTS)
def test_prepare_reads_the_layout(tmp_path, capsys, name):
    """`gan-bench prepare NAME --from PATH`, and without --from with the source in its place."""
    layout = LAYOUTS[name]
    src, want = layout.write(tmp_path / "downloads")
    root = tmp_path / "data"
    cache, out = prepare_ok(capsys, layout.dataset, "--from", src, "--data-root", root, *small(layout))
    assert "built" in out and cache.parent == root / "cache"
    m, train, labels = load_cache(cache)
    layout.check(train, labels if layout.dataset == "stacked_mnist" else want)
    assert Path(m["source"]["path"]).resolve().is_relative_to(src.resolve())   # read from where --from said
    assert "up to date" in prepare_ok(capsys, layout.dataset, "--from", src, "--data-root", root,
                                      *small(layout))[1]
    if layout.default_place:
        placed_root = tmp_path / "placed"
        layout.write(placed_root)
        cache2, out2 = prepare_ok(capsys, layout.dataset, "--data-root", placed_root, *small(layout))
        assert "built" in out2 and cache2.parent == placed_root / "cache" and cache2.name == cache.name
        _, train2, labels2 = load_cache(cache2)
        assert torch.equal(train2, train) and (labels is None or torch.equal(labels2, labels))


def train_args(layout: Layout, root: Path, src: Path, run: Path, *extra) -> list[str]:
    args = ["train", f"dataset={layout.dataset}", f"paths.data={root}", f"dataset.resolution={layout.resolution}",
            "model=dcgan_small", "model.generator.ngf=4", "model.discriminator.ndf=4", "train.batch_size=4",
            "train.steps=2", "train.log_every=1", "train.progress=false", "train.device=cpu",
            "eval.metrics=[]", "eval.final_metrics=[]", f"hydra.run.dir={run}", *extra]
    if layout.dataset == "stacked_mnist":
        args.append("dataset.n=40")
    if not layout.default_place:
        args.append(f"dataset.path={src}")
    if layout.dataset in ("cifar10", "stacked_mnist"):
        args.append("dataset.download=false")   # the layout is there: a download would be a bug
    return args


@pytest.mark.parametrize("name", LAYOUTS)
def test_train_and_eval_read_the_layout(tmp_path, capsys, monkeypatch, name):
    """Two training steps on the layout; then `gan-bench eval` with the cache deleted, so it reads
    the source again, scoring a cheap metric against the real images it read."""
    import gan_bench.metrics.image as image_mod

    layout = LAYOUTS[name]
    root, run = tmp_path / "data", tmp_path / "run"
    src, want = layout.write(root)
    assert main(train_args(layout, root, src, run)) == 0, capsys.readouterr().err
    assert json.loads((run / "result.json").read_text())["status"] == "completed"
    (cache,) = [d for d in (root / "cache").iterdir() if (d / "manifest.json").is_file()]
    m, train, labels = load_cache(cache)
    layout.check(train, labels if layout.dataset == "stacked_mnist" else want)
    assert m["resolution"] == layout.resolution
    shutil.rmtree(cache)

    if layout.dataset == "stacked_mnist":   # its metric is the mode count by the MNIST classifier
        assert main(["prepare", "mnist-classifier", "--data-root", str(root), "--epochs", "1", "--batch-size",
                     "16", "--min-accuracy", "0", "--device", "cpu"]) == 0
        metric = "smnist_modes8"
    else:
        stub = PixelStats().stub   # pixel statistics in place of Inception (no weights here)
        monkeypatch.setattr(image_mod, "get_extractor", lambda *a, **k: stub)
        metric = "fid4_train"
    capsys.readouterr()
    assert main(["eval", str(run), f"eval.final_metrics=[{metric}]"]) == 0, capsys.readouterr().err
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["source"] == "eval" and record["step"] == 2 and np.isfinite(record[metric])
    assert (cache / "manifest.json").is_file()   # rebuilt from the source by eval
    m2, train2, _ = load_cache(cache)
    assert torch.equal(train2, train) and m2["source"]["fingerprint"] == m["source"]["fingerprint"]


@pytest.mark.parametrize("name", MNIST_LAYOUTS)
def test_mnist_classifier_reads_the_layout(tmp_path, capsys, name):
    """`gan-bench prepare mnist-classifier` on both splits, with MNIST in its place under the data
    root and with --from elsewhere; nothing is written next to the idx files."""
    raw = LAYOUTS[name].write(tmp_path / "data")[0]
    before = sorted(raw.iterdir())
    common = ["--epochs", "1", "--batch-size", "16", "--min-accuracy", "0", "--device", "cpu"]
    assert main(["prepare", "mnist-classifier", "--data-root", str(tmp_path / "data"), *common]) == 0
    manifest = json.loads((tmp_path / "data" / "cache" / "mnist_classifier.pt.json").read_text())
    assert manifest["n_train"] == 60 and manifest["n_test"] == 20
    assert sorted(manifest["mnist_files_sha256"]) == sorted(p.name for p in before)
    assert sorted(raw.iterdir()) == before

    out = tmp_path / "elsewhere.pt"
    assert main(["prepare", "mnist-classifier", "--from", str(raw), "--out", str(out), *common]) == 0
    assert json.loads(Path(f"{out}.json").read_text())["mnist_files_sha256"] == manifest["mnist_files_sha256"]
    assert "wrote" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Missing and bad data: one line, the layout that works, the docs page; before any training.


def one_line(capsys, argv, *needles):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:   # `train` exits from inside the Hydra app
        code = e.code
    assert code == 2
    # Progress lines ("building ...") may come first; the error is the last line, and one line.
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("gan-bench: error: "), err
    for s in (DOCS, *needles):
        assert s in err, (s, err)


MISSING = {   # data set -> words of the layout its message must name
    "stacked_mnist": ["train-images-idx3-ubyte.gz", "extracted", "MNIST/raw"],
    "cifar10": ["cifar-10-python.tar.gz", "cifar-10-batches-py"],
    "celeba": ["img_align_celeba.zip", "img_align_celeba/"],
    "lsun_classroom": ["classroom_train_lmdb.zip", "classroom_train_lmdb/", "data.mdb", "classroom/"],
    "folder": ["directory of images", "zip"],
}


@pytest.mark.parametrize("name", MISSING)
def test_missing_data_names_the_layout(tmp_path, capsys, name):
    root = tmp_path / "data"
    where = ["--from", tmp_path / "nope"] if name == "folder" else []
    one_line(capsys, ["prepare", name, "--data-root", root, *where], str(root if name != "folder" else "nope"),
             *MISSING[name])
    run = tmp_path / "run"
    layout = next(v for v in LAYOUTS.values() if v.dataset == name)
    one_line(capsys, train_args(layout, root, tmp_path / "nope", run), *MISSING[name])
    assert not (run / "checkpoints").exists()


def test_missing_mnist_for_the_classifier_names_the_test_files(tmp_path, capsys):
    one_line(capsys, ["prepare", "mnist-classifier", "--data-root", tmp_path], "MNIST not found",
             "train-images-idx3-ubyte.gz", "MNIST/raw")
    raw = write_mnist(tmp_path, gz=True)
    for f in raw.glob("t10k-*"):
        f.unlink()
    one_line(capsys, ["prepare", "mnist-classifier", "--data-root", tmp_path], "t10k-images-idx3-ubyte.gz")


def truncate(f: Path, keep: float = 0.5):
    data = f.read_bytes()
    f.write_bytes(data[:int(len(data) * keep)])


def corrupt_lmdb(base: Path) -> Path:
    db = write_lsun_layout(base, "lmdb")
    (db / "data.mdb").write_bytes(b"\0" * 100)
    return db


BAD = {   # layout -> (data set, writer of a damaged copy, words of the message)
    "mnist-gz-truncated": ("stacked_mnist", lambda b: truncate(write_mnist(b, gz=True) / "train-images-idx3-ubyte.gz"),
                           ["train-images-idx3-ubyte.gz", "download it again"]),
    "mnist-extracted-truncated": ("stacked_mnist",
                                  lambda b: truncate(write_mnist(b, gz=False) / "train-images-idx3-ubyte"),
                                  ["train-images-idx3-ubyte", "truncated"]),
    "cifar10-tar.gz-truncated": ("cifar10", lambda b: truncate(write_cifar_layout(b, as_tar=True)[0], 0.6),
                                 ["cifar-10-python.tar.gz", "download"]),
    "celeba-zip-truncated": ("celeba", lambda b: truncate(write_celeba_layout(b, "zip")),
                             ["img_align_celeba.zip", "download it again"]),
    "lsun-lmdb-corrupt": ("lsun_classroom", corrupt_lmdb, ["classroom_train_lmdb", "lmdb"]),
    "lsun-zip-truncated": ("lsun_classroom", lambda b: truncate(write_lsun_layout(b, "zip")),
                           ["classroom_train_lmdb.zip", "download it again"]),
    "celeba-bad-jpeg": ("celeba",
                        lambda b: (write_celeba_layout(b, "folder") / "000003.jpg").write_bytes(b"\xff\xd8junk"),
                        ["000003.jpg", "delete or replace it"]),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_data_is_one_line(tmp_path, capsys, name):
    dataset, damage, words = BAD[name]
    root = tmp_path / "data"
    damage(root)
    extra = ["--n", "40"] if dataset == "stacked_mnist" else []
    one_line(capsys, ["prepare", dataset, "--data-root", root, *extra], *words)
    assert not [p for p in (root / "cache").rglob("*") if p.name.endswith(".npy") or ".tmp-" in p.name]


def test_bad_mnist_for_the_classifier_is_one_line(tmp_path, capsys):
    truncate(write_mnist(tmp_path, gz=True) / "t10k-labels-idx1-ubyte.gz")
    one_line(capsys, ["prepare", "mnist-classifier", "--data-root", tmp_path, "--epochs", "1"],
             "t10k-labels-idx1-ubyte.gz", "download it again")
    assert not (tmp_path / "cache" / "mnist_classifier.pt").exists()


def test_lsun_zip_extraction_leaves_nothing_behind(tmp_path, capsys):
    """The zipped lmdb's data.mdb lives in the cache directory only while it is read."""
    src = write_lsun_layout(tmp_path / "dl", "zip")
    cache, _ = prepare_ok(capsys, "lsun_classroom", "--from", src, "--data-root", tmp_path / "data")
    assert sorted(p.name for p in cache.iterdir()) == [".lock", "manifest.json", "train.npy"]
    assert sorted(p.name for p in src.parent.iterdir()) == [src.name]


def test_lsun_zip_and_unzipped_lmdb_give_one_cache(tmp_path, capsys):
    a = write_lsun_layout(tmp_path / "a", "lmdb")
    b = write_lsun_layout(tmp_path / "b", "zip")
    ca, _ = prepare_ok(capsys, "lsun_classroom", "--from", a, "--data-root", tmp_path / "ra")
    cb, _ = prepare_ok(capsys, "lsun_classroom", "--from", b, "--data-root", tmp_path / "rb")
    assert torch.equal(load_cache(ca)[1], load_cache(cb)[1])


def test_lsun_zip_without_room_to_extract_is_one_line(tmp_path, capsys, monkeypatch):
    from gan_bench.data import sources

    src = write_lsun_layout(tmp_path / "data", "zip")
    monkeypatch.setattr(sources.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1 << 40, 1 << 40, 0))
    one_line(capsys, ["prepare", "lsun_classroom", "--data-root", tmp_path / "data"], str(src), "GB free",
             "unzip it elsewhere")
