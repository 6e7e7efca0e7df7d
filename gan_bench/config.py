"""Config plumbing shared by the CLI and the trainer: where the repo is, the checks that turn bad
input into one clear line before any work starts, and what part of a config identifies a run."""


from omegaconf import DictConfig, OmegaConf

from gan_bench.errors import UserError
from gan_bench.paths import CONF_DIR, ROOT

GROUPS = ("dataset", "model", "loss", "optim", "penalty", "experiment", "debug")

OmegaConf.register_new_resolver("gb_root", lambda: str(ROOT), replace=True)


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def check_overrides(args: list[str]) -> None:
    """Unknown group options, caught before Hydra so the user gets one line, not a stack trace."""
    for arg in args:
        if "=" not in arg or arg.startswith(("-", "hydra")):
            continue
        key, value = arg.lstrip("+~").split("=", 1)
        if key in GROUPS:
            valid = options(key)
            for v in value.split(","):  # multirun sweeps: loss=bce,alpha
                if v and v != "null" and v not in valid:
                    raise UserError(f"unknown {key} '{v}': choose one of {', '.join(valid)}")


def positive_alpha(name: str, value, zero_ok: bool = False, loss: str = "") -> float:
    try:
        a = float(value)
    except (TypeError, ValueError):
        a = float("nan")
    if zero_ok and not a >= 0:
        raise UserError(f"{name} must be a non-negative number for loss={loss}, got {value!r}: pass e.g. {name}=0.5")
    if not zero_ok and not a > 0:  # also catches NaN
        raise UserError(f"{name} must be a positive number or inf, got {value!r}: pass e.g. {name}=0.5")
    return a


def check_config(cfg: DictConfig) -> None:
    # alpha = 0 only for a family whose formula is defined there (imported here: the losses pull
    # in torch, which the CLI's early override checks do not need).
    from gan_bench.losses import ALPHA_ZERO_OK

    loss = cfg.loss.get("name", "") if isinstance(cfg.get("loss"), DictConfig) else ""
    for name in ("alpha", "alpha_d", "alpha_g"):
        positive_alpha(name, cfg[name], zero_ok=loss in ALPHA_ZERO_OK, loss=loss)
    if not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {cfg.seed!r}")
    for key in ("steps", "batch_size", "n_critic", "ensemble", "eval_every", "ckpt_every", "log_every"):
        v = cfg.train[key]
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise UserError(f"train.{key} must be a positive integer, got {v!r}: pass e.g. train.{key}=100")
    for key in ("amp", "compile", "channels_last"):
        if cfg.train[key] not in ("auto", True, False):
            raise UserError(f"train.{key} must be auto, true or false, got {cfg.train[key]!r}")
    if not isinstance(cfg.train.ema, (int, float)) or not 0 <= cfg.train.ema < 1:
        raise UserError(f"train.ema must be an EMA decay in [0, 1) (0 = off), got {cfg.train.ema!r}: "
                        "e.g. train.ema=0.999")
    h = cfg.eval.holdout
    if not isinstance(h, (int, float)) or not 0 <= h < 1:
        raise UserError(f"eval.holdout must be a fraction in [0, 1), got {h!r}: e.g. eval.holdout=0.2")
    e = cfg.train.epochs
    if e is not None and (not isinstance(e, int) or isinstance(e, bool) or e <= 0):
        raise UserError(f"train.epochs must be a positive integer or null, got {e!r}: e.g. train.epochs=150")
    pool = cfg.train.latent_pool
    if pool is not None and pool != "train" and (not isinstance(pool, int) or isinstance(pool, bool) or pool <= 0):
        raise UserError(f"train.latent_pool must be null (fresh latents), train (a pool the size of the "
                        f"training set) or a positive integer, got {pool!r}: e.g. train.latent_pool=train")
    if cfg.train.device not in ("auto", "cpu", "cuda"):
        raise UserError(f"train.device must be auto, cpu or cuda, got {cfg.train.device!r}")
    check_toy_metrics(cfg)
    from gan_bench.optim import check_optim
    from gan_bench.search import check_search
    check_optim(cfg.optim)
    check_search(cfg)
    if isinstance(cfg.get("penalty"), DictConfig):
        # A bad weight or penalty.schedule: one line now, not after the data are loaded.
        from gan_bench.training.setup import build
        build(cfg.penalty)


