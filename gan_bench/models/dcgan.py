"""DCGAN generator and discriminator (Radford et al. 2016) for square images of 28, 32, 64, 112 and
128 pixels.

Each resolution is a start size times a chain of stride-2 layers. 64 is the reference network
(4 -> 8 -> 16 -> 32 -> 64). 112 is the α-GAN LSUN variant with 7x7 first/last layers
(7 -> 14 -> 28 -> 56 -> 112). 28 starts at 4 too, with a kernel-3 step (4 -> 7, since a stride-2
transposed conv of kernel 3 and padding 1 maps n to 2n - 1), so MNIST-like data gets the same depth
and widths as 32: the ISIT'23 small Stacked MNIST network (ngf = ndf = 8) is 8/16/32 at both.

Widths double layer by layer away from the image: G ngf*2^(k-1) ... ngf -> channels, D channels ->
ndf ... ndf*2^(k-1) for k stride-2 layers. Init as in the paper: conv weights N(0, 0.02), BN scale
N(1, 0.02), biases 0. The discriminator returns raw logits of shape [B] (the losses work in log
space). With batch_norm=True no conv has a bias, exactly as the reference PyTorch DCGAN (3,576,704
and 2,765,568 parameters at 64px, ngf = ndf = 64); batch_norm=False drops every BN (e.g. for
gradient penalties, which are per-sample) and gives every conv a bias instead.
Activations are not in-place, so the modules also work under torch.func (batched ensembles).

layout="isit23_smnist" (28 px only) is instead the ISIT'23 authors' own small Stacked MNIST network
(their experiments/stacked_mnist.py): 3x3 kernels throughout, G 1 -> 3 -> 7 -> 14 -> 28 (output
padding on the last two), D 28 -> 14 -> 7 -> 3 -> 1, BN as above, no biases; with ngf = ndf = 8
its widths are 32-16-8-3 and 8-16-32-1."""

import torch
from torch import nn

from gan_bench.errors import UserError

# resolution -> (size after G's first layer = D's last kernel, kernels of the stride-2 layers from
# small to large)
PLANS = {
    28: (4, [3, 4, 4]),
    32: (4, [4, 4, 4]),
    64: (4, [4, 4, 4, 4]),
    112: (7, [4, 4, 4, 4]),
    128: (4, [4, 4, 4, 4, 4]),
}


# Per-layer (kernel, stride, padding, output_padding) of G's transposed convs, from the latent up;
# D mirrors them with (kernel, stride, padding) from the image down.
LAYOUTS = ("dcgan", "isit23_smnist")
SMNIST_G = [(3, 2, 0, 0), (3, 2, 0, 0), (3, 2, 1, 1), (3, 2, 1, 1)]
SMNIST_D = [(3, 2, 1), (3, 2, 1), (3, 2, 0), (3, 2, 0)]


def _plan(resolution: int) -> tuple[int, list[int]]:
    if resolution not in PLANS:
        raise UserError(f"DCGAN supports resolutions {', '.join(map(str, PLANS))}, got {resolution}: "
                        f"set dataset.resolution to one of them")
    return PLANS[resolution]


def _specs(resolution: int, layout: str) -> tuple[list[tuple], list[tuple]]:
    """G's and D's layer specs for a resolution and layout."""
    if layout not in LAYOUTS:
        raise UserError(f"unknown DCGAN layout {layout!r}: choose one of {', '.join(LAYOUTS)} (model.*.layout)")
    if layout == "isit23_smnist":
        if resolution != 28:
            raise UserError(f"layout=isit23_smnist is the 28-px Stacked MNIST network, got resolution "
                            f"{resolution}: set dataset.resolution=28 or use model=dcgan_small")
        return SMNIST_G, SMNIST_D
    start, kernels = _plan(resolution)
    g = [(start, 1, 0, 0)] + [(k, 2, 1, 0) for k in kernels]
    d = [(k, 2, 1) for k in reversed(kernels)] + [(start, 1, 0)]
    return g, d


def _check_width(name: str, value: int):
    if not isinstance(value, int) or value <= 0:
        raise UserError(f"DCGAN {name} must be a positive integer, got {value!r}: set model.*.{name}")


def dcgan_init(m: nn.Module):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """z [B, latent_dim] -> tanh image [B, channels, resolution, resolution]."""

    def __init__(self, latent_dim: int, resolution: int = 64, channels: int = 3, ngf: int = 64,
                 batch_norm: bool = True, layout: str = "dcgan"):
        super().__init__()
        spec, _ = _specs(resolution, layout)
        for name, v in (("latent_dim", latent_dim), ("channels", channels), ("ngf", ngf)):
            _check_width(name, v)
        self.latent_dim, self.resolution, self.channels = latent_dim, resolution, channels
        widths = [ngf * 2 ** i for i in reversed(range(len(spec) - 1))]   # 64px: 512, 256, 128, 64
        ins, outs = [latent_dim] + widths, widths + [channels]
        layers = []
        for i, (k, st, pad, out_pad) in enumerate(spec):
            # The first layer maps the 1x1 latent to start x start: a linear layer, reshaped.
            layers.append(nn.ConvTranspose2d(ins[i], outs[i], k, st, pad, out_pad, bias=not batch_norm))
            if i < len(spec) - 1:
                layers += [nn.BatchNorm2d(outs[i]), nn.ReLU()] if batch_norm else [nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Tanh())
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """image [B, channels, resolution, resolution] -> logits [B]."""

    def __init__(self, resolution: int = 64, channels: int = 3, ndf: int = 64, batch_norm: bool = True,
                 layout: str = "dcgan"):
        super().__init__()
        _, spec = _specs(resolution, layout)
        for name, v in (("channels", channels), ("ndf", ndf)):
            _check_width(name, v)
        self.resolution, self.channels = resolution, channels
        widths = [ndf * 2 ** i for i in range(len(spec) - 1)]   # 64px: 64, 128, 256, 512
        ins, outs = [channels] + widths, widths + [1]
        layers = []
        for i, (k, st, pad) in enumerate(spec):
            layers.append(nn.Conv2d(ins[i], outs[i], k, st, pad, bias=not batch_norm))
            if i < len(spec) - 1:  # the last layer maps to 1x1: one logit per image
                # No BN on the first layer (DCGAN: BN on the input layer made training unstable).
                layers += [nn.BatchNorm2d(outs[i])] if batch_norm and i > 0 else []
                layers.append(nn.LeakyReLU(0.2))
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:] != (self.channels, self.resolution, self.resolution):
            raise ValueError(f"Discriminator expects [B, {self.channels}, {self.resolution}, "
                             f"{self.resolution}] images, got {list(x.shape)}")
        return self.net(x).reshape(x.shape[0])
