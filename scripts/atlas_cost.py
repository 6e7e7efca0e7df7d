"""What one cell of the objective atlas costs (docs/atlas.md): for each task, the cell of objective
bce-ns at the task's middle learning rate, estimated two ways, printed as one markdown table.

1. CPU, measured: the real trainer runs the cell's overrides for a few steps on this machine
   (`gan-bench train <cell overrides> train.steps=N train.epochs=null ...`, the whole K-seed
   ensemble), and seconds per generator step (result.json's wall_seconds, less the trainer's own
   timing of its end-of-run evaluation, over its step) times the cell's generator steps gives CPU
   hours of training per cell. The task's evaluations are timed too when they are cheap enough and
   what they need is already here (the MNIST classifier for fd_mnist / mnist_classes /
   smnist_modes); otherwise the table says they are not included.
2. GPU, from FLOPs: torch.utils.flop_counter counts one forward pass of the task's generator and
   discriminator (one replica, batch = train.batch_size); one training step of one replica is
   n_critic x [G forward + 3 x (D forward on real + D forward on fake)] + 3 x (G forward + D forward)
   (forward + backward ~ 3 x forward), times the cell's steps and K seeds, divided by an assumed
   sustained throughput. An estimate, not a measurement.

    OMP_NUM_THREADS=1 python scripts/atlas_cost.py [--tasks mnist stacked_mnist cifar10] [--steps N]
        [--data DIR] [--cache-root DIR] [--classifier PATH] [--no-cpu]

Data: MNIST's raw files under --data (default $GAN_BENCH_DATA, else <repo>/data) are the
source of dataset=mnist and dataset=stacked_mnist (both built into gan-bench's cache on first use;
no `gan-bench prepare` needed). The caches go under --cache-root (default: a temporary directory,
deleted afterwards), so the source directory is only read. CIFAR-10 is stood in for by a folder of
256 random 32x32 RGB PNGs (dataset=folder dataset.resolution=32): the same network and batch, and
the cost of a step does not depend on the pixels.
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("mnist", "stacked_mnist", "cifar10")
OBJECTIVE = "bce-ns"
# Steps timed per task by default: a few seconds to ~2 minutes each on one core.
DEFAULT_STEPS = {"mnist": 40, "stacked_mnist": 40, "cifar10": 6}
THROUGHPUTS = (100.0, 25.0)  # sustained TFLOP/s assumed for the GPU estimate (H100, bf16, small nets)
# Training-set sizes of the built-in data sets without an `n` in their config (for train.epochs).
N_TRAIN = {"gan_bench.data.images.mnist": 60000, "gan_bench.data.images.cifar10": 50000}
CLASSIFIER_METRICS = ("fd_mnist", "mnist_classes", "smnist_modes")  # need <data>/cache/mnist_classifier.pt
EVAL_LINE = re.compile(r"evaluation at step (\d+): (\d+) of (\d+) replicas in ([\d.]+) s")
CHILD = "import sys; from gan_bench.cli import main; sys.exit(main(sys.argv[1:]))"


# ------------------------------------------------------------------ cells and their configs

def cell_for(task_name: str, objective: str = OBJECTIVE):
    """The atlas cell of `objective` on task `task_name` at the task's middle lr, first seed 0."""
    from gan_bench.atlas import catalogue as C, cells, tasks as T

    tasks = T.load()
    if task_name not in tasks.tasks:
        raise SystemExit(f"unknown task '{task_name}': choose from {', '.join(tasks.tasks)}")
    task = tasks.tasks[task_name]
    return cells.Cell(task, C.load()[objective], task.lrs[len(task.lrs) // 2], 0)


def compose_cell(overrides: list[str]):
    """The cell's config, composed with Hydra's compose API as `gan-bench train` would."""
    from hydra import compose, initialize_config_dir

    from gan_bench.paths import CONF_DIR
    from gan_bench.sweep.names import register_resolvers

    register_resolvers()  # also imports gan_bench.config, which registers ${gb_root:}
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def n_train(cfg) -> int:
    """Training-set size from the config alone (no data read): dataset.n where the data set has one
    (Stacked MNIST: 100,000 stacks drawn from MNIST's 60,000 digits), else the data set's known size,
    less eval.holdout."""
    ds = cfg.dataset
    if ds.get("n") is not None:
        n = int(ds.n)
    elif ds.get("_target_") in N_TRAIN:
        n = N_TRAIN[ds._target_]
    else:
        raise SystemExit(f"atlas_cost: training-set size of {ds.get('_target_')} unknown; add it to N_TRAIN")
    holdout = float(cfg.eval.get("holdout") or 0.0)
    return n - int(round(n * holdout)) if holdout else n


def cell_steps(cfg) -> int:
    """Generator steps of the cell: train.steps, or train.epochs x ceil(N_train / batch) (as the trainer)."""
    from gan_bench.training.setup import total_steps

    return total_steps(cfg.train, n_train(cfg) if cfg.train.epochs is not None else 0)


def evaluations(cfg, steps: int) -> tuple[int, int]:
    """(periodic evaluations with eval.metrics, final ones with eval.final_metrics) in a cell."""
    every = int(cfg.train.eval_every)
    periodic = (steps - 1) // every  # every `every` steps, the last step's being the final one
    return periodic, 1


# ------------------------------------------------------------------ FLOPs

def forward_flops(module, *inputs) -> int:
    """FLOPs of one forward pass as torch.utils.flop_counter counts them (matmuls and convolutions,
    2 per multiply-accumulate; normalisations and activations are not counted)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return int(counter.get_total_flops())


def step_flops(g_fwd: int, d_fwd: int, n_critic: int = 1) -> int:
    """One training step of one replica: n_critic D steps of [G forward (no grad) + 3 x (D forward on
    real + D forward on fake)] and one G step of 3 x (G forward + D forward)."""
    d_step = g_fwd + 3 * (2 * d_fwd)
    g_step = 3 * (g_fwd + d_fwd)
    return n_critic * d_step + g_step


def network_flops(cfg) -> dict:
    """Forward FLOPs of the cell's G (on batch_size latents) and D (on batch_size images), one replica."""
    import torch
    from hydra.utils import instantiate

    batch = int(cfg.train.batch_size)
    G, D = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    G.eval(), D.eval()  # BN on running stats: the same matmuls and convolutions, no batch-stat updates
    z = torch.randn(batch, int(cfg.model.latent_dim))
    g = forward_flops(G, z)
    with torch.no_grad():
        x = G(z)
    d = forward_flops(D, x)
    return {"g_fwd": g, "d_fwd": d, "image": tuple(x.shape[1:]), "batch": batch}


def flops_per_cell(task_name: str, objective: str = OBJECTIVE) -> dict:
    """The FLOP estimate of one cell: forward FLOPs of G and D, per replica-step, per cell."""
    cell = cell_for(task_name, objective)
    cfg = compose_cell(cell.overrides)
    net = network_flops(cfg)
    n_critic, K, steps = int(cfg.train.n_critic), int(cfg.train.ensemble), cell_steps(cfg)
    per_step = step_flops(net["g_fwd"], net["d_fwd"], n_critic)
    # What this trainer does: the G step reuses the last D step's fake (no second G forward) and runs
    # D with its weights frozen (forward + input gradient only): n_critic (g + 6d) + 2g + 2d.
    trainer = n_critic * (net["g_fwd"] + 6 * net["d_fwd"]) + 2 * net["g_fwd"] + 2 * net["d_fwd"]
    periodic, final = evaluations(cfg, steps)
    return {"task": task_name, "tier": cell.task.tier, "cell": cell.name, "K": K, "steps": steps,
            "n_critic": n_critic, "n_train": n_train(cfg) if cfg.train.epochs is not None else None,
            "epochs": cfg.train.epochs, "batch": net["batch"], "image": net["image"],
            "g_fwd": net["g_fwd"], "d_fwd": net["d_fwd"], "step_flops": per_step,
            "trainer_step_flops": trainer, "cell_flops": per_step * steps * K,
            "evals": (periodic, final), "eval_metrics": list(cfg.eval.metrics or []),
            "final_metrics": list(cfg.eval.final_metrics or []), "lrs": len(cell.task.lrs)}


def gpu_hours(cell_flops: float, tflops: float) -> float:
    return cell_flops / (tflops * 1e12) / 3600


# ------------------------------------------------------------------ CPU measurement

def write_pngs(folder: Path, n: int = 256, size: int = 32) -> Path:
    """n random RGB PNGs, the CIFAR-10 stand-in (a step's cost does not depend on the pixels)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def second_half_speed(tb_dir: Path) -> float | None:
    """Steps/s of the run's last log interval (train.log_every = N/2: the second half of the steps,
    after the warm-up), from the trainer's speed/steps_per_s scalar in TensorBoard."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
        acc.Reload()
        return float(acc.Scalars("speed/steps_per_s")[-1].value)
    except Exception:  # no tensorboard, no scalar: the note is left out
        return None


def find_classifier(paths: list[Path]) -> Path | None:
    for p in paths:
        if p.is_file() and Path(str(p) + ".json").is_file():
            return p
    return None


def needs_classifier(metrics: str) -> bool:
    """Whether a metrics override value like [fd_mnist10k_test,mnist_classes10k] needs the MNIST classifier."""
    return any(m.strip().startswith(CLASSIFIER_METRICS) for m in metrics.strip("[]").split(","))


def measure_cpu(cell, steps: int, data: Path, cache_root: Path, work: Path, classifier: Path | None) -> dict:
    """Run the cell's trainer for `steps` steps on the CPU; seconds per step and, where it can be
    run, the seconds of one evaluation (the task's final metrics, the whole ensemble)."""
    overrides, notes = list(cell.overrides), []
    final = next((o.split("=", 1)[1] for o in reversed(overrides) if o.startswith("eval.final_metrics=")), "[]")
    if "dataset=cifar10" in overrides:
        pngs = write_pngs(work / "cifar_standin")
        overrides[overrides.index("dataset=cifar10")] = "dataset=folder"
        overrides += [f"dataset.path={pngs}", "dataset.resolution=32"]
        notes.append("CIFAR-10 absent: timed on 256 random 32x32 RGB PNGs (dataset=folder), same network and "
                     "batch; a step's cost does not depend on the pixels")
        eval_final, why = "[]", "needs the Inception weights and CIFAR-10's reference statistics"
    else:
        overrides += [f"dataset.path={data}", "dataset.download=false"]
        eval_final, why = final, None
        if needs_classifier(final) and classifier is None:
            eval_final, why = "[]", "needs the MNIST classifier (`gan-bench prepare mnist-classifier`), not cached"
    run_dir = work / f"run-{cell.task.name}"
    overrides += [f"train.steps={steps}", "train.epochs=null", "eval.metrics=[]", f"eval.final_metrics={eval_final}",
                  f"train.eval_every={steps}", f"train.ckpt_every={steps}", f"train.log_every={max(steps // 2, 1)}",
                  "train.progress=false", "train.device=cpu", f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "GAN_BENCH_DATA": str(cache_root)}
    env.setdefault("OMP_NUM_THREADS", "1")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, "train", *overrides], env=env, cwd=str(work),
                          capture_output=True, text=True)
    process_s = time.perf_counter() - started
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"atlas_cost: training {cell.name} failed (exit {proc.returncode}):\n{tail}")
    result = json.loads((run_dir / "result.json").read_text())
    log = (run_dir / "gan-bench.log").read_text() if (run_dir / "gan-bench.log").exists() else proc.stderr
    evals = [float(m.group(4)) for m in EVAL_LINE.finditer(log)]
    eval_s = evals[-1] if evals else 0.0
    step = int(result["step"])
    steady = second_half_speed(run_dir / "tb") if steps >= 4 else None
    out = {"steady_s_per_step": 1 / steady if steady else None,
           "steps_run": step, "wall": float(result["wall_seconds"]), "process_s": process_s,
           "eval_s": eval_s, "s_per_step": (float(result["wall_seconds"]) - eval_s) / step,
           "notes": notes,
           "eval_measured": eval_final != "[]", "eval_why": why, "threads": env["OMP_NUM_THREADS"]}
    if out["eval_measured"]:
        out["eval_metrics"] = eval_final
    return out


