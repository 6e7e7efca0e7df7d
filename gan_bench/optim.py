"""The two players' optimizers, built from one conf/optim/ node: `build_optimizers(optim_cfg, G, D)`.

A node names a torch optimizer class (`_target_`) and its constructor arguments, plus four keys of
gan-bench's own: `name` (the choice, as in `optim=NAME`), `lr` (both players' rate, a default
only), `lr_d` and `lr_g` (each player's rate, `${.lr}` unless set). Every other key goes to the
constructor as it is, so a torch argument the YAML does not list can still be added
(`+optim.dampening=0.1`). Two keys are read the way gan-bench has always read them: `fused: true`
asks for torch's single-kernel implementation and `fused: false` leaves the choice to torch
(foreach on CUDA), not torch's own "never fused"; and list values (betas) become tuples.

All three presets are elementwise (no norm over a tensor, no state shared between parameters), so
replicas of a seed ensemble stay independent, and their kernels are deterministic, so a resumed
run ends bit-identical on the CPU to one never interrupted.

`schedule` (another key of gan-bench's own, absent or null = constant rates) moves both players'
learning rates and Adam's beta2 on a cosine, as R3GAN does (lr 2e-4 -> 5e-5, beta2 0.9 -> 0.99):
    +optim.schedule={kind:cosine,lr_end:5e-5,beta2_end:0.99,steps:78150}
Over the first `steps` steps (generator iterations) each player's rate goes from its lr_d / lr_g to
lr_end (null: rates stay), and beta2 from betas[1] to beta2_end (null: stays), then they hold. The
trainer sets them in the param groups at the start of every step (`build_optim_schedule`): a pure
function of the step, so a resumed run sets exactly what an uninterrupted one did.
"""

import math

from omegaconf import DictConfig, OmegaConf

from gan_bench.errors import UserError
from gan_bench.schedules import Cosine, check_keys, parse_steps

OWN_KEYS = ("_target_", "name", "lr", "lr_d", "lr_g", "schedule")
SCHEDULE_EXAMPLE = "{kind:cosine,lr_end:5e-5,beta2_end:0.99,steps:10000}"


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _in(key: str, v, lo: float, hi: float, hi_open: bool = True, example: str = "") -> None:
    ok = _is_number(v) and lo <= v and (v < hi if hi_open else v <= hi)
    if not ok:
        bound = f"[{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise UserError(f"optim.{key} must be a number in {bound}, got {v!r}: pass e.g. optim.{key}={example}")


def _node(optim_cfg) -> dict:
    node = OmegaConf.to_container(optim_cfg, resolve=True) if isinstance(optim_cfg, DictConfig) else dict(optim_cfg)
    if not isinstance(node.get("_target_"), str):
        raise UserError(f"optim '{node.get('name')}' has no _target_ (the torch optimizer class): add e.g. "
                        "_target_: torch.optim.Adam to its YAML in conf/optim/")
    return node


def check_optim(optim_cfg) -> None:
    """Every value a user can get wrong, as one line each, before any data is loaded."""
    node = _node(optim_cfg)
    for key in ("lr", "lr_d", "lr_g"):
        v = node.get(key)
        if (key != "lr" or key in node) and not (_is_number(v) and v > 0):
            raise UserError(f"optim.{key} must be a positive number, got {v!r}: pass e.g. optim.{key}=2e-4")
    if "betas" in node:
        b = node["betas"]
        if not isinstance(b, (list, tuple)) or len(b) != 2 or not all(_is_number(x) and 0 <= x < 1 for x in b):
            raise UserError(f"optim.betas must be two numbers in [0, 1), got {b!r}: pass e.g. optim.betas=[0.5,0.999]")
    if "momentum" in node:
        _in("momentum", node["momentum"], 0, 1, example="0.9")
    if "alpha" in node:  # RMSprop's smoothing constant of the squared-gradient average, not the loss's alpha
        _in("alpha", node["alpha"], 0, 1, example="0.99")
    if "dampening" in node:
        _in("dampening", node["dampening"], 0, 1, hi_open=False, example="0")
    for key in ("eps", "weight_decay"):
        if key in node and not (_is_number(node[key]) and node[key] >= 0):
            raise UserError(f"optim.{key} must be a non-negative number, got {node[key]!r}")
    for key in ("fused", "nesterov", "centered", "amsgrad", "maximize"):
        if key in node and node[key] not in (True, False):
            raise UserError(f"optim.{key} must be true or false, got {node[key]!r}")
    if "foreach" in node and node["foreach"] not in (True, False, None):
        raise UserError(f"optim.foreach must be true, false or null (torch's choice), got {node['foreach']!r}")
    if node.get("nesterov") and not (node.get("momentum", 0) > 0 and node.get("dampening", 0) == 0):
        raise UserError("optim.nesterov=true needs momentum and no dampening: pass e.g. optim.momentum=0.9 "
                        "(and optim.dampening=0), or optim.nesterov=false")
    _parse_schedule(node)
    # Whatever else torch itself refuses (an unknown argument, a value it rejects), on a dummy parameter.
    import torch
    try:
        _make(node, [torch.zeros(1, requires_grad=True)], node["lr_d"])
    except (TypeError, ValueError, RuntimeError) as e:
        raise UserError(f"optim={node.get('name')}: {node['_target_']} refuses these settings "
                        f"({str(e).splitlines()[0] if str(e) else type(e).__name__}): "
                        "check the optim.* overrides") from None


