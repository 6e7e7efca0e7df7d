"""`gan-bench report --reach / --curves` on fake run directories with known metrics.jsonl curves.

Expected numbers are computed here from the raw values (scipy.stats.t for the intervals),
independently of gan_bench.reporting.
"""

import csv
import io
import itertools
import json
import math
import statistics
import struct

import numpy as np
import pytest
import test_report
import yaml
from scipy.stats import t as student_t

from gan_bench.errors import UserError
from gan_bench.report import main
from gan_bench.reporting import curves, history
from gan_bench.reporting.groups import group_runs
from gan_bench.reporting.runs import load_runs

STEPS = (500, 1000, 1500, 2000)


def write_run(d, overrides, seed, status="completed", lines=(), ensemble=1, replicas=None, diverged_at=None):
    """A run directory as the trainer leaves it. status None: no result.json (still going).

    lines: metrics.jsonl lines, dicts (written as JSON) or raw strings (written as they are)."""
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump([f"{k}={v}" for k, v in overrides.items()] + [f"seed={seed}"]))
    config = {"seed": seed, "dataset": {"_target_": "gan_bench.data.toy.ring"}, "train": {"ensemble": ensemble}}
    (d / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    if status is not None:
        res = {"status": status, "seed": seed, "diverged_at": diverged_at, "metrics": {}, "fingerprints": {},
               "replicas": replicas}
        (d / "result.json").write_text(json.dumps(res))
    (d / "metrics.jsonl").write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))


def curve(values, steps=STEPS, key="w1"):
    return [{"step": s, key: v} for s, v in zip(steps, values)]


# Group loss=a: first steps with w1 <= 0.1 are 1500, 1000, 2000 (0.1 itself: bounds are inclusive), never.
A = {
    0: curve([0.5, 0.2, 0.08, 0.05]) + [{"step": 2500, "w1": 0.04}],  # only seed at step 2500
    # step 1000 evaluated twice (a resumed run): the last line wins, so it reaches at 1000, not 1500
    1: curve([0.4, 0.5, 0.07, 0.06])[:2] + [{"step": 1000, "w1": 0.09}] + curve([0.4, 0.5, 0.07, 0.06])[2:],
    # malformed lines (not JSON, no step, cut short by a kill) are skipped; the stepless 0.01 must not count
    2: ["not json", json.dumps({"w1": 0.01}), *map(json.dumps, curve([0.3, 0.2, 0.15, 0.1])), '{"step": 25'],
    # an early 0.01 at step 500 that a later line for the same step overrides: never reaches
    3: [{"step": 500, "w1": 0.01}] + curve([0.6, 0.5, 0.4, 0.3]),
}
A_REACH = [1500, 1000, 2000]
# Group loss=b: one reaches at 500; seed 1 got to 0.08 at step 1000, then diverged at 1200 (counted
# as never; its finite value at 1500 was measured on the broken model and is dropped); two never.
B = {
    0: curve([0.05, 0.04, 0.03, 0.02]),
    1: curve([0.3, 0.08, 5.0]),
    2: curve([0.9, 0.8, 0.7, 0.6]),
    3: curve([0.9, 0.9, 0.9, "nan"]),
}


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "sweep"
    for seed, lines in A.items():
        write_run(root / f"a{seed}", {"loss": "a"}, seed, lines=lines)
    # a failed and an incomplete seed: in the curves, left out of the reach counts
    write_run(root / "a4", {"loss": "a"}, 4, "failed", lines=curve([0.05]))
    write_run(root / "a5", {"loss": "a"}, 5, None, lines=curve([0.05, 0.05]))
    for seed, lines in B.items():
        diverged = seed == 1
        write_run(root / f"b{seed}", {"loss": "b"}, seed, "diverged" if diverged else "completed",
                  lines=lines, diverged_at=1200 if diverged else None)
    return root


def run(argv, capsys):
    assert main([str(a) for a in argv] + ["--no-hparams"]) == 0
    out = capsys.readouterr()
    return out.out, out.err


def md_rows(text, title):
    """The table under `## title...` as one dict per row, keyed by the header."""
    header, *rows = test_report.md_rows(text, title)
    return [dict(zip(header, r)) for r in rows]


