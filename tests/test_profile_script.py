"""scripts/profile_conv_ensemble.py on a tiny batch: both parts run and their numbers add up."""

import importlib.util

from gan_bench.config import ROOT

_spec = importlib.util.spec_from_file_location("profile_conv_ensemble", ROOT / "scripts" / "profile_conv_ensemble.py")
pc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pc)


def test_step_profile_splits_the_step_into_convolutions_and_the_rest():
    for impl, K in [("single", 1), ("grouped", 2), ("vmap", 2)]:
        r = pc.step_profile(K, impl, steps=1, batch=4)
        # Both halves found: the profiler's convolution ops are named as CONV_OPS lists them.
        assert r["impl"] == impl and r["K"] == K and 0 < r["conv_share"] < 1
        assert r["conv_ms_per_replica_step"] > 0 and r["other_ms_per_replica_step"] > 0


def test_layer_times_cover_the_three_layers(capsys):
    pc.main(["--steps", "1", "--k", "2", "--batch", "2"])
    out = capsys.readouterr().out
    assert out.count(" ms/step, convolutions ") == 3
    for layer in ("3->8 at 28px", "8->16 at 14px", "16->32 at 7px"):
        assert f"  {layer}, groups=K: " in out and "loop of 2: " in out and "unfold+bmm: " in out


def test_unfold_bmm_is_the_grouped_convolution():
    import torch
    import torch.nn.functional as F

    for cin, cout, size in [(3, 8, 28), (8, 16, 14), (16, 32, 7)]:
        K = 3
        x = torch.randn(5, K * cin, size, size, dtype=torch.float64)
        w = torch.randn(K * cout, cin, 3, 3, dtype=torch.float64)
        torch.testing.assert_close(pc.unfold_bmm_conv(x, w, K), F.conv2d(x, w, stride=2, padding=1, groups=K))
