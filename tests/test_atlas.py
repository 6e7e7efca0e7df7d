"""The atlas: its catalogue and tasks, bad input as one line before any cell runs, and a miniature
atlas end to end (2 entries x 2 tasks x 2 seeds on tiny networks, then a user's own objective from a
temporary module), whose rows, skips and report are checked."""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from gan_bench.atlas import catalogue, cells, results, tasks as tasks_mod
from gan_bench.errors import UserError
from gan_bench.losses import LOSSES

CLI = [sys.executable, "-m", "gan_bench.cli", "atlas"]


def atlas(*args, cwd=None, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


# --- the catalogue and the tasks ----------------------------------------------------------------

def test_every_registered_loss_is_in_an_entry_or_excluded_with_a_reason():
    entries = catalogue.load()
    used = {o.split("=", 1)[1] for e in entries.values() for o in e.overrides if o.startswith("loss=")}
    excluded = catalogue.excluded()
    assert all(reason.strip() for reason in excluded.values())
    missing = [name for name in LOSSES if name not in used and name not in excluded]
    assert not missing, f"registered losses in no atlas entry and not excluded: {missing}"


def test_the_catalogue_holds_what_the_atlas_promises():
    e = catalogue.load()
    text = {n: x.text for n, x in e.items()}
    assert text["bce-ns"] == "loss=bce" and "saturating" in text["bce-mm"]
    alpha = [n for n in e if n.startswith("alpha-")]
    assert sum(n.endswith("-ns") for n in alpha) >= 4 and sum(n.endswith("-sat") for n in alpha) >= 4
    for a in ("0.2", "0.5", "2"):
        assert f"renyi-{a}-sat" in e and f"renyi-{a}-ns" in e
    for name in ("renyigan-3", "lsgan-ns", "lsgan-sat", "hinge", "wgan-gp", "rsgan", "ragan", "rpgan-r1r2",
                 "bce-r1", "bce-r1r2", "cpe-squared-exp", "lkgan-1", "lkgan-2", "lkgan-3", "slkgan-2",
                 "lalpha-0.5", "lalpha-3"):
        assert name in e, name
    assert {x.split("=")[1] for n in e if n.startswith("fgan-") for x in e[n].overrides
            if x.startswith("loss.divergence")} == {"kl", "rkl", "js", "pearson", "hellinger"}
    assert sum(n.startswith("beyond-") for n in e) >= 4


def test_atlas_list_prints_one_entry_a_line():
    out = atlas("list")
    assert out.returncode == 0
    lines = out.stdout.strip().splitlines()
    assert [ln.split("\t")[0] for ln in lines] == list(catalogue.load())
    assert lines[0] == "bce-ns\tloss=bce"


def test_tasks_have_a_budget_score_threshold_and_an_lr_grid_half_a_decade_apart():
    spec = tasks_mod.load()
    assert set(spec.tiers) == {"toy", "digits", "paper"}
    assert spec.tiers["toy"] == ("ring", "grid", "mixture") and spec.tiers["digits"] == ("mnist",)
    assert set(spec.tiers["paper"]) == {"stacked_mnist", "cifar10"}
    for t in spec.tasks.values():
        assert len(t.lrs) >= 3 and all(b / a >= 10 ** 0.5 for a, b in zip(t.lrs, t.lrs[1:])), t.name
        assert t.eval >= 8 and t.select >= 2
        assert any(o.startswith("dataset=") for o in t.overrides) and any(o.startswith("model=") for o in t.overrides)
        assert any(o.startswith(("train.steps=", "train.epochs=")) for o in t.overrides)
    assert set(spec.objectives["digits"]) <= set(catalogue.load()) and len(spec.objectives["digits"]) >= 12


def test_every_entry_composes_and_builds_on_the_ring(tmp_path):
    spec = tasks_mod.load()
    plan = cells.plan([spec.tasks["ring"]], list(catalogue.load().values()), seed=0)
    cells.write_cells(plan, tmp_path, "test")
    cells.check(plan, tmp_path)  # raises on the first entry that does not compose, check or build


@pytest.mark.parametrize("text, message", [
    ("nocolon loss=bce", "needs NAME: OVERRIDES"),
    ("bad name: loss=bce", "must be letters"),
    ("x:", "has no overrides"),
    ("x: loss=bce ~penalty", "is not an override"),
    ("x: loss=bce hydra.job.chdir=true", "is a Hydra setting"),
])
def test_bad_entries_are_one_line(text, message):
    with pytest.raises(UserError, match=message):
        catalogue.parse_entry(text)


def test_a_task_without_a_score_is_one_line(tmp_path):
    spec = yaml.safe_load((Path(tasks_mod.__file__).parent / "tasks.yaml").read_text())
    del spec["tasks"]["grid"]["score"]
    path = tmp_path / "tasks.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(UserError, match="task 'grid': has no score"):
        tasks_mod.load(str(path))
    out = atlas("list", "--tasks", "--tasks-file", str(path))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "has no score" in out.stderr


@pytest.mark.parametrize("entry, message", [
    ("bad: loss=nosuchloss", "unknown loss 'nosuchloss'"),
    ("bad: loss=bce loss.nosuchkey=1", "objective 'bad' (loss=bce loss.nosuchkey=1) on task 'ring'"),
    ("bad: loss=alpha alpha_d=-1", "alpha_d must be a positive number"),
])
def test_a_bad_entry_stops_before_any_cell_runs(tmp_path, entry, message):
    out = atlas("run", "--tasks", "ring", "--entry", entry, "--results", str(tmp_path / "r.jsonl"),
                "--workdir", str(tmp_path / "w"))
    assert out.returncode == 2, out.stderr[-1500:]
    assert out.stderr.count("\n") == 1 and message in out.stderr
    assert not (tmp_path / "w" / "runs").exists() and not (tmp_path / "r.jsonl").exists()


# --- a miniature atlas, end to end ------------------------------------------------------------------

TINY = ("model.generator.width=16 model.discriminator.width=16 model.generator.depth=2 model.discriminator.depth=2 "
        "dataset.n_train=2000 dataset.n_test=500 eval.n_samples=500 train.steps=30 train.batch_size=64 "
        "train.eval_every=10 train.ckpt_every=30 train.log_every=10")
TASKS = {"tasks": {
    "ring": {"tier": "toy", "overrides": f"dataset=ring model=mlp {TINY}", "score": "modes", "direction": "max",
             "metrics": ["success", "hq"], "reach": "modes>=2", "lrs": [1e-3, 5e-3], "seeds": {"select": 1, "eval": 1}},
    "mixture": {"tier": "toy", "overrides": f"dataset=mixture1d model=mlp {TINY}", "score": "w1",
                "direction": "min", "metrics": ["modes_dropped"], "reach": "w1<=1.5", "lrs": [1e-3, 5e-3],
                "seeds": {"select": 1, "eval": 1}}}}
CATALOGUE = {"entries": {"bce-ns": "loss=bce", "hinge": "loss=hinge"}}
MINE = textwrap.dedent('''
    import torch.nn.functional as F
    from gan_bench.losses import Loss

    class SoftHinge(Loss):
        name = "softhinge"
        def d_loss(self, real_logits, fake_logits):
            return F.softplus(1 - real_logits).mean(-1) + F.softplus(1 + fake_logits).mean(-1)
        def g_loss(self, fake_logits, real_logits=None):
            return -fake_logits.mean(-1)

    def build():
        return SoftHinge()
''')


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    d = tmp_path_factory.mktemp("atlas")
    (d / "tasks.yaml").write_text(yaml.safe_dump(TASKS))
    (d / "catalogue.yaml").write_text(yaml.safe_dump(CATALOGUE))
    (d / "my_losses.py").write_text(MINE)
    common = ["--tasks-file", str(d / "tasks.yaml"), "--catalogue", str(d / "catalogue.yaml"),
              "--results", str(d / "results.jsonl"), "--workdir", str(d / "work")]
    first = atlas("run", "--tier", "toy", *common)
    again = atlas("run", "--tier", "toy", *common)
    mine = atlas("run", "--tier", "toy", *common, "--entry", "mine: loss=custom loss.builder=my_losses:build", cwd=d)
    return d, common, first, again, mine


def test_mini_atlas_writes_one_row_per_cell(mini):
    d, _, first, _, _ = mini
    assert first.returncode == 0, first.stderr[-3000:]
    assert "atlas: 8 cells (2 tasks x 2 objectives x their lrs), 0 already in" in first.stdout
    assert "8/8 cells done" in first.stdout
    rows = results.read(d / "results.jsonl")
    assert len(rows) >= 8
    base = [r for r in rows if r["objective"] != "mine"]
    assert sorted(r["cell"] for r in base) == sorted(f"{t}.{o}.lr{lr}.s0" for t in ("ring", "mixture")
                                                     for o in ("bce-ns", "hinge") for lr in ("0.001", "0.005"))
    for r in base:
        assert [s["seed"] for s in r["seeds"]] == [0, 1] and r["select"] == 1 and r["eval"] == 1
        assert r["steps"] == 30 and r["wall_seconds"] > 0 and len(r["config_hash"]) == 16 and r["commit"]
        run = d / "work" / "runs" / f"+atlas_cell={r['cell']}"
        result = json.loads((run / "result.json").read_text())  # an ordinary run directory
        for s, rep in zip(r["seeds"], result["replicas"]):
            assert s["score"] == pytest.approx(float(rep["metrics"][r["score"]]))
        assert (run / "checkpoints" / "last.pt").exists() and (run / ".hydra" / "overrides.yaml").exists()


def test_mini_atlas_skips_finished_cells(mini):
    d, _, _, again, _ = mini
    assert again.returncode == 0 and "8 already in" in again.stdout and "0 to run" in again.stdout
    lines = (d / "results.jsonl").read_text().splitlines()
    assert len([ln for ln in lines if '"objective": "mine"' not in ln]) == 8  # nothing appended twice


def test_your_own_objective_joins_the_atlas(mini):
    d, _, _, _, mine = mini
    assert mine.returncode == 0, mine.stderr[-3000:]
    assert "atlas: 4 cells (2 tasks x 1 objectives" in mine.stdout
    rows = [r for r in results.read(d / "results.jsonl") if r["objective"] == "mine"]
    assert len(rows) == 4 and rows[0]["overrides"] == "loss=custom loss.builder=my_losses:build"


def test_mini_atlas_report(mini):
    d, common, *_ = mini
    out = atlas("report", "--results", str(d / "results.jsonl"), "--out", str(d / "rep"))
    assert out.returncode == 0, out.stderr[-3000:]
    text = (d / "rep" / "atlas.md").read_text()
    rows = results.read(d / "results.jsonl")
    assert "## Tier `toy`" in text and "### Task `ring`" in text and "### Task `mixture`" in text
    assert "Friedman test of equal mean ranks over the blocks" in text  # 3 objectives x 2 blocks
    # the ranks in the tier table are those of the per-seed scores of the selected lrs
    from gan_bench.atlas.analysis import analyse
    tasks, tiers = analyse(rows)
    assert {r.objective for t in tasks for r in t.results} == {"bce-ns", "hinge", "mine"}
    for r in tasks[0].results:
        assert f"| {r.rank:.2f} | `{r.objective}` | {r.lr:g} |" in text
    for name in ("strip_ring.png", "strip_mixture.png", "ranks_toy.png", "cd_toy.png", "task_ring.csv",
                 "sensitivity_mixture.csv", "ranks_toy.csv"):
        assert (d / "rep" / "atlas" / name).stat().st_size > 0, name
    again = atlas("report", "--results", str(d / "results.jsonl"), "--out", str(d / "rep2"))
    assert again.returncode == 0 and (d / "rep2" / "atlas.md").read_text() == text  # regenerates alike
    assert all(math.isfinite(t) for t in tiers[0].friedman)


def test_committed_atlas_md_is_what_the_report_regenerates(tmp_path):
    from gan_bench.atlas import report
    from gan_bench.paths import ROOT

    committed = ROOT / "docs" / "atlas.md"
    rows = results.read(results.DEFAULT)
    if not rows:
        pytest.skip("no committed atlas results")
    report.write(rows, tmp_path, source="docs/atlas/results.jsonl", reading=results.DEFAULT.parent / "reading.md")
    assert (tmp_path / "atlas.md").read_text() == committed.read_text()


def test_a_stop_signal_loses_no_finished_cell(tmp_path):
    """SIGTERM while a cell trains: the cells finished have their rows, the one interrupted
    checkpoints, and the same command finishes the rest, each cell written once."""
    import signal
    import time

    ring = TASKS["tasks"]["ring"]
    longer = ring["overrides"].replace("train.steps=30", "train.steps=400").replace("ckpt_every=30", "ckpt_every=400")
    slow = {"tasks": {"ring": {**ring, "overrides": longer}}}
    (tmp_path / "tasks.yaml").write_text(yaml.safe_dump(slow))
    (tmp_path / "catalogue.yaml").write_text(yaml.safe_dump(CATALOGUE))
    args = [*CLI, "run", "--tasks", "ring", "--tasks-file", str(tmp_path / "tasks.yaml"), "--catalogue",
            str(tmp_path / "catalogue.yaml"), "--results", str(tmp_path / "r.jsonl"), "--workdir", str(tmp_path / "w")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while not results.read(tmp_path / "r.jsonl") and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)  # into the next cell
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    done = results.read(tmp_path / "r.jsonl")
    assert 1 <= len(done) < 4, out[-2000:]
    assert "to go on, run the same `gan-bench atlas run ...` again" in out
    again = subprocess.run(args, env=env, text=True, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert sorted(json.loads(ln)["cell"] for ln in lines) == sorted(
        f"ring.{o}.lr{lr}.s0" for o in ("bce-ns", "hinge") for lr in ("0.001", "0.005"))
