"""FD-DINOv2 and PRDC in DINOv2 space (issue 22): the official checkpoint's layout loads strictly
into timm's ViT-L/14, the features equal a forward written out here from the official code, the
preprocessing equals PIL's bicubic resize (EDM2's reference), the metrics through ImageMetrics
equal the statistics of features computed directly, names parse, fingerprints name the weights,
and the weights file downloads (from 127.0.0.1), is checked, and fails offline with one line.
The full architecture runs on one image; everything else uses a tiny ViT of the same kind."""

import dataclasses
import hashlib
import json
import math
import socket

import numpy as np
import pytest
import test_weights_download
import torch
import torch.nn.functional as F
from PIL import Image

from gan_bench.errors import UserError
from gan_bench.metrics import dinov2, features, image as image_mod
from gan_bench.metrics.fid import feature_stats, frechet_distance
from gan_bench.metrics.image import ImageMetrics, parse_name
from gan_bench.metrics.prdc import prdc
from gan_bench.metrics.weights import DINOV2_VITL14, resolve_weights

pytestmark = pytest.mark.usefixtures("one_thread")
# An empty torch hub cache, and an HTTP server on 127.0.0.1 serving <tmp>/www (its base URL).
hub, server = test_weights_download.hub, test_weights_download.server

TINY = {"patch_size": 14, "embed_dim": 32, "depth": 2, "num_heads": 2, "init_values": 1e-5}


def official_layout(embed_dim, depth, mlp, seed=0, scale=0.02) -> dict:
    """A random state dict with the names and shapes of facebookresearch/dinov2's
    dinov2_vit*14_pretrain.pth (vision_transformer.py, layers/block.py: Block with norm1, attn.qkv,
    attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma; mask_token; 518 px = 37 x 37 + CLS),
    written from that source, not from timm."""
    g = torch.Generator().manual_seed(seed)
    d = embed_dim
    shapes = {"cls_token": (1, 1, d), "pos_embed": (1, 37 * 37 + 1, d), "mask_token": (1, d),
              "patch_embed.proj.weight": (d, 3, 14, 14), "patch_embed.proj.bias": (d,)}
    for i in range(depth):
        b = f"blocks.{i}."
        shapes |= {b + "norm1.weight": (d,), b + "norm1.bias": (d,), b + "attn.qkv.weight": (3 * d, d),
                   b + "attn.qkv.bias": (3 * d,), b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,),
                   b + "ls1.gamma": (d,), b + "norm2.weight": (d,), b + "norm2.bias": (d,),
                   b + "mlp.fc1.weight": (mlp, d), b + "mlp.fc1.bias": (mlp,), b + "mlp.fc2.weight": (d, mlp),
                   b + "mlp.fc2.bias": (d,), b + "ls2.gamma": (d,)}
    shapes |= {"norm.weight": (d,), "norm.bias": (d,)}
    # Every tensor a view of one random pool at a random offset: ViT-L's 300M parameters cost no
    # time or memory to make (randn of each would take seconds).
    pool = torch.randn(max(math.prod(s) for s in shapes.values()) + 10**5, generator=g) * scale
    offsets = torch.randint(0, 10**5, (len(shapes),), generator=g).tolist()
    sd = {k: pool[o:o + math.prod(s)].view(s) for (k, s), o in zip(shapes.items(), offsets)}
    for k in sd:  # LayerNorm weights near 1, LayerScale gammas near 0.5: a well-conditioned random net
        if k.endswith(("norm1.weight", "norm2.weight", "norm.weight")):
            sd[k] = sd[k] + 1
        if k.endswith("gamma"):
            sd[k] = sd[k] + 0.5
    return sd


