"""scripts/smnist_eval_cost.py on tiny MNIST files the test writes: one JSON line per K with the
final evaluation's time, read from the trainer's log line, and the child's memory figures."""

import importlib.util
import json

from test_layouts import write_mnist

from gan_bench.cli import main as cli
from gan_bench.config import ROOT

_spec = importlib.util.spec_from_file_location("smnist_eval_cost", ROOT / "scripts" / "smnist_eval_cost.py")
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)


def test_one_line_per_k_with_the_evaluations_it_ran(tmp_path, capsys):
    root = tmp_path / "data"
    write_mnist(root, gz=True)
    assert cli(["prepare", "mnist-classifier", "--data-root", str(root), "--epochs", "1", "--batch-size", "16",
                "--min-accuracy", "0", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert script.main(["--k", "2", "--steps", "4", "--evals", "2", "--count", "30", "--", f"paths.data={root}",
                        "dataset.n=40", "dataset.download=false", "train.batch_size=8"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert (line["K"], line["count"], line["steps"], line["evaluations"]) == (2, 30, 4, 2)
    assert len(line["eval_seconds"]) == 2 and line["final_eval_seconds"] == line["eval_seconds"][-1] >= 0
    assert line["stacks_per_s"] > 0 and 0 < line["rss_end_gib"] <= line["peak_rss_gib"]
    assert 0 < line["heap_max_mib"] <= 1024 * line["peak_rss_gib"]
