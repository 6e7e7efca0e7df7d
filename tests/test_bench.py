"""The benchmarks run and print one JSON line with the fields docs/benchmarks.md quotes."""

import json

import pytest

from gan_bench.bench import main


def run(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_bench_ring(capsys):
    out = run(capsys, "ring", "--steps", "20", "--repeats", "1", "model.generator.width=16",
              "model.discriminator.width=16", "eval.n_samples=200")
    assert out["bench"] == "ring" and out["ratio"] > 0 and out["plain_steps_per_s"] > 0


def test_bench_ensemble(capsys):
    out = run(capsys, "ensemble", "--k", "1", "4", "--steps", "12", "--repeats", "1",
              "model.generator.width=16", "model.discriminator.width=16", "dataset.n_train=1000")
    assert [r["K"] for r in out["runs"]] == [1, 4] and out["runs"][1]["speedup_vs_sequential"] > 0


def test_bench_dcgan(capsys):
    out = run(capsys, "dcgan", "--steps", "2", "--repeats", "1", "--images", "16", "--batch", "8",
              "model=dcgan_small", "eval.metrics=[]", "eval.final_metrics=[]")
    assert out["bench"] == "dcgan" and out["trainer_images_per_s"] > 0


@pytest.mark.slow
def test_bench_features(capsys):
    out = run(capsys, "features", "--images", "8", "--batch", "4")
    assert out["features_per_s"] > 0
