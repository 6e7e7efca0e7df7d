"""Tables as markdown (for reading), csv (for scripts: one field per number) and latex (for papers).

A cell is None (empty), a str, an int, a float (printed with its column's digits), or an object
with text(latex) -> str and fields() -> list (stats.Estimate, stats.MeanStd, groups.Mixed, ...).
"""

import csv
import io
from dataclasses import dataclass, field

FORMATS = ("markdown", "csv", "latex")
EXT = {"markdown": "md", "csv": "csv", "latex": "tex"}


@dataclass
class Column:
    title: str
    csv: list[str]  # csv header, one name per field the cells of this column produce
    digits: int = 2
    text: bool = False  # left-aligned key column


@dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[list] = field(default_factory=list)


def cell_text(cell, col: Column, latex: bool = False) -> str:
    if cell is None:
        return "" if latex else "–"
    if hasattr(cell, "text"):
        return cell.text(latex)
    if isinstance(cell, float):
        return f"{cell:.{col.digits}f}"
    return _tex(str(cell)) if latex else str(cell)


def cell_fields(cell, col: Column) -> list:
    if cell is None:
        out = []
    elif hasattr(cell, "fields"):
        out = list(cell.fields())
    elif isinstance(cell, float):
        out = [float(f"{cell:.6g}")]
    else:
        out = [cell]
    return (out + [""] * len(col.csv))[: len(col.csv)]


def markdown(t: Table) -> str:
    head = [c.title for c in t.columns]
    body = [[cell_text(x, c).replace("|", "\\|") for x, c in zip(r, t.columns)] for r in t.rows]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(head)]

    def line(cells):
        return "| " + " | ".join(
            s.ljust(w) if c.text else s.rjust(w) for s, w, c in zip(cells, widths, t.columns)) + " |"

    rule = "|" + "|".join((":" + "-" * (w + 1)) if c.text else ("-" * (w + 1) + ":")
                          for w, c in zip(widths, t.columns)) + "|"
    return "\n".join([f"## {t.title}", "", line(head), rule] + [line(r) for r in body])


def csv_text(t: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([h for c in t.columns for h in c.csv])
    for r in t.rows:
        w.writerow([f for x, c in zip(r, t.columns) for f in cell_fields(x, c)])
    return buf.getvalue().rstrip("\n")


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        "±": r"$\pm$", ">": r"$>$", "<": r"$<$", "∞": r"$\infty$"}


def _tex(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)


def latex(t: Table) -> str:
    # booktabs rules: papers use them; needs \usepackage{booktabs}.
    spec = "".join("l" if c.text else "r" for c in t.columns)
    rows = [" & ".join(_tex(c.title) for c in t.columns) + " \\\\", "\\midrule"]
    rows += [" & ".join(cell_text(x, c, latex=True) for x, c in zip(r, t.columns)) + " \\\\"
             for r in t.rows]
    return "\n".join([f"% {t.title}", f"\\begin{{tabular}}{{{spec}}}", "\\toprule", *rows,
                      "\\bottomrule", "\\end{tabular}"])


def render(tables: list[Table], fmt: str) -> str:
    one = {"markdown": markdown, "csv": csv_text, "latex": latex}[fmt]
    return "\n\n".join(one(t) for t in tables) + "\n"


def render_notes(lines: list[str], fmt: str) -> str:
    """Notes and the summary line: plain text, or latex comments so the .tex stays compilable."""
    prefix = "% " if fmt == "latex" else ""
    return "".join(f"{prefix}{line}\n" for line in lines)
