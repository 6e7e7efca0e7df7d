"""scripts/atlas_cost.py's FLOP estimate (no training runs): torch's FLOP counter against MACs
counted by hand, for single layers and for the mnist task's own networks, the step formula, a
cell's steps and the script's --help."""

import importlib.util
import subprocess
import sys

import torch
from hydra.utils import instantiate
from torch import nn

from gan_bench.config import ROOT

_spec = importlib.util.spec_from_file_location("atlas_cost", ROOT / "scripts" / "atlas_cost.py")
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)


def hand_flops(module: nn.Module, x: torch.Tensor) -> int:
    """2 x multiply-accumulates of every Linear, Conv2d and ConvTranspose2d in `module`, from the
    shapes each layer sees (forward hooks), independently of torch.utils.flop_counter."""
    total = [0]

    def hook(m, inputs, out):
        i = inputs[0]
        if isinstance(m, nn.Linear):
            macs = i.numel() // i.shape[-1] * m.in_features * m.out_features
        elif isinstance(m, nn.ConvTranspose2d):  # every input pixel scatters a k x k x out/groups patch
            macs = i.numel() * (m.out_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Conv2d):  # every output pixel gathers a k x k x in/groups patch
            macs = out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            return
        total[0] += 2 * macs

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    with torch.no_grad():
        module(x)
    for h in handles:
        h.remove()
    return total[0]


def test_counter_is_twice_the_macs_of_single_layers():
    assert script.forward_flops(nn.Linear(7, 5), torch.randn(3, 7)) == 2 * 3 * 7 * 5
    # conv 3 -> 4, 3x3, 8x8 output, batch 2: each output value is 3 * 3 * 3 MACs
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    assert script.forward_flops(conv, torch.randn(2, 3, 8, 8)) == 2 * (2 * 4 * 8 * 8) * (3 * 3 * 3)
    # transposed conv 4 -> 2, 4x4, stride 2, from 5x5, batch 1: each input value meets 2 * 4 * 4 weights
    tconv = nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, bias=False)
    assert script.forward_flops(tconv, torch.randn(1, 4, 5, 5)) == 2 * (4 * 5 * 5) * (2 * 4 * 4)


def test_mnist_cell_flops_match_a_hand_count_of_its_networks():
    torch.manual_seed(0)
    est = script.flops_per_cell("mnist")
    cfg = script.compose_cell(script.cell_for("mnist").overrides)
    G, D = instantiate(cfg.model.generator).eval(), instantiate(cfg.model.discriminator).eval()
    z = torch.randn(64, int(cfg.model.latent_dim))
    with torch.no_grad():
        x = G(z)
    assert x.shape == (64, 1, 28, 28)
    assert est["g_fwd"] == hand_flops(G, z) > 0
    assert est["d_fwd"] == hand_flops(D, x) > 0
    g, d = est["g_fwd"], est["d_fwd"]
    assert (est["K"], est["steps"], est["n_critic"], est["batch"]) == (11, 2000, 1, 64)
    assert est["step_flops"] == (g + 3 * 2 * d) + 3 * (g + d)
    assert est["cell_flops"] == est["step_flops"] * 2000 * 11
    assert est["evals"] == (3, 1)  # at 500, 1000, 1500 and the final one at 2000
    hours = script.gpu_hours(est["cell_flops"], 100)
    assert abs(hours * 3600 * 100e12 - est["cell_flops"]) < 1e-3 * est["cell_flops"]


def test_stacked_mnist_cell_counts_epochs_of_its_100k_stacks():
    cfg = script.compose_cell(script.cell_for("stacked_mnist").overrides)
    assert script.n_train(cfg) == 100000
    assert script.cell_steps(cfg) == 50 * 1563


def test_help_runs_as_a_script():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "atlas_cost.py"), "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "--steps" in out.stdout and "--tasks" in out.stdout
