"""hydra/sweeper=optuna: a study of 3 trials on the ring, its trials in the sweep layout that
`gan-bench report` reads, a re-run that replays it, failed and diverged trials that return the
worst value instead of ending the study, and the checks that run before any trial."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import make_cfg
from gan_bench.errors import UserError
from gan_bench.report import main as report
from gan_bench.search import check_args, check_search, direction, trial_value

CLI = [sys.executable, "-m", "gan_bench.cli", "train", "-m", "hydra/sweeper=optuna"]
TINY = ["model.generator.width=8", "model.discriminator.width=8", "model.generator.depth=1",
        "model.discriminator.depth=1", "dataset.n_train=300", "dataset.n_test=64", "eval.n_samples=128",
        "train.steps=20", "train.log_every=10", "train.eval_every=20", "train.ckpt_every=20",
        "train.progress=false", "train.device=cpu"]


def study(sweep_dir, *args, timeout=240):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*CLI, *TINY, f"hydra.sweep.dir={sweep_dir}", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def trials(sweep_dir) -> dict[float, dict]:
    """Each trial's result.json by its optim.lr, read from its job directory's overrides."""
    out = {}
    for d in Path(sweep_dir).iterdir():
        if (d / ".hydra").is_dir():
            overrides = yaml.safe_load((d / ".hydra" / "overrides.yaml").read_text())
            lr = next(o for o in overrides if o.startswith("optim.lr="))
            out[float(lr.split("=")[1])] = yaml.safe_load((d / "result.json").read_text())
    return out


def test_three_trials_maximize_the_metric_in_the_sweep_layout_and_report_reads_them(tmp_path, capsys):
    d = tmp_path / "lr-search"
    args = ["search.metric=hq", "hydra.sweeper.n_trials=3", "optim.lr=tag(log, interval(1e-4, 1e-1))"]
    p = study(d, *args)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Directions: ['maximize']" in p.stdout + p.stderr  # hq: the direction follows the metric
    assert "sweep: 3 jobs: 3 completed, 0 diverged, 0 failed" in p.stdout
    runs = trials(d)
    assert len(runs) == 3 and all(r["status"] == "completed" for r in runs.values())
    # Job directories are named by their overrides, as in any sweep; search.metric is left out.
    names = [x.name for x in d.iterdir() if (x / ".hydra").is_dir()]
    assert all("optim.lr=" in n and "search.metric" not in n for n in names)
    best = yaml.safe_load((d / "optimization_results.yaml").read_text())
    hq = {lr: r["metrics"]["hq"] for lr, r in runs.items()}
    assert best["best_value"] == max(hq.values())
    assert hq[best["best_params"]["optim.lr"]] == best["best_value"]

    assert report([str(d), "--no-hparams", "--metrics", "hq,success"]) == 0
    out = capsys.readouterr().out
    assert "3 runs: 3 completed, 0 diverged, 0 failed, 0 incomplete" in out
    rows = [s for s in out.splitlines() if s.startswith("| 0.")]  # one row per trial, keyed by optim.lr
    assert len(rows) == 3 and "search.metric" not in out
    for lr, v in hq.items():
        assert any(s.startswith(f"| {lr!r}") and f"{v:.3f}" in s for s in rows), (lr, rows)

    # The same command again, with one trial more, replays the study: the seeded sampler proposes
    # the same 3 trials first, whose runs are finished (not retrained), then a new one.
    again = study(d, *args, "hydra.sweeper.n_trials=4")
    assert again.returncode == 0 and again.stdout.count("already finished") == 3, again.stdout[-3000:]
    assert "sweep: 4 jobs: 4 completed" in again.stdout
    runs4 = trials(d)
    assert len(runs4) == 4 and all(runs4[lr] == runs[lr] for lr in runs)
    best4 = yaml.safe_load((d / "optimization_results.yaml").read_text())
    assert best4["best_value"] == max(r["metrics"]["hq"] for r in runs4.values())


def test_failed_and_diverged_trials_do_not_end_the_study(tmp_path):
    # Every point of a grid, once: a sane rate, one that diverges at once, one that is bad input.
    d = tmp_path / "grid"
    p = study(d, "search.metric=hq", "hydra/sweeper/sampler=grid", "hydra.sweeper.n_trials=3", "optim=sgd",
              "optim.lr=choice(0.01,1e9,-1)")
    assert "sweep: 3 jobs: 1 completed, 1 diverged, 1 failed" in p.stdout, p.stdout[-3000:] + p.stderr[-3000:]
    assert p.returncode == 1  # a failed job fails the command, as in any sweep; the study still ended
    assert "optim.lr must be a positive number, got -1" in p.stdout
    best = yaml.safe_load((d / "optimization_results.yaml").read_text())
    assert best["best_params"] == {"optim.lr": 0.01} and math.isfinite(best["best_value"])


# ------------------------------------------------------------------------------ pieces

@pytest.mark.parametrize("metric, expected", [
    ("success", "maximize"), ("failure", "minimize"), ("hq", "maximize"), ("modes", "maximize"), ("kl", "minimize"),
    ("tv", "minimize"), ("fid10k_train", "minimize"), ("fid_logits_nonstandard10k_heldout20", "minimize"),
    ("kid50k_train", "minimize"), ("is50k", "maximize"), ("prdc10k_train_coverage", "maximize"),
    ("smnist_modes25k", "maximize"), ("smnist_modes25k_kl", "minimize"), ("fd_mnist10k_test", "minimize"),
    ("mnist_classes10k", "maximize"), ("mnist_classes10k_kl", "minimize"), ("fd_dinov2_50k_train", "minimize"),
    ("prdc_dinov2_10k_train_recall", "maximize"), ("w1", "minimize"), ("d_ns", "minimize"),
])
def test_direction_follows_the_metric(metric, expected):
    assert direction(metric) == expected


def replica(status, **metrics):
    return {"seed": 0, "status": status, "metrics": metrics}


def test_trial_value_counts_as_the_report_does(tmp_path):
    cfg = lambda m: make_cfg(tmp_path, [f"search.metric={m}"])  # noqa: E731
    ens = {"status": "completed", "metrics": {"success": 1.0, "hq": 0.9},
           "replicas": [replica("completed", success=1.0, hq=0.8), replica("completed", success=0.0, hq=0.6),
                        replica("diverged", success=1.0, hq=0.99), replica("completed", success=1.0, hq="nan")]}
    assert trial_value(cfg("success"), ens) == 0.5   # 2 of 4: the diverged replica is a failed trial
    assert trial_value(cfg("failure"), {**ens, "replicas": [replica("diverged")]}) == 1.0
    assert trial_value(cfg("hq"), ens) == pytest.approx(0.7)  # completed replicas, NaN left out
    single = {"status": "completed", "metrics": {"fid10k_train": 42.0}, "replicas": None}
    assert trial_value(cfg("fid10k_train"), single) == 42.0
    # No value: the worst there is, in the metric's direction.
    assert trial_value(cfg("hq"), {"status": "diverged", "metrics": {"hq": 0.0}, "replicas": None}) == -math.inf
    assert trial_value(cfg("kl"), {"status": "failed", "metrics": {}, "replicas": None}) == math.inf
    assert trial_value(cfg("fid10k_train"), {**single, "metrics": {"fid10k_train": "nan"}}) == math.inf
    # Not a search: the result itself, as the trainer returned it.
    assert trial_value(make_cfg(tmp_path), single) is single


@pytest.mark.parametrize("args, words", [
    ([], ["name it with search.metric=NAME"]),
    (["search.metric=null"], ["name it with search.metric=NAME"]),
    (["search.metric=success,hq"], ["a study optimizes one metric"]),
    (["search.metric=my_score"], ["search.metric=my_score", "hydra.sweeper.direction=maximize"]),
])
def test_a_study_without_a_usable_metric_stops_before_it_starts(args, words):
    with pytest.raises(UserError) as e:
        check_args(["hydra/sweeper=optuna", *args])
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words)


def test_direction_given_or_not_a_study():
    check_args(["hydra/sweeper=optuna", "search.metric=my_score", "hydra.sweeper.direction=maximize"])
    check_args(["loss=alpha"])


def test_each_trial_checks_its_metric_before_training(tmp_path):
    check_search(make_cfg(tmp_path, ["search.metric=success"]))
    with pytest.raises(UserError, match="toy data report success, failure, hq"):
        check_search(make_cfg(tmp_path, ["search.metric=fid10k_train"]))
    image = ["dataset=cifar10", "model=dcgan_small", "eval.final_metrics=[fid10k_train,prdc10k_train]"]
    check_search(make_cfg(tmp_path, [*image, "search.metric=prdc10k_train_recall"], fast=False))
    with pytest.raises(UserError, match=r"eval.final_metrics: fid10k_train, prdc10k_train\): add it"):
        check_search(make_cfg(tmp_path, [*image, "search.metric=kid50k_train"], fast=False))
