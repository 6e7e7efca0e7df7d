"""The metric table (gan_bench/metrics/image.py): every kind's fingerprint stays what it was (results
on disk pool with new ones only under equal fingerprints), a new kind is one entry, an unknown kind
raises, and the reference set is chosen in one place."""


import pytest
import torch
from test_image_metrics import IntensityDigit, StubExtractor

import gan_bench.metrics.image as image_mod
import gan_bench.metrics.mnist_modes as mnist_modes
from gan_bench.errors import UserError
from gan_bench.metrics.features import Extractor
from gan_bench.metrics.image import ImageMetrics


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
    # Written down from gan-bench b8ff1fd (before the metric table), except FID and PRDC, whose
    # computation issue 11 changed on purpose (tests/test_metric_fingerprints.py): a change here
    # splits every report between old and new runs, so it must be deliberate.
    stub_networks(monkeypatch)
    g = torch.Generator().manual_seed(1)
    real = torch.randint(0, 256, (9, 3, 8, 8), generator=g, dtype=torch.uint8)
    fake = torch.randint(0, 256, (20, 3, 8, 8), generator=g, dtype=torch.uint8)
    im = ImageMetrics(["fid7_train", "kid7_train", "prdc7_train", "is20", "fid_logits_nonstandard6_test"],
                      {"train": real, "test": real[:6]}, "toy-images:v1", tmp_path, batch_size=6)
    im(lambda k: fake[:k])
    prdc = "tfinception-pool3-b4c3900004a839a6"
    assert im.fingerprints == {
        "fid7_train": "tfinception-pool3-1aea366e07b8c62e", "kid7_train": "tfinception-pool3-dd32f041bf960dd8",
        "prdc7_train_precision": prdc, "prdc7_train_recall": prdc, "prdc7_train_density": prdc,
        "prdc7_train_coverage": prdc, "is20": "tfinception-logits-ac73e7ef11b94c69",
        "is20_std": "tfinception-logits-ac73e7ef11b94c69",
        "fid_logits_nonstandard6_test": "tvinception-logits-nonstandard-f09ac7f8ff49909a"}
    assert im.cache.log == [("ref-tfinception-pool3-28a3a65a480f911c", "miss"),
                            ("ref-tvinception-logits-nonstandard-a7e9e77dadbb97fe", "miss")]
    assert {p.name for p in tmp_path.iterdir()} == {  # fid needs mu/sigma, kid and prdc the raw features
        f"{fp}{ext}" for fp, _ in im.cache.log for ext in (".npz", ".json")} | {
        "ref-tfinception-pool3-28a3a65a480f911c.feats.npy"}

    stacks = torch.tensor([1, 2, 3], dtype=torch.uint8).mul(20).view(1, 3, 1, 1).expand(5, 3, 28, 28).contiguous()
    im = ImageMetrics(["smnist_modes5"], None, "stacked-mnist", tmp_path)
    assert im(lambda k: stacks[:k]) == {"smnist_modes5": 1.0, "smnist_modes5_kl": 6.907755278982137}
    assert im.fingerprints == {"smnist_modes5": "mnistcnn-a0787b5a07f68b5d",
                               "smnist_modes5_kl": "mnistcnn-a0787b5a07f68b5d"}


def test_a_new_kind_is_one_table_entry(tmp_path, monkeypatch):
    """What docs/metrics.md tells a contributor: a compute function and one KINDS entry."""
    stub_networks(monkeypatch)

    def mean_norm(x: image_mod.Inputs) -> dict:
        return {"": x.fake.norm(dim=1).mean(), "_max": x.fake.norm(dim=1).max()}

    monkeypatch.setitem(image_mod.KINDS, "fnorm", image_mod.MetricKind(
        mean_norm, "tf_inception", "2048", (), {"v": 1}, "tfinception-pool3"))
    fake = torch.randint(0, 256, (12, 3, 8, 8), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    im = ImageMetrics(["fnorm10", "is10"], None, "x", tmp_path)
    res = im(lambda k: fake[:k])
    norms = StubExtractor()(fake[:10])["2048"].norm(dim=1)
    assert res["fnorm10"] == pytest.approx(float(norms.mean()))
    assert res["fnorm10_max"] == pytest.approx(float(norms.max()))
    assert im.fingerprints["fnorm10"] == im.fingerprints["fnorm10_max"] != im.fingerprints["is10"]
    assert im.cache.log == []  # no reference: nothing cached


def test_unknown_kind_raises(tmp_path):
    for bad in ("lpips10k_train", "fid_pool10k_train", "ppl50k"):
        with pytest.raises(UserError, match=f"unknown image metric '{bad}'"):
            ImageMetrics([bad], None, "x", tmp_path)


def test_full_reference_is_every_training_image(tmp_path, monkeypatch):
    """`fid6_full` (StyleGAN2-ADA's `_full`) compares against all 9 training images, `fid6_train`
    against a fixed 6 of them; each is its own reference set in the cache."""
    stub_networks(monkeypatch)
    g = torch.Generator().manual_seed(3)
    real = torch.randint(0, 256, (9, 3, 8, 8), generator=g, dtype=torch.uint8)
    fake = torch.randint(0, 256, (6, 3, 8, 8), generator=g, dtype=torch.uint8)
    assert image_mod.parse_name("fid6_full") == image_mod.MetricName("fid6_full", "fid", 6, "train", None)
    im = ImageMetrics(["fid6_full", "fid6_train"], real, "x", tmp_path)
    res = im(lambda k: fake[:k])
    from gan_bench.metrics.fid import feature_stats, frechet_distance
    stub = StubExtractor()
    expect = frechet_distance(*feature_stats(stub(fake)["2048"]), *feature_stats(stub(real)["2048"]))
    assert res["fid6_full"] == pytest.approx(expect, rel=1e-9)
    assert res["fid6_train"] != pytest.approx(expect, rel=1e-6)  # 6 of the 9 reals
    assert len({fp for fp, _ in im.cache.log}) == 2
    assert im.fingerprints["fid6_full"] != im.fingerprints["fid6_train"]
    subset = ImageMetrics(["fid9_train"], real, "x", tmp_path)
    subset(lambda k: fake[:k])  # 9 of 9 reals again, but under another name: another cache entry
    assert subset.cache.log[0][0] not in {fp for fp, _ in im.cache.log}
    with pytest.raises(UserError, match="_full"):
        image_mod.parse_name("is50k_full")  # IS has no reference set


def test_toy_keys_are_what_mode_metrics_returns():
    from gan_bench.data.toy import ring
    from gan_bench.metrics import TOY_KEYS
    from gan_bench.metrics.modes import mode_metrics

    d = ring(n_train=10, n_test=10)
    assert tuple(mode_metrics(d.train, d.info["means"], d.info["std"])) == TOY_KEYS