def reference_forward(sd: dict, x: torch.Tensor, heads: int) -> torch.Tensor:
    """DinoVisionTransformer.forward (the official code), written out: patch conv, CLS, position
    embedding (official interpolation), pre-norm blocks with LayerScale, final norm, CLS token."""
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    ln = lambda t, p: F.layer_norm(t, t.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], eps=1e-6)  # noqa: E731
    lin = lambda t, p: t @ sd[p + ".weight"].T + sd[p + ".bias"]  # noqa: E731
    t = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=14).flatten(2).transpose(1, 2)
    t = torch.cat((sd["cls_token"].expand(len(t), -1, -1), t), 1)
    t = t + dinov2.pos_embed_at(sd["pos_embed"], x.shape[-1] // 14)
    B, N, D = t.shape
    for i in range(depth):
        b = f"blocks.{i}."
        q, k, v = lin(ln(t, b + "norm1"), b + "attn.qkv").reshape(B, N, 3, heads, D // heads).permute(2, 0, 3, 1, 4)
        a = ((q * (D // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(-1) @ v
        t = t + sd[b + "ls1.gamma"] * lin(a.transpose(1, 2).reshape(B, N, D), b + "attn.proj")
        h = lin(F.gelu(lin(ln(t, b + "norm2"), b + "mlp.fc1")), b + "mlp.fc2")
        t = t + sd[b + "ls2.gamma"] * h
    return ln(t, "norm")[:, 0]


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(dinov2, "ARCH", TINY)
    return official_layout(32, 2, 128, scale=0.2)


def save(sd, path):
    torch.save({k: v.clone() for k, v in sd.items()}, path)  # not the shared pool
    return path


# -- names ----------------------------------------------------------------------------------------

def test_names_parse():
    M = image_mod.MetricName
    assert parse_name("fd_dinov2_50k_train") == M("fd_dinov2_50k_train", "fd_dinov2", 50000, "train", 50000)
    assert parse_name("fd_dinov2_50k_full") == M("fd_dinov2_50k_full", "fd_dinov2", 50000, "train", None)
    assert parse_name("prdc_dinov2_10k_test") == M("prdc_dinov2_10k_test", "prdc_dinov2", 10000, "test", 10000)
    # Existing names parse as before.
    assert parse_name("fid50k_train") == M("fid50k_train", "fid", 50000, "train", 50000)
    assert parse_name("prdc10k_train").kind == "prdc" and parse_name("fd_mnist10k_test").kind == "fd_mnist"
    assert parse_name("fid_logits_nonstandard10k_heldout20").kind == "fid_logits_nonstandard"
    # One spelling per metric: `_` before the count exactly when the kind ends in a digit.
    for bad in ("fd_dinov250k_train", "fid_50k_train", "fd_dinov2_50k", "fd_dinov2__50k_train"):
        with pytest.raises(UserError, match="unknown image metric"):
            parse_name(bad)
    with pytest.raises(UserError, match="prdc_dinov2_10k_train"):
        parse_name("prdc_dinov2_5_train")  # k = 5 neighbours: the hint spells the name right


# -- preprocessing and network -----------------------------------------------------------------

@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28), (3, 300, 257)])
def test_preprocessing_is_bicubic_antialias_224_and_imagenet_normalization(shape):
    """EDM2's reference (resize_mode='pil', dgm-eval's) is PIL's bicubic resize; PIL on float
    images ('F') is an independent implementation of the same antialiased filter."""
    g = torch.Generator().manual_seed(sum(shape))
    u8 = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    ours = dinov2.preprocess(features.as_rgb(u8[None]))[0].double()
    rgb = u8.expand(3, -1, -1).numpy().astype(np.float32)
    pil = np.stack([np.asarray(Image.fromarray(c, mode="F").resize((224, 224), Image.Resampling.BICUBIC)) for c in rgb])
    mean, std = np.array([0.485, 0.456, 0.406])[:, None, None], np.array([0.229, 0.224, 0.225])[:, None, None]
    expect = (pil / 255 - mean) / std
    np.testing.assert_allclose(ours.numpy(), expect, rtol=0, atol=0.01 / 255 / 0.224)  # 0.01 of a grey level
    if shape[1] > 224:  # downsampling without antialias is another image altogether
        plain = F.interpolate(u8[None].float(), size=(224, 224), mode="bicubic")[0].numpy()
        assert np.abs(plain - pil).max() > 10


def keys_cubic(t, a=-0.75):
    t = abs(t)
    if t <= 1:
        return (a + 2) * t**3 - (a + 3) * t**2 + 1
    return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a if t < 2 else 0


def test_position_embedding_is_interpolated_as_the_official_model_does():
    """interpolate_pos_encoding: bicubic (a = -0.75), scale (grid + 0.1) / M, no antialias, border
    replicated; written out here for a 5 x 5 grid resized to 3 x 3 (timm's own resample differs)."""
    m, grid, d = 5, 3, 2
    pos = torch.randn(1, m * m + 1, d, generator=torch.Generator().manual_seed(0))
    got = dinov2.pos_embed_at(pos, grid)
    s = (grid + 0.1) / m
    src = pos[0, 1:].reshape(m, m, d).double().numpy()
    expect = np.zeros((grid, grid, d))
    for i in range(grid):
        for j in range(grid):
            yi, xj = (i + 0.5) / s - 0.5, (j + 0.5) / s - 0.5
            for p in range(int(np.floor(yi)) - 1, int(np.floor(yi)) + 3):
                for q in range(int(np.floor(xj)) - 1, int(np.floor(xj)) + 3):
                    w = keys_cubic(yi - p) * keys_cubic(xj - q)
                    expect[i, j] += w * src[min(max(p, 0), m - 1), min(max(q, 0), m - 1)]
    torch.testing.assert_close(got[0, 0], pos[0, 0])
    np.testing.assert_allclose(got[0, 1:].reshape(grid, grid, d).numpy(), expect, atol=1e-5)
    from timm.layers import resample_abs_pos_embed
    assert not torch.allclose(resample_abs_pos_embed(pos, [grid, grid], num_prefix_tokens=1), got, atol=1e-3)


def test_full_vitl14_loads_the_official_layout_strictly_and_computes_the_official_forward():
    sd = official_layout(1024, 24, 4096, scale=0.02)
    net = dinov2.build(sd)  # strict=True at 518 px, then at 224 px
    assert net.pos_embed.shape == (1, 16 * 16 + 1, 1024) and net.patch_embed.img_size == (224, 224)
    x = dinov2.preprocess(torch.randint(0, 256, (1, 3, 64, 64), generator=torch.Generator().manual_seed(1),
                                        dtype=torch.uint8))
    with torch.inference_mode():
        got = net(x)
        expect = reference_forward(sd, x, heads=16)
    assert got.shape == (1, 1024)
    torch.testing.assert_close(got, expect, rtol=1e-4, atol=1e-4)
    for broken in ({k: v for k, v in sd.items() if not k.startswith("blocks.23.")},   # ViT-L has 24 blocks
                   {**sd, "pos_embed": sd["pos_embed"][:, :257]},                       # 224 px layout
                   {**sd, "blocks.0.attn.q_bias": sd["blocks.0.attn.qkv.bias"][:1024]}):  # unexpected key
        with pytest.raises(RuntimeError):
            dinov2.check_state_dict(broken)


# -- through ImageMetrics ----------------------------------------------------------------------

def test_fd_and_prdc_dinov2_through_image_metrics(tiny, tmp_path):
    weights = save(tiny, tmp_path / "dinov2-random.pth")
    g = torch.Generator().manual_seed(2)
    real = torch.randint(0, 256, (9, 1, 16, 16), generator=g, dtype=torch.uint8)  # grayscale: repeated to RGB
    fake = torch.randint(0, 256, (7, 1, 16, 16), generator=g, dtype=torch.uint8)
    names = ["fd_dinov2_7_train", "prdc_dinov2_7_train"]
    im = ImageMetrics(names, real, "toy:v1", tmp_path / "cache", dinov2_weights_path=weights, batch_size=4)
    drawn = []
    res = im(lambda k: drawn.append(k) or fake[sum(drawn) - k:sum(drawn)])  # batches of 4, then 3
    assert set(res) == {"fd_dinov2_7_train"} | {f"prdc_dinov2_7_train_{k}"
                                                for k in ("precision", "recall", "density", "coverage")}
    assert len(im.cache.log) == 1  # one reference for both

    # The features computed directly: the official forward written out, on the same 224 px input.
    idx = torch.randperm(9, generator=torch.Generator().manual_seed(0))[:7].sort().values
    with torch.inference_mode():
        f_real = reference_forward(tiny, dinov2.preprocess(real[idx].expand(-1, 3, -1, -1)), heads=2)
        f_fake = reference_forward(tiny, dinov2.preprocess(fake.expand(-1, 3, -1, -1)), heads=2)
    expect = frechet_distance(*feature_stats(f_fake), *feature_stats(f_real))
    assert res["fd_dinov2_7_train"] == pytest.approx(expect, rel=1e-4) and expect > 0
    p = prdc(f_fake, f_real, k=5)
    assert all(res[f"prdc_dinov2_7_train_{k}"] == pytest.approx(v) for k, v in p.items())

    # Fingerprints name the network and the weights (file name and SHA-256).
    fp = im.fingerprints["fd_dinov2_7_train"]
    assert fp.startswith("dinov2-vitl14-cls-") and im.fingerprints["prdc_dinov2_7_train_recall"].startswith("dinov2-")
    ref = json.loads(next((tmp_path / "cache").glob("*.json")).read_text())
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert ref["extractor"]["weights_sha256"] == sha and ref["extractor"]["weights"] == weights.name
    assert "vit_large_patch14_dinov2" in ref["extractor"]["net"]
    assert "bicubic-antialias-224" in ref["extractor"]["resize"]
    other = save(official_layout(32, 2, 128, seed=1, scale=0.2), tmp_path / "dinov2-other.pth")
    im2 = ImageMetrics(names[:1], real, "toy:v1", tmp_path / "cache", dinov2_weights_path=other)
    im2(lambda k: fake[:k])
    assert im2.fingerprints["fd_dinov2_7_train"] != fp and im2.cache.log[0][1] == "miss"


def test_not_dinov2_weights_is_one_line_user_error(tiny, tmp_path):
    # under another name: the user's own file, so the strict load (not the pinned hash) is what refuses it
    bad = save({k: v for k, v in tiny.items() if k != "norm.bias"}, tmp_path / "my_dinov2.pth")
    with pytest.raises(UserError) as e:
        ImageMetrics(["fd_dinov2_10k_train"], torch.zeros(1), "x", tmp_path, dinov2_weights_path=bad)
    assert "\n" not in str(e.value) and "cannot load" in str(e.value) and DINOV2_VITL14.url in str(e.value)


# -- the weights file ------------------------------------------------------------------------------

def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/dinov2_vitl14_pretrain.pth"


def test_source_is_the_official_checkpoint_timm_and_torch_hub_name():
    import timm

    cfg = timm.models.get_pretrained_cfg("vit_large_patch14_dinov2.lvd142m")
    assert DINOV2_VITL14.url == cfg.url  # = facebookresearch/dinov2's hub URL
    assert DINOV2_VITL14.filename == DINOV2_VITL14.url.rsplit("/", 1)[1]  # torch hub's cache name
    # pinned from refiners' expected_sha256 and the Hugging Face LFS pointers of re-uploads (docs/metrics.md)
    assert DINOV2_VITL14.sha256_prefix == "d5383ea8" and DINOV2_VITL14.size == 1_217_586_395
    assert features.WEIGHTS["dinov2_vitl14"] is DINOV2_VITL14


def test_download_into_the_hub_cache_then_used(tiny, server, hub, monkeypatch, tmp_path):
    www, base = tmp_path / "www", server
    save(tiny, www / "dinov2.pth")
    # the tiny stand-in's own hash and size in place of the real file's
    spec = dataclasses.replace(DINOV2_VITL14, urls=(f"{base}/dinov2.pth",), size=None,
                               sha256_prefix=hashlib.sha256((www / "dinov2.pth").read_bytes()).hexdigest()[:8])
    monkeypatch.setitem(features.WEIGHTS, "dinov2_vitl14", spec)
    monkeypatch.setattr(features, "DINOV2_VITL14", spec)
    im = ImageMetrics(["fd_dinov2_2_train"], torch.zeros(2, 3, 8, 8, dtype=torch.uint8), "x", hub.parent / "m",
                      download=True)
    assert sorted(p.name for p in hub.iterdir()) == ["dinov2_vitl14_pretrain.pth"]  # no temporary file left
    assert (hub / "dinov2_vitl14_pretrain.pth").read_bytes() == (www / "dinov2.pth").read_bytes()
    assert im(lambda k: torch.full((k, 3, 8, 8), 7, dtype=torch.uint8))["fd_dinov2_2_train"] >= 0


@pytest.mark.parametrize("wrong", ["bytes", "other_network", "hash"])
def test_wrong_file_is_refused_and_leaves_nothing(tiny, server, hub, wrong, tmp_path):
    www, base = tmp_path / "www", server
    if wrong == "bytes":
        (www / "w.pth").write_bytes(b"<html>not found</html>")
    else:
        save(official_layout(48, 2, 128) if wrong == "other_network" else tiny, www / "w.pth")
    spec = dataclasses.replace(DINOV2_VITL14, urls=(f"{base}/w.pth",), sha256_prefix=None, size=None)
    if wrong == "hash":  # the right network, but a pinned SHA-256 it does not have
        spec = dataclasses.replace(spec, sha256_prefix="deadbeef")
    with pytest.raises(UserError) as e:
        resolve_weights(spec, download=True)
    msg = str(e.value)
    assert "\n" not in msg and "could not download" in msg
    assert ("does not begin with deadbeef" if wrong == "hash" else "not DINOv2 ViT-L/14 weights") in msg
    assert list(hub.iterdir()) == []
    if wrong == "hash":  # and with its true prefix the same file passes both checks
        sha = hashlib.sha256((www / "w.pth").read_bytes()).hexdigest()
        assert resolve_weights(dataclasses.replace(spec, sha256_prefix=sha[:8]), download=True).is_file()


@pytest.mark.parametrize("download", [False, True])
def test_missing_weights_offline_is_one_line(hub, tmp_path, monkeypatch, download):
    url = closed_port_url()
    spec = dataclasses.replace(DINOV2_VITL14, urls=(url,))
    monkeypatch.setitem(features.WEIGHTS, "dinov2_vitl14", spec)
    with pytest.raises(UserError) as e:
        ImageMetrics(["fd_dinov2_50k_train"], torch.zeros(1), "x", tmp_path, download=download)
    msg = str(e.value)
    assert "\n" not in msg and "dinov2_vitl14_pretrain.pth" in msg and url in msg and str(hub) in msg
    assert "eval.dinov2_weights=PATH" in msg and "eval.metrics=[] eval.final_metrics=[]" in msg
    assert "SHA-256 begins d5383ea8" in msg
    assert ("could not download" in msg) if download else ("eval.download=true" in msg)
    assert not hub.exists() or list(hub.iterdir()) == []


def test_a_file_under_the_official_name_must_be_the_pinned_one(hub, server, tmp_path):
    """The real spec (SHA-256 prefix and size pinned): a file of another size under the official
    name is refused before hashing, one of the right size but other bytes by its hash; a download of
    the wrong size is refused and leaves nothing."""
    from gan_bench.metrics.features import check_weights

    hub.mkdir(parents=True, exist_ok=True)
    wrong = hub / DINOV2_VITL14.filename
    wrong.write_bytes(b"x" * 100)
    with pytest.raises(UserError) as e:
        check_weights(DINOV2_VITL14, wrong)
    assert "\n" not in str(e.value) and "has 100 bytes, expected 1217586395" in str(e.value)
    same_size = dataclasses.replace(DINOV2_VITL14, size=100)
    with pytest.raises(UserError, match="expected it to begin with d5383ea8"):
        check_weights(same_size, wrong)
    wrong.unlink()
    (tmp_path / "www" / "w.pth").write_bytes(b"y" * 50)
    sha = hashlib.sha256(b"y" * 50).hexdigest()[:8]  # the right hash prefix, the wrong size
    spec = dataclasses.replace(DINOV2_VITL14, sha256_prefix=sha, validate=None, urls=(f"{server}/w.pth",))
    with pytest.raises(UserError) as e:
        resolve_weights(spec, download=True)
    assert "\n" not in str(e.value) and "50 bytes, expected 1217586395" in str(e.value)
    assert list(hub.iterdir()) == []
