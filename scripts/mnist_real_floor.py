"""What real digits score on the MNIST metrics: the floor a generator is measured against.
`fd_mnist<count>_test` and `mnist_classes<count>` of `count` MNIST *training* digits (a fixed-seed
subset) scored as if a generator had drawn them, through the trainer's own ImageMetrics, so the
reference statistics and fingerprints are the ones runs use. One JSON line.

    python scripts/mnist_real_floor.py [--count 10000] [--data-root DIR] [--seed 0]

Needs MNIST and the classifier where `gan-bench train` finds them (paths.data; docs/datasets.md).
"""

import argparse
import json
import sys

import torch

from gan_bench.data.images import mnist
from gan_bench.errors import UserError
from gan_bench.metrics.image import ImageMetrics, default_cache_dir
from gan_bench.metrics.image_eval import real_dataset_id
from gan_bench.paths import default_data_root


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--data-root", default=default_data_root())
    ap.add_argument("--seed", type=int, default=0, help="which training digits stand in for a generator")
    args = ap.parse_args(argv)
    data = mnist(args.data_root, download=False)
    count = f"{args.count // 1000}k" if args.count % 1000 == 0 else str(args.count)  # as runs name it
    names = [f"fd_mnist{count}_test", f"mnist_classes{count}"]
    # The trainer's dataset id (eval.holdout=0), so runs and this script share the test statistics.
    metrics = ImageMetrics(names, {"test": data.test}, real_dataset_id(data, 0.0), default_cache_dir(args.data_root),
                           sample_shape=data.sample_shape)
    idx = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(args.seed))[: args.count]
    digits, pos = data.train[idx.sort().values], 0

    def sample(k):
        nonlocal pos
        pos += k
        return digits[pos - k:pos]

    print(json.dumps({"count": args.count, "seed": args.seed, **metrics(sample)}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
