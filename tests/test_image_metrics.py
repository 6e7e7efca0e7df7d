"""KID, PRDC, IS and Stacked MNIST modes against independent hand computations; the orchestration
(names, subsets, fingerprints, cache) with a stub extractor; the non-standard logits FID with the
real torchvision architecture; the MNIST classifier's training loop on a tiny synthetic idx set."""

import itertools
import json
import math
import struct

import numpy as np
import pytest
import torch

from gan_bench.errors import UserError
from gan_bench.metrics import image as image_mod
from gan_bench.metrics.features import TV_INCEPTION, Extractor
from gan_bench.metrics.image import ImageMetrics
from gan_bench.metrics.inception_score import inception_score
from gan_bench.metrics.kid import kernel_inception_distance
from gan_bench.metrics.mnist_modes import (
    count_modes,
    load_mnist_classifier,
    prepare_mnist_classifier_main,
    stacked_mnist_modes,
    train_mnist_classifier,
)
from gan_bench.metrics.prdc import prdc

pytestmark = pytest.mark.usefixtures("one_thread")  # Inception on the CPU: see conftest

# -- KID ---------------------------------------------------------------------------------------


def loop_mmd2(x, y):
    d = x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_whole_sets_equals_loops():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(7, 3)), rng.normal(size=(7, 3)) + 0.5
    # One subset of all samples is a permutation of each set, which MMD^2_u does not see.
    got = kernel_inception_distance(fake, real, num_subsets=1, max_subset_size=100)
    assert got == pytest.approx(loop_mmd2(real, fake), rel=1e-10)


def test_kid_averages_subsets():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(9, 4)), rng.normal(size=(8, 4))
    picks = np.random.RandomState(5)  # the documented protocol: real subset, then fake subset
    expect = np.mean([loop_mmd2(real[picks.choice(9, 4, replace=False)], fake[picks.choice(8, 4, replace=False)])
                      for _ in range(3)])
    assert kernel_inception_distance(fake, real, num_subsets=3, max_subset_size=4, seed=5) == pytest.approx(expect)


# -- precision / recall / density / coverage ---------------------------------------------------

def loop_prdc(real, fake, k):
    dist = lambda a, b: math.sqrt(sum((p - q) ** 2 for p, q in zip(a, b)))  # noqa: E731
    kth = lambda pts, i: sorted(dist(pts[i], pts[j]) for j in range(len(pts)) if j != i)[k - 1]  # noqa: E731
    r = [kth(real, i) for i in range(len(real))]
    s = [kth(fake, j) for j in range(len(fake))]
    n, m = len(real), len(fake)
    precision = sum(any(dist(fake[j], real[i]) < r[i] for i in range(n)) for j in range(m)) / m
    recall = sum(any(dist(real[i], fake[j]) < s[j] for j in range(m)) for i in range(n)) / n
    density = sum(dist(fake[j], real[i]) < r[i] for i in range(n) for j in range(m)) / (k * m)
    coverage = sum(min(dist(real[i], fake[j]) for j in range(m)) < r[i] for i in range(n)) / n
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@pytest.mark.parametrize("k,chunk", [(5, 1024), (5, 3), (2, 4)])
def test_prdc_equals_loops(k, chunk):
    rng = np.random.default_rng(k + chunk)
    real = rng.normal(size=(13, 3))
    fake = rng.normal(size=(11, 3)) * 1.5 + 0.4  # partly off the real manifold: values strictly in (0, 1)
    got = prdc(fake, real, k=k, chunk=chunk)
    expect = loop_prdc(real.tolist(), fake.tolist(), k)
    assert got == pytest.approx(expect, abs=1e-12)
    assert 0 < got["precision"] < 1 and 0 < got["coverage"] < 1


# -- Inception Score ----------------------------------------------------------------------------

def loop_is(logits):
    probs = [[math.exp(v) / sum(math.exp(u) for u in row) for v in row] for row in logits]
    py = [sum(p[c] for p in probs) / len(probs) for c in range(len(logits[0]))]
    kl = [sum(p[c] * math.log(p[c] / py[c]) for c in range(len(py))) for p in probs]
    return math.exp(sum(kl) / len(kl))


