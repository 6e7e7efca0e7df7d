"""`gan-bench report` on synthetic run directories with known outcomes: exact table values.

Run directories are built exactly as the trainer writes them (.hydra/overrides.yaml,
.hydra/config.yaml, result.json); expected statistics are computed here from the formulas,
independently of gan_bench.reporting.
"""

import csv
import io
import json
import math
import statistics
from importlib import resources

import pytest
import yaml

from gan_bench.errors import UserError
from gan_bench.report import main

Z = 1.959963984540054  # normal 0.975 quantile
FP = "toy-modes:v1:n=25000:radius=3std"


def wilson_pct(k, n):
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def ci_text(k, n):
    lo, hi = wilson_pct(k, n)
    return f"{100 * k / n:.1f} [{lo:.1f}, {hi:.1f}]"


def toy(modes, hq, fp=FP):
    """Toy metrics of one seed on the 8-mode ring, with the fingerprint the trainer records."""
    m = {"modes": modes, "success": float(modes == 8), "failure": float(modes == 0), "hq": hq,
         "kl": 0.01, "rkl": 0.01, "js": 0.001, "tv": 0.02}
    return m, {k: fp for k in m}


def result(status="completed", seed=0, metrics=None, fingerprints=None, replicas=None):
    return {"status": status, "step": 100, "steps": 100, "seed": seed, "wall_seconds": 1.0,
            "diverged_at": 50 if status == "diverged" else None, "error": None,
            "metrics": metrics or {}, "fingerprints": fingerprints or {}, "replicas": replicas}


