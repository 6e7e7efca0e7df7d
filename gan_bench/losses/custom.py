"""loss=custom: a researcher's own objective, from a module outside gan-bench, in `train`, sweeps and
the atlas without editing gan-bench.

    gan-bench train loss=custom loss.builder=mypkg.losses:build 'loss.params={margin:0.5}'
    gan-bench train loss=custom loss.builder=./my_loss.py:build

`builder` names a function, `module:function` (importable, or a module in the current directory) or
`path/to/file.py:function`; it is called with `params` as keyword arguments and returns a Loss
(subclass gan_bench.losses.Loss, or any object with d_loss and g_loss). The contract is ours: pure
functions of the discriminator's logits t (positive = real), batch means over the last dim, so
[K, B] logits give [K] (one value per ensemble replica). The object is probed once on small logits
at start, so a broken builder is one line before any training.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import torch

from gan_bench.errors import UserError
from gan_bench.losses.base import Loss


class Wrapped(Loss):
    """An object with d_loss and g_loss that is not a gan-bench Loss, with the interface's defaults."""

    def __init__(self, inner, label: str) -> None:
        self.inner, self.label = inner, label
        self.needs_real_for_g = bool(getattr(inner, "needs_real_for_g", False))
        self.name = "custom"

    def d_loss(self, real_logits, fake_logits):
        return self.inner.d_loss(real_logits, fake_logits)

    def g_loss(self, fake_logits, real_logits=None):
        return self.inner.g_loss(fake_logits, real_logits)

    def __repr__(self) -> str:
        return f"custom({self.label})"


def _function(spec: str):
    module, sep, func = str(spec).rpartition(":")
    if not sep or not module or not func:
        raise UserError(f"loss.builder '{spec}' must be module:function or path/to/file.py:function, "
                        "e.g. loss.builder=mypkg.losses:build")
    try:
        if module.endswith(".py"):
            path = Path(module).expanduser().resolve()
            if not path.is_file():
                raise UserError(f"loss.builder: no file {path} (a path is read from the current directory)")
            loaded = importlib.util.spec_from_file_location(f"gan_bench_custom_{path.stem}", path)
            mod = importlib.util.module_from_spec(loaded)
            loaded.loader.exec_module(mod)
        else:
            if os.getcwd() not in sys.path:  # a module beside the user, as `python -m` would find it
                sys.path.append(os.getcwd())
            mod = importlib.import_module(module)
    except UserError:
        raise
    except Exception as e:  # the user's module failed to import: say which and why, in one line
        raise UserError(f"loss.builder '{spec}': importing {module} failed: {type(e).__name__}: {e}") from None
    fn = getattr(mod, func, None)
    if not callable(fn):
        raise UserError(f"loss.builder '{spec}': {module} has no function {func}")
    return fn


def _probe(loss, spec: str) -> None:
    """d_loss and g_loss on [2, 4] logits must give 2 finite values each (one per replica)."""
    real, fake = torch.linspace(-2, 2, 8).view(2, 4), torch.linspace(-1, 3, 8).view(2, 4)
    for part, call in (("d_loss", lambda: loss.d_loss(real, fake)),
                       ("g_loss", lambda: loss.g_loss(fake, real if loss.needs_real_for_g else None))):
        try:
            out = call()
        except Exception as e:
            raise UserError(f"loss.builder '{spec}': {part} failed on [2, 4] logits: {type(e).__name__}: {e}") \
                from None
        if not isinstance(out, torch.Tensor) or out.shape != (2,) or not torch.isfinite(out).all():
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise UserError(f"loss.builder '{spec}': {part} on logits of shape [2, 4] (2 replicas) must return "
                            f"2 finite batch means (reduce over the last dim only), got {shape}")


def build_custom(builder: str | None = None, params: dict | None = None) -> Loss:
    if not builder:
        raise UserError("loss=custom needs loss.builder=module:function (or path/to/file.py:function) "
                        "returning your Loss, e.g. loss.builder=mypkg.losses:build")
    fn = _function(builder)
    try:
        loss = fn(**dict(params or {}))
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"loss.builder '{builder}' raised {type(e).__name__}: {e}") from None
    if not isinstance(loss, Loss):
        if not (callable(getattr(loss, "d_loss", None)) and callable(getattr(loss, "g_loss", None))):
            raise UserError(f"loss.builder '{builder}' returned {type(loss).__name__}, which has no d_loss and "
                            "g_loss: return a gan_bench.losses.Loss")
        loss = Wrapped(loss, builder)
    _probe(loss, builder)
    return loss