def test_inception_score_equals_definition():
    logits = np.random.default_rng(2).normal(size=(12, 5)) * 3
    mean, std = inception_score(logits, splits=1)
    assert mean == pytest.approx(loop_is(logits.tolist()), rel=1e-12) and std == 0
    halves = [loop_is(logits[:6].tolist()), loop_is(logits[6:].tolist())]
    mean2, std2 = inception_score(logits, splits=2)
    assert mean2 == pytest.approx(np.mean(halves), rel=1e-12) and std2 == pytest.approx(np.std(halves), rel=1e-10)


def test_inception_score_confident_uniform_is_class_count():
    # Each sample certain of its class, classes used equally: IS = number of classes.
    logits = torch.eye(4).repeat(5, 1) * 200.0
    assert inception_score(logits, splits=1)[0] == pytest.approx(4.0, rel=1e-12)


# -- Stacked MNIST modes ------------------------------------------------------------------------

def test_count_modes_exact():
    r = count_modes(torch.tensor([0, 0, 7, 999]))
    assert r["modes"] == 3
    assert r["kl"] == pytest.approx(0.5 * math.log(500) + 2 * 0.25 * math.log(250), rel=1e-14)
    assert count_modes(torch.arange(1000)) == {"modes": 1000, "kl": 0.0}
    assert count_modes(torch.full((50,), 123)) == {"modes": 1, "kl": pytest.approx(math.log(1000), rel=1e-14)}
    with pytest.raises(ValueError):
        count_modes(torch.tensor([1000]))


