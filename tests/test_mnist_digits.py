"""dataset=mnist and the two metrics read from the mode classifier on single digits:
fd_mnist<count>_<split> (Frechet distance of its penultimate features) and mnist_classes<count>."""

import gzip
import json
import shutil
import struct

import numpy as np
import pytest
import torch
from test_images import load

from gan_bench import atomic
from gan_bench.errors import UserError
from gan_bench.metrics import mnist_modes
from gan_bench.metrics.fid import feature_stats, frechet_distance
from gan_bench.metrics.image import ImageMetrics, parse_name
from gan_bench.metrics.mnist_modes import MnistCNN, count_classes, digit_features


def write_split(raw, prefix, x: np.ndarray, y: np.ndarray, gz: bool):
    opener, ext = (gzip.open, ".gz") if gz else (open, "")
    with opener(raw / f"{prefix}-images-idx3-ubyte{ext}", "wb") as f:
        f.write(struct.pack(">IIII", 2051, len(x), 28, 28) + x.tobytes())
    with opener(raw / f"{prefix}-labels-idx1-ubyte{ext}", "wb") as f:
        f.write(struct.pack(">II", 2049, len(y)) + y.tobytes())


def tiny_mnist(root, n_train=40, n_test=12, gz=True):
    """Train and test idx files in torchvision's layout; returns the arrays written."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        write_split(raw, prefix, x, y, gz)
        out[prefix] = (x, y)
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_dataset_train_test_and_labels(tmp_path, gz):
    written = tiny_mnist(tmp_path, gz=gz)
    data = load(tmp_path, "dataset=mnist")
    assert data.name == "mnist" and data.kind == "image" and data.sample_shape == (1, 28, 28)
    assert data.train.dtype == torch.uint8 and data.test.shape == (12, 1, 28, 28)
    assert np.array_equal(data.train[:, 0].numpy(), written["train"][0])
    assert np.array_equal(data.test[:, 0].numpy(), written["t10k"][0])
    assert np.array_equal(data.labels.numpy(), written["train"][1])
    assert np.array_equal(data.info["test_labels"].numpy(), written["t10k"][1])
    assert load(tmp_path, "dataset=mnist", "dataset.resolution=32").train.shape == (40, 1, 32, 32)


def test_mnist_dataset_elsewhere_and_bad_input(tmp_path):
    tiny_mnist(tmp_path / "else")
    data = load(tmp_path / "root", "dataset=mnist", f"dataset.path={tmp_path / 'else'}", "dataset.download=false")
    assert data.train.shape == (40, 1, 28, 28)
    with pytest.raises(UserError, match="channels must be one of \\(1,\\)"):
        load(tmp_path / "root", "dataset=mnist", "dataset.channels=3")
    # Only the training files: the test split is missing, one line says which files to add.
    (tmp_path / "half").mkdir()
    shutil.copytree(tmp_path / "else" / "MNIST", tmp_path / "half" / "MNIST")
    for f in (tmp_path / "half" / "MNIST" / "raw").glob("t10k*"):
        f.unlink()
    with pytest.raises(UserError, match="MNIST not found under .*t10k files") as e:
        load(tmp_path / "half", "dataset=mnist", "dataset.download=false")
    assert "\n" not in str(e.value)


def test_digit_features_are_the_classifiers_penultimate_layer():
    torch.manual_seed(0)
    model = MnistCNN().eval()
    x = torch.randint(0, 256, (37, 1, 28, 28), dtype=torch.uint8)
    seen = {}
    hook = model.net[9].register_forward_hook(lambda m, i, o: seen.setdefault("f", o))  # the ReLU after fc1
    with torch.no_grad():
        logits = model(x)
    hook.remove()
    out = digit_features(x, model, batch_size=10)  # in several batches
    assert out["penultimate"].shape == (37, 128)
    torch.testing.assert_close(out["penultimate"], seen["f"])
    assert torch.equal(out["labels"], logits.argmax(1))
    with pytest.raises(TypeError, match="uint8 \\[N, 1, 28, 28\\]"):
        digit_features(torch.zeros(2, 3, 28, 28, dtype=torch.uint8), model)


def test_count_classes():
    labels = torch.tensor([0] * 50 + [1] * 45 + [2] * 5)  # 2 has 5% of 100 = half its uniform share
    r = count_classes(labels, min_share=0.1)
    p = np.array([0.5, 0.45, 0.05])
    assert r["classes"] == 3 and r["kl"] == pytest.approx(float((p * np.log(p * 10)).sum()))
    assert count_classes(labels, min_share=0.6)["classes"] == 2  # 5 < 0.6 * 10
    assert count_classes(torch.arange(100) % 10)["kl"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        count_classes(torch.tensor([10]))


def random_classifier(cache_dir):
    """A random-weight MnistCNN cached as `prepare mnist-classifier` would write it (the metrics
    check the manifest's arch and SHA-256, not the accuracy)."""
    torch.manual_seed(1)
    path = cache_dir / "mnist_classifier.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"arch": mnist_modes.ARCH, "state_dict": MnistCNN().state_dict()}, path)
    manifest = {"arch": mnist_modes.ARCH, "sha256": mnist_modes._sha256(path)}
    atomic.write_json(path.with_name(path.name + ".json"), manifest)
    return path


def test_fd_mnist_and_classes_through_the_table(tmp_path):
    cls_path = random_classifier(tmp_path / "cache")
    g = torch.Generator().manual_seed(2)
    # More images than the 128 feature dimensions, so both covariances have full rank.
    real = torch.randint(0, 256, (300, 1, 28, 28), generator=g, dtype=torch.uint8)
    fake = torch.randint(0, 120, (260, 1, 28, 28), generator=g, dtype=torch.uint8)
    names = ["fd_mnist200_test", "mnist_classes260"]
    assert parse_name("fd_mnist10k_test").count == 10000 and parse_name("mnist_classes10k").split is None
    im = ImageMetrics(names, {"test": real}, "mnist:test", tmp_path / "cache" / "metrics", batch_size=64,
                      sample_shape=(1, 28, 28))
    drawn = []
    res = im(lambda k: drawn.append(k) or fake[sum(drawn) - k:sum(drawn)])  # the next k fakes
    assert set(res) == {"fd_mnist200_test", "mnist_classes260", "mnist_classes260_kl"}
    assert im.fingerprints["fd_mnist200_test"].startswith("mnistcnn-penultimate-")

    # Independently: the classifier's own forward on the reals' fixed subset and the first 200 fakes.
    model, _ = mnist_modes.load_mnist_classifier(cls_path)
    idx = torch.randperm(300, generator=torch.Generator().manual_seed(0))[:200].sort().values
    fr, ff = digit_features(real[idx], model), digit_features(fake, model)
    assert res["fd_mnist200_test"] == pytest.approx(
        frechet_distance(*feature_stats(fr["penultimate"]), *feature_stats(ff["penultimate"][:200])), rel=1e-6)
    c = count_classes(model(fake).argmax(1))
    assert (res["mnist_classes260"], res["mnist_classes260_kl"]) == (c["classes"], pytest.approx(c["kl"]))
    assert json.loads(next((tmp_path / "cache" / "metrics").glob("*.json")).read_text())["split"] == "test"


def test_mnist_metrics_refuse_other_data_at_start(tmp_path):
    random_classifier(tmp_path / "cache")
    for names, shape, other in ((["fd_mnist10_train"], (3, 28, 28), "3x28x28"),
                                (["mnist_classes10"], (3, 32, 32), "3x32x32"),
                                (["smnist_modes10"], (1, 28, 28), "1x28x28")):
        with pytest.raises(UserError, match=f"reads .* images, somedata has {other}: drop it") as e:
            ImageMetrics(names, {"train": torch.zeros(1)}, "somedata:x", tmp_path / "cache" / "metrics",
                         sample_shape=shape)
        assert "\n" not in str(e.value)


def test_mnist_run_end_to_end(tmp_path):
    """A short dataset=mnist model=dcgan_mnist run scored by fd_mnist and mnist_classes: every key
    in metrics.jsonl and result.json, under the metric fingerprints."""
    from conftest import make_cfg
    from gan_bench.train import train

    tiny_mnist(tmp_path / "data", n_train=64, n_test=16)
    random_classifier(tmp_path / "data" / "cache")
    cfg = make_cfg(tmp_path / "run", ["dataset=mnist", "model=dcgan_mnist", f"paths.data={tmp_path / 'data'}",
                                      "train.steps=4", "train.eval_every=2", "train.batch_size=8",
                                      "eval.metrics=[fd_mnist16_test,mnist_classes16]",
                                      "eval.final_metrics=[fd_mnist16_test,mnist_classes16]"], fast=False)
    cfg.train.progress = False
    out = train(cfg)
    assert out["status"] == "completed"
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4]
    keys = {"fd_mnist16_test", "mnist_classes16", "mnist_classes16_kl"}
    assert all(keys <= set(r) and np.isfinite(r["fd_mnist16_test"]) for r in lines)
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert keys <= set(result["metrics"]) and keys <= set(result["fingerprints"])


def test_real_floor_script(tmp_path, capsys):
    """scripts/mnist_real_floor.py scores training digits as a generator, against the same
    reference statistics a run's evaluator uses (the same cache entry)."""
    import importlib.util

    from gan_bench.config import ROOT

    spec = importlib.util.spec_from_file_location("mnist_real_floor", ROOT / "scripts" / "mnist_real_floor.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    tiny_mnist(tmp_path, n_train=40, n_test=30)
    random_classifier(tmp_path / "cache")
    assert script.main(["--count", "20", "--data-root", str(tmp_path)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert set(line) == {"count", "seed", "fd_mnist20_test", "mnist_classes20", "mnist_classes20_kl"}
    assert line["fd_mnist20_test"] >= 0 and 0 <= line["mnist_classes20"] <= 10
    assert len(list((tmp_path / "cache" / "metrics").glob("*.npz"))) == 1