def check_toy_metrics(cfg: DictConfig) -> None:
    """Image metrics named for toy data stop the run: a toy set is scored by its own metrics (modes,
    hq, ... or the 1-D densities), and a metric asked for and silently dropped is a lost result. The
    root config's default image metrics (for image sets) are not the user's choice and pass."""
    target = str(OmegaConf.select(cfg, "dataset._target_", default="") or "")
    if not target.startswith("gan_bench.data.toy."):
        return
    defaults = OmegaConf.load(CONF_DIR / "train.yaml").eval
    for key in ("metrics", "final_metrics"):
        chosen = [m for m in (cfg.eval.get(key) or []) if m not in (defaults.get(key) or [])]
        if chosen:
            name = target.rsplit(".", 1)[-1]
            raise UserError(f"eval.{key}={list(chosen)} are image metrics, but dataset={name} is toy data, scored "
                            f"by its own metrics at every evaluation: drop them (eval.{key}=[])")


def checkpoint_hashes(cfg: DictConfig) -> list[str]:
    """The hash a checkpoint of this config is written under, then any that older gan-bench wrote
    for the same run (accepted on resume; the checkpoint is then rewritten under the first)."""
    from gan_bench.checkpoint import config_hash

    hashes = [config_hash(hashed_config(cfg)), config_hash(hashed_config(cfg, keep_root=True))]
    return hashes[:1] if hashes[0] == hashes[1] else hashes


def hashed_config(cfg: DictConfig, keep_root: bool = False) -> dict:
    """What identifies a run's trajectory: a checkpoint written under other values is refused.
    Step counts and logging intervals are left out so a finished run can be extended.
    keep_root: as before dataset.root left the hash (checkpoint_hashes accepts those too)."""
    keys = ("seed", "alpha_d", "alpha_g", "dataset", "model", "loss", "optim", "penalty")
    out = {k: OmegaConf.to_container(cfg[k], resolve=True) if isinstance(cfg[k], DictConfig) else cfg[k]
           for k in keys}
    # Where the data live is not which data: a moved checkout or another GAN_BENCH_DATA on a cluster
    # node resumes. dataset.path stays: for a folder set it is the set's only identity.
    if not keep_root:
        out["dataset"].pop("root", None)
    # Keys added after checkpoints existed, left out where they cannot change what older runs did:
    # lr is only a default for the hashed lr_d and lr_g; fused=true is the kernel every run now uses;
    # _target_ came with optim=rmsprop|sgd, and every run before them was torch.optim.Adam.
    out["optim"].pop("lr", None)
    out["model"].pop("adam_lr", None)  # likewise only a default for optim.lr (conf/model/mlp.yaml)
    if out["optim"].get("_target_") == "torch.optim.Adam":
        out["optim"].pop("_target_")
    if out["optim"].get("fused", True) is True:
        out["optim"].pop("fused", None)
    # optim.schedule and penalty.schedule came with issue 22; null (or absent) is the constant
    # rates and weight every earlier run trained with.
    if out["optim"].get("schedule", 0) is None:
        out["optim"].pop("schedule")
    if isinstance(out["penalty"], dict) and out["penalty"].get("schedule", 0) is None:
        out["penalty"].pop("schedule")
    # penalty.every (issue 27) = 1 is the penalty on every D step, what every earlier run did.
    if isinstance(out["penalty"], dict) and out["penalty"].get("every", 0) == 1:
        out["penalty"].pop("every")
    # lsgan's generator and renyigan's alpha_one came with issue 11; their defaults are what every
    # earlier lsgan / renyigan run computed.
    loss = out["loss"]
    if loss.get("name") == "lsgan" and loss.get("generator") == "ns":
        loss.pop("generator")
    if loss.get("name") == "renyigan" and loss.get("alpha_one") == "limit":
        loss.pop("alpha_one")
    # Not train.ensemble_impl: grouped and vmap replicas share one state dict and compute the same
    # steps (to rounding, like train.device, amp or compile, also left out), so either resumes the other.
    out["train"] = {k: cfg.train[k] for k in ("batch_size", "n_critic", "ensemble")}
    if cfg.eval.holdout:  # a different training set (kept only when set, so older checkpoints still match)
        out["holdout"] = cfg.eval.holdout
    if cfg.train.latent_pool is not None:  # likewise
        out["latent_pool"] = cfg.train.latent_pool
    return out
