"""The objective atlas: every objective of the catalogue ranked on a set of tasks, with intervals over
paired seeds and a learning rate chosen on seeds other than those that score it (docs/atlas.md).

    catalogue.py  the named objectives (catalogue.yaml) and a user's own (--entry)
    tasks.py      the tasks and tiers (tasks.yaml): budget, score, threshold, lr grid, seeds
    cells.py      (task, objective, lr) cells: their overrides, the generated config group, the plan
    callback.py   the Hydra callback that turns a finished cell's run into a results row
    results.py    the results file (JSON lines, appended under a lock)
    stats.py      intervals, lr selection, ranks, Friedman and sign tests
    report.py     atlas.md, CSVs and PNGs
    cli.py        `gan-bench atlas list|run|report`

Cells are ordinary gan-bench runs launched as one Hydra multirun: nothing here reaches into the trainer.
"""
