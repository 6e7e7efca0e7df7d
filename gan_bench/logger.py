"""Where numbers go: TensorBoard scalars/images, metrics.jsonl (one object per evaluation) and the
console. Scalars are handed over as Python floats at log ticks, never per step."""

import json
import math
from pathlib import Path

import numpy as np


class Logger:
    def __init__(self, run_dir: Path):
        from torch.utils.tensorboard import SummaryWriter  # slow import, only when a run starts

        self.run_dir = Path(run_dir)
        self.tb = SummaryWriter(str(self.run_dir / "tb"))
        self.jsonl = open(self.run_dir / "metrics.jsonl", "a")

    def scalars(self, step: int, values: dict, prefix: str = "") -> None:
        for k, v in values.items():
            self.tb.add_scalar(prefix + k, v, step)

    def metrics(self, step: int, values: dict, extra: dict | None = None) -> None:
        """An evaluation: TensorBoard under metrics/ and one line of metrics.jsonl."""
        self.scalars(step, values, "metrics/")
        record = {"step": step, **(extra or {}), **{k: _json_float(v) for k, v in values.items()}}
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()

    def image(self, step: int, tag: str, hwc_uint8: np.ndarray) -> None:
        self.tb.add_image(tag, hwc_uint8, step, dataformats="HWC")

    def close(self) -> None:
        self.tb.close()
        self.jsonl.close()


def _json_float(v):
    # JSON has no NaN/inf: keep them readable as strings rather than writing invalid JSON.
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v
