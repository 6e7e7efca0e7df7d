"""FID math against an independent scipy computation, and the TF-Inception pipeline end to end
(real torch-fidelity architecture, random weights written by the test) with its on-disk cache."""

import re

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_bench.errors import UserError
from gan_bench.metrics.features import TF_INCEPTION, get_extractor
from gan_bench.metrics.fid import feature_stats, frechet_distance
from gan_bench.metrics.image import ImageMetrics, parse_name

# The random-weights file is deliberately not named like the standard one: the loader accepts it
# with a "not comparable" warning, which these tests expect.
pytestmark = [pytest.mark.filterwarnings("ignore:.*not the standard.*:UserWarning"),
              pytest.mark.usefixtures("one_thread")]


def scipy_fid(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def random_stats(rng, d, n):
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    return x.mean(0) + rng.normal(size=d), np.cov(x, rowvar=False)


@pytest.mark.parametrize("seed", range(5))
def test_frechet_distance_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    d = 24
    mu1, s1 = random_stats(rng, d, 200)
    mu2, s2 = random_stats(rng, d, 300)
    ours, ref = frechet_distance(mu1, s1, mu2, s2), scipy_fid(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-6)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(ours, rel=1e-9)  # symmetric


def test_frechet_distance_identical_is_zero():
    mu, s = random_stats(np.random.default_rng(1), 32, 100)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-9 * np.trace(s)


def test_frechet_distance_singular_covariances():
    # Diagonal covariances with zero variances (rank-deficient, as with fewer samples than
    # dimensions): FID = |mu1-mu2|^2 + sum (sqrt(a) - sqrt(b))^2 exactly.
    a = np.array([0.0, 1.0, 4.0, 0.0, 9.0])
    b = np.array([0.0, 0.0, 1.0, 2.0, 9.0])
    mu1, mu2 = np.arange(5.0), np.arange(5.0)[::-1]
    expect = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expect, rel=1e-12)
    # A low-rank sample covariance (5 samples in 40-d) stays finite and real.
    x = np.random.default_rng(2).normal(size=(5, 40))
    mu, s = feature_stats(x)
    v = frechet_distance(mu, s, mu + 1, s)
    assert np.isfinite(v) and v == pytest.approx(40.0, rel=1e-9)


def test_feature_stats_is_float64_np_cov():
    x = np.random.default_rng(3).normal(size=(50, 7)).astype(np.float32)
    mu, s = feature_stats(torch.from_numpy(x))
    assert mu.dtype == s.dtype == np.float64
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(s, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-10)


def test_metric_names():
    assert parse_name("fid50k_train").count == 50000
    assert parse_name("fid_logits_nonstandard10k_heldout20").kind == "fid_logits_nonstandard"
    assert parse_name("is50k").split is None
    for bad in ("fid50k", "is50k_train", "fidx_train", "fid1_train"):
        with pytest.raises(UserError):
            parse_name(bad)


# -- the real architecture with random weights -------------------------------------------------



