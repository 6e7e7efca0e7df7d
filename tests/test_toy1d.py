"""The 1-D sets end to end through `gan-bench train` (in process, as tests/test_export.py runs it):
what a run writes, seed ensembles against single runs, the report and `gan-bench sample` on
1-D runs, and bad settings stopped before training."""

import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from test_ensemble import weights

from conftest import FAST
from gan_bench.cli import main
from gan_bench.metrics import density1d_keys
from gan_bench.metrics.density1d import FINGERPRINT

SEED, K = 5, 3
# lr 1e-4 as in test_ensemble.py: batched and single kernels round differently, and at higher
# rates that difference grows past the weights' tolerance within these steps.
COMMON = [*FAST, "dataset=mixture1d", "train.steps=30", "train.log_every=10", "train.eval_every=15",
          "train.ckpt_every=15", "optim.lr=1e-4"]


def cli(*argv) -> int:
    try:
        return main([str(a) for a in argv])
    except SystemExit as e:
        return e.code


@pytest.fixture(scope="module")
def runs(tmp_path_factory, one_thread):
    """An ensemble of K seeds on mixture1d and the K single runs it must equal."""
    root = tmp_path_factory.mktemp("toy1d")
    assert cli("train", *COMMON, f"seed={SEED}", f"train.ensemble={K}", f"hydra.run.dir={root / 'ens'}") == 0
    for i in range(K):
        assert cli("train", *COMMON, f"seed={SEED + i}", f"hydra.run.dir={root / f'single{i}'}") == 0
    return root


def test_a_run_writes_the_density_metrics(runs):
    run = runs / "single0"
    keys = set(density1d_keys(2))
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [15, 30] and all(keys <= set(r) for r in lines)
    assert "success" not in lines[-1] and "modes" not in lines[-1]  # no 2-D mode metrics
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "completed" and set(result["metrics"]) == keys
    assert set(result["fingerprints"].values()) == {f"{FINGERPRINT}:n=500"}
    pictures = sorted(p.name for p in (run / "samples").iterdir())
    assert pictures == ["step0000015.png", "step0000030.png"]
    assert Image.open(run / "samples" / pictures[-1]).size == (384, 256)


def test_gauss1d_trains_with_1d_networks(tmp_path, one_thread):
    assert cli("train", *FAST, "dataset=gauss1d", "train.steps=20", "train.log_every=10",
               f"hydra.run.dir={tmp_path}") == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert set(result["metrics"]) == set(density1d_keys(1))
    G = weights(tmp_path, "G")
    # FAST's depth 2, width 32: Linear layers 0, 2, 4; a 1-D latent in, one coordinate out.
    assert G["0.weight"].shape == (32, 1) and G["4.weight"].shape == (1, 32)
    assert weights(tmp_path, "D")["0.weight"].shape == (32, 1)


def test_ensemble_equals_its_single_runs(runs):
    ens = json.loads((runs / "ens" / "result.json").read_text())
    assert [r["seed"] for r in ens["replicas"]] == [SEED, SEED + 1, SEED + 2]
    for i in range(K):
        single = runs / f"single{i}"
        for net in ("G", "D"):
            a, b = weights(single, net), weights(runs / "ens", net, i)
            for k in a:
                torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-5, msg=f"{net} {k} replica {i}")
        # Same weights to 1e-5 -> the same samples to ~1e-5 on the same test latents -> the same metrics.
        one = json.loads((single / "result.json").read_text())["metrics"]
        mine = ens["replicas"][i]["metrics"]
        assert mine.keys() == one.keys()
        for k in one:
            assert mine[k] == pytest.approx(one[k], rel=1e-3, abs=1e-4), k


def test_report_shows_1d_keys_and_no_rates(runs, tmp_path, capsys):
    """A 1-D group gets its own columns; an all-diverged 1-D group borrows them, not the 2-D toy
    success/failure rates (which a diverged seed would count as 0% success)."""
    shutil.copytree(runs / "single0", tmp_path / "a")
    shutil.copytree(runs / "single1", tmp_path / "b")
    overrides = tmp_path / "b" / ".hydra" / "overrides.yaml"
    overrides.write_text(yaml.safe_dump(yaml.safe_load(overrides.read_text()) + ["alpha=2"]))
    result = json.loads((tmp_path / "b" / "result.json").read_text())
    (tmp_path / "b" / "result.json").write_text(json.dumps({**result, "status": "diverged", "metrics": {}}))
    assert cli("report", tmp_path, "--no-hparams") == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "kl_data_model" in line)
    assert all(k in header for k in ("kl_model_data", "d_ns", "w1", "mode_mass_1", "modes_dropped"))
    assert "success" not in out and "failure" not in out and "different fingerprints" not in out
    assert "2 runs: 1 completed, 1 diverged" in out


def test_sample_command_draws_1d_points(runs, tmp_path):
    assert cli("sample", runs / "single0", "--n", "50", "--out", tmp_path / "s.npz") == 0
    assert np.load(tmp_path / "s.npz")["samples"].shape == (50, 1)
    assert cli("sample", runs / "ens", "--replica", "2", "--out", tmp_path / "s.png") == 0
    assert Image.open(tmp_path / "s.png").size == (384, 256)


@pytest.mark.parametrize("args, words", [
    (["dataset=gauss1d", "dataset.std=-1"], ["dataset.std=-1.0", "positive"]),
    (["dataset=mixture1d", "dataset.weights=[0.5,0.6]"], ["dataset.weights=[0.5, 0.6]", "sum to 1"]),
    (["dataset=mixture1d", "dataset.means=[-2,0,2]"], ["lengths 3, 2 and 2"]),
])
def test_bad_settings_stop_before_training(tmp_path, capsys, args, words):
    out = tmp_path / "run"
    assert cli("train", *FAST, f"hydra.run.dir={out}", *args) == 2
    err = [s for s in capsys.readouterr().err.splitlines() if s.strip()]
    assert len(err) == 1 and all(w in err[0] for w in words), err
    assert not (out / "checkpoints").exists() and not (out / "result.json").exists()


def test_mlp_generator_keeps_the_point_dim():
    """out_dim [1] (the 1-D sets' G) keeps [B, 1], the data's shape; out_dim 1 (D) gives logits [B]."""
    from gan_bench.ensemble import BatchedMLP
    from gan_bench.models.mlp import MLP

    g, d = MLP(1, [1], width=8, depth=1), MLP(1, 1, width=8, depth=1)
    z = torch.randn(5, 1)
    assert g(z).shape == (5, 1) and d(g(z)).shape == (5,)
    assert BatchedMLP([g, MLP(1, [1], width=8, depth=1)])(torch.randn(2, 5, 1)).shape == (2, 5, 1)


def test_search_knows_the_1d_metrics(cfg_factory):
    from gan_bench.errors import UserError
    from gan_bench.search import check_search, direction

    smaller_is_better = ("kl_data_model", "kl_model_data", "js", "d_ns", "w1", "modes_dropped", "nonfinite")
    assert {direction(k) for k in smaller_is_better} == {"minimize"}
    with pytest.raises(UserError, match="hydra.sweeper.direction"):
        direction("mode_mass_0")  # its target is the mode's weight, not an end of the scale
    check_search(cfg_factory("dataset=mixture1d", "search.metric=kl_data_model"))
    with pytest.raises(UserError, match="runs on 1-D data report kl_data_model"):
        check_search(cfg_factory("dataset=gauss1d", "search.metric=success"))