def write_run(d, overrides, seed, res, *, loss="alpha", generator="saturating",
              dataset="gan_bench.data.toy.ring", ensemble=1):
    """One run directory. res None: no result.json (a run still going, or killed)."""
    (d / ".hydra").mkdir(parents=True)
    items = [f"{k}={v}" for k, v in overrides.items()] + [f"seed={seed}"]
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(items))
    ad = float(overrides.get("alpha_d", 1.0))
    ag = float(overrides.get("alpha_g", 1.0))
    config = {
        "seed": seed, "alpha": 1.0, "alpha_d": ad, "alpha_g": ag,
        "dataset": {"_target_": dataset, "seed": 0},
        "loss": {"_target_": "gan_bench.losses.make_loss", "name": loss, "alpha_d": "${alpha_d}",
                 "alpha_g": "${alpha_g}", "generator": generator},
        "train": {"steps": 100, "batch_size": 128, "ensemble": ensemble, "device": "cpu"},
        "optim": {"lr_d": 1e-4, "lr_g": 1e-4, "betas": [0.9, 0.999]},
        "paths": {"root": "${gb_root:}", "run_dir": "${hydra:runtime.output_dir}"},
    }
    (d / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    if res is not None:
        (d / "result.json").write_text(json.dumps(res))


def sweep_cell(root, overrides, outcomes, first_seed=0, **kw):
    """Runs of one group, one per seed, as a Hydra multirun lays them out.

    outcomes: (status, modes, hq) per seed; status None means no result.json.
    """
    for i, (status, modes, hq) in enumerate(outcomes):
        seed = first_seed + i
        name = ",".join(f"{k}={v}" for k, v in sorted({**overrides, "seed": seed}.items()))
        if status is None:
            res = None
        elif status == "completed":
            res = result(status, seed, *toy(modes, hq))
        else:
            res = result(status, seed)
        write_run(root / name, overrides, seed, res, **kw)


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert code == 0
    return out.out, out.err


def md_rows(text, title):
    """Rows of the markdown table under `## title...` as lists of stripped cells (header first)."""
    lines = text.splitlines()
    start = next(i for i, s in enumerate(lines) if s.startswith(f"## {title}"))
    rows = []
    for s in lines[start + 2:]:
        if not s.startswith("|"):
            break
        rows.append([c.strip() for c in s.strip("|").split(" | ")])
    return [rows[0]] + rows[2:]  # drop the alignment rule


def by_header(rows):
    head = rows[0]
    return [dict(zip(head, r)) for r in rows[1:]]


# --- the main table ---------------------------------------------------------------------------

A_HQ = [0.91, 0.93, 0.95, 0.9, 0.92, 0.94, 0.96, 0.97, 0.1, 0.5]
A = ([("completed", 8, h) for h in A_HQ[:8]]  # 8 successes
     + [("completed", 0, A_HQ[8]), ("completed", 5, A_HQ[9])])  # one failure, one partial
B = [("completed", 8, 0.8), ("completed", 4, 0.6), ("diverged", 0, 0), ("failed", 0, 0),
     (None, 0, 0)]


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "multirun" / "2026-11-22" / "10-00-00"
    sweep_cell(root, {"loss": "alpha", "alpha_d": 0.5, "alpha_g": 1}, A)
    sweep_cell(root, {"loss": "alpha", "alpha_d": 1.0, "alpha_g": 1}, B)
    (root / "multirun.yaml").write_text("hydra: {}\n")  # what Hydra puts at a sweep's top
    return root


def test_sweep_table_exact_values(sweep, capsys):
    out, _ = run([sweep, "--no-hparams"], capsys)
    rows = by_header(md_rows(out, "Runs by group"))
    assert [r["alpha_d"] for r in rows] == ["0.5", "1"]
    # Overrides every group shares are named once, in the title, not repeated in columns.
    assert "Runs by group (seeds pooled) (every group: alpha_g=1, loss=alpha)" in out
    a, b = rows
    assert "alpha_g" not in a and "loss" not in a
    assert (a["n"], a["completed"], a["diverged"], a["failed"],
            a["incomplete"]) == ("10", "10", "0", "0", "0")
    assert a["success % [95% CI]"] == ci_text(8, 10)
    assert a["failure % [95% CI]"] == ci_text(1, 10)
    assert a["hq mean ± std"] == f"{statistics.fmean(A_HQ):.3f} ± {statistics.stdev(A_HQ):.3f}"
    a_modes = [8] * 8 + [0, 5]
    assert a["modes mean ± std"] == f"{statistics.fmean(a_modes):.3f} ± {statistics.stdev(a_modes):.3f}"
    # B: the diverged seed counts as a failed trial (success 0, failure 1); the failed and the
    # incomplete seed are counted but in no statistic; hq/modes are over completed seeds only.
    assert (b["n"], b["completed"], b["diverged"], b["failed"], b["incomplete"]) == \
        ("5", "2", "1", "1", "1")
    assert b["success % [95% CI]"] == ci_text(1, 3)
    assert b["failure % [95% CI]"] == ci_text(1, 3)
    assert b["hq mean ± std"] == f"{0.7:.3f} ± {statistics.stdev([0.8, 0.6]):.3f}"
    assert b["modes mean ± std"] == f"6.000 ± {statistics.stdev([8, 4]):.3f}"
    assert out.rstrip().splitlines()[-1] == "15 runs: 12 completed, 1 diverged, 1 failed, 1 incomplete"
    assert (sweep / "report.md").read_text() == out


def test_wilson_bounds_at_the_edges(tmp_path, capsys):
    # 0/n and n/n: the interval must not collapse to a point (the reason for Wilson over Wald).
    sweep_cell(tmp_path, {"alpha_d": 0.5}, [("completed", 8, 0.9)] * 4)
    out, _ = run([tmp_path, "--no-hparams"], capsys)
    row = by_header(md_rows(out, "Runs by group"))[0]
    lo, hi = wilson_pct(4, 4)
    assert row["success % [95% CI]"] == f"100.0 [{lo:.1f}, 100.0]" and lo < 60
    lo, hi = wilson_pct(0, 4)
    assert row["failure % [95% CI]"] == f"0.0 [0.0, {hi:.1f}]" and hi > 40


def test_grouping_pools_seeds_and_ignores_device_hydra_and_number_spelling(tmp_path, capsys):
    ok = ("completed", 8, 0.9)
    sweep_cell(tmp_path / "a", {"alpha_d": "1", "train.device": "cpu"}, [ok])
    sweep_cell(tmp_path / "b", {"alpha_d": "1.0", "hydra.launcher.n_jobs": 2}, [ok], first_seed=1)
    sweep_cell(tmp_path / "c", {"alpha_d": "1.00", "train.log_every": 7}, [ok], first_seed=2)
    out, _ = run([tmp_path, "--no-hparams"], capsys)
    rows = by_header(md_rows(out, "Runs by group"))
    assert [(r["train.log_every"], r["n"]) for r in rows] == [("–", "2"), ("7", "1")]
    assert "(every group: alpha_d=1)" in out
    out, _ = run([tmp_path, "--no-hparams", "--ignore", "train.log_every"], capsys)
    assert [(r["alpha_d"], r["n"]) for r in by_header(md_rows(out, "Runs by group"))] == [("1", "3")]


def test_ensemble_replicas_count_as_seeds(tmp_path, capsys):
    reps = []
    for i, modes in enumerate([8, 8, 8, 0]):
        m, _ = toy(modes, 0.9)
        reps.append({"seed": 10 + i, "status": "completed", "step": 100, "diverged_at": None,
                     "metrics": m})
    reps.append({"seed": 14, "status": "diverged", "step": 40, "diverged_at": 40, "metrics": {}})
    res = result("completed", 10, metrics={"success": 0.6}, fingerprints=toy(8, 0.9)[1],
                 replicas=reps)
    write_run(tmp_path / "ens", {"alpha_d": 0.5, "train.ensemble": 5}, 10, res, ensemble=5)
    # An ensemble without result.json yet: K incomplete seeds.
    write_run(tmp_path / "ens_running", {"alpha_d": 0.7, "train.ensemble": 5}, 0, None, ensemble=5)
    out, _ = run([tmp_path, "--no-hparams"], capsys)
    a, b = by_header(md_rows(out, "Runs by group"))
    assert (a["n"], a["completed"], a["diverged"]) == ("5", "4", "1")
    assert a["success % [95% CI]"] == ci_text(3, 5)
    assert a["failure % [95% CI]"] == ci_text(2, 5)
    assert (b["n"], b["incomplete"], b["success % [95% CI]"]) == ("5", "5", "–")
    assert out.rstrip().endswith("10 runs: 4 completed, 1 diverged, 0 failed, 5 incomplete")


def test_all_diverged_toy_group_still_gets_its_rates(tmp_path, capsys):
    sweep_cell(tmp_path, {"alpha_d": 3.0}, [("diverged", 0, 0)] * 3)
    out, _ = run([tmp_path, "--no-hparams"], capsys)
    row = by_header(md_rows(out, "Runs by group"))[0]
    assert (row["success % [95% CI]"], row["failure % [95% CI]"], row["hq mean ± std"]) == \
        (ci_text(0, 3), ci_text(3, 3), "–")


def test_corrupt_result_counts_as_incomplete_with_a_note(tmp_path, capsys):
    sweep_cell(tmp_path, {"alpha_d": 0.5}, [("completed", 8, 0.9)])
    (next(tmp_path.iterdir()) / "result.json").write_text('{"status": "compl')
    out, _ = run([tmp_path, "--no-hparams"], capsys)
    assert "result.json is not valid JSON; counted as incomplete" in out
    assert out.rstrip().endswith("1 runs: 0 completed, 0 diverged, 0 failed, 1 incomplete")


# --- fingerprints -----------------------------------------------------------------------------

def test_mixed_fingerprints_are_never_pooled(tmp_path, capsys):
    for seed, fp in enumerate(["toy-modes:v1", "toy-modes:v1", "toy-modes:v2"]):
        write_run(tmp_path / f"a{seed}", {"alpha_d": 0.5}, seed,
                  result("completed", seed, *toy(8, 0.9, fp)))
    for seed in range(2):
        write_run(tmp_path / f"b{seed}", {"alpha_d": 1.0}, seed,
                  result("completed", seed, *toy(8, 0.9, "toy-modes:v1")))
    out, _ = run([tmp_path, "--no-hparams"], capsys)
    a, b = by_header(md_rows(out, "Runs by group"))
    assert a["n"] == "3" and a["completed"] == "3"  # counts stay whole
    assert {a[k] for k in ("success % [95% CI]", "failure % [95% CI]", "hq mean ± std",
                           "modes mean ± std")} == {"mixed"}
    assert b["success % [95% CI]"] == ci_text(2, 2)
    note = [s for s in out.splitlines() if s.startswith("group alpha_d=0.5:")]
    assert len(note) == 1
    assert "toy-modes:v1 (2 seeds)" in note[0] and "toy-modes:v2 (1 seeds)" in note[0]
    assert "not pooled" in note[0]


def test_fingerprints_differing_between_groups_get_a_note(tmp_path, capsys):
    write_run(tmp_path / "a", {"alpha_d": 0.5}, 0, result("completed", 0, *toy(8, 0.9, "v1")))
    write_run(tmp_path / "b", {"alpha_d": 1.0}, 0, result("completed", 0, *toy(8, 0.9, "v2")))
    out, _ = run([tmp_path, "--no-hparams"], capsys)
    assert "groups use 2 different fingerprints (v1, v2)" in out
    assert "mixed" not in out


# --- formats ----------------------------------------------------------------------------------

def test_csv_output_parses_with_one_field_per_number(sweep, capsys):
    out, err = run([sweep, "--no-hparams", "--format", "csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 2
    a = rows[0]
    assert (a["alpha_d"], a["n"], a["completed"]) == ("0.5", "10", "10")
    lo, hi = wilson_pct(8, 10)
    assert float(a["success_pct"]) == 80.0
    assert float(a["success_lo"]) == pytest.approx(lo, rel=1e-5)
    assert float(a["success_hi"]) == pytest.approx(hi, rel=1e-5)
    assert float(a["hq_mean"]) == pytest.approx(statistics.fmean(A_HQ), rel=1e-5)
    assert float(a["hq_std"]) == pytest.approx(statistics.stdev(A_HQ), rel=1e-5)
    assert float(a["modes_mean"]) == pytest.approx(6.9)
    # stdout stays pure csv: the summary goes to stderr.
    assert err.rstrip().endswith("15 runs: 12 completed, 1 diverged, 1 failed, 1 incomplete")
    assert (sweep / "report.csv").read_text() == out


def test_latex_output(sweep, capsys):
    out, _ = run([sweep, "--no-hparams", "--format", "latex"], capsys)
    assert "\\begin{tabular}{lrrr" in out and "\\end{tabular}" in out
    assert "alpha\\_d & n &" in out and "% Runs by group (seeds pooled) (every group: alpha_g=1, loss=alpha)" in out
    assert "success \\% [95\\% CI]" in out
    row = next(s for s in out.splitlines() if s.startswith("0.5 &"))
    cells = [c.strip() for c in row.removesuffix("\\\\").split("&")]
    assert cells[6] == ci_text(8, 10)
    assert cells[8] == f"{statistics.fmean(A_HQ):.3f} $\\pm$ {statistics.stdev(A_HQ):.3f}"
    assert out.rstrip().splitlines()[-1] == "% 15 runs: 12 completed, 1 diverged, 1 failed, 1 incomplete"


# --- pivot and heatmap ------------------------------------------------------------------------

def grid_sweep(root, generator="saturating"):
    # success k of 4 seeds at (alpha_d, alpha_g): k = index in the list below.
    cells = {(0.5, 1.0): 4, (0.5, 1.2): 3, (1.0, 1.0): 1, (1.0, 1.2): 0}
    for (ad, ag), k in cells.items():
        sweep_cell(root / generator, {"loss": "alpha", "alpha_d": ad, "alpha_g": ag,
                                      "loss.generator": generator},
                   [("completed", 8 if i < k else 0, 0.9) for i in range(4)], generator=generator)
    return cells


def test_pivot_grid_cells_and_heatmap(tmp_path, capsys):
    cells = grid_sweep(tmp_path)
    out_dir = tmp_path / "report"
    out, _ = run([tmp_path, "--no-hparams", "--pivot", "alpha_d,alpha_g", "--out", out_dir], capsys)
    rows = md_rows(out, "success % by alpha_d (rows) x alpha_g (columns)")
    assert rows[0] == ["alpha_d \\ alpha_g", "1", "1.2"]
    grid = {r[0]: r[1:] for r in rows[1:]}
    assert grid == {f"{ad:g}": [f"{100 * cells[(ad, ag)] / 4:.1f}" for ag in (1.0, 1.2)]
                    for ad in (0.5, 1.0)}
    png = out_dir / "heatmap_success.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"heatmap: {png}" in out
    assert (out_dir / "report.md").is_file()


def test_pivot_splits_other_keys_into_separate_grids(tmp_path, capsys):
    grid_sweep(tmp_path, "saturating")
    grid_sweep(tmp_path, "ns")
    out, _ = run([tmp_path, "--no-hparams", "--pivot", "alpha_d,alpha_g", "--metric", "hq"],
                 capsys)
    for gen in ("ns", "saturating"):
        rows = md_rows(out, f"hq by alpha_d (rows) x alpha_g (columns), loss.generator={gen}")
        assert rows[1] == ["0.5", "0.900", "0.900"]
        assert (tmp_path / f"heatmap_hq_loss.generator={gen}.png").is_file()


def test_pivot_csv_cells_are_numbers(tmp_path, capsys):
    cells = grid_sweep(tmp_path)
    out, _ = run([tmp_path, "--no-hparams", "--format", "csv", "--pivot", "alpha_d,alpha_g"],
                 capsys)
    pivot = list(csv.reader(io.StringIO(out.split("\n\n")[1])))
    assert pivot[0] == ["alpha_d\\alpha_g", "1", "1.2"]
    assert pivot[2] == ["1", str(100 * cells[(1.0, 1.0)] / 4), str(100 * cells[(1.0, 1.2)] / 4)]


# --- published numbers -------------------------------------------------------------------------

def test_compare_table1_prints_published_value_and_interval_flag(tmp_path, capsys):
    # Table I, saturating: (0.5, 1.0) published 80 -> 8/10 measured, inside;
    # (1.0, 1.0) published 47 -> 10/10 measured, Wilson [72.2, 100]: outside.
    base = {"loss": "alpha", "alpha_g": 1.0}
    sweep_cell(tmp_path, {**base, "alpha_d": 0.5}, [("completed", 8 if i < 8 else 0, 0.9)
                                                     for i in range(10)])
    sweep_cell(tmp_path, {**base, "alpha_d": 1.0}, [("completed", 8, 0.9)] * 10)
    sweep_cell(tmp_path, {**base, "alpha_d": 0.3}, [("completed", 8, 0.9)])  # not in Table I
    out, _ = run([tmp_path, "--no-hparams", "--compare", "isit23-table1"], capsys)
    rows = by_header(md_rows(out, "Compared with isit23-table1"))
    assert [(r["alpha_d"], r["metric"], r["measured [95% CI]"], r["n"], r["published"],
             r["published seeds"], r["inside 95% CI"]) for r in rows] == [
        ("0.5", "success", ci_text(8, 10), "10", "80.0", "200", "yes"),
        ("1", "success", ci_text(10, 10), "10", "47.0", "200", "no"),
    ]
    assert "isit23-table1: 2 of 24 published cells measured" in out


def test_compare_in_pivot_cells_and_default_metric(tmp_path, capsys):
    base = {"loss": "alpha", "alpha_g": 1.0}
    sweep_cell(tmp_path, {**base, "alpha_d": 0.5}, [("completed", 0 if i < 1 else 8, 0.9)
                                                     for i in range(10)])
    # Table II is failure %: the pivot picks that metric without --metric.
    out, _ = run([tmp_path, "--no-hparams", "--compare", "isit23-table2", "--pivot",
                  "alpha_d,alpha_g"], capsys)
    rows = md_rows(out, "failure % by alpha_d (rows) x alpha_g (columns); published isit23-table2")
    assert rows[1] == ["0.5", "10.0 (ref 5, in)"]


def test_compare_maps_ns_lsgan_and_checks_the_dataset(tmp_path, capsys):
    sweep_cell(tmp_path / "ns", {"loss": "alpha", "alpha_d": 0.5, "alpha_g": 0.8,
                                 "loss.generator": "ns"}, [("completed", 8, 0.9)] * 2,
               generator="ns")
    sweep_cell(tmp_path / "ls", {"loss": "lsgan"}, [("completed", 8, 0.9)] * 3, loss="lsgan",
               generator="ns")
    sweep_cell(tmp_path / "grid", {"loss": "alpha", "alpha_d": 0.6, "alpha_g": 0.8,
                                   "dataset": "grid", "loss.generator": "ns"},
               [("completed", 8, 0.9)], generator="ns", dataset="gan_bench.data.toy.grid")
    out, _ = run([tmp_path, "--no-hparams", "--compare", "isit23-table3,isit23-lsgan"], capsys)
    t3 = by_header(md_rows(out, "Compared with isit23-table3"))
    assert [(r["alpha_d"], r["published"]) for r in t3] == [("0.5", "35.0")]  # grid run left out
    ls = by_header(md_rows(out, "Compared with isit23-lsgan"))
    # 3 of 3: Wilson lower bound 43.9 > 32.5.
    assert [(r["loss"], r["measured [95% CI]"], r["published"], r["inside 95% CI"]) for r in ls] \
        == [("lsgan", ci_text(3, 3), "32.5", "no")]


def test_compare_stacked_mnist_mean_modes_with_t_interval(tmp_path, capsys):
    from scipy.stats import t

    modes = [580.0, 590.0, 600.0]  # Table VI, ns (1.0, 1.2): published 586
    for seed, m in enumerate(modes):
        write_run(tmp_path / f"s{seed}", {"loss": "alpha", "alpha_d": 1.0, "alpha_g": 1.2,
                                          "dataset": "stacked_mnist"}, seed,
                  result("completed", seed, {"smnist_modes25k": m}, {"smnist_modes25k": "smnist:1"}),
                  generator="ns", dataset="gan_bench.data.images.stacked_mnist")
    out, _ = run([tmp_path, "--no-hparams", "--compare", "isit23-table6"], capsys)
    assert by_header(md_rows(out, "Runs by group"))[0]["smnist_modes25k mean ± std"] == "590.00 ± 10.00"
    half = t.ppf(0.975, 2) * statistics.stdev(modes) / math.sqrt(3)
    row = by_header(md_rows(out, "Compared with isit23-table6"))[0]
    assert (row["metric"], row["measured [95% CI]"], row["published"], row["inside 95% CI"]) == \
        ("modes", f"590.0 [{590 - half:.1f}, {590 + half:.1f}]", "586.0", "yes")
    # The documented command (docs/reproduce.md): --pivot lays out the table's metric, modes, which
    # the runs report as smnist_modes25k.
    out, _ = run([tmp_path, "--no-hparams", "--compare", "isit23-table6", "--pivot", "alpha_d,alpha_g"], capsys)
    rows = md_rows(out, "modes by alpha_d (rows) x alpha_g (columns); published isit23-table6")
    assert rows[1] == ["1", "590.0 (ref 586, in)"]


def test_reference_csvs_ship_as_package_data_and_every_source_has_a_name():
    from gan_bench.reporting.reference import COMPARISONS, load

    ref = resources.files("gan_bench").joinpath("reference")
    for fname in ("isit23_ring.csv", "isit23_stacked_mnist.csv", "r3gan_stacked_mnist.csv"):
        sources = {r["source"] for r in csv.DictReader(io.StringIO(ref.joinpath(fname).read_text()))}
        assert sources == {s for f, s, _, _ in COMPARISONS.values() if f == fname}
    assert len(load("isit23-table3").rows) == 48
    assert {r.metric for r in load("isit23-fig2b").rows} == {"success", "failure"}
    assert load("isit23-table6").rows[0].value == 502


# --- image runs -------------------------------------------------------------------------------

def test_image_runs_report_fid_mean_median_and_collapse(tmp_path, capsys):
    fids = [40.0, 60.0, 150.0]
    for seed, fid in enumerate(fids):
        write_run(tmp_path / f"s{seed}", {"dataset": "cifar10", "loss": "bce"}, seed,
                  result("completed", seed, {"fid10k_train": fid}, {"fid10k_train": "fid:abc"}),
                  loss="bce", dataset="gan_bench.data.images.cifar10")
    write_run(tmp_path / "s3", {"dataset": "cifar10", "loss": "bce"}, 3,
              result("diverged", 3), loss="bce", dataset="gan_bench.data.images.cifar10")
    out, _ = run([tmp_path, "--no-hparams"], capsys)
    row = by_header(md_rows(out, "Runs by group"))[0]
    assert "success % [95% CI]" not in row
    assert row["fid10k_train mean ± std"] == f"{statistics.fmean(fids):.2f} ± {statistics.stdev(fids):.2f}"
    assert row["fid10k_train median"] == "60.00"
    assert row["fid10k_train > 100 % [95% CI]"] == ci_text(2, 4)  # 150 and the diverged seed
    out, _ = run([tmp_path, "--no-hparams", "--collapse-fid", "50"], capsys)
    assert by_header(md_rows(out, "Runs by group"))[0]["fid10k_train > 50 % [95% CI]"] == ci_text(3, 4)


# --- TensorBoard HParams ----------------------------------------------------------------------

def test_hparams_sessions_written_one_per_group(sweep, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    for _ in range(2):  # a rerun replaces the sessions instead of adding duplicates
        run([sweep], capsys)
    sessions = sorted(p for p in (sweep / "hparams").iterdir() if p.is_dir())
    assert [p.name for p in sessions] == ["000_alpha_d=0.5,alpha_g=1,loss=alpha",
                                          "001_alpha_d=1,alpha_g=1,loss=alpha"]
    acc = EventAccumulator(str(sessions[0])).Reload()
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert start.hparams["alpha_d"].number_value == 0.5
    assert start.hparams["loss"].string_value == "alpha"
    assert acc.Scalars("report/success_pct")[0].value == pytest.approx(80.0)
    assert acc.Scalars("report/n")[0].value == 10


def test_hparams_refuses_a_folder_it_did_not_write(sweep, capsys):
    (sweep / "hparams").mkdir()
    (sweep / "hparams" / "mine.txt").write_text("x")
    with pytest.raises(UserError, match="not written by gan-bench report"):
        main([str(sweep)])


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["{tmp}/nope"], ["'{tmp}/nope' is not a directory", "pass a run directory"]),
    (["{tmp}"], ["no run directories under {tmp}", ".hydra/ or result.json"]),
    (["{sweep}", "--compare", "isit99-table1"], ["unknown --compare 'isit99-table1'",
                                                  "isit23-table1", "isit23-fig2b"]),
    (["{sweep}", "--pivot", "alpha_d"], ["--pivot needs two different keys ROW,COL"]),
    (["{sweep}", "--pivot", "lr,beta"], ["no group has both keys"]),
    (["{sweep}", "--pivot", "alpha_d,alpha_g", "--metric", "fid"], ["no run reports metric 'fid'",
                                                                     "success"]),
    (["{sweep}", "--metric", "hq"], ["--metric chooses what --pivot lays out"]),
    (["{sweep}", "--format", "html"], ["invalid choice: 'html'", "--help"]),
])
def test_bad_input_raises_one_line_user_error(tmp_path, sweep, argv, words):
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [a.format(tmp=empty, sweep=sweep) for a in argv]
    with pytest.raises(UserError) as e:
        main(argv)
    msg = str(e.value)
    assert "\n" not in msg
    assert all(w.format(tmp=empty) in msg for w in words), msg


# --- every metric a column; --metrics ------------------------------------------------------------

def image_sweep(root):
    """Three completed CIFAR-10 seeds with the trainer's final image metrics, one diverged, and one
    with a non-number recorded (a metric written as text is no column)."""
    per_seed = []
    for seed in range(3):
        m = {"fid50k_train": 40.0 + 10 * seed, "kid50k_train": 0.0031 + 0.001 * seed, "is50k": 6.1 + seed,
             "is50k_std": 0.05 * (seed + 1), "prdc10k_train_precision": 0.6 + 0.1 * seed,
             "prdc10k_train_recall": 0.3 + 0.05 * seed, "prdc10k_train_density": 0.9, "prdc10k_train_coverage": 0.5,
             "fid_logits_nonstandard10k_heldout20": 7.5 * (seed + 1), "note": "text"}
        per_seed.append(m)
        write_run(root / f"s{seed}", {"dataset": "cifar10", "loss": "bce"}, seed,
                  result("completed", seed, m, {k: "img:1" for k in m}), loss="bce",
                  dataset="gan_bench.data.images.cifar10")
    write_run(root / "s3", {"dataset": "cifar10", "loss": "bce"}, 3, result("diverged", 3), loss="bce",
              dataset="gan_bench.data.images.cifar10")
    return per_seed


def pm(values, d):
    return f"{statistics.fmean(values):.{d}f} ± {statistics.stdev(values):.{d}f}"


def test_every_image_metric_gets_a_mean_std_column_in_computed_order(tmp_path, capsys):
    seeds = image_sweep(tmp_path)
    out, _ = run([tmp_path, "--no-hparams"], capsys)
    head, row = md_rows(out, "Runs by group")[0], by_header(md_rows(out, "Runs by group"))[0]
    metric_cols = [h for h in head if "mean ± std" in h]
    assert metric_cols == [f"{k} mean ± std" for k in seeds[0] if k != "note"]  # result.json's order
    col = lambda k: [s[k] for s in seeds]  # noqa: E731
    assert row["kid50k_train mean ± std"] == pm(col("kid50k_train"), 5)  # 3 significant digits of 0.0051
    assert row["is50k mean ± std"] == pm(col("is50k"), 3)
    assert row["is50k_std mean ± std"] == pm(col("is50k_std"), 3)
    assert row["prdc10k_train_precision mean ± std"] == pm(col("prdc10k_train_precision"), 3)
    assert row["prdc10k_train_density mean ± std"] == "0.900 ± 0.000"
    assert row["fid50k_train mean ± std"] == pm(col("fid50k_train"), 2)
    # FID variants keep their median and collapse rate (a diverged seed counts as collapsed).
    assert row["fid50k_train median"] == "50.00"
    assert row["fid_logits_nonstandard10k_heldout20 mean ± std"] == pm(col("fid_logits_nonstandard10k_heldout20"), 2)
    assert row["fid_logits_nonstandard10k_heldout20 > 100 % [95% CI]"] == ci_text(1, 4)
    assert not any(h.startswith("note") for h in head)
    assert (row["n"], row["completed"], row["diverged"]) == ("4", "3", "1")


def test_ensemble_replica_records_give_every_toy_metric(tmp_path, capsys):
    reps, kls = [], [0.1, 0.3, 0.2]
    for i, kl in enumerate(kls):
        m, _ = toy(8, 0.9)
        reps.append({"seed": i, "status": "completed", "step": 100, "diverged_at": None, "metrics": {**m, "kl": kl}})
    reps.append({"seed": 3, "status": "diverged", "step": 40, "diverged_at": 40, "metrics": {"kl": 99.0}})
    res = result("completed", 0, metrics={"kl": 0.2}, fingerprints=toy(8, 0.9)[1], replicas=reps)
    write_run(tmp_path / "ens", {"alpha_d": 0.5, "train.ensemble": 4}, 0, res, ensemble=4)
    out, _ = run([tmp_path, "--no-hparams"], capsys)
    row = by_header(md_rows(out, "Runs by group"))[0]
    assert row["kl mean ± std"] == pm(kls, 3)  # completed replicas only: not the diverged one's 99
    assert row["tv mean ± std"] == "0.0200 ± 0.0000" and row["js mean ± std"] == "0.00100 ± 0.00000"
    assert row["success % [95% CI]"] == ci_text(3, 4)


def test_metrics_option_chooses_and_orders_columns(tmp_path, capsys):
    seeds = image_sweep(tmp_path)
    out, _ = run([tmp_path, "--no-hparams", "--metrics", "is50k,prdc10k_train,kid50k_train"], capsys)
    head = md_rows(out, "Runs by group")[0]
    assert head[head.index("incomplete") + 1:] == [
        "is50k mean ± std", "prdc10k_train_precision mean ± std", "prdc10k_train_recall mean ± std",
        "prdc10k_train_density mean ± std", "prdc10k_train_coverage mean ± std", "kid50k_train mean ± std"]
    out, _ = run([tmp_path, "--no-hparams", "--format", "csv", "--metrics", "fid50k_train,is50k_std"], capsys)
    row = next(csv.DictReader(io.StringIO(out)))
    assert list(row)[-8:] == ["fid50k_train_mean", "fid50k_train_std", "fid50k_train_median",
                              "fid50k_train_collapse_pct", "fid50k_train_collapse_lo", "fid50k_train_collapse_hi",
                              "is50k_std_mean", "is50k_std_std"]
    assert float(row["fid50k_train_std"]) == pytest.approx(statistics.stdev([s["fid50k_train"] for s in seeds]))
    assert "kid50k_train_mean" not in row


def test_metrics_option_on_toy_runs_keeps_wilson_for_rates_only(sweep, capsys):
    out, _ = run([sweep, "--no-hparams", "--metrics", "failure,kl"], capsys)
    a = by_header(md_rows(out, "Runs by group"))[0]
    assert a["failure % [95% CI]"] == ci_text(1, 10) and a["kl mean ± std"] == "0.0100 ± 0.0000"
    assert "success % [95% CI]" not in a and "hq mean ± std" not in a


def test_hparams_carry_every_chosen_metric(sweep, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run([sweep], capsys)
    acc = EventAccumulator(str(sorted((sweep / "hparams").glob("000_*"))[0])).Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"report/success_pct", "report/failure_pct", "report/hq_mean", "report/modes_mean", "report/kl_mean",
            "report/tv_mean"} <= tags
    assert acc.Scalars("report/kl_mean")[0].value == pytest.approx(0.01)
    run([sweep, "--metrics", "hq"], capsys)
    acc = EventAccumulator(str(sorted((sweep / "hparams").glob("000_*"))[0])).Reload()
    assert {t for t in acc.Tags()["scalars"] if t.endswith(("_pct", "_mean"))} == {"report/hq_mean"}


@pytest.mark.parametrize("value, words", [
    ("fid10k_train", ["no run reports metric 'fid10k_train'", "success, failure, hq, modes, kl"]),
    (",", ["--metrics needs at least one metric name"]),
])
def test_metrics_option_bad_names(sweep, value, words):
    with pytest.raises(UserError) as e:
        main([str(sweep), "--no-hparams", "--metrics", value])
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)
