"""The benchmarks run and print one JSON line with the fields docs/benchmarks.md quotes."""

import json

import pytest
import torch

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


NARROW = ["model.generator.ngf=4", "model.discriminator.ndf=4"]


@pytest.mark.parametrize("loop", ["trainer", "module"])
@pytest.mark.parametrize("model,extra", [("isit23_smnist", []), ("dcgan", ["--resolution", "32", *NARROW]),
                                         ("dcgan", ["--resolution", "64", *NARROW])],
                         ids=["isit23_smnist", "dcgan32", "dcgan64"])
def test_bench_conv_ensemble(capsys, model, extra, loop):
    out = run(capsys, "ensemble", "--model", model, "--k", "1", "2", "--steps", "4", "--repeats", "1",
              "--batch", "4", "--images", "16", "--loop", loop, *extra)
    assert out["model"] == model and out["loop"] == {"trainer": "trainer", "module": "module step"}[loop]
    assert out["largest_k_that_fits"] > 2 and out["amp"] is out["compile"] is False  # the CPU
    assert [(r["impl"], r["K"]) for r in out["runs"]] == [("single", 1), ("grouped", 2), ("vmap", 2)]
    assert out["runs"][0]["speedup_vs_sequential"] == 1.0
    assert all(r["model_steps_per_s"] > 0 and r["speedup_vs_sequential"] > 0 for r in out["runs"])


def test_bench_conv_ensemble_skips_what_does_not_fit(capsys, monkeypatch):
    monkeypatch.setattr("gan_bench.memory.available_bytes", lambda device: 4 * 2 ** 20)  # 4 MiB free
    out = run(capsys, "ensemble", "--model", "isit23_smnist", "--k", "1", "100", "--steps", "2", "--repeats", "1",
              "--batch", "4", "--impl", "grouped", "--images", "8")
    assert 1 <= out["largest_k_that_fits"] < 100
    assert out["runs"][0]["model_steps_per_s"] > 0 and out["runs"][1]["K"] == 100 and "skipped" in out["runs"][1]


def test_bench_memory(capsys, monkeypatch):
    from gan_bench.memory import replica_bytes
    from gan_bench.models.dcgan import Discriminator, Generator

    monkeypatch.setattr("gan_bench.memory.available_bytes", lambda device: 2 ** 30)
    out = run(capsys, "memory", "model=isit23_smnist", "dataset=stacked_mnist", "train.batch_size=64")
    need = replica_bytes(lambda: Generator(100, 28, 3, 8, layout="isit23_smnist"),
                         lambda: Discriminator(28, 3, 8, layout="isit23_smnist"), 100, 64,
                         ema=True, n_train=100_000)  # train.ema's default (0.999) keeps an EMA copy of G
    assert out["layout"] == "isit23_smnist" and out["batch"] == 64 and out["free_gib"] == 1.0
    assert out["total_mib"] == round(need["total"] / 2 ** 20, 2) and out["data_mib"] == 0.76  # the data order
    assert out["largest_k_that_fits"] == int(0.9 * 2 ** 30 // need["total"])
    # The ISIT'23 protocol's pool of 100,000 latents of 100 floats (and their order): 40 MiB a replica.
    pooled = run(capsys, "memory", "experiment=isit23_stacked_mnist")
    assert pooled["data_mib"] == round((100_000 * 8 + 100_000 * (100 * 4 + 8)) / 2 ** 20, 2) == 39.67


@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("rmsprop", torch.optim.RMSprop),
                                       ("adam", torch.optim.Adam)])
def test_plain_loop_uses_the_configured_optimizer(tmp_path, monkeypatch, name, cls):
    from gan_bench.bench import compose, plain_loop

    made = []
    original = cls.__init__

    def record(self, params, **kwargs):
        made.append(kwargs)
        original(self, params, **kwargs)

    monkeypatch.setattr(cls, "__init__", record)
    cfg = compose([f"optim={name}", "model.generator.width=8", "model.discriminator.width=8",
                   f"paths.run_dir={tmp_path}"])
    plain_loop(cfg, torch.randn(64, 2), steps=2)
    assert len(made) == 2 and all(k["lr"] == cfg.optim.lr_d for k in made)
    assert not any("fused" in k or "foreach" in k for k in made)  # torch's default kernel: what a researcher writes
