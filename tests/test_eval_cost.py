"""Cost stated before it is paid (issue 10): a measured probe of the extractor, one line at start
when an evaluation would be long, nothing when it is short."""

import logging
import time

import pytest
import torch

from conftest import make_cfg
from gan_bench.data import DataSet
from gan_bench.metrics import image as image_mod
from gan_bench.metrics.cost import eval_cost_note
from gan_bench.metrics.features import Extractor
from gan_bench.metrics.image import ImageMetrics


class Slow(Extractor):
    """An extractor that costs a known 20 ms per image (and computes pixel means)."""

    def __init__(self):
        super().__init__("tf_inception", torch.nn.Identity(), ("2048", "logits_unbiased"), {"net": "slow-stub"})

    def _forward(self, x):
        time.sleep(0.02 * len(x))
        f = x.double().mean((2, 3))
        return f, f


@pytest.fixture
def slow(monkeypatch):
    ex = Slow()
    monkeypatch.setattr(image_mod, "get_extractor", lambda *a, **k: ex)
    return ex


def metrics(names, tmp_path):
    return ImageMetrics(names, torch.zeros(4, 3, 8, 8, dtype=torch.uint8), "cost:v1", tmp_path)


def test_probe_measures_without_counting(slow):
    s = slow.seconds_per_image((3, 8, 8))
    assert 0.02 <= s < 0.2 and slow.images_seen == 0


def test_long_evaluation_gets_one_line(slow, tmp_path):
    # 10k fakes at >= 20 ms each: >= 200 s per evaluation, 4 of them, then 50k at the end.
    note = eval_cost_note(metrics(["fid10k_train"], tmp_path), metrics(["fid50k_train", "kid50k_train"], tmp_path),
                          (3, 8, 8), n_cheap=4)
    assert note is not None and "\n" not in note
    for part in ("on this cpu", "tf_inception 0.0", "s/image", "eval.metrics=[fid10k_train] ~", "per evaluation x 4",
                 "eval.final_metrics=[fid50k_train,kid50k_train] ~", "eval.metrics=[fid1k_train]",
                 "eval.metrics=[]", "train.eval_every", "train.device=cuda"):
        assert part in note, part
    minutes = float(note.split("~")[1].split(" min")[0])
    assert 3 <= minutes < 40  # 10000 x (20 ms + overhead)


def test_short_evaluation_says_nothing(slow, tmp_path):
    short = eval_cost_note(metrics(["fid100_train"], tmp_path), metrics(["fid200_train"], tmp_path), (3, 8, 8), 9)
    assert short is None
    # Only the final evaluation is long: only what shortens it is offered.
    note = eval_cost_note(metrics(["fid100_train"], tmp_path), metrics(["fid50k_train"], tmp_path), (3, 8, 8), 9)
    assert "eval.final_metrics=[fid50k_train]" in note and "eval.metrics=[]" not in note


def test_the_trainer_notes_it_at_start(slow, tmp_path, caplog):
    from gan_bench.metrics.image_eval import ImageEvaluator

    data = DataSet("tiny", "image", torch.zeros(40, 3, 8, 8, dtype=torch.uint8))
    cfg = make_cfg(tmp_path / "run", ["dataset=folder", "dataset.path=unused", "model=dcgan_small",
                                      "train.steps=5000", "train.eval_every=1000", "eval.metrics=[fid10k_train]",
                                      "eval.final_metrics=[]", f"paths.data={tmp_path}"], fast=False)
    with caplog.at_level(logging.WARNING, logger="gan_bench.metrics.cost"):
        ImageEvaluator(data, cfg)
    [rec] = [r for r in caplog.records if r.name == "gan_bench.metrics.cost"]
    assert "per evaluation x 4" in rec.getMessage() and slow.images_seen == 0
