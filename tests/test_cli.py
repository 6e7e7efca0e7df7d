"""The command line as a user meets it: bad input, resume after SIGKILL, help and --cfg."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import FAST

CLI = [sys.executable, "-m", "gan_bench.cli"]


def run_cli(*args, timeout=120):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("args, words", [
    (["loss=nope"], ["unknown loss 'nope'", "bce"]),
    (["dataset=mnist3d"], ["unknown dataset 'mnist3d'", "ring"]),
    (["model=resnet"], ["unknown model 'resnet'", "mlp"]),
    (["alpha=0"], ["alpha must be a positive number"]),
    (["alpha=-1"], ["alpha must be a positive number"]),
    (["alpha=abc"], ["alpha must be a positive number", "'abc'"]),
    (["alpha_d=-0.5"], ["alpha_d must be a positive number"]),
    (["train.steps=0"], ["train.steps must be a positive integer"]),
    (["train.batch_size=-4"], ["train.batch_size must be a positive integer"]),
    # a metric the data set cannot give: one line, not a run that drops it silently
    (["eval.metrics=[fd_dinov2_50k_train]"], ["are image metrics, but dataset=ring is toy data"]),
    (["dataset=mixture1d", "eval.final_metrics=[fid50k_train,kid1k_train]"], ["dataset=mixture1d is toy data"]),
])
def test_bad_input_is_one_line_and_nonzero(tmp_path, capsys, args, words):
    from gan_bench.cli import main

    out = tmp_path / "run"
    code = _main_exit(main, ["train", *FAST, f"hydra.run.dir={out}", *args])
    err = [s for s in capsys.readouterr().err.splitlines() if s.strip()]
    assert code == 2 and len(err) == 1, err
    assert all(w in err[0] for w in words), err[0]
    assert not (out / "checkpoints").exists() and not (out / "result.json").exists()


def test_toy_runs_accept_no_image_metrics_or_the_defaults(tmp_path):
    from conftest import make_cfg
    from gan_bench.config import check_toy_metrics

    check_toy_metrics(make_cfg(tmp_path, []))  # the root defaults (meant for image sets) pass
    check_toy_metrics(make_cfg(tmp_path, ["eval.metrics=[]", "eval.final_metrics=[]"]))


def _main_exit(main, argv):
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize("args, words", [
    (["loss=nope"], ["unknown loss 'nope'", "bce"]),
    (["alpha=abc"], ["alpha must be a positive number", "'abc'"]),
])
def test_bad_input_message_through_the_real_command(tmp_path, args, words):
    p = run_cli("train", f"hydra.run.dir={tmp_path}", *args)
    assert p.returncode == 2
    lines = [s for s in p.stderr.splitlines() if s.strip()]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_corrupt_and_mismatched_checkpoint(tmp_path, capsys):
    from gan_bench.cli import main

    ckpt = tmp_path / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a checkpoint")
    assert _main_exit(main, ["train", *FAST, f"hydra.run.dir={tmp_path}", "train.steps=2"]) == 2
    assert "corrupt" in capsys.readouterr().err

    ckpt.unlink()
    assert _main_exit(main, ["train", *FAST, f"hydra.run.dir={tmp_path}", "train.steps=2", "train.ckpt_every=1"]) == 0
    capsys.readouterr()
    (tmp_path / "result.json").unlink()
    assert _main_exit(main, ["train", *FAST, f"hydra.run.dir={tmp_path}", "train.steps=4", "seed=9"]) == 2
    assert "different configuration" in capsys.readouterr().err


def test_cuda_requested_without_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    p = run_cli("train", *FAST[:-1], f"hydra.run.dir={tmp_path}", "train.device=cuda")
    assert p.returncode == 2 and "no CUDA device" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_help_and_cfg_job():
    p = run_cli("train", "--cfg", "job", "loss=alpha", "alpha=0.5")
    assert p.returncode == 0 and "alpha: 0.5" in p.stdout and "name: alpha" in p.stdout
    p = run_cli("train", "--help")
    assert p.returncode == 0 and "loss:" in p.stdout


def _final_state(run_dir):
    s = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)
    return s


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    steps = 1000
    args = [*FAST, f"train.steps={steps}", "train.ckpt_every=100", "train.eval_every=500", "train.log_every=50"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    p = run_cli("train", *args, f"hydra.run.dir={straight}")
    assert p.returncode == 0, p.stderr
    # A run ends by saying where to look: its last scatter plot and the TensorBoard command.
    picture = straight / "samples" / f"step{steps:07d}.png"
    assert f"final samples: {picture}\n" in p.stdout and picture.is_file()
    assert p.stdout.rstrip().endswith(f"view it: tensorboard --logdir {straight}/tb")

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*CLI, "train", *args, f"hydra.run.dir={killed}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt, deadline = killed / "checkpoints" / "last.pt", time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and torch.load(ckpt, weights_only=False)["step"] >= 200:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed; raise `steps`"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    mid = torch.load(ckpt, weights_only=False)["step"]
    assert 200 <= mid < steps and not (killed / "result.json").exists()

    p = run_cli("train", *args, f"hydra.run.dir={killed}")
    assert p.returncode == 0, p.stderr
    a, b = _final_state(straight), _final_state(killed)
    assert a["step"] == b["step"] == steps
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    for opt in ("opt_g", "opt_d"):
        for i, st in a[opt]["state"].items():
            for k, v in st.items():
                assert torch.equal(v, b[opt]["state"][i][k]), (opt, i, k)