def _make(node: dict, params, lr: float):
    from hydra.utils import get_class

    try:
        cls = get_class(node["_target_"])
    except Exception:
        raise UserError(f"optim._target_ '{node['_target_']}' is not an optimizer class that can be imported: "
                        "use e.g. torch.optim.Adam, torch.optim.RMSprop or torch.optim.SGD") from None
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in node.items() if k not in OWN_KEYS}
    if kwargs.get("fused") is False:
        del kwargs["fused"]  # torch's own default (foreach on CUDA), as `fused: false` has always meant here
    return cls(params, lr=lr, **kwargs)


def build_optimizers(optim_cfg, G, D):
    """(opt_g, opt_d): the node's optimizer over G's and D's parameters, at lr_g and lr_d."""
    node = _node(optim_cfg)
    return _make(node, G.parameters(), node["lr_g"]), _make(node, D.parameters(), node["lr_d"])


class OptimSchedule:
    """Cosine schedules of (lr_d, lr_g, beta2), any of them None where the rate or beta2 stays."""

    def __init__(self, lr_d: Cosine | None, lr_g: Cosine | None, beta2: Cosine | None):
        self.lr_d, self.lr_g, self.beta2 = lr_d, lr_g, beta2

    def apply(self, step: int, opt_g, opt_d) -> None:
        for opt, lr in ((opt_g, self.lr_g), (opt_d, self.lr_d)):
            for group in opt.param_groups:
                if lr is not None:
                    group["lr"] = lr(step)
                if self.beta2 is not None:
                    group["betas"] = (group["betas"][0], self.beta2(step))


def _parse_schedule(node: dict) -> OptimSchedule | None:
    spec = node.get("schedule")
    if spec is None:
        return None
    spec = check_keys("optim.schedule", spec, {"kind", "lr_end", "beta2_end", "steps"}, SCHEDULE_EXAMPLE)
    steps = parse_steps("optim.schedule.steps", spec.get("steps"))
    lr_end, beta2_end = spec.get("lr_end"), spec.get("beta2_end")
    if lr_end is None and beta2_end is None:
        raise UserError("optim.schedule moves nothing: give lr_end and/or beta2_end, "
                        f"e.g. 'optim.schedule={SCHEDULE_EXAMPLE}'")
    lr_d = lr_g = beta2 = None
    if lr_end is not None:
        if not (_is_number(lr_end) and lr_end >= 0):
            raise UserError(f"optim.schedule.lr_end must be a non-negative number (the final learning rate), "
                            f"got {lr_end!r}: pass e.g. optim.schedule.lr_end=5e-5")
        lr_d, lr_g = Cosine(node["lr_d"], lr_end, steps), Cosine(node["lr_g"], lr_end, steps)
    if beta2_end is not None:
        if not (_is_number(beta2_end) and 0 <= beta2_end < 1):
            raise UserError(f"optim.schedule.beta2_end must be a number in [0, 1), got {beta2_end!r}: "
                            "pass e.g. optim.schedule.beta2_end=0.99")
        if "betas" not in node:
            raise UserError(f"optim.schedule.beta2_end needs an optimizer with betas (optim=adam), "
                            f"not optim={node.get('name')}: drop beta2_end")
        beta2 = Cosine(node["betas"][1], beta2_end, steps)
    return OptimSchedule(lr_d, lr_g, beta2)


def build_optim_schedule(optim_cfg) -> OptimSchedule | None:
    """What `optim.schedule` asks the trainer to set each step, or None (constant rates)."""
    return _parse_schedule(_node(optim_cfg))