def t_interval(xs):
    m = statistics.fmean(xs)
    half = student_t.ppf(0.975, len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    return m, m - half, m + half


# --- --reach ----------------------------------------------------------------------------------

def test_reach_table_counts_steps_and_intervals(sweep, capsys):
    out, _ = run([sweep, "--reach", "w1<=0.1"], capsys)
    a, b = md_rows(out, "Steps to reach w1 <= 0.1")
    m, lo, hi = t_interval(A_REACH)
    assert a == {"loss": "a", "reached": "3/4", "never (diverged)": "1 (0)",
                 "mean step [95% CI]": f"{m:.0f} [{lo:.0f}, {hi:.0f}]",
                 "median step": "1500", "median, never = ∞": "1750"}
    # 3 of 4 never: the median over all seeds is beyond the last evaluated step
    assert b == {"loss": "b", "reached": "1/4", "never (diverged)": "3 (1)", "mean step [95% CI]": "500",
                 "median step": "500", "median, never = ∞": "> 2000"}
    assert "1 diverged seed(s) counted as never reaching it" in out
    assert "1 of them had reached it before diverging" in out
    assert "2 failed or incomplete seed(s) left out" in out
    assert "a2/metrics.jsonl: 3 malformed line(s) skipped (first: line 1" in out


def test_reach_csv_fields_and_greater_or_equal_direction(sweep, capsys):
    out, _ = run([sweep, "--reach", "w1<=0.1", "--reach", "w1>=0.5", "--format", "csv"], capsys)
    sections = [list(csv.DictReader(io.StringIO(s))) for s in out.strip().split("\n\n")]
    le, ge = sections[1], sections[2]
    assert [r["condition"] for r in le] == ["w1 <= 0.1"] * 2
    m, lo, hi = t_interval(A_REACH)
    assert float(le[0]["mean_step"]) == pytest.approx(m)
    assert (float(le[0]["mean_step_lo"]), float(le[0]["mean_step_hi"])) == pytest.approx((lo, hi), rel=1e-5)
    assert (le[1]["reached"], le[1]["n"], le[1]["never"], le[1]["never_diverged"]) == ("1", "4", "3", "1")
    assert (le[1]["median_all"], le[1]["last_step"]) == ("inf", "2000")
    # w1 >= 0.5: group a seed 0 at 500 (0.5: inclusive), seed 3 at 500 (its 0.6 line wins over 0.01),
    # seeds 1 and 2 never (seed 1's 0.5 at 1000 was overridden); half never, so the median is ∞.
    # Group b: seeds 2 and 3 at 500, seed 0 never, seed 1 diverged.
    assert [r["condition"] for r in ge] == ["w1 >= 0.5"] * 2
    assert (ge[0]["reached"], ge[0]["n"], ge[0]["median_step"], ge[0]["median_all"]) == ("2", "4", "500.0", "inf")
    assert (ge[1]["reached"], ge[1]["never"], ge[1]["never_diverged"]) == ("2", "2", "1")
    assert (ge[1]["mean_step"], ge[1]["median_all"]) == ("500.0", "inf")  # half never: median ∞


def test_reach_latex_escapes_infinity_and_bounds(sweep, capsys):
    out, _ = run([sweep, "--reach", "w1<=0.1", "--format", "latex"], capsys)
    assert "median, never = $\\infty$" in out
    assert "$>$ 2000" in out


def test_ensemble_replicas_are_seeds_and_diverged_replica_never(tmp_path, capsys):
    lines = []
    for i, values in enumerate([[0.5, 0.09, 0.05, 0.04], [0.2, 0.05, 0.3, 0.3], [0.5, 0.4, 0.3, 0.08]]):
        lines += [{**r, "replica": i, "seed": 10 + i} for r in curve(values)]
    lines.sort(key=lambda r: r["step"])  # the trainer writes all replicas of a step together
    lines.append({"step": 500, "replica": "1", "w1": 0.01})  # a replica that is no index: skipped
    replicas = [{"seed": 10, "status": "completed", "diverged_at": None},
                {"seed": 11, "status": "diverged", "diverged_at": 1300},
                {"seed": 12, "status": "completed", "diverged_at": None}]
    write_run(tmp_path / "ens", {"loss": "a"}, 10, lines=lines, ensemble=3, replicas=replicas)
    out, _ = run([tmp_path, "--reach", "w1<=0.1"], capsys)
    (row,) = md_rows(out, "Steps to reach w1 <= 0.1")
    assert "ens/metrics.jsonl: 1 malformed line(s) skipped (first: line 13" in out
    m, lo, hi = t_interval([1000, 2000])
    assert (row["reached"], row["never (diverged)"]) == ("2/3", "1 (1)")
    assert row["mean step [95% CI]"] == f"{m:.0f} [{lo:.0f}, {hi:.0f}]"

    groups = group_runs(load_runs([str(tmp_path)], []))
    hist = history.load(groups, {"w1"}, [])
    by_replica = {s.replica: history.seed_series(hist, s, "w1") for s in groups[0].seeds}
    assert by_replica[0] == list(zip(STEPS, [0.5, 0.09, 0.05, 0.04]))
    assert by_replica[1] == list(zip(STEPS[:2], [0.2, 0.05]))  # cut at its divergence (1300)
    assert by_replica[2][-1] == (2000, 0.08)


@pytest.mark.parametrize("argv, words", [
    (["--reach", "w1<0.1"], ["--reach needs METRIC<=VALUE or METRIC>=VALUE, got 'w1<0.1'", "single <"]),
    (["--reach", "w1>0.1"], ["got 'w1>0.1'"]),
    (["--reach", "w1==0.1"], ["got 'w1==0.1'"]),
    (["--reach", "<=0.1"], ["got '<=0.1'"]),
    (["--reach", "w1<=abc"], ["'abc' is not a number"]),
    (["--reach", "w1<=nan"], ["'nan' is not a number"]),
    (["--reach", "fid<=3"], ["--reach: no run's metrics.jsonl has metric 'fid'", "choose from w1"]),
    (["--curves", " , "], ["--curves needs metric names"]),
    (["--curves", "w1,kl"], ["--curves: no run's metrics.jsonl has metric 'kl'", "w1"]),
])
def test_bad_specs_raise_one_line_user_error(sweep, argv, words):
    with pytest.raises(UserError) as e:
        main([str(sweep), "--no-hparams", *argv])
    assert "\n" not in str(e.value)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_bad_spec_fails_before_any_run_is_read(tmp_path):
    # An empty directory would fail with "no run directories": the spec is checked first.
    with pytest.raises(UserError, match="--reach needs METRIC<=VALUE"):
        main([str(tmp_path), "--reach", "w1<0.1"])


# --- --curves ---------------------------------------------------------------------------------

def exact_bootstrap(xs, level=0.95):
    """The percentile interval of the exact bootstrap distribution of the mean: every one of the
    n^n equally likely resamples enumerated (small n), independent of the Monte Carlo in the code."""
    means = sorted(sum(c) / len(xs) for c in itertools.product(xs, repeat=len(xs)))
    k = len(means)
    return means[int(math.floor((1 - level) / 2 * k))], means[int(math.ceil((1 + level) / 2 * k)) - 1]


def expected_band(per_seed):
    """Mean and bootstrap interval per step from {seed: {step: value}}, computed directly."""
    steps = sorted({s for v in per_seed.values() for s in v})
    out = {}
    for s in steps:
        xs = [v[s] for v in per_seed.values() if s in v]
        if len(xs) == 1:
            out[s] = (xs[0], None, None, 1)
        else:
            out[s] = (sum(xs) / len(xs), *exact_bootstrap(xs), len(xs))
    return out


def check_curve(c, per_seed):
    exp = expected_band(per_seed)
    assert list(c.steps) == list(exp)
    for j, (m, lo, hi, n) in enumerate(exp.values()):
        assert c.n[j] == n and c.mean[j] == pytest.approx(m)
        if lo is None:
            assert math.isnan(c.lo[j]) and math.isnan(c.hi[j])
        else:
            # Monte Carlo (10,000 resamples) against the exact distribution: a fraction of the spread
            assert (c.lo[j], c.hi[j]) == pytest.approx((lo, hi), abs=0.05 * (max(hi - lo, 1e-12)) + 1e-9)


def test_curve_means_and_bands_equal_a_direct_computation(sweep):
    groups = group_runs(load_runs([str(sweep)], []))
    hist = history.load(groups, {"w1"}, [])
    a, b = (curves.group_curve(g, hist, "w1") for g in groups)
    check_curve(a, {
        0: dict(zip(STEPS + (2500,), [0.5, 0.2, 0.08, 0.05, 0.04])),
        1: dict(zip(STEPS, [0.4, 0.09, 0.07, 0.06])),
        2: dict(zip(STEPS, [0.3, 0.2, 0.15, 0.1])),
        3: dict(zip(STEPS, [0.6, 0.5, 0.4, 0.3])),
        4: {500: 0.05},  # failed and incomplete seeds' values are measurements too
        5: {500: 0.05, 1000: 0.05},
    })
    assert (a.seeds, a.diverged, a.dropped) == (6, 0, 0)
    # b: the diverged seed stops before 1200; seed 3's "nan" is dropped, not averaged
    check_curve(b, {0: dict(zip(STEPS, [0.05, 0.04, 0.03, 0.02])), 1: {500: 0.3, 1000: 0.08},
                    2: dict(zip(STEPS, [0.9, 0.8, 0.7, 0.6])), 3: dict(zip(STEPS[:3], [0.9, 0.9, 0.9]))})
    assert (b.seeds, b.diverged, b.dropped) == (4, 1, 1)
    assert not curves.log_scale([a, b])  # 0.02 .. 0.9: under 2 decades


def test_bootstrap_band_stays_within_the_values():
    """Two seeds whose W1 are 0.1 and 9.9: a t-band would reach -60; the bootstrap band is their span,
    and a single value, or identical values, give that value exactly."""
    from gan_bench.reporting.stats import bootstrap_mean

    assert bootstrap_mean([0.1, 9.9]) == (0.1, 9.9)
    lo, hi = bootstrap_mean([0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    assert 0.0 <= lo < 0.5 < hi <= 1.0
    assert bootstrap_mean([0.3, 0.3, 0.3]) == (0.3, 0.3)
    assert bootstrap_mean([2.5]) == (2.5, 2.5)
    assert bootstrap_mean([1.0, 2.0, 3.0, 4.0]) == bootstrap_mean([1.0, 2.0, 3.0, 4.0])  # fixed seed


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_curves_cli_writes_one_png_per_metric(sweep, tmp_path, capsys):
    out_dir = tmp_path / "out"
    # kl spans three decades in group a: a log axis
    for seed, values in enumerate([[1.0, 0.1, 0.01, 0.001], [2.0, 0.2, 0.02, 0.002]]):
        write_run(sweep / f"k{seed}", {"loss": "a"}, 10 + seed, lines=curve(values, key="kl"))
    _, err = run([sweep, "--curves", "w1,kl", "--out", out_dir, "--format", "csv"], capsys)
    for metric in ("w1", "kl"):
        path = out_dir / f"curves_{metric}.png"
        assert f"curves: {path}" in err  # notes go to stderr with csv
        assert png_size(path) == (960, 600) and path.stat().st_size > 20_000
    # The numbers behind each picture, one row per group and step, equal the computed curve.
    import csv
    rows = list(csv.DictReader((out_dir / "curves_w1.csv").open()))
    groups = group_runs(load_runs([str(sweep)], []))
    a = curves.group_curve(groups[0], history.load(groups, {"w1"}, []), "w1")
    first = [r for r in rows if r["group"] == rows[0]["group"]]
    assert [int(r["step"]) for r in first] == list(a.steps)
    assert [float(r["mean"]) for r in first] == pytest.approx(list(a.mean), rel=1e-5)
    assert [int(r["n"]) for r in first] == list(a.n)
    assert "curves w1: 1 non-finite value(s) left out of the means" in err
    assert "curves kl: no finite values for loss=b; not drawn" in err
    groups = group_runs(load_runs([str(sweep)], []))
    hist = history.load(groups, {"kl"}, [])
    assert curves.log_scale([curves.group_curve(groups[0], hist, "kl")])


def test_log_scale_needs_positive_values_over_two_decades():
    def c(values):
        v = np.array(values, dtype=float)
        return curves.Curve(np.arange(len(v)), v, v, v, np.ones(len(v)), 1, 0, 0)

    assert curves.log_scale([c([1.0, 0.5]), c([0.005])])
    assert not curves.log_scale([c([1.0, 0.011])])
    assert not curves.log_scale([c([1.0, 0.0001, -0.1])])
