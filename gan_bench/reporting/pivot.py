"""One metric laid out as ROW x COL grids like the papers' tables, plus a heatmap PNG per grid.

Groups that differ in any other key go to separate grids (slices), so a grid never mixes, say,
saturating and non-saturating runs in one cell.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from gan_bench.errors import UserError
from gan_bench.reporting.groups import RATE_METRICS, Group, Mixed, sort_token
from gan_bench.reporting.reference import Comparison, RefRow, inside, measure, rows_for
from gan_bench.reporting.render import Column, Table
from gan_bench.reporting.stats import Estimate


def parse_spec(spec: str) -> tuple[str, str]:
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise UserError(f"--pivot needs two different keys ROW,COL, got '{spec}': "
                        "e.g. --pivot alpha_d,alpha_g")
    return parts[0], parts[1]


@dataclass(frozen=True)
class PivotCell:
    est: Estimate | Mixed | None
    ref: RefRow | None = None

    @property
    def number(self) -> float | None:
        return self.est.value if isinstance(self.est, Estimate) else None

    def text(self, latex: bool = False) -> str:
        if self.est is None:
            return "" if latex else "–"
        base = "mixed" if isinstance(self.est, Mixed) else f"{self.est.value:.{self.est.digits}f}"
        if self.ref is None:
            return base
        flag = {True: "in", False: "OUT", None: "?"}[inside(self.est, self.ref)]
        return f"{base} (ref {self.ref.value:g}, {flag})"

    def fields(self) -> list:
        if isinstance(self.est, Mixed):
            return ["mixed"]
        return [] if self.number is None else [float(f"{self.number:.6g}")]


@dataclass
class Grid:
    title: str
    slice_label: str
    rows: list[str]
    cols: list[str]
    cells: dict[tuple[str, str], PivotCell]


def grids(groups: list[Group], row: str, col: str, metric: str,
          comps: list[Comparison], notes: list[str]) -> list[Grid]:
    if not any(g.value(row) is not None and g.value(col) is not None for g in groups):
        keys = ", ".join(k for k, _ in groups[0].key) or "none"
        raise UserError(f"--pivot {row},{col}: no group has both keys (override keys here: "
                        f"{keys}); pivot on override or config keys, e.g. --pivot alpha_d,alpha_g")
    comp = next((c for c in comps if metric in c.metrics), None)
    varying = [k for k, _ in groups[0].key if k not in (row, col)
               and len({dict(g.key)[k] for g in groups}) > 1]
    out: dict[tuple, Grid] = {}
    unit = " %" if metric in RATE_METRICS else ""
    for g in groups:
        r, c = g.value(row), g.value(col)
        if r is None or c is None:
            notes.append(f"pivot: group {g.label} has no value for {row if r is None else col}; "
                         "left out of the grid")
            continue
        sl = tuple((k, dict(g.key)[k]) for k in varying)
        label = ",".join(f"{k}={v or 'default'}" for k, v in sl)
        title = f"{metric}{unit} by {row} (rows) x {col} (columns)" + (f", {label}" if label else "")
        if comp is not None:
            title += f"; published {comp.name} in parentheses, in/OUT of the 95% CI"
        grid = out.setdefault(sl, Grid(title, label, [], [], {}))
        if (r, c) in grid.cells:
            notes.append(f"pivot: two groups fall in cell {row}={r}, {col}={c}"
                         f"{' of ' + label if label else ''}; kept the first, left out {g.label}")
            continue
        refs = rows_for(g, comp, metric) if comp is not None else []
        grid.cells[(r, c)] = PivotCell(measure(g, metric), refs[0] if refs else None)
        for vals, v in ((grid.rows, r), (grid.cols, c)):
            if v not in vals:
                vals.append(v)
    for grid in out.values():
        grid.rows.sort(key=sort_token)
        grid.cols.sort(key=sort_token)
    return list(out.values())


def grid_table(grid: Grid, row: str, col: str) -> Table:
    # csv has no titles: the corner cell names the slice, so several grids stay apart.
    csv_corner = f"{row}\\{col}" + (f" ({grid.slice_label})" if grid.slice_label else "")
    t = Table(grid.title, [Column(f"{row} \\ {col}", [csv_corner], text=True)]
              + [Column(c, [c]) for c in grid.cols])
    for r in grid.rows:
        t.rows.append([r] + [grid.cells.get((r, c)) for c in grid.cols])
    return t


def heatmap(grid: Grid, row: str, col: str, metric: str, out_dir: Path) -> Path:
    # Figure + Agg canvas directly: no pyplot, so no global backend state to set or leak.
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    z = np.full((len(grid.rows), len(grid.cols)), np.nan)
    for (r, c), cell in grid.cells.items():
        if cell.number is not None:
            z[grid.rows.index(r), grid.cols.index(c)] = cell.number
    rate = metric in RATE_METRICS
    fig = Figure(figsize=(1.1 * len(grid.cols) + 2.5, 0.6 * len(grid.rows) + 1.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(z), cmap="viridis", aspect="auto",
                   vmin=0 if rate else None, vmax=100 if rate else None)
    fig.colorbar(im, ax=ax, label=f"{metric}{' (%)' if rate else ''}")
    ax.set_xticks(range(len(grid.cols)), grid.cols)
    ax.set_yticks(range(len(grid.rows)), grid.rows)
    ax.set_xlabel(col)
    ax.set_ylabel(row)
    ax.set_title(f"{metric}" + (f"\n{grid.slice_label}" if grid.slice_label else ""), fontsize=9)
    lo, hi = im.get_clim()
    for (r, c), cell in grid.cells.items():
        i, j = grid.rows.index(r), grid.cols.index(c)
        text = cell.text().replace(" (ref ", "\n(ref ") if cell.est is not None else ""
        dark = cell.number is not None and hi > lo and (cell.number - lo) / (hi - lo) < 0.6
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    fig.tight_layout()
    name = f"heatmap_{metric}" + (f"_{_slug(grid.slice_label)}" if grid.slice_label else "")
    path = out_dir / f"{name}.png"
    fig.savefig(path, dpi=120)
    return path


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=,-]+", "_", s)
