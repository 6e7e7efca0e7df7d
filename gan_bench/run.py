"""One Hydra job: train, then tell the user what happened and where to look.

A single run keeps the command line's contract: bad input is one line on stderr and exit 2, a bug
is Hydra's traceback. A job of a multirun never ends the sweep: whatever goes wrong is written to
its result.json (status failed, with the error) and to the sweep ledger, and the job returns so
the launcher moves on; the summary at the end counts it (gan_bench/sweep/). An interrupt
(SIGTERM/SIGINT: the trainer checkpoints and raises SystemExit) is not a failure and still stops
the job, and the sweep with it where jobs share the process.
"""

import logging
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gan_bench import records
from gan_bench.checkpoint import NoSpace
from gan_bench.errors import UserError

log = logging.getLogger(__name__)


def run_job(cfg: DictConfig) -> dict:
    from gan_bench import sweep
    from gan_bench.train import train

    if sweep.in_multirun():
        return _sweep_job(cfg, train)
    try:
        result = train(cfg)
    except UserError as e:
        # One line and a non-zero exit; Hydra would otherwise print a stack trace.
        print(f"gan-bench: error: {e}", file=sys.stderr)
        sys.exit(2)
    except NoSpace as e:  # the disk, not the input: result.json says failed, the checkpoint resumes
        print(f"gan-bench: error: {e}", file=sys.stderr)
        sys.exit(1)
    run_dir = cfg.paths.run_dir
    print(f"[{_word(result)}] step {result['step']}/{result['steps']} in {result['wall_seconds']:.1f}s: "
          f"{_metrics(result)}")
    print(f"run directory: {run_dir}")
    if (picture := _last_samples(Path(run_dir))) is not None:
        print(f"final samples: {picture}")
    print(f"view it: tensorboard --logdir {run_dir}/tb")
    return result


def _last_samples(run_dir: Path) -> Path | None:
    """The picture of the last evaluation (samples/step<N>.png, N zero-padded so names sort)."""
    pictures = sorted((run_dir / "samples").glob("step*.png"))
    return pictures[-1] if pictures else None


def _sweep_job(cfg: DictConfig, train) -> dict:
    from gan_bench import sweep

    job = sweep.SweepJob()
    job.start()
    try:
        job.check_unique()
    except UserError as e:  # the directory is another job's: leave its result.json alone
        print(f"gan-bench: error: {e}", file=sys.stderr)
        job.finish({"status": "failed", "step": 0}, str(e))
        return {"status": "failed", "error": repr(e)}
    error = None
    try:
        with sweep.requeue_on_preemption():
            result = train(cfg)
    except (UserError, NoSpace) as e:
        error = str(e)
        print(f"gan-bench: error: {e} (job {job.num}: {job.run_dir})", file=sys.stderr)
        result = _record_failure(cfg, job.run_dir, e)
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        log.error("job %d failed; the sweep goes on (%s)", job.num, job.run_dir, exc_info=True)
        result = _record_failure(cfg, job.run_dir, e)
    job.finish(result, error)
    if error is None:
        print(f"[job {job.num} {_word(result)}] step {result['step']}/{result['steps']} in "
              f"{result['wall_seconds']:.1f}s: {_metrics(result)} ({job.run_dir})")
    return result


def _record_failure(cfg: DictConfig, run_dir: Path, e: Exception) -> dict:
    """result.json for a job that failed: the trainer's own record when it wrote one for this very
    error (a crash inside the loop, with the step), otherwise one in the same shape."""
    old = records.read(run_dir)
    if old is not None and old.get("status") == "failed" and old.get("error") == repr(e):
        return old
    result = records.record("failed", steps=_plain(cfg, "train.steps"), seed=_plain(cfg, "seed"), error=repr(e))
    try:
        records.write(run_dir, result)
    except OSError as write_error:  # the ledger still has it; the sweep goes on
        log.error("could not write %s: %s", run_dir / "result.json", write_error)
    return result


def _plain(cfg: DictConfig, key: str):
    """A config value as JSON can hold it, whatever the user typed (the value may be what failed)."""
    v = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
    return v if v is None or isinstance(v, (bool, int, float, str)) else str(v)


def _word(result: dict) -> str:
    return "already finished" if result.get("skipped") else result["status"]


def _metrics(result: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result["metrics"].items())
