"""TensorBoard HParams summaries: one session per group, so the sweep sorts and filters in the
HParams tab (`tensorboard --logdir <out>/hparams`, or the whole outputs/ tree)."""

import re
import shutil
from pathlib import Path

from gan_bench.errors import UserError
from gan_bench.reporting import groups as G
from gan_bench.reporting.tables import COUNTS

# Marks a folder this module wrote, so a rerun may replace it: add_hparams appends new sessions
# to old ones, and the same group would then show twice.
MARKER = ".gan-bench-report"


def _isnum(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def group_metrics(g: G.Group, collapse_fid: float, metrics: list[str]) -> dict[str, float]:
    """The numbers of one group's table row (means and percentages; intervals stay in the table)."""
    counts = g.counts()
    out = {"report/n": float(len(g.seeds))}
    out.update({f"report/{c}": float(counts[c]) for c in COUNTS})
    cells = {}
    for m in metrics:
        if m in G.RATE_METRICS:
            cells[f"{m}_pct"] = G.rate_of(g, m)
            continue
        cells[f"{m}_mean"] = G.mean_of(g, m)
        if m.startswith("fid"):
            cells[f"{m}_collapse_pct"] = G.collapse_of(g, m, collapse_fid)
    for name, cell in cells.items():
        v = getattr(cell, "value", getattr(cell, "mean", None))  # Estimate / MeanStd; Mixed -> None
        if v is not None:
            out[f"report/{name}"] = float(v)
    return out


def _prepare(d: Path) -> None:
    if d.exists():
        if not (d / MARKER).is_file() and any(d.iterdir()):
            raise UserError(f"{d} exists and was not written by gan-bench report: "
                            "pass another --out, or --no-hparams")
        shutil.rmtree(d)
    d.mkdir(parents=True)
    (d / MARKER).write_text("written by gan-bench report; replaced on every report run\n")


def write(out_dir: Path, groups: list[G.Group], collapse_fid: float, metrics: list[str]) -> Path:
    from torch.utils.tensorboard import SummaryWriter  # torch is slow to import: only when needed

    d = out_dir / "hparams"
    _prepare(d)
    keys = [k for k, _ in groups[0].key]
    # A key is numeric only if every group's value is, so the tab can sort it as a number.
    numeric = {k: all(_isnum(v) for g in groups for kk, v in g.key if kk == k and v != "")
               for k in keys}
    discrete = {k: sorted({v for g in groups for kk, v in g.key if kk == k and v != ""})
                for k in keys if not numeric[k]}
    with SummaryWriter(log_dir=str(d)) as w:
        for i, g in enumerate(groups):
            hp = {k: float(v) if numeric[k] else v for k, v in g.key if v != ""}
            w.add_hparams(hp or {"group": g.label}, group_metrics(g, collapse_fid, metrics),
                          hparam_domain_discrete={k: v for k, v in discrete.items() if k in hp},
                          run_name=f"{i:03d}_{re.sub(r'[^A-Za-z0-9._=,-]+', '_', g.label)}")
    return d
