"""Weights that fetch themselves (issue 10): a missing hub-cache file is downloaded, SHA-256
checked and written atomically; a wrong file leaves nothing behind; an unreachable source stops the
run before training with one line. Files are served from 127.0.0.1 (tests never use the internet)."""

import dataclasses
import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest
from PIL import Image

from conftest import make_cfg
from gan_bench.errors import UserError
from gan_bench.metrics import features
from gan_bench.metrics.weights import TF_INCEPTION, WeightsFile, hub_checkpoint_dir, resolve_weights

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB: more than one read block
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving <tmp>/www; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "weights.pth").write_bytes(PAYLOAD)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(www), **k)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache
    return tmp_path / "torch" / "hub" / "checkpoints"


def closed_port_url() -> str:
    with socket.socket() as s:  # bound and closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/weights.pth"


def spec(*urls, prefix=SHA[:8]) -> WeightsFile:
    return WeightsFile("test weights", f"test-weights-{prefix}.pth", tuple(urls), prefix, "eval.inception_weights")


def test_right_hash_is_downloaded_into_the_hub_cache(server, hub):
    s = spec(f"{server}/weights.pth")
    p = resolve_weights(s, download=True)
    assert p == hub_checkpoint_dir() / s.filename and p.parent == hub
    assert p.read_bytes() == PAYLOAD
    assert sorted(f.name for f in hub.iterdir()) == [s.filename]  # no temporary file left
    # Present now: found, never fetched again (an unreachable source does not matter).
    assert resolve_weights(dataclasses.replace(s, urls=(closed_port_url(),)), download=True) == p


def test_wrong_hash_is_refused_and_leaves_nothing(server, hub):
    with pytest.raises(UserError) as e:
        resolve_weights(spec(f"{server}/weights.pth", prefix="deadbeef"), download=True)
    assert "does not begin with deadbeef" in str(e.value) and "\n" not in str(e.value)
    assert list(hub.iterdir()) == []


def test_a_failing_source_falls_back_to_the_next(server, hub):
    p = resolve_weights(spec(f"{server}/missing.pth", f"{server}/weights.pth"), download=True)
    assert p.read_bytes() == PAYLOAD


def test_server_down_gives_one_line(hub):
    url = closed_port_url()
    with pytest.raises(UserError) as e:
        resolve_weights(spec(url), download=True)
    msg = str(e.value)
    assert "\n" not in msg
    for part in (spec(url).filename, url, str(hub), "eval.inception_weights=PATH",
                 "eval.metrics=[] eval.final_metrics=[]"):
        assert part in msg
    assert list(hub.iterdir()) == []


def test_download_off_stops_with_one_line(hub):
    with pytest.raises(UserError) as e:
        resolve_weights(TF_INCEPTION, download=False)
    msg = str(e.value)
    assert "\n" not in msg and TF_INCEPTION.filename in msg and TF_INCEPTION.url in msg and str(hub) in msg
    assert "eval.download=true" in msg and "eval.metrics=[] eval.final_metrics=[]" in msg


def test_upstream_sources_are_the_maintained_libraries():
    # The same URLs the libraries themselves fetch: torch-fidelity's constant, torchvision's weights enum.
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
    from torchvision.models import Inception_V3_Weights

    assert features.WEIGHTS["tf_inception"].url == URL_INCEPTION_V3
    tv = features.WEIGHTS["tv_inception_logits_nonstandard"]
    assert tv.url == Inception_V3_Weights.IMAGENET1K_V1.url and tv.url.endswith(f"-{tv.sha256_prefix}.pth")
    for s in features.WEIGHTS.values():  # DINOv2's URL carries no hash (its pin: tests/test_fd_dinov2.py)
        assert s is features.WEIGHTS["dinov2_vitl14"] or all(u.endswith(f"-{s.sha256_prefix}.pth") for u in s.urls)


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(16):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return d


@pytest.mark.parametrize("download", [True, False])
def test_run_stops_before_training_when_weights_cannot_be_had(tmp_path, image_dir, hub, monkeypatch, download):
    from gan_bench.train import train

    url = closed_port_url()
    monkeypatch.setitem(features.WEIGHTS, "tf_inception", dataclasses.replace(TF_INCEPTION, urls=(url,)))
    cfg = make_cfg(tmp_path / "run", ["dataset=folder", f"dataset.path={image_dir}", "dataset.resolution=32",
                                      f"paths.data={tmp_path / 'data'}", "model=dcgan_small", "train.steps=2",
                                      "train.batch_size=8", "train.progress=false", "train.device=cpu",
                                      f"eval.download={str(download).lower()}"], fast=False)
    with pytest.raises(UserError) as e:
        train(cfg)
    msg = str(e.value)
    assert "\n" not in msg and TF_INCEPTION.filename in msg and "eval.metrics=[] eval.final_metrics=[]" in msg
    assert ("could not download" in msg and url in msg) if download else "eval.download=true" in msg
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert not hub.exists() or list(hub.iterdir()) == []
