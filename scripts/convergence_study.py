"""Convergence study for Ding et al.'s Renyi alpha-GAN claim: "for alpha in (0, 1) the gradient is
amplified and training converges faster".

On the 2-D ring (8 modes), it trains, for the same seeds,
  - bce with the saturating generator (the minimax baseline),
  - loss=renyi (the paper's saturating generator) for every alpha in --alphas,
  - loss=alpha loss.generator=saturating (alpha_D = alpha_G = alpha) for every alpha in --alphas,
each configuration as one `train.ensemble=K` run (seeds seed..seed+K-1 batched in one process), and
records per (loss, alpha, seed) the first evaluated step at which all modes are covered (from
metrics.jsonl; None if never), the final modes/hq, and per configuration the gradient norms over
time (TensorBoard scalars grad_norm/g_samples, grad_norm/g, grad_norm/d: the trainer logs these as
means over the replicas of the ensemble, so they are per configuration, not per seed).

It also runs a check that needs no training: for fixed discriminator logits, the ratio of the
generator's gradient magnitude |dV/dt_f| under renyi at alpha to the one at alpha = 1.

    python scripts/convergence_study.py --steps 6000 --seeds 12 --eval-every 200 \
        model.generator.width=64 model.generator.depth=3 model.discriminator.width=64 \
        model.discriminator.depth=3 train.device=cpu

(docs/convergence.md: that run, its table and its reading.)

Writes <out>/table.md (the tables printed) and <out>/results.json (every raw number), and the runs
under <out>/runs/<name>. A finished run is not retrained (the trainer skips it), so an interrupted
study resumes where it stopped when given the same --out.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path

import torch

GRAD_TAGS = ("grad_norm/g_samples", "grad_norm/g", "grad_norm/d")
EXTRA_TAGS = ("loss/d", "loss/g", "D/real", "D/fake", "diag/saturation")
BASELINE = "bce-sat"


# ---------------------------------------------------------------- gradient ratio (no training)

def renyi_fake_grad(real_logits: torch.Tensor, fake_logits: torch.Tensor, alpha: float) -> torch.Tensor:
    """dV/dt_f for the paper's value V (gan_bench's implementation), by autograd, in float64."""
    from gan_bench.losses.renyi import renyi_value

    f = fake_logits.detach().to(torch.float64).requires_grad_(True)
    v = renyi_value(real_logits.detach().to(torch.float64), f, float(alpha))
    (g,) = torch.autograd.grad(v, f)
    return g


def renyi_grad_ratio(real_logits, fake_logits, alpha: float) -> float:
    """|dV_alpha/dt_f| / |dV_1/dt_f| (Euclidean norms over the fake batch) at fixed logits.

    Closed form (beta = 1 - 1/alpha, D = sigmoid(t), S = 1/2 mean D_r^beta + 1/2 mean (1 - D_f)^beta):
    dV_alpha/dt_fj = -(1 - D_fj)^beta D_fj / (2 m_f S), dV_1/dt_fj = -D_fj / (2 m_f), so per sample
    the ratio is (1 - D_fj)^beta / S.
    """
    real_logits, fake_logits = torch.as_tensor(real_logits), torch.as_tensor(fake_logits)
    num = renyi_fake_grad(real_logits, fake_logits, alpha).norm()
    den = renyi_fake_grad(real_logits, fake_logits, 1.0).norm()
    return float(num / den)


def renyi_grad_ratio_closed_form(real_logits, fake_logits, alpha: float) -> float:
    """The same ratio from the closed form above (a cross-check of the autograd one)."""
    tr = torch.as_tensor(real_logits, dtype=torch.float64)
    tf = torch.as_tensor(fake_logits, dtype=torch.float64)
    d_r, d_f = torch.sigmoid(tr), torch.sigmoid(tf)
    beta = 1.0 - 1.0 / alpha
    s = 0.5 * (d_r ** beta).mean() + 0.5 * ((1 - d_f) ** beta).mean()
    return float(((1 - d_f) ** beta * d_f).norm() / (s * d_f.norm()))


def alpha_sat_grad_ratio(fake_logits, alpha: float) -> float:
    """The same ratio for the alpha-loss saturating generator (-mean l_alpha(0, t_f)); per sample it
    is (1 - D_f)^beta, with no normalization by the real term."""
    from gan_bench.losses import make_loss

    def grad(a):
        f = torch.as_tensor(fake_logits, dtype=torch.float64).clone().requires_grad_(True)
        loss = make_loss("alpha", alpha_d=a, alpha_g=a, generator="saturating")
        (g,) = torch.autograd.grad(loss.g_loss(f), f)
        return g.norm()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # region warnings are irrelevant for a gradient at fixed logits
        return float(grad(float(alpha)) / grad(1.0))


def grad_scenarios() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Fixed discriminator states, as (real logits, fake logits)."""
    g = torch.Generator().manual_seed(0)
    full = lambda v: torch.full((256,), float(v), dtype=torch.float64)
    return {
        "D = 1/2 everywhere (t_r = t_f = 0)": (full(0), full(0)),
        "D confident, early training (t_r = +3, t_f = -3)": (full(3), full(-3)),
        "D rejects fakes, unsure on reals (t_r = 0, t_f = -3)": (full(0), full(-3)),
        "D fooled on fakes (t_r = +3, t_f = 0)": (full(3), full(0)),
        "random: t_r ~ N(2, 1), t_f ~ N(-2, 1), 256 each": (
            torch.randn(256, generator=g, dtype=torch.float64) + 2,
            torch.randn(256, generator=g, dtype=torch.float64) - 2),
    }