@pytest.fixture(scope="module")
def tf_weights(tmp_path_factory):
    """torch-fidelity's FeatureExtractorInceptionV3 with random init, saved as a state dict in
    the format its loader reads. BatchNorm scales of 2.5 keep random features O(1) (default init
    shrinks them to ~1e-8 over the depth of the net)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class RandomInit(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            return None  # keep the random init the constructor just made

    d = tmp_path_factory.mktemp("weights")
    torch.save({}, d / "empty.pth")
    torch.manual_seed(0)
    net = RandomInit("x", ["2048"], feature_extractor_weights_path=str(d / "empty.pth"))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.fill_(2.5)
    torch.save(net.state_dict(), d / "random-inception.pth")
    return d / "random-inception.pth"


def images(n, seed, size=32):
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed),
                         dtype=torch.uint8)


def sampler(x):
    pos = [0]

    def sample(k):
        out = x[pos[0]:pos[0] + k]
        pos[0] += k
        return out
    return sample


def test_tf_inception_pipeline_and_cache(tf_weights, tmp_path):
    cache = tmp_path / "cache"
    real = images(4, seed=1)
    fake = images(4, seed=2)
    ex = get_extractor("tf_inception", tf_weights)
    seen = ex.images_seen

    # Fakes identical to the reals: FID ~ 0 relative to the feature scale.
    im = ImageMetrics(["fid4_train", "kid4_train"], real, "unit-test:v1", cache, weights_path=tf_weights,
                      batch_size=3)
    same = im(sampler(real))
    assert ex.images_seen - seen == 8 and [h for _, h in im.cache.log] == ["miss"]  # one entry for both
    ref_feats = np.load(next(cache.glob("*.feats.npy")))
    assert ref_feats.shape == (4, 2048) and np.isfinite(ref_feats).all() and ref_feats.std() > 1e-3
    assert abs(same["fid4_train"]) < 1e-6 * np.trace(np.cov(ref_feats, rowvar=False))
    assert set(im.fingerprints) == {"fid4_train", "kid4_train"}
    assert im.fingerprints["fid4_train"].startswith("tfinception-pool3-")
    assert not list(cache.glob("*.tmp"))  # atomic writes leave nothing behind

    # Same fingerprint: reals come from the cache, only the 4 fakes go through the network.
    seen = ex.images_seen
    im2 = ImageMetrics(["fid4_train", "kid4_train"], lambda: pytest.fail("reals loaded on a cache hit"),
                       "unit-test:v1", cache, weights_path=tf_weights)
    other = im2(sampler(fake))
    assert ex.images_seen - seen == 4
    assert [h for _, h in im2.cache.log] == ["hit"]
    assert other["fid4_train"] > 1e-3 and np.isfinite(other["kid4_train"])
    assert im2.fingerprints["fid4_train"] == im.fingerprints["fid4_train"]

    # The value is the Frechet distance of the two feature sets, checked with scipy in the span of
    # the centred features: with 4 samples each, both covariances live in that 6-d subspace, where
    # traces and tr sqrt(S1 S2) are those of the 2048-d matrices (and sqrtm is cheap).
    fake_feats = ex(fake)["2048"].double().numpy()
    rc, fc = ref_feats - ref_feats.mean(0), fake_feats - fake_feats.mean(0)
    q = scipy.linalg.orth(np.concatenate([rc, fc]).T)
    zero = np.zeros(q.shape[1])
    expect = (np.sum((ref_feats.mean(0) - fake_feats.mean(0)) ** 2)
              + scipy_fid(zero, np.cov(rc @ q, rowvar=False), zero, np.cov(fc @ q, rowvar=False)))
    assert other["fid4_train"] == pytest.approx(expect, rel=1e-6)

    # A different count or resolution is a different fingerprint: a miss. (KID only from here:
    # a FID against a new reference costs an eigendecomposition of a 2048 x 2048 matrix.)
    seen = ex.images_seen
    im3 = ImageMetrics(["kid2_train"], real, "unit-test:v1", cache, weights_path=tf_weights)
    im3(sampler(fake))
    assert [h for _, h in im3.cache.log] == ["miss"] and ex.images_seen - seen == 4
    im4 = ImageMetrics(["kid2_train"], images(2, 1, size=16), "unit-test:v1", cache, weights_path=tf_weights)
    im4(sampler(images(2, 2, size=16)))
    assert [h for _, h in im4.cache.log] == ["miss"]
    assert len({im.cache.log[0][0], im3.cache.log[0][0], im4.cache.log[0][0]}) == 3
    assert len({im.fingerprints["kid4_train"], im3.fingerprints["kid2_train"], im4.fingerprints["kid2_train"]}) == 3
    assert len(list(cache.glob("*.npz"))) == 3 and len(list(cache.glob("*.json"))) == 3


def test_grayscale_and_uint8_contract(tf_weights, tmp_path):
    ex = get_extractor("tf_inception", tf_weights)
    g = images(1, seed=5)[:, :1]
    np.testing.assert_allclose(ex(g)["2048"], ex(g.expand(-1, 3, -1, -1))["2048"], rtol=1e-6)
    with pytest.raises(TypeError, match="uint8"):
        ex(torch.rand(2, 3, 32, 32))


def test_missing_tf_weights_is_one_line_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache
    with pytest.raises(UserError) as e:
        ImageMetrics(["fid50k_train"], images(2, 0), "x", tmp_path / "cache")
    msg = str(e.value)
    assert "\n" not in msg and TF_INCEPTION.filename in msg and "6726825d" in msg
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in msg
    with pytest.raises(UserError, match=re.escape("nope.pth")):
        ImageMetrics(["fid50k_train"], images(2, 0), "x", tmp_path / "cache", weights_path=tmp_path / "nope.pth")


def test_standard_name_with_wrong_content_is_rejected(tmp_path):
    bad = tmp_path / TF_INCEPTION.filename
    bad.write_bytes(b"not the weights")
    with pytest.raises(UserError, match="SHA-256"):
        ImageMetrics(["fid50k_train"], images(2, 0), "x", tmp_path / "cache", weights_path=bad)
