"""Multiruns that survive: directory names, summary and exit code, re-runs that skip and resume,
a failing job that does not stop the sweep, the joblib and submitit launchers, GPU pinning and the
SLURM requeue path. Sweeps run through the real command with tiny runs."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import FAST
from gan_bench.sweep import job_dirname, summarize, summary_line

CLI = [sys.executable, "-m", "gan_bench.cli", "train", "-m"]
TINY = [*FAST, "train.steps=4", "train.log_every=2", "train.eval_every=2", "train.ckpt_every=2"]


def sweep(sweep_dir, *args, env=None, timeout=180):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([*CLI, *TINY, f"hydra.sweep.dir={sweep_dir}", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def jobs(sweep_dir) -> dict[str, Path]:
    """Job directories by the swept override, e.g. {"alpha_d=0.3": path}."""
    out = {}
    for d in Path(sweep_dir).iterdir():
        if (d / ".hydra").is_dir():
            for o in yaml.safe_load((d / ".hydra" / "overrides.yaml").read_text()):
                if o.startswith(("alpha_d=", "seed=")):
                    out[o] = d
    return out


def result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def summary(stdout: str) -> str:
    lines = [s for s in stdout.splitlines() if s.startswith("sweep: ")]
    assert len(lines) == 1, stdout[-3000:]
    return lines[0]


# ------------------------------------------------------------------------------ pieces

def test_job_dirname_is_one_safe_path_component():
    assert job_dirname("alpha_d=0.3,alpha_g=1,seed=0") == "alpha_d=0.3,alpha_g=1,seed=0"
    assert job_dirname("experiment=isit23_ring,seed=0") == "experiment=isit23_ring,seed=0"
    name = job_dirname("dataset.path=/data/../../etc,seed=0")
    assert "/" not in name and name == "dataset.path=%2Fdata%2F..%2F..%2Fetc,seed=0"
    assert job_dirname("note=50%2F") != job_dirname("note=50/")  # escaping stays unambiguous
    assert job_dirname("") == "defaults"
    long_a, long_b = "a=" + "x" * 400 + ",seed=0", "a=" + "x" * 400 + ",seed=1"
    for long in (long_a, "é" * 300):
        n = job_dirname(long)
        assert len(n.encode()) <= 240 and n == job_dirname(long)
    assert job_dirname(long_a) != job_dirname(long_b)


def test_summary_counts_diverged_as_data_and_lost_jobs_as_failed():
    entries = [{"status": "completed"}, {"status": "completed", "skipped": True}, {"status": "diverged"}]
    s = summarize(entries)
    assert (s["jobs"], s["completed"], s["diverged"], s["failed"], s["skipped"], s["exit_code"]) == (3, 2, 1, 0, 1, 0)
    assert summary_line(s, "outputs/multirun/x") == \
        "sweep: 3 jobs: 2 completed, 1 diverged, 0 failed (outputs/multirun/x)"
    s = summarize(entries + [{"status": "failed"}, {"status": "running"}])  # running at the end: its process died
    assert (s["failed"], s["exit_code"]) == (2, 1)


def test_requeue_bridge_checkpoints_the_current_step_then_requeues(cfg_factory, tmp_path, monkeypatch):
    """Inside a submitit job, submitit's USR2 (time limit near, preemption) makes the trainer finish
    its step and checkpoint before submitit's own handler requeues the job."""
    from gan_bench.sweep import requeue_on_preemption
    from gan_bench.train import train

    monkeypatch.setenv("SUBMITIT_FOLDER", str(tmp_path / "submitit"))
    calls = []

    def submitit_requeue(signum, frame):  # stands in for submitit's checkpoint_and_try_requeue
        calls.append(signum)
        sys.exit(-1)

    run_dir = tmp_path / "run"
    cfg = cfg_factory("train.steps=100000", "train.ckpt_every=50000", "train.eval_every=20", "train.log_every=20",
                      run_dir=run_dir)

    def preempt():
        while not (run_dir / "metrics.jsonl").exists() or not (run_dir / "metrics.jsonl").read_text():
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGUSR2)

    old = signal.signal(signal.SIGUSR2, submitit_requeue)
    try:
        threading.Thread(target=preempt, daemon=True).start()
        with pytest.raises(SystemExit) as e:
            with requeue_on_preemption():
                train(cfg)
        assert e.value.code == -1 and calls == [signal.SIGUSR2]
        assert signal.getsignal(signal.SIGUSR2) is submitit_requeue  # handlers restored
    finally:
        signal.signal(signal.SIGUSR2, old)
    step = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["step"]
    assert 20 <= step < 50000  # written at the interruption, not by the periodic checkpoint
    assert not (run_dir / "result.json").exists()


# ------------------------------------------------------------------------------ sweeps

