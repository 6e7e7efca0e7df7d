"""The atlas's statistics against values computed by hand on fixed inputs."""

import math

import numpy as np
import pytest

from gan_bench.atlas import analysis, stats

INF = math.inf


def test_ranks_within_blocks_best_first_ties_shared_diverged_last():
    m = np.array([[0.9, 0.5, 0.5, -INF],
                  [0.1, 0.7, 0.3, 0.2]])
    assert stats.block_ranks(m).tolist() == [[1.0, 2.5, 2.5, 4.0], [4.0, 1.0, 2.0, 3.0]]


def test_friedman_statistic_by_hand():
    # 4 blocks x 3 objectives, no ties. Ranks (1 = best):
    #   [1 2 3], [1 3 2], [1 2 3], [2 1 3]  -> rank sums R = 5, 8, 11
    # chi2 = 12 / (n k (k + 1)) * sum R^2 - 3 n (k + 1) = 12/48 * (25 + 64 + 121) - 48 = 52.5 - 48 = 4.5
    # p = P(chi2 with 2 dof > 4.5) = exp(-4.5 / 2) = 0.105399...
    m = np.array([[3, 2, 1], [3, 1, 2], [3, 2, 1], [2, 3, 1]], dtype=float)
    chi2, p = stats.friedman(m)
    assert chi2 == pytest.approx(4.5)
    assert p == pytest.approx(math.exp(-2.25))


def test_friedman_ranks_diverged_seeds_last():
    # a diverged seed (-inf) ranks as the worst: the same statistic as any value below the others
    m = np.array([[3, 2, -INF], [3, 1, 2], [3, 2, -INF], [2, 3, 1]], dtype=float)
    same = np.where(np.isinf(m), -100.0, m)
    assert stats.friedman(m) == pytest.approx(stats.friedman(same))


def test_sign_test_and_holm_by_hand():
    a = np.array([1, 2, 3, 4, 5, 6, -INF, 0.5])
    b = np.array([0, 0, 0, 0, 0, 0, -INF, 1.0])
    t = stats.sign_test(a, b)
    # 6 wins, 1 loss, 1 tie (both diverged): two-sided binomial p = 2 * (1 + 7) / 2^7 = 0.125
    assert (t.wins, t.losses, t.ties) == (6, 1, 1)
    assert t.p == pytest.approx(16 / 128)
    u = stats.sign_test(b, a)
    assert u.p == pytest.approx(t.p)
    # Holm over p = (0.01, 0.04, 0.03): sorted 0.01*3, max(0.03*2, 0.03), max(0.04*1, 0.06) -> 0.03, 0.06, 0.06
    tests = [stats.SignTest(0, 0, 0, p) for p in (0.01, 0.04, 0.03)]
    stats.holm(tests)
    assert [x.p_holm for x in tests] == pytest.approx([0.03, 0.06, 0.06])


def test_resolution_limits():
    assert stats.smallest_sign_gap(8) == 6  # 2 * 2^-6 = 0.031 < 0.05, 2 * 2^-5 = 0.0625 is not
    assert stats.smallest_sign_gap(5) is None
    assert stats.smallest_sign_gap(24, comparisons=41) == 11  # 2 * 2^-11 < 0.05/41 = 0.00122 < 2 * 2^-10
    # Fisher's exact test, 8/8 against 3/8: p = 2 * C(8,3) C(8,5) / C(16,8)... = 0.026; 8/8 against 4/8: 0.077
    assert stats.smallest_rate_gap(8) == 5


