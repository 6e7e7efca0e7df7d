"""Files written atomically follow the umask like the rest of a run; a disk that fills while a
checkpoint is written ends the run with one line, the previous checkpoint intact and resumable."""

import errno
import json
import os
import stat
import subprocess
import sys

import pytest
import torch

from gan_bench import atomic, checkpoint
from gan_bench.train import train


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_atomic_files_honour_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        atomic.write_json(tmp_path / "result.json", {"a": 1})
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(old)
    got = stat.S_IMODE((tmp_path / "result.json").stat().st_mode)
    assert got == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o666 & ~mask


def test_full_disk_while_checkpointing_is_one_line_and_resumes(cfg_factory, tmp_path, monkeypatch):
    cfg = cfg_factory("train.steps=40", "train.log_every=10", "train.eval_every=20", "train.ckpt_every=20")
    real_save, calls = torch.save, []

    def full_disk(obj, f, *a, **k):
        calls.append(1)
        if len(calls) == 2:  # the checkpoint at step 40: the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(checkpoint.NoSpace) as e:
        train(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"no space left on device writing {ckpt}")
    assert "the previous checkpoint last.pt is intact" in msg and "run the same command again" in msg
    assert torch.load(ckpt, weights_only=True)["step"] == 20  # step 20's checkpoint, untouched
    assert json.loads((tmp_path / "run" / "result.json").read_text())["status"] == "failed"
    assert [p.name for p in ckpt.parent.iterdir()] == ["last.pt"]  # no temporary file left
    monkeypatch.setattr(torch, "save", real_save)  # space freed: the same run resumes and finishes
    assert train(cfg)["status"] == "completed"


def test_full_disk_on_the_command_line_is_one_line(tmp_path):
    """The command: one line on stderr, exit 1 (the disk, not the input), no traceback."""
    code = ("import errno, sys, torch\n"
            "def full(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device')\n"
            "torch.save = full\n"
            "from gan_bench.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    out = subprocess.run([sys.executable, "-c", code, "train", "debug=smoke", "model.generator.width=16",
                          "model.discriminator.width=16", f"hydra.run.dir={tmp_path / 'run'}"],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 1
    err = out.stderr.strip()
    assert err.count("\n") == 0 and "no space left on device writing" in err and "no earlier checkpoint" in err