def test_rerun_skips_finished_resumes_interrupted_and_records_failed(tmp_path):
    """Basic launcher: a bad sweep point fails alone; the same command again skips what finished,
    resumes what was interrupted and records the failure again, with the summary and exit code 1."""
    sw = tmp_path / "sweep"
    args = ["alpha_d=0.3,0.5,-1", f"paths.data={tmp_path}/data"]  # a path in a value: no nested directories
    p = sweep(sw, *args)
    assert p.returncode == 1, p.stderr[-3000:]
    assert summary(p.stdout) == f"sweep: 3 jobs: 2 completed, 0 diverged, 1 failed ({sw})"
    assert "Traceback" not in p.stderr
    j = jobs(sw)
    assert set(j) == {"alpha_d=0.3", "alpha_d=0.5", "alpha_d=-1"}
    assert all(d.parent == sw and "paths.data=%2F" in d.name for d in j.values())
    failed = result(j["alpha_d=-1"])
    assert failed["status"] == "failed" and "alpha_d must be a positive number" in failed["error"]
    err = [s for s in p.stderr.splitlines() if s.startswith("gan-bench: error:")]
    assert len(err) == 1 and "alpha_d must be a positive number" in err[0]

    finished, interrupted = j["alpha_d=0.3"] / "result.json", j["alpha_d=0.5"]
    mtime, before = finished.stat().st_mtime_ns, result(interrupted)
    evals = (interrupted / "metrics.jsonl").read_text()
    (interrupted / "result.json").unlink()  # what a kill leaves: a checkpoint and no result

    p = sweep(sw, *args)
    assert p.returncode == 1, p.stderr[-3000:]
    assert summary(p.stdout) == f"sweep: 3 jobs: 2 completed, 0 diverged, 1 failed ({sw})"
    assert "re-run it" in p.stdout and f"hydra.sweep.dir={sw}" in p.stdout
    assert finished.stat().st_mtime_ns == mtime  # skipped
    after = result(interrupted)
    assert after["status"] == "completed" and after["step"] == 4 and after["metrics"] == before["metrics"]
    assert (interrupted / "metrics.jsonl").read_text() == evals  # resumed from last.pt, not retrained
    assert result(j["alpha_d=-1"])["status"] == "failed"
    rec = json.loads((sw / "sweep.json").read_text())
    assert (rec["jobs"], rec["completed"], rec["failed"], rec["skipped"], rec["exit_code"]) == (3, 2, 1, 1, 1)


def test_joblib_sweep_pins_one_gpu_per_job(tmp_path):
    """hydra/launcher=joblib runs jobs in worker processes; with gpus=auto each job sees one of the
    visible GPUs (device ids here are only names: the runs are on the CPU)."""
    sw = tmp_path / "sweep"
    p = sweep(sw, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.callbacks.sweep.gpus=auto",
              "experiment=isit23_ring", "seed=0,1", env={"CUDA_VISIBLE_DEVICES": "3,5"})
    assert p.returncode == 0, p.stderr[-3000:]
    assert summary(p.stdout) == f"sweep: 2 jobs: 2 completed, 0 diverged, 0 failed ({sw})"
    j = jobs(sw)
    assert set(j) == {"seed=0", "seed=1"}
    for d in j.values():
        assert "experiment=isit23_ring" in d.name
        assert "hydra" not in d.name and result(d)["status"] == "completed"
    entries = [json.loads(f.read_text()) for f in (sw / ".jobs").glob("[0-9].json")]
    assert len(entries) == 2 and {e["gpu"] for e in entries} <= {"3", "5"}
    main_pid = json.loads((sw / ".jobs" / "sweep.json").read_text())["pid"]
    assert all(e["pid"] != main_pid for e in entries)  # jobs ran in worker processes


def test_submitit_local_sweep(tmp_path):
    """The SLURM preset's machinery (submitit) with local processes."""
    sw = tmp_path / "sweep"
    p = sweep(sw, "hydra/launcher=submitit_local", "alpha_d=0.3,0.5")
    assert p.returncode == 0, p.stderr[-3000:]
    assert summary(p.stdout) == f"sweep: 2 jobs: 2 completed, 0 diverged, 0 failed ({sw})"
    assert {k: result(d)["status"] for k, d in jobs(sw).items()} == {"alpha_d=0.3": "completed",
                                                                    "alpha_d=0.5": "completed"}


@pytest.mark.slow
def test_submitit_job_signalled_mid_run_is_requeued_and_resumes(tmp_path):
    """submitit's preemption/time-limit signal: checkpoint, requeue, resume in the same directory."""
    sw = tmp_path / "sweep"
    args = [*TINY, "train.steps=600", "train.log_every=20", "train.eval_every=100", "train.ckpt_every=1000",
            f"hydra.sweep.dir={sw}", "hydra/launcher=submitit_local", "seed=0,1"]
    proc = subprocess.Popen([*CLI, *args], env={**os.environ, "OMP_NUM_THREADS": "1"}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline, sent = time.time() + 120, False
    while time.time() < deadline and proc.poll() is None and not sent:
        entry = (sw / ".jobs" / "0.json")
        e = json.loads(entry.read_text()) if entry.exists() else None
        if e and (Path(e["dir"]) / "metrics.jsonl").exists() and (Path(e["dir"]) / "metrics.jsonl").read_text():
            os.kill(e["pid"], signal.SIGUSR2)
            sent = True
        time.sleep(0.02)
    out, _ = proc.communicate(timeout=240)
    assert sent and proc.returncode == 0, out[-3000:]
    assert summary(out) == f"sweep: 2 jobs: 2 completed, 0 diverged, 0 failed ({sw})"
    e = json.loads((sw / ".jobs" / "0.json").read_text())
    assert e["attempt"] == 2 and e["status"] == "completed"
    steps = [json.loads(s)["step"] for s in (Path(e["dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert steps == [100, 200, 300, 400, 500, 600]  # resumed: no evaluation ran twice
