"""`gan-bench atlas list|run|report`: a thin entry over the catalogue, the cells and the report."""

import argparse
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from gan_bench.atlas import catalogue, cells, results, tasks as tasks_mod
from gan_bench.errors import UserError
from gan_bench.paths import ROOT

USAGE = """usage: gan-bench atlas list [--tasks] [--catalogue F] [--tasks-file F]
       gan-bench atlas run (--tier T | --tasks x,y) [--objectives a,b|all] [--entry 'NAME: OVERRIDES'] [--seed S]
                           [--results F] [--workdir D] [HYDRA OVERRIDES ...]
       gan-bench atlas report [--results F] --out DIR"""

DEFAULT_WORKDIR = ROOT / "outputs" / "atlas"


def _names(text: str | None) -> list[str] | None:
    if text is None or text == "all":
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError(f"expected comma-separated names, got '{text}'")
    return names


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"gan-bench atlas {prog}", usage=USAGE)
    p.add_argument("--catalogue", help="a catalogue file instead of gan-bench's (entries: NAME: OVERRIDES)")
    p.add_argument("--tasks-file", help="a tasks file instead of gan-bench's")
    p.add_argument("--results", default=str(results.DEFAULT),
                   help="the results file (default docs/atlas/results.jsonl)")
    return p


def list_main(args: list[str]) -> int:
    p = _parser("list")
    p.add_argument("--tasks", action="store_true", help="the tasks instead of the objectives")
    a = p.parse_args(args)
    if a.tasks:
        for t in tasks_mod.load(a.tasks_file).tasks.values():
            print(f"{t.name}\t{t.tier}\t{t.score} ({t.direction})\treach {t.reach}\tlrs "
                  f"{','.join(f'{x:g}' for x in t.lrs)}\tseeds {t.select}+{t.eval}\t{' '.join(t.overrides)}")
        return 0
    for e in catalogue.load(a.catalogue).values():
        print(f"{e.name}\t{e.text}")
    return 0


def run_main(args: list[str]) -> int:
    p = _parser("run")
    p.add_argument("--tier", help="toy | digits | paper (the tasks that name it)")
    p.add_argument("--tasks", help="comma-separated task names (of the tier, when one is given)")
    p.add_argument("--objectives", help="comma-separated catalogue names, or all (default: the tier's list)")
    p.add_argument("--entry", action="append", default=[], help="an objective of your own, 'NAME: OVERRIDES'")
    p.add_argument("--seed", type=int, default=0, help="the first seed of every cell (default 0)")
    p.add_argument("--workdir", default=str(DEFAULT_WORKDIR), help="where cells run (default outputs/atlas)")
    a, hydra_args = p.parse_known_args(args)
    if a.tier is None and a.tasks is None:
        raise UserError("atlas run needs --tier (toy, digits or paper) or --tasks NAME[,NAME]")
    if a.seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {a.seed}")
    stray = [x for x in hydra_args if x.startswith("-")]
    if stray:
        raise UserError(f"atlas run: unknown option {stray[0]} (Hydra overrides go after the options, as KEY=VALUE)")
    spec = tasks_mod.load(a.tasks_file)
    chosen = spec.choose(a.tier, _names(a.tasks))
    entries = catalogue.load(a.catalogue, a.entry)
    if a.objectives is not None:
        names = _names(a.objectives)
    elif a.entry:  # your own entries, to rank against the atlas already measured
        names = [catalogue.parse_entry(x).name for x in a.entry]
    else:
        names = spec.objectives.get(a.tier) if a.tier else None
        names = list(names) if names else None
    extra, launch = cells.split_overrides(hydra_args)
    plan = cells.plan(chosen, catalogue.choose(entries, names), a.seed, extra)
    finished = results.done(a.results)
    pending = [c for c in plan if (c.name, c.spec) not in finished]
    print(f"atlas: {len(plan)} cells ({len(chosen)} tasks x {len({c.entry.name for c in plan})} objectives x "
          f"their lrs), {len(plan) - len(pending)} already in {a.results}, {len(pending)} to run", flush=True)
    if not pending:
        return 0
    workdir = Path(a.workdir).resolve()
    conf_dir = workdir / "conf"
    cells.write_cells(pending, conf_dir, cells.commit())
    cells.check(pending, conf_dir)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    plan_path = workdir / "plans" / f"{started.replace(':', '')}-{os.getpid()}.json"
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_text(json.dumps({"started": started, "cells": [[c.name, c.spec] for c in plan]}))
    from gan_bench.cli import _train

    cb = "+hydra.callbacks.atlas"
    try:
        return _train(["-m", f"+{cells.GROUP_DIR}={','.join(c.name for c in pending)}",
                       f"hydra.searchpath=[file://{conf_dir}]", f"hydra.sweep.dir={workdir / 'runs'}",
                       f"{cb}._target_=gan_bench.atlas.callback.AtlasCallback",
                       f"{cb}.results={Path(a.results).resolve()}", f"{cb}.cells={conf_dir / cells.GROUP_DIR}",
                       f"{cb}.plan={plan_path}", "train.progress=false", *launch])
    except (SystemExit, KeyboardInterrupt):
        # Stopped (a signal) or a cell failed: every finished cell has its row; the same command goes on.
        print(f"atlas: {len(results.done(a.results) & {(c.name, c.spec) for c in plan})}/{len(plan)} cells in "
              f"{a.results}; to go on, run the same `gan-bench atlas run ...` again (finished cells are skipped, "
              "an interrupted one resumes from its checkpoint)", flush=True)
        raise


def report_main(args: list[str]) -> int:
    p = _parser("report")
    p.add_argument("--out", required=True, help="the directory for atlas.md, its CSVs and PNGs")
    p.add_argument("--reading", help="a hand-written reading included at the top of atlas.md (default: "
                   "reading.md beside the results file, when there is one)")
    a = p.parse_args(args)
    from gan_bench.atlas import report

    rows = results.read(a.results)
    if not rows:
        raise UserError(f"no atlas results in {a.results}: run `gan-bench atlas run --tier toy` first")
    reading = Path(a.reading) if a.reading else Path(a.results).parent / "reading.md"
    if a.reading and not reading.exists():
        raise UserError(f"--reading {a.reading}: no such file")
    out = report.write(rows, Path(a.out), source=_shown(a.results), reading=reading)
    print(f"atlas report: {out}")
    return 0


def _shown(path: str) -> str:
    """A path as atlas.md prints it: relative to the repository when inside it (the file regenerates
    the same on every machine)."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else path


COMMANDS = {"list": list_main, "run": run_main, "report": report_main}


def main(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] not in COMMANDS:
        raise UserError(f"unknown atlas command '{args[0]}': choose list, run or report")
    return COMMANDS[args[0]](args[1:])
