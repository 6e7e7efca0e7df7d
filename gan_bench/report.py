"""`gan-bench report DIR [DIR ...]`: run directories and sweeps -> the papers' tables.

Reads every run under each DIR, pools seeds of runs with the same overrides, prints one table
(markdown, csv or latex), optionally a ROW x COL grid of one metric with a heatmap and the
published numbers beside it, the steps each group takes to reach a metric value (--reach) and
metric-against-step curves (--curves), and writes TensorBoard HParams summaries. docs/report.md
has the statistics and counting rules; the pieces live in gan_bench/reporting/.
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

from gan_bench.errors import UserError
from gan_bench.reporting import curves, groups as G, history, hparams, pivot, reach, reference, runs, tables
from gan_bench.reporting.render import EXT, FORMATS, render, render_notes


class _Parser(argparse.ArgumentParser):
    # Usage mistakes go the same way as every other bad input: one line, exit 2, via UserError.
    def error(self, message):
        raise UserError(f"{message}: see `gan-bench report --help`")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gan-bench report", description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", metavar="DIR",
                   help="run directories, sweep directories, or any parent of them")
    p.add_argument("--format", choices=FORMATS, default="markdown", help="table format")
    p.add_argument("--pivot", metavar="ROW,COL",
                   help="lay --metric out as a grid, e.g. alpha_d,alpha_g; writes heatmap PNGs")
    p.add_argument("--metric", help="metric for --pivot: success or failure (%%), or any "
                   "reported metric (mean); default: the --compare metric, else success")
    p.add_argument("--compare", metavar="NAME[,NAME]",
                   help=f"published numbers to print beside the measured ones: {', '.join(reference.COMPARISONS)}")
    p.add_argument("--metrics", metavar="NAME[,NAME]",
                   help="the metric columns, in this order (default: every metric some run reports); "
                   "a name may stand for its family, e.g. prdc10k_train for its precision, recall, ...")
    p.add_argument("--collapse-fid", type=float, default=100.0, metavar="T",
                   help="FID above which an image run counts as collapsed (default 100)")
    p.add_argument("--ignore", metavar="KEY[,KEY]", default="",
                   help="more override keys to pool over, like the seed (e.g. train.log_every)")
    p.add_argument("--reach", action="append", default=[], metavar="METRIC<=VALUE",
                   help="steps each group's seeds take until METRIC <= VALUE (or >=) in metrics.jsonl, "
                   "e.g. --reach 'w1<=0.1'; may be given more than once")
    p.add_argument("--curves", metavar="METRIC[,METRIC]",
                   help="write curves_<metric>.png: each metric against step, mean and 95%% band per group")
    p.add_argument("--out", metavar="DIR",
                   help="where report.<ext>, heatmaps, curves and hparams/ go (default: the first DIR)")
    p.add_argument("--no-hparams", action="store_true", help="skip the TensorBoard HParams summaries")
    return p


def summary_line(groups: list[G.Group]) -> str:
    counts = sum((g.counts() for g in groups), start=Counter())
    n = sum(counts.values())
    return (f"{n} runs: {counts['completed']} completed, {counts['diverged']} diverged, "
            f"{counts['failed']} failed, {counts['incomplete']} incomplete")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Cheap checks first, so a typo fails before reading a large sweep.
    comps = [reference.load(n.strip()) for n in (args.compare or "").split(",") if n.strip()]
    spec = pivot.parse_spec(args.pivot) if args.pivot else None
    if args.metric and spec is None:
        raise UserError("--metric chooses what --pivot lays out: add --pivot ROW,COL")
    conditions = [reach.parse_spec(r) for r in args.reach]
    curve_metrics = curves.parse_names(args.curves) if args.curves is not None else []

    notes: list[str] = []
    groups = G.group_runs(runs.load_runs(args.dirs, notes),
                          ignore={k.strip() for k in args.ignore.split(",") if k.strip()})
    notes += G.fingerprint_notes(groups)
    histories = {}
    if conditions or curve_metrics:
        # Every metrics.jsonl read once, keeping only these metrics; a name none has fails here,
        # before any table or picture is made.
        histories = history.load(groups, {c.metric for c in conditions} | set(curve_metrics), notes)
        history.check_metrics("--reach", [c.metric for c in conditions], histories)
        history.check_metrics("--curves", curve_metrics, histories)
    out = Path(args.out or args.dirs[0])
    out.mkdir(parents=True, exist_ok=True)

    if args.metrics is None:
        chosen = tables.metric_names(groups)
    else:
        names = [m.strip() for m in args.metrics.split(",") if m.strip()]
        if not names:
            raise UserError("--metrics needs at least one metric name, e.g. --metrics success,hq")
        chosen = tables.choose_metrics(groups, names)
    sections = [tables.main_table(groups, args.collapse_fid, compact=args.format != "csv", metrics=chosen)]
    if spec is not None:
        metric = args.metric or (comps[0].metrics[0] if comps and len(comps[0].metrics) == 1
                                 else "success")
        known = sorted(set().union(*(g.metrics for g in groups)))
        # `modes` is the tables' name for covered modes, measured as the toy `modes` or as
        # `smnist_modes<count>` (reference.measure maps it per group).
        if metric not in known and not (metric == "modes" and reference.modes_metric(set(known))):
            raise UserError(f"no run reports metric '{metric}': choose --metric from "
                            f"{', '.join(known) or '(none: no run has completed)'}")
        for grid in pivot.grids(groups, *spec, metric, comps, notes):
            sections.append(pivot.grid_table(grid, *spec))
            notes.append(f"heatmap: {pivot.heatmap(grid, *spec, metric, out)}")
    for comp in comps:
        table, more = tables.compare_table(groups, comp, compact=args.format != "csv")
        sections.append(table)
        notes += more
    for cond in conditions:
        table, results = reach.reach_table(groups, histories, cond, compact=args.format != "csv")
        sections.append(table)
        notes += reach.reach_notes(cond, results)
    for metric in curve_metrics:
        if (path := curves.write(groups, histories, metric, out, notes)) is not None:
            notes.append(f"curves: {path}")
    if not args.no_hparams:
        notes.append(f"hparams: {hparams.write(out, groups, args.collapse_fid, chosen)} "
                     f"(tensorboard --logdir {out / 'hparams'})")

    text = render(sections, args.format)
    tail = render_notes(notes + [summary_line(groups)], args.format)
    # csv keeps stdout machine-readable: notes and the summary go to stderr.
    sys.stdout.write(text + ("" if args.format == "csv" else "\n" + tail))
    if args.format == "csv":
        sys.stderr.write(tail)
    report_file = out / f"report.{EXT[args.format]}"
    report_file.write_text(text + ("" if args.format == "csv" else "\n" + tail))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