def row(lr, select_scores, eval_scores, direction="max", diverged=()):
    seeds = []
    for i, v in enumerate(list(select_scores) + list(eval_scores)):
        status = "diverged" if i in diverged else "completed"
        seeds.append({"seed": i, "status": status, "score": v, "reach_step": 250 * (i + 1) if v and v > 5 else None,
                      "metrics": {"modes": v, "success": float(v == 8)}})
    return {"cell": f"t.o.lr{lr}", "spec": "x", "task": "t", "tier": "toy", "objective": "o", "overrides": "loss=bce",
            "task_overrides": "dataset=ring", "lr": lr, "seed": 0, "select": len(select_scores),
            "eval": len(eval_scores), "score": "modes", "direction": direction, "metrics": ["success"],
            "reach": "modes >= 8", "seeds": seeds, "wall_seconds": 10.0}


def test_lr_selection_uses_only_the_selection_seeds():
    # lr 1e-3 has the best median on the selection seeds; lr 5e-3 would win on the evaluation seeds
    rows = [row(2e-4, [4, 5, 5, 6], [1, 1]), row(1e-3, [7, 8, 6, 8], [2, 2]), row(5e-3, [8, 0, 0, 8], [8, 8])]
    assert stats.select_lr(rows) == 1e-3
    # diverged selection seeds count as the worst: median of (8, 8, -inf, -inf) is -inf
    rows[1] = row(1e-3, [8, 8, 8, 8], [2, 2], diverged=(2, 3))
    assert stats.select_lr(rows) == 2e-4
    # a min score: the smallest median wins; ties go to the better mean, then the smaller lr
    rows = [row(2e-4, [0.3, 0.3], [1], "min"), row(1e-3, [0.3, 0.3], [1], "min"), row(5e-3, [0.2, 0.9], [1], "min")]
    assert stats.select_lr(rows) == 2e-4


def test_summary_interval_stays_in_range_and_counts():
    s = stats.summarize(row(1e-3, [0], [8, 8, 0, 8, 3, 8, 8, 8], diverged=(3,)), "eval")
    assert s.seeds == list(range(1, 9)) and s.diverged == 1
    assert s.values == [8, 8, 8, 3, 8, 8, 8] and s.successes == 6  # seed 3 (its 0) diverged
    lo, hi = s.interval()
    assert 3 <= lo <= s.mean <= hi <= 8
    # reach steps 500, 750, never, 1250, never, 1750, 2000, 2250: median of 8 with never = inf
    assert s.reached == 6 and s.median_reach == (1750 + 2000) / 2


def test_task_and_tier_ranks_by_hand():
    def rows_for(obj, evals):
        out = []
        for lr in (1e-3, 5e-3):
            r = row(lr, [5, 5], evals if lr == 1e-3 else [0] * len(evals))
            r.update(objective=obj, cell=f"t.{obj}.lr{lr}")
            out.append(r)
        return out
    rows = rows_for("bce-ns", [8, 6, 7]) + rows_for("a", [7, 7, 7]) + rows_for("b", [6, 8, 8])
    t = analysis.analyse_task(rows)
    # ranks per evaluation seed: (8, 7, 6) -> bce 1, a 2, b 3; (6, 7, 8) -> b 1, a 2, bce 3;
    #   (7, 7, 8) -> b 1, bce 2.5, a 2.5
    # means: bce (1 + 3 + 2.5)/3 = 2.1667, a (2 + 2 + 2.5)/3 = 2.1667, b (3 + 1 + 1)/3 = 1.6667
    assert [r.objective for r in t.results] == ["b", "a", "bce-ns"]  # ties by name
    assert [round(r.rank, 4) for r in t.results] == [1.6667, 2.1667, 2.1667]
    tier = analysis.analyse_tier("toy", [t])
    # rank sums 6.5, 6.5, 5: chi2 = 12/36 * (6.5^2 + 6.5^2 + 5^2) - 36 = 0.5; one tie of 2 in one
    # block: correction 1 - (2^3 - 2) / (3 * (3^3 - 3)) = 11/12, so 0.5 * 12/11
    assert tier.friedman[0] == pytest.approx(0.5 * 12 / 11)
    assert tier.tests["b"].wins == 2 and tier.tests["b"].losses == 1
