"""The trainer on image data: DCGAN on a tiny image folder, sample grids, metric wiring."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_cfg
from gan_bench.errors import UserError
from gan_bench.train import train


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "imgs" / "nested"
    d.mkdir(parents=True)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return tmp_path / "imgs"


def image_cfg(tmp_path, image_dir, *extra):
    return make_cfg(tmp_path / "run", ["dataset=folder", f"dataset.path={image_dir}", "dataset.resolution=32",
                                       f"paths.data={tmp_path / 'data'}", "model=dcgan_small", "train.batch_size=8",
                                       "train.progress=false", "train.device=cpu", *extra], fast=False)


def test_dcgan_trains_on_a_folder_and_writes_grids(tmp_path, image_dir):
    cfg = image_cfg(tmp_path, image_dir, "train.steps=3", "train.log_every=1", "train.eval_every=3",
                    "eval.metrics=[]", "eval.final_metrics=[]", "train.ema=0.5", "penalty=r1")
    result = train(cfg)
    assert result["status"] == "completed" and result["step"] == 3
    png = tmp_path / "run" / "samples" / "step0000003.png"
    w, h = Image.open(png).size
    assert w == h == 8 * 32 + 9 * 2  # 8 x 8 grid of 32 px images with 2 px padding
    assert json.loads((tmp_path / "run" / "result.json").read_text())["metrics"] == {}


def test_image_speed_path_on_cpu_bf16_channels_last(tmp_path, image_dir):
    # The CUDA speed path's bf16 autocast and channels_last, forced on where CI can run them: the
    # DCGAN trains in bf16 with fp32 logits into the losses, and its weights stay fp32.
    cfg = image_cfg(tmp_path, image_dir, "train.steps=3", "train.log_every=1", "train.amp=true",
                    "train.channels_last=true", "eval.metrics=[]", "eval.final_metrics=[]")
    result = train(cfg)
    assert result["status"] == "completed" and result["step"] == 3
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    weights = [v for k, v in state["G"].items() if k.endswith("weight")]
    assert weights and all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in weights)
    conv = next(v for v in state["D"].values() if v.ndim == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)


def test_missing_inception_weights_fail_before_training(tmp_path, image_dir):
    cfg = image_cfg(tmp_path, image_dir, "train.steps=3", f"eval.inception_weights={tmp_path}/nope.pth")
    with pytest.raises(UserError) as e:
        train(cfg)
    assert "\n" not in str(e.value) and "nope.pth" in str(e.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


class PixelStats:
    """Stands in for Inception: 8 pixel statistics per image as "pool3" features."""

    def __init__(self):
        from gan_bench.metrics.features import Extractor

        class Stub(Extractor):
            def _forward(self, x):
                f = x.double() / 255
                feats = torch.cat([f.mean((2, 3)), f.std((2, 3)), f.amax((1, 2, 3))[:, None],
                                   f.amin((1, 2, 3))[:, None]], 1)
                return feats, feats

        self.stub = Stub("tf_inception", torch.nn.Identity(), ("2048", "logits_unbiased"), {"net": "stub"})


def test_metrics_flow_into_jsonl_and_result(tmp_path, image_dir, monkeypatch):
    import gan_bench.metrics.image as image_mod

    stub = PixelStats().stub
    monkeypatch.setattr(image_mod, "get_extractor", lambda *a, **k: stub)
    cfg = image_cfg(tmp_path, image_dir, "train.steps=4", "train.log_every=2", "train.eval_every=2",
                    "eval.metrics=[fid10_train]", "eval.final_metrics=[fid20_train,kid20_train]")
    result = train(cfg)
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [sorted(r) for r in lines] == [["fid10_train", "step"], ["fid20_train", "kid20_train", "step"]]
    assert set(result["metrics"]) == set(result["fingerprints"]) == {"fid20_train", "kid20_train"}
    assert result["fingerprints"]["fid20_train"].startswith("tfinception-pool3")
    assert result["metrics"]["fid20_train"] > 0


def test_eval_command_recomputes_final_metrics(tmp_path, image_dir, monkeypatch):
    import gan_bench.metrics.image as image_mod
    from gan_bench.cli import main

    monkeypatch.setattr(image_mod, "get_extractor", lambda *a, **k: PixelStats().stub)
    run = tmp_path / "run"
    args = ["train", "dataset=folder", f"dataset.path={image_dir}", "dataset.resolution=32",
            f"paths.data={tmp_path / 'data'}", "model=dcgan_small", "train.batch_size=8", "train.progress=false",
            "train.device=cpu", "train.steps=2", "eval.metrics=[]", "eval.final_metrics=[]", f"hydra.run.dir={run}"]
    assert main(args) == 0
    assert main(["eval", str(run), "eval.final_metrics=[fid12_train]"]) == 0
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["source"] == "eval" and last["step"] == 2 and last["fid12_train"] > 0
    assert last["fingerprints"]["fid12_train"].startswith("tfinception-pool3")


def test_holdout_split_is_kept_out_of_training_and_scored(tmp_path, image_dir, monkeypatch):
    import gan_bench.metrics.image as image_mod
    from gan_bench.data import DataSet, hold_out

    d = DataSet("x", "image", torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1), labels=torch.arange(10))
    h = hold_out(d, 0.2)
    assert h.train.flatten().tolist() == list(range(8)) and h.labels.tolist() == list(range(8))
    assert h.info["heldout"]["heldout20"].flatten().tolist() == [8, 9]
    assert hold_out(d, 0.0) is d
    with pytest.raises(UserError):
        hold_out(d, 0.01)

    stub = PixelStats().stub
    monkeypatch.setattr(image_mod, "get_extractor", lambda *a, **k: stub)
    cfg = image_cfg(tmp_path, image_dir, "train.steps=2", "eval.holdout=0.25", "eval.metrics=[]",
                    "eval.final_metrics=[fid6_heldout25]")
    result = train(cfg)
    assert set(result["metrics"]) == {"fid6_heldout25"}
    # 24 images: 18 trained on, 6 held out and scored; the metric saw only those 6 reals.
    assert stub.images_seen == 6 + 6
