"""Checkpoints written by older gan-bench (tests/fixtures/checkpoints, see write_checkpoints.py there)
still resume, and resuming one ends where a run never interrupted ends."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from gan_bench.config import CONF_DIR
from gan_bench.train import train

FIXTURES = Path(__file__).parent / "fixtures"
SPEC = json.loads((FIXTURES / "checkpoints.json").read_text())


def cfg_for(name: str, run_dir: Path, steps: int):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train",
                       overrides=[*SPEC[name]["overrides"], f"train.steps={steps}", f"paths.run_dir={run_dir}"])


def close(a, b, where=""):
    """Nested state: integers, RNG states and data orders exactly; floats to rounding (the fixture's
    first steps ran on another machine, whose kernels may round differently)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor) and a.is_floating_point():
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=lambda m: f"{where}: {m}")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-6), where
    else:
        assert a == b, where


@pytest.mark.parametrize("name", sorted(SPEC))
def test_old_checkpoint_resumes_and_ends_as_an_uninterrupted_run(tmp_path, name):
    resumed, straight, steps = tmp_path / "resumed", tmp_path / "straight", 2 * SPEC[name]["written_at"]
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copy(FIXTURES / "checkpoints" / f"{name}.pt", resumed / "checkpoints" / "last.pt")
    result = train(cfg_for(name, resumed, steps))
    assert result["status"] == "completed" and result["step"] == steps
    lines = [json.loads(s) for s in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert {r["step"] for r in lines} == {steps}  # only the evaluations after the resume point ran here

    assert train(cfg_for(name, straight, steps))["metrics"] == pytest.approx(result["metrics"], rel=1e-4, abs=1e-6)
    a = torch.load(resumed / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(straight / "checkpoints" / "last.pt", weights_only=False)
    for key in ("wall_seconds", "config_hash"):  # wall time differs; the hash is checked by loading
        a.pop(key), b.pop(key)
    close(a, b)
