"""DINOv2 ViT-L/14 as FD-DINOv2's feature network (Stein et al., NeurIPS 2023; NVlabs EDM2's
`fd_dinov2`, itself modelled on layer6ai-labs/dgm-eval).

The network is timm's `vit_large_patch14_dinov2` (a maintained library, installed from PyPI: no
code fetched from GitHub at run time as `torch.hub.load("facebookresearch/dinov2", ...)` does).
Its parameters carry the official names: facebookresearch/dinov2's `dinov2_vitl14_pretrain.pth`
loads into it with strict=True at its native 518 px (37 x 37 patches + CLS), once its
`mask_token` (used only for masked training) is set aside, exactly what timm's own converter
(`_convert_dinov2`) does.

Input size: EDM2 and dgm-eval feed 224 x 224 images to the official model, which interpolates its
position embedding at every forward (`DinoVisionTransformer.interpolate_pos_encoding`: bicubic,
`scale_factor = (16 + 0.1) / 37`, no antialias). timm's own resampling differs (`size=16`,
antialias on), so the 224 px embedding is computed here with the official formula, once, and the
network is built for 224 px with it. Features: the CLS token after the final LayerNorm (1024-d),
what the official model returns (`x_norm_clstoken` through an identity head) and timm returns with
num_classes=0, global_pool='token'.

Preprocessing, EDM2's `DINOv2Detector` (resize_mode='torch'): uint8 -> float32 (0..255), resized to
224 x 224 with `F.interpolate(mode='bicubic', antialias=True)` (no clamp), / 255, ImageNet mean/std.
"""

import math

import torch
import torch.nn.functional as F

TIMM_NAME = "vit_large_patch14_dinov2"
ARCH = {"patch_size": 14, "embed_dim": 1024, "depth": 24, "num_heads": 16, "init_values": 1e-5}
NATIVE_SIZE = 518            # the checkpoint's pos_embed: (518 / 14)^2 + 1 = 1370 tokens
SIZE = 224                   # what EDM2 / dgm-eval feed it
POS_OFFSET = 0.1             # dinov2 hub models' interpolate_offset (interpolate_antialias=False)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SET_ASIDE = ("mask_token",)  # in the official file, unused at inference, not in timm's module


def _timm_vit(img_size: int, arch: dict) -> torch.nn.Module:
    import timm

    with torch.device("meta"):  # no random init of 300M parameters: every one is assigned below
        return timm.create_model(TIMM_NAME, pretrained=False, num_classes=0, img_size=img_size, **arch)


def pos_embed_at(pos_embed: torch.Tensor, grid: int, offset: float = POS_OFFSET) -> torch.Tensor:
    """The official interpolate_pos_encoding for a square grid x grid input: CLS entry kept, the
    M x M patch embeddings resized bicubically by (grid + offset) / M, no antialias, in float32."""
    n = pos_embed.shape[1] - 1
    m = math.isqrt(n)
    assert m * m == n, f"pos_embed of {n} patches is not square"
    if grid == m:
        return pos_embed
    dim = pos_embed.shape[-1]
    cls, patches = pos_embed[:, :1].float(), pos_embed[:, 1:].float()
    s = float(grid + offset) / m
    patches = F.interpolate(patches.reshape(1, m, m, dim).permute(0, 3, 1, 2), mode="bicubic",
                            antialias=False, scale_factor=(s, s))
    assert patches.shape[-2:] == (grid, grid)
    return torch.cat((cls, patches.permute(0, 2, 3, 1).reshape(1, -1, dim)), dim=1).to(pos_embed.dtype)


def check_state_dict(state_dict: dict, arch: dict | None = None) -> dict:
    """The checkpoint's parameters, `mask_token` set aside, after loading them with strict=True
    into timm's architecture at the native 518 px (RuntimeError naming the keys or shapes that
    differ). Checks names and shapes only: it costs no memory or time."""
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise RuntimeError("not a state dict of tensors")
    sd = {k: v for k, v in state_dict.items() if k not in SET_ASIDE}
    _timm_vit(NATIVE_SIZE, ARCH if arch is None else arch).load_state_dict(sd, strict=True, assign=True)
    return sd


def build(state_dict: dict, size: int = SIZE, arch: dict | None = None) -> torch.nn.Module:
    """timm's DINOv2 ViT for size x size inputs, from an official-layout state dict: checked at
    518 px, then loaded (strict=True) with the official position-embedding interpolation."""
    arch = ARCH if arch is None else arch
    sd = check_state_dict(state_dict, arch)
    sd["pos_embed"] = pos_embed_at(sd["pos_embed"], size // arch["patch_size"])
    net = _timm_vit(size, arch)
    net.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True, assign=True)
    return net.eval().requires_grad_(False)


def preprocess(x: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> the network's float32 input [B, 3, size, size] (EDM2's torch mode)."""
    x = F.interpolate(x.to(torch.float32), size=(size, size), mode="bicubic", antialias=True)
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x / 255 - mean) / std
