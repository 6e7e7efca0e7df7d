"""scripts/convergence_study.py: a tiny end-to-end study, and its no-training gradient check."""

import importlib.util
import json
import math

import pytest
import torch

from conftest import FAST
from gan_bench.config import ROOT

_spec = importlib.util.spec_from_file_location("convergence_study", ROOT / "scripts" / "convergence_study.py")
cs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cs)


def test_tiny_study_writes_table_and_json(tmp_path, capsys):
    out = tmp_path / "study"
    result = cs.main(["--steps", "2", "--seeds", "2", "--alphas", "0.5", "1", "--eval-every", "1",
                      "--eval-samples", "100", "--out", str(out), *FAST, "dataset.n_train=300",
                      "model.generator.width=8", "model.discriminator.width=8"])
    names = ["bce-sat", "renyi-a0.5", "renyi-a1", "alpha-a0.5", "alpha-a1"]

    data = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in data["table"]] == names
    assert [r["name"] for r in data["runs"]] == names
    assert [r["name"] for r in result["table"]] == names
    for row in data["table"]:
        assert row["seeds"] == 2 and 0 <= row["reached"] <= 2
        assert {"pct_reached", "median_steps_to_all_modes", "final_modes_mean", "final_hq_mean",
                "g_samples_early", "g_samples_late", "diverged", "vs_baseline"} <= set(row)
        assert 0 <= row["final_modes_mean"] <= 8 and 0 <= row["final_hq_mean"] <= 1
        assert row["g_samples_early"] > 0 and row["g_samples_late"] > 0
        assert (row["vs_baseline"] is None) == (row["name"] == "bce-sat")
    for run in data["runs"]:
        assert [p["seed"] for p in run["per_seed"]] == [0, 1]
        for p in run["per_seed"]:
            assert {"steps_to_all_modes", "final_modes", "final_hq", "status", "modes_curve"} <= set(p)
            assert p["final_step"] == 2 and [s for s, _ in p["modes_curve"]] == [1, 2]
        for tag in cs.GRAD_TAGS:  # every log tick (log_every = 1 here), read back from TensorBoard
            assert [s for s, _ in run["scalars"][tag]] == [1, 2]
            assert all(math.isfinite(v) for _, v in run["scalars"][tag])
    renyi = {r["alpha"]: r for r in data["runs"] if r["loss"] == "renyi"}
    assert "loss=renyi" in renyi[0.5]["overrides"] and "alpha=0.5" in renyi[0.5]["overrides"]
    assert "loss.generator=saturating" in data["runs"][0]["overrides"]
    assert len(data["gradient_ratios"]) == len(cs.grad_scenarios())

    table = (out / "table.md").read_text()
    assert table.startswith("Command: `python scripts/convergence_study.py --steps 2")
    lines = [ln for ln in table.splitlines() if ln.startswith("| ")]
    assert sum(ln.startswith("| renyi |") for ln in lines) == 2
    assert sum(ln.startswith("| alpha-saturating |") for ln in lines) == 2
    assert sum(ln.startswith("| bce-saturating |") for ln in lines) == 1
    assert "| renyi | 0.5 | 2 |" in table
    assert "| alpha-a0.5 |" in table  # the per-seed table
    assert "| loss | α | seeds |" in capsys.readouterr().out


def test_first_step_all_modes():
    recs = [{"step": 100, "modes": 7}, {"step": 200, "modes": 8}, {"step": 300, "modes": 6}, {"step": 400, "modes": 8}]
    assert cs.first_step_all_modes(recs, 8) == 200
    assert cs.first_step_all_modes(recs[:1], 8) is None


def test_renyi_gradient_ratio_by_hand():
    # D_r = 0.9 (t_r = log 9), D_f = 1/2 (t_f = 0). Per fake sample the ratio is (1 - D_f)^beta / S with
    # S = 1/2 D_r^beta + 1/2 (1 - D_f)^beta.
    tr, tf = torch.full((4,), math.log(9.0), dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    # alpha = 1/2, beta = -1: S = 1/2 (10/9) + 1/2 * 2 = 14/9; ratio = 2 / (14/9) = 9/7
    assert cs.renyi_grad_ratio(tr, tf, 0.5) == pytest.approx(9 / 7, rel=1e-9)
    # alpha = 2, beta = 1/2: ratio = sqrt(1/2) / (1/2 (sqrt(0.9) + sqrt(0.5))) = 2 / (sqrt(1.8) + 1)
    assert cs.renyi_grad_ratio(tr, tf, 2.0) == pytest.approx(2 / (math.sqrt(1.8) + 1), rel=1e-9)
    assert cs.renyi_grad_ratio(tr, tf, 1.0) == pytest.approx(1.0)
    # At D = 1/2 everywhere every alpha gives the same gradient.
    assert cs.renyi_grad_ratio(torch.zeros(5), torch.zeros(5), 0.2) == pytest.approx(1.0, rel=1e-9)
    # The autograd ratio through gan_bench's renyi_value agrees with the closed form on random logits.
    g = torch.Generator().manual_seed(1)
    tr, tf = torch.randn(64, generator=g) + 1, torch.randn(32, generator=g) - 1
    for a in (0.2, 0.5, 2.0):
        assert cs.renyi_grad_ratio(tr, tf, a) == pytest.approx(cs.renyi_grad_ratio_closed_form(tr, tf, a), rel=1e-9)
    # alpha-loss saturating generator: per sample (1 - D_f)^beta, = 2 at D_f = 1/2 and alpha = 1/2.
    assert cs.alpha_sat_grad_ratio(torch.zeros(3), 0.5) == pytest.approx(2.0, rel=1e-9)
