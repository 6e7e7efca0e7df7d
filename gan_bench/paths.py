"""Where gan-bench lives and where its data go by default: the lowest layer, imported by the
config plumbing and by the data and metric modules alike (so none of them imports config.py)."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"


def default_data_root() -> str:
    """paths.data's default outside a Hydra config (GAN_BENCH_DATA, else <repo>/data), for the
    commands that take --data-root."""
    return os.environ.get("GAN_BENCH_DATA", str(ROOT / "data"))
