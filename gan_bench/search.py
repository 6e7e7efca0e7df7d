"""Hyperparameter search (`hydra/sweeper=optuna`, docs/sweeps.md): what a trial reports.

`search.metric` names a metric of the run; the Hydra task function returns its value
(`trial_value`), which the Optuna sweeper maximizes or minimizes (`hydra.sweeper.direction`,
by default what the metric asks for: `direction`). A trial's value follows the report's counting
rules (gan_bench/reporting/groups.py), so a study optimizes what `gan-bench report` shows:
- success / failure over an ensemble (train.ensemble=K) is the fraction of its replicas, a
  diverged replica counting as a failed trial (success 0, failure 1);
- any other metric is the mean over the replicas that completed;
- a run with no such value (every replica diverged, a NaN, a failed job) returns the worst value
  there is, -inf when maximizing and +inf when minimizing, so the study goes on and the sampler
  learns to avoid that region. The job itself is recorded as usual (result.json, the ledger).
"""

import logging
import math
import warnings

from omegaconf import OmegaConf

from gan_bench.errors import UserError
from gan_bench.metrics import DENSITY1D_KEYS, DENSITY1D_TARGETS, DIVERGED_AS

# Where the better value lies: the toy metrics by name, image metrics by their kind, the start of
# the name (gan_bench/metrics/image.py: fid10k_train, fid_logits_nonstandard10k_heldout20, is50k,
# kid50k_train, prdc10k_train_precision, smnist_modes25k).
TOY = {"success": "maximize", "failure": "minimize", "hq": "maximize", "modes": "maximize",
       "kl": "minimize", "rkl": "minimize", "js": "minimize", "tv": "minimize"}
# The 1-D sets' divergences, distance and counts (gan_bench/metrics/density1d.py): all smaller is
# better; a mode_mass_<i> has no better direction (its target is the mode's weight).
DENSITY1D = {k: "minimize" for k in DENSITY1D_KEYS}
BY_NAME = {**DENSITY1D, **TOY}  # js is both sets': minimize either way
KINDS = {"fid": "minimize", "kid": "minimize", "is": "maximize", "prdc": "maximize", "smnist_modes": "maximize",
         "fd_mnist": "minimize", "mnist_classes": "maximize", "fd_dinov2": "minimize", "prdc_dinov2": "maximize"}


NO_METRIC = ("hydra/sweeper=optuna optimizes a metric of the run: name it with search.metric=NAME, "
             "e.g. search.metric=success (toy data) or search.metric=fid10k_train (images)")


def direction(metric) -> str:
    """maximize or minimize for a metric key; one it cannot place is a UserError."""
    if metric is None:
        raise UserError(NO_METRIC)
    m = str(metric)
    if m in BY_NAME:
        return BY_NAME[m]
    # The count follows the kind, after a `_` where the kind ends in a digit (fd_dinov2_50k_train).
    kind = max((k for k in KINDS if m.startswith(k) and m[len(k):].removeprefix("_" if k[-1].isdigit() else "")[:1]
                .isdigit()), key=len, default=None)
    if m.startswith("fid_logits_nonstandard"):
        kind = "fid"
    if kind is None or m.endswith("_std"):  # an IS's spread over splits has no better direction
        raise UserError(f"search.metric={m}: not a metric whose better direction is known; pass "
                        "hydra.sweeper.direction=maximize or hydra.sweeper.direction=minimize")
    return "minimize" if m.endswith("_kl") else KINDS[kind]  # smnist_modes25k_kl: KL to uniform


OmegaConf.register_new_resolver("gb_search_direction", direction, replace=True)


def check_args(args: list[str]) -> None:
    """Before Hydra starts (`gan-bench train` calls this): make hydra/sweeper=optuna select
    conf/hydra/sweeper/optuna.yaml, and check the command line of a search, so a search without a
    metric, or with one whose direction is unknown, is one line instead of a traceback from inside
    the sweeper's setup."""
    installed = _use_our_preset()
    if "hydra/sweeper=optuna" not in [a.lstrip("+") for a in args]:
        return
    if not installed:
        raise UserError("hydra/sweeper=optuna needs the hydra-optuna-sweeper package: pip install hydra-optuna-sweeper")
    values = {k: v for k, _, v in (a.partition("=") for a in args)}
    metric = values.get("search.metric")
    if metric in (None, "", "null"):
        raise UserError(NO_METRIC)
    if "," in metric:
        raise UserError(f"search.metric={metric}: a study optimizes one metric; run one study per metric")
    if "hydra.sweeper.direction" not in values:
        direction(metric)


