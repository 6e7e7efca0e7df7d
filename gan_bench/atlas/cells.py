"""Cells: one (task, objective, lr) each, trained as one seed ensemble by an ordinary gan-bench run.

A cell's overrides are the task's budget, the objective's overrides, then `optim.lr`, `seed` and
`train.ensemble`. The atlas writes them as one option of a generated config group, `atlas_cell`
(a `# @package _global_` file per cell under <workdir>/conf/atlas_cell/), so that every cell of a
plan is one value of a single Hydra multirun (`+atlas_cell=c1,c2,...`): joblib, SLURM or any other
launcher runs the cells unchanged, and a cell's job directory is named after it. Beside each file a
JSON says what the cell is, for the callback that writes its results row.
"""

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from omegaconf import OmegaConf

from gan_bench import atomic
from gan_bench.atlas.catalogue import Entry
from gan_bench.atlas.tasks import Task
from gan_bench.config import GROUPS
from gan_bench.errors import UserError
from gan_bench.paths import CONF_DIR, ROOT

GROUP_DIR = "atlas_cell"


@dataclass(frozen=True)
class Cell:
    task: Task
    entry: Entry
    lr: float
    seed: int  # the first seed; the ensemble trains seed .. seed + task.seeds - 1
    extra: tuple[str, ...] = ()  # overrides given after `atlas run` that change what a cell trains

    @property
    def name(self) -> str:
        return f"{self.task.name}.{self.entry.name}.lr{self.lr:g}.s{self.seed}"

    @property
    def overrides(self) -> list[str]:
        return [*self.task.overrides, *self.entry.overrides, *self.extra,
                f"optim.lr={self.lr:g}", f"seed={self.seed}", f"train.ensemble={self.task.seeds}"]

    @property
    def spec(self) -> str:
        """What the cell trains, as a short hash of its overrides: a row counts as this cell's only
        when its spec matches, so a changed budget or entry is trained again, never mixed in."""
        return hashlib.sha256(json.dumps(self.overrides).encode()).hexdigest()[:12]

    def describe(self, commit: str) -> dict:
        t = self.task
        return {"cell": self.name, "spec": self.spec, "task": t.name, "tier": t.tier, "objective": self.entry.name,
                "lrs": list(t.lrs),
                "overrides": self.entry.text, "task_overrides": " ".join(t.overrides), "lr": self.lr,
                "seed": self.seed, "select": t.select, "eval": t.eval, "score": t.score,
                "direction": t.direction, "metrics": list(t.metrics), "reach": str(t.reach),
                "reach_spec": asdict(t.reach), "extra": " ".join(self.extra), "commit": commit}


def plan(tasks: list[Task], entries: list[Entry], seed: int, extra: tuple[str, ...] = ()) -> list[Cell]:
    return [Cell(t, e, lr, seed, tuple(extra)) for t in tasks for e in entries for lr in t.lrs]


def split_overrides(args: list[str]) -> tuple[list[str], list[str]]:
    """Overrides given after `atlas run`: (those that change what a cell trains, so they join its
    overrides and its spec; those that say only where or how it runs: Hydra's own settings and the
    keys sweep directory names leave out, e.g. train.device)."""
    from omegaconf import OmegaConf

    from gan_bench.paths import CONF_DIR

    excluded = set(OmegaConf.load(CONF_DIR / "train.yaml").hydra.job.config.override_dirname.exclude_keys)
    cell, launch = [], []
    for a in args:
        key = a.split("=", 1)[0].lstrip("+~")
        (launch if key.startswith("hydra") or key in excluded else cell).append(a)
    return cell, launch


def commit() -> str:
    """gan-bench's commit (with -dirty when the tree has changes), or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def _is_group(key: str) -> bool:
    return key in GROUPS or (CONF_DIR / key).is_dir()


def cell_yaml(cell: Cell) -> str:
    """The cell's overrides as a config file: group choices into its defaults list, values merged
    after them (as Hydra applies command-line values after the groups they refine)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(cell.overrides)
    except Exception as e:  # Hydra's grammar errors name the override
        raise UserError(f"cell {cell.name}: {e}".splitlines()[0]) from None
    defaults, values = [], OmegaConf.create({})
    for o in parsed:
        if o.is_delete() or o.is_sweep_override():
            raise UserError(f"cell {cell.name}: '{o.input_line}' is a deletion or a sweep; an atlas entry "
                            "or task holds single values (the atlas sweeps lr and seeds itself)")
        if _is_group(o.key_or_group):
            defaults.append({f"override /{o.key_or_group}": o.value()})
        else:
            OmegaConf.update(values, o.key_or_group, o.value(), merge=True, force_add=True)
    body = OmegaConf.to_yaml(OmegaConf.create({"defaults": [*defaults, "_self_"], **values}))
    return (f"# @package _global_\n# atlas cell {cell.name}: {' '.join(cell.overrides)}\n"
            f"# generated by `gan-bench atlas run`\n{body}")


def write_cells(cells: list[Cell], conf_dir: Path, commit_id: str) -> None:
    group = Path(conf_dir) / GROUP_DIR
    for c in cells:
        atomic.write_text(group / f"{c.name}.yaml", cell_yaml(c))
        atomic.write_json(group / f"{c.name}.json", c.describe(commit_id))


def check(cells: list[Cell], conf_dir: Path) -> None:
    """Every (task, objective) pair composed, checked and its loss and penalty built, before any
    cell runs: a bad entry or task is one line naming it, not a failed job an hour in. One cell per
    pair: its lr and seeds cannot make an entry invalid (a task's lrs are checked when it loads)."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from gan_bench.config import check_config, check_overrides
    from gan_bench.sweep.names import register_resolvers

    register_resolvers()
    search = f"hydra.searchpath=[file://{Path(conf_dir).resolve()}]"
    first = {}
    for c in cells:
        first.setdefault((c.task.name, c.entry.name), c)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for c in first.values():
            where = f"objective '{c.entry.name}' ({c.entry.text}) on task '{c.task.name}'"
            try:
                check_overrides(c.overrides)  # an unknown option, with the valid ones named
                cfg = compose("train", overrides=[f"+{GROUP_DIR}={c.name}", search])
                check_config(cfg)
                instantiate(cfg.loss)
                instantiate(cfg.penalty)
            except UserError as e:
                raise UserError(f"{where}: {e}") from None
            except Exception as e:  # Hydra's composition errors: an unknown key or option
                raise UserError(f"{where}: {str(e).splitlines()[0]}") from None
            _check_score(c.task, cfg, where)


def _check_score(task: Task, cfg, where: str) -> None:
    from gan_bench.metrics import DENSITY1D_TARGETS, TOY_KEYS, density1d_keys

    target = cfg.dataset.get("_target_", "")
    if target in DENSITY1D_TARGETS:
        known = density1d_keys(len(cfg.dataset.get("means", [0])))
    elif target.startswith("gan_bench.data.toy."):
        known = TOY_KEYS
    else:  # image metrics: a key is a final metric's name or begins with it (smnist_modes25k_kl)
        names = list(cfg.eval.final_metrics or [])
        known = [k for k in task.keys if any(k.startswith(n) for n in names)]
    missing = [k for k in task.keys if k not in known]
    if missing:
        raise UserError(f"{where}: the runs report no {', '.join(missing)} (task '{task.name}' scores it): "
                        f"its metrics are {', '.join(known) or 'none'}")
