"""Fingerprints follow the numbers: issue 11 changed how FID and PRDC are computed, so their
fingerprints changed (a result cached or pooled under the old ones is never mixed with new ones);
KID and IS were not touched, and neither were theirs."""

import torch

from gan_bench.metrics import image as image_mod
from gan_bench.metrics.features import Extractor
from gan_bench.metrics.image import ImageMetrics

# Computed at commit b8ff1fd (before issue 11) with exactly the setup below.
BEFORE = {"fid12_train": "tfinception-pool3-d1aa05b6759e0513",
          "fid_logits_nonstandard12_train": "tvinception-logits-nonstandard-95dab08eba771c38",
          "prdc12_train_density": "tfinception-pool3-faa2fba44d1398bf",
          "kid12_train": "tfinception-pool3-b9a9cf7534a00997",
          "is12": "tfinception-logits-a0206d13fb337d27"}


class Stub(Extractor):
    def __init__(self, name, layers):
        super().__init__(name, torch.nn.Identity(), layers, {"net": "stub-" + name})

    def _forward(self, x):
        f = x.double().flatten(1) / 255
        return f[:, :40], f[:, 40:50]


def test_fid_and_prdc_fingerprints_changed_kid_and_is_did_not(tmp_path, monkeypatch):
    stubs = {"tf_inception": Stub("tf_inception", ("2048", "logits_unbiased")),
             "tv_inception_logits_nonstandard": Stub("tv_inception_logits_nonstandard", ("logits",))}
    monkeypatch.setattr(image_mod, "get_extractor", lambda name, *a, **k: stubs[name])
    g = torch.Generator().manual_seed(1)
    real = torch.randint(0, 256, (12, 1, 8, 8), generator=g, dtype=torch.uint8)
    fake = torch.randint(0, 256, (12, 1, 8, 8), generator=g, dtype=torch.uint8)
    im = ImageMetrics(["fid12_train", "fid_logits_nonstandard12_train", "prdc12_train", "kid12_train", "is12"],
                      real, "fingerprint-pin:v1", tmp_path)
    im(lambda k: fake[:k])
    fp = im.fingerprints
    for key in ("fid12_train", "fid_logits_nonstandard12_train", "prdc12_train_density"):
        assert fp[key] != BEFORE[key] and fp[key].split("-")[:-1] == BEFORE[key].split("-")[:-1]
    assert fp["kid12_train"] == BEFORE["kid12_train"] and fp["is12"] == BEFORE["is12"]