def gradient_ratio_table(alphas) -> list[dict]:
    rows = []
    for name, (tr, tf) in grad_scenarios().items():
        rows.append({"scenario": name,
                     "renyi": {str(a): renyi_grad_ratio(tr, tf, a) for a in alphas},
                     "renyi_closed_form": {str(a): renyi_grad_ratio_closed_form(tr, tf, a) for a in alphas},
                     "alpha_sat": {str(a): alpha_sat_grad_ratio(tf, a) for a in alphas}})
    return rows


# ---------------------------------------------------------------- runs

def configurations(alphas, losses) -> list[dict]:
    out = []
    if "bce" in losses:
        out.append({"name": BASELINE, "loss": "bce-saturating", "alpha": None,
                    "overrides": ["loss=bce", "loss.generator=saturating"]})
    for fam, label in (("renyi", "renyi"), ("alpha", "alpha-saturating")):
        if fam in losses:
            for a in alphas:
                out.append({"name": f"{fam}-a{a:g}", "loss": label, "alpha": a,
                            "overrides": [f"loss={fam}", "loss.generator=saturating", f"alpha={a:g}"]})
    return out


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose, initialize_config_dir

    from gan_bench.config import CONF_DIR, check_overrides

    check_overrides(overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


def read_metrics(path: Path, base_seed: int) -> dict[int, list[dict]]:
    """metrics.jsonl -> {seed: [records sorted by step]} (a single run has no seed key)."""
    by_seed: dict[int, dict[int, dict]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            by_seed.setdefault(int(r.get("seed", base_seed)), {}).setdefault(int(r["step"]), r)  # first wins
    return {s: [recs[k] for k in sorted(recs)] for s, recs in by_seed.items()}


def read_scalars(tb_dir: Path, tags) -> dict[str, list[list[float]]]:
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={SCALARS: 0})  # 0: keep every point
    acc.Reload()
    have = set(acc.Tags().get("scalars", []))
    out = {}
    for tag in tags:
        if tag in have:
            last = {}
            for e in acc.Scalars(tag):
                last[int(e.step)] = float(e.value)  # a resumed run may log a step twice: keep the last
            out[tag] = [[s, last[s]] for s in sorted(last)]
    return out


def first_step_all_modes(records: list[dict], n_modes: int):
    """The first evaluated step at which every mode is covered; None if never."""
    return next((r["step"] for r in records if r.get("modes") == n_modes), None)


def window_median(series, lo: float, hi: float):
    """Median of the values logged at steps in (lo, hi]; None if none."""
    vals = [v for s, v in series if lo < s <= hi and math.isfinite(v)]
    return statistics.median(vals) if vals else None


def run_config(conf: dict, args, run_dir: Path) -> dict:
    from gan_bench.train import train

    K, steps = args.seeds, args.steps
    log_every = args.log_every or max(1, steps // 50)
    # The study's optimizer and scoring, stated so that the quick-start defaults (Adam 1e-3, betas
    # 0.5, EMA of G: conf/) do not move the figures in docs/convergence.md; overrides still win.
    overrides = ["optim.betas=[0.9,0.999]", "train.ema=0", *conf["overrides"], f"seed={args.seed}",
                 f"train.ensemble={K}", f"train.steps={steps}",
                 f"train.eval_every={args.eval_every}", f"train.log_every={log_every}",
                 f"train.ckpt_every={steps}", f"eval.n_samples={args.eval_samples}", "train.progress=false"]
    overrides += [f"optim.lr_d={args.lr:g}", f"optim.lr_g={args.lr:g}"]
    overrides += [*args.override, f"paths.run_dir={run_dir}"]
    cfg = compose(overrides)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(cfg)
    wall = time.perf_counter() - t0
    n_modes = int(cfg.dataset.n_modes)
    seeds = [int(cfg.seed) + i for i in range(K)]

    metrics = read_metrics(run_dir / "metrics.jsonl", int(cfg.seed))
    reps = result["replicas"] or [{"seed": int(cfg.seed), "status": result["status"],
                                   "diverged_at": result["diverged_at"], "metrics": result["metrics"]}]
    per_seed = []
    for s, rep in zip(seeds, reps):
        recs = metrics.get(s, [])
        first = first_step_all_modes(recs, n_modes)
        final = recs[-1] if recs else rep["metrics"]
        per_seed.append({"seed": s, "status": rep["status"], "diverged_at": rep["diverged_at"],
                         "steps_to_all_modes": first, "final_step": final.get("step"),
                         "final_modes": final.get("modes"), "final_hq": final.get("hq"),
                         "modes_curve": [[r["step"], r.get("modes")] for r in recs],
                         "hq_curve": [[r["step"], r.get("hq")] for r in recs]})
    scalars = read_scalars(run_dir / "tb", GRAD_TAGS + EXTRA_TAGS)
    early_hi = max(math.ceil(0.1 * steps), log_every)  # at least the first log tick
    summary = {}
    for tag in GRAD_TAGS:
        series = scalars.get(tag, [])
        summary[tag] = {"early": window_median(series, 0, early_hi),
                        "late": window_median(series, steps - early_hi, steps)}
    # The orders the run actually used (passthrough overrides such as alpha_g=1 may split them).
    orders = {"alpha_d": float(cfg.loss.alpha_d), "alpha_g": float(cfg.loss.alpha_g)} \
        if cfg.loss.name == "alpha" else {"alpha": float(cfg.loss.alpha)} if cfg.loss.name == "renyi" else {}
    return {**{k: conf[k] for k in ("name", "loss", "alpha")}, "orders": orders, "overrides": overrides, "K": K,
            "n_modes": n_modes, "status": result["status"], "wall_seconds": round(wall, 1),
            "train_wall_seconds": result["wall_seconds"],  # the trainer's own, kept when a finished run is skipped
            "skipped": bool(result.get("skipped")), "warnings": sorted({str(w.message) for w in caught}),
            "grad_windows": {"early": [0, early_hi], "late": [steps - early_hi, steps]},
            "grad_summary": summary, "scalars": scalars, "per_seed": per_seed}


# ---------------------------------------------------------------- summary and tables

def _inf(x):
    return math.inf if x is None else x


def _mean(values):
    vals = [v for v in values if isinstance(v, (int, float))]
    return statistics.fmean(vals) if vals else math.nan


def _alpha_label(row: dict) -> str:
    o = row.get("orders", {})
    if "alpha_d" in o and o["alpha_d"] != o["alpha_g"]:
        return f"α_D = {o['alpha_d']:g}, α_G = {o['alpha_g']:g}"
    return _fmt(row["alpha"])


def summarize(run: dict, baseline: dict | None, steps: int) -> dict:
    ps = run["per_seed"]
    t = [_inf(p["steps_to_all_modes"]) for p in ps]
    med = statistics.median(t) if t else math.inf
    row = {"name": run["name"], "loss": run["loss"], "alpha": run["alpha"], "orders": run.get("orders", {}),
           "seeds": len(ps),
           "reached": sum(math.isfinite(x) for x in t),
           "pct_reached": 100.0 * sum(math.isfinite(x) for x in t) / max(len(t), 1),
           "median_steps_to_all_modes": None if math.isinf(med) else med,
           "diverged": sum(p["status"] == "diverged" for p in ps),
           "final_modes_mean": _mean(p["final_modes"] for p in ps),
           "final_hq_mean": _mean(p["final_hq"] for p in ps),
           "g_samples_early": run["grad_summary"]["grad_norm/g_samples"]["early"],
           "g_samples_late": run["grad_summary"]["grad_norm/g_samples"]["late"],
           "vs_baseline": None}
    if baseline is not None and baseline is not run:
        base = {p["seed"]: _inf(p["steps_to_all_modes"]) for p in baseline["per_seed"]}
        pairs = [(_inf(p["steps_to_all_modes"]), base[p["seed"]]) for p in ps if p["seed"] in base]
        faster, slower = sum(a < b for a, b in pairs), sum(a > b for a, b in pairs)
        row["vs_baseline"] = {"faster": faster, "tie": len(pairs) - faster - slower, "slower": slower,
                              "sign_test_p": sign_test_p(faster, slower)}
    return row


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign test of wins vs losses (ties dropped): P(as lopsided | fair coin)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def _fmt(x, digits=3):
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def markdown(rows: list[dict], runs: list[dict], ratios: list[dict], alphas, steps: int) -> str:
    lines = [f"| loss | α | seeds | % seeds reaching all modes | median steps to all modes | "
             f"faster/tie/slower vs {BASELINE} (sign-test p) | diverged | final modes (mean) | hq (mean) | "
             f"grad_norm/g_samples early | late |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        med = r["median_steps_to_all_modes"]
        vs = r["vs_baseline"]
        lines.append(" | ".join([
            f"| {r['loss']}", _alpha_label(r), str(r["seeds"]),
            f"{r['pct_reached']:.0f}% ({r['reached']}/{r['seeds']})",
            f"> {steps}" if med is None else f"{med:g}",
            "—" if vs is None else f"{vs['faster']}/{vs['tie']}/{vs['slower']} ({vs['sign_test_p']:.2g})",
            str(r["diverged"]), f"{r['final_modes_mean']:.2f}", f"{r['final_hq_mean']:.3f}",
            _fmt(r["g_samples_early"]), _fmt(r["g_samples_late"]) + " |"]))
    lines += ["", "Steps to all modes per seed (first evaluated step; — = never):", ""]
    seeds = [p["seed"] for p in runs[0]["per_seed"]] if runs else []
    lines.append("| run | " + " | ".join(f"seed {s}" for s in seeds) + " |")
    lines.append("|---|" + "---|" * len(seeds))
    for run in runs:
        lines.append(f"| {run['name']} | " + " | ".join(_fmt(p["steps_to_all_modes"]) for p in run["per_seed"]) + " |")
    lines += ["", "Generator gradient ratio at fixed logits, |dV_α/dt_f| / |dV_1/dt_f| "
              "(renyi; in brackets the alpha-loss saturating generator's ratio):", ""]
    lines.append("| discriminator state | " + " | ".join(f"α = {a:g}" for a in alphas) + " |")
    lines.append("|---|" + "---|" * len(alphas))
    for r in ratios:
        cells = [f"{r['renyi'][str(a)]:.3f} ({r['alpha_sat'][str(a)]:.3f})" for a in alphas]
        lines.append(f"| {r['scenario']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000, help="generator steps per run (default 2000)")
    ap.add_argument("--seeds", type=int, default=4, help="K: seeds seed..seed+K-1, one ensemble run (default 4)")
    ap.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.2, 0.5, 1.0, 2.0])
    ap.add_argument("--losses", nargs="+", default=["bce", "renyi", "alpha"], choices=["bce", "renyi", "alpha"],
                    help="families to run (default all three)")
    ap.add_argument("--eval-every", type=int, default=100, help="steps between evaluations (default 100)")
    ap.add_argument("--eval-samples", type=int, default=5000, help="test latents per evaluation (default 5000)")
    ap.add_argument("--log-every", type=int, default=None, help="steps between scalar logs (default steps/50)")
    ap.add_argument("--lr", type=float, default=1e-4,
                    help="sets optim.lr_d and optim.lr_g (default 1e-4, the ISIT'23 ring's)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: small MLPs on a shared CPU run far faster on one thread)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default outputs/convergence/<timestamp>)")
    ap.add_argument("override", nargs="*", help="extra Hydra overrides, applied last (e.g. model.generator.width=64)")
    args = ap.parse_args(argv)
    if args.steps <= 0 or args.seeds <= 0 or args.eval_every <= 0 or args.eval_samples <= 0:
        ap.error("--steps, --seeds, --eval-every and --eval-samples must be positive")
    if any(not a > 0 or math.isinf(a) for a in args.alphas):
        ap.error("--alphas must be finite and > 0 (loss=renyi needs a finite alpha)")
    return args


def main(argv=None) -> dict:
    from gan_bench.config import ROOT

    args = parse_args(sys.argv[1:] if argv is None else argv)
    out = args.out or ROOT / "outputs" / "convergence" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    threads_before = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    runs = []
    try:
        for conf in configurations(args.alphas, args.losses):
            print(f"[convergence] {conf['name']} ...", file=sys.stderr, flush=True)
            run = run_config(conf, args, out / "runs" / conf["name"])
            print(f"[convergence] {conf['name']}: {run['wall_seconds']:.0f}s", file=sys.stderr, flush=True)
            runs.append(run)
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads_before)  # main() may be called in-process (tests)
    baseline = next((r for r in runs if r["name"] == BASELINE), None)
    rows = [summarize(r, baseline, args.steps) for r in runs]
    ratios = gradient_ratio_table(args.alphas)
    table = markdown(rows, runs, ratios, args.alphas, args.steps)
    result = {"argv": list(sys.argv[1:] if argv is None else argv), "args": {k: (str(v) if isinstance(v, Path) else v)
                                                                              for k, v in vars(args).items()},
              "torch_threads": threads, "wall_seconds": round(time.perf_counter() - t0, 1),
              "table": rows, "gradient_ratios": ratios, "runs": runs}
    command = " ".join(["python scripts/convergence_study.py", *result["argv"]])
    (out / "table.md").write_text(f"Command: `{command}` ({result['wall_seconds']:.0f} s wall, "
                                  f"{threads} torch thread(s))\n\n" + table)
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str))
    print(table)
    print(f"[convergence] wrote {out / 'table.md'} and {out / 'results.json'} "
          f"({result['wall_seconds']:.0f}s)", file=sys.stderr)
    return result


if __name__ == "__main__":
    from gan_bench.errors import UserError

    try:
        main()
    except UserError as e:  # a bad override: one line, as gan-bench itself reports it
        sys.exit(f"error: {e}")
