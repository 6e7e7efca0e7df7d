"""`gan-bench report --compare r3gan-table1|r3gan-table3`: R3GAN's Stacked MNIST tables beside runs
mapped by their resolved loss and penalty; "fail" compared with the seeds that diverged."""

import json
import statistics

import yaml
from test_report import by_header, md_rows, run

from gan_bench.reporting.reference import load

FP = "smnist-modes:test"


def write(d, loss, penalty, seed, status, modes=None, kl=None, variant=None):
    (d / ".hydra").mkdir(parents=True)
    overrides = [f"loss={loss}", f"penalty={penalty}", f"seed={seed}"]
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    loss_cfg = {"_target_": "gan_bench.losses.make_loss", "name": loss}
    loss_cfg.update({"variant": variant} if variant else {"generator": "ns"})
    config = {"seed": seed, "alpha": 1.0, "alpha_d": 1.0, "alpha_g": 1.0,
              "dataset": {"_target_": "gan_bench.data.images.stacked_mnist", "seed": 0}, "loss": loss_cfg,
              "penalty": {"_target_": "gan_bench.losses.penalties.make_penalty", "name": penalty},
              "train": {"steps": 100, "batch_size": 64, "ensemble": 1, "device": "cpu"},
              "optim": {"lr_d": 2e-4, "lr_g": 2e-4, "betas": [0.0, 0.99]}}
    (d / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    metrics = {} if status == "diverged" else {"smnist_modes25k": modes, "smnist_modes25k_kl": kl}
    res = {"status": status, "step": 100, "steps": 100, "seed": seed, "wall_seconds": 1.0,
           "diverged_at": 40 if status == "diverged" else None, "error": None, "metrics": metrics,
           "fingerprints": {k: FP for k in metrics}, "replicas": None}
    (d / "result.json").write_text(json.dumps(res))


def test_r3gan_tables_load_with_their_failures():
    t1 = load("r3gan-table1")
    assert {(r.objective, r.metric): r.text for r in t1.rows} == {
        ("rpgan_r1r2", "modes"): "1000", ("rpgan_r1r2", "kl"): "0.0781", ("gan_r1r2", "modes"): "693",
        ("gan_r1r2", "kl"): "0.9270", ("rpgan_r1", "modes"): "fail", ("rpgan_r1", "kl"): "fail",
        ("gan_r1", "modes"): "fail", ("gan_r1", "kl"): "fail"}
    assert all(r.failed == (r.text == "fail") and r.seeds is None for r in t1.rows)
    t3 = load("r3gan-table3")
    assert len(t3.rows) == 22 and {r.model for r in t3.rows if r.objective == "rpgan_r1r2"} == {"R3GAN Config E"}


def test_compare_r3gan_table1_maps_loss_and_penalty(tmp_path, capsys):
    modes, kls = [990, 1000, 996], [0.05, 0.04, 0.06]
    for i, (m, k) in enumerate(zip(modes, kls)):
        write(tmp_path / f"rp_r1r2_{i}", "rsgan", "r1r2", i, "completed", m, k, variant="sgan")
    write(tmp_path / "gan_r1_0", "bce", "r1", 0, "diverged")
    write(tmp_path / "gan_r1_1", "bce", "r1", 1, "completed", 400, 1.5)
    write(tmp_path / "lsgan_0", "lsgan", "r1", 0, "completed", 100, 3.0)  # no published counterpart
    out, _ = run([tmp_path, "--no-hparams", "--compare", "r3gan-table1"], capsys)
    rows = by_header(md_rows(out, "Compared with r3gan-table1"))
    rp = {r["metric"]: r for r in rows if r["loss"] == "rsgan"}
    assert rp["modes (RpGAN + R1 + R2)"]["published"] == "1000"
    assert rp["modes (RpGAN + R1 + R2)"]["measured [95% CI]"].startswith(f"{statistics.fmean(modes):.1f} [")
    assert rp["kl (RpGAN + R1 + R2)"]["measured [95% CI]"].startswith(f"{statistics.fmean(kls):.3f} [")
    assert rp["kl (RpGAN + R1 + R2)"]["published"] == "0.0781"
    gan = {r["metric"]: r for r in rows if r["loss"] == "bce"}
    assert gan["modes (GAN + R1)"]["published"] == "fail"
    assert gan["modes (GAN + R1)"]["measured [95% CI]"] == "diverged 1/2"
    assert not [r for r in rows if r["loss"] == "lsgan"]
    assert "r3gan-table1: 4 of 8 published cells measured" in out


def test_compare_r3gan_table3_lists_the_methods_without_a_counterpart(tmp_path, capsys):
    write(tmp_path / "rp", "rsgan", "r1r2", 0, "completed", 1000, 0.03, variant="sgan")
    out, _ = run([tmp_path, "--no-hparams", "--compare", "r3gan-table3"], capsys)
    rows = by_header(md_rows(out, "Compared with r3gan-table3"))
    assert {r["metric"] for r in rows} == {"modes (R3GAN Config E)", "kl (R3GAN Config E)"}
    assert "published without a gan-bench counterpart: VEEGAN modes 150, kl 2.95; PacGAN" in out