class IntensityDigit(torch.nn.Module):
    """A 'classifier' that reads digit d from a constant image of value 20*d."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        d = (x.float().mean((1, 2, 3)) / 20).round().long()
        return torch.nn.functional.one_hot(d, 10).float() + self.dummy


def test_stacked_mnist_modes_reads_channels_as_digits():
    digits = [(1, 2, 3), (1, 2, 3), (9, 0, 0), (0, 0, 7)]
    x = torch.tensor(digits, dtype=torch.uint8).mul(20).view(4, 3, 1, 1).expand(4, 3, 28, 28).contiguous()
    r = stacked_mnist_modes(x, IntensityDigit())
    expect = count_modes(torch.tensor([123, 123, 900, 7]))
    assert r == expect and r["modes"] == 3


def write_idx(raw, prefix, images, labels):
    with open(raw / f"{prefix}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(images), 28, 28) + images.numpy().tobytes())
    with open(raw / f"{prefix}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x801, len(labels)) + labels.numpy().astype(np.uint8).tobytes())


def synthetic_mnist(root, n_train=64, n_test=20):
    """Digit c = a bright 6x6 block at a class-specific place, plus noise: learnable, tiny."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = torch.arange(n) % 10
        x = torch.randint(0, 40, (n, 28, 28), generator=g, dtype=torch.uint8)
        for i, c in enumerate(y.tolist()):
            r0, c0 = 4 + 12 * (c // 5), 1 + 5 * (c % 5)
            x[i, r0:r0 + 6, c0:c0 + 4] = 250
        write_idx(raw, prefix, x, y)


def test_mnist_classifier_training_loop_and_cache(tmp_path):
    synthetic_mnist(tmp_path)
    out = tmp_path / "cache" / "mnist_classifier.pt"
    with pytest.raises(UserError, match="test accuracy"):
        train_mnist_classifier(tmp_path, out, epochs=1, min_accuracy=1.01, log=lambda s: None)
    assert not out.exists()  # a classifier below the bar is never written

    assert prepare_mnist_classifier_main(["--mnist-root", str(tmp_path), "--out", str(out), "--epochs", "2",
                                          "--batch-size", "16", "--min-accuracy", "0", "--device", "cpu"]) == 0
    model, manifest = load_mnist_classifier(out)
    assert manifest["arch"] == "gan-bench-mnist-cnn-v2" and 0 <= manifest["test_accuracy"] <= 1
    assert set(manifest["mnist_files_sha256"]) == {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}
    stacks = torch.randint(0, 256, (5, 3, 28, 28), dtype=torch.uint8)
    r = stacked_mnist_modes(stacks, model)
    assert 1 <= r["modes"] <= 5

    # Through the registry: the default classifier path is <cache_dir>/../mnist_classifier.pt.
    im = ImageMetrics(["smnist_modes5"], None, "stacked-mnist", tmp_path / "cache" / "metrics")
    res = im(lambda k: stacks[:k])
    assert res == {"smnist_modes5": float(r["modes"]), "smnist_modes5_kl": pytest.approx(r["kl"])}
    assert im.fingerprints["smnist_modes5"].startswith("mnistcnn-")

    manifest_path = out.with_name(out.name + ".json")
    manifest_path.write_text(json.dumps({**manifest, "arch": "gan-bench-mnist-cnn-v1"}))  # an older cache
    with pytest.raises(UserError, match="is a gan-bench-mnist-cnn-v1, .* prepare mnist-classifier` again"):
        load_mnist_classifier(out)
    manifest_path.write_text(json.dumps(manifest))
    out.write_bytes(out.read_bytes() + b"x")  # no longer the file the manifest vouches for
    with pytest.raises(UserError, match="manifest"):
        load_mnist_classifier(out)
    with pytest.raises(UserError, match="prepare mnist-classifier"):
        load_mnist_classifier(tmp_path / "none.pt")


def test_missing_mnist_is_user_error(tmp_path):
    with pytest.raises(UserError, match="MNIST not found"):
        train_mnist_classifier(tmp_path, tmp_path / "c.pt", epochs=1)


# -- orchestration with a stub extractor --------------------------------------------------------

class StubExtractor(Extractor):
    """A fixed random projection of the pixels in place of Inception: fast, and every metric
    value can be recomputed from its features."""

    LAYERS = ("2048", "logits_unbiased")

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.w = torch.randn(3 * 8 * 8, 32 + 10, generator=g, dtype=torch.float64) / 5
        super().__init__("tf_inception", torch.nn.Identity(), self.LAYERS, {"net": "stub"})

    def _forward(self, x):  # 32-d "pool3", 10 "logits": the layer names are only keys
        f = x.double().flatten(1) / 255 @ self.w
        return f[:, :32], f[:, 32:]


def test_orchestration_names_subsets_fingerprints_cache(tmp_path, monkeypatch):
    stub = StubExtractor()
    monkeypatch.setattr(image_mod, "get_extractor", lambda *a, **k: stub)
    g = torch.Generator().manual_seed(1)
    real = torch.randint(0, 256, (9, 1, 8, 8), generator=g, dtype=torch.uint8)  # grayscale
    fake = torch.randint(0, 256, (20, 1, 8, 8), generator=g, dtype=torch.uint8)
    names = ["fid7_train", "kid7_train", "prdc7_train", "is20"]
    im = ImageMetrics(names, real, "toy-images:v1", tmp_path, batch_size=6)
    drawn = []
    res = im(lambda k: drawn.append(k) or fake[sum(drawn) - k:sum(drawn)])
    assert drawn == [6, 6, 6, 2]  # batch-sized calls until the largest count (20) is reached

    assert set(res) == {"fid7_train", "kid7_train", "is20", "is20_std"} | {
        f"prdc7_train_{k}" for k in ("precision", "recall", "density", "coverage")}
    assert set(im.fingerprints) == set(res)
    assert len({im.fingerprints[k] for k in res if k.startswith("prdc")}) == 1
    assert im.cache.log == [(im.cache.log[0][0], "miss")]  # fid, kid and prdc share one reference

    # Recompute each value from the stub's features: reals are a seed-0 subset of 7 of the 9.
    idx = torch.randperm(9, generator=torch.Generator().manual_seed(0))[:7].sort().values
    fr, ff = stub(real[idx])["2048"], stub(fake)
    from gan_bench.metrics.fid import feature_stats, frechet_distance
    assert res["fid7_train"] == pytest.approx(frechet_distance(*feature_stats(ff["2048"][:7]), *feature_stats(fr)),
                                              rel=1e-9)
    assert res["kid7_train"] == pytest.approx(kernel_inception_distance(ff["2048"][:7], fr), rel=1e-9)
    p = prdc(ff["2048"][:7], fr, k=5)
    assert all(res[f"prdc7_train_{k}"] == pytest.approx(v) for k, v in p.items())
    assert (res["is20"], res["is20_std"]) == pytest.approx(inception_score(ff["logits_unbiased"], 10))

    # Same protocol again: a hit; the fingerprints do not change.
    im2 = ImageMetrics(names, lambda: pytest.fail("reals loaded on a hit"), "toy-images:v1", tmp_path)
    res2 = im2(lambda k: fake[:k])
    assert [h for _, h in im2.cache.log] == ["hit"] and im2.fingerprints == im.fingerprints
    assert res2 == res  # the same 20 fakes (one call of 20 this time): the same values

    # Another dataset id or crop preset is another reference.
    for kw in ({"dataset_id": "toy-images:v2"}, {"crop": "center108"}):
        args = dict(dataset_id="toy-images:v1") | kw
        im3 = ImageMetrics(["fid7_train"], real, args.pop("dataset_id"), tmp_path, **args)
        im3(lambda k: fake[:k])
        assert [h for _, h in im3.cache.log] == ["miss"]


def test_bad_names_and_splits(tmp_path, monkeypatch):
    monkeypatch.setattr(image_mod, "get_extractor", lambda *a, **k: StubExtractor())
    with pytest.raises(UserError, match="unknown image metric 'fid50k'"):
        ImageMetrics(["fid50k"], None, "x", tmp_path)
    for too_few in ("prdc5_train", "is9"):  # k = 5 neighbours; 10 splits
        with pytest.raises(UserError, match="needs at least"):
            ImageMetrics([too_few], None, "x", tmp_path)
    with pytest.raises(UserError, match="'heldout20' split"):
        ImageMetrics(["fid10k_heldout20"], torch.zeros(2, 3, 8, 8, dtype=torch.uint8), "x", tmp_path)
    im = ImageMetrics(["is20"], None, "x", tmp_path)
    with pytest.raises(TypeError, match="uint8"):
        im(lambda k: torch.rand(k, 3, 8, 8))


# -- the non-standard logits FID with torchvision's architecture --------------------------------



@pytest.fixture(scope="module")
def tv_weights(tmp_path_factory):
    from torchvision.models import inception_v3
    torch.manual_seed(0)
    net = inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=False)
    path = tmp_path_factory.mktemp("tv") / "random-inception-v3.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.filterwarnings("ignore:.*not the standard.*:UserWarning")
