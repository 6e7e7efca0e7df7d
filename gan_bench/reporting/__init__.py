"""The pieces of `gan-bench report` (entry point: gan_bench.report.main).

runs.py finds and reads run directories, groups.py pools seeds into groups and computes their
statistics, render.py prints tables as markdown/csv/latex, pivot.py lays one metric out as a grid
and a heatmap, reference.py holds the published numbers, hparams.py writes TensorBoard HParams;
history.py reads metrics.jsonl for reach.py (steps to reach a metric value, --reach) and
curves.py (metrics against step, --curves).
"""