def check_search(cfg) -> None:
    """In each trial, before training: search.metric must be a number this run's result.json will
    hold, or every trial would end with the worst value and the study would learn nothing."""
    metric = OmegaConf.select(cfg, "search.metric", default=None)
    if metric is None:
        return
    m = str(metric)
    target = str(OmegaConf.select(cfg, "dataset._target_", default=""))
    if target in DENSITY1D_TARGETS:
        if m not in DENSITY1D_KEYS and not m.startswith("mode_mass_"):
            raise UserError(f"search.metric={m}: runs on 1-D data report {', '.join(DENSITY1D_KEYS)} "
                            "and mode_mass_<i>: choose one of them")
        return
    if ".toy." in target:
        if m not in TOY:
            raise UserError(f"search.metric={m}: runs on toy data report {', '.join(TOY)}: choose one of them")
        return
    # An image run's result.json holds its last evaluation: eval.final_metrics (eval.metrics without them),
    # each name a key or the start of its keys (prdc10k_train -> prdc10k_train_precision, ...).
    names = list(cfg.eval.final_metrics or cfg.eval.metrics or [])
    if not any(m == n or m.startswith(f"{n}_") for n in names):
        raise UserError(f"search.metric={m}: this run does not compute it at its end (eval.final_metrics: "
                        f"{', '.join(names) or 'none'}): add it, e.g. eval.final_metrics=[{m}]")


def _use_our_preset() -> bool:
    """Let conf/hydra/sweeper/optuna.yaml be what `hydra/sweeper=optuna` selects.

    hydra-optuna-sweeper registers a config of that very name, and Hydra matches a YAML file against
    a registered config of its name as a schema, but refuses to when that config has a defaults
    list, as the plugin's has (its sampler). So the plugin's entry is replaced by an empty one
    (nothing to match against; the YAML lists every argument of the plugin's OptunaSweeper, whose
    constructor still refuses an unknown one). Plugins register their configs when Hydra scans
    them, once per process: scanning here first keeps that from undoing the replacement.
    """
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance()
    try:
        import hydra_plugins.hydra_optuna_sweeper  # noqa: F401
    except ImportError:
        return False
    ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node={}, provider="gan-bench")
    return True


# Hydra still calls the match with the empty entry deprecated, and matches
# conf/hydra/sweeper/sampler/tpe.yaml against the plugin's TPE schema (allowed: no defaults list
# there), each time a config is composed, i.e. in every job's process too (joblib workers import
# this module with the task function). The files list every key, so the warnings ask nothing.
warnings.filterwarnings("ignore", message=r"\s*'hydra/sweeper/(optuna|sampler/\w+)' is validated against ConfigStore")
# optuna imports alembic, whose plugin registry logs a line per plugin at INFO, Hydra's level.
logging.getLogger("alembic").setLevel(logging.WARNING)


def metric_value(result: dict, metric: str) -> float | None:
    """The trial's value of `metric` from the trainer's result (single run or ensemble); None when
    it has none (then trial_value reports the worst value)."""
    if result.get("status") not in ("completed", "diverged"):  # failed: its replicas' records are partial
        return None
    records = result.get("replicas") or [result]
    vals = []
    for r in records:
        status = r.get("status", result.get("status"))
        if status == "diverged" and metric in DIVERGED_AS:
            vals.append(DIVERGED_AS[metric])
        elif status == "completed":
            try:
                vals.append(float((r.get("metrics") or {})[metric]))
            except (KeyError, TypeError, ValueError):
                continue
    vals = [v for v in vals if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else None


def trial_value(cfg, result):
    """What the Hydra task function returns: `result` itself unless search.metric is set, then the
    metric's value (the worst value when there is none)."""
    metric = OmegaConf.select(cfg, "search.metric", default=None)
    if metric is None:
        return result
    v = metric_value(result, str(metric))
    if v is not None:
        return v
    return -math.inf if _direction(metric) == "maximize" else math.inf


def _direction(metric) -> str:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():  # the study's own setting, which the user may have overridden
        d = OmegaConf.select(HydraConfig.get(), "sweeper.direction", default=None)
        if isinstance(d, str) and d in ("maximize", "minimize"):
            return d
    return direction(metric)