def test_fid_logits_nonstandard_pipeline(tv_weights, tmp_path):
    from torchvision.models import inception_v3
    g = torch.Generator().manual_seed(3)
    train = torch.randint(0, 256, (2, 3, 32, 32), generator=g, dtype=torch.uint8)
    held = torch.randint(0, 256, (3, 3, 32, 32), generator=g, dtype=torch.uint8)
    fake = torch.randint(0, 256, (3, 3, 32, 32), generator=g, dtype=torch.uint8)
    name = "fid_logits_nonstandard3_heldout20"
    im = ImageMetrics([name], {"train": train, "heldout20": held}, "celeba64:v1", tmp_path, tv_weights_path=tv_weights)
    res = im(lambda k: fake[:k])
    assert set(res) == {name} and np.isfinite(res[name]) and res[name] > 0
    assert im.fingerprints[name].startswith("tvinception-logits-nonstandard-")
    feats = np.load(next(tmp_path.glob("*.npz")))["mu"]
    assert feats.shape == (1000,)

    # The papers' code, independently: [-1, 1] images mapped to [0, 1], then the weights' own
    # transforms object (resize 342, centre crop 299, ImageNet mean/std), torchvision's
    # inception_v3 in eval mode with transform_input=True.
    from torchvision.models import Inception_V3_Weights
    net = inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=False).eval()
    net.load_state_dict(torch.load(tv_weights, weights_only=True))
    x = Inception_V3_Weights.IMAGENET1K_V1.transforms()((held.float() / 127.5 - 1) / 2 + 0.5)
    assert x.shape == (3, 3, 299, 299)
    # Random-weight logits barely depend on the input, so the input itself is compared too.
    from gan_bench.metrics.features import get_extractor
    ours = get_extractor("tv_inception_logits_nonstandard", tv_weights).preprocess(held)
    torch.testing.assert_close(ours, x, rtol=0, atol=1e-5)
    with torch.no_grad():
        logits = net(x).double().numpy()
    np.testing.assert_allclose(feats, logits.mean(0), rtol=1e-4, atol=1e-4 * np.abs(logits).max())


def test_missing_torchvision_weights_is_one_line_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(UserError) as e:
        ImageMetrics(["fid_logits_nonstandard10k_heldout20"], {"heldout20": torch.zeros(1)}, "x", tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and TV_INCEPTION.filename in msg and "0cc3c7bd" in msg
    assert "download.pytorch.org" in msg


def test_name_regex_covers_all_kinds():
    for kind, split in itertools.product(image_mod.KINDS, ["train"]):
        needs = image_mod.KINDS[kind].needs_split
        sep = "_" if kind[-1].isdigit() else ""  # fd_dinov2_10k_train
        name = f"{kind}{sep}10k_{split}" if needs else f"{kind}{sep}10k"
        assert image_mod.parse_name(name).kind == kind
