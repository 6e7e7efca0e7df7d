"""The metric table: every kind's fingerprint stays what it was (results already on disk pool with new
ones only under equal fingerprints), reference statistics are shared and cached, and the cache key
names everything that produced them."""

import torch

import gan_bench.metrics.image as image_mod
import gan_bench.metrics.mnist_modes as mnist_modes
from gan_bench.metrics.features import Extractor
from gan_bench.metrics.image import ImageMetrics
from test_image_metrics import IntensityDigit, StubExtractor


class TvStub(Extractor):
    def _forward(self, x):
        return (x.double().flatten(1)[:, :12] / 255,)


def stub_networks(monkeypatch):
    stub = StubExtractor()
    tv = TvStub("tv_inception_logits_nonstandard", torch.nn.Identity(), ("logits",), {"net": "tv-stub"})
    monkeypatch.setattr(image_mod, "get_extractor", lambda name, *a, **k: tv if name.startswith("tv") else stub)
    monkeypatch.setattr(mnist_modes, "load_mnist_classifier",
                        lambda path, device="cpu": (IntensityDigit(), {"sha256": "0" * 64}))


def test_fingerprints_are_those_of_earlier_versions(tmp_path, monkeypatch):
    # Written down from gan-bench b8ff1fd (before the metric table): a change here splits every
    # report between old and new runs, so it must be deliberate (a new protocol, a new tag).
    stub_networks(monkeypatch)
    g = torch.Generator().manual_seed(1)
    real = torch.randint(0, 256, (9, 3, 8, 8), generator=g, dtype=torch.uint8)
    fake = torch.randint(0, 256, (20, 3, 8, 8), generator=g, dtype=torch.uint8)
    im = ImageMetrics(["fid7_train", "kid7_train", "prdc7_train", "is20", "fid_logits_nonstandard6_test"],
                      {"train": real, "test": real[:6]}, "toy-images:v1", tmp_path, batch_size=6)
    im(lambda k: fake[:k])
    prdc = "tfinception-pool3-ebee5bccf3348133"
    assert im.fingerprints == {
        "fid7_train": "tfinception-pool3-48454b07d7a7e670", "kid7_train": "tfinception-pool3-dd32f041bf960dd8",
        "prdc7_train_precision": prdc, "prdc7_train_recall": prdc, "prdc7_train_density": prdc,
        "prdc7_train_coverage": prdc, "is20": "tfinception-logits-ac73e7ef11b94c69",
        "is20_std": "tfinception-logits-ac73e7ef11b94c69",
        "fid_logits_nonstandard6_test": "tvinception-logits-nonstandard-69d54551df8bf992"}
    assert im.cache.log == [("ref-tfinception-pool3-28a3a65a480f911c", "miss"),
                            ("ref-tvinception-logits-nonstandard-a7e9e77dadbb97fe", "miss")]
    assert {p.name for p in tmp_path.iterdir()} == {  # fid needs mu/sigma, kid and prdc the raw features
        f"{fp}{ext}" for fp, _ in im.cache.log for ext in (".npz", ".json")} | {
        "ref-tfinception-pool3-28a3a65a480f911c.feats.npy"}

    stacks = torch.tensor([1, 2, 3], dtype=torch.uint8).mul(20).view(1, 3, 1, 1).expand(5, 3, 28, 28).contiguous()
    im = ImageMetrics(["smnist_modes5"], None, "stacked-mnist", tmp_path)
    assert im(lambda k: stacks[:k]) == {"smnist_modes5": 1.0, "smnist_modes5_kl": 6.907755278982137}
    assert im.fingerprints == {"smnist_modes5": "mnistcnn-a0787b5a07f68b5d", "smnist_modes5_kl": "mnistcnn-a0787b5a07f68b5d"}
