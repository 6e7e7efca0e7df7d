"""What a Stacked MNIST seed ensemble's evaluation costs on this machine (issue 20): for each K, a
fresh process runs the ISIT'23 cell (`experiment=isit23_stacked_mnist`, train.ensemble=K) for a
few steps and then its real final evaluation (`smnist_modes25k`: 25,000 stacks a replica, 3 digits
each, through the mode classifier). One JSON line per K: the evaluation's seconds (the trainer's
"evaluation at step ..." log line) and stacks/s, the process's peak RSS and its RSS at the end,
and the largest size of glibc's heap during the run (where freed evaluation buffers piled up).

    python scripts/smnist_eval_cost.py --k 1 16 100 [--steps 2] [--evals 1] [--count 25000] [-- OVERRIDE ...]

`--evals N` evaluates N times (train.eval_every spaced over the steps) to show whether memory
grows with the number of evaluations. Needs MNIST and the classifier where `gan-bench train`
finds them (paths.data; docs/datasets.md). Figures are for the machine that runs it.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

# Runs the trainer in this child, then prints its own peak RSS (a fresh process per K, so the
# figure is that K's alone) and the largest glibc heap ([heap] in /proc/self/smaps, sampled every
# second, a few ms each): the part of memory that grew during evaluations before they released
# freed buffers.
CHILD = r"""
import json, resource, sys, threading
from gan_bench.cli import main
heap, done = [0], threading.Event()
def heap_kib():
    name, kib = None, 0
    for line in open('/proc/self/smaps'):
        if line[0] in '0123456789abcdef' and '-' in line.split()[0]:
            name = line.split()[5] if len(line.split()) > 5 else None
        elif line.startswith('Rss:') and name == '[heap]':
            kib += int(line.split()[1])
    return kib
def sample():
    while not done.wait(1.0):
        heap.append(heap_kib())
threading.Thread(target=sample, daemon=True).start()
code = main(sys.argv[1:])
done.set()
heap.append(heap_kib())  # a run shorter than the sampling period still gets one
rss_end = int(next(s for s in open('/proc/self/status') if s.startswith('VmRSS:')).split()[1])
print(json.dumps({"code": code, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "rss_end": rss_end * 1024, "heap_max": max(heap) * 1024}))
"""
LINE = re.compile(r"evaluation at step (\d+): (\d+) of (\d+) replicas in ([\d.]+) s")
GiB = 2 ** 30


def measure(K: int, steps: int, evals: int, count: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as run_dir:
        if steps % evals:
            raise SystemExit(f"--steps {steps} is not a multiple of --evals {evals}")
        every = steps // evals
        args = ["train", "experiment=isit23_stacked_mnist", f"train.ensemble={K}", f"train.steps={steps}",
                "train.epochs=null", f"train.eval_every={every}", f"train.ckpt_every={steps}",
                f"train.log_every={every}", "train.progress=false", f"eval.metrics=[smnist_modes{count}]",
                f"eval.final_metrics=[smnist_modes{count}]", f"hydra.run.dir={run_dir}", *extra]
        proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"K={K}: the run failed:\n{proc.stderr[-2000:]}")
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        evals_found = [(int(n), float(t)) for _, n, _, t in LINE.findall((Path(run_dir) / "gan-bench.log").read_text())]
    replicas, final_seconds = evals_found[-1]
    stacks = replicas * count  # the replicas evaluated: a diverged one is not
    return {"K": K, "count": count, "steps": steps, "evaluations": len(evals_found),
            "final_eval_seconds": round(final_seconds, 1), "stacks_per_s": round(stacks / final_seconds),
            "eval_seconds": [round(t, 1) for _, t in evals_found],
            "peak_rss_gib": round(child["peak_rss"] / GiB, 2), "rss_end_gib": round(child["rss_end"] / GiB, 2),
            "heap_max_mib": round(child["heap_max"] / 2 ** 20)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, nargs="+", default=[1, 16, 100])
    ap.add_argument("--steps", type=int, default=2, help="training steps before the final evaluation")
    ap.add_argument("--evals", type=int, default=1, help="evaluations, spaced over the steps")
    ap.add_argument("--count", type=int, default=25000, help="stacks a replica (smnist_modes<count>)")
    ap.add_argument("overrides", nargs="*", help="more trainer overrides, after --")
    args = ap.parse_args(argv)
    for K in args.k:
        print(json.dumps(measure(K, args.steps, args.evals, args.count, args.overrides)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
