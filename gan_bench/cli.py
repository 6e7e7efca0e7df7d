"""`gan-bench train|report|eval|prepare|bench|export|sample|atlas`. `train` is a Hydra app (overrides, -m, --help,
--cfg job work as in any Hydra app); the others are plain argparse commands."""

import sys

from gan_bench.errors import UserError

USAGE = """usage: gan-bench COMMAND [ARGS]

commands:
  train    train one run, or a sweep with -m (Hydra overrides: loss=alpha alpha_d=0.3 ...)
  report   turn run directories and sweeps into tables       (gan-bench report DIR --help)
  eval     compute metrics for a finished run's checkpoint
  prepare  convert a data set once into gan-bench's cache    (gan-bench prepare NAME --from PATH)
           or train the Stacked MNIST mode classifier      (gan-bench prepare mnist-classifier)
  bench    speed against a plain PyTorch loop                (gan-bench bench ring)
  export   one run's (or replica's) G and D as plain state dicts (gan-bench export RUN_DIR --out F.pt)
  sample   draw images or ring points from a run            (gan-bench sample RUN_DIR --out grid.png)
  atlas    rank every objective on a set of tasks            (gan-bench atlas list|run|report)
"""


def _train(args: list[str]) -> int:
    import hydra
    from omegaconf import DictConfig

    from gan_bench.config import CONF_DIR, check_overrides
    from gan_bench.search import check_args, trial_value  # also registers the resolver of hydra/sweeper=optuna
    from gan_bench.sweep.names import register_resolvers

    check_overrides(args)
    check_args(args)  # hydra/sweeper=optuna: the preset and its command line
    register_resolvers()

    @hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
    def app(cfg: DictConfig):
        from gan_bench.run import run_job
        return trial_value(cfg, run_job(cfg))  # the run's result, or search.metric's value for a search

    sys.argv = ["gan-bench train"] + args
    app()  # a failed sweep job or bad input ends in SystemExit with its code (gan_bench/sweep/callback.py, run.py)
    return 0


def _lazy(module: str, func: str = "main"):
    def call(args: list[str]) -> int:
        import importlib
        return importlib.import_module(module).__dict__[func](args) or 0
    return call


def _prepare(args: list[str]) -> int:
    if args[:1] == ["mnist-classifier"]:  # a model, not a data set: trained once and cached
        return _lazy("gan_bench.metrics.mnist_modes", "prepare_mnist_classifier_main")(args[1:])
    return _lazy("gan_bench.data.prepare")(args)


COMMANDS = {
    "train": _train,
    "report": _lazy("gan_bench.report"),
    "eval": _lazy("gan_bench.evaluate"),
    "prepare": _prepare,
    "bench": _lazy("gan_bench.bench"),
    "atlas": _lazy("gan_bench.atlas.cli"),
    **{name: _lazy("gan_bench.export", f"{name}_main") for name in ("export", "sample")},
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"gan-bench: unknown command '{cmd}': choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[cmd](rest)
    except UserError as e:
        print(f"gan-bench: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