# ------------------------------------------------------------------ the table

def _fmt(x: float, digits: int = 3) -> str:
    if x == 0:
        return "0"
    if x >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def tier_cells(tier: str, lrs: int) -> tuple[int, int]:
    """(objectives, cells per task) of a tier: its default objectives (tasks.yaml) x the task's lrs."""
    from gan_bench.atlas import catalogue as C, tasks as T

    names = T.load().objectives.get(tier)
    n = len(C.load()) if names is None else len(names)
    return n, n * lrs


def counted_evals(r: dict) -> int:
    """Evaluations a cell runs at the measured (final-metrics) cost: all of them when the periodic
    metrics are the final ones, else the final one only."""
    periodic, final = r["evals"]
    return periodic + final if r["eval_metrics"] == r["final_metrics"] else final


def table(rows: list[dict]) -> str:
    t1, t2 = THROUGHPUTS
    head = ["task", "tier", "steps / cell", "K", "CPU s/step (ensemble of K)", "CPU h / cell (training)",
            "eval CPU h / cell", "TFLOP / cell", f"GPU h / cell @ {t1:g} TFLOP/s", f"GPU h / cell @ {t2:g} TFLOP/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    tiers: dict[str, dict] = {}
    for r in rows:
        cpu = r.get("cpu")
        cpu_h = cpu["s_per_step"] * r["steps"] / 3600 if cpu else None
        eval_h = None
        if cpu and cpu["eval_measured"]:
            eval_h = cpu["eval_s"] * counted_evals(r) / 3600
        steps = f"{r['steps']:,}" + (f" ({r['epochs']} ep x {math.ceil(r['n_train'] / r['batch']):,})"
                                     if r["epochs"] is not None else "")
        cells = f"{cpu['s_per_step']:.3f} (N={cpu['steps_run']})" if cpu else "not run"
        lines.append("| " + " | ".join([
            r["task"], r["tier"], steps, str(r["K"]), cells, _fmt(cpu_h) if cpu_h is not None else "-",
            _fmt(eval_h) if eval_h is not None else "not included", _fmt(r["cell_flops"] / 1e12),
            _fmt(gpu_hours(r["cell_flops"], t1)), _fmt(gpu_hours(r["cell_flops"], t2))]) + " |")
        n_obj, n_cells = tier_cells(r["tier"], r["lrs"])
        t = tiers.setdefault(r["tier"], {"cells": 0, "cpu_h": 0.0, "cpu_ok": True, "flops": 0.0, "tasks": [],
                                         "objectives": n_obj})
        t["cells"] += n_cells
        t["tasks"].append(r["task"])
        t["flops"] += n_cells * r["cell_flops"]
        if cpu_h is None:
            t["cpu_ok"] = False
        else:
            t["cpu_h"] += n_cells * cpu_h
    for tier, t in tiers.items():
        what = (f"**{tier} tier total**: {t['objectives']} objectives x 3 lrs x {len(t['tasks'])} task"
                f"{'s' if len(t['tasks']) > 1 else ''} ({', '.join(t['tasks'])}) = {t['cells']} cells")
        lines.append("| " + " | ".join([
            what, "", "", "", "", _fmt(t["cpu_h"]) if t["cpu_ok"] else "-", "", _fmt(t["flops"] / 1e12),
            _fmt(gpu_hours(t["flops"], t1)), _fmt(gpu_hours(t["flops"], t2))]) + " |")
    return "\n".join(lines)


def notes(rows: list[dict]) -> list[str]:
    t1, t2 = THROUGHPUTS
    out = [f"Objective {OBJECTIVE} at each task's middle lr; tier totals multiply that cell by the tier's cells "
           "(objectives with extra work, e.g. wgan-gp's n_critic=5 and the gradient penalties, cost more)."]
    cpu_rows = [r for r in rows if r.get("cpu")]
    if cpu_rows:
        c = cpu_rows[0]["cpu"]
        out.append(f"CPU: measured here, OMP_NUM_THREADS={c['threads']}, train.device=cpu, the whole K-seed ensemble "
                   "per step; s/step = (result.json wall_seconds - the end-of-run evaluation's seconds) / step, "
                   "so it includes the first steps' warm-up and the checkpoint. Numbers depend on this "
                   "machine and its load.")
    for r in cpu_rows:
        c = r["cpu"]
        if c["steady_s_per_step"]:
            out.append(f"{r['task']}: second half of the {c['steps_run']} steps alone (after warm-up): "
                       f"{c['steady_s_per_step']:.3f} s/step, {c['steady_s_per_step'] * r['steps'] / 3600:.3g} "
                       "CPU h per cell.")
        for n in c["notes"]:
            out.append(f"{r['task']}: {n}.")
        if c["eval_measured"]:
            p, f = r["evals"]
            out.append(f"{r['task']}: one evaluation ({c['eval_metrics']}, K={r['K']}) took {c['eval_s']:.1f} s; "
                       f"a cell runs {p + f} ({p} periodic + {f} final), {counted_evals(r)} counted at that cost.")
        else:
            out.append(f"{r['task']}: evaluation cost not included ({', '.join(r['final_metrics'])} {c['eval_why']}); "
                       f"a cell runs {sum(r['evals'])} evaluations.")
    for r in rows:
        if r["epochs"] is not None:
            out.append(f"{r['task']}: {r['epochs']} epochs x ceil({r['n_train']:,} / {r['batch']}) = {r['steps']:,} "
                       "steps (N_train = dataset.n: the Stacked MNIST stacks, drawn from MNIST's 60,000 train digits).")
    over = max(r["step_flops"] / r["trainer_step_flops"] for r in rows)
    out.append(f"GPU: estimates from FLOPs, not measurements: FlopCounterMode's count of one G and one D forward "
               f"(convolutions and matmuls only) per replica at the task's batch; step = n_critic x [G fwd + 3 x "
               f"(D real + D fake)] + 3 x (G fwd + D fwd), x steps x K; sustained {t1:g} TFLOP/s (H100, bf16, "
               f"assumed for these small networks) and {t2:g} TFLOP/s. Networks of well under a GFLOP a step are "
               "bound by kernel launches rather than FLOPs, so their hours are a floor. This trainer reuses the D "
               "step's fake in the G step and freezes D's weights there, so its count is up to "
               f"{100 * (over - 1):.0f}% lower. Evaluation FLOPs are not included.")
    for r in rows:
        out.append(f"{r['task']}: G forward {r['g_fwd'] / 1e9:.3f} GFLOP, D forward {r['d_fwd'] / 1e9:.3f} GFLOP "
                   f"(batch {r['batch']}, images {'x'.join(map(str, r['image']))}); "
                   f"{r['step_flops'] / 1e9:.2f} GFLOP per replica-step.")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="atlas_cost.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), metavar="TASK",
                    help=f"atlas tasks to cost (default: {' '.join(TASKS)})")
    ap.add_argument("--steps", type=int, default=None, metavar="N",
                    help="generator steps the CPU measurement runs per task (default: "
                         + ", ".join(f"{k} {v}" for k, v in DEFAULT_STEPS.items()) + ")")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("GAN_BENCH_DATA", str(ROOT / "data"))),
                    help="where MNIST's raw files are (<DATA>/MNIST/raw; default $GAN_BENCH_DATA or %(default)s)")
    ap.add_argument("--cache-root", type=Path, default=None,
                    help="gan-bench data root for the runs' caches (default: a temporary directory)")
    ap.add_argument("--classifier", type=Path, default=None,
                    help="the MNIST classifier for fd_mnist/mnist_classes/smnist_modes (default: "
                         "<cache root or DATA>/cache/mnist_classifier.pt when it exists)")
    ap.add_argument("--no-cpu", action="store_true", help="only the FLOP estimate, no training run")
    args = ap.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        ap.error("--steps must be a positive integer")

    rows = [flops_per_cell(name) for name in args.tasks]
    if not args.no_cpu:
        with tempfile.TemporaryDirectory(prefix="atlas_cost-") as tmp:
            work = Path(tmp)
            cache_root = args.cache_root or work / "data"
            classifier = args.classifier or find_classifier([cache_root / "cache" / "mnist_classifier.pt",
                                                             args.data / "cache" / "mnist_classifier.pt"])
            if classifier is not None and classifier != cache_root / "cache" / "mnist_classifier.pt":
                (cache_root / "cache").mkdir(parents=True, exist_ok=True)
                for suffix in ("", ".json"):   # where the trainer looks: <paths.data>/cache/
                    link = cache_root / "cache" / f"mnist_classifier.pt{suffix}"
                    if not link.exists():
                        link.symlink_to(Path(str(classifier) + suffix).resolve())
            for r in rows:
                n = args.steps or DEFAULT_STEPS.get(r["task"], 20)
                print(f"[atlas_cost] timing {r['cell']} for {n} steps on the CPU ...", file=sys.stderr, flush=True)
                r["cpu"] = measure_cpu(cell_for(r["task"]), n, args.data, cache_root, work, classifier)
                c = r["cpu"]
                print(f"[atlas_cost]   {c['steps_run']} steps in {c['wall']:.1f} s (process {c['process_s']:.1f} s)",
                      file=sys.stderr, flush=True)
    print(table(rows))
    print()
    for n in notes(rows):
        print(f"- {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
