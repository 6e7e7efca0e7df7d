"""The catalogue: named objectives, each the overrides that make it on `gan-bench train`'s command line."""

import re
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from gan_bench.errors import UserError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


@dataclass(frozen=True)
class Entry:
    name: str
    overrides: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.overrides)


def parse_entry(text: str, where: str = "--entry") -> Entry:
    """`NAME: OVERRIDES` (as `gan-bench atlas run --entry` takes it) -> Entry."""
    name, sep, rest = str(text).partition(":")
    if not sep:
        raise UserError(f"{where} '{text}' needs NAME: OVERRIDES, e.g. --entry 'mine: loss=custom "
                        "loss.builder=mypkg.losses:build'")
    return make_entry(name.strip(), rest, where)


def make_entry(name: str, overrides: str, where: str) -> Entry:
    if not NAME.fullmatch(name):
        raise UserError(f"{where}: objective name '{name}' must be letters, digits and . _ + - (no spaces)")
    try:
        parts = tuple(shlex.split(str(overrides)))
    except ValueError as e:
        raise UserError(f"{where}: entry '{name}': cannot split its overrides ({e})") from None
    if not parts:
        raise UserError(f"{where}: entry '{name}' has no overrides: give at least its loss, e.g. loss=bce")
    for p in parts:
        if "=" not in p or p.startswith(("-", "~")):
            raise UserError(f"{where}: entry '{name}': '{p}' is not an override KEY=VALUE (deletions and "
                            "flags are not accepted in an entry)")
        if p.lstrip("+").startswith("hydra"):
            raise UserError(f"{where}: entry '{name}': '{p}' is a Hydra setting, not part of an objective: "
                            "put it after `gan-bench atlas run` instead")
    return Entry(name, parts)


def _read_yaml(path) -> dict:
    path = Path(path) if isinstance(path, str) else path  # or the package's own file (a Traversable)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"cannot read the catalogue {path}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        raise UserError(f"catalogue {path}: needs a mapping `entries:` of NAME: OVERRIDES")
    return data


def load(path=None, extra: list[str] = ()) -> dict[str, Entry]:
    """The catalogue (gan-bench's own unless `path`), then `extra` entries ('NAME: OVERRIDES'),
    which may not reuse a name."""
    data = _read_yaml(path or resources.files("gan_bench.atlas") / "catalogue.yaml")
    where = f"catalogue {path}" if path else "catalogue"
    out = {}
    for name, overrides in data["entries"].items():
        out[str(name)] = make_entry(str(name), overrides, where)
    for text in extra:
        e = parse_entry(text)
        if e.name in out and out[e.name] != e:
            raise UserError(f"--entry '{e.name}' is already in the catalogue as '{out[e.name].text}': "
                            "choose another name")
        out[e.name] = e
    return out


def excluded(path=None) -> dict[str, str]:
    """Registered losses deliberately left out of the catalogue, with the reason."""
    data = _read_yaml(path or resources.files("gan_bench.atlas") / "catalogue.yaml")
    return {str(k): str(v) for k, v in (data.get("excluded") or {}).items()}


def choose(entries: dict[str, Entry], names: list[str] | None) -> list[Entry]:
    """The entries named (all when None), in catalogue order; an unknown name is one line."""
    if names is None:
        return list(entries.values())
    unknown = [n for n in names if n not in entries]
    if unknown:
        raise UserError(f"unknown objective {', '.join(unknown)}: `gan-bench atlas list` shows the catalogue "
                        "(or add one with --entry 'NAME: OVERRIDES')")
    return [entries[n] for n in dict.fromkeys(names)]
