"""Stacked MNIST mode counting (Metz et al. 2017; ISIT'23 Tables VI-VII).

A generated 3-channel 28x28 image is read as three digits, one per channel, by an MNIST
classifier; its mode is 100*d0 + 10*d1 + d2 in 0..999. A mode is covered when at least one
sample gets it; `kl` is KL(mode histogram || uniform over 1000), natural log, no smoothing.

The classifier is gan-bench's own small CNN, trained once with `gan-bench prepare
mnist-classifier` (>= 99% test accuracy is required before the weights are written) and
cached with a JSON manifest that records its accuracy and SHA-256; the SHA-256 goes into the
fingerprint of every mode count made with it.
"""

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from gan_bench import atomic
from gan_bench.errors import UserError
from gan_bench.paths import default_data_root

ARCH = "gan-bench-mnist-cnn-v2"
N_MODES = 1000


class MnistCNN(nn.Module):
    """Three stride-2 3x3 convolutions (16-32-64 channels) and an MLP head: ~1.4 MFLOP a digit,
    25x less than v1's two VGG blocks at full resolution (~37 MFLOP), which capped an ensemble's
    mode count at ~1,000 stacks/s on 2 cores; it still clears the 99% bar that
    `gan-bench prepare mnist-classifier` enforces (docs/metrics.md has its accuracy). Takes
    uint8 [B,1,28,28]: the input scaling is part of the saved model, so callers cannot get it
    wrong."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, 2, 1), nn.ReLU(),    # 28 -> 14
            nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),   # 14 -> 7
            nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),   # 7 -> 4
            nn.Flatten(), nn.Dropout(0.1), nn.Linear(64 * 4 * 4, 128), nn.ReLU(), nn.Dropout(0.25),
            nn.Linear(128, 10))

    @staticmethod
    def scale(x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255 - 0.1307) / 0.3081  # MNIST pixel mean/std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.scale(x))


# -- counting ---------------------------------------------------------------------------------

def count_modes(labels) -> dict:
    """labels [N] in 0..999 -> covered mode count and KL(histogram || uniform)."""
    labels = torch.as_tensor(labels).long().flatten()
    if len(labels) == 0 or labels.min() < 0 or labels.max() >= N_MODES:
        raise ValueError(f"expected a non-empty list of labels in 0..{N_MODES - 1}")
    p = torch.bincount(labels, minlength=N_MODES).double() / len(labels)
    nz = p[p > 0]
    return {"modes": int((p > 0).sum()), "kl": float((nz * torch.log(nz * N_MODES)).sum())}


@torch.inference_mode()
def stacked_labels(images: torch.Tensor, classifier: nn.Module, batch_size: int = 256) -> torch.Tensor:
    """uint8 [N,3,28,28] -> mode labels [N] (channel 0 is the hundreds digit)."""
    if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (3, 28, 28):
        raise TypeError(f"expected uint8 [N, 3, 28, 28] stacked MNIST, got {images.dtype} {tuple(images.shape)}")
    device = next(classifier.parameters()).device
    # 256 stacks (768 digits) a forward: faster on 2 CPU cores than 64 (call-bound) or 1,024 (out of
    # cache); docs/benchmarks.md, "Stacked MNIST evaluation".
    out = []
    for b in images.split(batch_size):
        digits = classifier(b.to(device).reshape(-1, 1, 28, 28)).argmax(1).view(-1, 3)
        out.append((digits * torch.tensor([100, 10, 1], device=device)).sum(1).cpu())
    return torch.cat(out)


@torch.inference_mode()
def digit_features(images: torch.Tensor, classifier: MnistCNN, batch_size: int = 1024) -> dict:
    """uint8 [N,1,28,28] MNIST digits -> {"penultimate": the 128 post-ReLU features before the
    last linear layer [N, 128] float32, "labels": the predicted digit [N]}: one forward gives both
    (MNIST papers' "FID on a LeNet/classifier" reads such a layer)."""
    if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise TypeError(f"expected uint8 [N, 1, 28, 28] MNIST digits, got {images.dtype} {tuple(images.shape)}")
    device = next(classifier.parameters()).device
    body, head = classifier.net[:-2], classifier.net[-2:]  # head: dropout (identity in eval) + linear
    feats, labels = [], []
    for b in images.split(batch_size):
        f = body(classifier.scale(b.to(device)))
        feats.append(f.float().cpu())
        labels.append(head(f).argmax(1).cpu())
    return {"penultimate": torch.cat(feats), "labels": torch.cat(labels)}


def count_classes(labels, min_share: float = 0.1) -> dict:
    """Digit labels [N] in 0..9 -> classes covered (a class counts when it gets at least
    `min_share` of its uniform share N/10: with thousands of samples every class gets a few
    stray ones, so "at least one" would say 10 for a collapsed generator) and KL(histogram ||
    uniform over 10), natural log."""
    labels = torch.as_tensor(labels).long().flatten()
    if len(labels) == 0 or labels.min() < 0 or labels.max() >= 10:
        raise ValueError("expected a non-empty list of digit labels in 0..9")
    p = torch.bincount(labels, minlength=10).double() / len(labels)
    nz = p[p > 0]
    return {"classes": int((p >= min_share / 10).sum()), "kl": float((nz * torch.log(nz * 10)).sum())}


def stacked_mnist_modes(images_uint8: torch.Tensor, classifier: nn.Module) -> dict:
    return count_modes(stacked_labels(images_uint8, classifier.eval()))


# -- training, caching, loading ---------------------------------------------------------------

def default_classifier_path(data_root) -> Path:
    return Path(data_root) / "cache" / "mnist_classifier.pt"


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_mnist(root, train: bool, download: bool):
    """MNIST as the .gz downloads or the extracted files: gan-bench's own idx reader, because
    torchvision's MNIST class accepts only the extracted files."""
    from gan_bench.data.images import mnist_digits
    x, y, files = mnist_digits(root, "train" if train else "test", download)
    return torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype("int64")), files


