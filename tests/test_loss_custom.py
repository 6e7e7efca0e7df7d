"""loss=custom: a loss from a module outside gan-bench, by module name or file path, checked at start."""

import subprocess
import sys
import textwrap

import pytest
import torch
from hydra.utils import instantiate

from conftest import make_cfg
from gan_bench.errors import UserError
from gan_bench.losses import Loss, make_loss

MODULE = textwrap.dedent('''
    import torch.nn.functional as F
    from gan_bench.losses import Loss

    class SoftHinge(Loss):
        """Hinge with softplus in place of relu: D softplus(m - t_r) + softplus(m + t_f), G -t_f."""
        name = "softhinge"

        def __init__(self, margin=1.0):
            self.margin = margin

        def d_loss(self, real_logits, fake_logits):
            return F.softplus(self.margin - real_logits).mean(-1) + F.softplus(self.margin + fake_logits).mean(-1)

        def g_loss(self, fake_logits, real_logits=None):
            return -fake_logits.mean(-1)

    def build(margin=1.0):
        return SoftHinge(float(margin))

    class Plain:  # not a gan_bench Loss: wrapped
        def d_loss(self, r, f):
            return (f - r).mean(-1)
        def g_loss(self, f, r=None):
            return -f.mean(-1)

    def plain():
        return Plain()

    class Flat(Plain):  # reduces over every dim: wrong for ensembles
        def d_loss(self, r, f):
            return (f - r).mean()

    def flat():
        return Flat()
''')


@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    (tmp_path / "my_losses.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop("my_losses", None)


def test_builder_by_module_and_by_file_equals_its_formula(module_dir):
    by_name = make_loss("custom", builder="my_losses:build", params={"margin": 0.5})
    by_file = make_loss("custom", builder=str(module_dir / "my_losses.py") + ":build", params={"margin": 0.5})
    r, f = torch.randn(3, 16), torch.randn(3, 16)
    want = torch.nn.functional.softplus(0.5 - r).mean(-1) + torch.nn.functional.softplus(0.5 + f).mean(-1)
    for loss in (by_name, by_file):
        assert isinstance(loss, Loss) and loss.name == "softhinge"
        torch.testing.assert_close(loss.d_loss(r, f), want)
        torch.testing.assert_close(loss.g_loss(f), -f.mean(-1))
    wrapped = make_loss("custom", builder="my_losses:plain")
    assert isinstance(wrapped, Loss) and not wrapped.needs_real_for_g
    torch.testing.assert_close(wrapped.d_loss(r, f), (f - r).mean(-1))


@pytest.mark.parametrize("builder, message", [
    (None, "loss=custom needs loss.builder"),
    ("my_losses", "must be module:function"),
    ("nosuch_module:build", "importing nosuch_module failed"),
    ("my_losses:nothere", "has no function nothere"),
    ("missing.py:build", "no file"),
    ("my_losses:flat", "must return 2 finite batch means"),
])
def test_bad_builders_are_one_line(module_dir, builder, message):
    with pytest.raises(UserError, match=message):
        make_loss("custom", builder=builder)


def test_config_group_and_train_command(module_dir):
    cfg = make_cfg(module_dir / "run", ["loss=custom", "loss.builder=my_losses:build", "loss.params={margin:0.5}"])
    assert instantiate(cfg.loss).margin == 0.5
    out = subprocess.run([sys.executable, "-m", "gan_bench.cli", "train", "loss=custom",
                          "loss.builder=my_losses:build", "debug=smoke", "model.generator.width=16",
                          "model.discriminator.width=16", f"hydra.run.dir={module_dir / 'run'}"],
                         capture_output=True, text=True, cwd=module_dir, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "[completed] step 20/20" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "gan_bench.cli", "train", "loss=custom", "loss.builder=my_losses:flat",
                          "debug=smoke", f"hydra.run.dir={module_dir / 'bad'}"], capture_output=True, text=True,
                         cwd=module_dir, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "finite batch means" in bad.stderr
