"""Find run directories and read what the trainer left in them, one SeedResult per seed.

An ensemble run (train.ensemble=K) is K seeds; a run without result.json (still going, or killed)
is K `incomplete` seeds. Nothing here judges outcomes: that is groups.py.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from gan_bench.errors import UserError
from gan_bench.metrics import TOY_KEYS

# Mode-coverage metrics share one fingerprint, recorded under "modes" (see the trainer's result.json).
MODE_METRICS = set(TOY_KEYS)


@dataclass
class SeedResult:
    run_dir: Path
    seed: int | None
    status: str
    metrics: dict = field(default_factory=dict)
    fingerprints: dict = field(default_factory=dict)
    replica: int | None = None
    diverged_at: int | None = None  # the step whose loss turned non-finite (diverged seeds)

    def value(self, metric: str) -> float | None:
        # The trainer writes non-finite floats as the strings "nan"/"inf": float() reads them back.
        try:
            return float(self.metrics[metric])
        except (KeyError, TypeError, ValueError):
            return None

    def fingerprint(self, metric: str) -> str | None:
        if metric in self.fingerprints:
            return self.fingerprints[metric]
        return self.fingerprints.get("modes") if metric in MODE_METRICS else None


# libyaml when present: a sweep has thousands of configs, and pure-Python YAML is ~10x slower.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Run:
    path: Path
    overrides: dict[str, str]  # key -> normalized value, in the order written
    config: dict | None  # .hydra/config.yaml as plain data; None when missing
    seeds: list[SeedResult]
    _omega: object = field(default=None, repr=False)

    def select(self, key: str):
        """A config value, resolving interpolations where possible; None when absent/unresolvable."""
        node = self.config
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        if not (isinstance(node, str) and "${" in node):
            return node
        # Only interpolated values pay for OmegaConf (slow to build), once per run.
        if self._omega is None:
            self._omega = OmegaConf.create(self.config)
        return OmegaConf.select(self._omega, key, default=None, throw_on_resolution_failure=False)


def is_run_dir(path: Path) -> bool:
    return (path / ".hydra").is_dir() or (path / "result.json").is_file()


def find_run_dirs(dirs: list[str]) -> list[Path]:
    """Every run directory at or below each DIR, sorted, each once."""
    found: dict[Path, Path] = {}  # resolved -> as the user spelled it, so paths print familiar
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            raise UserError(f"'{d}' is not a directory: pass a run directory, a sweep "
                            "directory or a parent of them (e.g. outputs/multirun/<date>/<time>)")
        for dirpath, dirnames, _ in os.walk(root):
            here = Path(dirpath)
            if is_run_dir(here):
                found.setdefault(here.resolve(), here)
                dirnames[:] = []  # runs do not nest; skip tb/, samples/, checkpoints/
            else:
                dirnames.sort()
    if not found:
        raise UserError(f"no run directories under {', '.join(dirs)} (a run directory "
                        "holds .hydra/ or result.json): pass the directory that `gan-bench train` wrote")
    return sorted(found.values())


def normalize_value(v: str) -> str:
    """Spell numbers one way so `alpha_d=1`, `alpha_d=1.0` and `alpha_d=1.00` group together."""
    v = str(v).strip()
    try:
        x = float(v)
    except ValueError:
        return v
    if v.lower() in ("nan", "inf", "-inf", "+inf", "infinity") or "_" in v:
        return v
    s = repr(x)
    return s[:-2] if s.endswith(".0") else s


def parse_overrides(items: list) -> dict[str, str]:
    out = {}
    for item in items:
        item = str(item)
        if item.startswith("~") or "=" not in item:
            continue  # deletions carry no value to group by
        key, value = item.split("=", 1)
        out[key.lstrip("+")] = normalize_value(value)
    return out


def load_run(path: Path, notes: list[str]) -> Run:
    hydra = path / ".hydra"
    overrides: dict[str, str] = {}
    if (hydra / "overrides.yaml").is_file():
        try:
            items = yaml.load((hydra / "overrides.yaml").read_text(), Loader=_Loader) or []
            overrides = parse_overrides(items if isinstance(items, list) else [])
        except yaml.YAMLError as e:
            notes.append(f"{path}: unreadable .hydra/overrides.yaml ({e.__class__.__name__}); "
                         "grouped as if it had no overrides")
    config = None
    if (hydra / "config.yaml").is_file():
        try:
            config = yaml.load((hydra / "config.yaml").read_text(), Loader=_Loader)
        except yaml.YAMLError as e:
            notes.append(f"{path}: unreadable .hydra/config.yaml ({e.__class__.__name__})")
        if not isinstance(config, dict):
            config = None
    run = Run(path, overrides, config, [])
    run.seeds = _seed_results(run, _read_result(path, notes), notes)
    return run


def _read_result(path: Path, notes: list[str]) -> dict | None:
    f = path / "result.json"
    if not f.is_file():
        return None
    try:
        result = json.loads(f.read_text())
    except (OSError, ValueError):
        # The trainer writes result.json atomically, so this is damage, not a run in progress;
        # counting it as incomplete keeps it visible without inventing an outcome.
        notes.append(f"{path}: result.json is not valid JSON; counted as incomplete")
        return None
    return result if isinstance(result, dict) else None


def _status(s, path: Path, notes: list[str]) -> str:
    if s in ("completed", "diverged", "failed"):
        return s
    notes.append(f"{path}: unknown status {s!r} in result.json; counted as failed")
    return "failed"


def _int(x) -> int | None:
    try:
        return int(x)
    except (TypeError, ValueError):
        return None


def _seed_results(run: Run, result: dict | None, notes: list[str]) -> list[SeedResult]:
    base = _int((result or {}).get("seed"))
    if base is None:
        base = _int(run.select("seed"))
    if base is None:
        base = _int(run.overrides.get("seed"))
    k = max(1, _int(run.select("train.ensemble")) or 1)
    seeds = [None] * k if base is None else [base + i for i in range(k)]
    if result is None:
        return [SeedResult(run.path, s, "incomplete", replica=i if k > 1 else None)
                for i, s in enumerate(seeds)]
    fps = result.get("fingerprints") or {}
    replicas = result.get("replicas")
    if isinstance(replicas, list) and replicas:
        out = []
        for i, r in enumerate(replicas):
            r = r if isinstance(r, dict) else {}
            seed = _int(r.get("seed", None if base is None else base + i))
            status = _status(r.get("status", result.get("status")), run.path, notes)
            out.append(SeedResult(run.path, seed, status, r.get("metrics") or {},
                                  r.get("fingerprints") or fps, replica=i,
                                  diverged_at=_int(r.get("diverged_at"))))
        return out
    status = _status(result.get("status"), run.path, notes)
    if k > 1:
        # An ensemble that stopped before writing per-replica records (e.g. failed at start):
        # K seeds with its status and no per-seed metrics.
        return [SeedResult(run.path, s, status, {}, fps, replica=i) for i, s in enumerate(seeds)]
    return [SeedResult(run.path, seeds[0], status, result.get("metrics") or {}, fps,
                       diverged_at=_int(result.get("diverged_at")))]


def load_runs(dirs: list[str], notes: list[str]) -> list[Run]:
    return [load_run(p, notes) for p in find_run_dirs(dirs)]