def _shift(x: torch.Tensor, g: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random translation by up to `pad` pixels per image: cheap augmentation (v1 gained ~0.3
    points with it, ~99.2% -> ~99.5%)."""
    b = len(x)
    xp = F.pad(x, (pad,) * 4)
    oy, ox = (torch.randint(0, 2 * pad + 1, (2, b), generator=g))
    rows = (oy[:, None] + torch.arange(28))[:, :, None]
    cols = (ox[:, None] + torch.arange(28))[:, None, :]
    return xp[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)


@torch.inference_mode()
def _accuracy(model, x, y, device, batch_size=1000) -> float:
    model.eval()
    correct = sum(int((model(xb.to(device)).argmax(1).cpu() == yb).sum())
                  for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    return correct / len(y)


def train_mnist_classifier(mnist_root, out_path, epochs: int = 10, batch_size: int = 128, lr: float = 2e-3,
                           seed: int = 0, device="cpu", min_accuracy: float = 0.99, download: bool = False,
                           log=print) -> dict:
    """Train MnistCNN on MNIST train, check test accuracy, write weights + manifest atomically.

    Returns the manifest. Raises UserError (and writes nothing) below `min_accuracy`, so a weak
    classifier can never end up counting modes.
    """
    x_train, y_train, train_files = _load_mnist(mnist_root, True, download)
    x_test, y_test, test_files = _load_mnist(mnist_root, False, False)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = MnistCNN().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * math.ceil(len(x_train) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=g)
        for idx in perm.split(batch_size):
            xb = _shift(x_train[idx], g).to(device)
            loss = F.cross_entropy(model(xb), y_train[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        log(f"mnist classifier: epoch {epoch + 1}/{epochs} loss {loss.item():.4f} "
            f"test acc {_accuracy(model, x_test, y_test, device):.4%} ({time.time() - t0:.0f}s)")
    acc = _accuracy(model, x_test, y_test, device)
    if acc < min_accuracy:
        raise UserError(f"MNIST classifier reached {acc:.2%} test accuracy, below the required "
                        f"{min_accuracy:.0%}: train longer with --epochs {epochs * 2}")

    out_path = Path(out_path)
    state = {"arch": ARCH, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}
    with atomic.replacing(out_path) as tmp:  # weights first, then the manifest that vouches for them
        torch.save(state, tmp)
        sha = _sha256(tmp)
    manifest = {
        "arch": ARCH, "weights": out_path.name, "sha256": sha, "test_accuracy": acc,
        "n_test": len(y_test), "n_train": len(y_train), "epochs": epochs, "batch_size": batch_size,
        "lr": lr, "seed": seed, "torch": torch.__version__,
        "mnist_files_sha256": {p.name: _sha256(p) for p in train_files + test_files},   # as read: .gz or not
    }
    atomic.write_json(_manifest_path(out_path), manifest)
    return manifest


def _manifest_path(path: Path) -> Path:
    return Path(str(path) + ".json")


def load_mnist_classifier(path, device="cpu") -> tuple[MnistCNN, dict]:
    """The cached classifier and its manifest; UserError if missing or not what the manifest says."""
    path = Path(path)
    if not path.is_file() or not _manifest_path(path).is_file():
        raise UserError(f"missing MNIST classifier {path} (and its .json manifest): "
                        "run `gan-bench prepare mnist-classifier --data-root <paths.data>` once")
    manifest = json.loads(_manifest_path(path).read_text())
    if manifest.get("arch") != ARCH:  # e.g. v1, whose ~37 MFLOP a digit made ensembles' counts slow
        raise UserError(f"MNIST classifier {path} is a {manifest.get('arch')}, this gan-bench counts modes with "
                        f"{ARCH}: run `gan-bench prepare mnist-classifier` again (it replaces the file)")
    sha = _sha256(path)
    if sha != manifest.get("sha256"):
        raise UserError(f"MNIST classifier {path} does not match its manifest (SHA-256 {sha[:12]}...): "
                        "delete both files and run `gan-bench prepare mnist-classifier` again")
    model = MnistCNN()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])
    return model.to(device).eval().requires_grad_(False), manifest


def prepare_mnist_classifier_main(argv: list[str]) -> int:
    """`gan-bench prepare mnist-classifier [--data-root DIR] [--epochs N] ...`; UserError propagates
    to the CLI, which prints it as one line."""
    data = default_data_root()
    ap = argparse.ArgumentParser(prog="gan-bench prepare mnist-classifier",
                                 description="Train the Stacked MNIST mode classifier once and cache it.")
    ap.add_argument("--data-root", default=data, help="gan-bench data root (paths.data; default %(default)s)")
    ap.add_argument("--mnist-root", "--from", dest="mnist_root", default=None,
                    help="where the MNIST idx files are: a root holding MNIST/raw/, or the folder itself; "
                         ".gz or extracted (default: the data root)")
    ap.add_argument("--out", default=None, help="weights path (default DATA_ROOT/cache/mnist_classifier.pt)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--min-accuracy", type=float, default=0.99)
    ap.add_argument("--download", action="store_true", help="let torchvision download MNIST")
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else default_classifier_path(args.data_root)
    m = train_mnist_classifier(args.mnist_root or args.data_root, out, epochs=args.epochs,
                               batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
                               min_accuracy=args.min_accuracy, download=args.download)
    print(f"wrote {out} (test accuracy {m['test_accuracy']:.2%}, sha256 {m['sha256'][:12]}...)")
    return 0
