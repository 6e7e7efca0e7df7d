"""The EMA of G's weights that evaluations score: TF-style warm-up, decay min(ema, (1+t)/(10+t))
after t updates, or the constant decay with train.ema_warmup=false."""

from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from gan_bench.training.networks import Networks


def nets(ema: float, warmup: bool) -> Networks:
    opts = OmegaConf.create({"amp": False, "compile": False, "channels_last": False, "deterministic": False,
                             "ema": ema, "ema_warmup": warmup})
    G = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(G.weight)
    return Networks(G, torch.nn.Linear(1, 1), opts, torch.device("cpu"), SimpleNamespace(kind="toy"))


@pytest.mark.parametrize("warmup", [True, False])
def test_decay_per_update(warmup):
    n, want = nets(0.999, warmup), 0.0
    for t in range(50):
        with torch.no_grad():
            n.G.weight.fill_(float(t + 1))  # G after step t
        n.update_ema(t)
        decay = min(0.999, (1 + t) / (10 + t)) if warmup else 0.999
        want = decay * want + (1 - decay) * (t + 1)
        assert n.G_ema.weight.item() == pytest.approx(want, rel=1e-6)
    # After 50 steps the warmed-up average sits near the recent weights, the constant one near 0.
    assert (want > 30) if warmup else (want < 2)


def test_warmup_reaches_the_configured_decay():
    n = nets(0.5, True)
    with torch.no_grad():
        n.G.weight.fill_(2.0)
    n.update_ema(1000)  # long past the warm-up: the configured 0.5
    assert n.G_ema.weight.item() == pytest.approx(1.0)
