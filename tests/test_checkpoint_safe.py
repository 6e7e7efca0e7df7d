"""Checkpoints are read with torch's safe loader: one whose pickle would run code is refused by every
command with one line, and nothing of it runs; every checkpoint gan-bench writes (and wrote) loads."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoints"
CLI = [sys.executable, "-m", "gan_bench.cli"]
TINY = ["debug=smoke", "model.generator.width=16", "model.discriminator.width=16", "train.progress=false"]


class Planted:
    """Unpickling this would run `touch <marker>`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def cli(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("name", ["ring.pt", "ring_ensemble2.pt"])
def test_checkpoints_written_before_load_with_the_safe_loader(name):
    state = torch.load(FIXTURES / name, map_location="cpu", weights_only=True)
    assert "config_hash" in state and "G" in state


def test_a_checkpoint_that_would_run_code_is_refused_by_every_command(tmp_path):
    run = tmp_path / "run"
    out = cli("train", *TINY, "train.steps=40", "train.ckpt_every=20", f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr[-2000:]
    ckpt = run / "checkpoints" / "last.pt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)  # what gan-bench writes is safe
    marker = tmp_path / "ran"
    state["extra"] = Planted(marker)
    torch.save(state, ckpt)
    (run / "result.json").unlink()  # so train resumes from the checkpoint rather than skip a finished run
    for args in (["train", *TINY, "train.steps=60", "train.ckpt_every=20", f"hydra.run.dir={run}"],
                 ["eval", run], ["export", run, "--out", tmp_path / "w.pt"],
                 ["sample", run, "--out", tmp_path / "s.png"]):
        res = cli(*args)
        assert res.returncode == 2, (args[0], res.stderr[-2000:])
        err = res.stderr.strip()
        assert err.count("\n") == 0 and "could run code when loaded" in err and str(ckpt) in err, (args[0], err)
        assert not marker.exists(), args[0]
