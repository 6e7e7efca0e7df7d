"""Multiruns that survive: job directory names, the sweep ledger, the summary line and exit code,
GPU pinning for parallel local jobs, and requeue on SLURM. docs/sweeps.md is the user's side.

How a sweep fits together (the `hydra:` section of conf/train.yaml, conf/hydra/launcher/):
- every job runs in `<hydra.sweep.dir>/<its overrides>` (names.py), so the same command with the
  same `hydra.sweep.dir` finds its jobs again: the trainer skips finished runs and resumes
  interrupted ones from checkpoints/last.pt;
- a job of a multirun never raises (gan_bench/run.py writes any failure to its result.json) and
  records how it ended in the ledger, `<sweep dir>/.jobs/<num>.json` (ledger.py). The summary
  counts the ledger, not the launcher's return values: it reads the same for every launcher, and a
  job whose process died shows up as unfinished instead of vanishing (summary.py);
- `SweepCallback` (callback.py; Hydra runs its multirun hooks in the process that launched the
  sweep, its job hooks where each job runs) starts a fresh ledger when the multirun starts; when
  it ends it prints `sweep: N jobs: a completed, b diverged, c failed (DIR)`, writes DIR/sweep.json
  and ends the process with exit code 1 when a job failed (diverged is data); it also pins jobs to
  GPUs (gpus.py);
- inside a submitit job, SLURM's warning signal checkpoints before the requeue (requeue.py).

The launchers are the plugins' own (hydra-joblib-launcher, hydra-submitit-launcher): Hydra only
instantiates launcher classes that live in the `hydra_plugins` package, so nothing here wraps them;
everything that makes a sweep survive happens inside the jobs and in the callback.

Arrows: callback -> {ledger, summary, gpus}; summary -> ledger; names, requeue and gpus stand alone.
"""

from gan_bench.sweep.callback import SweepCallback
from gan_bench.sweep.ledger import SweepJob, in_multirun
from gan_bench.sweep.names import job_dirname, register_resolvers
from gan_bench.sweep.requeue import requeue_on_preemption
from gan_bench.sweep.summary import summarize, summary_line

# Worker processes (joblib, submitit) import this package when they unpickle the callback, before
# their job's config resolves ${gb_job_dirname:...} and ${gb_root:}.
register_resolvers()

__all__ = ["SweepCallback", "SweepJob", "in_multirun", "job_dirname", "register_resolvers", "requeue_on_preemption",
           "summarize", "summary_line"]
